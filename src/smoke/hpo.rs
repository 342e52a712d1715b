//! The `hpo` check: a tiny Optuna study (3 trials, 2 at a time) in the first HPO workspace,
//! rendered by the same batch rendering as `hpo run` and applied as its own ApplySet; then
//! proven through the workspace's optuna-dashboard API (every trial COMPLETE, its `pod_name`
//! one of the pods that ran, its note holding the logged line, an artifact stored) and removed
//! again, study included, whatever the outcome.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use serde_json::Value;
use tokio::time::Instant;

use crate::engine::cluster::retry;
use crate::engine::ready::ClusterFacts;
use crate::engine::run::{Engine, Options};
use crate::env::model::Environment;
use crate::env::LoadedEnv;
use crate::manifest::Manifest;
use crate::render::Templates;
use crate::trials::status::{attr, study_id, BATCH_ATTR};
use crate::trials::wait::{self, Wait};
use crate::trials::{BATCH_LABEL, DASHBOARD_PORT, DASHBOARD_SERVICE};

use super::proxy::{HttpCheckError, HttpEndpoint, Request};
use super::{pods, Context, Outcome, Record, SMOKE_LABEL};

/// The objective every smoke trial runs: it logs one line and uploads one artifact.
pub const OBJECTIVE: &str = include_str!("../../hpo/smoke_objective.py");

/// Trials of the smoke study.
pub const TRIALS: usize = 3;

/// Trials that run at once.
pub const PARALLELISM: usize = 2;

/// What every line the objective logs starts with, followed by the trial number.
const LOG_MARKER: &str = "trainstack smoke: trial";

/// The workspace Service trials report to.
const STORAGE_SERVICE: &str = "hpo-storage";

/// The least time reading the trials, and then removing the study and the batch (each), gets
/// even after the check's time ran out: twice this fits the grace period `run_check` allows.
const CLEANUP_BUDGET: Duration = Duration::from_secs(12);

/// The smoke batch, rendered before any check runs (rendering needs the loaded environment and
/// the templates, which a check does not get).
#[derive(Debug, Clone)]
pub struct SmokeBatch {
    /// The tenant, and so the namespace of the workspace.
    pub tenant: String,
    /// The batch name (`hpo-<name>` names its objects).
    pub name: String,
    /// The Optuna study the trials report to.
    pub study: String,
    /// The batch's objects (ConfigMap and Job), in apply order, labelled with the run id.
    pub objects: Vec<Manifest>,
}

/// The first tenant with an HPO workspace, if any.
pub fn workspace_tenant(env: &Environment) -> Option<&str> {
    if !env.components.hpo.enabled {
        return None;
    }
    env.components.tenants.list.iter().find(|t| t.hpo.enabled).map(|t| t.name.as_str())
}

/// The smoke batch's spec file: the check's study in `tenant`'s workspace, small enough to
/// schedule anywhere. Trials run on `image`, the workspace's own (`components.hpo.image`): its
/// Python takes the server's Optuna version, so the client pin is the server's, and an image
/// with the packages preinstalled installs nothing.
pub fn spec(tenant: &str, name: &str, study: &str, image: &str) -> String {
    format!(
        "# trainstack smoke: the hpo check's batch (docs/smoke.md)\n\
         name: {name}\n\
         tenant: {tenant}\n\
         study: {study}\n\
         runtime_image: {image}\n\
         direction: minimize\n\
         objective_file: objective.py\n\
         n_trials: {TRIALS}\n\
         parallelism: {PARALLELISM}\n\
         resources:\n  \
           cpu: {{request: 100m, limit: \"1\"}}\n  \
           memory: {{request: 512Mi, limit: 1Gi}}\n",
        image = serde_json::Value::from(image)
    )
}

/// Renders the smoke batch of run `run_id` for the first workspace through
/// [`crate::render::render_batch`], from a spec and objective written to a scratch directory:
/// `None` when no tenant has a workspace, the rendering error when it fails.
pub fn render(loaded: &LoadedEnv, templates: &Templates, run_id: &str) -> Result<Option<SmokeBatch>, String> {
    let Some(tenant) = workspace_tenant(&loaded.env) else { return Ok(None) };
    let name = format!("smoke-{run_id}");
    let study = format!("trainstack-smoke-{run_id}");
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, spec(tenant, &name, &study, &loaded.env.components.hpo.image))
        .and_then(|()| std::fs::write(dir.path().join("objective.py"), OBJECTIVE))
        .map_err(|e| format!("cannot write the smoke batch to {}: {e}", dir.path().display()))?;
    let (batch, mut objects) = crate::render::render_batch(loaded, &file, templates)
        .map_err(|e| format!("the smoke batch does not render: {e}"))?;
    let labels = BTreeMap::from([(SMOKE_LABEL, run_id.to_string())]);
    for m in &mut objects {
        m.add_labels(&labels);
    }
    Ok(Some(SmokeBatch { tenant: batch.tenant, name: batch.name, study, objects }))
}

/// Why the check does not apply, or `None`.
pub fn not_applicable(env: &Environment) -> Option<String> {
    if !env.components.hpo.enabled {
        return Some("components.hpo.enabled is false".into());
    }
    workspace_tenant(env)
        .is_none()
        .then(|| "no tenant has an HPO workspace (tenants.<name>.hpo.enabled)".into())
}

/// What to look at in the workspace of namespace `ns`.
struct Hints<'a> {
    ns: &'a str,
}

impl Hints<'_> {
    fn storage(&self) -> String {
        let ns = self.ns;
        format!("the Optuna gRPC storage server is not serving, so no trial can report: kubectl -n {ns} get pods -l app.kubernetes.io/name={STORAGE_SERVICE}; kubectl -n {ns} logs deploy/{STORAGE_SERVICE} (its journal is on PVC hpo-journal)")
    }

    fn dashboard(&self) -> String {
        let ns = self.ns;
        format!("the check reads the trials through the workspace's dashboard: kubectl -n {ns} get pods -l app.kubernetes.io/name={0}; kubectl -n {ns} logs deploy/{0}", DASHBOARD_SERVICE.0)
    }

    fn trials(&self, batch: &str) -> String {
        let ns = self.ns;
        format!("the pods' logs are below; kubectl -n {ns} get pods -l {BATCH_LABEL}={batch} (rerun with --keep to keep the batch and the study)")
    }
}

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> Outcome {
    let batch = match &ctx.hpo_batch {
        Ok(Some(b)) => b,
        Ok(None) => return Outcome::skipped(not_applicable(&ctx.env).unwrap_or_default()),
        Err(why) => {
            return Outcome::failed(
                why.clone(),
                "the check renders its batch like trainstack hpo run; check a --templates override of templates/hpo-batches/",
            )
        }
    };
    let ns = batch.tenant.as_str();
    let hints = Hints { ns };
    let deadline = Instant::now() + ctx.timeout;

    if let Err(outcome) = storage_ready(ctx, ns, &hints, rec).await {
        return outcome;
    }
    let mut dashboard =
        HttpEndpoint::service_proxy(&ctx.client, ns, DASHBOARD_SERVICE.0, DASHBOARD_PORT, ctx.timeout);
    let dashboard_hint = |_: u16, _: &str| hints.dashboard();
    match dashboard.call("dashboard", Request::get("/api/studies"), &dashboard_hint).await {
        Ok(_) => rec.step(format!("dashboard {ns}/{} answers", DASHBOARD_SERVICE.0)),
        Err(e) => return failure(rec, e),
    }

    let engine = batch_engine(ctx, batch);
    // From here on the batch may exist: an interrupted run removes it in its cleanup.
    ctx.hpo_pending.store(true, Ordering::SeqCst);
    let verdict = match engine.apply(&batch.objects).await {
        Ok(report) if !report.failed() => {
            rec.step(format!(
                "applied batch {ns}/{} (study {}, {TRIALS} trials, parallelism {PARALLELISM})",
                batch.name, batch.study
            ));
            prove(ctx, batch, &mut dashboard, &hints, deadline, rec).await
        }
        Ok(report) => Outcome::failed(
            format!("cannot apply batch {ns}/{}: {}", batch.name, report_errors(&report)),
            "the API server refused the batch's objects; trainstack hpo run would fail the same way",
        ),
        Err(e) => Outcome::failed(
            format!("cannot apply batch {ns}/{}: {}", batch.name, crate::error_chain::error_chain(&e)),
            "check the API server and your access to the tenant's namespace",
        ),
    };

    if ctx.keep {
        rec.step(format!(
            "kept batch {ns}/{} (kubectl -n {ns} get jobs,configmaps -l {SMOKE_LABEL}={}) and study {} (its dashboard)",
            batch.name, ctx.run_id, batch.study
        ));
        return verdict;
    }
    dashboard.renew(CLEANUP_BUDGET);
    let cleanup = cleanup(batch, &engine, &dashboard, &dashboard_hint, rec).await;
    ctx.hpo_pending.store(false, Ordering::SeqCst);
    match (verdict, cleanup) {
        (Outcome::Passed { .. }, Err(why)) => Outcome::failed(
            format!("cleanup: {why}"),
            format!(
                "remove what is left: kubectl -n {ns} delete jobs,configmaps -l {SMOKE_LABEL}={}",
                ctx.run_id
            ),
        ),
        (verdict, _) => verdict,
    }
}

/// The engine of the batch's own ApplySet (`trainstack-<env>-hpo-<batch>`), as `hpo run` applies
/// a batch: the environment's `apply --prune` never sees it.
fn batch_engine(ctx: &Context, batch: &SmokeBatch) -> Engine {
    let opts = Options { wait: false, timeout: CLEANUP_BUDGET, ..Options::default() };
    let set_name = format!("{}-hpo-{}", ctx.env.name, batch.name);
    Engine::new(
        ctx.client.clone(),
        &set_name,
        &batch.tenant,
        ClusterFacts::default(),
        opts,
        Arc::new(crate::progress::Silent),
    )
}

/// After an interrupt cut the check off: removes the study and the batch it may have left,
/// as its own cleanup would have. Returns what was removed; the error says what remains.
pub async fn cleanup_interrupted(ctx: &Context) -> Result<Vec<String>, String> {
    let Ok(Some(batch)) = &ctx.hpo_batch else { return Ok(Vec::new()) };
    if !ctx.hpo_pending.swap(false, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let hints = Hints { ns: &batch.tenant };
    let hint = |_: u16, _: &str| hints.dashboard();
    let dashboard = HttpEndpoint::service_proxy(
        &ctx.client,
        &batch.tenant,
        DASHBOARD_SERVICE.0,
        DASHBOARD_PORT,
        CLEANUP_BUDGET,
    );
    let rec = Record::default();
    let result = cleanup(batch, &batch_engine(ctx, batch), &dashboard, &hint, &rec).await;
    result.map(|()| rec.take().0)
}

/// Fails unless the storage Service exists and has a ready endpoint: without one, trials wait
/// out their connection timeout and the check would only learn it minutes later.
async fn storage_ready(ctx: &Context, ns: &str, hints: &Hints<'_>, rec: &Record) -> Result<(), Outcome> {
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    match retry("get storage service", || services.get_opt(STORAGE_SERVICE)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(Outcome::failed(
                format!("tenant {ns} has no HPO workspace in the cluster: Service {ns}/{STORAGE_SERVICE} does not exist"),
                "run trainstack apply; trainstack status shows which objects are missing",
            ))
        }
        Err(e) => return Err(Outcome::failed(format!("cannot read Service {ns}/{STORAGE_SERVICE}: {e}"), hints.storage())),
    }
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={STORAGE_SERVICE}"));
    let slices = match retry("list storage endpoints", || slices.list(&lp)).await {
        Ok(list) => list.items,
        Err(e) => {
            return Err(Outcome::failed(
                format!("cannot read the endpoints of Service {ns}/{STORAGE_SERVICE}: {e}"),
                hints.storage(),
            ))
        }
    };
    // An endpoint without a ready condition counts as ready, as the API documents it.
    let ready = slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .count();
    if ready == 0 {
        return Err(Outcome::failed(
            format!("storage down: Service {ns}/{STORAGE_SERVICE} has no ready endpoints, so trials cannot report"),
            hints.storage(),
        ));
    }
    rec.step(format!("storage Service {ns}/{STORAGE_SERVICE} has {ready} ready endpoint(s)"));
    Ok(())
}

/// Waits for the batch and proves what its trials left in the workspace.
async fn prove(
    ctx: &Context,
    batch: &SmokeBatch,
    dashboard: &mut HttpEndpoint<'_>,
    hints: &Hints<'_>,
    deadline: Instant,
    rec: &Record,
) -> Outcome {
    let ns = batch.tenant.as_str();
    let jobs: Vec<String> =
        batch.objects.iter().filter(|m| m.kind() == "Job").map(|m| m.name().to_string()).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let waited =
        wait::wait(&ctx.client, ns, &batch.name, &jobs, Wait::All, left, &crate::progress::Silent).await;

    let selector = format!("{BATCH_LABEL}={}", batch.name);
    let ran = pods::list(&ctx.client, ns, &selector).await.unwrap_or_default();
    let mut pod_names = Vec::new();
    for p in &ran {
        let name = p.metadata.name.clone().unwrap_or_default();
        rec.log(&format!("pod {ns}/{name}"), &pods::logs(&ctx.client, ns, &name).await);
        pod_names.push(name);
    }
    if let Err(e) = waited {
        let described: Vec<String> = ran.iter().map(pods::describe).collect();
        return Outcome::failed(
            format!(
                "batch {ns}/{}: {e}; pods: {}",
                batch.name,
                if described.is_empty() { "none".into() } else { described.join("; ") }
            ),
            hints.trials(&batch.name),
        );
    }
    rec.step(format!("job(s) {} finished; pods {}", jobs.join(", "), pod_names.join(", ")));
    // Trials that finished just in time are still read.
    if dashboard.remaining() < CLEANUP_BUDGET {
        dashboard.renew(CLEANUP_BUDGET);
    }

    let hint = |_: u16, _: &str| hints.dashboard();
    let id = match study_id(dashboard, &batch.study, &hint).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Outcome::failed(
                format!("no trial reached the storage: the dashboard has no study {}", batch.study),
                format!(
                    "{}; a trial that cannot reach the storage says so in its log",
                    hints.trials(&batch.name)
                ),
            )
        }
        Err(e) => return failure(rec, e),
    };
    let detail = match dashboard.call("read study", Request::get(format!("/api/studies/{id}")), &hint).await {
        Ok(reply) => match reply.json() {
            Ok(doc) => doc,
            Err(reason) => return Outcome::failed(format!("read study: {reason}"), hints.dashboard()),
        },
        Err(e) => return failure(rec, e),
    };
    let trials: Vec<&Value> = detail["trials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| attr(t, BATCH_ATTR) == Some(batch.name.as_str()))
        .collect();
    judge(&trials, &pod_names, batch, hints, rec)
}

/// The verdict on the batch's trials as the dashboard serves them.
fn judge(trials: &[&Value], pods: &[String], batch: &SmokeBatch, hints: &Hints<'_>, rec: &Record) -> Outcome {
    let mut problems = Vec::new();
    let mut artifacts = 0;
    for t in trials {
        let number = t["number"].as_i64().unwrap_or(-1);
        let state = t["state"].as_str().unwrap_or("unknown");
        let note = t["note"]["body"].as_str().unwrap_or_default();
        if state != "Complete" {
            problems.push(format!("trial {number} ended {}: {}", state.to_uppercase(), note_error(note)));
            continue;
        }
        let pod = attr(t, "pod_name").unwrap_or_default();
        if !pods.iter().any(|p| p == pod) {
            problems.push(format!("trial {number}: its pod_name {pod:?} is none of the batch's pods"));
        }
        let line = format!("{LOG_MARKER} {number} ");
        if !note.contains(&line) {
            problems.push(format!("trial {number}: its note lacks the logged line {line:?}…: {note:?}"));
        }
        let stored = t["artifacts"].as_array().map_or(0, Vec::len);
        artifacts += stored;
        rec.step(format!(
            "trial {number} COMPLETE on pod {pod}; note holds its log line; {stored} artifact(s)"
        ));
    }
    if trials.len() != TRIALS {
        problems.push(format!(
            "{} of {TRIALS} trials reached the storage (a pod that cannot reach it creates none)",
            trials.len()
        ));
    }
    if problems.is_empty() && artifacts == 0 {
        problems.push("no trial's artifact is in the artifact store".into());
    }
    if problems.is_empty() {
        return Outcome::passed(format!(
            "{TRIALS} trials of study {} COMPLETE in workspace {} from pods {}, with notes and {artifacts} artifact(s)",
            batch.study,
            batch.tenant,
            pods.join(", ")
        ));
    }
    let failed_objective = trials.iter().any(|t| t["state"] == "Fail");
    let hint = if failed_objective {
        format!("the objective is trainstack's own (it logs a line and uploads one file to the artifact store at /artifacts, PVC hpo-artifacts), so a trial that raised points at the workspace: the error above and the pod logs below say which part; {}", hints.trials(&batch.name))
    } else {
        hints.trials(&batch.name)
    };
    Outcome::failed(problems.join("; "), hint)
}

/// The error a failed trial's note ends with (the runner writes the traceback there), on one line.
fn note_error(note: &str) -> String {
    let last = note
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with("```"))
        .unwrap_or("its note is empty; the pod log says why");
    last.to_string()
}

/// Removes the study (with its artifacts) and the batch's objects; the error says what remains.
async fn cleanup(
    batch: &SmokeBatch,
    engine: &Engine,
    dashboard: &HttpEndpoint<'_>,
    hint: super::proxy::UpstreamHint<'_>,
    rec: &Record,
) -> Result<(), String> {
    let ns = batch.tenant.as_str();
    let mut remains = Vec::new();
    // The study exists once a trial started, even when the check failed before reading it.
    match study_id(dashboard, &batch.study, hint).await {
        Ok(Some(id)) => match delete_study(dashboard, id, &batch.study, hint).await {
            Ok(done) => rec.step(done),
            Err(e) => remains.push(format!("study {} ({e})", batch.study)),
        },
        Ok(None) => {}
        Err(e) => remains.push(format!("study {} if a trial created it ({e})", batch.study)),
    }
    match engine.delete(&batch.objects).await {
        Ok(report) if !report.failed() => rec.step(format!("deleted batch {ns}/{}", batch.name)),
        Ok(report) => remains.push(format!("batch {ns}/{} ({})", batch.name, report_errors(&report))),
        Err(e) => {
            remains.push(format!("batch {ns}/{} ({})", batch.name, crate::error_chain::error_chain(&e)))
        }
    }
    if remains.is_empty() {
        Ok(())
    } else {
        let line = format!("left behind: {}", remains.join("; "));
        rec.step(line.clone());
        Err(line)
    }
}

/// Deletes study `id` through the dashboard with its artifacts; returns what was done. Optuna
/// records an artifact before it writes the file, so a failed upload leaves a record without a
/// file, and optuna-dashboard 0.21.0 answers 500 to deleting a study with such a record and its
/// artifacts (it stops at the missing file). The study then goes without its artifacts, and the
/// step names the artifacts whose files may remain.
async fn delete_study(
    dashboard: &HttpEndpoint<'_>,
    id: i64,
    study: &str,
    hint: super::proxy::UpstreamHint<'_>,
) -> Result<String, HttpCheckError> {
    let detail = dashboard.call("read study", Request::get(format!("/api/studies/{id}")), hint).await?;
    let detail = detail.json().unwrap_or_default();
    let artifacts: Vec<&str> = detail["trials"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["artifacts"].as_array().into_iter().flatten())
        .filter_map(|a| a["artifact_id"].as_str())
        .collect();
    let path = format!("/api/studies/{id}");
    match dashboard.call("delete study", Request::delete(path.clone()), hint).await {
        Ok(_) => Ok(format!("deleted study {study} and its {} artifact(s)", artifacts.len())),
        Err(first) => {
            let body = serde_json::json!({"remove_associated_artifacts": false});
            dashboard.call("delete study", Request::delete_json(path, &body), hint).await?;
            Ok(format!(
                "deleted study {study} without its artifacts, which the dashboard could not remove ({}); files of artifact(s) {} may remain in PVC hpo-artifacts",
                first.reason,
                if artifacts.is_empty() { "none".to_string() } else { artifacts.join(", ") }
            ))
        }
    }
}

/// The errors of an engine report, on one line.
fn report_errors(report: &crate::engine::run::Report) -> String {
    let errors: Vec<String> = report
        .changes
        .iter()
        .filter_map(|c| Some(format!("{}: {}", c.display_id(), c.error.as_ref()?)))
        .chain(report.not_ready.iter().cloned())
        .collect();
    if errors.is_empty() {
        "some objects did not finish".into()
    } else {
        errors.join("; ")
    }
}

/// An HTTP failure as the check's outcome.
fn failure(rec: &Record, e: HttpCheckError) -> Outcome {
    rec.step(format!("failed at: {}", e.step));
    if !e.logs.is_empty() {
        rec.log("requests", &e.logs);
    }
    Outcome::failed(format!("{}: {}", e.step, e.reason), e.hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_trials_error_is_the_last_line_of_its_note() {
        let note = "```text\ntrainstack: the objective raised:\nTraceback (most recent call last):\n  File \"x\"\nNotADirectoryError: [Errno 20] Not a directory: '/artifacts/ab'\n```";
        assert_eq!(note_error(note), "NotADirectoryError: [Errno 20] Not a directory: '/artifacts/ab'");
        assert_eq!(note_error(""), "its note is empty; the pod log says why");
    }
}
