//! The MLflow check: `/health`, then a round trip through the REST API (experiment, run,
//! parameter, metric, an artifact through the server's artifact proxy), everything read back
//! and compared, and cleaned up whether or not a step failed.

use std::time::Duration;

use serde_json::{json, Value};

use super::proxy::{unique_name, HttpCheckError, HttpEndpoint, HttpReport, Request};

/// Where the tracking server is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowTarget {
    /// Namespace of the Service.
    pub namespace: String,
    /// Service name (also the Deployment named in hints).
    pub service: String,
    /// Service port.
    pub port: u16,
    /// The server's URL (an ingress, a port-forward): requests go there directly instead of
    /// through the service proxy.
    pub url: Option<String>,
    /// Basic-auth user and password (`--app-name basic-auth`), and the Secret they came from.
    pub basic_auth: Option<BasicAuth>,
}

/// MLflow admin credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// `namespace/name` of the Secret holding them, for hints.
    pub secret: String,
}

const API: &str = "/api/2.0/mlflow";
const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts";
const PARAM: &str = "trainstack_smoke_param";
const METRIC: &str = "trainstack_smoke_metric";
const METRIC_VALUE: f64 = 0.25;
const ARTIFACT_FILE: &str = "trainstack-smoke.txt";
/// The least time cleanup gets, even after the check's own time ran out.
const CLEANUP_BUDGET: Duration = Duration::from_secs(15);

/// What exists on the server so far, for cleanup.
#[derive(Default)]
struct Created {
    experiment: Option<String>,
    run: Option<String>,
    artifact: Option<String>,
}

/// Runs the MLflow check within `timeout` (cleanup gets its own short budget after it).
pub async fn check(
    client: &kube::Client,
    target: &MlflowTarget,
    timeout: Duration,
) -> Result<HttpReport, HttpCheckError> {
    let endpoint = match &target.url {
        Some(url) => HttpEndpoint::direct(url, timeout).map_err(|reason| HttpCheckError {
            step: "health".into(),
            reason,
            hint: String::new(),
            logs: String::new(),
        })?,
        None => HttpEndpoint::service_proxy(client, &target.namespace, &target.service, target.port, timeout),
    };
    let credentials = target.basic_auth.as_ref().map(|a| (a.user.clone(), a.password.clone()));
    let mut proxy = endpoint.basic_auth(credentials.as_ref());
    let mut steps = Vec::new();
    let mut created = Created::default();
    let outcome = round_trip(&proxy, target, &mut steps, &mut created).await;
    if proxy.remaining() < CLEANUP_BUDGET {
        proxy.renew(CLEANUP_BUDGET);
    }
    let cleanup = clean_up(&proxy, target, &created, &mut steps).await;
    match (outcome, cleanup) {
        (Ok(()), Ok(())) => Ok(HttpReport { steps, logs: proxy.transcript() }),
        (Ok(()), Err(e)) => Err(e),
        (Err(mut e), cleanup) => {
            if let Err(c) = cleanup {
                e.reason.push_str(&format!(" (cleanup also failed at {}: {})", c.step, c.reason));
            }
            e.logs = proxy.transcript();
            Err(e)
        }
    }
}

async fn round_trip(
    proxy: &HttpEndpoint<'_>,
    target: &MlflowTarget,
    steps: &mut Vec<String>,
    created: &mut Created,
) -> Result<(), HttpCheckError> {
    let hints = Hints { target };
    let tracking = |status: u16, body: &str| hints.tracking(status, body);
    let artifacts = |status: u16, body: &str| hints.artifacts(status, body);

    let step = "health";
    let reply = proxy.call(step, Request::get("/health"), &tracking).await?;
    let text = String::from_utf8_lossy(&reply.body).trim().to_string();
    if text != "OK" {
        return Err(mismatch(step, format!("GET /health answered {text:?}, expected \"OK\""), &hints));
    }
    steps.push("GET /health answered OK".into());

    let step = "create experiment";
    let name = unique_name("trainstack-smoke");
    let reply = proxy
        .call(
            step,
            Request::post_json(format!("{API}/experiments/create"), &json!({"name": name})),
            &tracking,
        )
        .await?;
    let experiment = field(step, &reply.json(), &["experiment_id"], &hints)?;
    created.experiment = Some(experiment.clone());
    steps.push(format!("created experiment {name} (id {experiment})"));

    let step = "create run";
    let body = json!({
        "experiment_id": experiment,
        "run_name": "trainstack-smoke",
        "start_time": now_ms(),
        "tags": [{"key": "trainstack.io/smoke", "value": "true"}],
    });
    let reply = proxy.call(step, Request::post_json(format!("{API}/runs/create"), &body), &tracking).await?;
    let run_doc = reply.json();
    let run = field(step, &run_doc, &["run", "info", "run_id"], &hints)?;
    let artifact_uri = field(step, &run_doc, &["run", "info", "artifact_uri"], &hints)?;
    created.run = Some(run.clone());
    steps.push(format!("created run {run}"));

    let step = "log parameter";
    let body = json!({"run_id": run, "key": PARAM, "value": name});
    proxy.call(step, Request::post_json(format!("{API}/runs/log-parameter"), &body), &tracking).await?;
    steps.push(format!("logged parameter {PARAM}={name}"));

    let step = "log metric";
    let body = json!({"run_id": run, "key": METRIC, "value": METRIC_VALUE, "timestamp": now_ms(), "step": 0});
    proxy.call(step, Request::post_json(format!("{API}/runs/log-metric"), &body), &tracking).await?;
    steps.push(format!("logged metric {METRIC}={METRIC_VALUE}"));

    let step = "upload artifact";
    let Some(root) = proxied_artifact_path(&artifact_uri) else {
        return Err(HttpCheckError {
            step: step.into(),
            reason: format!(
                "the run's artifact URI is {artifact_uri}: the server hands out storage URIs instead of proxying artifacts"
            ),
            hint: "start the server with --serve-artifacts --artifacts-destination <store> and without --default-artifact-root".into(),
            logs: String::new(),
        });
    };
    let artifact = format!("{root}/{ARTIFACT_FILE}");
    let content = format!("trainstack smoke artifact for {name}\n").into_bytes();
    proxy
        .call(step, Request::put_bytes(format!("{ARTIFACTS}/{artifact}"), content.clone()), &artifacts)
        .await?;
    created.artifact = Some(artifact.clone());
    steps.push(format!("uploaded artifact {artifact} ({} bytes)", content.len()));

    let step = "read run";
    let reply = proxy.call(step, Request::get(format!("{API}/runs/get?run_id={run}")), &tracking).await?;
    let doc = reply.json().map_err(|e| mismatch(step, e, &hints))?;
    let data = &doc["run"]["data"];
    let param = find_key(&data["params"], PARAM).and_then(|p| p["value"].as_str().map(str::to_string));
    if param.as_deref() != Some(name.as_str()) {
        return Err(mismatch(
            step,
            format!("parameter {PARAM} reads back as {param:?}, logged {name:?}"),
            &hints,
        ));
    }
    let metric = find_key(&data["metrics"], METRIC).and_then(|m| m["value"].as_f64());
    if metric != Some(METRIC_VALUE) {
        return Err(mismatch(
            step,
            format!("metric {METRIC} reads back as {metric:?}, logged {METRIC_VALUE}"),
            &hints,
        ));
    }
    steps.push("read back the run: parameter and metric match".into());

    let step = "download artifact";
    let reply = proxy.call(step, Request::get(format!("{ARTIFACTS}/{artifact}")), &artifacts).await?;
    if reply.body != content {
        return Err(mismatch(
            step,
            format!(
                "the artifact reads back as {} bytes that differ from the {} uploaded",
                reply.body.len(),
                content.len()
            ),
            &hints,
        ));
    }
    steps.push(format!("downloaded the artifact: {} bytes match", content.len()));
    Ok(())
}

/// Deletes what the round trip created, newest first; every deletion is tried.
async fn clean_up(
    proxy: &HttpEndpoint<'_>,
    target: &MlflowTarget,
    created: &Created,
    steps: &mut Vec<String>,
) -> Result<(), HttpCheckError> {
    let hints = Hints { target };
    let tracking = |status: u16, body: &str| hints.tracking(status, body);
    let artifacts = |status: u16, body: &str| hints.artifacts(status, body);
    let mut first_error = None;
    if let Some(artifact) = &created.artifact {
        match proxy
            .call("delete artifact", Request::delete(format!("{ARTIFACTS}/{artifact}")), &artifacts)
            .await
        {
            Ok(_) => steps.push(format!("deleted artifact {artifact}")),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(run) = &created.run {
        let req = Request::post_json(format!("{API}/runs/delete"), &json!({"run_id": run}));
        match proxy.call("delete run", req, &tracking).await {
            Ok(_) => steps.push(format!("deleted run {run}")),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(experiment) = &created.experiment {
        let req =
            Request::post_json(format!("{API}/experiments/delete"), &json!({"experiment_id": experiment}));
        match proxy.call("delete experiment", req, &tracking).await {
            Ok(_) => steps.push(format!("deleted experiment {experiment}")),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// What to look at when MLflow itself answers with an error.
struct Hints<'t> {
    target: &'t MlflowTarget,
}

impl Hints<'_> {
    fn logs(&self) -> String {
        format!("kubectl -n {} logs deploy/{}", self.target.namespace, self.target.service)
    }

    fn tracking(&self, status: u16, body: &str) -> String {
        match status {
            401 => self.unauthorized(),
            403 if body.contains("Invalid Host header") => format!(
                "MLflow's DNS-rebinding guard rejected the Host header, which the service proxy sets to the API server's own host name: add that name (or a pattern such as *.eks.amazonaws.com) to components.mlflow.allowed_hosts, which feeds MLFLOW_SERVER_ALLOWED_HOSTS, and apply; {}",
                self.logs()
            ),
            403 => format!("the MLflow user lacks permission for this call: {}", self.logs()),
            0 => format!("the tracking server did not answer in time: {}", self.logs()),
            _ => format!(
                "{}; check the backend store (the database in --backend-store-uri) is reachable and migrated",
                self.logs()
            ),
        }
    }

    fn artifacts(&self, status: u16, body: &str) -> String {
        match status {
            401 | 403 => self.tracking(status, body),
            404 if !body.contains("RESOURCE_DOES_NOT_EXIST") => format!(
                "the server does not proxy artifacts: start it with --serve-artifacts; {}",
                self.logs()
            ),
            _ => format!(
                "{}; check the artifact store (--artifacts-destination) and its credentials (AWS keys or the IRSA role, bucket, MLFLOW_S3_ENDPOINT_URL)",
                self.logs()
            ),
        }
    }

    fn unauthorized(&self) -> String {
        let stripped = "kube-apiserver removes the Authorization header from service-proxy requests after authenticating you (kubernetes/kubernetes#38775)";
        match (&self.target.basic_auth, &self.target.url) {
            (Some(auth), None) => format!(
                "user {} was sent through the service proxy, but {stripped}: reach MLflow at its URL instead (--mlflow-url, or the ingress host)",
                auth.user
            ),
            (None, None) => format!(
                "MLflow requires authentication (--app-name basic-auth) but components.mlflow.auth.enabled is false, so the check sent no credentials: enable it, and the check signs in as the admin at the ingress URL or --mlflow-url ({stripped})"
            ),
            (Some(auth), Some(_)) => format!(
                "MLflow did not accept user {} of Secret {}: the server creates its admin from that Secret on its first start only, so check the Secret holds the admin's current password; {}",
                auth.user,
                auth.secret,
                self.logs()
            ),
            (None, Some(_)) => "MLflow requires authentication (--app-name basic-auth) but components.mlflow.auth.enabled is false, so no credentials were sent: enable it in the environment".into(),
        }
    }
}

fn mismatch(step: &str, reason: String, hints: &Hints<'_>) -> HttpCheckError {
    HttpCheckError {
        step: step.into(),
        reason,
        hint: format!("the server stored something else than it was sent: {}", hints.logs()),
        logs: String::new(),
    }
}

/// A string field of a JSON answer (`path` from the root), or an error at `step`.
fn field(
    step: &str,
    doc: &Result<Value, String>,
    path: &[&str],
    hints: &Hints<'_>,
) -> Result<String, HttpCheckError> {
    let doc = doc.as_ref().map_err(|e| mismatch(step, e.clone(), hints))?;
    let value = path.iter().fold(doc, |v, k| &v[*k]);
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
        mismatch(
            step,
            format!(
                "the answer has no {}: {}",
                path.join("."),
                super::proxy::excerpt(doc.to_string().as_bytes())
            ),
            hints,
        )
    })
}

/// The entry with `"key": key` in an MLflow key/value list.
fn find_key<'v>(list: &'v Value, key: &str) -> Option<&'v Value> {
    list.as_array()?.iter().find(|e| e["key"] == key)
}

/// The path under the artifact proxy of a `mlflow-artifacts:` URI (with or without a
/// `//host:port` authority), or `None` for URIs of a store the client would write to itself.
fn proxied_artifact_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(with_authority) => with_authority.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_uris_map_to_proxy_paths() {
        assert_eq!(
            proxied_artifact_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_artifact_path("mlflow-artifacts://mlflow:5000/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_artifact_path("s3://bucket/1/abc/artifacts"), None);
        assert_eq!(proxied_artifact_path("mlflow-artifacts:/"), None);
    }

    fn target(url: Option<&str>, auth: bool) -> MlflowTarget {
        MlflowTarget {
            namespace: "ns".into(),
            service: "mlflow".into(),
            port: 5000,
            url: url.map(String::from),
            basic_auth: auth.then(|| BasicAuth {
                user: "admin".into(),
                password: "pw".into(),
                secret: "ns/mlflow-admin".into(),
            }),
        }
    }

    #[test]
    fn unauthorized_hints_say_why_per_transport() {
        let direct = target(Some("https://mlflow.example.com"), true);
        let hint = Hints { target: &direct }.tracking(401, "");
        assert!(hint.contains("user admin of Secret ns/mlflow-admin"), "{hint}");
        let unconfigured = target(Some("https://mlflow.example.com"), false);
        let hint = Hints { target: &unconfigured }.tracking(401, "");
        assert!(hint.contains("components.mlflow.auth.enabled is false"), "{hint}");
        let proxied = target(None, true);
        let hint = Hints { target: &proxied }.tracking(401, "");
        assert!(hint.contains("Authorization header") && hint.contains("--mlflow-url"), "{hint}");
        let hint = Hints { target: &target(None, false) }.tracking(401, "");
        assert!(hint.contains("components.mlflow.auth.enabled is false"), "{hint}");
    }

    #[test]
    fn rejected_host_hint_names_the_allowed_hosts_setting() {
        let target = target(None, false);
        let hints = Hints { target: &target };
        let hint = hints.tracking(403, "Invalid Host header - possible DNS rebinding attack detected");
        assert!(hint.contains("components.mlflow.allowed_hosts"), "{hint}");
        assert!(hints.artifacts(403, "Invalid Host header").contains("MLFLOW_SERVER_ALLOWED_HOSTS"));
        assert!(hints.artifacts(500, "boom").contains("artifact store"));
        assert!(hints.tracking(500, "boom").contains("backend store"));
    }
}
