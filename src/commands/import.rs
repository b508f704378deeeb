//! `speedbench import`: an ONNX file into the models folder, as the file
//! itself beside a spec that names it. Everything is checked before
//! anything is written, so a refused file leaves the folder as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::graph::{analysis, import};
use crate::zoo::catalog::{default_dir, Catalog};
use crate::zoo::spec::OnnxSpec;

/// Imports `file` as `name` (default: the file's stem) into `dir` (default:
/// the user's models folder); the exit code.
pub fn import(file: &Path, name: Option<&str>, dir: Option<&Path>) -> Result<i32> {
    let dir: PathBuf = match dir {
        Some(d) => d.to_path_buf(),
        None => default_dir().context(
            "no models folder: set --models-dir or SPEEDBENCH_MODELS_DIR (HOME is not set)",
        )?,
    };
    let name = match name {
        Some(n) => checked_name(n, "--name")?,
        None => {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            checked_name(
                &from_stem(&stem),
                "the file's name (choose one with --name)",
            )?
        }
    };
    let catalog = match dir.is_dir() {
        true => Catalog::open(Some(&dir))?,
        false => Catalog::built_in()?,
    };
    if let Some(source) = catalog.source(&name) {
        bail!(
            "a model called '{name}' exists already ({}); choose another with --name",
            source.display()
        );
    }
    let started = Instant::now();
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let imported = import::import(&bytes, &name).with_context(|| file.display().to_string())?;
    let took = started.elapsed().as_secs_f64();
    let g = &imported.graph;
    let size = g.input().h;
    let onnx_path = dir.join(format!("{name}.onnx"));
    let spec_path = dir.join(format!("{name}.toml"));
    for p in [&onnx_path, &spec_path] {
        if p.exists() {
            bail!("{} exists already; choose another --name", p.display());
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let spec = toml::to_string(&SpecFile {
        name: name.clone(),
        description: format!(
            "imported from {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        ),
        num_classes: g.num_classes(),
        model: Model {
            family: "onnx",
            onnx: OnnxSpec {
                file: format!("{name}.onnx").into(),
                size,
            },
        },
    })?;
    // the file first: the folder lists models by their spec
    write_new(&onnx_path, &bytes)?;
    if let Err(e) = write_new(&spec_path, spec.as_bytes()) {
        let _ = std::fs::remove_file(&onnx_path);
        return Err(e);
    }
    let a = analysis::analyse(g);
    println!(
        "imported '{name}' from {} in {took:.2} s: {} nodes, {size}x{size} input, {} classes, {:.2}M parameters, {:.2} GMACs, up to {} operations at once, work/span ideal {:.2}x",
        file.display(),
        g.nodes.len(),
        g.num_classes(),
        a.params as f64 / 1e6,
        a.macs as f64 / 1e9,
        a.max_parallel_branches,
        a.ideal_speedup,
    );
    println!(
        "  -> {} (run it with --model {name}{})",
        spec_path.display(),
        size_hint(size)
    );
    Ok(0)
}

/// The spec file written beside the ONNX file.
#[derive(serde::Serialize)]
struct SpecFile {
    name: String,
    description: String,
    num_classes: usize,
    model: Model,
}

#[derive(serde::Serialize)]
struct Model {
    family: &'static str,
    #[serde(flatten)]
    onnx: OnnxSpec,
}

fn size_hint(size: usize) -> String {
    if size == 224 {
        String::new()
    } else {
        format!(" --size {size}")
    }
}

/// A file's stem as a model name: lower case, other characters as `_`.
fn from_stem(stem: &str) -> String {
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn checked_name(name: &str, what: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-');
    if !ok {
        bail!("{what}: '{name}' is not a model name; expected letters, digits, '_' and '-'");
    }
    Ok(name.to_string())
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_or_the_flag() {
        assert_eq!(from_stem("Inception V3.opt"), "inception_v3_opt");
        assert!(checked_name("inception_v3", "--name").is_ok());
        let e = checked_name("a/b", "--name").unwrap_err().to_string();
        assert!(e.starts_with("--name: 'a/b'"), "{e}");
        assert!(checked_name("", "--name").is_err());
        assert!(checked_name("-x", "--name").is_err());
        assert_eq!(size_hint(299), " --size 299");
        assert_eq!(size_hint(224), "");
    }
}
