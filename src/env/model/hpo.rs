//! `components.hpo` (Optuna HPO workspaces and trial batches) and a tenant's `hpo` block.

use serde::{Deserialize, Serialize};

/// Optuna HPO: one workspace per tenant that enables it, and the trial batch spec files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hpo {
    /// Render workspaces and trial batches.
    pub enabled: bool,
    /// Optuna version of the workspace's gRPC storage server; trial batches' clients must be
    /// able to talk to it.
    pub optuna_version: String,
    /// Directory of trial batch spec files (relative to the environment file that set it).
    pub batches_dir: Option<String>,
}

impl Default for Hpo {
    fn default() -> Self {
        Hpo { enabled: false, optuna_version: "5.0.0".into(), batches_dir: None }
    }
}

/// A tenant's Optuna workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantHpo {
    /// Give this tenant a workspace (and let it run trial batches).
    pub enabled: bool,
    /// Where trial pods mount the workspace's shared cache PVC.
    pub shared_cache_dir: String,
}

impl Default for TenantHpo {
    fn default() -> Self {
        TenantHpo { enabled: false, shared_cache_dir: "/mnt/shared-cache".into() }
    }
}
