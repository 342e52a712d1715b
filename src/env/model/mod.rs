//! The typed environment model: what an environment file may say, with its defaults.
//!
//! One file per component, following the file's own structure. Every struct denies unknown keys
//! so a typo is an error, not a silently ignored setting. Field names are the YAML keys
//! (snake_case). Each default is stated once: a struct whose every field has a default carries
//! `#[serde(default)]` and one `impl Default`; a struct with a required key keeps its few
//! defaults as field functions. Limits are checked in `validate.rs`, not here, so that every
//! problem in a file is reported at once.

mod addons;
mod aws;
mod gpu;
mod hpo;
mod mlflow;
mod ray;
mod resources;
mod storage;
mod target;
mod tenants;
mod trainer;

use serde::{Deserialize, Serialize};

pub use addons::{Addon, AddonSource};
pub use aws::{AwsResources, Bucket, BucketEncryption, BucketOwner, LifecycleRule};
pub use gpu::{
    CapacityType, DevicePlugin, Gpu, GpuPool, GpuProvider, KarpenterSettings, NodeGroupSettings, Taint,
    TaintEffect,
};
pub use hpo::{Hpo, TenantHpo};
pub use mlflow::{Artifacts, Autoscaling, Ingress, Mlflow, MlflowAuth, SecretKeyRef};
pub use ray::{Ray, RayWorkers};
pub use resources::{Quantity, RequestLimit, Resources};
pub use storage::{Minio, Postgres};
pub use target::{IngressPorts, Target, TargetKind, TerraformSource, DEFAULT_KIND_WORKERS};
pub use tenants::{Backend, LimitRange, Quota, QuotaOverride, Tenant, TenantSettings, Tenants};
pub use trainer::{CustomJobs, Trainer, TrainerStorage};

/// A whole environment after layering: one cluster's ML platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Environment name (DNS-1123 label); names the ApplySet parent and labels every object.
    pub name: String,
    /// Where the platform runs.
    pub target: Target,
    /// Where Terraform outputs come from when the file references `${terraform.NAME}`.
    #[serde(default)]
    pub terraform: Option<TerraformSource>,
    /// Namespace of the shared platform services (MLflow, Ray, backend ServiceAccount).
    #[serde(default = "default_platform_namespace")]
    pub platform_namespace: String,
    /// Upstream operators installed before the platform components.
    #[serde(default)]
    pub addons: Vec<Addon>,
    /// The platform components.
    #[serde(default)]
    pub components: Components,
    /// AWS resources trainstack reconciles besides node groups (eks targets only).
    #[serde(default)]
    pub aws: Option<AwsResources>,
}

fn default_platform_namespace() -> String {
    "trainstack-system".into()
}

impl Environment {
    /// The declared S3 buckets (none when `aws` is unset).
    pub fn buckets(&self) -> &[Bucket] {
        self.aws.as_ref().map(|a| a.buckets.as_slice()).unwrap_or_default()
    }

    /// Fills the defaults that depend on other settings, once, right after loading: addresses
    /// of platform services follow `platform_namespace`, storage endpoints follow whether MinIO
    /// runs in the cluster, and Ray's GPU group follows `components.gpu.enabled` (GPU workers
    /// on a cluster without GPU nodes would stay pending).
    pub fn derive_defaults(&mut self) {
        let ns = &self.platform_namespace;
        let c = &mut self.components;
        c.custom_jobs
            .callback_url
            .get_or_insert_with(|| format!("http://trainstack-backend.{ns}.svc:8000/api/v1/callbacks"));
        let minio = c.minio.enabled.then(|| format!("http://minio.{ns}.svc:9000"));
        let storage = minio.clone().unwrap_or_else(|| "https://s3.amazonaws.com".into());
        c.custom_jobs.storage.external_endpoint.get_or_insert_with(|| storage.clone());
        c.custom_jobs.storage.internal_endpoint.get_or_insert(storage);
        if c.mlflow.artifacts.endpoint.is_none() {
            c.mlflow.artifacts.endpoint = minio;
        }
        c.ray.gpu_workers.enabled.get_or_insert(c.gpu.enabled);
        if let Some(w) = &mut c.ray.cpu_workers {
            w.enabled.get_or_insert(true);
        }
    }
}

/// All components; each can be switched off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Components {
    /// Tenants, their namespaces and RBAC.
    pub tenants: Tenants,
    /// Kubeflow Trainer runtimes and TrainJobs.
    pub trainer: Trainer,
    /// Resumable custom trainer Jobs.
    pub custom_jobs: CustomJobs,
    /// GPU node pools and the NVIDIA device plugin.
    pub gpu: Gpu,
    /// MLflow tracking server.
    pub mlflow: Mlflow,
    /// In-cluster PostgreSQL (kind).
    pub postgres: Postgres,
    /// In-cluster MinIO (kind).
    pub minio: Minio,
    /// Ray cluster (KubeRay).
    pub ray: Ray,
    /// Optuna HPO workspaces and trial batches.
    pub hpo: Hpo,
}
