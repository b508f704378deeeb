//! Model specs: `models/<name>.toml`, one file per model.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("{0}")]
    Toml(String),
    #[error("{path}: field '{field}': {msg}")]
    Field {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("unknown model '{name}' (known: {known})")]
    Unknown { name: String, known: String },
    #[error("{second}: declares model '{name}', which {first} declares too; rename one")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// How a ResNeXt bottleneck's grouped 3x3 convolution is expressed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupForm {
    /// One grouped convolution (torchvision).
    Grouped,
    /// Split on channels, one convolution per group, concat (the paper's TF).
    Branched,
}

/// ResNet-style bottleneck networks: ResNet, SE-ResNet, ResNeXt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetSpec {
    /// Bottleneck blocks per stage.
    pub layers: Vec<usize>,
    #[serde(default = "one")]
    pub groups: usize,
    #[serde(default = "sixty_four")]
    pub width_per_group: usize,
    /// Squeeze-excitation reduction (16 for SE-ResNet); absent: no SE.
    #[serde(default)]
    pub se_reduction: Option<usize>,
    #[serde(default = "grouped")]
    pub group_form: GroupForm,
}

/// ScaleNet: scale aggregation blocks whose branch widths come from a
/// structure file (`[c1, c2, c4, c7, side]` per block).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleNetSpec {
    pub layers: Vec<usize>,
    /// Structure JSON, relative to the spec file.
    pub structure: PathBuf,
    /// Pooling factor of each branch position.
    #[serde(default = "default_scales")]
    pub scales: Vec<usize>,
}

/// A network imported from an ONNX file (`speedbench import`): the file
/// itself, read into the IR when the model is built.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSpec {
    /// The ONNX file, relative to the spec file.
    pub file: PathBuf,
    /// The square input size the file was exported for.
    pub size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Family {
    Resnet(ResNetSpec),
    Scalenet(ScaleNetSpec),
    Onnx(OnnxSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "thousand")]
    pub num_classes: usize,
    pub model: Family,
}

/// A loaded spec: the file plus where it came from, and for ScaleNet the
/// structure rows, checked.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub description: String,
    pub num_classes: usize,
    pub family: Family,
    pub path: PathBuf,
    /// ScaleNet only: per block `[c1, c2, c4, c7, side]`.
    pub structure: Vec<Vec<usize>>,
}

fn one() -> usize {
    1
}
fn sixty_four() -> usize {
    64
}
fn thousand() -> usize {
    1000
}
fn grouped() -> GroupForm {
    GroupForm::Grouped
}
fn default_scales() -> Vec<usize> {
    vec![1, 2, 4, 7]
}

fn field(path: &Path, field: &str, msg: impl Into<String>) -> SpecError {
    SpecError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        msg: msg.into(),
    }
}

fn positive(path: &Path, name: &str, values: &[usize]) -> Result<(), SpecError> {
    if values.is_empty() {
        return Err(field(path, name, "must not be empty"));
    }
    if let Some(i) = values.iter().position(|&v| v == 0) {
        return Err(field(
            path,
            name,
            format!("entry {i} is 0; expected at least 1"),
        ));
    }
    Ok(())
}

impl ModelSpec {
    /// Reads and validates one model file.
    pub fn load(path: &Path) -> Result<ModelSpec, SpecError> {
        Self::parse(&read_file(path)?, path)
    }

    /// Parses a spec's text; `path` names it in errors and locates the
    /// structure file, read from the file system.
    pub fn parse(text: &str, path: &Path) -> Result<ModelSpec, SpecError> {
        Self::parse_with(text, path, &read_file)
    }

    /// Parses a spec's text, reading its structure file (a path beside
    /// `path`) through `read`.
    pub fn parse_with(
        text: &str,
        path: &Path,
        read: &dyn Fn(&Path) -> Result<String, SpecError>,
    ) -> Result<ModelSpec, SpecError> {
        let file: ModelFile = toml::from_str(text)
            .map_err(|e| SpecError::Toml(crate::io::toml_error(path, text, &e)))?;
        if file.num_classes == 0 {
            return Err(field(path, "num_classes", "must be at least 1"));
        }
        let mut structure = Vec::new();
        match &file.model {
            Family::Resnet(r) => {
                positive(path, "model.layers", &r.layers)?;
                positive(path, "model.groups", &[r.groups])?;
                positive(path, "model.width_per_group", &[r.width_per_group])?;
                if let Some(se) = r.se_reduction {
                    positive(path, "model.se_reduction", &[se])?;
                }
                if r.group_form == GroupForm::Branched && r.groups < 2 {
                    return Err(field(
                        path,
                        "model.group_form",
                        "\"branched\" needs groups of 2 or more",
                    ));
                }
            }
            Family::Scalenet(s) => {
                positive(path, "model.layers", &s.layers)?;
                positive(path, "model.scales", &s.scales)?;
                let spath = path.parent().unwrap_or(Path::new(".")).join(&s.structure);
                structure = parse_structure(&read(&spath)?, &spath, &s.layers, s.scales.len())?;
            }
            Family::Onnx(o) => positive(path, "model.size", &[o.size])?,
        }
        Ok(ModelSpec {
            name: file.name,
            description: file.description,
            num_classes: file.num_classes,
            family: file.model,
            path: path.to_path_buf(),
            structure,
        })
    }
}

impl ModelSpec {
    /// An imported model's ONNX file, beside its spec.
    pub fn onnx_file(&self) -> Option<PathBuf> {
        match &self.family {
            Family::Onnx(o) => Some(self.path.parent().unwrap_or(Path::new(".")).join(&o.file)),
            _ => None,
        }
    }
}

/// Reads a file of a models folder.
pub fn read_file(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses a structure JSON; `path` names it in errors.
pub fn parse_structure(
    text: &str,
    path: &Path,
    layers: &[usize],
    scales: usize,
) -> Result<Vec<Vec<usize>>, SpecError> {
    let rows: Vec<Vec<i64>> = serde_json::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        msg: format!("expected a JSON list of [c1, c2, c4, c7, side] rows: {e}"),
    })?;
    let blocks: usize = layers.iter().sum();
    if rows.len() != blocks {
        return Err(SpecError::Parse {
            path: path.to_path_buf(),
            msg: format!(
                "has {} blocks, but layers {:?} need {blocks}",
                rows.len(),
                layers
            ),
        });
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let bad = |msg: String| SpecError::Parse {
                path: path.to_path_buf(),
                msg: format!("block {i}: {msg}"),
            };
            if row.len() != scales + 1 {
                return Err(bad(format!(
                    "expected {} numbers ({scales} channel counts and side), got {}",
                    scales + 1,
                    row.len()
                )));
            }
            if let Some(v) = row.iter().find(|&&v| v < 0) {
                return Err(bad(format!("negative value {v}")));
            }
            if row[..scales].iter().all(|&c| c == 0) {
                return Err(bad("every branch has 0 channels".into()));
            }
            if row[scales] == 0 {
                return Err(bad("side is 0; expected the feature-map size".into()));
            }
            Ok(row.into_iter().map(|v| v as usize).collect())
        })
        .collect()
}
