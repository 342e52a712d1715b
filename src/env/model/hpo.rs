//! `components.hpo` and a tenant's `hpo` block: the Optuna HPO workspace each enabled tenant
//! gets (journal storage server, dashboard, artifact store and shared cache volumes).

use serde::{Deserialize, Serialize};

use super::{Ingress, Quantity, Resources};

/// Optuna HPO workspaces: what every tenant's workspace runs and where its volumes live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hpo {
    /// Render the workspaces of the tenants that enable one.
    pub enabled: bool,
    /// Optuna version of the gRPC storage server and the dashboard (the server pin; it decides
    /// which client versions trial pods may run).
    pub optuna_version: String,
    /// optuna-dashboard version.
    pub dashboard_version: String,
    /// Python image of the storage server and the dashboard.
    pub image: String,
    /// The image already holds the pinned packages: no pip-install init container.
    pub packages_preinstalled: bool,
    /// pip index the init container installs from (a mirror), instead of PyPI.
    pub index_url: Option<String>,
    /// Where the workspace volumes live.
    pub storage: HpoStorage,
    /// Directory of trial batch spec files (relative to the environment file that set it).
    pub batches_dir: Option<String>,
    /// The gRPC storage server.
    pub server: HpoServer,
    /// The dashboard.
    pub dashboard: HpoDashboard,
}

impl Default for Hpo {
    fn default() -> Self {
        Hpo {
            enabled: false,
            optuna_version: "5.0.0".into(),
            dashboard_version: "0.21.0".into(),
            image: "python:3.11-slim".into(),
            packages_preinstalled: false,
            index_url: None,
            storage: HpoStorage::default(),
            batches_dir: None,
            server: HpoServer::default(),
            dashboard: HpoDashboard::default(),
        }
    }
}

/// Storage classes and access mode of the workspace volumes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpoStorage {
    /// StorageClass of `hpo-artifacts` and `hpo-shared-cache` (every trial pod mounts them at
    /// once); none takes the cluster's default class.
    pub class_name: Option<String>,
    /// Access mode of `hpo-artifacts` and `hpo-shared-cache`; defaults to ReadWriteOnce on kind
    /// and ReadWriteMany on EKS ([`super::Environment::derive_defaults`]).
    pub access_mode: Option<AccessMode>,
    /// StorageClass of `hpo-journal` (ReadWriteOnce: only the storage server mounts it); none
    /// takes the cluster's default class.
    pub journal_class_name: Option<String>,
    /// EFS file system (eks): trainstack renders `class_name` as an EFS CSI StorageClass that
    /// gives each volume its own access point on it.
    pub efs_file_system_id: Option<String>,
}

/// A PersistentVolumeClaim access mode the workspace volumes can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessMode {
    /// Mounted read-write by the pods of one node.
    ReadWriteOnce,
    /// Mounted read-write by pods on any node (EFS, NFS).
    ReadWriteMany,
}

/// The gRPC storage server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpoServer {
    /// Container resources.
    pub resources: Resources,
}

impl Default for HpoServer {
    fn default() -> Self {
        HpoServer { resources: Resources::new(("100m", "1"), ("256Mi", "1Gi")) }
    }
}

/// The dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpoDashboard {
    /// Container resources.
    pub resources: Resources,
    /// Ingress (one per workspace; the host names the tenant, see docs/hpo.md).
    pub ingress: Ingress,
}

impl Default for HpoDashboard {
    fn default() -> Self {
        HpoDashboard {
            resources: Resources::new(("100m", "1"), ("256Mi", "1Gi")),
            ingress: Ingress::default(),
        }
    }
}

/// A tenant's workspace: whether it has one and the sizes of its volumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantHpo {
    /// Render this tenant's workspace (needs `components.hpo.enabled`).
    pub enabled: bool,
    /// Size of the journal volume (the study database).
    pub journal_size: Quantity,
    /// Size of the artifact store, mounted at `/artifacts`.
    pub artifact_size: Quantity,
    /// Size of the cache every trial pod shares.
    pub shared_cache_size: Quantity,
    /// Where trial pods mount the shared cache.
    pub shared_cache_dir: String,
}

impl Default for TenantHpo {
    fn default() -> Self {
        TenantHpo {
            enabled: false,
            journal_size: "500Mi".into(),
            artifact_size: "2Gi".into(),
            shared_cache_size: "500Mi".into(),
            shared_cache_dir: "/mnt/shared-cache".into(),
        }
    }
}
