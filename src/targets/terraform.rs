//! The `terraform` CLI in an EKS environment's Terraform directory: init, plan, apply of a saved
//! plan, destroy and outputs, with terraform's own progress passed through as it arrives.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::targets::process::{self, ProcessError, Program, RunOptions, Stream};

/// Where to install Terraform from, shown when it is missing.
pub const TERRAFORM_INSTALL: &str = "https://developer.hashicorp.com/terraform/install";

/// The terraform executable: `TRAINSTACK_TERRAFORM` (a wrapper, a pinned release, a fake in
/// tests), else `terraform` on PATH.
pub fn program() -> OsString {
    process::program_from_env("TRAINSTACK_TERRAFORM", "terraform")
}

/// Errors running Terraform.
#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    /// The environment is not an EKS environment.
    #[error(
        "environment {environment:?} targets {kind}; `trainstack infra` runs the Terraform of EKS environments \
         (a kind cluster is made with `trainstack cluster create` or `trainstack up`)"
    )]
    NotEks {
        /// Environment name.
        environment: String,
        /// Its target kind.
        kind: &'static str,
    },
    /// terraform is missing, or a terraform command failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// `terraform output -json` printed something else.
    #[error("`{command}` did not print a `terraform output -json` document: {message}")]
    BadOutputs {
        /// The command line.
        command: String,
        /// What is wrong.
        message: String,
    },
    /// The outputs could not be written.
    #[error("cannot write the Terraform outputs to {path}: {source}")]
    WriteOutputs {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No temporary file for the saved plan.
    #[error("cannot create a temporary file for the Terraform plan: {0}")]
    PlanFile(#[source] std::io::Error),
}

/// Whether a plan has changes (`-detailed-exitcode`: 0 none, 2 some).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// Infrastructure matches the configuration.
    None,
    /// The plan would change something.
    Some,
}

/// terraform, run in one directory.
#[derive(Debug, Clone)]
pub struct Terraform {
    program: Program,
    dir: PathBuf,
    out: Stream,
}

impl Terraform {
    /// Finds terraform (see [`program`]) for the Terraform directory `dir`. terraform's stdout
    /// goes where `out` says (stdout for `infra`, stderr when it is one step of `up`/`down`);
    /// its stderr always goes to stderr.
    pub fn locate(dir: &Path, out: Stream) -> Result<Terraform, TerraformError> {
        let program = Program::locate(&program(), "terraform", TERRAFORM_INSTALL)?;
        Ok(Terraform { program, dir: dir.to_path_buf(), out })
    }

    /// The directory it runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `terraform -chdir=DIR <args>`, shown the way the user could run it.
    pub fn command_line(&self, args: &[&str]) -> String {
        self.program.command_line(&self.args(args))
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![format!("-chdir={}", self.dir.display())];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// Runs a subcommand with its output streamed. Colour only when it lands on a terminal;
    /// `TF_IN_AUTOMATION` drops terraform's "now run terraform apply" hints, which are wrong
    /// advice when trainstack runs it.
    async fn stream(&self, subcommand: &[&str], success: &'static [i32]) -> Result<i32, TerraformError> {
        let terminal = match self.out {
            Stream::Stdout(_) => std::io::stdout().is_terminal(),
            _ => std::io::stderr().is_terminal(),
        };
        let mut args = subcommand.to_vec();
        if !terminal {
            args.insert(1, "-no-color");
        }
        let opts = RunOptions {
            stdout: self.out,
            stderr: Stream::Stderr(""),
            success,
            envs: vec![("TF_IN_AUTOMATION", "1")],
        };
        let args = self.args(&args);
        let run = self.program.run(&args, &opts);
        tokio::pin!(run);
        // Ctrl-C reaches terraform too (same process group), which then stops cleanly and
        // saves its state. trainstack must outlive it: dying would close the pipes terraform
        // writes to and kill it mid-save.
        loop {
            tokio::select! {
                done = &mut run => return Ok(done?.code),
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: waiting for terraform to stop and save its state");
                }
            }
        }
    }

    /// Runs `terraform init` unless the directory has been initialised (its `.terraform`, or
    /// `$TF_DATA_DIR`, exists). Returns whether it ran.
    pub async fn init_if_needed(&self) -> Result<bool, TerraformError> {
        let data_dir =
            std::env::var_os("TF_DATA_DIR").map_or_else(|| PathBuf::from(".terraform"), PathBuf::from);
        let data_dir = self.dir.join(data_dir);
        if data_dir.exists() {
            return Ok(false);
        }
        eprintln!("{} has not been initialised: running terraform init", self.dir.display());
        if let Err(e) = self.stream(&["init", "-input=false"], &[0]).await {
            // A failed init leaves a partial data directory behind, which would make the next
            // run skip init; it did not exist before, so it goes.
            let _ = std::fs::remove_dir_all(&data_dir);
            return Err(e);
        }
        Ok(true)
    }

    /// `terraform plan -detailed-exitcode`, saving the plan to `out` when given.
    pub async fn plan(&self, out: Option<&Path>) -> Result<Changes, TerraformError> {
        let out_arg = out.map(|p| format!("-out={}", p.display()));
        let mut args = vec!["plan", "-input=false", "-detailed-exitcode"];
        args.extend(out_arg.as_deref());
        let code = self.stream(&args, &[0, 2]).await?;
        Ok(if code == 2 { Changes::Some } else { Changes::None })
    }

    /// Applies a plan saved by [`Terraform::plan`]: exactly what was shown, nothing re-planned.
    pub async fn apply(&self, plan: &Path) -> Result<(), TerraformError> {
        let plan = plan.display().to_string();
        self.stream(&["apply", "-input=false", &plan], &[0]).await?;
        Ok(())
    }

    /// `terraform destroy` without terraform's prompt: callers confirm first.
    pub async fn destroy(&self) -> Result<(), TerraformError> {
        self.stream(&["destroy", "-input=false", "-auto-approve"], &[0]).await?;
        Ok(())
    }

    /// `terraform output -json`: the document as terraform printed it, checked to be one.
    pub async fn outputs(&self) -> Result<String, TerraformError> {
        let args = self.args(&["output", "-json"]);
        let done = self
            .program
            .run(&args, &RunOptions { stderr: Stream::Stderr(""), ..RunOptions::default() })
            .await?;
        crate::env::terraform::parse_outputs(&done.stdout).map_err(|message| TerraformError::BadOutputs {
            command: self.program.command_line(&args),
            message,
        })?;
        Ok(done.stdout)
    }

    /// A temporary file for a saved plan (plans hold secret values: it is private to the user
    /// and removed when dropped).
    pub fn plan_file() -> Result<tempfile::NamedTempFile, TerraformError> {
        tempfile::Builder::new()
            .prefix("trainstack-")
            .suffix(".tfplan")
            .tempfile()
            .map_err(TerraformError::PlanFile)
    }
}

/// Writes a `terraform output -json` document where `--terraform-outputs` or
/// `terraform.outputs_file` reads it.
pub fn write_outputs(path: &Path, document: &str) -> Result<(), TerraformError> {
    let err = |source| TerraformError::WriteOutputs { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, document).map_err(err)
}
