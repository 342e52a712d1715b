//! The trial batch spec file: one YAML file per Optuna `optimize()` call, with the seed's keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::env::model::Quantity;

/// A trial batch spec as written in its file. Defaults that depend on `use_gpu` (image,
/// resources) are filled in by the loader, so they are `Option`s here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Batch name (DNS-1123 label); defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Tenant whose workspace runs the trials.
    pub tenant: String,
    /// Optuna study name (DNS-1123 label); created on first use.
    pub study: String,
    /// `minimize` or `maximize` (single objective); excludes `directions`.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// One direction per objective value (multi-objective); excludes `direction`.
    #[serde(default)]
    pub directions: Option<Vec<Direction>>,
    /// Optuna sampler class and its keyword arguments.
    #[serde(default = "default_sampler")]
    pub sampler: Algorithm,
    /// Optuna pruner class and its keyword arguments.
    #[serde(default = "default_pruner")]
    pub pruner: Algorithm,
    /// Python file defining `def objective(trial):`, relative to the spec file.
    pub objective_file: String,
    /// Trials in the batch, failed and pruned ones included.
    #[serde(default = "default_n_trials")]
    pub n_trials: u32,
    /// Trials running at once.
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Run the trials on GPU nodes.
    #[serde(default)]
    pub use_gpu: bool,
    /// A GPU pool for every trial, or pool -> trial count (the rest go to any GPU pool).
    #[serde(default)]
    pub gpu_model: Option<GpuModel>,
    /// Trial image; must have Python and pip or uv.
    #[serde(default)]
    pub runtime_image: Option<String>,
    /// Optuna client version the runner installs when the image lacks it.
    #[serde(default)]
    pub optuna_version: Option<String>,
    /// Credentials to pull a private `runtime_image`.
    #[serde(default)]
    pub image_pull: Option<ImagePull>,
    /// Extra pip requirements, one per entry; excludes `requirements_file`.
    #[serde(default)]
    pub requirements_list: Option<Vec<String>>,
    /// A requirements.txt relative to the spec file; excludes `requirements_list`.
    #[serde(default)]
    pub requirements_file: Option<String>,
    /// Resources of each trial pod.
    #[serde(default)]
    pub resources: BatchResources,
    /// Size of the in-memory `/dev/shm` of GPU trials.
    #[serde(default)]
    pub dev_shm_size: Option<Quantity>,
    /// Mount path of the per-pod scratch emptyDir.
    #[serde(default = "default_tmp_cache_dir")]
    pub tmp_cache_dir: String,
    /// Back the scratch emptyDir with memory (tmpfs) instead of node disk.
    #[serde(default)]
    pub use_tmp_cache_mem: bool,
    /// Size limit of the scratch emptyDir.
    #[serde(default = "default_tmp_cache_size")]
    pub tmp_cache_size: Quantity,
    /// Trials whose artifacts are kept (best first); the others' are removed.
    #[serde(default = "default_top_n_artifacts")]
    pub top_n_artifacts: u32,
    /// Log lines the trial logger buffers before writing them to the trial's note.
    #[serde(default)]
    pub log_flush_lines: Option<u32>,
    /// Seconds the trial logger buffers before writing to the trial's note.
    #[serde(default)]
    pub log_flush_seconds: Option<u32>,
}

/// An optimisation direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Lower is better.
    Minimize,
    /// Higher is better.
    Maximize,
}

/// An Optuna sampler or pruner: class name and keyword arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Algorithm {
    /// Class name in `optuna.samplers` / `optuna.pruners`.
    pub name: String,
    /// Keyword arguments of the constructor.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// `gpu_model`: one pool for every trial, or trials per pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpuModel {
    /// Every trial on this pool.
    One(String),
    /// Pool -> trial count; the trials left over go to any GPU pool.
    Counts(BTreeMap<String, u32>),
}

/// The image pull secret, in one of the seed's two forms or as an existing Secret. Passwords
/// are never written here: `password` exists only so a literal one is refused by name, without
/// the value ever reaching a message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagePull {
    /// Registry host (registry form).
    pub registry: Option<String>,
    /// Registry user or deploy token name (registry form).
    pub username: Option<String>,
    /// Environment variable holding the password, read at render time (registry form).
    pub password_env: Option<String>,
    /// Refused: a literal password.
    #[serde(skip_serializing)]
    pub password: Option<serde_json::Value>,
    /// Registry host -> credentials (docker config form, several registries).
    pub docker_config_json: Option<DockerConfig>,
    /// An existing `kubernetes.io/dockerconfigjson` Secret in the tenant's namespace.
    pub secret: Option<String>,
}

/// The docker config form: `{auths: {host: {username, password_env}}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Registry host -> credentials.
    pub auths: BTreeMap<String, RegistryAuth>,
}

/// Credentials of one registry in the docker config form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User or deploy token name.
    pub username: String,
    /// Environment variable holding the password, read at render time.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Refused: a literal password.
    #[serde(default, skip_serializing)]
    pub password: Option<serde_json::Value>,
}

/// Per-trial resources; each key defaults by `use_gpu` (CPU: 1 CPU, 1Gi; GPU: 2 CPUs, 4Gi,
/// 1 GPU), and each limit to its request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchResources {
    /// CPU.
    pub cpu: Option<Amount>,
    /// Memory.
    pub memory: Option<Amount>,
    /// GPUs (GPU trials only); request must equal limit.
    pub gpu: Option<GpuAmount>,
}

/// A request and an optional limit (defaults to the request).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Request.
    pub request: Quantity,
    /// Limit; defaults to the request.
    #[serde(default)]
    pub limit: Option<Quantity>,
}

/// GPUs per trial.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuAmount {
    /// Requested GPUs.
    pub request: u32,
    /// GPU limit; defaults to the request.
    #[serde(default)]
    pub limit: Option<u32>,
}

fn default_sampler() -> Algorithm {
    Algorithm { name: "TPESampler".into(), params: serde_json::Map::new() }
}
fn default_pruner() -> Algorithm {
    Algorithm { name: "MedianPruner".into(), params: serde_json::Map::new() }
}
fn default_n_trials() -> u32 {
    10
}
fn default_parallelism() -> u32 {
    2
}
fn default_tmp_cache_dir() -> String {
    "/mnt/tmp-cache".into()
}
fn default_tmp_cache_size() -> Quantity {
    "500Mi".into()
}
fn default_top_n_artifacts() -> u32 {
    5
}
