//! `components.trainer` (Kubeflow Trainer runtimes and TrainJobs) and `components.custom_jobs`
//! (resumable custom trainer Jobs and the storage of their contract).

use serde::{Deserialize, Serialize};

/// Kubeflow Trainer: ClusterTrainingRuntimes and TrainJobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trainer {
    /// Render runtimes and TrainJobs.
    pub enabled: bool,
    /// Trainer version the cluster runs; picks the TrainJob shape (v2.1 vs v2.2+).
    pub version: String,
    /// Render the GPU variants of the runtimes (`pytorch-simple-gpu`, ...).
    pub gpu_runtimes: bool,
    /// Default image of `pytorch-simple`.
    pub pytorch_image: String,
    /// Default image of `tensorflow-distributed`.
    pub tensorflow_image: String,
    /// Directory of job spec files (relative to the environment file that set it).
    pub jobs_dir: Option<String>,
}

impl Default for Trainer {
    fn default() -> Self {
        Trainer {
            enabled: true,
            version: "v2.3.0".into(),
            gpu_runtimes: true,
            pytorch_image: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime".into(),
            tensorflow_image: "tensorflow/tensorflow:2.18.0-gpu".into(),
            jobs_dir: None,
        }
    }
}

/// Resumable custom trainer Jobs: shared settings; the jobs themselves are job spec files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomJobs {
    /// Render custom trainer Jobs.
    pub enabled: bool,
    /// Backend callback base URL given to trainers as `CALLBACK_URL` when a job sets none;
    /// defaults to the backend Service in `platform_namespace` ([`super::Environment::derive_defaults`]).
    pub callback_url: Option<String>,
    /// Object storage the trainers read datasets from and write checkpoints to.
    pub storage: TrainerStorage,
    /// Default `activeDeadlineSeconds`.
    pub active_deadline_seconds: u64,
    /// Default `backoffLimit`.
    pub backoff_limit: u32,
}

impl Default for CustomJobs {
    fn default() -> Self {
        CustomJobs {
            enabled: true,
            callback_url: None,
            storage: TrainerStorage::default(),
            active_deadline_seconds: 86400,
            backoff_limit: 3,
        }
    }
}

/// The trainer contract's storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerStorage {
    /// `EXTERNAL_STORAGE_ENDPOINT` (datasets); defaults to the in-cluster MinIO when it is
    /// enabled, S3 otherwise ([`super::Environment::derive_defaults`]).
    pub external_endpoint: Option<String>,
    /// `EXTERNAL_BUCKET_DATASETS`.
    pub datasets_bucket: String,
    /// `INTERNAL_STORAGE_ENDPOINT` (checkpoints); defaults like `external_endpoint`.
    pub internal_endpoint: Option<String>,
    /// `INTERNAL_BUCKET_CHECKPOINTS`.
    pub checkpoints_bucket: String,
    /// Secret (in the tenant namespace) with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`;
    /// omit on EKS where IRSA provides credentials.
    pub credentials_secret: Option<String>,
}

impl Default for TrainerStorage {
    fn default() -> Self {
        TrainerStorage {
            external_endpoint: None,
            datasets_bucket: "training-datasets".into(),
            internal_endpoint: None,
            checkpoints_bucket: "training-checkpoints".into(),
            credentials_secret: None,
        }
    }
}
