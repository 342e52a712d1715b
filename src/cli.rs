//! Command-line interface: clap definitions, converted to plain settings before any work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

mod infra;

pub use infra::{InfraAction, InfraApplyArgs, InfraArgs, InfraDestroyArgs, InfraOutputArgs};

/// Deploy an ML training platform to Kubernetes from one environment file.
///
/// An environment file (environments/*.yaml) declares tenants, Kubeflow Trainer runtimes and
/// TrainJobs, custom trainer Jobs, GPU pools, MLflow, Ray and per-tenant Optuna HPO workspaces.
/// Layer files with -e: a base file first, then overlays (maps merge, lists replace, null
/// removes).
#[derive(Debug, Parser)]
#[command(name = "trainstack", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Examples:
  trainstack render -e environments/base.yaml -e environments/kind.yaml
  trainstack render -e environments/base.yaml -e environments/eks-dev.yaml \\
      --out deploy/eks-dev
  trainstack validate -e environments/base.yaml -e environments/kind.yaml
  trainstack up -e environments/base.yaml -e environments/kind.yaml
  trainstack infra plan -e environments/base.yaml -e environments/eks-dev.yaml
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The environment files alone (`infra`, which reads only the environment's name, target and
/// `terraform` settings).
#[derive(Debug, Clone, Args)]
pub struct EnvFiles {
    /// Environment file; repeat to layer overlays on a base (later files win).
    #[arg(short = 'e', long = "env", value_name = "FILE")]
    pub env: Vec<PathBuf>,
}

/// The environment, its `${terraform.NAME}` references resolved.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub files: EnvFiles,
    /// `terraform output -json` file to fill ${terraform.NAME} references (overrides the
    /// environment's terraform setting).
    #[arg(long, value_name = "FILE")]
    pub terraform_outputs: Option<PathBuf>,
}

/// Template overrides, for commands that render.
#[derive(Debug, Clone, Args)]
pub struct TemplateArgs {
    /// Directory of templates that replace built-in ones of the same name (e.g.
    /// DIR/mlflow/deployment.yaml; the variables they receive: docs/templates.md).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// The kubeconfig file alone (`cluster create|delete`, which use the context kind makes).
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArg {
    /// Kubeconfig file (default: $KUBECONFIG, a path list merged like kubectl, then
    /// ~/.kube/config). On an eks target trainstack connects through the EKS API
    /// (DescribeCluster and an AWS token) unless --kubeconfig or --context is given or the
    /// environment sets target.context.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Where the cluster is, for commands that talk to it.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    #[command(flatten)]
    pub kubeconfig: KubeconfigArg,
    /// Kubeconfig context (default: the environment's target.context, else
    /// kind-<cluster_name> on kind).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// `-o`, for commands that print a result.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `-v`, for commands that report per object.
#[derive(Debug, Clone, Args)]
pub struct VerboseArgs {
    /// More output: -v lists every object as it is processed and unchanged objects in diffs.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Output format of a command's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable (for render: the YAML stream).
    #[default]
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The subcommands. Each takes only the shared flag groups it uses; `settings.rs` turns them
/// into the plain settings the commands take.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the environment's manifests: one YAML stream on stdout, or one file per object.
    ///
    /// Output order is stable: apply phase (CRDs, namespaces, config, operators, workloads),
    /// then kind, namespace, name. The same inputs always give byte-identical output. With
    /// --out, -o json|yaml prints the files written.
    #[command(after_help = "Examples:
  trainstack render -e environments/base.yaml -e environments/kind.yaml
  trainstack render -e environments/base.yaml -e environments/kind.yaml -o json
  trainstack render -e environments/base.yaml -e environments/eks-dev.yaml \\
      --out deploy/eks-dev")]
    Render {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: RenderArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Check the environment, job specs and rendered objects; exit 0 when valid, 1 otherwise.
    ///
    /// Built-in kinds must parse into the Kubernetes API types with no field dropped; custom
    /// resources are checked against the CRD schemas the add-ons in the set bring (the pinned
    /// add-on versions, downloaded once into the add-on cache) and those of --crds. -o json
    /// prints the problems, those of the environment and job specs included.
    #[command(after_help = "Examples:
  trainstack validate -e environments/base.yaml -e environments/kind.yaml
  trainstack validate -e environments/base.yaml -e environments/kind.yaml \\
      -o json
  trainstack validate -e environments/base.yaml -e environments/kind.yaml \\
      --no-addons --crds my-crds/")]
    Validate {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: ValidateArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Pin kustomize add-ons: `addons lock` builds each once and records its sha256.
    Addons(AddonsArgs),
    /// Show what apply would change: server-side dry-run of every object against the cluster.
    ///
    /// Exit code 0: in sync; 2: changes present (including objects prune would delete and fields
    /// another field manager changed, shown with that manager named); 1: error.
    /// Secret values are redacted unless --show-secrets. On an eks target the AWS side is diffed
    /// too: S3 buckets (settings drift) and GPU node groups (create, update, replacement needed,
    /// prune).
    #[command(after_help = "Examples:
  trainstack diff -e environments/base.yaml -e environments/kind.yaml
  trainstack diff -e environments/base.yaml \\
      -e environments/eks-dev.yaml -o json")]
    Diff {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: DiffArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Make the cluster match the environment: server-side apply in phases, then wait and prune.
    ///
    /// Phases: CRDs (waited until Established), Namespaces, config (RBAC, ConfigMaps, Secrets,
    /// PVCs), add-on operators (waited until ready), custom resources and workloads. Only objects
    /// that differ are written; a re-run with no changes writes nothing. On an eks target, S3
    /// buckets and GPU node groups are reconciled first (node groups waited until ACTIVE);
    /// --prune also deletes node groups this environment created and no longer declares.
    #[command(after_help = "Examples:
  trainstack apply -e environments/base.yaml -e environments/kind.yaml --prune
  trainstack apply -e environments/base.yaml -e environments/eks-dev.yaml \\
      --node-group-timeout 45m")]
    Apply {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: ApplyArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Delete everything the environment renders, in reverse phase order, waiting for finalizers.
    ///
    /// On an eks target with node groups or buckets, the EKS node groups this environment created
    /// (tagged trainstack.io/environment=<name>) are deleted next, once every object is gone, and
    /// waited for (--node-group-timeout). Node groups other tools or environments created are
    /// never touched; S3 buckets are never deleted (they hold data): the trainstack-managed ones
    /// left are listed with the command that removes them.
    #[command(after_help = "Examples:
  trainstack delete -e environments/base.yaml \\
      -e environments/kind.yaml --dry-run
  trainstack delete -e environments/base.yaml -e environments/eks-dev.yaml \\
      --yes --node-group-timeout 45m")]
    Delete {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: DeleteArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Drift and readiness of every rendered object, per component.
    ///
    /// Exit code 0: everything in sync and ready; 2: anything drifted, missing or not ready; 1:
    /// error. On an eks target the declared S3 buckets and GPU node groups get rows too (read
    /// calls only).
    #[command(after_help = "Examples:
  trainstack status -e environments/base.yaml -e environments/kind.yaml
  trainstack status -e environments/base.yaml \\
      -e environments/eks-dev.yaml -o json")]
    Status {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: StatusArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Prove the deployed platform works: run smoke checks per component and report each.
    ///
    /// Checks: cluster (API reachable, server version 1.N or 1.N+1 for target.kubernetes_version
    /// "1.N"), objects (every rendered object present, ready and not drifted), rbac
    /// (SubjectAccessReview matrix of the backend and tenant ServiceAccounts), gpu (EKS GPU
    /// pools: allocatable nvidia.com/gpu, an nvidia-smi pod, the device plugin), trainer
    /// (ClusterTrainingRuntimes and a tiny TrainJob reaching Complete), mlflow (/health and an
    /// experiment/run/param/metric/artifact round trip), ray (dashboard and a tiny job through
    /// the Jobs API) and hpo (a 3-trial Optuna study in the first tenant's HPO workspace: every
    /// trial COMPLETE, its pod_name one of the pods that ran, its note holding the logged line,
    /// an artifact stored; batch and study removed afterwards); mlflow, ray and the HPO dashboard
    /// are reached through the API server's service proxy, so no port-forward or ingress is
    /// needed, except MLflow with basic auth (the proxy drops the Authorization header): then
    /// --mlflow-url or the ingress host. Each is passed, failed (with the reason and what to look
    /// at) or skipped (with why). Objects the checks create carry the label
    /// trainstack.io/smoke=<run id> in namespace trainstack-smoke and are deleted afterwards,
    /// also after a failure or Ctrl-C (exit 130); the hpo check's batch (in the tenant's
    /// namespace, same label) and study are removed the same way. Exit code 0 only when no
    /// check failed.
    #[command(after_help = "Examples:
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml \\
      --only cluster,rbac
  trainstack smoke -e environments/base.yaml -e environments/eks-dev.yaml \\
      --junit smoke.xml --timeout 10m
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml \\
      --skip trainer,ray -o json
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml \\
      --only trainer --keep
  trainstack smoke -e environments/base.yaml -e environments/kind.yaml \\
      --only mlflow --mlflow-url http://127.0.0.1:5000")]
    Smoke {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: SmokeArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Create, delete or show the local kind cluster a kind environment describes.
    ///
    /// The cluster config is generated from the environment: one control-plane with the ingress
    /// ports, `target.workers` general workers, and per GPU pool labelled and tainted workers that
    /// stand in for GPU nodes. Needs the `kind` and `docker` CLIs (set TRAINSTACK_KIND or
    /// TRAINSTACK_DOCKER to use other executables).
    #[command(after_help = "Examples:
  trainstack cluster config -e environments/base.yaml -e environments/kind.yaml
  trainstack cluster create -e environments/base.yaml -e environments/kind.yaml
  trainstack apply -e environments/base.yaml -e environments/kind.yaml
  trainstack cluster delete -e environments/base.yaml \\
      -e environments/kind.yaml --yes")]
    Cluster(KindClusterArgs),
    /// Run the Terraform of an EKS environment (its `terraform.dir`): plan, apply, outputs, destroy.
    ///
    /// With `terraform.backend_config` set, the root is shared: init gets `-backend-config`,
    /// plan and destroy get the `terraform.var_files` as `-var-file`s, and the environment keeps
    /// its own data directory (`TF_DATA_DIR=.terraform/<name>`). `terraform init` runs first when
    /// that data directory (else `.terraform`) does not exist. terraform's own output
    /// is passed through as it runs (to stderr for `infra output`, whose stdout is the outputs).
    /// Set TRAINSTACK_TERRAFORM to use another executable. A file written by `infra output
    /// --write FILE` feeds `render`, `apply`, ... through `--terraform-outputs FILE`.
    #[command(after_help = "Examples:
  trainstack infra plan -e environments/base.yaml -e environments/eks-dev.yaml
  trainstack infra apply -e environments/base.yaml -e environments/eks-dev.yaml
  trainstack infra output -e environments/base.yaml \\
      -e environments/eks-dev.yaml --write tf.json")]
    Infra(InfraArgs),
    /// Bring an environment up: the cluster (kind) or the base infrastructure (EKS), apply, smoke.
    ///
    /// Steps on kind: `cluster create`, `apply`, `smoke`. On EKS: `infra apply`, `apply`,
    /// `smoke`. Each step is the same as running that command; a failed step (a failed smoke
    /// check included) stops the run, exits 1 and says which commands resume it. Every step is
    /// safe to rerun. Takes apply's options; --no-smoke leaves the smoke step out, and the
    /// --smoke-* options, --junit and --mlflow-url are passed to it.
    #[command(mut_arg("dry_run", |a| a.hide(true)))]
    #[command(after_help = "Examples:
  trainstack up -e environments/base.yaml -e environments/kind.yaml
  trainstack up -e environments/base.yaml -e environments/kind.yaml \\
      --prune --timeout 10m
  trainstack up -e environments/base.yaml -e environments/kind.yaml \\
      --junit smoke.xml --smoke-timeout 10m
  trainstack up -e environments/base.yaml -e environments/eks-dev.yaml \\
      --yes --smoke-skip gpu
  trainstack up -e environments/base.yaml -e environments/eks-dev.yaml \\
      --yes --no-smoke")]
    Up {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: UpArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Tear an environment down: delete its objects, then the kind cluster or the Terraform infrastructure.
    ///
    /// Steps: `delete` of every object the environment renders (on EKS with the node groups it
    /// created), then `cluster delete` (kind) or `terraform destroy` (EKS). Asks once, on a terminal, for the environment name; elsewhere it
    /// refuses without --yes.
    #[command(mut_arg("dry_run", |a| a.hide(true)))]
    #[command(after_help = "Examples:
  trainstack down -e environments/base.yaml -e environments/kind.yaml
  trainstack down -e environments/base.yaml -e environments/eks-dev.yaml --yes")]
    Down {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: DownArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        verbose: VerboseArgs,
    },
    /// Run Optuna trial batches in a tenant's HPO workspace and read their status.
    ///
    /// A trial batch (a spec file, docs/hpo.md; those in components.hpo.batches_dir are also
    /// applied by `apply`) is an Indexed Job whose pods each run one trial against the tenant's Optuna storage server.
    Hpo(HpoArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write one file per object, DIR/<NN-phase>/<namespace>/<kind>-<name>.yaml (_cluster for
    /// cluster-scoped objects), for Argo CD or Flux, replacing what an earlier render wrote there.
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
#[derive(Debug, Clone, Args)]
pub struct AddonArgs {
    /// Leave out upstream add-ons (operators and their CRDs).
    #[arg(long)]
    pub no_addons: bool,
    /// Cache directory for add-on downloads and kustomize builds (default: $XDG_CACHE_HOME/trainstack).
    #[arg(long, value_name = "DIR", env = "TRAINSTACK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Options shared by commands that talk to the cluster.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Objects diffed or applied at once within a phase; also the most API requests of a kind
    /// (reads, writes) in flight, fewer while the server throttles.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// The bound on the waits of commands that wait (`apply`, `delete`); `diff` and `status` only
/// read.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Bound on each wait, e.g. 90s, 5m, 1h30m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Options of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print Secret values instead of redacting them (never those read from AWS Secrets
    /// Manager for aws.secrets).
    #[arg(long)]
    pub show_secrets: bool,
    /// Diff as if taking over fields other field managers own, without naming the managers.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Exit 1 when the API server sends any warning (a PodSecurity level the objects would
    /// violate, a deprecated API version); the diff is still printed, with the warnings.
    /// Implies --server-dry-run-all: only a dry-run draws the server's warnings.
    #[arg(long)]
    pub warnings_as_errors: bool,
    /// Plan every existing object with a server-side dry-run, instead of deciding provably
    /// unchanged objects locally from their managedFields.
    #[arg(long)]
    pub server_dry_run_all: bool,
}

/// Options of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
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
    /// Fail (exit 1) when the API server sends any warning: every object is dry-run first and
    /// nothing is written if one warns. An object that can only be dry-run once its namespace
    /// or CRD exists is checked just before its own write: if it warns, it is not written and
    /// the phases after it are not applied. Implies --server-dry-run-all.
    #[arg(long)]
    pub warnings_as_errors: bool,
    /// Plan every existing object with a server-side dry-run, instead of deciding provably
    /// unchanged objects locally from their managedFields.
    #[arg(long)]
    pub server_dry_run_all: bool,
    /// Bound on each EKS node group wait (create, update, delete take minutes), e.g. 20m, 1h.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub node_group_timeout: Duration,
}

/// Options of `delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Bound on the wait for each EKS node group this environment created to be deleted, e.g. 20m, 1h.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub node_group_timeout: Duration,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Options of `smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub addons: AddonArgs,
    /// Run only these checks (comma-separated or repeated).
    #[arg(long, value_name = "CHECK", value_delimiter = ',', value_parser = check_parser())]
    pub only: Vec<crate::smoke::Check>,
    /// Leave out these checks (comma-separated or repeated).
    #[arg(long, value_name = "CHECK", value_delimiter = ',', value_parser = check_parser(), conflicts_with = "only")]
    pub skip: Vec<crate::smoke::Check>,
    /// Keep the smoke namespace and the objects the checks created, for debugging.
    #[arg(long)]
    pub keep: bool,
    /// Bound on each check (waits for pods and TrainJobs included), e.g. 90s, 5m, 1h30m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also write the results as JUnit XML to FILE (one testcase per check), for CI.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Reach MLflow at URL (http or https) instead of through the service proxy. With
    /// components.mlflow.auth.enabled the check signs in as the admin and needs a URL: this one,
    /// else https://<components.mlflow.ingress.host>; without either the check is skipped.
    #[arg(long, value_name = "URL", value_parser = crate::smoke::proxy::parse_http_url)]
    pub mlflow_url: Option<String>,
}

/// Options of `hpo`.
#[derive(Debug, Args)]
pub struct HpoArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: HpoAction,
}

/// `hpo` subcommands.
#[derive(Debug, Subcommand)]
pub enum HpoAction {
    /// Apply one trial batch now, wait for its trials, then print its status.
    ///
    /// The batch's objects (ConfigMap, pull Secret, Indexed Job) are server-side applied into
    /// the tenant's namespace as their own ApplySet (trainstack-<env>-hpo-<batch>), so
    /// `apply --prune` never deletes a batch `hpo run` started. The tenant's workspace must be
    /// applied first. Exit code 0 when the wait condition is met (failed trials are results,
    /// shown in the status); 1 on an error, when the wait times out (what is still running is
    /// named) or when a Job of the batch fails as a whole.
    #[command(after_help = "Examples:
  trainstack hpo run -e environments/base.yaml -e environments/kind.yaml \\
      environments/hpo-kind/quickstart.yaml
  trainstack hpo run -e environments/base.yaml -e environments/kind.yaml \\
      --wait all --wait-timeout 1h environments/hpo-kind/quickstart.yaml")]
    Run {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        args: HpoRunArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show trial batches: pods, trial states, best value and parameters, dashboard URL.
    ///
    /// Batches are the Jobs labelled trainstack.io/hpo-batch in the tenants' namespaces;
    /// trial states and values come from the workspace's optuna-dashboard through the API
    /// server's service proxy (trials belong to the batch their trialbatch_name user
    /// attribute names). Open the dashboard with `kubectl proxy` and
    /// http://127.0.0.1:8001 followed by the path shown. Exit code 0, or 1 when the cluster
    /// or a dashboard could not be read.
    #[command(after_help = "Examples:
  trainstack hpo status -e environments/base.yaml -e environments/kind.yaml
  trainstack hpo status -e environments/base.yaml -e environments/kind.yaml \\
      --study quickstart -o json")]
    Status {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        args: HpoStatusArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// What `hpo run --wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HpoWait {
    /// Return once the batch is applied.
    None,
    /// Until the first trial has finished (succeeded or failed).
    One,
    /// Until every trial has finished.
    All,
}

/// Options of `hpo run`.
#[derive(Debug, Args)]
pub struct HpoRunArgs {
    /// The trial batch spec file.
    #[arg(value_name = "BATCH.yaml")]
    pub batch: PathBuf,
    /// What to wait for before printing the status.
    #[arg(long, value_enum, default_value_t = HpoWait::One)]
    pub wait: HpoWait,
    /// Bound on the wait, e.g. 90s, 10m, 2h.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Options of `hpo status`.
#[derive(Debug, Args)]
pub struct HpoStatusArgs {
    /// Only the batches of this study.
    #[arg(long, value_name = "STUDY")]
    pub study: Option<String>,
    /// Only this batch.
    #[arg(long, value_name = "BATCH")]
    pub batch: Option<String>,
}

/// Accepts exactly the check names and lists them when given anything else.
fn check_parser() -> impl clap::builder::TypedValueParser<Value = crate::smoke::Check> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(crate::smoke::Check::names())
        .map(|s| s.parse::<crate::smoke::Check>().expect("a possible value is a check name"))
}

/// Options of `addons`.
#[derive(Debug, Args)]
pub struct AddonsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AddonsAction,
}

/// `addons` subcommands.
#[derive(Debug, Subcommand)]
pub enum AddonsAction {
    /// Build every enabled kustomize add-on and record its sha256 in FILE.lock beside the
    /// environment file FILE that declares it.
    ///
    /// Runs `kubectl kustomize` (a remote target needs the network once), checks the output is a
    /// set of Kubernetes objects and stores it in the add-on cache. Every command that renders
    /// then uses the cached build only if it has the locked sha256, with no kubectl and no
    /// network, and refuses a kustomize add-on the lock file does not pin. The same sources always
    /// write the same bytes; commit the lock file.
    #[command(after_help = "Examples:\n  \
        trainstack addons lock -e environments/base.yaml -e environments/kind.yaml")]
    Lock(AddonsLockArgs),
}

/// Options of `addons lock`.
#[derive(Debug, Args)]
pub struct AddonsLockArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Cache directory for add-on downloads and builds (default: $XDG_CACHE_HOME/trainstack).
    #[arg(long, value_name = "DIR", env = "TRAINSTACK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
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
    #[command(after_help = "Examples:
  trainstack cluster create -e environments/base.yaml -e environments/kind.yaml
  trainstack cluster create -e environments/base.yaml \\
      -e environments/kind.yaml --timeout 10m")]
    Create {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        args: KindCreateArgs,
        #[command(flatten)]
        kubeconfig: KubeconfigArg,
    },
    /// Delete the kind cluster and everything in it (a missing cluster is not an error).
    #[command(after_help = "Examples:
  trainstack cluster delete -e environments/base.yaml -e environments/kind.yaml
  trainstack cluster delete -e environments/base.yaml \\
      -e environments/kind.yaml --yes")]
    Delete {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        args: KindDeleteArgs,
        #[command(flatten)]
        kubeconfig: KubeconfigArg,
    },
    /// Print the generated kind cluster config (YAML; JSON with -o json) without running kind.
    #[command(after_help = "Examples:
  trainstack cluster config -e environments/base.yaml -e environments/kind.yaml
  trainstack cluster config -e environments/base.yaml \\
      -e environments/kind.yaml > kind.yaml
  kind create cluster --config kind.yaml")]
    Config {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Options of `cluster create`.
#[derive(Debug, Args)]
pub struct KindCreateArgs {
    /// Return once kind has started the nodes, without waiting for them to be Ready.
    #[arg(long)]
    pub no_wait: bool,
    /// Bound on the wait for the control-plane and then for all nodes, e.g. 90s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration, conflicts_with = "no_wait")]
    pub timeout: Duration,
}

/// Options of `cluster delete`.
#[derive(Debug, Args)]
pub struct KindDeleteArgs {
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Options of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Apply the Terraform plan without asking (EKS; required when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Leave out the last step, the smoke checks.
    #[arg(long)]
    pub no_smoke: bool,
    /// Smoke step: leave out these checks (comma-separated or repeated), as `smoke --skip`.
    #[arg(long, value_name = "CHECK", value_delimiter = ',', value_parser = check_parser(), conflicts_with = "no_smoke")]
    pub smoke_skip: Vec<crate::smoke::Check>,
    /// Smoke step: bound on each check, as `smoke --timeout` (--timeout bounds apply's waits).
    #[arg(long, default_value = "5m", value_parser = parse_duration, conflicts_with = "no_smoke")]
    pub smoke_timeout: Duration,
    /// Smoke step: also write its results as JUnit XML to FILE, as `smoke --junit`.
    #[arg(long, value_name = "FILE", conflicts_with = "no_smoke")]
    pub junit: Option<PathBuf>,
    /// Smoke step: reach MLflow at URL, as `smoke --mlflow-url`.
    #[arg(long, value_name = "URL", value_parser = crate::smoke::proxy::parse_http_url, conflicts_with = "no_smoke")]
    pub mlflow_url: Option<String>,
}

/// Options of `down`: those of `delete` (its `--dry-run` is hidden and refused).
#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub delete: DeleteArgs,
}

/// The longest bound a duration flag takes. A year is beyond any real wait and within what
/// every consumer of the value can represent (a tokio deadline; kind's Go `--wait`, which ends
/// near 292 years).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a duration as humantime reads them (`90s`, `5m`, `1h30m`, `2h 15m`, `1.5h`). A bare
/// number is refused rather than guessed at (seconds? minutes?), and so are zero and anything
/// above a year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} has no unit: add a unit, e.g. {s}s or {s}m"));
    }
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("{s:?} is too long: the longest bound is 365d"),
        e => format!("{s:?} is not a duration ({e}); write numbers with units (ms, s, m, h, d), e.g. 90s, 5m, 1h30m or 1.5h"),
    })?;
    if d.is_zero() {
        return Err(format!("{s:?} is zero; the bound must be above zero, e.g. 30s"));
    }
    if d > MAX_DURATION {
        return Err(format!("{s:?} is too long: the longest bound is 365d"));
    }
    Ok(d)
}

/// The completion script for `shell`, generated into memory: clap_complete panics on a failed
/// write, and `trainstack completions bash | head -1` must stop quietly (141).
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "trainstack", &mut script);
    script
}
