//! What a run returns: the per-object changes and totals, the errors that stop it, and the
//! per-object rows of `status`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::cluster::ClusterError;
use crate::engine::plan::{Action, ObjectChange};

/// Errors that stop a run before or during writes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Kinds the cluster does not serve and no CRD in the set provides.
    #[error("the cluster does not serve these kinds and no CRD in the environment provides them (nothing was written):\n{0}")]
    Unserved(String),
    /// An object of a namespaced kind without a namespace.
    #[error("{0} is namespaced but has no metadata.namespace (nothing was written)")]
    NoNamespace(String),
    /// A cluster call failed outside any single object.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Counts of what a run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Objects created.
    pub created: usize,
    /// Objects changed.
    pub configured: usize,
    /// Objects already in sync.
    pub unchanged: usize,
    /// Objects pruned.
    pub pruned: usize,
    /// Objects that failed.
    pub failed: usize,
    /// Warnings the API server sent, over all objects.
    pub warnings: usize,
    /// Objects the no-op proof found unchanged without asking the server.
    pub decided_locally: usize,
    /// Objects planned by a server-side dry-run.
    pub dry_runs: usize,
    /// Why objects needed a dry-run, with how many each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dry_run_reasons: BTreeMap<String, usize>,
}

/// The result of a diff or apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Per object, in apply order, then prunes.
    pub changes: Vec<ObjectChange>,
    /// Totals.
    pub summary: Summary,
    /// Objects not ready when a wait timed out, with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// Objects left in place that prune would delete without the safety flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

impl Report {
    /// Whether anything differs from the cluster.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.summary.failed > 0 || !self.not_ready.is_empty()
    }
}

/// One object of the set as `status` sees it, from one GET and one dry-run: its plan and its
/// readiness (`ready`, `missing`, `pending: ...`, `failed: ...`, by the rules the waits use).
#[derive(Debug, Clone)]
pub struct ObjectStatus {
    /// The object's plan, as `diff` shows it.
    pub change: ObjectChange,
    /// Its readiness line.
    pub ready: String,
}
