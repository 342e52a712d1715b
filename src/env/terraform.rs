//! `${terraform.NAME}` references in environment files, filled from `terraform output -json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::model::{TargetKind, TerraformSource};
use crate::env::{LoadOptions, Merged, Sources};
use crate::targets::terraform::Workdir;
use crate::yaml::{self, Value};

const PREFIX: &str = "${terraform.";

/// Outputs of `terraform output -json`: name -> value.
pub type Outputs = BTreeMap<String, serde_json::Value>;

/// Replaces every `${terraform.NAME}` in `root` with the output's value.
/// Outputs are read only when a reference exists, so kind environments need no Terraform.
pub fn resolve(root: &mut Value, sources: &Sources, opts: &LoadOptions) -> Result<(), Diagnostics> {
    let mut refs = Vec::new();
    collect(root, String::new(), &mut refs);
    if refs.is_empty() {
        return Ok(());
    }
    let outputs = load_outputs(root, sources, opts, &refs[0].0)?;
    let mut diags = Diagnostics::default();
    substitute(root, String::new(), &outputs, sources, &mut diags);
    diags.into_result()
}

fn collect(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) if s.contains(PREFIX) => out.push((path, s.clone())),
        Value::Mapping(m) => {
            for (k, v) in m {
                if let Some(k) = k.as_str() {
                    collect(v, join(&path, k), out);
                }
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                collect(v, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn load_outputs(
    root: &Value,
    sources: &Sources,
    opts: &LoadOptions,
    first_ref: &str,
) -> Result<Outputs, Diagnostics> {
    if let Some(file) = &opts.terraform_outputs {
        return read_outputs_file(file).map_err(|m| {
            Diagnostics::from(Diagnostic {
                file: file.display().to_string(),
                pos: None,
                field: String::new(),
                message: m,
            })
        });
    }
    let tf = root.get("terraform");
    let file = tf.and_then(|t| t.get("outputs_file")).and_then(Value::as_str);
    let dir = tf.and_then(|t| t.get("dir")).and_then(Value::as_str);
    match (file, dir) {
        (Some(f), _) => {
            let path = sources.base_dir("terraform.outputs_file").join(f);
            read_outputs_file(&path).map_err(|m| sources.error("terraform.outputs_file", format!("{}: {m}", path.display())).into())
        }
        (None, Some(d)) => {
            let path = sources.base_dir("terraform.dir").join(d);
            let shared_root = tf.and_then(|t| t.get("backend_config")).is_some();
            let name = root.get("name").and_then(Value::as_str).unwrap_or_default();
            let data_dir = crate::targets::terraform::data_dir(name, shared_root);
            run_terraform_output(&path, data_dir.as_deref()).map_err(|m| sources.error("terraform.dir", m).into())
        }
        (None, None) => Err(sources
            .error(
                first_ref,
                "references a Terraform output, but no outputs are configured: set terraform.outputs_file or terraform.dir, or pass --terraform-outputs FILE",
            )
            .into()),
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

fn run_terraform_output(dir: &Path, data_dir: Option<&Path>) -> Result<Outputs, String> {
    let mut command = Command::new(crate::targets::terraform::program());
    command.arg(format!("-chdir={}", dir.display())).args(["output", "-json"]);
    if let Some(d) = data_dir {
        command.env("TF_DATA_DIR", d);
    }
    let out = command.output().map_err(|e| {
        format!(
            "cannot run `terraform output -json` in {}: {e} (is terraform installed? see {})",
            dir.display(),
            crate::targets::terraform::TERRAFORM_INSTALL
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "`terraform output -json` in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_outputs(&String::from_utf8_lossy(&out.stdout))
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
    let Merged { value, sources } = crate::env::merge_files(files)?;
    let view: InfraView = crate::env::typed(value, &sources)?;
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

    /// How terraform runs for this environment: [`InfraSettings::require_dir`], and each of
    /// `terraform.var_files` and `terraform.backend_config` a file. Their paths are made
    /// absolute, since terraform reads them after changing into the directory.
    pub fn workdir(&self) -> Result<Workdir, Diagnostics> {
        let dir = self.require_dir()?.to_path_buf();
        let mut diags = Diagnostics::default();
        let mut file = |field: String, path: &Path, valid: &str| match std::path::absolute(path) {
            Ok(abs) if path.is_file() => Some(abs),
            _ => {
                let message =
                    format!("{} is not a file; expected {valid}, relative to this file", path.display());
                diags.push(self.sources.error(&field, message));
                None
            }
        };
        let tfvars =
            "a -var-file of terraform plan and destroy, e.g. ../terraform/envs/eks-dev/settings.tfvars";
        let var_files: Vec<PathBuf> = (self.var_files.iter().enumerate())
            .filter_map(|(i, f)| file(format!("terraform.var_files[{i}]"), f, tfvars))
            .collect();
        let backend =
            "the -backend-config of terraform init, e.g. ../terraform/envs/eks-dev/backend.tfbackend";
        let backend_config =
            self.backend_config.as_ref().and_then(|f| file("terraform.backend_config".into(), f, backend));
        diags.into_result()?;
        let data_dir = crate::targets::terraform::data_dir(&self.name, backend_config.is_some());
        Ok(Workdir { dir, var_files, backend_config, data_dir })
    }
}

fn substitute(v: &mut Value, path: String, outputs: &Outputs, sources: &Sources, diags: &mut Diagnostics) {
    match v {
        Value::String(s) if s.contains(PREFIX) => match expand(s, outputs) {
            Ok(new) => *v = new,
            Err(m) => diags.push(sources.error(&path, m)),
        },
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                if let Some(k) = k.as_str() {
                    substitute(v, join(&path, k), outputs, sources, diags);
                }
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter_mut().enumerate() {
                substitute(v, format!("{path}[{i}]"), outputs, sources, diags);
            }
        }
        _ => {}
    }
}

/// Expands the references in one string. A string that is exactly one reference takes the
/// output's own type (a list of subnet ids stays a list).
fn expand(s: &str, outputs: &Outputs) -> Result<Value, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find(PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PREFIX.len()..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated reference in {s:?}; write ${{terraform.NAME}}"))?;
        let name = &after[..end];
        let value = outputs.get(name).ok_or_else(|| {
            let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
            format!("Terraform output {name:?} does not exist; available outputs: {}", known.join(", "))
        })?;
        let whole = out.is_empty() && after[end + 1..].is_empty();
        match value {
            serde_json::Value::String(v) => out.push_str(v),
            other if whole => return Ok(yaml::to_value(other)),
            serde_json::Value::Number(n) => out.push_str(&n.to_string()),
            serde_json::Value::Bool(b) => out.push_str(&b.to_string()),
            _ => {
                return Err(format!("Terraform output {name:?} is not a string and cannot be part of {s:?}"))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
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
}
