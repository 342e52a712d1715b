//! `infra plan|apply|output|destroy`: the Terraform of an EKS environment, in its `terraform.dir`
//! with its `terraform.var_files` and `terraform.backend_config`.

use std::io::Write;
use std::process::ExitCode;

use crate::env::model::TargetKind;
use crate::env::terraform::{self as tf_refs, InfraSettings};
use crate::settings::{Format, InfraAction, InfraCommand};
use crate::targets::kind::target_kind_name;
use crate::targets::process::Stream;
use crate::targets::terraform::{self, Changes, Terraform, TerraformError, Workdir};
use crate::Error;

/// Runs one `infra` subcommand.
pub async fn run(command: &InfraCommand) -> Result<ExitCode, Error> {
    let action = &command.action;
    // `infra output` prints the outputs on stdout, in every format: terraform's own output (the
    // init of a fresh directory) must not land in front of them.
    let out = match action {
        InfraAction::Output { .. } => Stream::Stderr(""),
        _ => Stream::Stdout(""),
    };
    let infra = Infra::open(&command.files, out)?;
    match action {
        InfraAction::Plan => Ok(match infra.plan().await? {
            Changes::None => ExitCode::SUCCESS,
            Changes::Some => ExitCode::from(2),
        }),
        InfraAction::Apply { yes } => infra.apply(*yes).await,
        InfraAction::Output { write, format } => output(&infra, write.as_deref(), *format).await,
        InfraAction::Destroy { yes } => {
            if !yes && !infra.confirm_destroy()? {
                eprintln!("not confirmed; nothing was destroyed");
                return Ok(ExitCode::from(1));
            }
            infra.destroy().await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An EKS environment's Terraform: its settings and the terraform that runs in its directory.
pub struct Infra {
    settings: InfraSettings,
    tf: Terraform,
}

impl Infra {
    /// Reads the environment's name, target and `terraform` settings (its `${terraform.NAME}`
    /// references are not resolved: the outputs may not exist yet) and finds terraform. Fails
    /// for kind environments, a missing `terraform.dir` and a missing terraform binary, before
    /// anything runs. terraform's stdout goes where `out` says.
    pub fn open(files: &[std::path::PathBuf], out: Stream) -> Result<Infra, Error> {
        let settings = tf_refs::infra_settings(files)?;
        if settings.kind != TargetKind::Eks {
            return Err(TerraformError::NotEks {
                environment: settings.name.clone(),
                kind: target_kind_name(settings.kind),
            }
            .into());
        }
        let tf = Terraform::locate(Workdir::of(&settings)?, out)?;
        Ok(Infra { settings, tf })
    }

    /// Environment name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// `terraform plan`, after `init` when needed.
    pub async fn plan(&self) -> Result<Changes, Error> {
        self.tf.init_if_needed().await?;
        Ok(self.tf.plan(None).await?)
    }

    /// Plans into a saved plan, asks (unless `yes`) and applies exactly that plan; then writes
    /// the outputs to `terraform.outputs_file` when the environment sets one.
    pub async fn apply(&self, yes: bool) -> Result<ExitCode, Error> {
        self.tf.init_if_needed().await?;
        let plan = Terraform::plan_file()?;
        match self.tf.plan(Some(plan.path())).await? {
            Changes::None => {
                eprintln!(
                    "the infrastructure of environment {:?} is up to date; nothing to apply",
                    self.name()
                )
            }
            Changes::Some => {
                let action = format!("apply the Terraform plan of environment {:?}", self.name());
                let prompt = format!("Apply this plan in {}? Type yes to confirm:", self.tf.dir().display());
                if !yes && !super::confirm(&action, &prompt, "yes")? {
                    eprintln!("not confirmed; nothing was applied");
                    return Ok(ExitCode::from(1));
                }
                self.tf.apply(plan.path()).await?;
            }
        }
        if let Some(path) = &self.settings.outputs_file {
            terraform::write_outputs(path, &self.tf.outputs().await?)?;
            eprintln!("wrote the Terraform outputs to {} (terraform.outputs_file)", path.display());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Asks for the environment name before a destroy (refuses when not on a terminal).
    pub fn confirm_destroy(&self) -> Result<bool, Error> {
        let prompt = format!(
            "Destroy all Terraform-managed infrastructure of environment {:?} in {} (EKS cluster, database, buckets)? Type the environment name to confirm:",
            self.name(),
            self.tf.dir().display()
        );
        super::confirm(
            &format!("destroy the infrastructure of environment {:?}", self.name()),
            &prompt,
            self.name(),
        )
    }

    /// `terraform destroy`, after `init` when needed. Callers confirm first.
    pub async fn destroy(&self) -> Result<(), Error> {
        self.tf.init_if_needed().await?;
        self.tf.destroy().await?;
        eprintln!("the infrastructure of environment {:?} is destroyed", self.name());
        Ok(())
    }
}

/// Prints the outputs (and writes them with `--write`).
async fn output(infra: &Infra, write: Option<&std::path::Path>, format: Format) -> Result<ExitCode, Error> {
    infra.tf.init_if_needed().await?;
    let document = infra.tf.outputs().await?;
    if let Some(path) = write {
        terraform::write_outputs(path, &document)?;
        eprintln!("wrote the Terraform outputs to {}", path.display());
    }
    let parsed: serde_json::Value = serde_json::from_str(&document).map_err(anyhow::Error::from)?;
    let text = match format {
        Format::Json => format!("{}\n", document.trim_end()),
        Format::Yaml => crate::yaml::to_string(&parsed),
        Format::Text => outputs_table(&parsed),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// `NAME  VALUE` rows; strings as they are, other values as compact JSON, sensitive values hidden.
fn outputs_table(document: &serde_json::Value) -> String {
    let Some(outputs) = document.as_object() else { return String::new() };
    if outputs.is_empty() {
        return "no outputs (has `trainstack infra apply` run?)\n".into();
    }
    let rows: Vec<(&str, String)> = outputs
        .iter()
        .map(|(name, o)| {
            let value = if o["sensitive"].as_bool() == Some(true) {
                "<sensitive>".to_string()
            } else {
                match &o["value"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            };
            (name.as_str(), value)
        })
        .collect();
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(4);
    let mut out = format!("{:w$}  VALUE\n", "NAME");
    for (name, value) in rows {
        out.push_str(&format!("{name:w$}  {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_strings_raw_lists_as_json_and_hides_sensitive_values() {
        let doc = serde_json::json!({
            "cluster_name": {"sensitive": false, "type": "string", "value": "trainstack-dev"},
            "private_subnet_ids": {"sensitive": false, "type": ["list", "string"], "value": ["subnet-1", "subnet-2"]},
            "token": {"sensitive": true, "type": "string", "value": "s3cr3t"},
        });
        assert_eq!(
            outputs_table(&doc),
            "NAME                VALUE\n\
             cluster_name        trainstack-dev\n\
             private_subnet_ids  [\"subnet-1\",\"subnet-2\"]\n\
             token               <sensitive>\n"
        );
    }
}
