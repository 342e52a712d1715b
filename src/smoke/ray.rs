//! The Ray check: the dashboard answers, and a tiny job submitted through the Ray Jobs API
//! reaches SUCCEEDED; its logs are captured whatever the outcome.

use std::time::Duration;

use serde_json::{json, Value};

use super::proxy::{seconds, unique_name, HttpCheckError, HttpEndpoint, HttpReport, Request};

/// Where the Ray head's dashboard (and Jobs API) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RayTarget {
    /// Namespace of the Service.
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// Dashboard port (8265 by default).
    pub port: u16,
}

/// The job [`check`] submits: connects to the cluster and prints its resources.
pub const SMOKE_ENTRYPOINT: &str = r#"python -c "import ray; ray.init(); print(ray.cluster_resources())""#;

/// How often the job's status is read.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The least time stopping, log capture and deletion get, even after the check's time ran out.
const CLEANUP_BUDGET: Duration = Duration::from_secs(15);

/// Runs the Ray check with [`SMOKE_ENTRYPOINT`] within `timeout`.
pub async fn check(
    client: &kube::Client,
    target: &RayTarget,
    timeout: Duration,
) -> Result<HttpReport, HttpCheckError> {
    run_job(client, target, SMOKE_ENTRYPOINT, timeout).await
}

/// Checks the dashboard, submits `entrypoint` as a job and waits until it succeeds, fails,
/// is stopped, or `timeout` runs out (then it is stopped). The job is deleted afterwards.
pub async fn run_job(
    client: &kube::Client,
    target: &RayTarget,
    entrypoint: &str,
    timeout: Duration,
) -> Result<HttpReport, HttpCheckError> {
    let mut proxy =
        HttpEndpoint::service_proxy(client, &target.namespace, &target.service, target.port, timeout);
    let hints = Hints { target };
    let head = |status: u16, _: &str| hints.head(status);
    let mut steps = Vec::new();

    let step = "dashboard";
    let reply = proxy.call(step, Request::get("/api/version"), &head).await?;
    let version = reply.json().map_err(|e| hints.error(step, e))?;
    let ray_version = version["ray_version"].as_str().unwrap_or("unknown version").to_string();
    steps.push(format!("dashboard answers (Ray {ray_version})"));

    let step = "submit job";
    let submission = unique_name("trainstack-smoke");
    let body = json!({
        "entrypoint": entrypoint,
        "submission_id": submission,
        "metadata": {"trainstack.io/smoke": "true"},
    });
    let reply = proxy.call(step, Request::post_json("/api/jobs/", &body), &head).await?;
    let answer = reply.json().map_err(|e| hints.error(step, e))?;
    let id = answer["submission_id"].as_str().unwrap_or(&submission).to_string();
    steps.push(format!("submitted job {id}: {entrypoint}"));

    let outcome = wait(&proxy, &hints, &id).await;
    if proxy.remaining() < CLEANUP_BUDGET {
        proxy.renew(CLEANUP_BUDGET);
    }
    // The job must not keep running after the check gave up on it.
    let stopped = match outcome {
        Err(Waited::TimedOut { .. }) => Some(
            proxy
                .call("stop job", Request::post_json(format!("/api/jobs/{id}/stop"), &json!({})), &head)
                .await
                .map(|_| ())
                .map_err(|e| e.reason),
        ),
        _ => None,
    };
    let logs = match proxy.call("job logs", Request::get(format!("/api/jobs/{id}/logs")), &head).await {
        Ok(reply) => reply.json().map(|doc| doc["logs"].as_str().unwrap_or_default().to_string()),
        Err(e) => Err(format!("logs unavailable: {}", e.reason)),
    };
    let finished = !matches!(outcome, Err(Waited::TimedOut { .. }) | Err(Waited::Error(_)));
    let deleted =
        finished && proxy.call("delete job", Request::delete(format!("/api/jobs/{id}")), &head).await.is_ok();

    match outcome {
        Ok(message) => {
            let logs = logs.map_err(|reason| HttpCheckError {
                step: "job logs".into(),
                reason,
                hint: hints.head_logs(),
                logs: String::new(),
            })?;
            steps.push(format!("job {id} SUCCEEDED: {message}"));
            steps.push(format!("captured {} bytes of job logs", logs.len()));
            if deleted {
                steps.push(format!("deleted job {id}"));
            }
            Ok(HttpReport { steps, logs })
        }
        Err(waited) => {
            let logs = logs.unwrap_or_else(|reason| reason);
            let mut error = match waited {
                Waited::Ended { status, message } => HttpCheckError {
                    step: "wait for job".into(),
                    reason: format!("job {id} ended {status}: {message}"),
                    hint: format!("the job's own output is in the logs; the head's in {}", hints.head_logs()),
                    logs: String::new(),
                },
                Waited::TimedOut { status, message } => HttpCheckError {
                    step: "wait for job".into(),
                    reason: format!(
                        "job {id} still {status} after {} ({message}); {}",
                        seconds(timeout),
                        match stopped {
                            Some(Err(why)) => format!("stopping it failed: {why}"),
                            _ => "it was stopped".into(),
                        }
                    ),
                    hint: hints.stuck(&status),
                    logs: String::new(),
                },
                Waited::Error(e) => e,
            };
            error.logs = logs;
            Err(error)
        }
    }
}

/// How waiting for a job ended, short of success.
enum Waited {
    /// FAILED or STOPPED, with Ray's status message.
    Ended { status: String, message: String },
    /// Still in `status` when the time ran out.
    TimedOut { status: String, message: String },
    /// The status could not be read.
    Error(HttpCheckError),
}

/// Polls the job until it is terminal; SUCCEEDED yields Ray's status message.
async fn wait(proxy: &HttpEndpoint<'_>, hints: &Hints<'_>, id: &str) -> Result<String, Waited> {
    let head = |status: u16, _: &str| hints.head(status);
    let mut last = ("PENDING".to_string(), "not yet reported".to_string());
    loop {
        let reply = match proxy.call("wait for job", Request::get(format!("/api/jobs/{id}")), &head).await {
            Ok(reply) => reply,
            // Out of time mid-request: report the state the job was last seen in.
            Err(_) if proxy.remaining().is_zero() => break,
            Err(e) => return Err(Waited::Error(e)),
        };
        let doc: Value = reply.json().map_err(|e| Waited::Error(hints.error("wait for job", e)))?;
        let status = doc["status"].as_str().unwrap_or("UNKNOWN").to_string();
        let message = doc["message"].as_str().unwrap_or_default().to_string();
        match status.as_str() {
            "SUCCEEDED" => return Ok(message),
            "FAILED" | "STOPPED" => return Err(Waited::Ended { status, message }),
            _ => last = (status, message),
        }
        if proxy.remaining() <= POLL_INTERVAL {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Err(Waited::TimedOut { status: last.0, message: last.1 })
}

/// What to look at when the head misbehaves.
struct Hints<'t> {
    target: &'t RayTarget,
}

impl Hints<'_> {
    fn head_logs(&self) -> String {
        format!("kubectl -n {} logs -l ray.io/node-type=head --tail 100", self.target.namespace)
    }

    fn head(&self, status: u16) -> String {
        let pods = format!("kubectl -n {} get pods -l ray.io/node-type=head", self.target.namespace);
        match status {
            0 => format!("the dashboard did not answer in time: {pods}; {}", self.head_logs()),
            404 => format!(
                "the dashboard does not serve this path: is the head started with the dashboard (include-dashboard) and is {} its dashboard port? {}",
                self.target.port,
                self.head_logs()
            ),
            _ => format!("{pods}; {}", self.head_logs()),
        }
    }

    fn stuck(&self, status: &str) -> String {
        let ns = &self.target.namespace;
        match status {
            "PENDING" => format!(
                "the job never started: the runtime environment may still be installing or no node has room for the job's driver; kubectl -n {ns} exec <head pod> -- ray status; {}",
                self.head_logs()
            ),
            "RUNNING" => format!(
                "the job started but did not finish: its tasks may wait for resources no worker offers; kubectl -n {ns} exec <head pod> -- ray status"
            ),
            _ => self.head_logs(),
        }
    }

    fn error(&self, step: &str, reason: String) -> HttpCheckError {
        HttpCheckError { step: step.into(), reason, hint: self.head_logs(), logs: String::new() }
    }
}
