//! Where model specs come from: the specs and ScaleNet structures built into
//! the binary (the repository's `models/` at build time), so that the binary
//! works from any folder, and optionally a folder of the user's
//! (`--models-dir`, or `SPEEDBENCH_MODELS_DIR`) whose models add to the
//! built-in ones or replace them by name. A model is found by the `name` its
//! file declares; two files of one source declaring the same name are
//! refused, naming both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use super::spec::{read_file, ModelSpec, SpecError};

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/models");

/// The prefix built-in files are named with in errors.
const BUILT_IN_PREFIX: &str = "models (built in)";

/// The models a command can use, by name.
#[derive(Debug, Clone)]
pub struct Catalog {
    specs: BTreeMap<String, ModelSpec>,
    /// The user's folder, if any (passed on to child processes).
    pub dir: Option<PathBuf>,
}

/// Adds `spec` to `into`, refusing a second file of the same source that
/// declares a name already declared.
fn insert(into: &mut BTreeMap<String, ModelSpec>, spec: ModelSpec) -> Result<(), SpecError> {
    if let Some(first) = into.get(&spec.name) {
        return Err(SpecError::Duplicate {
            name: spec.name.clone(),
            first: first.path.clone(),
            second: spec.path,
        });
    }
    into.insert(spec.name.clone(), spec);
    Ok(())
}

/// The built-in specs.
fn built_in() -> Result<BTreeMap<String, ModelSpec>, SpecError> {
    let read = |p: &Path| -> Result<String, SpecError> {
        let name = p.file_name().unwrap_or_default();
        BUILT_IN
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(str::to_string)
            .ok_or_else(|| SpecError::Read {
                path: p.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
    };
    let mut specs = BTreeMap::new();
    let mut files: Vec<_> = BUILT_IN
        .files()
        .filter(|f| f.path().extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort_by_key(|f| f.path());
    for f in files {
        let path = Path::new(BUILT_IN_PREFIX).join(f.path());
        let text = f.contents_utf8().unwrap_or_default();
        insert(&mut specs, ModelSpec::parse_with(text, &path, &read)?)?;
    }
    Ok(specs)
}

/// The specs of the folder `dir`.
fn folder(dir: &Path) -> Result<BTreeMap<String, ModelSpec>, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SpecError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut specs = BTreeMap::new();
    for p in paths {
        insert(
            &mut specs,
            ModelSpec::parse_with(&read_file(&p)?, &p, &read_file)?,
        )?;
    }
    Ok(specs)
}

/// The models folder of a user who names none (`--models-dir`,
/// `SPEEDBENCH_MODELS_DIR`): where `speedbench import` writes and every
/// command reads, `$XDG_DATA_HOME/speedbench/models` or else
/// `~/.local/share/speedbench/models`.
pub fn default_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("speedbench").join("models"))
}

impl Catalog {
    /// The built-in models, with those of `dir` added or replacing them;
    /// without `dir`, those of [`default_dir`] where it exists.
    pub fn open(dir: Option<&Path>) -> Result<Catalog, SpecError> {
        let dir = match dir {
            Some(d) => Some(d.to_path_buf()),
            None => default_dir().filter(|d| d.is_dir()),
        };
        let mut specs = built_in()?;
        if let Some(d) = &dir {
            specs.extend(folder(d)?);
        }
        Ok(Catalog { specs, dir })
    }

    /// The built-in models alone.
    pub fn built_in() -> Result<Catalog, SpecError> {
        Ok(Catalog {
            specs: built_in()?,
            dir: None,
        })
    }

    /// Where the model `name` comes from: its spec file.
    pub fn source(&self, name: &str) -> Option<&Path> {
        self.specs.get(name).map(|s| s.path.as_path())
    }

    /// Every model's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    /// The model called `name`, with the list of known models on a miss.
    pub fn find(&self, name: &str) -> Result<&ModelSpec, SpecError> {
        self.specs.get(name).ok_or_else(|| SpecError::Unknown {
            name: name.into(),
            known: self.names().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_models_are_the_repositorys() {
        let c = Catalog::built_in().unwrap();
        let on_disk = folder(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
        assert_eq!(c.names(), on_disk.keys().cloned().collect::<Vec<_>>());
        assert!(c.names().contains(&"scalenet50".to_string()));
        // ScaleNet structures are built in too
        assert_eq!(c.find("scalenet50").unwrap().structure.len(), 16);
    }

    #[test]
    fn a_folder_adds_and_overrides_and_refuses_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let spec = |name: &str, layers: &str| {
            format!("name = \"{name}\"\n[model]\nfamily = \"resnet\"\nlayers = {layers}\n")
        };
        std::fs::write(d.path().join("tiny.toml"), spec("tiny", "[1, 1, 1, 1]")).unwrap();
        std::fs::write(d.path().join("r50.toml"), spec("resnet50", "[1, 1, 1, 1]")).unwrap();
        let c = Catalog::open(Some(d.path())).unwrap();
        assert!(c.find("tiny").is_ok());
        let super::super::spec::Family::Resnet(r) = &c.find("resnet50").unwrap().family else {
            panic!("resnet50 is a resnet")
        };
        assert_eq!(
            r.layers,
            [1, 1, 1, 1],
            "the folder's resnet50 replaces the built-in"
        );
        assert!(c.find("scalenet50").is_ok(), "built-in models stay");
        std::fs::write(d.path().join("again.toml"), spec("tiny", "[2, 2, 2, 2]")).unwrap();
        let e = Catalog::open(Some(d.path())).unwrap_err().to_string();
        assert!(
            e.contains("again.toml") && e.contains("tiny.toml") && e.contains("'tiny'"),
            "{e}"
        );
    }
}
