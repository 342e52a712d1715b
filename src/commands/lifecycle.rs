//! `up` and `down`: an environment's whole lifecycle as a list of steps, each running the same
//! code as the command it stands for, stopping at the first failure with how to resume.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use crate::cli::{
    AddonArgs, ApplyArgs, ClusterArgs, DeleteArgs, DownArgs, GlobalArgs, KindCreateArgs, KindDeleteArgs,
    SmokeArgs, UpArgs, WaitArgs,
};
use crate::env::model::TargetKind;
use crate::env::{self, LoadOptions};
use crate::targets::kind::{go_duration, Kind, Programs};
use crate::targets::process::Stream;
use crate::Error;

use super::infra::Infra;

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
/// (`smoke` unless `--no-smoke`).
pub async fn up(global: &GlobalArgs, args: &UpArgs) -> Result<ExitCode, Error> {
    if args.apply.dry_run {
        return Err(anyhow::anyhow!(
            "`up` makes changes and has no --dry-run: preview them with `trainstack infra plan` (EKS) and `trainstack diff`"
        )
        .into());
    }
    let cmd = Commands::new(global, args.yes);
    let apply = Step::new(
        "apply the platform",
        cmd.line("apply", &apply_flags(&args.apply)),
        super::cluster::apply(global, &args.apply),
    );
    let smoke = (!args.no_smoke).then(|| {
        let smoke_args = smoke_args(args);
        Step::new("smoke-test the platform", cmd.line("smoke", &smoke_flags(&smoke_args)), async move {
            super::smoke::run(global, &smoke_args).await
        })
    });
    let kind = env::terraform::infra_settings(&global.env)?.kind;
    let mut steps = match kind {
        TargetKind::Kind => {
            // Loaded now so that an invalid environment stops `up` before the cluster is made.
            let loaded = env::load(&global.env, &load_options(global))?;
            if !args.apply.addons.no_addons {
                super::addons::read_locks(&loaded, &global.env)?;
            }
            let timeout = args.apply.wait.timeout;
            let create = KindCreateArgs { no_wait: false, timeout };
            let create_step = Step::new(
                format!("create kind cluster {:?}", loaded.env.target.cluster_name),
                cmd.line("cluster create", &timeout_flag(timeout)),
                async move { super::kind::create(global, &loaded.env, &create).await },
            );
            vec![create_step, apply]
        }
        TargetKind::Eks => {
            let infra = Infra::open(global, Stream::Stderr(""))?;
            let yes = args.yes;
            let infra_step = Step::new(
                "apply the base infrastructure (Terraform)",
                cmd.line("infra apply", &cmd.yes_flag()),
                async move { infra.apply(yes).await },
            );
            vec![infra_step, apply]
        }
    };
    steps.extend(smoke);
    let mut up_flags = apply_flags(&args.apply);
    up_flags.extend(cmd.yes_flag());
    up_flags.extend(up_smoke_flags(args));
    run_steps("up", &cmd.line("up", &up_flags), steps).await
}

/// `down`: `delete` of every object, then `cluster delete` (kind) or `terraform destroy` (EKS).
pub async fn down(global: &GlobalArgs, args: &DownArgs) -> Result<ExitCode, Error> {
    if args.delete.dry_run {
        return Err(anyhow::anyhow!(
            "`down` deletes and has no --dry-run: `trainstack delete --dry-run` lists the objects it would delete"
        )
        .into());
    }
    let settings = env::terraform::infra_settings(&global.env)?;
    let yes = args.delete.yes;
    let cmd = Commands::new(global, yes);
    let delete_args = DeleteArgs { yes: true, ..args.delete.clone() };
    let flags = delete_flags(&args.delete);
    let delete_line = cmd.line("delete", &[flags.clone(), cmd.yes_flag()].concat());
    let name = settings.name.clone();
    let steps = match settings.kind {
        TargetKind::Kind => {
            let loaded = env::load(&global.env, &load_options(global))?;
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
                super::cluster::delete(global, &delete_args).await
            });
            let cluster = loaded.env.target.cluster_name.clone();
            let remove = Step::new(
                format!("delete kind cluster {cluster:?}"),
                cmd.line("cluster delete", &cmd.yes_flag()),
                async move { super::kind::delete(global, &loaded.env, &KindDeleteArgs { yes: true }).await },
            );
            vec![delete, remove]
        }
        TargetKind::Eks => {
            let infra = Infra::open(global, Stream::Stderr(""))?;
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
                let result = super::cluster::delete(global, &delete_args).await;
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

fn load_options(global: &GlobalArgs) -> LoadOptions {
    LoadOptions { terraform_outputs: global.terraform_outputs.clone() }
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
    fn new(global: &GlobalArgs, yes: bool) -> Self {
        let mut globals = Vec::new();
        for f in &global.env {
            globals.extend(["-e".to_string(), f.display().to_string()]);
        }
        let paths = [
            ("--kubeconfig", &global.kubeconfig),
            ("--terraform-outputs", &global.terraform_outputs),
            ("--templates", &global.templates),
        ];
        for (flag, path) in paths {
            if let Some(p) = path {
                globals.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        if let Some(c) = &global.context {
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

/// What `smoke` gets from `up`: apply's add-on options and the `--smoke-*`/`--junit` options.
fn smoke_args(up: &UpArgs) -> SmokeArgs {
    SmokeArgs {
        addons: up.apply.addons.clone(),
        only: Vec::new(),
        skip: up.smoke_skip.clone(),
        keep: false,
        timeout: up.smoke_timeout,
        junit: up.junit.clone(),
        mlflow_url: up.mlflow_url.clone(),
    }
}

/// The flags of `smoke` that differ from their defaults, to repeat them in a resume hint.
fn smoke_flags(s: &SmokeArgs) -> Vec<String> {
    let mut flags = Vec::new();
    if s.addons.no_addons {
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
fn up_smoke_flags(up: &UpArgs) -> Vec<String> {
    if up.no_smoke {
        return vec!["--no-smoke".into()];
    }
    let mut flags = Vec::new();
    if !up.smoke_skip.is_empty() {
        flags.extend(["--smoke-skip".into(), checks_list(&up.smoke_skip)]);
    }
    flags.extend(duration_flag("--smoke-timeout", up.smoke_timeout));
    if let Some(path) = &up.junit {
        flags.extend(["--junit".into(), path.display().to_string()]);
    }
    if let Some(url) = &up.mlflow_url {
        flags.extend(["--mlflow-url".into(), url.clone()]);
    }
    flags
}

fn checks_list(checks: &[crate::smoke::Check]) -> String {
    checks.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

/// The flags of `delete` that differ from their defaults, to repeat them in a resume hint.
fn delete_flags(d: &DeleteArgs) -> Vec<String> {
    let mut flags = common_flags(&d.addons, &d.cluster, &d.wait);
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
fn common_flags(addons: &AddonArgs, cluster: &ClusterArgs, wait: &WaitArgs) -> Vec<String> {
    let mut flags = Vec::new();
    if addons.no_addons {
        flags.push("--no-addons".into());
    }
    if cluster.concurrency != 8 {
        flags.extend(["--concurrency".into(), cluster.concurrency.to_string()]);
    }
    flags.extend(timeout_flag(wait.timeout));
    flags
}

/// The flags of `apply` that differ from their defaults, to repeat them in a resume hint.
fn apply_flags(a: &ApplyArgs) -> Vec<String> {
    let mut flags = common_flags(&a.addons, &a.cluster, &a.wait);
    let switches = [
        (a.force_conflicts, "--force-conflicts"),
        (a.prune, "--prune"),
        (a.prune_namespaces, "--prune-namespaces"),
        (a.prune_crds, "--prune-crds"),
        (a.no_wait, "--no-wait"),
        (a.wait_jobs, "--wait-jobs"),
        (a.warnings_as_errors, "--warnings-as-errors"),
    ];
    flags.extend(switches.iter().filter(|(on, _)| *on).map(|(_, f)| f.to_string()));
    flags.extend(node_group_timeout_flag(a.node_group_timeout));
    flags
}
