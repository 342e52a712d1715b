//! `smoke`: checks that a deployed platform works, not only that its objects exist. Each check
//! reports passed, failed (with the reason and what to look at) or skipped (with why); the
//! objects a check creates live in a labelled smoke namespace and are removed afterwards. HTTP
//! checks (MLflow, Ray, the HPO dashboard) reach their Services through the API server's service
//! proxy.

pub mod checks;
pub mod cluster;
pub mod gpu;
pub mod hpo;
pub mod mlflow;
pub mod namespace;
pub mod objects;
pub mod pods;
pub mod ray;
pub mod rbac;
pub mod report;
pub mod services;
pub mod trainer;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use serde::Serialize;

use crate::engine::run::Engine;
use crate::env::model::Environment;
use crate::manifest::Manifest;

/// HTTP to the platform's Services, shared with `hpo status` (which must not depend on smoke).
pub use crate::service_http as proxy;
pub use checks::Check;

/// Label every smoke object carries; its value is the run id.
pub const SMOKE_LABEL: &str = "trainstack.io/smoke";

/// The namespace smoke objects live in.
pub const SMOKE_NAMESPACE: &str = "trainstack-smoke";

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// The check proved what it claims; `summary` says what it saw.
    Passed {
        /// One line on what was proven.
        summary: String,
    },
    /// The check found a problem.
    Failed {
        /// What is wrong.
        reason: String,
        /// What to look at.
        hint: String,
    },
    /// The check does not apply to this environment or was not selected.
    Skipped {
        /// Why.
        why: String,
    },
}

impl Outcome {
    /// A failure with a reason and a hint.
    pub fn failed(reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome::Failed { reason: reason.into(), hint: hint.into() }
    }

    /// A pass.
    pub fn passed(summary: impl Into<String>) -> Self {
        Outcome::Passed { summary: summary.into() }
    }

    /// A skip.
    pub fn skipped(why: impl Into<String>) -> Self {
        Outcome::Skipped { why: why.into() }
    }

    /// `passed`, `failed` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed { .. } => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
        }
    }
}

/// What a check did on the way, kept even when the check is cut off by the run's deadline or
/// an interrupt: the steps it finished and the logs it captured.
#[derive(Debug, Default)]
pub struct Record {
    steps: Mutex<Vec<String>>,
    logs: Mutex<String>,
}

impl Record {
    /// One finished step, e.g. `RoleBinding alice/trainjob-backend grants create trainjobs`.
    pub fn step(&self, line: impl Into<String>) {
        if let Ok(mut s) = self.steps.lock() {
            s.push(line.into());
        }
    }

    /// Captured output (pod logs, server answers), under a heading.
    pub fn log(&self, heading: &str, text: &str) {
        if let Ok(mut l) = self.logs.lock() {
            if !l.is_empty() {
                l.push('\n');
            }
            l.push_str(&format!("==> {heading} <==\n{text}"));
            if !text.ends_with('\n') {
                l.push('\n');
            }
        }
    }

    fn take(&self) -> (Vec<String>, String) {
        let steps = self.steps.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        let logs = self.logs.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
        (steps, logs)
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time.
    #[serde(serialize_with = "report::seconds")]
    pub duration: Duration,
    /// Steps it finished, in order.
    pub steps: Vec<String>,
    /// Captured logs.
    pub logs: String,
}

/// Everything a check may use.
pub struct Context {
    /// The cluster.
    pub client: Client,
    /// The engine for the environment (drift and readiness of the rendered set).
    pub engine: Engine,
    /// The environment.
    pub env: Environment,
    /// The rendered set.
    pub set: Vec<Manifest>,
    /// This run's id: the value of [`SMOKE_LABEL`] on its objects.
    pub run_id: String,
    /// Bound on each check.
    pub timeout: Duration,
    /// `--mlflow-url`: where the mlflow check reaches the tracking server instead of the
    /// service proxy (see [`services::mlflow_route`]).
    pub mlflow_url: Option<String>,
    /// Whether this run reached the smoke namespace (found or created it): until it has,
    /// there is nothing of the run's to clean up.
    pub namespace_reached: std::sync::atomic::AtomicBool,
    /// The hpo check's batch, rendered up front ([`hpo::render`]): none without a workspace,
    /// or why it did not render.
    pub hpo_batch: Result<Option<hpo::SmokeBatch>, String>,
    /// `--keep`: checks that clean up after themselves leave what they created.
    pub keep: bool,
    /// The hpo check applied its batch and has not removed it yet: an interrupted run's cleanup
    /// does ([`hpo::cleanup_interrupted`]).
    pub hpo_pending: std::sync::atomic::AtomicBool,
}

impl Context {
    /// The labels every smoke object gets.
    pub fn labels(&self) -> serde_json::Value {
        serde_json::json!({
            SMOKE_LABEL: self.run_id,
            "app.kubernetes.io/part-of": "trainstack",
            "app.kubernetes.io/managed-by": "trainstack-smoke",
        })
    }

    /// `SMOKE_LABEL=<run id>`.
    pub fn selector(&self) -> String {
        format!("{SMOKE_LABEL}={}", self.run_id)
    }
}

/// A run id that fits a label value: `s` + seconds since the epoch + 4 hex digits.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("s{}-{:04x}", now.as_secs(), now.subsec_micros() & 0xffff)
}

/// Runs one check with its record, bounding it by the run's timeout plus a grace period for
/// the check's own timeout reporting.
pub async fn run_check(ctx: &Context, check: Check) -> CheckResult {
    let start = Instant::now();
    let record = Record::default();
    let grace = Duration::from_secs(30);
    let outcome = match tokio::time::timeout(ctx.timeout + grace, checks::run(ctx, check, &record)).await {
        Ok(o) => o,
        Err(_) => Outcome::failed(
            format!("did not finish within {:?}", ctx.timeout + grace),
            "the steps below show how far it got; raise --timeout if the cluster is slow",
        ),
    };
    let (steps, logs) = record.take();
    CheckResult { check, outcome, duration: start.elapsed(), steps, logs }
}
