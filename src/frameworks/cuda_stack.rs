//! Each framework's own CUDA libraries, loaded by full path in dependency
//! order before the framework starts on a GPU. A worker runs one framework,
//! so it loads exactly that framework's stack: ONNX Runtime's CUDA 13 build
//! takes the CUDA 13 libraries of the environment it shares with torch
//! (`nvidia/cu13`, cuDNN 9 for CUDA 13); TensorFlow's CUDA 12 build takes
//! those of its own environment (`nvidia/*/lib`, `*.so.12`). ONNX Runtime's
//! provider library has no RUNPATH and the binary's RUNPATH covers only its
//! direct dependencies, so without this the provider would not find
//! `libcublasLt.so.13` unless libtorch's CUDA library happened to be
//! loaded first. Once loaded with `RTLD_GLOBAL`, a later `dlopen` by soname
//! (the framework's own) finds the library already in the process.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

/// ONNX Runtime 1.31 (CUDA 13): runtime, BLAS, FFT, RNG, then cuDNN 9 with
/// its sub-libraries (cuDNN opens them by name on demand).
pub const ORT_CUDA13: &[&str] = &[
    "libcudart.so.13",
    "libnvJitLink.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcufft.so.12",
    "libcurand.so.10",
    "libnvrtc.so.13",
    "libcudnn_graph.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9",
    "libcudnn.so.9",
];

/// TensorFlow 2.21 (CUDA 12): the libraries its GPU device asks for.
pub const TF_CUDA12: &[&str] = &[
    "libcudart.so.12",
    "libnvJitLink.so.12",
    "libcublasLt.so.12",
    "libcublas.so.12",
    "libcufft.so.11",
    "libcusparse.so.12",
    "libcusolver.so.11",
    "libcudnn_graph.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9",
    "libcudnn.so.9",
];

/// The `site-packages` folder of a venv.
pub fn site_packages(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    let entries =
        std::fs::read_dir(&lib).with_context(|| format!("no environment at {}", venv.display()))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python"))
        })
        .map(|p| p.join("site-packages"))
        .find(|p| p.is_dir())
        .with_context(|| format!("no site-packages under {}", lib.display()))
}

/// Every `nvidia/<package>/lib` folder of a site-packages, sorted.
pub fn nvidia_dirs(site: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(site.join("nvidia"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("lib")))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Where each of `names` is, in the first of `dirs` that has it; an error
/// names the first library found nowhere.
pub fn locate(dirs: &[PathBuf], names: &[&str]) -> Result<Vec<PathBuf>> {
    names
        .iter()
        .map(|name| {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .with_context(|| {
                    let searched: Vec<String> =
                        dirs.iter().map(|d| d.display().to_string()).collect();
                    format!("CUDA library {name} not found in {}", searched.join(", "))
                })
        })
        .collect()
}

/// Loads `paths` in order, globally, for the rest of the process; an error
/// names the library that failed and why (the loader's message).
pub fn load(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        // SAFETY: loading a shared library runs its initialisers; these are
        // NVIDIA's CUDA libraries from the framework's own environment.
        let lib = unsafe { Library::open(Some(p), RTLD_NOW | RTLD_GLOBAL) }
            .with_context(|| format!("loading {}", p.display()))?;
        // kept for the life of the process: the framework needs them
        std::mem::forget(lib);
    }
    Ok(())
}

/// The environment a framework's CUDA stack lives in: `SPEEDBENCH_VENV` /
/// `SPEEDBENCH_TF_VENV` at run time, else those `ci/setup.sh` recorded at
/// build time.
fn venv_of(framework: &str) -> Result<PathBuf> {
    let (var, built) = match framework {
        "tf" => (
            "SPEEDBENCH_TF_VENV",
            option_env!("SPEEDBENCH_TF_VENV").or(option_env!("SPEEDBENCH_VENV")),
        ),
        _ => ("SPEEDBENCH_VENV", option_env!("SPEEDBENCH_VENV")),
    };
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| built.map(PathBuf::from))
        .with_context(|| format!("no environment for {framework}'s CUDA libraries: run ci/setup.sh --gpu and rebuild, or set {var}"))
}

/// Loads `framework`'s CUDA stack from its environment (`ort`, `tf`);
/// returns what was loaded.
pub fn load_for(framework: &str) -> Result<Vec<PathBuf>> {
    let names = match framework {
        "ort" | "ort-own" => ORT_CUDA13,
        "tf" => TF_CUDA12,
        "torch" => bail!("no CUDA stack is loaded for torch: libtorch_cuda finds its own"),
        other => bail!("unknown framework '{other}' (expected ort, ort-own, torch or tf)"),
    };
    let site = site_packages(&venv_of(framework)?)?;
    let paths = locate(&nvidia_dirs(&site), names)?;
    // ORT's CUDA provider library itself is left to ORT: its initialiser
    // needs ORT's provider host, which ORT sets up when it loads it
    load(&paths)?;
    Ok(paths)
}

/// The shared libraries mapped into this process, each path once.
pub fn mapped_libraries() -> Result<Vec<PathBuf>> {
    let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
    let mut out: Vec<PathBuf> = Vec::new();
    for p in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let p = PathBuf::from(p);
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(".so"))
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// One CUDA library as it resolved: its file name, where from, and the
/// major version its name carries (`libcudart.so.13`: 13).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub path: PathBuf,
    pub major: Option<u32>,
}

/// The libraries whose names carry the CUDA major version itself.
const CUDA_VERSIONED: &[&str] = &[
    "libcudart.so.",
    "libcublas.so.",
    "libcublasLt.so.",
    "libnvrtc.so.",
    "libnvJitLink.so.",
    "libcupti.so.",
];

/// Checks the NVIDIA libraries among `mapped` (those under an `nvidia/`
/// folder): no file name from two paths; and those of the framework's stack
/// (`stack`, or every one where `None`) from `site`, the CUDA runtime's of
/// major `cuda_major`. (The binary links libtorch, whose CUDA 13 runtime is
/// mapped in every worker; it is not the stack of another framework's.)
/// Returns the stack's libraries, or an error naming every violation.
pub fn check_resolved(
    mapped: &[PathBuf],
    site: &Path,
    cuda_major: u32,
    stack: Option<&[&str]>,
) -> Result<Vec<Resolved>> {
    let mut out: Vec<Resolved> = Vec::new();
    let mut seen: Vec<(String, &PathBuf)> = Vec::new();
    let mut problems = Vec::new();
    for p in mapped
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "nvidia"))
    {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            problems.push(format!(
                "{name} loaded twice: {} and {}",
                first.display(),
                p.display()
            ));
        }
        seen.push((name.clone(), p));
        if stack.is_some_and(|s| !s.contains(&name.as_str())) {
            continue;
        }
        let major = name
            .rsplit_once(".so.")
            .and_then(|(_, v)| v.split('.').next()?.parse().ok());
        if !p.starts_with(site) {
            problems.push(format!(
                "{name} loaded from {}, outside {}",
                p.display(),
                site.display()
            ));
        }
        if CUDA_VERSIONED.iter().any(|k| name.starts_with(k)) && major != Some(cuda_major) {
            problems.push(format!("{name} is not CUDA {cuda_major}"));
        }
        out.push(Resolved {
            name,
            path: p.clone(),
            major,
        });
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(out)
}

/// The environment (site-packages), CUDA major and library list a
/// framework's stack must come from.
pub fn expected(framework: &str) -> Result<(PathBuf, u32, &'static [&'static str])> {
    match framework {
        "ort" | "ort-own" => Ok((site_packages(&venv_of(framework)?)?, 13, ORT_CUDA13)),
        "tf" => Ok((site_packages(&venv_of(framework)?)?, 12, TF_CUDA12)),
        other => bail!("unknown framework '{other}' (expected ort, ort-own or tf)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_libraries_come_from_one_environment_in_one_copy() {
        let site = Path::new("/env/a/site-packages");
        let at = |p: &str| PathBuf::from(p);
        let good = [
            at("/env/a/site-packages/nvidia/cu13/lib/libcudart.so.13"),
            at("/env/a/site-packages/nvidia/cudnn/lib/libcudnn.so.9"),
            at("/usr/lib/libstdc++.so.6"),
        ];
        let r = check_resolved(&good, site, 13, None).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].name.as_str(), r[0].major),
            ("libcudart.so.13", Some(13))
        );
        assert_eq!(r[1].major, Some(9));
        let err = check_resolved(&good, site, 12, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("libcudart.so.13 is not CUDA 12"), "{err}");
        let twice = [
            good[0].clone(),
            at("/env/b/site-packages/nvidia/cu13/lib/libcudart.so.13"),
        ];
        let err = check_resolved(&twice, site, 13, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("libcudart.so.13 loaded twice"), "{err}");
        assert!(err.contains("outside /env/a/site-packages"), "{err}");
        // another framework's libraries are not this stack's, but a name
        // loaded from two places is always wrong
        let tf_site = Path::new("/env/tf/site-packages");
        let mixed = [
            good[0].clone(),
            at("/env/tf/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12"),
        ];
        let r = check_resolved(&mixed, tf_site, 12, Some(&["libcudart.so.12"])).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].major, Some(12));
        assert!(check_resolved(&twice, tf_site, 12, Some(&["libcudnn.so.9"])).is_err());
        assert!(expected("torch").is_err());
        // this process's own mapped libraries are listed once each
        let mapped = mapped_libraries().unwrap();
        let mut names = mapped.clone();
        names.dedup();
        assert_eq!(names.len(), mapped.len());
        assert!(mapped
            .iter()
            .any(|p| p.to_string_lossy().contains("libc.so")));
    }

    #[test]
    fn a_missing_library_is_named() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a/lib");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("libx.so.1"), b"").unwrap();
        let found = locate(std::slice::from_ref(&a), &["libx.so.1"]).unwrap();
        assert_eq!(found, [a.join("libx.so.1")]);
        let err = locate(&[a], &["libx.so.1", "libcudart.so.13"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CUDA library libcudart.so.13 not found in"),
            "{err}"
        );
        // a file that is not a library: the loader's reason, with the path
        let err = load(&[t.path().join("a/lib/libx.so.1")]).unwrap_err();
        assert!(format!("{err:#}").contains("libx.so.1"), "{err:#}");
    }

    #[test]
    fn nvidia_folders_are_found_in_a_site_packages() {
        let t = tempfile::tempdir().unwrap();
        let site = t.path().join("lib/python3.11/site-packages");
        for p in ["nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/notlib"] {
            std::fs::create_dir_all(site.join(p)).unwrap();
        }
        assert_eq!(site_packages(t.path()).unwrap(), site);
        assert_eq!(
            nvidia_dirs(&site),
            [site.join("nvidia/cu13/lib"), site.join("nvidia/cublas/lib")]
        );
        assert!(site_packages(&t.path().join("nowhere")).is_err());
        assert!(load_for("torch")
            .unwrap_err()
            .to_string()
            .contains("finds its own"));
    }

    /// ONNX Runtime's CUDA 13 stack from the environment ci/setup.sh made:
    /// torch's CUDA 13 wheels are there on every machine (libtorch_cpu
    /// links libcudart.so.13), so every library is found and loads, in
    /// this order, without a GPU (none of them needs libcuda to load).
    #[test]
    fn ort_s_cuda_stack_loads_by_full_path_from_its_environment() {
        let Some(venv) = option_env!("SPEEDBENCH_VENV") else {
            return;
        };
        let site = site_packages(Path::new(venv)).unwrap();
        let paths = locate(&nvidia_dirs(&site), ORT_CUDA13).unwrap();
        assert_eq!(paths.len(), ORT_CUDA13.len());
        assert!(paths.iter().all(|p| p.starts_with(&site)));
        load(&paths).unwrap();
    }
}
