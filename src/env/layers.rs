//! Reading and layering environment files: each file parsed with the positions of its keys,
//! merged by the layering rules, and typed with every error at the line that set the field.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::sources::{Layer, Sources};
use crate::env::{check, merge};
use crate::yaml::{self, Pos, PosIndex};

/// The problems of a run that stops early, in reading order. Never empty: a value fails to type
/// only after an error was recorded for it.
pub(super) fn failed(mut diags: Diagnostics) -> Diagnostics {
    diags.sort();
    diags
}

/// Layered environment files before Terraform references are resolved or anything is typed.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged value.
    pub value: yaml::Value,
    /// Where each setting came from.
    pub sources: Sources,
}

/// Reads and layers environment files (as [`crate::env::read`] does), for commands such as
/// `infra` that run before the Terraform outputs the files reference exist.
pub fn merge_files(files: &[PathBuf]) -> Result<Merged, Diagnostics> {
    let (merged, diags) = merge_all(files)?;
    diags.into_result()?;
    Ok(merged)
}

/// Layers every file that can be read; the problems of the others are returned beside the
/// result so that the readable files are still checked.
pub(super) fn merge_all(files: &[PathBuf]) -> Result<(Merged, Diagnostics), Diagnostics> {
    if files.is_empty() {
        return Err(Diagnostic {
            file: "<command line>".into(),
            pos: None,
            field: String::new(),
            message: "no environment file given; pass -e environments/base.yaml -e environments/kind.yaml"
                .into(),
        }
        .into());
    }
    let mut sources = Sources { layers: Vec::new(), document_fallback: true };
    let mut merged = yaml::Value::Null;
    let mut diags = Diagnostics::default();
    for path in files {
        let (value, index) = match read_located(path) {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if !value.is_mapping() && !value.is_null() {
            diags.push(Diagnostic {
                file: path.display().to_string(),
                pos: Some(Pos { line: 1, column: 1 }),
                field: String::new(),
                message: "an environment file must be a mapping of keys (name, target, components, ...)"
                    .into(),
            });
            continue;
        }
        // An empty or comment-only file is an overlay that changes nothing (merging its null
        // would wipe the layers before it).
        if !value.is_null() {
            merge::merge(&mut merged, value);
        }
        sources.layers.push(Layer { path: path.clone(), index });
    }
    Ok((Merged { value: merged, sources }, diags))
}

/// Deserialises a merged value; every type error points at the layer and line that set the field.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    value: yaml::Value,
    sources: &Sources,
) -> Result<T, Diagnostics> {
    let typed = yaml::from_value_all::<T>(value, Vec::new());
    let mut diags = Diagnostics::default();
    for e in &typed.errors {
        diags.push(check::type_diagnostic(e, sources));
    }
    match typed.value {
        Some(v) if diags.is_empty() => Ok(v),
        _ => Err(failed(diags)),
    }
}

/// The `*.yaml`/`*.yml` spec files in `dir` (job specs, trial batches), in file name order; a
/// directory that cannot be read is an error at `key`, the environment key that named it.
pub(crate) fn spec_files(
    sources: &Sources,
    key: &str,
    dir: &Path,
    what: &str,
) -> Result<Vec<PathBuf>, Diagnostics> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostics::from(sources.error(key, format!("cannot read {what} directory {}: {e}", dir.display())))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// One spec file (a job spec, a trial batch) read and typed, with what its checks need.
pub(crate) struct SpecFile<T> {
    pub spec: T,
    /// The file alone, for diagnostics at its own lines.
    pub sources: Sources,
    /// Paths left out of `spec` because they did not fit its type.
    pub dropped: Vec<String>,
    /// Where its `name:` stands, if it has one.
    pub name_pos: Option<Pos>,
}

/// Reads one spec file and types it as `T`. Read, YAML and type errors go to `diags`; what
/// typed is still returned so that one mistyped field hides nothing else (`None` when nothing
/// could be typed).
pub(crate) fn read_spec<T: serde::de::DeserializeOwned>(
    path: &Path,
    diags: &mut Diagnostics,
) -> Option<SpecFile<T>> {
    let (value, index) = match read_located(path) {
        Ok(v) => v,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let typed = yaml::from_value_all::<T>(value, Vec::new());
    let name_pos = index.value("name");
    let sources = Sources::single(path.to_path_buf(), index);
    for e in &typed.errors {
        diags.push(check::type_diagnostic(e, &sources));
    }
    Some(SpecFile { spec: typed.value?, sources, dropped: typed.dropped, name_pos })
}

/// Reads and parses one YAML file the user wrote, with the positions of its keys; a problem is
/// a diagnostic naming the file (and the line, for YAML errors).
pub(crate) fn read_located(path: &Path) -> Result<(yaml::Value, PosIndex), Diagnostic> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
        file: file.clone(),
        pos: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    yaml::parse_located(&text).map_err(|e| match e.field {
        Some(field) => Diagnostic { file, pos: e.pos, field, message: e.message },
        None => Diagnostic {
            file,
            pos: e.pos,
            field: String::new(),
            message: format!("invalid YAML: {}", e.message),
        },
    })
}
