//! `up` and `down`: an environment's whole lifecycle as a list of steps, each running the same
//! code as the command it stands for, stopping at the first failure with how to resume.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use crate::env::model::TargetKind;
use crate::env::{self, LoadedEnv};
use crate::settings::{
    ApplySettings, ConnectionSettings, DeleteSettings, DownSettings, PrepareSettings, SmokeSettings,
    UpSettings,
};
use crate::targets::kind::{go_duration, Kind, Programs};
use crate::targets::process::Stream;
use crate::Error;

use super::infra::Infra;
use super::Prepared;

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<ExitCode, Error>> + 'a>>;

/// One step: what it does, the command that runs it alone (to resume), and the work itself
/// (not started until its turn).
struct Step<'a> {
    title: String,
    command: String,
    run: StepFuture<'a>,
}

impl<'a> Step<'a> {
    fn new(
        title: impl Into<String>,
        command: String,
        run: impl Future<Output = Result<ExitCode, Error>> + 'a,
    ) -> Self {
        Step { title: title.into(), command, run: Box::pin(run) }
    }
}

/// `up`: kind: `cluster create`, `apply`, `smoke`; EKS: `infra apply`, `apply`, `smoke`
/// (`smoke` unless `--no-smoke`). The environment is loaded and rendered once, and every step
/// gets that one render: on kind before the cluster is made, on EKS by the apply step, once
/// `infra apply` has written the outputs it reads.
pub async fn up(args: &UpSettings) -> Result<ExitCode, Error> {
    let apply = &args.apply;
    if apply.dry_run {
        return Err(anyhow::anyhow!(
            "`up` makes changes and has no --dry-run: preview them with `trainstack infra plan` (EKS) and `trainstack diff`"
        )
        .into());
    }
    let files = &apply.prepare.load.files;
    let cmd = Commands::new(&apply.prepare, &apply.connection, args.yes);
    let target = env::terraform::infra_settings(files)?.kind;
    // Loaded now on kind so that an invalid environment stops `up` before the cluster is made.
    let loaded = match target {
        TargetKind::Kind => {
            let loaded = super::load(&apply.prepare.load).await?;
            if !apply.prepare.addons.skip {
                super::addons::read_locks(&loaded, files)?;
            }
            Some(loaded)
        }
        TargetKind::Eks => None,
    };
    let rendered = OnceCell::new();
    let render = || prepared_once(&rendered, loaded.as_ref(), &apply.prepare);
    let apply_step = Step::new("apply the platform", cmd.line("apply", &apply_flags(apply)), async move {
        super::cluster::apply_prepared(apply, render().await?).await
    });
    let smoke = args.smoke.as_ref().map(|smoke| {
        Step::new("smoke-test the platform", cmd.line("smoke", &smoke_flags(smoke)), async move {
            super::smoke::smoke(smoke, render().await?).await
        })
    });
    let mut steps = match &loaded {
        Some(loaded) => {
            let create_step = Step::new(
                format!("create kind cluster {:?}", loaded.env.target.cluster_name),
                cmd.line("cluster create", &timeout_flag(apply.timeout)),
                super::kind::create(
                    &loaded.env,
                    files,
                    apply.connection.kubeconfig.as_deref(),
                    Some(apply.timeout),
                ),
            );
            vec![create_step, apply_step]
        }
        None => {
            let infra = Infra::open(files, Stream::Stderr(""))?;
            let yes = args.yes;
            let infra_step = Step::new(
                "apply the base infrastructure (Terraform)",
                cmd.line("infra apply", &cmd.yes_flag()),
                async move { infra.apply(yes).await },
            );
            vec![infra_step, apply_step]
        }
    };
    steps.extend(smoke);
    let mut up_flags = apply_flags(apply);
    up_flags.extend(cmd.yes_flag());
    up_flags.extend(up_smoke_flags(args));
    run_steps("up", &cmd.line("up", &up_flags), steps).await
}

/// The render every step of `up` or `down` shares, made by the first step that needs it, from
/// the environment loaded before the steps when there is one.
async fn prepared_once<'a>(
    cell: &'a OnceCell<Prepared>,
    loaded: Option<&LoadedEnv>,
    settings: &PrepareSettings,
) -> Result<&'a Prepared, Error> {
    if let Some(prepared) = cell.get() {
        return Ok(prepared);
    }
    let prepared = match loaded {
        Some(loaded) => super::render_loaded(loaded.clone(), settings).await?,
        None => super::prepare(settings).await?,
    };
    Ok(cell.get_or_init(|| prepared))
}

/// `down`: `delete` of every object, then `cluster delete` (kind) or `terraform destroy` (EKS).
pub async fn down(args: &DownSettings) -> Result<ExitCode, Error> {
    if args.delete.dry_run {
        return Err(anyhow::anyhow!(
            "`down` deletes and has no --dry-run: `trainstack delete --dry-run` lists the objects it would delete"
        )
        .into());
    }
    let files = &args.delete.prepare.load.files;
    let settings = env::terraform::infra_settings(files)?;
    let yes = args.delete.yes;
    let cmd = Commands::new(&args.delete.prepare, &args.delete.connection, yes);
    // `down` asks once, for every step.
    let delete_settings = DeleteSettings { yes: true, ..args.delete.clone() };
    let delete_settings = &delete_settings;
    let flags = delete_flags(&args.delete);
    let delete_line = cmd.line("delete", &[flags.clone(), cmd.yes_flag()].concat());
    let name = settings.name.clone();
    let kubeconfig = args.delete.connection.kubeconfig.as_deref();
    let loaded = match settings.kind {
        TargetKind::Kind => Some(super::load(&args.delete.prepare.load).await?),
        TargetKind::Eks => None,
    };
    let rendered = OnceCell::new();
    let render = || prepared_once(&rendered, loaded.as_ref(), &args.delete.prepare);
    let steps = match &loaded {
        Some(loaded) => {
            // Checked before anything is asked or deleted: a missing kind is reported first.
            let kind = Kind::preflight(&Programs::from_env()).await?;
            let cluster = loaded.env.target.cluster_name.clone();
            if !yes && !confirm_down(&name, &format!("then kind cluster {cluster:?}"))? {
                return Ok(not_confirmed());
            }
            let exists = kind.clusters().await?.contains(&cluster);
            let delete = Step::new("delete the platform's objects", delete_line, async move {
                if !exists {
                    eprintln!("kind cluster {cluster:?} does not exist; no objects to delete");
                    return Ok(ExitCode::SUCCESS);
                }
                super::cluster::delete_prepared(delete_settings, render().await?).await
            });
            let remove = Step::new(
                format!("delete kind cluster {:?}", loaded.env.target.cluster_name),
                cmd.line("cluster delete", &cmd.yes_flag()),
                super::kind::delete(&loaded.env, kubeconfig, true),
            );
            vec![delete, remove]
        }
        None => {
            let infra = Infra::open(files, Stream::Stderr(""))?;
            if !yes
                && !confirm_down(
                    &name,
                    "then the EKS node groups it created, then destroy its Terraform infrastructure (EKS cluster, database, buckets)",
                )?
            {
                return Ok(not_confirmed());
            }
            // A `down` that stopped after Terraform removed the cluster resumes here: with the
            // cluster gone there is nothing left to delete, and the destroy finishes the rest.
            let delete = Step::new("delete the platform's objects", delete_line, async move {
                let result = match render().await {
                    Ok(prepared) => super::cluster::delete_prepared(delete_settings, prepared).await,
                    Err(e) => Err(e),
                };
                if let Some(cluster) = result.as_ref().err().and_then(Error::missing_eks_cluster) {
                    eprintln!(
                        "EKS cluster {cluster:?} does not exist (any more); no objects or node groups to delete, going on to the Terraform destroy"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                result
            });
            let destroy = Step::new(
                "destroy the base infrastructure (Terraform)",
                cmd.line("infra destroy", &cmd.yes_flag()),
                async move { infra.destroy().await.map(|()| ExitCode::SUCCESS) },
            );
            vec![delete, destroy]
        }
    };
    run_steps("down", &cmd.line("down", &[flags, cmd.yes_flag()].concat()), steps).await
}

fn confirm_down(name: &str, then: &str) -> Result<bool, Error> {
    super::confirm(
        &format!("tear down environment {name:?}"),
        &format!(
            "Delete every object of environment {name:?}, {then}? Type the environment name to confirm:"
        ),
        name,
    )
}

fn not_confirmed() -> ExitCode {
    eprintln!("not confirmed; nothing was deleted");
    ExitCode::from(1)
}

/// Runs the steps in order with a header each; the first that fails (an error or a non-zero
/// exit code) stops the run, and the commands of it and the steps after it are printed.
async fn run_steps(verb: &str, rerun: &str, steps: Vec<Step<'_>>) -> Result<ExitCode, Error> {
    let total = steps.len();
    let mut remaining: Vec<String> = steps.iter().map(|s| s.command.clone()).collect();
    for (i, step) in steps.into_iter().enumerate() {
        eprintln!("==> step {}/{total}: {}", i + 1, step.title);
        let failure = match step.run.await {
            Ok(code) if code == ExitCode::SUCCESS => None,
            Ok(_) => Some(String::new()),
            Err(e) => Some(e.report() + "\n"),
        };
        remaining.remove(0);
        if let Some(report) = failure {
            let mut todo = vec![step.command];
            todo.append(&mut remaining);
            eprint!(
                "{report}{verb} stopped: step {}/{total} ({}) failed; the steps after it did not run.\n\
                 To resume once the problem is fixed, run:\n{}\n\
                 (or `{rerun}` again: every step is safe to rerun)\n",
                i + 1,
                step.title,
                todo.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"),
            );
            return Ok(ExitCode::from(1));
        }
    }
    eprintln!("{verb}: all {total} steps done");
    Ok(ExitCode::SUCCESS)
}

/// Command lines for resume hints: `trainstack <command> -e ... <global flags> <flags>`.
struct Commands {
    globals: Vec<String>,
    yes: bool,
}

impl Commands {
    fn new(prepare: &PrepareSettings, connection: &ConnectionSettings, yes: bool) -> Self {
        let mut globals = Vec::new();
        for f in &prepare.load.files {
            globals.extend(["-e".to_string(), f.display().to_string()]);
        }
        let paths = [
            ("--kubeconfig", &connection.kubeconfig),
            ("--terraform-outputs", &prepare.load.terraform_outputs),
            ("--templates", &prepare.templates),
        ];
        for (flag, path) in paths {
            if let Some(p) = path {
                globals.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        if let Some(c) = &connection.context {
            globals.extend(["--context".to_string(), c.clone()]);
        }
        Commands { globals, yes }
    }

    fn line(&self, command: &str, flags: &[String]) -> String {
        let words = self.globals.iter().chain(flags).map(|w| crate::targets::process::shell_word(w));
        std::iter::once(format!("trainstack {command}")).chain(words).collect::<Vec<_>>().join(" ")
    }

    /// `--yes` when the user gave it to `up`/`down` (they run unattended).
    fn yes_flag(&self) -> Vec<String> {
        if self.yes {
            vec!["--yes".into()]
        } else {
            Vec::new()
        }
    }
}

/// `--timeout`, or `flag`, when `timeout` is not the default of 5 minutes.
fn duration_flag(flag: &str, timeout: std::time::Duration) -> Vec<String> {
    if timeout == std::time::Duration::from_secs(300) {
        Vec::new()
    } else {
        vec![flag.into(), go_duration(timeout)]
    }
}

fn timeout_flag(timeout: std::time::Duration) -> Vec<String> {
    duration_flag("--timeout", timeout)
}

/// The flags of `smoke` that differ from their defaults, to repeat them in a resume hint.
fn smoke_flags(s: &SmokeSettings) -> Vec<String> {
    let mut flags = Vec::new();
    if s.prepare.addons.skip {
        flags.push("--no-addons".into());
    }
    if !s.skip.is_empty() {
        flags.extend(["--skip".into(), checks_list(&s.skip)]);
    }
    flags.extend(timeout_flag(s.timeout));
    if let Some(path) = &s.junit {
        flags.extend(["--junit".into(), path.display().to_string()]);
    }
    if let Some(url) = &s.mlflow_url {
        flags.extend(["--mlflow-url".into(), url.clone()]);
    }
    flags
}

/// The smoke options of `up` that differ from their defaults, for the `up` rerun line.
fn up_smoke_flags(up: &UpSettings) -> Vec<String> {
    let Some(smoke) = &up.smoke else {
        return vec!["--no-smoke".into()];
    };
    let mut flags = Vec::new();
    if !smoke.skip.is_empty() {
        flags.extend(["--smoke-skip".into(), checks_list(&smoke.skip)]);
    }
    flags.extend(duration_flag("--smoke-timeout", smoke.timeout));
    if let Some(path) = &smoke.junit {
        flags.extend(["--junit".into(), path.display().to_string()]);
    }
    if let Some(url) = &smoke.mlflow_url {
        flags.extend(["--mlflow-url".into(), url.clone()]);
    }
    flags
}

fn checks_list(checks: &[crate::smoke::Check]) -> String {
    checks.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

/// The flags of `delete` that differ from their defaults, to repeat them in a resume hint.
fn delete_flags(d: &DeleteSettings) -> Vec<String> {
    let mut flags = common_flags(&d.prepare, d.concurrency, d.timeout);
    flags.extend(node_group_timeout_flag(d.node_group_timeout));
    flags
}

fn node_group_timeout_flag(timeout: std::time::Duration) -> Vec<String> {
    if timeout == std::time::Duration::from_secs(30 * 60) {
        Vec::new()
    } else {
        vec!["--node-group-timeout".into(), go_duration(timeout)]
    }
}

/// Add-on and cluster flags that differ from their defaults.
fn common_flags(prepare: &PrepareSettings, concurrency: usize, timeout: std::time::Duration) -> Vec<String> {
    let mut flags = Vec::new();
    if prepare.addons.skip {
        flags.push("--no-addons".into());
    }
    if concurrency != 8 {
        flags.extend(["--concurrency".into(), concurrency.to_string()]);
    }
    flags.extend(timeout_flag(timeout));
    flags
}

/// The flags of `apply` that differ from their defaults, to repeat them in a resume hint.
fn apply_flags(a: &ApplySettings) -> Vec<String> {
    let mut flags = common_flags(&a.prepare, a.concurrency, a.timeout);
    let switches = [
        (a.force_conflicts, "--force-conflicts"),
        (a.prune, "--prune"),
        (a.prune_namespaces, "--prune-namespaces"),
        (a.prune_crds, "--prune-crds"),
        (!a.wait, "--no-wait"),
        (a.wait_jobs, "--wait-jobs"),
        (a.warnings_as_errors, "--warnings-as-errors"),
        (a.server_dry_run_all, "--server-dry-run-all"),
    ];
    flags.extend(switches.iter().filter(|(on, _)| *on).map(|(_, f)| f.to_string()));
    flags.extend(node_group_timeout_flag(a.node_group_timeout));
    flags
}
