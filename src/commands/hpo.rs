//! `trainstack hpo run|status`: apply one trial batch and wait for it; show the batches of the
//! environment's tenants.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::render::Templates;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::Client;

use crate::connect;
use crate::engine::cluster::retry;
use crate::engine::run::{Engine, Options};
use crate::manifest::Manifest;
use crate::output;
use crate::output::progress::Bars;
use crate::settings::{HpoRunSettings, HpoStatusSettings};
use crate::trials::status::{self, BatchStatus, Query};
use crate::trials::wait;
use crate::Error;

/// Bound on reading the dashboard for a status.
const DASHBOARD_BUDGET: Duration = Duration::from_secs(60);

/// The workspace Service every batch's trials write to.
const STORAGE_SERVICE: &str = "hpo-storage";

/// Runs `hpo status`.
pub async fn status(args: &HpoStatusSettings) -> Result<ExitCode, Error> {
    let loaded = super::load(&args.load).await?;
    let env = &loaded.env;
    let client = connect::connect(&args.connection.connect_options(None), env).await?;
    let namespaces: Vec<String> = env.components.tenants.list.iter().map(|t| t.name.clone()).collect();
    let batches = status::read(&client, &namespaces, &args.query, DASHBOARD_BUDGET)
        .await
        .map_err(anyhow::Error::from)?;
    output::hpo::print(args.format, &batches, &namespaces)?;
    Ok(exit_code(&batches))
}

/// 1 when some batch's trials could not be read.
fn exit_code(batches: &[BatchStatus]) -> ExitCode {
    if batches.iter().any(|b| b.error.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One batch's rendered objects, in its tenant's namespace.
struct Batch {
    name: String,
    namespace: String,
    objects: Vec<Manifest>,
}

/// Fails unless the tenant's workspace (its storage Service) is in the cluster.
async fn workspace_exists(client: &Client, namespace: &str) -> Result<(), Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let found =
        retry(&format!("get service {namespace}/{STORAGE_SERVICE}"), || api.get_opt(STORAGE_SERVICE)).await?;
    if found.is_none() {
        return Err(anyhow::anyhow!(
            "tenant {namespace} has no HPO workspace in namespace {namespace} (service {STORAGE_SERVICE} not found): enable tenants.{namespace}.hpo and run trainstack apply first"
        )
        .into());
    }
    Ok(())
}

/// Runs `hpo run`.
pub async fn run(args: &HpoRunSettings) -> Result<ExitCode, Error> {
    // The batch alone, checked like every spec in batches_dir (tenant, workspace, limits), with
    // no add-ons, jobs or other components: only its own objects are applied.
    let loaded = super::load(&args.prepare.load).await?;
    let templates = Templates::load(args.prepare.templates.as_deref())?;
    let (spec, objects) = crate::render::render_batch(&loaded, &args.batch, &templates)?;
    let env = &loaded.env;
    let client = connect::connect(&args.connection.connect_options(None), env).await?;
    workspace_exists(&client, &spec.tenant).await?;
    let batch = Batch { name: spec.name, namespace: spec.tenant, objects };

    // Its own ApplySet (parent Secret trainstack-<env>-hpo-<batch> in the tenant's namespace):
    // the environment's `apply --prune` never lists it, so never deletes a running batch.
    let progress = Arc::new(Bars::new(false));
    let opts = Options { concurrency: args.concurrency, wait: false, ..Options::default() };
    let set_name = format!("{}-hpo-{}", env.name, batch.name);
    let engine = Engine::new(
        client.clone(),
        &set_name,
        &batch.namespace,
        super::cluster::facts(env),
        opts,
        progress.clone(),
    );
    let report = engine.apply(&batch.objects).await?;
    if report.failed() {
        output::report::print(args.format, &report, None, "hpo run", false)?;
        return Ok(ExitCode::from(1));
    }
    let jobs: Vec<String> =
        batch.objects.iter().filter(|m| m.kind() == "Job").map(|m| m.name().to_string()).collect();
    let waited = wait::wait(
        &client,
        &batch.namespace,
        &batch.name,
        &jobs,
        args.wait,
        args.wait_timeout,
        progress.as_ref(),
    )
    .await;
    let query = Query { study: None, batch: Some(batch.name.clone()) };
    let batches = status::read(&client, std::slice::from_ref(&batch.namespace), &query, DASHBOARD_BUDGET)
        .await
        .map_err(anyhow::Error::from)?;
    output::hpo::print(args.format, &batches, std::slice::from_ref(&batch.namespace))?;
    match waited {
        Ok(()) => Ok(exit_code(&batches)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
