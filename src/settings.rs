//! Plain settings for every command, converted from the parsed command line in one place.
//!
//! `commands/` takes these and never a clap type, so `up` and `down` compose the settings of the
//! commands they run, and a new caller (a test, another front end) needs no command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{self, AddonArgs, Cli, ClusterArgs, Command, EnvArgs, KubeArgs};
use crate::connect::ConnectOptions;
use crate::env::LoadOptions;
use crate::smoke::Check;

/// What one command line asks for.
#[derive(Debug, Clone)]
pub enum Settings {
    /// `render`.
    Render(RenderSettings),
    /// `validate`.
    Validate(ValidateSettings),
    /// `addons lock`.
    AddonsLock(AddonsLockSettings),
    /// `diff`.
    Diff(DiffSettings),
    /// `apply`.
    Apply(ApplySettings),
    /// `delete`.
    Delete(DeleteSettings),
    /// `status`.
    Status(StatusSettings),
    /// `smoke`.
    Smoke(SmokeSettings),
    /// `cluster create|delete|config`.
    Cluster(ClusterSettings),
    /// `infra plan|apply|output|destroy`.
    Infra(InfraCommand),
    /// `up` (boxed: it holds the settings of all its steps).
    Up(Box<UpSettings>),
    /// `down`.
    Down(DownSettings),
    /// `hpo run`.
    HpoRun(HpoRunSettings),
    /// `hpo status`.
    HpoStatus(HpoStatusSettings),
    /// `completions`: the script, generated from the clap definitions.
    Completions(Vec<u8>),
}

/// Output format of a command's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable (for render: the YAML stream).
    #[default]
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// How a command reports: the format and whether every object is listed (`-v`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reporting {
    /// `-o`.
    pub format: Format,
    /// `-v` given at least once.
    pub verbose: bool,
}

/// Where the environment comes from.
#[derive(Debug, Clone, Default)]
pub struct LoadSettings {
    /// Environment files, base first.
    pub files: Vec<PathBuf>,
    /// `--terraform-outputs`: overrides the environment's `terraform` setting.
    pub terraform_outputs: Option<PathBuf>,
}

impl LoadSettings {
    /// The options of [`crate::env::read`]; the one place they are built.
    pub fn options(&self) -> LoadOptions {
        LoadOptions { terraform_outputs: self.terraform_outputs.clone() }
    }
}

/// Upstream add-ons of a render.
#[derive(Debug, Clone, Default)]
pub struct AddonSettings {
    /// `--no-addons`.
    pub skip: bool,
    /// `--cache-dir` (default: the user's cache directory).
    pub cache_dir: Option<PathBuf>,
}

/// Everything a render reads: the environment, template overrides and add-ons.
#[derive(Debug, Clone, Default)]
pub struct PrepareSettings {
    /// The environment.
    pub load: LoadSettings,
    /// `--templates`.
    pub templates: Option<PathBuf>,
    /// Add-ons.
    pub addons: AddonSettings,
}

/// Where the cluster is.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSettings {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

impl ConnectionSettings {
    /// The options of [`crate::connect::connect`]; the one place they are built.
    /// `aws` is reused for an EKS connection when the caller has loaded it already.
    pub fn connect_options(&self, aws: Option<crate::aws::Aws>) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            aws,
            ..ConnectOptions::default()
        }
    }
}

/// `render`.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `-o`.
    pub format: Format,
}

/// `validate`.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// `--crds DIR`.
    pub crds: Vec<PathBuf>,
    /// `-o`.
    pub format: Format,
}

/// `addons lock`.
#[derive(Debug, Clone)]
pub struct AddonsLockSettings {
    /// The environment.
    pub load: LoadSettings,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
}

/// `diff`.
#[derive(Debug, Clone)]
pub struct DiffSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// Objects diffed at once within a phase.
    pub concurrency: usize,
    /// `--show-secrets`.
    pub show_secrets: bool,
    /// `--force-conflicts`.
    pub force_conflicts: bool,
    /// `--warnings-as-errors`.
    pub warnings_as_errors: bool,
    /// `--server-dry-run-all`.
    pub server_dry_run_all: bool,
    /// `-o`, `-v`.
    pub reporting: Reporting,
}

/// `apply` (and the apply step of `up`).
#[derive(Debug, Clone)]
pub struct ApplySettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// Objects applied at once within a phase.
    pub concurrency: usize,
    /// Bound on each wait.
    pub timeout: Duration,
    /// `--force-conflicts`.
    pub force_conflicts: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--prune`.
    pub prune: bool,
    /// `--prune-namespaces`.
    pub prune_namespaces: bool,
    /// `--prune-crds`.
    pub prune_crds: bool,
    /// Wait for operators and workloads (not `--no-wait`).
    pub wait: bool,
    /// `--wait-jobs`.
    pub wait_jobs: bool,
    /// `--warnings-as-errors`.
    pub warnings_as_errors: bool,
    /// `--server-dry-run-all`.
    pub server_dry_run_all: bool,
    /// Bound on each EKS node group wait.
    pub node_group_timeout: Duration,
    /// `-o`, `-v`.
    pub reporting: Reporting,
}

/// `delete` (and the delete step of `down`).
#[derive(Debug, Clone)]
pub struct DeleteSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// Objects deleted at once within a phase.
    pub concurrency: usize,
    /// Bound on each wait.
    pub timeout: Duration,
    /// `--yes`: no confirmation.
    pub yes: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Bound on each EKS node group deletion wait.
    pub node_group_timeout: Duration,
    /// `-o`, `-v`.
    pub reporting: Reporting,
}

/// `status`.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// Objects read at once within a phase.
    pub concurrency: usize,
    /// `-o`, `-v`.
    pub reporting: Reporting,
}

/// `smoke` (and the smoke step of `up`).
#[derive(Debug, Clone)]
pub struct SmokeSettings {
    /// Inputs.
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// `--only`.
    pub only: Vec<Check>,
    /// `--skip`.
    pub skip: Vec<Check>,
    /// `--keep`.
    pub keep: bool,
    /// Bound on each check.
    pub timeout: Duration,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
    /// `--mlflow-url`.
    pub mlflow_url: Option<String>,
    /// `-o`, `-v`.
    pub reporting: Reporting,
}

/// `hpo run`.
#[derive(Debug, Clone)]
pub struct HpoRunSettings {
    /// Inputs (add-ons are never loaded: a batch needs none).
    pub prepare: PrepareSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// The batch spec file.
    pub batch: PathBuf,
    /// `--wait`.
    pub wait: crate::trials::wait::Wait,
    /// `--wait-timeout`.
    pub wait_timeout: Duration,
    /// Objects applied at once.
    pub concurrency: usize,
    /// `-o`.
    pub format: Format,
}

/// `hpo status`.
#[derive(Debug, Clone)]
pub struct HpoStatusSettings {
    /// The environment.
    pub load: LoadSettings,
    /// The cluster.
    pub connection: ConnectionSettings,
    /// `--study`, `--batch`.
    pub query: crate::trials::status::Query,
    /// `-o`.
    pub format: Format,
}

/// `cluster create|delete|config`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The environment.
    pub load: LoadSettings,
    /// `--kubeconfig` (create and delete).
    pub kubeconfig: Option<PathBuf>,
    /// What to do.
    pub action: ClusterAction,
}

/// What `cluster` does.
#[derive(Debug, Clone)]
pub enum ClusterAction {
    /// Create; wait for the nodes this long unless `None` (`--no-wait`).
    Create {
        /// The bound on the node waits.
        wait: Option<Duration>,
    },
    /// Delete; `yes` skips the confirmation.
    Delete {
        /// `--yes`.
        yes: bool,
    },
    /// Print the generated config.
    Config {
        /// `-o`.
        format: Format,
    },
}

/// `infra plan|apply|output|destroy`.
#[derive(Debug, Clone)]
pub struct InfraCommand {
    /// Environment files (only name, target and `terraform` are read).
    pub files: Vec<PathBuf>,
    /// What to run.
    pub action: InfraAction,
}

/// What `infra` runs.
#[derive(Debug, Clone)]
pub enum InfraAction {
    /// `terraform plan`.
    Plan,
    /// Plan and apply; `yes` skips the confirmation.
    Apply {
        /// `--yes`.
        yes: bool,
    },
    /// Print (and with `write`, save) the outputs.
    Output {
        /// `--write FILE`.
        write: Option<PathBuf>,
        /// `-o`.
        format: Format,
    },
    /// `terraform destroy`; `yes` skips the confirmation.
    Destroy {
        /// `--yes`.
        yes: bool,
    },
}

/// `up`: the settings of each step, composed from one command line.
#[derive(Debug, Clone)]
pub struct UpSettings {
    /// The apply step (its waits also bound `cluster create` on kind).
    pub apply: ApplySettings,
    /// `--yes`: apply the Terraform plan without asking (EKS).
    pub yes: bool,
    /// The smoke step, unless `--no-smoke`.
    pub smoke: Option<SmokeSettings>,
}

/// `down`: the delete step's settings; `delete.yes` is the user's `--yes`.
#[derive(Debug, Clone)]
pub struct DownSettings {
    /// The delete step.
    pub delete: DeleteSettings,
}

impl From<&Cli> for Settings {
    fn from(cli: &Cli) -> Settings {
        match &cli.command {
            Command::Render { env, templates, args, output } => Settings::Render(RenderSettings {
                prepare: prepare(env, &templates.templates, &args.addons),
                out: args.out.clone(),
                format: output.output.into(),
            }),
            Command::Validate { env, templates, args, output } => Settings::Validate(ValidateSettings {
                prepare: prepare(env, &templates.templates, &args.addons),
                crds: args.crds.clone(),
                format: output.output.into(),
            }),
            Command::Addons(a) => match &a.action {
                cli::AddonsAction::Lock(lock) => Settings::AddonsLock(AddonsLockSettings {
                    load: load(&lock.env),
                    cache_dir: lock.cache_dir.clone(),
                }),
            },
            Command::Diff { env, templates, args, kube, output, verbose } => Settings::Diff(DiffSettings {
                prepare: prepare(env, &templates.templates, &args.addons),
                connection: connection(kube),
                concurrency: concurrency(&args.cluster),
                show_secrets: args.show_secrets,
                force_conflicts: args.force_conflicts,
                warnings_as_errors: args.warnings_as_errors,
                server_dry_run_all: args.server_dry_run_all,
                reporting: reporting(output, verbose),
            }),
            Command::Apply { env, templates, args, kube, output, verbose } => Settings::Apply(apply(
                prepare(env, &templates.templates, &args.addons),
                connection(kube),
                args,
                reporting(output, verbose),
            )),
            Command::Delete { env, templates, args, kube, output, verbose } => Settings::Delete(delete(
                prepare(env, &templates.templates, &args.addons),
                connection(kube),
                args,
                reporting(output, verbose),
            )),
            Command::Status { env, templates, args, kube, output, verbose } => {
                Settings::Status(StatusSettings {
                    prepare: prepare(env, &templates.templates, &args.addons),
                    connection: connection(kube),
                    concurrency: concurrency(&args.cluster),
                    reporting: reporting(output, verbose),
                })
            }
            Command::Smoke { env, templates, args, kube, output, verbose } => {
                Settings::Smoke(SmokeSettings {
                    prepare: prepare(env, &templates.templates, &args.addons),
                    connection: connection(kube),
                    only: args.only.clone(),
                    skip: args.skip.clone(),
                    keep: args.keep,
                    timeout: args.timeout,
                    junit: args.junit.clone(),
                    mlflow_url: args.mlflow_url.clone(),
                    reporting: reporting(output, verbose),
                })
            }
            Command::Cluster(c) => Settings::Cluster(match &c.action {
                cli::KindClusterAction::Create { env, args, kubeconfig } => ClusterSettings {
                    load: load(env),
                    kubeconfig: kubeconfig.kubeconfig.clone(),
                    action: ClusterAction::Create { wait: (!args.no_wait).then_some(args.timeout) },
                },
                cli::KindClusterAction::Delete { env, args, kubeconfig } => ClusterSettings {
                    load: load(env),
                    kubeconfig: kubeconfig.kubeconfig.clone(),
                    action: ClusterAction::Delete { yes: args.yes },
                },
                cli::KindClusterAction::Config { env, output } => ClusterSettings {
                    load: load(env),
                    kubeconfig: None,
                    action: ClusterAction::Config { format: output.output.into() },
                },
            }),
            Command::Infra(i) => Settings::Infra(match &i.action {
                cli::InfraAction::Plan { files } => {
                    InfraCommand { files: files.env.clone(), action: InfraAction::Plan }
                }
                cli::InfraAction::Apply { files, args } => {
                    InfraCommand { files: files.env.clone(), action: InfraAction::Apply { yes: args.yes } }
                }
                cli::InfraAction::Output { files, args, output } => InfraCommand {
                    files: files.env.clone(),
                    action: InfraAction::Output { write: args.write.clone(), format: output.output.into() },
                },
                cli::InfraAction::Destroy { files, args } => {
                    InfraCommand { files: files.env.clone(), action: InfraAction::Destroy { yes: args.yes } }
                }
            }),
            Command::Up { env, templates, args, kube, verbose } => {
                let prepare = prepare(env, &templates.templates, &args.apply.addons);
                let connection = connection(kube);
                // `up` has no -o: its steps report as text.
                let reporting = Reporting { format: Format::Text, verbose: verbose.verbose > 0 };
                let smoke = (!args.no_smoke).then(|| SmokeSettings {
                    prepare: prepare.clone(),
                    connection: connection.clone(),
                    only: Vec::new(),
                    skip: args.smoke_skip.clone(),
                    keep: false,
                    timeout: args.smoke_timeout,
                    junit: args.junit.clone(),
                    mlflow_url: args.mlflow_url.clone(),
                    reporting,
                });
                Settings::Up(Box::new(UpSettings {
                    apply: apply(prepare, connection, &args.apply, reporting),
                    yes: args.yes,
                    smoke,
                }))
            }
            Command::Down { env, templates, args, kube, verbose } => Settings::Down(DownSettings {
                delete: delete(
                    prepare(env, &templates.templates, &args.delete.addons),
                    connection(kube),
                    &args.delete,
                    Reporting { format: Format::Text, verbose: verbose.verbose > 0 },
                ),
            }),
            Command::Hpo(h) => match &h.action {
                cli::HpoAction::Run { env, templates, args, kube, output } => {
                    Settings::HpoRun(HpoRunSettings {
                        prepare: PrepareSettings {
                            load: load(env),
                            templates: templates.templates.clone(),
                            addons: AddonSettings { skip: true, cache_dir: None },
                        },
                        connection: connection(kube),
                        batch: args.batch.clone(),
                        wait: match args.wait {
                            cli::HpoWait::None => crate::trials::wait::Wait::None,
                            cli::HpoWait::One => crate::trials::wait::Wait::One,
                            cli::HpoWait::All => crate::trials::wait::Wait::All,
                        },
                        wait_timeout: args.wait_timeout,
                        concurrency: concurrency(&args.cluster),
                        format: output.output.into(),
                    })
                }
                cli::HpoAction::Status { env, args, kube, output } => {
                    Settings::HpoStatus(HpoStatusSettings {
                        load: load(env),
                        connection: connection(kube),
                        query: crate::trials::status::Query {
                            study: args.study.clone(),
                            batch: args.batch.clone(),
                        },
                        format: output.output.into(),
                    })
                }
            },
            Command::Completions { shell } => Settings::Completions(cli::completion_script(*shell)),
        }
    }
}

impl From<cli::OutputFormat> for Format {
    fn from(f: cli::OutputFormat) -> Format {
        match f {
            cli::OutputFormat::Text => Format::Text,
            cli::OutputFormat::Json => Format::Json,
            cli::OutputFormat::Yaml => Format::Yaml,
        }
    }
}

fn load(env: &EnvArgs) -> LoadSettings {
    LoadSettings { files: env.files.env.clone(), terraform_outputs: env.terraform_outputs.clone() }
}

fn prepare(env: &EnvArgs, templates: &Option<PathBuf>, addons: &AddonArgs) -> PrepareSettings {
    PrepareSettings {
        load: load(env),
        templates: templates.clone(),
        addons: AddonSettings { skip: addons.no_addons, cache_dir: addons.cache_dir.clone() },
    }
}

fn connection(kube: &KubeArgs) -> ConnectionSettings {
    ConnectionSettings { kubeconfig: kube.kubeconfig.kubeconfig.clone(), context: kube.context.clone() }
}

fn reporting(output: &cli::OutputArgs, verbose: &cli::VerboseArgs) -> Reporting {
    Reporting { format: output.output.into(), verbose: verbose.verbose > 0 }
}

fn concurrency(c: &ClusterArgs) -> usize {
    usize::from(c.concurrency)
}

fn apply(
    prepare: PrepareSettings,
    connection: ConnectionSettings,
    a: &cli::ApplyArgs,
    reporting: Reporting,
) -> ApplySettings {
    ApplySettings {
        prepare,
        connection,
        concurrency: concurrency(&a.cluster),
        timeout: a.wait.timeout,
        force_conflicts: a.force_conflicts,
        dry_run: a.dry_run,
        prune: a.prune,
        prune_namespaces: a.prune_namespaces,
        prune_crds: a.prune_crds,
        wait: !a.no_wait,
        wait_jobs: a.wait_jobs,
        warnings_as_errors: a.warnings_as_errors,
        server_dry_run_all: a.server_dry_run_all,
        node_group_timeout: a.node_group_timeout,
        reporting,
    }
}

fn delete(
    prepare: PrepareSettings,
    connection: ConnectionSettings,
    d: &cli::DeleteArgs,
    reporting: Reporting,
) -> DeleteSettings {
    DeleteSettings {
        prepare,
        connection,
        concurrency: concurrency(&d.cluster),
        timeout: d.wait.timeout,
        yes: d.yes,
        dry_run: d.dry_run,
        node_group_timeout: d.node_group_timeout,
        reporting,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Settings::from(&Cli::try_parse_from(args).unwrap())
    }

    #[test]
    fn up_composes_its_apply_and_smoke_steps_from_one_command_line() {
        let Settings::Up(up) = settings(&[
            "trainstack",
            "up",
            "-e",
            "a.yaml",
            "--context",
            "c",
            "--no-addons",
            "--timeout",
            "10m",
            "--smoke-skip",
            "gpu",
            "--smoke-timeout",
            "2m",
            "--yes",
        ]) else {
            panic!("up gives up settings")
        };
        assert!(up.yes);
        assert_eq!(up.apply.timeout, Duration::from_secs(600));
        assert_eq!(up.apply.reporting.format, Format::Text);
        let smoke = up.smoke.expect("smoke runs unless --no-smoke");
        assert_eq!(smoke.skip, [Check::Gpu]);
        assert!(smoke.only.is_empty() && !smoke.keep);
        assert_eq!(smoke.timeout, Duration::from_secs(120));
        assert!(smoke.prepare.addons.skip, "the smoke step renders what apply rendered");
        assert_eq!(smoke.connection.context.as_deref(), Some("c"));
        assert_eq!(smoke.prepare.load.files, [PathBuf::from("a.yaml")]);
    }

    #[test]
    fn up_without_smoke_has_no_smoke_step_and_down_keeps_the_users_yes() {
        let Settings::Up(up) = settings(&["trainstack", "up", "-e", "a.yaml", "--no-smoke"]) else {
            panic!("up gives up settings")
        };
        assert!(up.smoke.is_none());
        let Settings::Down(down) = settings(&["trainstack", "down", "-e", "a.yaml"]) else {
            panic!("down gives down settings")
        };
        assert!(!down.delete.yes, "down asks before deleting unless --yes");
    }
}
