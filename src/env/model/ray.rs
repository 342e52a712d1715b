//! `components.ray`: the KubeRay RayCluster with its head and worker groups.

use serde::{Deserialize, Serialize};

use super::gpu::DEFAULT_MAX_NODES;
use super::Resources;

/// Ray cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ray {
    /// Render the RayCluster.
    pub enabled: bool,
    /// Cluster name.
    pub name: String,
    /// Ray version (must match the image).
    pub ray_version: String,
    /// Image of head and workers.
    pub image: String,
    /// Head resources.
    pub head: Resources,
    /// GPU worker group (autoscaled).
    pub gpu_workers: RayWorkers<1>,
    /// Optional CPU worker group (`gpus` defaults to 0 here).
    pub cpu_workers: Option<RayWorkers<0>>,
    /// IRSA role ARN of the Ray ServiceAccount.
    pub irsa_role_arn: Option<String>,
}

impl Default for Ray {
    fn default() -> Self {
        Ray {
            enabled: false,
            name: "ray".into(),
            ray_version: "2.52.0".into(),
            image: "rayproject/ray:2.52.0-py311".into(),
            head: Resources::new(("1", "2"), ("2Gi", "4Gi")),
            gpu_workers: RayWorkers::default(),
            cpu_workers: None,
            irsa_role_arn: None,
        }
    }
}

/// A Ray worker group; `GPUS` is the default of `gpus` (1 for the GPU group, 0 for the CPU
/// group). serde cannot take a struct-level `default` on a const-generic type, so the fields name
/// their defaults; each value is still stated once, in the function `impl Default` also calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayWorkers<const GPUS: u32> {
    /// Render this group; the GPU group defaults to `components.gpu.enabled`, the CPU group to
    /// true ([`super::Environment::derive_defaults`]).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Minimum workers.
    #[serde(default)]
    pub min_replicas: u32,
    /// Maximum workers.
    #[serde(default = "default_max_replicas")]
    pub max_replicas: u32,
    /// GPUs per worker (0 for a CPU group).
    #[serde(default = "default_gpus::<GPUS>")]
    pub gpus: u32,
    /// Worker resources.
    #[serde(default = "default_worker_resources")]
    pub resources: Resources,
    /// GPU pool the workers are scheduled on.
    #[serde(default)]
    pub pool: Option<String>,
}

fn default_max_replicas() -> u32 {
    DEFAULT_MAX_NODES
}
fn default_gpus<const GPUS: u32>() -> u32 {
    GPUS
}
fn default_worker_resources() -> Resources {
    Resources::new(("2", "4"), ("8Gi", "16Gi"))
}

impl<const GPUS: u32> Default for RayWorkers<GPUS> {
    fn default() -> Self {
        RayWorkers {
            enabled: None,
            min_replicas: 0,
            max_replicas: default_max_replicas(),
            gpus: default_gpus::<GPUS>(),
            resources: default_worker_resources(),
            pool: None,
        }
    }
}
