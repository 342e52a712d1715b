//! The job spec file: one YAML file per training job, with the fields the platform UI collects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::env::model::{Quantity, RequestLimit};

/// Which runtime a job uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// Kubeflow TrainJob on `pytorch-simple`.
    Pytorch,
    /// Kubeflow TrainJob on `tensorflow-distributed`.
    Tensorflow,
    /// A resumable batch/v1 Job following the platform's trainer contract.
    Custom,
}

/// A job spec as written in its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name (DNS-1123 label).
    pub name: String,
    /// Tenant (namespace) the job runs in; must be declared in the environment.
    pub tenant: String,
    /// `pytorch`, `tensorflow` or `custom`.
    pub framework: Framework,
    /// Container image; defaults to the runtime's image (required for `custom`).
    #[serde(default)]
    pub image: Option<String>,
    /// Number of nodes (pods); `custom` jobs always run one.
    #[serde(default = "one")]
    pub num_nodes: u32,
    /// Resources per node.
    pub resources: JobResources,
    /// Command; for Trainer jobs the framework's prelude runs first.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Training code put in the `<tenant>-train-script` ConfigMap, key = file name in
    /// `/workspace/scripts`.
    #[serde(default)]
    pub scripts: BTreeMap<String, ScriptSource>,
    /// Dataset (read-only, `/data`) and model (read-write, `/models`) PVCs.
    #[serde(default)]
    pub volumes: JobVolumes,
    /// The trainer contract of `custom` jobs.
    #[serde(default)]
    pub custom: Option<CustomTrainer>,
}

fn one() -> u32 {
    1
}

/// Resources of each node of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResources {
    /// CPU request and limit.
    pub cpu: RequestLimit,
    /// Memory request and limit.
    pub memory: RequestLimit,
    /// GPUs; request must equal limit. Omit or 0 for CPU jobs.
    #[serde(default)]
    pub gpu: Option<GpuRequest>,
}

/// GPU request and limit (Kubernetes requires them equal for extended resources).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRequest {
    /// Requested GPUs.
    pub request: u32,
    /// GPU limit.
    pub limit: u32,
}

/// Where a script's content comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSource {
    /// File relative to the job spec.
    #[serde(default)]
    pub file: Option<String>,
    /// Inline content.
    #[serde(default)]
    pub content: Option<String>,
}

/// PVCs mounted into the job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobVolumes {
    /// PVC mounted read-only at `/data`.
    #[serde(default)]
    pub dataset_pvc: Option<String>,
    /// PVC mounted read-write at `/models`.
    #[serde(default)]
    pub models_pvc: Option<String>,
}

/// The platform's trainer contract (custom trainer images).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTrainer {
    /// `JOB_ID`; also names the checkpoint path.
    pub job_id: String,
    /// `MODEL_NAME`.
    pub model_name: String,
    /// The dataset as a path under the tenant's prefix of the datasets bucket:
    /// `DATASET_S3_URI` is `s3://<datasets bucket>/<tenant>/<dataset>`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// `DATASET_S3_URI` (`s3://...`) written out, instead of `dataset`.
    #[serde(default)]
    pub dataset_s3_uri: Option<String>,
    /// `CALLBACK_URL`; defaults to `custom_jobs.callback_url`.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// `CONFIG`, any JSON object.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `EPOCHS`.
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    /// `BATCH_SIZE`.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// `LEARNING_RATE`.
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// `IMGSZ`.
    #[serde(default = "default_imgsz")]
    pub imgsz: u32,
    /// `DEVICE`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Overrides `custom_jobs.active_deadline_seconds`.
    #[serde(default)]
    pub active_deadline_seconds: Option<u64>,
    /// Overrides `custom_jobs.backoff_limit`.
    #[serde(default)]
    pub backoff_limit: Option<u32>,
}

fn default_epochs() -> u32 {
    100
}
fn default_batch() -> u32 {
    16
}
fn default_lr() -> f64 {
    0.01
}
fn default_imgsz() -> u32 {
    640
}
fn default_device() -> String {
    "0".into()
}

impl JobResources {
    /// GPUs per node (0 when none were asked for).
    pub fn gpus(&self) -> u32 {
        self.gpu.as_ref().map(|g| g.limit).unwrap_or(0)
    }
}

impl Quantity {
    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
