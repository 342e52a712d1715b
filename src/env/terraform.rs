//! `${terraform.NAME}` references in environment files, filled from the outputs of
//! `terraform output -json` that the caller read from the [`OutputsSource`] the files name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::layers::{self, Merged};
use crate::env::model::{TargetKind, TerraformSource};
use crate::env::sources::Sources;
use crate::yaml::{self, Value};

/// A reference: `${terraform.NAME}`, NAME as Terraform spells output names.
static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{terraform\.([A-Za-z_][A-Za-z0-9_-]*)\}").expect("valid regex"));

/// Anything a user may have meant as a reference: `${...}` (closed or not), `$word.word`, and
/// `{terraform.x}` or `{{ terraform.x }}` without the `$`. What is not exactly a [`REFERENCE`]
/// would reach the manifests as literal text.
static LOOKALIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_-]+|\{\{?\s*terraform\s*\.\s*[A-Za-z0-9_-]*\s*\}?\}?")
        .expect("valid regex")
});

/// Outputs of `terraform output -json`: name -> value.
pub type Outputs = BTreeMap<String, serde_json::Value>;

/// Where the outputs an environment's references name are read from, as its files and the
/// options say. Loading never reads them itself: the caller fetches them (a file, or
/// `terraform output -json`, which is a process) and hands them to [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputsSource {
    /// `--terraform-outputs FILE`: a saved `terraform output -json`, overriding the files.
    Given(PathBuf),
    /// `terraform.outputs_file`, resolved against the file that set it.
    File(PathBuf),
    /// `terraform output -json` in `terraform.dir` (resolved against the file that set it).
    Dir {
        /// The Terraform root module.
        dir: PathBuf,
        /// The environment's name, which names its own data directory on a shared root.
        environment: String,
        /// Whether the environment shares its root with others (it names a backend config).
        shared_root: bool,
    },
}

/// What the caller read from an [`OutputsSource`]: the outputs, or what went wrong (the
/// message is placed at the setting that named the source).
pub type Fetched = Result<Outputs, String>;

/// The source of the outputs `root` references: `given` (`--terraform-outputs`) when set, else
/// the `terraform` block's. `None` when nothing references an output (kind environments need
/// no Terraform) or no source is configured (which [`resolve`] reports).
pub fn outputs_source(root: &Value, sources: &Sources, given: Option<&Path>) -> Option<OutputsSource> {
    if references(root).is_empty() {
        return None;
    }
    if let Some(file) = given {
        return Some(OutputsSource::Given(file.to_path_buf()));
    }
    let tf = root.get("terraform");
    let file = tf.and_then(|t| t.get("outputs_file")).and_then(Value::as_str);
    let dir = tf.and_then(|t| t.get("dir")).and_then(Value::as_str);
    match (file, dir) {
        (Some(f), _) => Some(OutputsSource::File(sources.base_dir("terraform.outputs_file").join(f))),
        (None, Some(d)) => Some(OutputsSource::Dir {
            dir: sources.base_dir("terraform.dir").join(d),
            environment: root.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            shared_root: tf.and_then(|t| t.get("backend_config")).is_some(),
        }),
        (None, None) => None,
    }
}

/// The strings of `root` that hold a reference and no look-alike.
fn references(root: &Value) -> Vec<Vec<Step>> {
    let mut strings = Vec::new();
    collect(root, &mut Vec::new(), &mut strings);
    strings
        .into_iter()
        .filter(|(_, text)| look_alikes(text).is_empty() && REFERENCE.is_match(text))
        .map(|(steps, _)| steps)
        .collect()
}

/// Replaces every `${terraform.NAME}` in `root` with the output's value, from `fetched`: what
/// the caller read from `source`, the [`outputs_source`] of `root`. Every problem goes to
/// `diags`; a value that could not be resolved is removed from `root` and its path returned, so
/// that later checks do not report the missing value again.
///
/// # Panics
///
/// When `root` names a source and nothing was fetched from it: callers read the source first.
pub fn resolve(
    root: &mut Value,
    sources: &Sources,
    source: Option<&OutputsSource>,
    fetched: Option<Fetched>,
    diags: &mut Diagnostics,
) -> Vec<String> {
    let mut strings = Vec::new();
    collect(root, &mut Vec::new(), &mut strings);
    let mut unresolved = Vec::new();
    let mut refs = Vec::new();
    for (steps, text) in strings {
        let path = display(&steps);
        let bad = look_alikes(&text);
        if let Some(first) = bad.first() {
            diags.push(sources.error(&path, not_a_reference(first)));
            unresolved.push(steps);
        } else if REFERENCE.is_match(&text) {
            refs.push(steps);
        }
    }
    if let Some(first) = refs.first() {
        let outputs = match source {
            None => Err(Diagnostics::from(sources.error(
                &display(first),
                "references a Terraform output, but no outputs are configured: set terraform.outputs_file or terraform.dir, or pass --terraform-outputs FILE",
            ))),
            Some(source) => fetched
                .expect("the outputs of the source an environment names are fetched before it loads")
                .map_err(|m| fetch_error(source, sources, m)),
        };
        match outputs {
            Err(d) => {
                diags.0.extend(d.0);
                unresolved.extend(refs);
            }
            Ok(outputs) if outputs.is_empty() => {
                let files: Vec<String> = sources.files().map(|f| format!("-e {}", f.display())).collect();
                diags.push(sources.error(
                    &display(first),
                    format!(
                        "the Terraform state has no outputs yet, so no ${{terraform.NAME}} reference can be filled: run `trainstack infra apply {}` first, or pass --terraform-outputs FILE",
                        files.join(" ")
                    ),
                ));
                unresolved.extend(refs);
            }
            Ok(outputs) => {
                for steps in refs {
                    let Some(v) = get_mut(root, &steps) else { continue };
                    let Value::String(text) = v.clone() else { continue };
                    match expand(&text, &outputs) {
                        Ok(new) => *v = new,
                        Err(m) => {
                            diags.push(sources.error(&display(&steps), m));
                            unresolved.push(steps);
                        }
                    }
                }
            }
        }
    }
    unresolved
        .into_iter()
        .map(|mut steps| {
            // A list item cannot go without shifting the paths after it: the list goes.
            while matches!(steps.last(), Some(Step::Index(_))) {
                steps.pop();
            }
            if let Some((Step::Key(key), parents)) = steps.split_last() {
                if let Some(Value::Mapping(m)) = get_mut(root, parents) {
                    m.remove(key.as_str());
                }
            }
            display(&steps)
        })
        .collect()
}

/// The look-alikes in `text` that are not exactly a reference.
fn look_alikes(text: &str) -> Vec<&str> {
    LOOKALIKE
        .find_iter(text)
        .map(|m| m.as_str())
        .filter(|m| REFERENCE.find(m).is_none_or(|r| r.as_str() != *m))
        .collect()
}

/// What is wrong with a look-alike, and the reference it probably meant.
fn not_a_reference(text: &str) -> String {
    let name = text
        .rsplit_once('.')
        .map(|(_, n)| n.trim_matches(|c: char| c == '}' || c.is_whitespace()))
        .filter(|n| !n.is_empty());
    let hint = match name {
        Some(n) => format!("did you mean ${{terraform.{n}}}?"),
        None => "a reference is written ${terraform.NAME}".into(),
    };
    format!("{text:?} is not a Terraform reference and would be rendered literally; {hint}")
}

/// One step of a path into the document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[2].c`, as diagnostics name fields.
fn display(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every string in the document, with its path.
fn collect(v: &Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, String)>) {
    match v {
        Value::String(s) => out.push((path.clone(), s.clone())),
        Value::Mapping(m) => {
            for (k, v) in m {
                if let Some(k) = k.as_str() {
                    path.push(Step::Key(k.to_string()));
                    collect(v, path, out);
                    path.pop();
                }
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                path.push(Step::Index(i));
                collect(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(root: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut node = root;
    for step in steps {
        node = match step {
            Step::Key(key) => node.get_mut(key.as_str())?,
            Step::Index(i) => node.get_mut(*i)?,
        };
    }
    Some(node)
}

/// A problem reading the outputs, at the setting that named where they are.
fn fetch_error(source: &OutputsSource, sources: &Sources, message: String) -> Diagnostics {
    match source {
        OutputsSource::Given(file) => Diagnostics::from(Diagnostic {
            file: file.display().to_string(),
            pos: None,
            field: String::new(),
            message,
        }),
        OutputsSource::File(path) => {
            sources.error("terraform.outputs_file", format!("{}: {message}", path.display())).into()
        }
        OutputsSource::Dir { .. } => sources.error("terraform.dir", message).into(),
    }
}

/// Reads a saved `terraform output -json`.
pub fn read_outputs_file(path: &Path) -> Result<Outputs, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read Terraform outputs: {e}"))?;
    parse_outputs(&text)
}

/// Parses the JSON of `terraform output -json` into name -> value.
pub fn parse_outputs(text: &str) -> Result<Outputs, String> {
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        format!("not the JSON of `terraform output -json` (line {}, column {}): {e}", e.line(), e.column())
    })?;
    raw.into_iter()
        .map(|(k, v)| match v.get("value") {
            Some(value) => Ok((k, value.clone())),
            None => {
                Err(format!("output {k:?} has no \"value\"; expected the format of `terraform output -json`"))
            }
        })
        .collect()
}

/// What `trainstack infra` needs of an environment. Read from the layered files without
/// resolving `${terraform.NAME}`: the outputs those references name may not exist yet.
#[derive(Debug, Clone)]
pub struct InfraSettings {
    /// Environment name.
    pub name: String,
    /// Target kind (infra is for EKS only).
    pub kind: TargetKind,
    /// `terraform.dir`, resolved against the file that set it.
    pub dir: Option<PathBuf>,
    /// `terraform.outputs_file`, resolved against the file that set it.
    pub outputs_file: Option<PathBuf>,
    /// `terraform.var_files`, resolved against the file that set them.
    pub var_files: Vec<PathBuf>,
    /// `terraform.backend_config`, resolved against the file that set it.
    pub backend_config: Option<PathBuf>,
    sources: Sources,
}

#[derive(Deserialize)]
struct InfraView {
    name: String,
    target: TargetView,
    #[serde(default)]
    terraform: Option<TerraformSource>,
}

#[derive(Deserialize)]
struct TargetView {
    kind: TargetKind,
}

/// Reads the settings of [`InfraSettings`] from the environment files.
pub fn infra_settings(files: &[PathBuf]) -> Result<InfraSettings, Diagnostics> {
    let Merged { value, sources } = layers::merge_files(files)?;
    let view: InfraView = layers::typed(value, &sources)?;
    let tf = view.terraform.unwrap_or_default();
    let resolve = |field: &str, p: Option<String>| p.map(|p| sources.base_dir(field).join(p));
    Ok(InfraSettings {
        name: view.name,
        kind: view.target.kind,
        dir: resolve("terraform.dir", tf.dir),
        outputs_file: resolve("terraform.outputs_file", tf.outputs_file),
        var_files: tf
            .var_files
            .into_iter()
            .map(|f| sources.base_dir("terraform.var_files").join(f))
            .collect(),
        backend_config: resolve("terraform.backend_config", tf.backend_config),
        sources,
    })
}

impl InfraSettings {
    /// The Terraform directory; an error at `terraform.dir` when it is unset or not a directory.
    pub fn require_dir(&self) -> Result<&Path, Diagnostics> {
        match &self.dir {
            None => Err(self
                .sources
                .key_error(
                    "terraform",
                    "terraform.dir is not set: `trainstack infra` needs the environment's Terraform directory, e.g. `terraform: {dir: ../terraform}`",
                )
                .into()),
            Some(d) if !d.is_dir() => Err(self
                .sources
                .error("terraform.dir", format!("{} is not a directory (the path is relative to this file)", d.display()))
                .into()),
            Some(d) => Ok(d),
        }
    }

    /// Where each setting came from, to point errors at the line that set it.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }
}

/// Expands the references in one string. A string that is exactly one reference takes the
/// output's own type (a list of subnet ids stays a list).
fn expand(s: &str, outputs: &Outputs) -> Result<Value, String> {
    let mut out = String::new();
    let mut last = 0;
    for cap in REFERENCE.captures_iter(s) {
        let (whole_match, name) = (cap.get(0).expect("group 0 always matches"), &cap[1]);
        let value = outputs.get(name).ok_or_else(|| {
            let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
            format!("Terraform output {name:?} does not exist; available outputs: {}", known.join(", "))
        })?;
        out.push_str(&s[last..whole_match.start()]);
        let whole = whole_match.start() == 0 && whole_match.end() == s.len();
        match value {
            serde_json::Value::String(v) => out.push_str(v),
            other if whole => return Ok(yaml::to_value(other)),
            serde_json::Value::Number(n) => out.push_str(&n.to_string()),
            serde_json::Value::Bool(b) => out.push_str(&b.to_string()),
            _ => {
                return Err(format!("Terraform output {name:?} is not a string and cannot be part of {s:?}"))
            }
        }
        last = whole_match.end();
    }
    out.push_str(&s[last..]);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Outputs {
        parse_outputs(r#"{"bucket":{"sensitive":false,"type":"string","value":"b-1"},"subnets":{"type":["list","string"],"value":["s1","s2"]}}"#).unwrap()
    }

    #[test]
    fn expands_inside_strings_and_keeps_types_for_whole_references() {
        assert_eq!(
            expand("s3://${terraform.bucket}/x", &outputs()).unwrap(),
            Value::String("s3://b-1/x".into())
        );
        assert!(expand("${terraform.subnets}", &outputs()).unwrap().is_sequence());
        assert!(expand("x-${terraform.subnets}", &outputs()).is_err());
        assert_eq!(
            expand("${terraform.nope}", &outputs()).unwrap_err(),
            "Terraform output \"nope\" does not exist; available outputs: bucket, subnets"
        );
    }

    #[test]
    fn look_alikes_are_found_and_references_are_not() {
        let bad = |s: &str| -> Vec<String> { look_alikes(s).into_iter().map(not_a_reference).collect() };
        assert!(bad("s3://${terraform.bucket}/x-${terraform.b_2}").is_empty());
        assert!(bad("plain text, $5 and {braces}").is_empty());
        for s in [
            "${terrafrom.bucket}",
            "${ terraform.bucket }",
            "$terraform.bucket",
            "{terraform.bucket}",
            "${terraform.bucket",
            "{{ terraform.bucket }}",
        ] {
            let found = bad(s);
            assert_eq!(found.len(), 1, "{s}: {found:?}");
            assert!(found[0].ends_with("did you mean ${terraform.bucket}?"), "{s}: {found:?}");
        }
        assert!(bad("${HOME}")[0].ends_with("a reference is written ${terraform.NAME}"));
    }
}
