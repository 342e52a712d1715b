//! `trainstack smoke`: run the checks, clean up (also on Ctrl-C), report, exit 0 only when
//! nothing failed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use crate::connect;
use crate::engine::run::{Engine, Options};
use crate::output;
use crate::output::progress::Bars;
use crate::render::Templates;
use crate::settings::{Format, SmokeSettings};
use crate::smoke::report::RunReport;
use crate::smoke::{checks, namespace, Context, SMOKE_NAMESPACE};
use crate::Error;

use super::Prepared;

/// Exit code after an interrupt, as shells report SIGINT.
const INTERRUPTED: u8 = 130;

/// Runs `smoke`.
pub async fn run(args: &SmokeSettings) -> Result<ExitCode, Error> {
    smoke(args, &super::prepare(&args.prepare).await?).await
}

/// Runs the checks against the rendered set (`up` hands over the one its apply step used).
pub async fn smoke(args: &SmokeSettings, prepared: &Prepared) -> Result<ExitCode, Error> {
    // Opened before any check runs, so a bad path fails in a second rather than after them.
    let junit = match &args.junit {
        Some(path) => Some((
            path.clone(),
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("--junit {}: cannot write the file: {e}", path.display()))?,
        )),
        None => None,
    };
    let env = prepared.loaded.env.clone();
    let client = connect::connect(&args.connection.connect_options(None), &env).await?;
    // The objects check compares Secrets with their Secrets Manager values, as status does.
    let set = super::secrets::with_secret_data(prepared).await?;
    let opts = Options { timeout: args.timeout, ..Options::default() };
    // Quiet as before: smoke's own engine calls are reads, listed per check in the results.
    let progress = Arc::new(Bars::new(false));
    let facts = super::cluster::facts(&env);
    let engine = Engine::new(client.clone(), &env.name, &env.platform_namespace, facts, opts, progress);
    let run_id = crate::smoke::new_run_id();
    let hpo_batch = Templates::load(args.prepare.templates.as_deref())
        .map_err(|e| format!("the smoke batch does not render: {e}"))
        .and_then(|templates| crate::smoke::hpo::render(&prepared.loaded, &templates, &run_id));
    let ctx = Context {
        client,
        engine,
        env,
        set,
        run_id,
        timeout: args.timeout,
        mlflow_url: args.mlflow_url.clone(),
        namespace_reached: Default::default(),
        hpo_batch,
        keep: args.keep,
        hpo_pending: Default::default(),
    };
    let selection = checks::select(&args.only, &args.skip);

    let results = tokio::select! {
        r = checks::run_all(&ctx, &selection) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if results.is_none() {
        eprintln!("smoke: interrupted; removing the smoke objects of run {}", ctx.run_id);
    }
    let (cleanup, cleanup_failed) = tokio::select! {
        c = finish(&ctx, args.keep) => c,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("smoke: cleanup interrupted; remove what is left with: kubectl delete namespace {SMOKE_NAMESPACE}");
            return Ok(ExitCode::from(INTERRUPTED));
        }
    };
    let Some(results) = results else {
        for line in &cleanup {
            eprintln!("  {line}");
        }
        return Ok(ExitCode::from(INTERRUPTED));
    };

    let report = RunReport::new(&ctx.run_id, &ctx.env.name, results, cleanup);
    if let Some((path, mut file)) = junit {
        file.write_all(output::smoke::junit(&report).as_bytes())
            .map_err(|e| anyhow::anyhow!("--junit {}: {e}", path.display()))?;
    }
    let text = match args.reporting.format {
        Format::Text => output::smoke::table(&report, args.reporting.verbose),
        Format::Json => serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)? + "\n",
        Format::Yaml => crate::yaml::to_string(&report),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(if report.summary.failed > 0 || cleanup_failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Cleans up (or says what `--keep` kept); the lines go into the report, and `true` means
/// cleanup failed, which fails the run: smoke objects must not pile up in a cluster.
async fn finish(ctx: &Context, keep: bool) -> (Vec<String>, bool) {
    if keep {
        return (
            vec![format!(
                "kept the smoke objects: kubectl -n {SMOKE_NAMESPACE} get all -l {}; remove them with kubectl delete namespace {SMOKE_NAMESPACE}",
                ctx.selector()
            )],
            false,
        );
    }
    let (mut lines, mut failed) = match namespace::cleanup(ctx).await {
        Ok(removed) => (removed.into_iter().map(|r| format!("removed {r}")).collect(), false),
        Err(e) => (
            vec![format!(
                "cleanup failed: {e}; remove what is left with kubectl delete namespace {SMOKE_NAMESPACE}"
            )],
            true,
        ),
    };
    // Only an interrupt leaves the hpo check's batch: the check removes it itself otherwise.
    match crate::smoke::hpo::cleanup_interrupted(ctx).await {
        Ok(done) => lines.extend(done.into_iter().map(|d| format!("hpo check: {d}"))),
        Err(e) => {
            lines.push(format!("cleanup failed: hpo check: {e}"));
            failed = true;
        }
    }
    (lines, failed)
}
