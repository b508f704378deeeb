//! The machine and software a run was measured on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub host: String,
    pub os: String,
    pub cpu_model: String,
    /// The CPU's vendor, family, model and stepping (`/proc/cpuinfo`):
    /// what tells two CPUs of one marketing name apart (an AMD EPYC of
    /// Zen 3 from one of Zen 4); absent in files from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_id: Option<String>,
    /// Logical cores available to the process.
    pub cores: usize,
    /// GPU name and driver, from nvidia-smi, where one is present.
    pub gpu: Option<String>,
    pub speedbench_version: String,
    pub git_commit: String,
}

impl Environment {
    /// Whether `other` was measured on this machine: the same host name,
    /// system, CPU (its identity where both files record it), cores and
    /// GPU. Host names alone repeat (every VM of a class may be `vm`).
    pub fn same_machine(&self, other: &Environment) -> bool {
        self.host == other.host
            && self.os == other.os
            && self.cpu_model == other.cpu_model
            && self.cores == other.cores
            && self.gpu == other.gpu
            && match (&self.cpu_id, &other.cpu_id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The first value of the field `name` in a `/proc/cpuinfo` text (the
/// first CPU's).
fn field(cpuinfo: &str, name: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// Vendor, family, model and stepping of the first CPU of a
/// `/proc/cpuinfo` text, where it names them all.
pub fn cpu_id(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| field(cpuinfo, name);
    Some(format!(
        "{} family {} model {} stepping {}",
        field("vendor_id")?,
        field("cpu family")?,
        field("model")?,
        field("stepping")?
    ))
}

/// Logical cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn gpu() -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then(|| {
        let first = text.lines().next().unwrap_or_default();
        match first.split_once(',') {
            Some((name, driver)) => format!("{} (driver {})", name.trim(), driver.trim()),
            None => first.to_string(),
        }
    })
}

pub fn capture() -> Environment {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Environment {
        host: host(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        cpu_id: cpu_id(&cpuinfo),
        cores: cores(),
        gpu: gpu(),
        speedbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("SPEEDBENCH_GIT_COMMIT").into(),
    }
}

/// The machine's FMA peak (`bench::fma`), measured once per run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachinePeak {
    /// What was measured: the vector unit, or the GPU formula.
    pub unit: String,
    /// One core (CPU); absent on a GPU.
    pub one_core_gmacs: Option<f64>,
    /// Every core the run uses, or the whole GPU.
    pub all_gmacs: f64,
    /// Cores (threads) of `all_gmacs`; 0 on a GPU.
    pub cores: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 0\nmicrocode\t: 0xa101148\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n";

    #[test]
    fn the_cpu_id_is_the_first_cpus_vendor_family_model_and_stepping() {
        assert_eq!(
            cpu_id(ZEN4).as_deref(),
            Some("AuthenticAMD family 25 model 17 stepping 0")
        );
        // "model name" is not "model"; a field missing gives none
        assert_eq!(cpu_id(&ZEN4.replace("stepping\t: 0\n", "")), None);
        assert_eq!(cpu_id(""), None);
    }

    #[test]
    fn capture_reads_this_machine() {
        let e = capture();
        assert_eq!(e.host, host());
        assert!(!e.host.is_empty());
        assert_eq!(e.cores, cores());
        assert!(e.cores >= 1);
        assert_eq!(
            e.os,
            format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
        );
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if info.contains("vendor_id") {
            // an x86 Linux: the model's name and the CPU's identity
            assert_ne!(e.cpu_model, "unknown");
            assert!(info.contains(&e.cpu_model), "{e:?}");
            assert_eq!(e.cpu_id, cpu_id(&info));
            assert!(e.cpu_id.is_some(), "{e:?}");
        }
        assert!(e.same_machine(&capture()));
    }

    #[test]
    fn one_machine_is_the_same_host_cpu_cores_and_gpu() {
        let a = Environment {
            host: "vm".into(),
            os: "linux x86_64".into(),
            cpu_model: "AMD EPYC".into(),
            cpu_id: cpu_id(ZEN4),
            cores: 2,
            gpu: None,
            speedbench_version: "0.1.0".into(),
            git_commit: "a".into(),
        };
        let same = Environment {
            git_commit: "b".into(),
            ..a.clone()
        };
        assert!(a.same_machine(&same));
        // a file from before the CPU's identity was recorded
        assert!(a.same_machine(&Environment {
            cpu_id: None,
            ..a.clone()
        }));
        let zen3 = Environment {
            cpu_id: Some("AuthenticAMD family 25 model 1 stepping 1".into()),
            ..a.clone()
        };
        let others = [
            zen3,
            Environment {
                host: "ci".into(),
                ..a.clone()
            },
            Environment {
                cpu_model: "Intel(R) Xeon(R) Processor".into(),
                ..a.clone()
            },
            Environment {
                cores: 4,
                ..a.clone()
            },
            Environment {
                gpu: Some("H100".into()),
                ..a.clone()
            },
            Environment {
                os: "linux aarch64".into(),
                ..a.clone()
            },
        ];
        for o in &others {
            assert!(!a.same_machine(o), "{o:?}");
            assert!(!o.same_machine(&a), "{o:?}");
        }
    }
}
