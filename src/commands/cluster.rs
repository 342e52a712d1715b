//! `diff`, `apply`, `delete` and `status`: the engine driven from the command line.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{ApplyArgs, ClusterArgs, DeleteArgs, DiffArgs, GlobalArgs, OutputFormat, StatusArgs};
use crate::engine::cluster::{self, ConnectOptions};
use crate::engine::plan::{self, Action};
use crate::engine::ready::ClusterFacts;
use crate::engine::run::{Engine, Options, Report};
use crate::env::model::{GpuProvider, TargetKind};
use crate::Error;

use super::Prepared;

fn options(global: &GlobalArgs, c: &ClusterArgs) -> Options {
    Options {
        concurrency: usize::from(c.concurrency),
        timeout: c.timeout,
        verbose: global.verbose > 0,
        ..Options::default()
    }
}

async fn engine(global: &GlobalArgs, prepared: &Prepared, opts: Options) -> Result<Engine, Error> {
    let env = &prepared.loaded.env;
    let client = cluster::connect(
        &ConnectOptions { kubeconfig: global.kubeconfig.clone(), context: global.context.clone() },
        env,
    )
    .await?;
    let gpu = &env.components.gpu;
    let facts = ClusterFacts {
        // kind workers only stand in for GPU pools; they never run the device plugin.
        expects_gpu_nodes: gpu.enabled
            && env.target.kind == TargetKind::Eks
            && gpu.provider != GpuProvider::Kind,
    };
    Ok(Engine::new(client, &env.name, &env.platform_namespace, facts, opts))
}

/// `diff`: exit 0 in sync, 2 with changes, 1 on error.
pub async fn diff(global: &GlobalArgs, args: &DiffArgs) -> Result<ExitCode, Error> {
    let prepared = super::prepare(global, &args.addons).await?;
    let opts = Options {
        show_secrets: args.show_secrets,
        force_conflicts: args.force_conflicts,
        ..options(global, &args.cluster)
    };
    let report = engine(global, &prepared, opts).await?.diff(&prepared.set).await?;
    print_report(global.output, &report, "diff", global.verbose > 0)?;
    Ok(if report.summary.failed > 0 {
        ExitCode::from(1)
    } else if report.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `apply`: exit 0 when everything applied (and was ready), 1 otherwise.
pub async fn apply(global: &GlobalArgs, args: &ApplyArgs) -> Result<ExitCode, Error> {
    let prepared = super::prepare(global, &args.addons).await?;
    let opts = Options {
        force_conflicts: args.force_conflicts,
        dry_run: args.dry_run,
        prune: args.prune,
        prune_namespaces: args.prune_namespaces,
        prune_crds: args.prune_crds,
        wait: !args.no_wait,
        wait_complete: args.wait_jobs,
        ..options(global, &args.cluster)
    };
    let report = engine(global, &prepared, opts).await?.apply(&prepared.set).await?;
    print_report(
        global.output,
        &report,
        if args.dry_run { "apply --dry-run" } else { "apply" },
        global.verbose > 0,
    )?;
    Ok(if report.failed() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `delete`: asks first on a terminal; refuses without `--yes` elsewhere.
pub async fn delete(global: &GlobalArgs, args: &DeleteArgs) -> Result<ExitCode, Error> {
    let prepared = super::prepare(global, &args.addons).await?;
    let env = &prepared.loaded.env;
    if !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            return Err(anyhow::anyhow!(
                "refusing to delete environment {:?} without confirmation: pass --yes",
                env.name
            )
            .into());
        }
        eprint!(
            "Delete all {} objects of environment {:?} (context {})? Type the environment name to confirm: ",
            prepared.set.len(),
            env.name,
            global
                .context
                .clone()
                .or_else(|| cluster::default_context(env))
                .unwrap_or_else(|| "current".into())
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(anyhow::Error::from)?;
        if answer.trim() != env.name {
            eprintln!("not confirmed; nothing was deleted");
            return Ok(ExitCode::from(1));
        }
    }
    let opts = Options { dry_run: args.dry_run, ..options(global, &args.cluster) };
    let report = engine(global, &prepared, opts).await?.delete(&prepared.set).await?;
    print_report(global.output, &report, "delete", global.verbose > 0)?;
    Ok(if report.failed() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// One row of `status`.
#[derive(Debug, Serialize)]
struct Row {
    component: String,
    object: String,
    state: &'static str,
    ready: String,
}

/// `status`: drift and readiness per component; exit 0 when all in sync and ready, 2 otherwise.
pub async fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<ExitCode, Error> {
    let prepared = super::prepare(global, &args.addons).await?;
    let engine = engine(global, &prepared, options(global, &args.cluster)).await?;
    let report = engine.diff(&prepared.set).await?;
    let live = engine.readiness(&prepared.set).await?;
    let mut rows = Vec::new();
    for (m, ready) in prepared.set.iter().zip(live) {
        let c = report
            .changes
            .iter()
            .find(|c| c.kind == m.kind() && c.name == m.name() && c.namespace.as_deref() == m.namespace());
        let state = match c {
            Some(c) if c.error.is_some() => "error",
            Some(c) if c.action == Action::Create => "missing",
            Some(c) if c.action == Action::Update => "drifted",
            _ => "in sync",
        };
        let component = match &m.origin {
            crate::manifest::Origin::Template { component, .. } => component.clone(),
            crate::manifest::Origin::Addon { name } => format!("addon:{name}"),
        };
        rows.push(Row { component, object: m.id(), state, ready });
    }
    let healthy = rows.iter().all(|r| r.state == "in sync" && r.ready == "ready");
    let mut out = std::io::stdout().lock();
    match global.output {
        OutputFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?)
        }
        OutputFormat::Yaml => write!(out, "{}", crate::yaml::to_string(&rows)),
        OutputFormat::Text => {
            let w = rows.iter().map(|r| r.object.len()).max().unwrap_or(6).max(6);
            let cw = rows.iter().map(|r| r.component.len()).max().unwrap_or(9).max(9);
            let mut res = writeln!(out, "{:cw$}  {:w$}  {:8}  READY", "COMPONENT", "OBJECT", "STATE");
            for r in &rows {
                res = res.and(writeln!(
                    out,
                    "{:cw$}  {:w$}  {:8}  {}",
                    r.component, r.object, r.state, r.ready
                ));
            }
            res
        }
    }
    .map_err(anyhow::Error::from)?;
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn print_report(format: OutputFormat, report: &Report, verb: &str, verbose: bool) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let color = std::io::stdout().is_terminal();
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(report).map_err(anyhow::Error::from)? + "\n",
        OutputFormat::Yaml => crate::yaml::to_string(report),
        OutputFormat::Text => {
            let mut t = String::new();
            for c in &report.changes {
                let (sign, label) = match c.action {
                    Action::Create => ('+', "create"),
                    Action::Update => ('~', "update"),
                    Action::Unchanged => ('=', "unchanged"),
                    Action::Prune => ('-', "prune"),
                };
                if let Some(e) = &c.error {
                    t.push_str(&format!("! {} failed: {e}\n", c.display_id()));
                    continue;
                }
                if c.action == Action::Unchanged {
                    if verbose {
                        t.push_str(&format!("{sign} {} ({label})\n", c.display_id()));
                    }
                    continue;
                }
                t.push_str(&format!("{sign} {} ({label})\n", c.display_id()));
                if c.action != Action::Prune && !c.diff.is_empty() {
                    t.push_str(&if color { plan::colorize(&c.diff) } else { c.diff.clone() });
                }
            }
            for k in &report.kept {
                t.push_str(&format!("  kept {k}\n"));
            }
            for n in &report.not_ready {
                t.push_str(&format!("! not ready: {n}\n"));
            }
            let s = &report.summary;
            t.push_str(&format!(
                "{verb}: {} created, {} configured, {} unchanged, {} pruned, {} failed\n",
                s.created, s.configured, s.unchanged, s.pruned, s.failed
            ));
            t
        }
    };
    out.write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(())
}
