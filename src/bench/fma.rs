//! The machine's physical multiply-accumulate peak, measured the way it is
//! defined: independent chains of fused multiply-adds on the widest vector
//! unit the CPU has (AVX-512 where present, else AVX2 with FMA, else NEON,
//! else scalar), enough chains to hide the FMA latency, on one core and on
//! every core a run uses. On a GPU the single-precision FMA peak follows
//! from the device's SM count, FP32 units per SM and clock.

use std::time::Instant;

use crate::record::env::MachinePeak;
use crate::record::Precision;

/// Independent accumulators per thread: more than latency x throughput of
/// any current core (4 cycles x 2 pipes), so the FMA units never wait.
const CHAINS: usize = 12;

/// The vector unit a kernel runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Avx512,
    Avx2Fma,
    Neon,
    Scalar,
    /// AVX-512 BF16 dot products (`vdpbf16ps`): 32 bfloat16 products
    /// summed in pairs into 16 float32 lanes per instruction.
    Avx512Bf16,
    /// AVX-512 FP16 fused multiply-adds (`vfmadd231ph`): 32 float16 lanes.
    Avx512Fp16,
}

impl Unit {
    /// The widest unit this CPU has.
    pub fn widest() -> Unit {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Unit::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Unit::Avx2Fma;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                return Unit::Neon;
            }
        }
        Unit::Scalar
    }

    /// The unit that sets the peak of `precision` on this CPU: the widest
    /// float32 unit for fp32; AVX-512 BF16 and FP16 where the CPU has them;
    /// `Err` with the reason otherwise (TF32 is a GPU mode; a CPU with AMX
    /// tiles has a bf16 peak above what the vector units show, which is not
    /// measured here, so none is given rather than one a cell could exceed).
    pub fn for_precision(precision: Precision) -> Result<Unit, String> {
        Unit::for_precision_with(precision, &cpu_flags())
    }

    /// [`Unit::for_precision`] on a CPU with these /proc/cpuinfo flags.
    fn for_precision_with(precision: Precision, flags: &[String]) -> Result<Unit, String> {
        let has = |f: &str| flags.iter().any(|x| x == f);
        match precision {
            Precision::Fp32 => Ok(Unit::widest()),
            Precision::Tf32 => Err("TF32 is a GPU mode; a CPU has no TF32 peak".into()),
            Precision::Bf16 if has("amx_bf16") => {
                Err("this CPU has AMX tiles, whose bf16 peak speedbench does not measure".into())
            }
            Precision::Bf16 if has("avx512_bf16") => Ok(Unit::Avx512Bf16),
            Precision::Fp16 if has("avx512_fp16") => Ok(Unit::Avx512Fp16),
            p => Err(format!(
                "this CPU has no {p} vector unit (no avx512_{p} in /proc/cpuinfo)"
            )),
        }
    }

    /// Multiply-accumulates of one vector instruction.
    pub fn lanes(self) -> usize {
        match self {
            Unit::Avx512Bf16 | Unit::Avx512Fp16 => 32,
            Unit::Avx512 => 16,
            Unit::Avx2Fma => 8,
            Unit::Neon => 4,
            Unit::Scalar => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Avx512 => "AVX-512 FMA",
            Unit::Avx2Fma => "AVX2 FMA",
            Unit::Neon => "NEON FMA",
            Unit::Scalar => "scalar mul_add",
            Unit::Avx512Bf16 => "AVX-512 BF16 dot products",
            Unit::Avx512Fp16 => "AVX-512 FP16 FMA",
        }
    }

    /// `iters` rounds of [`CHAINS`] independent FMAs; returns a value that
    /// depends on all of them, so none is optimised away.
    fn run(self, iters: u64, seed: f32) -> f32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `widest` found the feature on this CPU.
            Unit::Avx512 => unsafe { x86::avx512(iters, seed) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Unit::Avx2Fma => unsafe { x86::avx2(iters, seed) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above.
            Unit::Neon => unsafe { arm::neon(iters, seed) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `for_precision` found the unit in the CPU's flags.
            Unit::Avx512Bf16 => unsafe { x86::bf16_dot(iters, seed) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Unit::Avx512Fp16 => unsafe { x86::fp16_fma(iters, seed) },
            _ => scalar(iters, seed),
        }
    }
}

fn scalar(iters: u64, seed: f32) -> f32 {
    let mut acc = [seed; CHAINS];
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = std::hint::black_box(*x).mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: u64, seed: f32) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(seed); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, x| _mm512_add_ps(s, *x));
        _mm512_reduce_add_ps(s)
    }

    /// `iters` rounds of [`CHAINS`] `vdpbf16ps`: each lane of each chain
    /// gains 0.5 x 0.5 + 0.5 x 0.5 = 0.5 a round (exact in float32), so the
    /// sum over chains and lanes is `CHAINS x 16 x (seed + iters / 2)`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn bf16_dot(iters: u64, seed: f32) -> f32 {
        // bfloat16 0.5 is 0x3F00, two to a 32-bit lane
        let half = _mm512_set1_epi32(0x3F00_3F00);
        let mut acc = [_mm512_set1_ps(seed); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                std::arch::asm!(
                    "vdpbf16ps {x}, {a}, {a}",
                    x = inout(zmm_reg) *x,
                    a = in(zmm_reg) half,
                    options(pure, nomem, nostack)
                );
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, x| _mm512_add_ps(s, *x));
        _mm512_reduce_add_ps(s)
    }

    /// `iters` rounds of [`CHAINS`] `vfmadd231ph` (x <- x + 1 x 2^-10 in
    /// float16, exact while x stays below 1); returns the sum over chains
    /// and lanes in float32: `CHAINS x 32 x (seed + iters / 1024)`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fp16_fma(iters: u64, seed: f32) -> f32 {
        // float16 1.0 is 0x3C00, 2^-10 is 0x1400; the seed rounded to float16
        let bits = f16_bits(seed);
        let one = _mm512_set1_epi16(0x3C00);
        let step = _mm512_set1_epi16(0x1400);
        let mut acc = [_mm512_set1_epi16(bits as i16); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                std::arch::asm!(
                    "vfmadd231ph {x}, {a}, {b}",
                    x = inout(zmm_reg) *x,
                    a = in(zmm_reg) one,
                    b = in(zmm_reg) step,
                    options(pure, nomem, nostack)
                );
            }
        }
        let mut sum = 0f32;
        for x in acc {
            let mut lanes = [0u16; 32];
            _mm512_storeu_si512(lanes.as_mut_ptr().cast(), x);
            sum += lanes.iter().map(|&h| f16_value(h)).sum::<f32>();
        }
        sum
    }

    /// A float32 as float16 bits (round to nearest).
    pub(super) fn f16_bits(x: f32) -> u16 {
        half::f16::from_f32(x).to_bits()
    }

    pub(super) fn f16_value(h: u16) -> f32 {
        half::f16::from_bits(h).to_f32()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: u64, seed: f32) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(seed); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, x| _mm256_add_ps(s, *x));
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::CHAINS;

    #[target_feature(enable = "neon")]
    pub unsafe fn neon(iters: u64, seed: f32) -> f32 {
        let (a, b) = (vdupq_n_f32(0.999_999), vdupq_n_f32(1e-7));
        let mut acc = [vdupq_n_f32(seed); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = vfmaq_f32(b, *x, a);
            }
        }
        vaddvq_f32(acc.iter().fold(vdupq_n_f32(0.0), |s, x| vaddq_f32(s, *x)))
    }
}

/// Multiply-accumulates per second of `threads` threads each running
/// `iters` rounds, in GMAC/s.
pub fn rate(unit: Unit, threads: usize, iters: u64) -> f64 {
    let threads = threads.max(1);
    let start = Instant::now();
    let sum: f32 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|i| s.spawn(move || unit.run(iters, i as f32)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sum);
    macs(unit, threads, iters) / seconds / 1e9
}

/// The MACs `threads` threads do in `iters` rounds.
pub fn macs(unit: Unit, threads: usize, iters: u64) -> f64 {
    (iters as f64) * (CHAINS * unit.lanes() * threads) as f64
}

/// The best of `repeats` measurements, each about `seconds` long: the peak
/// is a limit, so noise only ever lowers a measurement.
pub fn best_rate(unit: Unit, threads: usize, seconds: f64, repeats: usize) -> f64 {
    // calibrate the rounds to the wanted duration on one short try
    let probe = 200_000;
    let quick = rate(unit, 1, probe).max(1e-3);
    let per_thread = quick * 1e9 * seconds / (CHAINS * unit.lanes()) as f64;
    let iters = (per_thread as u64).max(probe);
    (0..repeats.max(1))
        .map(|_| rate(unit, threads, iters))
        .fold(0f64, f64::max)
}

/// The CPU's flags as /proc/cpuinfo lists them (`avx512_bf16`,
/// `amx_bf16`); empty where it cannot be read.
pub fn cpu_flags() -> Vec<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, f)| f.split_whitespace().map(String::from).collect())
        })
        .unwrap_or_default()
}

/// The CPU's FMA peak on one core and on `cores` cores.
pub fn cpu(cores: usize) -> MachinePeak {
    on_unit(Unit::widest(), cores)
}

/// The peak of `unit` on one core and on `cores` cores.
pub fn on_unit(unit: Unit, cores: usize) -> MachinePeak {
    let one = best_rate(unit, 1, 0.2, 3);
    let all = if cores > 1 {
        best_rate(unit, cores, 0.2, 3)
    } else {
        one
    };
    MachinePeak {
        unit: format!("{} x {CHAINS} chains", unit.name()),
        one_core_gmacs: Some(one),
        all_gmacs: all,
        cores: cores.max(1),
    }
}

/// FP32 units per SM of a compute capability (CUDA C Programming Guide,
/// arithmetic instructions throughput table).
pub fn fp32_per_sm(major: u32, minor: u32) -> Option<u32> {
    match (major, minor) {
        (6, 0) => Some(64),
        (6, _) => Some(128),
        (7, _) => Some(64),
        (8, 0) => Some(64),
        (8, _) => Some(128),
        (9, _) => Some(128),
        (10, _) | (12, _) => Some(128),
        _ => None,
    }
}

/// The GPU's FP32 FMA peak in GMAC/s: SMs x FP32 units per SM x clock.
pub fn gpu_gmacs(sms: u32, major: u32, minor: u32, clock_khz: u32) -> Option<f64> {
    let units = fp32_per_sm(major, minor)?;
    Some(f64::from(sms) * f64::from(units) * f64::from(clock_khz) * 1e3 / 1e9)
}

/// The GPU's figures from the CUDA driver (`libcuda.so.1`, the driver API:
/// no toolkit needed): SM count, compute capability and SM clock of device 0.
pub fn gpu() -> anyhow::Result<MachinePeak> {
    use anyhow::{anyhow, bail};
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Get = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type Attr = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
    // SAFETY: the CUDA driver library, its documented C entry points with
    // their documented signatures; plain values and out-pointers to locals.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1")
            .map_err(|e| anyhow!("the CUDA driver library libcuda.so.1 did not load: {e}"))?;
        let init: libloading::Symbol<Init> = lib.get(b"cuInit\0")?;
        let get: libloading::Symbol<Get> = lib.get(b"cuDeviceGet\0")?;
        let attr: libloading::Symbol<Attr> = lib.get(b"cuDeviceGetAttribute\0")?;
        if init(0) != 0 {
            bail!("cuInit failed: no usable NVIDIA GPU");
        }
        let mut dev = 0;
        if get(&mut dev, 0) != 0 {
            bail!("cuDeviceGet(0) failed");
        }
        let read = |a: i32| -> anyhow::Result<u32> {
            let mut v = 0;
            if attr(&mut v, a, dev) != 0 {
                bail!("cuDeviceGetAttribute({a}) failed");
            }
            Ok(u32::try_from(v).unwrap_or(0))
        };
        // CU_DEVICE_ATTRIBUTE_ MULTIPROCESSOR_COUNT, CLOCK_RATE (kHz),
        // COMPUTE_CAPABILITY_MAJOR and _MINOR
        let (sms, khz, major, minor) = (read(16)?, read(13)?, read(75)?, read(76)?);
        let all = gpu_gmacs(sms, major, minor, khz).ok_or_else(|| {
            anyhow!("compute capability {major}.{minor}: FP32 units per SM not known")
        })?;
        Ok(MachinePeak {
            unit: format!(
                "nominal, not measured: {sms} SMs x {} FP32 units x {:.2} GHz (sm_{major}{minor})",
                fp32_per_sm(major, minor).unwrap_or(0),
                f64::from(khz) / 1e6
            ),
            one_core_gmacs: None,
            all_gmacs: all,
            cores: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_count_every_lane_chain_and_thread() {
        assert_eq!(macs(Unit::Avx512, 2, 10), 10.0 * 12.0 * 16.0 * 2.0);
        assert_eq!(macs(Unit::Avx2Fma, 1, 3), 3.0 * 12.0 * 8.0);
        assert_eq!(macs(Unit::Scalar, 4, 1), 48.0);
    }

    #[test]
    fn every_unit_computes_the_same_recurrence() {
        // c <- c * 0.999999 + 1e-7 from the seed, summed over the chains
        let want = scalar(1000, 0.5);
        let mut units = vec![Unit::widest(), Unit::Scalar];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            units.push(Unit::Avx2Fma);
        }
        for u in units {
            let got = u.run(1000, 0.5) / u.lanes() as f32;
            assert!(
                (got - want).abs() < 1e-3 * want.abs(),
                "{u:?}: {got} vs {want}"
            );
        }
    }

    /// The reduced-precision kernels compute what they say, exactly (the
    /// values are exact in bfloat16 and float16), on a CPU that has them.
    #[test]
    fn reduced_precision_kernels_compute_their_sums() {
        if let Ok(u) = Unit::for_precision(Precision::Bf16) {
            assert_eq!(u, Unit::Avx512Bf16);
            // 12 chains x 16 lanes x (seed + 0.5 a round)
            assert_eq!(u.run(1000, 0.5), 12.0 * 16.0 * 500.5);
            assert_eq!(u.run(3, 2.0), 12.0 * 16.0 * 3.5);
        }
        if let Ok(u) = Unit::for_precision(Precision::Fp16) {
            assert_eq!(u, Unit::Avx512Fp16);
            // 12 chains x 32 lanes x (seed + 2^-10 a round)
            assert_eq!(u.run(64, 0.5), 12.0 * 32.0 * 0.5625);
            assert_eq!(u.run(0, 0.25), 12.0 * 32.0 * 0.25);
        }
        assert_eq!(Unit::for_precision(Precision::Fp32), Ok(Unit::widest()));
        assert!(Unit::for_precision(Precision::Tf32)
            .unwrap_err()
            .contains("GPU"));
        let flags = cpu_flags();
        if flags.iter().any(|f| f == "avx512_bf16") && !flags.iter().any(|f| f == "amx_bf16") {
            assert_eq!(Unit::for_precision(Precision::Bf16), Ok(Unit::Avx512Bf16));
        }
        if flags.iter().any(|f| f == "avx512_fp16") {
            assert_eq!(Unit::for_precision(Precision::Fp16), Ok(Unit::Avx512Fp16));
        }
    }

    /// The unit per precision from the CPU's flags: AVX-512 BF16 and FP16
    /// where listed, no bf16 figure beside AMX tiles, a reason otherwise.
    #[test]
    fn the_flags_choose_the_unit_of_a_precision() {
        let at = |p, flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            Unit::for_precision_with(p, &flags)
        };
        let (bf16, fp16) = ("avx512_bf16", "avx512_fp16");
        assert_eq!(at(Precision::Bf16, &[bf16, fp16]), Ok(Unit::Avx512Bf16));
        assert_eq!(at(Precision::Fp16, &[bf16, fp16]), Ok(Unit::Avx512Fp16));
        assert!(at(Precision::Bf16, &[bf16, "amx_bf16"])
            .unwrap_err()
            .contains("AMX"));
        assert_eq!(
            at(Precision::Bf16, &[fp16]),
            Err("this CPU has no bf16 vector unit (no avx512_bf16 in /proc/cpuinfo)".into())
        );
        assert!(at(Precision::Fp16, &[bf16])
            .unwrap_err()
            .contains("no avx512_fp16"));
        assert_eq!(at(Precision::Fp32, &[]), Ok(Unit::widest()));
        assert!(at(Precision::Tf32, &[bf16, fp16]).is_err());
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn the_cpu_flags_are_read_from_cpuinfo() {
        // every x86-64 CPU has SSE2, and Linux lists it
        let flags = cpu_flags();
        assert!(flags.iter().any(|f| f == "sse2"), "{flags:?}");
    }

    /// The float16 conversions of the FP16 kernel, exact where the value
    /// is exact in float16 and rounded to nearest where it is not.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn float16_bits_round_trip() {
        assert_eq!(x86::f16_bits(1.0), 0x3c00);
        assert_eq!(x86::f16_bits(-2.0), 0xc000);
        assert_eq!(x86::f16_bits(0.000_976_562_5), 0x1400);
        assert_eq!(x86::f16_value(0x3c00), 1.0);
        assert_eq!(x86::f16_value(0x3800), 0.5);
        for v in [0.25f32, 0.5625, 3.5, -1024.0] {
            assert_eq!(x86::f16_value(x86::f16_bits(v)), v);
        }
        // 1 + 2^-12 is between two float16 values: to the nearer, 1
        assert_eq!(x86::f16_value(x86::f16_bits(1.000_244_1)), 1.0);
    }

    #[test]
    fn units_have_their_widths_and_names() {
        let u = [
            Unit::Avx512,
            Unit::Avx2Fma,
            Unit::Neon,
            Unit::Scalar,
            Unit::Avx512Bf16,
            Unit::Avx512Fp16,
        ];
        assert_eq!(u.map(Unit::lanes), [16, 8, 4, 1, 32, 32]);
        assert_eq!(
            u.map(Unit::name),
            [
                "AVX-512 FMA",
                "AVX2 FMA",
                "NEON FMA",
                "scalar mul_add",
                "AVX-512 BF16 dot products",
                "AVX-512 FP16 FMA"
            ]
        );
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(Unit::widest(), Unit::Avx512);
        }
    }

    /// A rate in a plausible range for any CPU of the last decades: the
    /// arithmetic (MACs / seconds / 1e9) is not off by orders of magnitude.
    #[test]
    fn rates_are_plausible() {
        let u = Unit::widest();
        let r = rate(u, 1, 2_000_000);
        assert!((0.5..20_000.0).contains(&r), "{r} GMAC/s");
        let b = best_rate(u, 1, 0.02, 2);
        assert!((0.5..20_000.0).contains(&b), "{b} GMAC/s");
        let scalar = rate(Unit::Scalar, 1, 200_000);
        assert!((0.01..1_000.0).contains(&scalar), "{scalar} GMAC/s");
        // No comparison of two rates here: both are wall-clock speeds, and
        // a test must not depend on the machine being idle (one measured
        // "best 12.0 vs one 49.8 GMAC/s" beside a build). The vector unit
        // against the scalar recurrence is `speedbench run`'s "machine
        // peak" line and the benchmark's to show.
    }

    #[test]
    fn the_cpu_peak_is_measured_on_the_widest_unit() {
        let p = cpu(1);
        assert!(p.all_gmacs > 0.0 && p.one_core_gmacs == Some(p.all_gmacs));
        assert_eq!(p.cores, 1);
        assert_eq!(p.unit, format!("{} x 12 chains", Unit::widest().name()));
        let two = cpu(2);
        assert_eq!(two.cores, 2);
        assert!(two.all_gmacs > 0.0 && two.one_core_gmacs.is_some_and(|o| o > 0.0));
        // two cores are measured apart from one (two measurements never
        // give the same float)
        assert_ne!(Some(two.all_gmacs), two.one_core_gmacs);
    }

    #[test]
    fn gpu_peak_from_the_device_figures() {
        // H100 SXM: 132 SMs x 128 FP32 units x 1.98 GHz = 33.5 TMAC/s
        let g = gpu_gmacs(132, 9, 0, 1_980_000).unwrap();
        assert!((g - 33_454.08).abs() < 0.01, "{g}");
        // A100: 108 SMs x 64 x 1.41 GHz
        assert!((gpu_gmacs(108, 8, 0, 1_410_000).unwrap() - 9_745.92).abs() < 0.01);
        assert_eq!(gpu_gmacs(10, 5, 0, 1), None);
        let units: Vec<Option<u32>> = [
            (6, 0),
            (6, 1),
            (7, 0),
            (8, 0),
            (8, 6),
            (9, 0),
            (10, 0),
            (12, 0),
            (5, 2),
        ]
        .iter()
        .map(|&(a, b)| fp32_per_sm(a, b))
        .collect();
        let want = [
            Some(64),
            Some(128),
            Some(64),
            Some(64),
            Some(128),
            Some(128),
            Some(128),
            Some(128),
            None,
        ];
        assert_eq!(units, want);
    }
}
