//! Command-line interface: clap definitions, converted to plain settings before any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy an ML training platform to Kubernetes from one environment file.
///
/// An environment file (environments/*.yaml) declares tenants, Kubeflow Trainer runtimes and
/// TrainJobs, custom trainer Jobs, GPU pools, MLflow and Ray. Layer files with -e: a base file
/// first, then overlays (maps merge, lists replace, null removes).
#[derive(Debug, Parser)]
#[command(name = "trainstack", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Examples:\n  \
    trainstack render -e environments/base.yaml -e environments/kind.yaml\n  \
    trainstack render -e environments/base.yaml -e environments/eks-dev.yaml --out deploy/eks-dev\n  \
    trainstack cluster create -e environments/base.yaml -e environments/kind.yaml\n  \
    trainstack validate -e environments/base.yaml -e environments/kind.yaml --crds ../crds")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Environment file; repeat to layer overlays on a base (later files win).
    #[arg(short = 'e', long = "env", value_name = "FILE", global = true)]
    pub env: Vec<PathBuf>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE", global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the environment's target.context, else kind-<cluster_name> on kind).
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, global = true, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More output: -v lists every object as it is processed and unchanged objects in diffs.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// `terraform output -json` file to fill ${terraform.NAME} references (overrides the
    /// environment's terraform setting).
    #[arg(long, value_name = "FILE", global = true)]
    pub terraform_outputs: Option<PathBuf>,
    /// Directory of templates that replace built-in ones of the same name (e.g. DIR/mlflow/deployment.yaml).
    #[arg(long, value_name = "DIR", global = true)]
    pub templates: Option<PathBuf>,
}

/// Output format of a command's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable (for render: the YAML stream).
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the environment's manifests: one YAML stream on stdout, or one file per object.
    ///
    /// Output order is stable: apply phase (CRDs, namespaces, config, operators, workloads),
    /// then kind, namespace, name. The same inputs always give byte-identical output.
    Render(RenderArgs),
    /// Check the environment, job specs and rendered objects; exit 0 when valid, 1 otherwise.
    ///
    /// Built-in kinds must parse into the Kubernetes API types with no field dropped; custom
    /// resources are checked against CRD schemas from --crds and from add-ons in the set.
    Validate(ValidateArgs),
    /// Show what apply would change: server-side dry-run of every object against the cluster.
    ///
    /// Exit code 0: in sync; 2: changes present (including objects prune would delete); 1: error.
    /// Secret values are redacted unless --show-secrets.
    Diff(DiffArgs),
    /// Make the cluster match the environment: server-side apply in phases, then wait and prune.
    ///
    /// Phases: CRDs (waited until Established), Namespaces, config (RBAC, ConfigMaps, Secrets,
    /// PVCs), add-on operators (waited until ready), custom resources and workloads. Only objects
    /// that differ are written; a re-run with no changes writes nothing.
    Apply(ApplyArgs),
    /// Delete everything the environment renders, in reverse phase order, waiting for finalizers.
    Delete(DeleteArgs),
    /// Drift and readiness of every rendered object, per component.
    Status(StatusArgs),
    /// Create, delete or show the local kind cluster a kind environment describes.
    ///
    /// The cluster config is generated from the environment: one control-plane with the ingress
    /// ports, `target.workers` general workers, and per GPU pool labelled and tainted workers that
    /// stand in for GPU nodes. Needs the `kind` and `docker` CLIs (set TRAINSTACK_KIND or
    /// TRAINSTACK_DOCKER to use other executables).
    #[command(after_help = "Examples:\n  \
        trainstack cluster config -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack cluster create -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack apply -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack cluster delete -e environments/base.yaml -e environments/kind.yaml --yes")]
    Cluster(KindClusterArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write one file per object under DIR (DIR/<NN-phase>/<namespace>/<kind>-<name>.yaml)
    /// for Argo CD or Flux, replacing what an earlier render wrote there.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub addons: AddonArgs,
}

/// Options of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Directory of CRD YAML files (the pinned upstream versions); repeatable.
    #[arg(long, value_name = "DIR")]
    pub crds: Vec<PathBuf>,
    #[command(flatten)]
    pub addons: AddonArgs,
}

/// Add-on options shared by commands that render.
#[derive(Debug, Args)]
pub struct AddonArgs {
    /// Leave out upstream add-ons (operators and their CRDs).
    #[arg(long)]
    pub no_addons: bool,
    /// Cache directory for downloaded add-ons (default: $XDG_CACHE_HOME/trainstack).
    #[arg(long, value_name = "DIR", env = "TRAINSTACK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Options shared by commands that talk to the cluster.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Objects diffed or applied at once within a phase.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Bound on each wait, e.g. 90s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// Options of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print Secret values instead of redacting them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Diff as if taking over fields other field managers own.
    #[arg(long)]
    pub force_conflicts: bool,
}

/// Options of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Take ownership of fields other field managers own (otherwise a conflict fails the object).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Show what would happen (server-side dry-run); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects this environment applied before and no longer declares (after every apply succeeded).
    #[arg(long)]
    pub prune: bool,
    /// Let --prune delete Namespaces.
    #[arg(long, requires = "prune")]
    pub prune_namespaces: bool,
    /// Let --prune delete CustomResourceDefinitions (and with them all their objects).
    #[arg(long, requires = "prune")]
    pub prune_crds: bool,
    /// Do not wait for operators and workloads to become ready (CRDs are always waited on).
    #[arg(long)]
    pub no_wait: bool,
    /// Also wait for Jobs and TrainJobs to complete.
    #[arg(long, conflicts_with = "no_wait")]
    pub wait_jobs: bool,
}

/// Options of `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Options of `cluster`.
#[derive(Debug, Args)]
pub struct KindClusterArgs {
    /// What to do with the cluster.
    #[command(subcommand)]
    pub action: KindClusterAction,
}

/// `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum KindClusterAction {
    /// Create the kind cluster (unless it exists), wait for its nodes and load local images.
    ///
    /// Runs `kind create cluster` with the generated config, waits until every node is Ready,
    /// then `kind load docker-image` for each of `target.load_images`. The kubeconfig context
    /// `kind-<cluster_name>` is then ready for `apply`. Rerunning leaves an existing cluster as it
    /// is and loads the images again.
    #[command(after_help = "Examples:\n  \
        trainstack cluster create -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack cluster create -e environments/base.yaml -e environments/kind.yaml --timeout 10m")]
    Create(KindCreateArgs),
    /// Delete the kind cluster and everything in it (a missing cluster is not an error).
    #[command(after_help = "Examples:\n  \
        trainstack cluster delete -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack cluster delete -e environments/base.yaml -e environments/kind.yaml --yes")]
    Delete(KindDeleteArgs),
    /// Print the generated kind cluster config (YAML; JSON with -o json) without running kind.
    #[command(after_help = "Examples:\n  \
        trainstack cluster config -e environments/base.yaml -e environments/kind.yaml\n  \
        trainstack cluster config -e environments/base.yaml -e environments/kind.yaml > kind.yaml\n  \
        kind create cluster --config kind.yaml")]
    Config,
}

/// Options of `cluster create`.
#[derive(Debug, Args)]
pub struct KindCreateArgs {
    /// Return once kind has started the nodes, without waiting for them to be Ready.
    #[arg(long)]
    pub no_wait: bool,
    /// Bound on the wait for the control-plane and then for all nodes, e.g. 90s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration, conflicts_with = "no_wait")]
    pub timeout: std::time::Duration,
}

/// Options of `cluster delete`.
#[derive(Debug, Args)]
pub struct KindDeleteArgs {
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Parses `90`, `90s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration; write e.g. 90s, 5m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} has an unknown unit; use s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}
