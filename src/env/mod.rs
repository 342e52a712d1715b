//! Environment files: loading, layering, Terraform references and validation.

pub mod addon_source;
pub mod check;
pub mod merge;
pub mod model;
pub mod names;
pub mod quantity;
pub mod terraform;
pub mod validate;
pub mod versions;

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::yaml::{self, Pos, PosIndex};

pub use model::Environment;

/// One file of a layered environment, with the positions of everything it wrote.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The path as the user gave it.
    pub path: PathBuf,
    index: PosIndex,
}

/// The files an environment was merged from, to point errors at the line that set a field.
#[derive(Debug, Clone)]
pub struct Sources {
    layers: Vec<Layer>,
    /// Whether a field that no file wrote, nor any parent of it below the top, points at the
    /// document itself (environment layers) or at no line (a job file, where such a problem is
    /// named by its field alone).
    document_fallback: bool,
}

impl Sources {
    /// The layer that last wrote `field` (or its nearest written parent), and the position.
    /// `key` picks the key's position rather than the value's.
    pub fn locate(&self, field: &str, key: bool) -> (Option<&Layer>, Option<Pos>) {
        let mut path = field.to_string();
        loop {
            for layer in self.layers.iter().rev() {
                if layer.index.contains(&path) {
                    let pos = if key { layer.index.key(&path) } else { layer.index.value(&path) };
                    return (Some(layer), pos);
                }
            }
            match parent_path(&path) {
                Some(p) if self.document_fallback || !p.is_empty() => path = p,
                _ => return (self.layers.last(), None),
            }
        }
    }

    /// A diagnostic for `field`, pointing at the value that set it.
    pub fn error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(field, message, false)
    }

    /// A diagnostic for `field`, pointing at its key (for unknown or misplaced keys).
    pub fn key_error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(field, message, true)
    }

    fn diag(&self, field: &str, message: impl Into<String>, key: bool) -> Diagnostic {
        let (layer, pos) = self.locate(field, key);
        Diagnostic {
            file: layer.map(|l| l.path.display().to_string()).unwrap_or_default(),
            pos,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Directory of the file that set `field`: relative paths in that field resolve against it.
    pub fn base_dir(&self, field: &str) -> PathBuf {
        let (layer, _) = self.locate(field, false);
        layer.and_then(|l| l.path.parent()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    }

    /// The sources of one file read on its own (a job spec).
    pub(crate) fn single(path: PathBuf, index: PosIndex) -> Sources {
        Sources { layers: vec![Layer { path, index }], document_fallback: false }
    }

    /// The files, in layering order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.layers.iter().map(|l| l.path.as_path())
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> None.
fn parent_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}

/// Options that change how an environment is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A `terraform output -json` file that overrides the environment's `terraform` setting.
    pub terraform_outputs: Option<PathBuf>,
}

/// A loaded, merged, resolved and validated environment.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    /// The typed environment.
    pub env: Environment,
    /// Where each setting came from.
    pub sources: Sources,
}

/// Environment files read and layered, before their `${terraform.NAME}` references are filled:
/// the caller reads the outputs from [`Layered::outputs_source`] (a file, or `terraform output`,
/// which loading never runs) and hands them to [`Layered::load`].
#[derive(Debug)]
pub struct Layered {
    merged: Merged,
    problems: Diagnostics,
    outputs: Option<terraform::OutputsSource>,
}

/// Reads and layers environment files, and finds where the outputs they reference come from.
pub fn read(files: &[PathBuf], opts: &LoadOptions) -> Result<Layered, Diagnostics> {
    let (merged, problems) = merge_all(files)?;
    if !problems.is_empty() && merged.value.is_null() {
        return Err(failed(problems));
    }
    // References are resolved only in a complete environment: a file that could not be read
    // may set where the outputs are.
    let outputs = if problems.is_empty() {
        terraform::outputs_source(&merged.value, &merged.sources, opts)
    } else {
        None
    };
    Ok(Layered { merged, problems, outputs })
}

impl Layered {
    /// Where the outputs the files reference are read from; `None` when nothing needs them.
    pub fn outputs_source(&self) -> Option<&terraform::OutputsSource> {
        self.outputs.as_ref()
    }

    /// Resolves Terraform references with `outputs` (read from [`Layered::outputs_source`],
    /// `None` when it names none), deserialises and validates. Every problem found is returned
    /// at once; an environment with any problem is never returned.
    pub fn load(self, outputs: Option<terraform::Fetched>) -> Result<LoadedEnv, Diagnostics> {
        let Partial { loaded, problems, .. } = self.load_partial(outputs)?;
        problems.into_result()?;
        Ok(loaded.expect("an environment that does not type has a problem recorded"))
    }

    /// [`Layered::load`], returning what typed beside the problems.
    pub fn load_partial(self, outputs: Option<terraform::Fetched>) -> Result<Partial, Diagnostics> {
        let Layered { merged: Merged { mut value, sources }, problems: mut diags, outputs: source } = self;
        let unreadable_file = !diags.is_empty();
        let unresolved = if unreadable_file {
            Vec::new()
        } else {
            terraform::resolve(&mut value, &sources, source.as_ref(), outputs, &mut diags)
        };
        let typed = yaml::from_value_all::<Environment>(value, unresolved);
        for e in &typed.errors {
            // A file that could not be read may well hold the missing field.
            if !(unreadable_file && e.message.starts_with("missing field")) {
                diags.push(check::type_diagnostic(e, &sources));
            }
        }
        let env = match typed.value {
            // Checks of an environment without one of its files would report what that file fixes.
            Some(env) if !unreadable_file => env,
            _ => return Err(failed(diags)),
        };
        let mut env = env;
        env.derive_defaults();
        diags.0.extend(validate::check(&env, &sources, &typed.dropped).0);
        Ok(Partial { loaded: Some(LoadedEnv { env, sources }), problems: diags, unreadable: typed.dropped })
    }
}

/// An environment read as far as it goes, so that inputs checked against it (job specs) are
/// still checked when it has problems.
#[derive(Debug)]
pub struct Partial {
    /// The environment, when it typed. With problems it is only fit to check other inputs
    /// against, never to render.
    pub loaded: Option<LoadedEnv>,
    /// Every problem found.
    pub problems: Diagnostics,
    /// Fields that could not be read (wrong type, unresolvable reference): defaults stand in
    /// for them in `loaded`.
    pub unreadable: Vec<String>,
}

/// Whether `field` is `path` or lies inside it.
pub fn within(field: &str, path: &str) -> bool {
    field.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The problems of a run that stops early, in reading order. Never empty: a value fails to type
/// only after an error was recorded for it.
fn failed(mut diags: Diagnostics) -> Diagnostics {
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

/// Reads and layers environment files (as [`read`] does), for commands such as
/// `infra` that run before the Terraform outputs the files reference exist.
pub fn merge_files(files: &[PathBuf]) -> Result<Merged, Diagnostics> {
    let (merged, diags) = merge_all(files)?;
    diags.into_result()?;
    Ok(merged)
}

/// Layers every file that can be read; the problems of the others are returned beside the
/// result so that the readable files are still checked.
fn merge_all(files: &[PathBuf]) -> Result<(Merged, Diagnostics), Diagnostics> {
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

/// serde's messages name Rust types (`u32`, `a string`); say it in the user's terms.
pub(crate) fn explain_serde(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid value: integer `") {
        if let Some((number, ty)) = rest.split_once("`, expected ") {
            let max = match ty {
                "u32" => Some(u64::from(u32::MAX)),
                "u64" => Some(u64::MAX),
                _ => None,
            };
            if let Some(max) = max {
                return if number.starts_with('-') {
                    format!("{number} is negative; expected a whole number from 0 to {max}")
                } else {
                    format!("{number} is too large; expected a whole number from 0 to {max}")
                };
            }
        }
    }
    message
        .replace("expected u32", "expected a whole number ≥ 0")
        .replace("expected u64", "expected a whole number ≥ 0")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace("expected struct ", "expected a mapping: ")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a mapping")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Top-level modules the pure core (`env/`, `jobs/`) may use: anything else is an adapter
    /// (`targets/`, `aws/`, `addons/`, `engine/`, ...) or sits above the core (`render/`,
    /// `commands/`), and importing it would close a cycle back into `env/`.
    const CORE: &[&str] = &["env", "jobs", "diag", "yaml", "manifest"];

    /// The top-level modules a file names through `crate::module` or `crate::{module, ...}`.
    fn crate_modules(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let name: String =
                    name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push(name);
            }
        }
        found
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn env_and_jobs_import_no_adapter_and_not_render() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src/env"), &mut files);
        rust_files(&root.join("src/jobs"), &mut files);
        let mut outside = Vec::new();
        for file in &files {
            let shown = file.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(file).unwrap();
            // Unit tests may reach further than the code they test; comments are not imports.
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for module in crate_modules(&code) {
                if !CORE.contains(&module.as_str()) {
                    outside.push(format!("{shown}: crate::{module}"));
                }
            }
        }
        assert!(outside.is_empty(), "the pure core imports from outside it:\n{}", outside.join("\n"));
    }

    #[test]
    fn crate_paths_are_read_in_both_forms() {
        assert_eq!(
            super::tests::crate_modules(
                "use crate::aws::s3;\nuse crate::{diag, render::x};\ncrate::targets::kind"
            ),
            ["aws", "diag", "render", "targets"]
        );
    }
}
