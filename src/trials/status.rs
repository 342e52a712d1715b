//! `hpo status`: per trial batch, its Jobs' pods and its trials' states and best values. Jobs
//! come from the cluster (label `trainstack.io/hpo-batch`); trials from the workspace's
//! optuna-dashboard JSON API (`/api/studies`, `/api/studies/<id>`, optuna-dashboard 0.21.0)
//! through the API server's service proxy, attributed to a batch by the `trialbatch_name` user
//! attribute the trial runner sets.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use kube::Client;
use serde::Serialize;
use serde_json::Value;

use super::wait::{phase, total_trials, JobPhase};
use super::{dashboard_path, BATCH_LABEL, DASHBOARD_PORT, DASHBOARD_SERVICE, STUDY_LABEL};
use crate::engine::cluster::{retry, ClusterError};
use crate::service_http::{HttpCheckError, HttpEndpoint, Request, UpstreamHint};

/// The user attribute naming the batch a trial ran in.
pub const BATCH_ATTR: &str = "trialbatch_name";

/// Which batches to show.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this study.
    pub study: Option<String>,
    /// Only this batch.
    pub batch: Option<String>,
}

impl Query {
    fn selector(&self) -> String {
        let mut parts = vec![match &self.batch {
            Some(b) => format!("{BATCH_LABEL}={b}"),
            None => BATCH_LABEL.to_string(),
        }];
        if let Some(s) = &self.study {
            parts.push(format!("{STUDY_LABEL}={s}"));
        }
        parts.join(",")
    }
}

/// Pods of a batch's Jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pods {
    /// Trials the Jobs run in all (their completions).
    pub trials: i64,
    /// Pods running now.
    pub active: i64,
    /// Pods that exited 0.
    pub succeeded: i64,
    /// Pods that failed (the objective raised, was refused, or the pod was killed).
    pub failed: i64,
}

/// Trial states, as Optuna records them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trials {
    /// RUNNING.
    pub running: usize,
    /// COMPLETE.
    pub complete: usize,
    /// FAIL.
    pub failed: usize,
    /// PRUNED.
    pub pruned: usize,
    /// WAITING (enqueued, not started).
    pub waiting: usize,
}

/// One best trial of a batch (single objective: the one; several: the batch's trials on the
/// study's Pareto front).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Best {
    /// Trial number in the study.
    pub number: i64,
    /// Objective values.
    pub values: Vec<f64>,
    /// Parameters, as the dashboard shows them.
    pub params: BTreeMap<String, String>,
}

/// One batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchStatus {
    /// The tenant namespace.
    pub namespace: String,
    /// The batch.
    pub batch: String,
    /// Its study.
    pub study: String,
    /// `running`, `finished` or `failed`.
    pub state: &'static str,
    /// Why the batch failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Its Jobs (one per GPU model).
    pub jobs: Vec<String>,
    /// Their pods.
    pub pods: Pods,
    /// Its trials, from the dashboard (`None` when the dashboard could not be read).
    pub trials: Option<Trials>,
    /// Its best trials.
    pub best: Vec<Best>,
    /// The study's page on the dashboard, through the API server (`kubectl proxy`, then
    /// `http://127.0.0.1:8001` + this).
    pub dashboard: String,
    /// Why the trials could not be read, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Errors of [`read`].
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Listing Jobs failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The batches of `namespaces` that match `query`, in namespace, study, batch order.
pub async fn read(
    client: &Client,
    namespaces: &[String],
    query: &Query,
    budget: Duration,
) -> Result<Vec<BatchStatus>, StatusError> {
    let mut out = Vec::new();
    for ns in namespaces {
        let api: Api<Job> = Api::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&query.selector());
        let jobs = retry(&format!("list trial batch jobs in {ns}"), || api.list(&lp)).await?.items;
        let mut batches: BTreeMap<(String, String), Vec<Job>> = BTreeMap::new();
        for job in jobs {
            let labels = job.metadata.labels.clone().unwrap_or_default();
            let batch = labels.get(BATCH_LABEL).cloned().unwrap_or_default();
            let study = labels.get(STUDY_LABEL).cloned().unwrap_or_default();
            batches.entry((study, batch)).or_default().push(job);
        }
        if batches.is_empty() {
            continue;
        }
        let endpoint = HttpEndpoint::service_proxy(client, ns, DASHBOARD_SERVICE.0, DASHBOARD_PORT, budget);
        let mut studies: BTreeMap<String, Result<Option<StudyTrials>, String>> = BTreeMap::new();
        for ((study, batch), jobs) in batches {
            if !studies.contains_key(&study) {
                studies.insert(study.clone(), study_trials(&endpoint, &study).await);
            }
            let trials = &studies[&study];
            out.push(batch_status(ns, &study, &batch, &jobs, trials));
        }
    }
    Ok(out)
}

/// Joins a batch's Jobs with its trials.
fn batch_status(
    ns: &str,
    study: &str,
    batch: &str,
    jobs: &[Job],
    trials: &Result<Option<StudyTrials>, String>,
) -> BatchStatus {
    let mut pods = Pods::default();
    let mut state = "finished";
    let mut failure = None;
    for job in jobs {
        let s = job.status.clone().unwrap_or_default();
        pods.trials += total_trials(job);
        pods.active += i64::from(s.active.unwrap_or(0));
        pods.succeeded += i64::from(s.succeeded.unwrap_or(0));
        pods.failed += i64::from(s.failed.unwrap_or(0));
        match phase(job) {
            JobPhase::Failed { reason, message } => {
                state = "failed";
                failure = Some(format!(
                    "job {}: {reason}: {message}",
                    job.metadata.name.clone().unwrap_or_default()
                ));
            }
            JobPhase::Running if state != "failed" => state = "running",
            _ => {}
        }
    }
    let (trials, best, error, study_id) = match trials {
        Ok(Some(t)) => {
            let mine: Vec<&Value> =
                t.trials.iter().filter(|tr| attr(tr, BATCH_ATTR) == Some(batch)).collect();
            (Some(count(&mine)), best(&mine, t), None, Some(t.id))
        }
        Ok(None) => (Some(Trials::default()), Vec::new(), None, None),
        Err(e) => (None, Vec::new(), Some(e.clone()), None),
    };
    let mut dashboard = dashboard_path(ns);
    if let Some(id) = study_id {
        dashboard.push_str(&format!("dashboard/studies/{id}"));
    }
    BatchStatus {
        namespace: ns.into(),
        batch: batch.into(),
        study: study.into(),
        state,
        failure,
        jobs: jobs.iter().filter_map(|j| j.metadata.name.clone()).collect(),
        pods,
        trials,
        best,
        dashboard,
        error,
    }
}

/// A study as the dashboard serves it.
struct StudyTrials {
    id: i64,
    directions: Vec<String>,
    trials: Vec<Value>,
    /// Trial numbers of the study's best trials (its Pareto front with several objectives).
    best: Vec<i64>,
}

/// The dashboard's id of study `study`; `None` when no study has that name.
pub(crate) async fn study_id(
    endpoint: &HttpEndpoint<'_>,
    study: &str,
    hint: UpstreamHint<'_>,
) -> Result<Option<i64>, HttpCheckError> {
    let step = "list studies";
    let list = endpoint.call(step, Request::get("/api/studies"), hint).await?;
    let list = list.json().map_err(|reason| HttpCheckError {
        step: step.into(),
        reason,
        hint: hint(200, ""),
        logs: endpoint.transcript(),
    })?;
    Ok(list["study_summaries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["study_name"] == study)
        .and_then(|s| s["study_id"].as_i64()))
}

/// The study's trials; `None` when the study does not exist yet (no trial has started).
async fn study_trials(endpoint: &HttpEndpoint<'_>, study: &str) -> Result<Option<StudyTrials>, String> {
    let hint = |_: u16, _: &str| String::new();
    let Some(id) = study_id(endpoint, study, &hint).await.map_err(|e| e.reason)? else { return Ok(None) };
    let detail = endpoint
        .call("read study", Request::get(format!("/api/studies/{id}")), &hint)
        .await
        .map_err(|e| e.reason)?
        .json()?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string)).collect()
    };
    Ok(Some(StudyTrials {
        id,
        directions: strings(&detail["directions"]),
        trials: detail["trials"].as_array().cloned().unwrap_or_default(),
        best: detail["best_trials"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["number"].as_i64())
            .collect(),
    }))
}

/// A user attribute of a dashboard trial (`user_attrs` is a list of `{key, value}`).
pub fn attr<'t>(trial: &'t Value, key: &str) -> Option<&'t str> {
    trial["user_attrs"].as_array()?.iter().find(|a| a["key"] == key)?["value"].as_str()
}

fn count(trials: &[&Value]) -> Trials {
    let mut t = Trials::default();
    for trial in trials {
        match trial["state"].as_str().unwrap_or_default() {
            "Running" => t.running += 1,
            "Complete" => t.complete += 1,
            "Fail" => t.failed += 1,
            "Pruned" => t.pruned += 1,
            "Waiting" => t.waiting += 1,
            _ => {}
        }
    }
    t
}

/// The dashboard's values: numbers, or `"inf"`/`"-inf"`.
fn values(trial: &Value) -> Option<Vec<f64>> {
    trial["values"]
        .as_array()?
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect()
}

fn best(trials: &[&Value], study: &StudyTrials) -> Vec<Best> {
    let complete = trials.iter().filter(|t| t["state"] == "Complete").filter_map(|t| Some((*t, values(t)?)));
    let chosen: Vec<(&Value, Vec<f64>)> = if study.directions.len() == 1 {
        let maximize = study.directions[0] == "maximize";
        let key = |v: &Vec<f64>| if maximize { -v[0] } else { v[0] };
        complete
            .filter(|(_, v)| !v.is_empty())
            .min_by(|a, b| key(&a.1).total_cmp(&key(&b.1)))
            .into_iter()
            .collect()
    } else {
        complete.filter(|(t, _)| t["number"].as_i64().is_some_and(|n| study.best.contains(&n))).collect()
    };
    chosen
        .into_iter()
        .map(|(t, values)| Best {
            number: t["number"].as_i64().unwrap_or(-1),
            values,
            params: t["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((p["name"].as_str()?.to_string(), p["param_external_value"].as_str()?.to_string()))
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trial(number: i64, state: &str, values: Value, batch: &str) -> Value {
        json!({
            "number": number, "state": state, "values": values,
            "params": [{"name": "x", "param_external_value": format!("{number}.5")}],
            "user_attrs": [{"key": "trialbatch_name", "value": batch}, {"key": "pod_name", "value": "p"}],
        })
    }

    #[test]
    fn the_best_trial_is_the_batchs_own_in_the_studys_direction() {
        let study = |directions: &[&str], best: Vec<i64>| StudyTrials {
            id: 1,
            directions: directions.iter().map(|d| d.to_string()).collect(),
            trials: Vec::new(),
            best,
        };
        let all = [
            trial(0, "Complete", json!([3.0]), "b"),
            trial(1, "Complete", json!([1.0]), "b"),
            trial(2, "Fail", Value::Null, "b"),
            trial(3, "Complete", json!(["-inf"]), "other"),
            trial(4, "Pruned", Value::Null, "b"),
        ];
        let mine: Vec<&Value> = all.iter().filter(|t| attr(t, BATCH_ATTR) == Some("b")).collect();
        assert_eq!(count(&mine), Trials { complete: 2, failed: 1, pruned: 1, ..Trials::default() });
        let min = best(&mine, &study(&["minimize"], vec![3]));
        assert_eq!(min.iter().map(|b| b.number).collect::<Vec<_>>(), [1]);
        assert_eq!(min[0].params["x"], "1.5");
        let max = best(&mine, &study(&["maximize"], vec![3]));
        assert_eq!(max.iter().map(|b| (b.number, b.values.clone())).collect::<Vec<_>>(), [(0, vec![3.0])]);
        let pareto = best(&mine, &study(&["minimize", "maximize"], vec![0, 3]));
        assert_eq!(pareto.iter().map(|b| b.number).collect::<Vec<_>>(), [0]);
    }
}
