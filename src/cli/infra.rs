//! The `infra` subcommands (terraform plan, apply, output, destroy), apart from the rest of the
//! command line they share the environment files and output format with.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{EnvFiles, OutputArgs};

/// Options of `infra`.
#[derive(Debug, Args)]
pub struct InfraArgs {
    /// What to run.
    #[command(subcommand)]
    pub action: InfraAction,
}

/// `infra` subcommands.
#[derive(Debug, Subcommand)]
pub enum InfraAction {
    /// Show what `infra apply` would change (`terraform plan`).
    ///
    /// Exit code 0: no changes; 2: changes present; 1: error (as `diff`). Shows terraform's own
    /// output.
    #[command(after_help = "Examples:
  trainstack infra plan -e environments/base.yaml -e environments/eks-dev.yaml")]
    Plan {
        #[command(flatten)]
        files: EnvFiles,
    },
    /// Plan, confirm, and apply exactly the plan shown; then refresh `terraform.outputs_file`.
    ///
    /// On a terminal it asks before applying; elsewhere a plan with changes needs --yes. When the
    /// environment sets `terraform.outputs_file`, the new outputs are written there, so the next
    /// render reads them.
    #[command(after_help = "Examples:
  trainstack infra apply -e environments/base.yaml -e environments/eks-dev.yaml
  trainstack infra apply -e environments/base.yaml \\
      -e environments/eks-dev.yaml --yes")]
    Apply {
        #[command(flatten)]
        files: EnvFiles,
        #[command(flatten)]
        args: InfraApplyArgs,
    },
    /// Print the Terraform outputs (a table; `-o json` gives the `terraform output -json` document).
    ///
    /// stdout carries only the outputs: terraform's own output (an init included) goes to
    /// stderr.
    #[command(after_help = "Examples:
  trainstack infra output -e environments/base.yaml \\
      -e environments/eks-dev.yaml
  trainstack infra output -e environments/base.yaml \\
      -e environments/eks-dev.yaml -o json
  trainstack infra output -e environments/base.yaml \\
      -e environments/eks-dev.yaml --write tf.json")]
    Output {
        #[command(flatten)]
        files: EnvFiles,
        #[command(flatten)]
        args: InfraOutputArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Destroy the environment's Terraform infrastructure (`terraform destroy`).
    ///
    /// Delete the platform first (`trainstack delete`, or use `trainstack down` for both): load
    /// balancers and volumes the cluster created are not Terraform's and can block the destroy.
    #[command(after_help = "Examples:
  trainstack infra destroy -e environments/base.yaml \\
      -e environments/eks-dev.yaml")]
    Destroy {
        #[command(flatten)]
        files: EnvFiles,
        #[command(flatten)]
        args: InfraDestroyArgs,
    },
}

/// Options of `infra apply`.
#[derive(Debug, Args)]
pub struct InfraApplyArgs {
    /// Apply without asking (required when not on a terminal and the plan has changes).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Options of `infra output`.
#[derive(Debug, Args)]
pub struct InfraOutputArgs {
    /// Also write the `terraform output -json` document to FILE (for --terraform-outputs or
    /// the environment's terraform.outputs_file).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// Options of `infra destroy`.
#[derive(Debug, Args)]
pub struct InfraDestroyArgs {
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}
