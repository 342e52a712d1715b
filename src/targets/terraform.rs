//! The `terraform` CLI in an EKS environment's Terraform directory: init, plan, apply of a saved
//! plan, destroy and outputs, with terraform's own progress passed through as it arrives. When
//! environments share one root, each brings its `-var-file`s and `-backend-config` and keeps its
//! own data directory.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostics;
use crate::env::terraform::{self as references, InfraSettings, Outputs, OutputsSource};
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

/// The `TF_DATA_DIR` (relative to the Terraform directory) of an environment that shares its
/// root with others, which it says by naming a backend config. One data directory per
/// environment holds that environment's initialised backend, so `output` or `plan` never reads
/// the state of whichever environment ran `init` last. A `TF_DATA_DIR` the user set wins.
pub fn data_dir(environment: &str, shared_root: bool) -> Option<PathBuf> {
    (shared_root && std::env::var_os("TF_DATA_DIR").is_none())
        .then(|| Path::new(".terraform").join(environment))
}

/// Where and with which files terraform runs for one environment (`terraform.*` of its file).
#[derive(Debug, Clone)]
pub struct Workdir {
    /// The Terraform root module.
    pub dir: PathBuf,
    /// `-var-file`s of plan and destroy.
    pub var_files: Vec<PathBuf>,
    /// `-backend-config` of init.
    pub backend_config: Option<PathBuf>,
    /// `TF_DATA_DIR` to set (see [`data_dir`]).
    pub data_dir: Option<PathBuf>,
}

impl Workdir {
    /// How terraform runs for an environment: [`InfraSettings::require_dir`], and each of
    /// `terraform.var_files` and `terraform.backend_config` a file. Their paths are made
    /// absolute, since terraform reads them after changing into the directory.
    pub fn of(settings: &InfraSettings) -> Result<Workdir, Diagnostics> {
        let dir = settings.require_dir()?.to_path_buf();
        let mut diags = Diagnostics::default();
        let mut file = |field: String, path: &Path, valid: &str| match std::path::absolute(path) {
            Ok(abs) if path.is_file() => Some(abs),
            _ => {
                let message =
                    format!("{} is not a file; expected {valid}, relative to this file", path.display());
                diags.push(settings.sources().error(&field, message));
                None
            }
        };
        let tfvars =
            "a -var-file of terraform plan and destroy, e.g. ../terraform/envs/eks-dev/settings.tfvars";
        let var_files: Vec<PathBuf> = (settings.var_files.iter().enumerate())
            .filter_map(|(i, f)| file(format!("terraform.var_files[{i}]"), f, tfvars))
            .collect();
        let backend =
            "the -backend-config of terraform init, e.g. ../terraform/envs/eks-dev/backend.tfbackend";
        let backend_config = settings
            .backend_config
            .as_ref()
            .and_then(|f| file("terraform.backend_config".into(), f, backend));
        diags.into_result()?;
        let data_dir = data_dir(&settings.name, backend_config.is_some());
        Ok(Workdir { dir, var_files, backend_config, data_dir })
    }
}

/// terraform, run in one directory.
#[derive(Debug, Clone)]
pub struct Terraform {
    program: Program,
    work: Workdir,
    out: Stream,
}

impl Terraform {
    /// Finds terraform (see [`program`]) for an environment's Terraform. terraform's stdout
    /// goes where `out` says (stdout for `infra`, stderr when it is one step of `up`/`down`);
    /// its stderr always goes to stderr.
    pub fn locate(work: Workdir, out: Stream) -> Result<Terraform, TerraformError> {
        let program = Program::locate(&program(), "terraform", TERRAFORM_INSTALL)?;
        Ok(Terraform { program, work, out })
    }

    /// The directory it runs in.
    pub fn dir(&self) -> &Path {
        &self.work.dir
    }

    /// `terraform -chdir=DIR <args>`, shown the way the user could run it.
    pub fn command_line(&self, args: &[&str]) -> String {
        let line = self.program.command_line(&self.args(args));
        match &self.work.data_dir {
            Some(d) => format!("TF_DATA_DIR={} {line}", d.display()),
            None => line,
        }
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![format!("-chdir={}", self.work.dir.display())];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    fn envs(&self) -> Vec<(&'static str, String)> {
        let data_dir = self.work.data_dir.as_ref().map(|d| ("TF_DATA_DIR", d.display().to_string()));
        data_dir.into_iter().collect()
    }

    /// The `-var-file` arguments of a command that evaluates the configuration.
    fn var_file_args(&self) -> Vec<String> {
        self.work.var_files.iter().map(|f| format!("-var-file={}", f.display())).collect()
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
            envs: [("TF_IN_AUTOMATION", "1".to_string())].into_iter().chain(self.envs()).collect(),
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

    /// Runs `terraform init` (with the environment's backend config) unless its data directory
    /// exists: `.terraform`, `$TF_DATA_DIR` or the environment's own (see [`data_dir`]).
    /// Returns whether it ran.
    pub async fn init_if_needed(&self) -> Result<bool, TerraformError> {
        let data_dir = self.work.data_dir.clone().unwrap_or_else(|| {
            std::env::var_os("TF_DATA_DIR").map_or_else(|| PathBuf::from(".terraform"), PathBuf::from)
        });
        let data_dir = self.work.dir.join(data_dir);
        if data_dir.exists() {
            return Ok(false);
        }
        match &self.work.data_dir {
            Some(d) => eprintln!(
                "{} has not been initialised for this environment ({}): running terraform init",
                self.work.dir.display(),
                d.display()
            ),
            None => eprintln!("{} has not been initialised: running terraform init", self.work.dir.display()),
        }
        let backend = self.work.backend_config.as_ref().map(|f| format!("-backend-config={}", f.display()));
        let mut args = vec!["init", "-input=false"];
        args.extend(backend.as_deref());
        if let Err(e) = self.stream(&args, &[0]).await {
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
        let var_files = self.var_file_args();
        let mut args = vec!["plan", "-input=false", "-detailed-exitcode"];
        args.extend(var_files.iter().map(String::as_str));
        args.extend(out_arg.as_deref());
        let code = self.stream(&args, &[0, 2]).await?;
        Ok(if code == 2 { Changes::Some } else { Changes::None })
    }

    /// Applies a plan saved by [`Terraform::plan`]: exactly what was shown, nothing re-planned
    /// (the plan holds its variables; terraform refuses `-var-file` here).
    pub async fn apply(&self, plan: &Path) -> Result<(), TerraformError> {
        let plan = plan.display().to_string();
        self.stream(&["apply", "-input=false", &plan], &[0]).await?;
        Ok(())
    }

    /// `terraform destroy` without terraform's prompt: callers confirm first.
    pub async fn destroy(&self) -> Result<(), TerraformError> {
        let var_files = self.var_file_args();
        let mut args = vec!["destroy", "-input=false", "-auto-approve"];
        args.extend(var_files.iter().map(String::as_str));
        self.stream(&args, &[0]).await?;
        Ok(())
    }

    /// `terraform output -json`: the document as terraform printed it, checked to be one.
    pub async fn outputs(&self) -> Result<String, TerraformError> {
        let args = self.args(&["output", "-json"]);
        let done = self
            .program
            .run(
                &args,
                &RunOptions { stderr: Stream::Stderr(""), envs: self.envs(), ..RunOptions::default() },
            )
            .await?;
        references::parse_outputs(&done.stdout).map_err(|message| TerraformError::BadOutputs {
            command: self.command_line(&["output", "-json"]),
            message,
        })?;
        Ok(done.stdout)
    }

    /// The outputs, as loading takes them. terraform's stderr is kept for the error rather
    /// than streamed: this runs while an environment loads, not as a step of its own.
    pub async fn output_values(&self) -> Result<Outputs, TerraformError> {
        let args = self.args(&["output", "-json"]);
        let done =
            self.program.run(&args, &RunOptions { envs: self.envs(), ..RunOptions::default() }).await?;
        references::parse_outputs(&done.stdout).map_err(|message| TerraformError::BadOutputs {
            command: self.command_line(&["output", "-json"]),
            message,
        })
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

/// Reads the outputs an environment's `${terraform.NAME}` references name, from where its
/// files (or `--terraform-outputs`) say: a saved `terraform output -json`, or a live
/// `terraform output -json` in its Terraform directory (no init: an uninitialised directory has
/// no outputs to give).
pub async fn fetch_outputs(source: &OutputsSource) -> references::Fetched {
    match source {
        OutputsSource::Given(file) | OutputsSource::File(file) => references::read_outputs_file(file),
        OutputsSource::Dir { dir, environment, shared_root } => {
            let work = Workdir {
                dir: dir.clone(),
                var_files: Vec::new(),
                backend_config: None,
                data_dir: data_dir(environment, *shared_root),
            };
            let tf = Terraform::locate(work, Stream::Capture).map_err(|e| e.to_string())?;
            // A document that is not one reads as it does from a file.
            tf.output_values().await.map_err(|e| match e {
                TerraformError::BadOutputs { message, .. } => message,
                other => other.to_string(),
            })
        }
    }
}
