//! How far a trial batch's Indexed Jobs are, and waiting for them (`hpo run --wait`).
//!
//! A batch's Job has `backoffLimitPerIndex: 0` and `maxFailedIndexes` = completions, so a
//! failed trial neither retries nor stops the others; once every index has run, the Job
//! controller marks a Job with any failed index `Failed` with reason `FailedIndexes`. That is a
//! result (the trials failed, the batch ran), not a failure of the batch; any other `Failed`
//! reason (a deadline, too many failed indexes, a pod failure policy) is.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::Client;
use tokio::time::Instant;

use crate::engine::cluster::{retry, ClusterError};
use crate::progress::Progress;

/// What `--wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Nothing: return once the batch is applied.
    None,
    /// The first trial to finish (succeeded or failed), as the seed's default.
    #[default]
    One,
    /// Every Job of the batch to finish.
    All,
}

/// Where a Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPhase {
    /// Trials still to run or running.
    Running,
    /// Every index ran; `failed_indexes` when some trial failed (condition `Failed`, reason
    /// `FailedIndexes`).
    Finished {
        /// Whether any index failed.
        failed_indexes: bool,
    },
    /// The Job controller gave up on the batch.
    Failed {
        /// The `Failed` condition's reason.
        reason: String,
        /// Its message.
        message: String,
    },
}

/// The phase the Job's conditions say.
pub fn phase(job: &Job) -> JobPhase {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let set = |kind: &str| conditions.iter().find(|c| c.type_ == kind && c.status == "True");
    if set("Complete").is_some() {
        return JobPhase::Finished { failed_indexes: false };
    }
    match set("Failed") {
        Some(c) if c.reason.as_deref() == Some("FailedIndexes") => {
            JobPhase::Finished { failed_indexes: true }
        }
        Some(c) => JobPhase::Failed {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        },
        None => JobPhase::Running,
    }
}

/// Trials of the Job that ended, either way.
pub fn finished_trials(job: &Job) -> i64 {
    job.status
        .as_ref()
        .map(|s| i64::from(s.succeeded.unwrap_or(0)) + i64::from(s.failed.unwrap_or(0)))
        .unwrap_or(0)
}

/// Trials the Job runs in all.
pub fn total_trials(job: &Job) -> i64 {
    job.spec.as_ref().and_then(|s| s.completions).map(i64::from).unwrap_or(1)
}

/// Why a wait did not end well.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The bound passed first.
    #[error("batch {batch} did not get there within {}: {still}", humantime::format_duration(*waited))]
    Timeout {
        /// The batch.
        batch: String,
        /// The bound.
        waited: Duration,
        /// What is still running.
        still: String,
    },
    /// A Job of the batch failed as a whole.
    #[error("job {namespace}/{job} failed ({reason}): {message}")]
    JobFailed {
        /// Its namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The condition's reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// A Job of the batch disappeared while it was waited for.
    #[error("job {namespace}/{job} was deleted while waiting for it")]
    Deleted {
        /// Its namespace.
        namespace: String,
        /// The Job.
        job: String,
    },
    /// Reading a Job failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// How often the Jobs are read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// Waits for the batch's `jobs` in `namespace` as `wait` says, for at most `timeout`,
/// reporting each finished trial to `progress`.
pub async fn wait(
    client: &Client,
    namespace: &str,
    batch: &str,
    jobs: &[String],
    wait: Wait,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<(), WaitError> {
    if wait == Wait::None || jobs.is_empty() {
        return Ok(());
    }
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    let mut reported = 0;
    let mut started = false;
    loop {
        let mut read = Vec::new();
        for name in jobs {
            match retry(&format!("get job {namespace}/{name}"), || api.get_opt(name)).await? {
                Some(job) => read.push(job),
                None => return Err(WaitError::Deleted { namespace: namespace.into(), job: name.clone() }),
            }
        }
        let total: i64 = read.iter().map(total_trials).sum();
        let finished: i64 = read.iter().map(finished_trials).sum();
        if !started {
            progress.phase(&format!("trials of batch {batch}"), usize::try_from(total).unwrap_or(0));
            started = true;
        }
        while reported < finished {
            progress.inc("trial finished");
            reported += 1;
        }
        for job in &read {
            if let JobPhase::Failed { reason, message } = phase(job) {
                progress.finish();
                return Err(WaitError::JobFailed {
                    namespace: namespace.into(),
                    job: job.metadata.name.clone().unwrap_or_default(),
                    reason,
                    message,
                });
            }
        }
        let done = match wait {
            Wait::None => true,
            Wait::One => finished >= 1,
            Wait::All => read.iter().all(|j| matches!(phase(j), JobPhase::Finished { .. })),
        };
        if done {
            progress.finish();
            return Ok(());
        }
        if Instant::now() >= deadline {
            progress.finish();
            let active: i64 = read.iter().filter_map(|j| j.status.as_ref()?.active).map(i64::from).sum();
            let still = format!(
                "{finished} of {total} trials finished, {active} running (kubectl -n {namespace} get pods -l {}={batch})",
                super::BATCH_LABEL
            );
            return Err(WaitError::Timeout { batch: batch.into(), waited: timeout, still });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conditions: serde_json::Value) -> Job {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "hpo-b"}, "status": {"conditions": conditions}}),
        )
        .unwrap()
    }

    #[test]
    fn failed_indexes_finish_a_batch_and_other_failures_fail_it() {
        assert_eq!(phase(&job(serde_json::json!([]))), JobPhase::Running);
        assert_eq!(
            phase(&job(serde_json::json!([{"type": "Complete", "status": "True"}]))),
            JobPhase::Finished { failed_indexes: false }
        );
        assert_eq!(
            phase(&job(
                serde_json::json!([{"type": "FailureTarget", "status": "True", "reason": "FailedIndexes"}, {"type": "Failed", "status": "True", "reason": "FailedIndexes"}])
            )),
            JobPhase::Finished { failed_indexes: true }
        );
        assert_eq!(
            phase(&job(
                serde_json::json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}])
            )),
            JobPhase::Failed {
                reason: "DeadlineExceeded".into(),
                message: "Job was active longer than specified deadline".into()
            }
        );
        // FailureTarget alone: the controller has decided, pods are still terminating.
        assert_eq!(
            phase(&job(
                serde_json::json!([{"type": "FailureTarget", "status": "True", "reason": "FailedIndexes"}])
            )),
            JobPhase::Running
        );
    }
}
