//! A finished smoke run and its counts; `output/smoke.rs` renders it as a table or JUnit XML.

use std::time::Duration;

use serde::Serialize;

use super::{CheckResult, Outcome};

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run id (label value of its objects).
    pub run_id: String,
    /// The environment name.
    pub environment: String,
    /// One result per check, in check order.
    pub checks: Vec<CheckResult>,
    /// Counts.
    pub summary: Summary,
    /// What cleanup removed, or what was kept with `--keep`.
    pub cleanup: Vec<String>,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that were skipped.
    pub skipped: usize,
}

impl RunReport {
    /// A report with its summary counted.
    pub fn new(run_id: &str, environment: &str, checks: Vec<CheckResult>, cleanup: Vec<String>) -> Self {
        let mut summary = Summary::default();
        for c in &checks {
            match c.outcome {
                Outcome::Passed { .. } => summary.passed += 1,
                Outcome::Failed { .. } => summary.failed += 1,
                Outcome::Skipped { .. } => summary.skipped += 1,
            }
        }
        RunReport { run_id: run_id.into(), environment: environment.into(), checks, summary, cleanup }
    }
}

/// Serializes a duration as seconds with millisecond precision.
pub fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
