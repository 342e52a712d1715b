//! The typed environment model: what an environment file may say, with its defaults.
//!
//! Every struct denies unknown keys so a typo is an error, not a silently ignored setting.
//! Field names are the YAML keys (snake_case). Limits are checked in `validate.rs`, not here,
//! so that every problem in a file is reported at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

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

fn default_platform_namespace() -> String {
    "trainstack-system".into()
}

/// Cluster flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A local kind cluster: no GPUs, GPU pools become labelled kind workers.
    Kind,
    /// Amazon EKS.
    Eks,
}

/// The cluster an environment deploys to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `kind` or `eks`.
    pub kind: TargetKind,
    /// Cluster name (kind cluster name or EKS cluster name).
    pub cluster_name: String,
    /// Kubeconfig context; defaults to `kind-<cluster_name>` on kind.
    #[serde(default)]
    pub context: Option<String>,
    /// AWS region (EKS only).
    #[serde(default)]
    pub region: Option<String>,
    /// Kubernetes minor version the cluster runs, e.g. "1.33".
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// kind only: node image override; default is the kindest/node image for
    /// `kubernetes_version` (see `crate::targets::kind::default_node_image`).
    #[serde(default)]
    pub node_image: Option<String>,
    /// kind only: host ports mapped to 80/443 on the control-plane for an ingress controller.
    /// `None` means the defaults; kept optional so that setting it on EKS can be reported.
    #[serde(default)]
    pub ingress_ports: Option<IngressPorts>,
    /// kind only: local images copied into the nodes with `kind load docker-image`.
    #[serde(default)]
    pub load_images: Option<Vec<String>>,
    /// kind only: general-purpose workers besides the ones standing in for GPU pools.
    #[serde(default)]
    pub workers: Option<u32>,
}

fn default_kubernetes_version() -> String {
    "1.33".into()
}

impl Target {
    /// Host ports of the ingress mapping (defaults when unset).
    pub fn ingress_ports(&self) -> IngressPorts {
        self.ingress_ports.clone().unwrap_or_default()
    }

    /// Images to load into a kind cluster (none when unset).
    pub fn load_images(&self) -> &[String] {
        self.load_images.as_deref().unwrap_or_default()
    }

    /// General kind workers (1 when unset).
    pub fn workers(&self) -> u32 {
        self.workers.unwrap_or(DEFAULT_KIND_WORKERS)
    }
}

/// General workers of a kind cluster when `target.workers` is unset.
pub const DEFAULT_KIND_WORKERS: u32 = 1;

/// Host ports of a kind cluster that reach the ingress controller on the control-plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressPorts {
    /// Host port mapped to container port 80.
    #[serde(default = "default_http_port")]
    pub http: u32,
    /// Host port mapped to container port 443.
    #[serde(default = "default_https_port")]
    pub https: u32,
}

// Unprivileged ports, so that creating the cluster needs no root and rarely collides with a
// web server already running on the workstation.
fn default_http_port() -> u32 {
    8080
}
fn default_https_port() -> u32 {
    8443
}

impl Default for IngressPorts {
    fn default() -> Self {
        IngressPorts { http: default_http_port(), https: default_https_port() }
    }
}

/// Terraform outputs (a saved `terraform output -json` file or a Terraform directory) and how
/// trainstack runs that directory's Terraform for this environment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerraformSource {
    /// Path to a file holding `terraform output -json` (relative to the environment file).
    #[serde(default)]
    pub outputs_file: Option<String>,
    /// Terraform working directory to run `terraform output -json` in (relative to the file).
    #[serde(default)]
    pub dir: Option<String>,
    /// `-var-file`s of `terraform plan` and `destroy` (relative to the file): the settings of
    /// this environment when several share one Terraform root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<String>,
    /// `-backend-config` file of `terraform init` (relative to the file): where this
    /// environment keeps its state when several share one Terraform root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_config: Option<String>,
}

/// An upstream add-on (operator manifests) pinned to a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addon {
    /// Add-on name, e.g. `kubeflow-trainer`.
    pub name: String,
    /// Pinned upstream version, e.g. `v2.3.0`.
    pub version: String,
    /// Set to false to keep the declaration but not install it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the manifests come from.
    pub source: AddonSource,
}

/// Exactly one of `url` (with `sha256`), `file`, `dir` or `kustomize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddonSource {
    /// HTTPS URL of a multi-document YAML file; requires `sha256`.
    #[serde(default)]
    pub url: Option<String>,
    /// Expected sha256 of the downloaded file (hex).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Local YAML file (relative to the environment file), for air-gapped clusters.
    #[serde(default)]
    pub file: Option<String>,
    /// Local directory of YAML files, read in name order.
    #[serde(default)]
    pub dir: Option<String>,
    /// A kustomize target rendered with `kubectl kustomize` (local path or remote URL with ref).
    #[serde(default)]
    pub kustomize: Option<String>,
}

/// All components; each can be switched off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Tenants, their namespaces and RBAC.
    #[serde(default)]
    pub tenants: Tenants,
    /// Kubeflow Trainer runtimes and TrainJobs.
    #[serde(default)]
    pub trainer: Trainer,
    /// Resumable custom trainer Jobs.
    #[serde(default)]
    pub custom_jobs: CustomJobs,
    /// GPU node pools and the NVIDIA device plugin.
    #[serde(default)]
    pub gpu: Gpu,
    /// MLflow tracking server.
    #[serde(default)]
    pub mlflow: Mlflow,
    /// In-cluster PostgreSQL (kind).
    #[serde(default)]
    pub postgres: Postgres,
    /// In-cluster MinIO (kind).
    #[serde(default)]
    pub minio: Minio,
    /// Ray cluster (KubeRay).
    #[serde(default)]
    pub ray: Ray,
}

fn yes() -> bool {
    true
}

/// A Kubernetes resource quantity (`2`, `500m`, `16Gi`), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        // YAML turns `cpu: 2` into a number; Kubernetes accepts both spellings.
        Ok(Quantity(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => f.to_string(),
        }))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

/// A request/limit pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimit {
    /// Guaranteed amount.
    pub request: Quantity,
    /// Upper bound; must not be below `request`.
    pub limit: Quantity,
}

/// CPU and memory of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU request and limit.
    pub cpu: RequestLimit,
    /// Memory request and limit.
    pub memory: RequestLimit,
}

impl Resources {
    fn new(cpu: (&str, &str), memory: (&str, &str)) -> Self {
        Resources {
            cpu: RequestLimit { request: cpu.0.into(), limit: cpu.1.into() },
            memory: RequestLimit { request: memory.0.into(), limit: memory.1.into() },
        }
    }
}

// ---------------------------------------------------------------- tenants

/// Tenants: one namespace per user or team, with quota, limits, network policy and RBAC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenants {
    /// Render tenants and RBAC.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The platform backend's ServiceAccount (lives in the platform namespace).
    #[serde(default)]
    pub backend: Backend,
    /// Defaults for every tenant; a tenant may override any of them.
    #[serde(default)]
    pub defaults: TenantSettings,
    /// The tenants.
    #[serde(default)]
    pub list: Vec<Tenant>,
}

impl Default for Tenants {
    fn default() -> Self {
        Tenants {
            enabled: true,
            backend: Backend::default(),
            defaults: TenantSettings::default(),
            list: Vec::new(),
        }
    }
}

/// The platform backend's ServiceAccount, bound to `trainjob-backend-role` in every tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// ServiceAccount name.
    #[serde(default = "default_backend_sa")]
    pub service_account: String,
    /// IRSA role ARN (EKS), usually `${terraform.backend_role_arn}`.
    #[serde(default)]
    pub irsa_role_arn: Option<String>,
}

fn default_backend_sa() -> String {
    "trainjob-backend".into()
}

impl Default for Backend {
    fn default() -> Self {
        Backend { service_account: default_backend_sa(), irsa_role_arn: None }
    }
}

/// Per-tenant limits. Missing values fall back to `tenants.defaults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// ResourceQuota.
    #[serde(default)]
    pub quota: Quota,
    /// LimitRange defaults for containers that declare nothing.
    #[serde(default)]
    pub limit_range: LimitRange,
    /// Extra namespaces (besides the platform namespace and the tenant itself) allowed to reach
    /// the tenant's pods.
    #[serde(default)]
    pub allow_from_namespaces: Vec<String>,
}

/// ResourceQuota values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// `requests.cpu` and `limits.cpu`.
    #[serde(default = "default_quota_cpu")]
    pub cpu: Quantity,
    /// `requests.memory` and `limits.memory`.
    #[serde(default = "default_quota_memory")]
    pub memory: Quantity,
    /// `requests.nvidia.com/gpu` (0 forbids GPUs).
    #[serde(default)]
    pub gpu: u32,
    /// Maximum number of pods.
    #[serde(default = "default_quota_pods")]
    pub pods: u32,
}

/// A tenant's `quota`: each key it sets replaces that key of `tenants.defaults.quota`; the keys
/// it leaves out keep the defaults (maps deep-merge, as in layering).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverride {
    /// `requests.cpu` and `limits.cpu`.
    #[serde(default)]
    pub cpu: Option<Quantity>,
    /// `requests.memory` and `limits.memory`.
    #[serde(default)]
    pub memory: Option<Quantity>,
    /// `requests.nvidia.com/gpu`.
    #[serde(default)]
    pub gpu: Option<u32>,
    /// Maximum number of pods.
    #[serde(default)]
    pub pods: Option<u32>,
}

impl Quota {
    /// This quota with the keys `over` sets replaced.
    pub fn with(&self, over: &QuotaOverride) -> Quota {
        Quota {
            cpu: over.cpu.clone().unwrap_or_else(|| self.cpu.clone()),
            memory: over.memory.clone().unwrap_or_else(|| self.memory.clone()),
            gpu: over.gpu.unwrap_or(self.gpu),
            pods: over.pods.unwrap_or(self.pods),
        }
    }
}

impl Tenants {
    /// A tenant's effective quota: its own keys over `defaults.quota`.
    pub fn quota_of(&self, tenant: &Tenant) -> Quota {
        match &tenant.quota {
            Some(over) => self.defaults.quota.with(over),
            None => self.defaults.quota.clone(),
        }
    }
}

fn default_quota_cpu() -> Quantity {
    "16".into()
}
fn default_quota_memory() -> Quantity {
    "64Gi".into()
}
fn default_quota_pods() -> u32 {
    50
}

impl Default for Quota {
    fn default() -> Self {
        Quota { cpu: default_quota_cpu(), memory: default_quota_memory(), gpu: 0, pods: default_quota_pods() }
    }
}

/// LimitRange container defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRange {
    /// Default requests and limits for containers that set none.
    #[serde(default = "default_limit_range")]
    pub default: Resources,
}

fn default_limit_range() -> Resources {
    Resources::new(("250m", "1"), ("256Mi", "1Gi"))
}

impl Default for LimitRange {
    fn default() -> Self {
        LimitRange { default: default_limit_range() }
    }
}

/// One tenant (user or team).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Tenant name; also its namespace name (DNS-1123 label).
    pub name: String,
    /// IRSA role ARN for the tenant's ServiceAccount (EKS).
    #[serde(default)]
    pub irsa_role_arn: Option<String>,
    /// Overrides of `tenants.defaults.quota`, key by key.
    #[serde(default)]
    pub quota: Option<QuotaOverride>,
    /// Overrides of `tenants.defaults.limit_range`.
    #[serde(default)]
    pub limit_range: Option<LimitRange>,
    /// Overrides of `tenants.defaults.allow_from_namespaces`.
    #[serde(default)]
    pub allow_from_namespaces: Option<Vec<String>>,
}

// ---------------------------------------------------------------- trainer

/// Kubeflow Trainer: ClusterTrainingRuntimes and TrainJobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trainer {
    /// Render runtimes and TrainJobs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Trainer version the cluster runs; picks the TrainJob shape (v2.1 vs v2.2+).
    #[serde(default = "default_trainer_version")]
    pub version: String,
    /// Render the GPU variants of the runtimes (`pytorch-simple-gpu`, ...).
    #[serde(default = "yes")]
    pub gpu_runtimes: bool,
    /// Default image of `pytorch-simple`.
    #[serde(default = "default_pytorch_image")]
    pub pytorch_image: String,
    /// Default image of `tensorflow-distributed`.
    #[serde(default = "default_tensorflow_image")]
    pub tensorflow_image: String,
    /// Directory of job spec files (relative to the environment file that set it).
    #[serde(default)]
    pub jobs_dir: Option<String>,
}

fn default_trainer_version() -> String {
    "v2.3.0".into()
}
fn default_pytorch_image() -> String {
    "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime".into()
}
fn default_tensorflow_image() -> String {
    "tensorflow/tensorflow:2.18.0-gpu".into()
}

impl Default for Trainer {
    fn default() -> Self {
        Trainer {
            enabled: true,
            version: default_trainer_version(),
            gpu_runtimes: true,
            pytorch_image: default_pytorch_image(),
            tensorflow_image: default_tensorflow_image(),
            jobs_dir: None,
        }
    }
}

/// Resumable custom trainer Jobs: shared settings; the jobs themselves are job spec files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomJobs {
    /// Render custom trainer Jobs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Backend callback base URL given to trainers as `CALLBACK_URL` when a job sets none;
    /// defaults to the backend Service in `platform_namespace` ([`Environment::derive_defaults`]).
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Object storage the trainers read datasets from and write checkpoints to.
    #[serde(default)]
    pub storage: TrainerStorage,
    /// Default `activeDeadlineSeconds`.
    #[serde(default = "default_deadline")]
    pub active_deadline_seconds: u64,
    /// Default `backoffLimit`.
    #[serde(default = "default_backoff")]
    pub backoff_limit: u32,
}

fn default_deadline() -> u64 {
    86400
}
fn default_backoff() -> u32 {
    3
}

impl Default for CustomJobs {
    fn default() -> Self {
        CustomJobs {
            enabled: true,
            callback_url: None,
            storage: TrainerStorage::default(),
            active_deadline_seconds: default_deadline(),
            backoff_limit: default_backoff(),
        }
    }
}

/// The trainer contract's storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerStorage {
    /// `EXTERNAL_STORAGE_ENDPOINT` (datasets); defaults to the in-cluster MinIO when it is
    /// enabled, S3 otherwise ([`Environment::derive_defaults`]).
    #[serde(default)]
    pub external_endpoint: Option<String>,
    /// `EXTERNAL_BUCKET_DATASETS`.
    #[serde(default = "default_datasets_bucket")]
    pub datasets_bucket: String,
    /// `INTERNAL_STORAGE_ENDPOINT` (checkpoints); defaults like `external_endpoint`.
    #[serde(default)]
    pub internal_endpoint: Option<String>,
    /// `INTERNAL_BUCKET_CHECKPOINTS`.
    #[serde(default = "default_checkpoints_bucket")]
    pub checkpoints_bucket: String,
    /// Secret (in the tenant namespace) with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`;
    /// omit on EKS where IRSA provides credentials.
    #[serde(default)]
    pub credentials_secret: Option<String>,
}

fn default_datasets_bucket() -> String {
    "training-datasets".into()
}
fn default_checkpoints_bucket() -> String {
    "training-checkpoints".into()
}

impl Default for TrainerStorage {
    fn default() -> Self {
        TrainerStorage {
            external_endpoint: None,
            datasets_bucket: default_datasets_bucket(),
            internal_endpoint: None,
            checkpoints_bucket: default_checkpoints_bucket(),
            credentials_secret: None,
        }
    }
}

// ---------------------------------------------------------------- gpu

/// How GPU pools are provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuProvider {
    /// EKS managed node groups (reconciled through the EKS API, not manifests).
    ManagedNodeGroups,
    /// Karpenter NodePool + EC2NodeClass manifests.
    Karpenter,
    /// kind workers standing in for the pools (labels and taints only).
    Kind,
}

/// GPU node pools and the NVIDIA device plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Render GPU pools and the device plugin.
    #[serde(default)]
    pub enabled: bool,
    /// `managed_node_groups`, `karpenter` or `kind`.
    #[serde(default = "default_gpu_provider")]
    pub provider: GpuProvider,
    /// The pools.
    #[serde(default)]
    pub pools: Vec<GpuPool>,
    /// NVIDIA device plugin DaemonSet (skipped on kind).
    #[serde(default)]
    pub device_plugin: DevicePlugin,
    /// Karpenter settings (provider `karpenter`).
    #[serde(default)]
    pub karpenter: KarpenterSettings,
    /// Managed node group settings (provider `managed_node_groups`).
    #[serde(default)]
    pub node_groups: Option<NodeGroupSettings>,
}

fn default_gpu_provider() -> GpuProvider {
    GpuProvider::ManagedNodeGroups
}

impl Default for Gpu {
    fn default() -> Self {
        Gpu {
            enabled: false,
            provider: default_gpu_provider(),
            pools: Vec::new(),
            device_plugin: DevicePlugin::default(),
            karpenter: KarpenterSettings::default(),
            node_groups: None,
        }
    }
}

/// Capacity type of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapacityType {
    /// Spot instances.
    Spot,
    /// On-demand instances.
    OnDemand,
}

/// Taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaintEffect {
    /// Pods without a toleration are not scheduled.
    NoSchedule,
    /// Avoid scheduling pods without a toleration.
    PreferNoSchedule,
    /// Evict pods without a toleration.
    NoExecute,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(default)]
    pub value: String,
    /// Effect.
    pub effect: TaintEffect,
}

/// One GPU pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPool {
    /// Pool name (DNS-1123 label); node label `trainstack.io/pool=<name>`.
    pub name: String,
    /// EC2 instance types, e.g. `[p3.2xlarge]`.
    #[serde(default = "default_instance_types")]
    pub instance_types: Vec<String>,
    /// `SPOT` or `ON_DEMAND`.
    #[serde(default = "default_capacity")]
    pub capacity_type: CapacityType,
    /// EKS AMI type.
    #[serde(default = "default_ami_type")]
    pub ami_type: String,
    /// Minimum nodes.
    #[serde(default)]
    pub min_size: u32,
    /// Desired nodes at creation.
    #[serde(default)]
    pub desired_size: u32,
    /// Maximum nodes (at least 1).
    #[serde(default = "default_pool_max")]
    pub max_size: u32,
    /// GPUs per node of this pool's instance type.
    #[serde(default = "default_one")]
    pub gpus_per_node: u32,
    /// Root volume size in GiB.
    #[serde(default = "default_disk")]
    pub disk_size_gib: u32,
    /// Extra node labels (the defaults are always set).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints; defaults to `nvidia.com/gpu=true:NoSchedule`.
    #[serde(default = "default_gpu_taints")]
    pub taints: Vec<Taint>,
}

fn default_instance_types() -> Vec<String> {
    vec!["p3.2xlarge".into()]
}
fn default_capacity() -> CapacityType {
    CapacityType::Spot
}
fn default_ami_type() -> String {
    "AL2023_x86_64_NVIDIA".into()
}
fn default_pool_max() -> u32 {
    5
}
fn default_one() -> u32 {
    1
}
fn default_disk() -> u32 {
    100
}
/// The taint every GPU pool gets unless it declares its own.
pub fn default_gpu_taints() -> Vec<Taint> {
    vec![Taint { key: "nvidia.com/gpu".into(), value: "true".into(), effect: TaintEffect::NoSchedule }]
}

/// NVIDIA device plugin settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePlugin {
    /// Render the DaemonSet (never on kind).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Image.
    #[serde(default = "default_device_plugin_image")]
    pub image: String,
}

fn default_device_plugin_image() -> String {
    "nvcr.io/nvidia/k8s-device-plugin:v0.20.0".into()
}

impl Default for DevicePlugin {
    fn default() -> Self {
        DevicePlugin { enabled: true, image: default_device_plugin_image() }
    }
}

/// Karpenter EC2NodeClass settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KarpenterSettings {
    /// IAM role of the nodes (name, not ARN), e.g. `${terraform.karpenter_node_role}`.
    #[serde(default = "default_karpenter_role")]
    pub node_role: String,
    /// AMI alias, e.g. `al2023@latest`.
    #[serde(default = "default_ami_alias")]
    pub ami_alias: String,
    /// Value of the `karpenter.sh/discovery` tag on subnets and security groups.
    #[serde(default)]
    pub discovery_tag: Option<String>,
}

fn default_karpenter_role() -> String {
    "KarpenterNodeRole".into()
}
fn default_ami_alias() -> String {
    "al2023@latest".into()
}

impl Default for KarpenterSettings {
    fn default() -> Self {
        KarpenterSettings {
            node_role: default_karpenter_role(),
            ami_alias: default_ami_alias(),
            discovery_tag: None,
        }
    }
}

/// Where EKS managed node groups go: usually straight from Terraform outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupSettings {
    /// IAM role of the nodes (ARN), e.g. `${terraform.node_role_arn}`.
    pub node_role_arn: String,
    /// Subnets the nodes run in, e.g. `${terraform.private_subnet_ids}`.
    pub subnet_ids: Vec<String>,
}

// ---------------------------------------------------------------- aws

/// AWS resources of an eks environment that are not Kubernetes objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsResources {
    /// S3 buckets the platform uses.
    #[serde(default)]
    pub buckets: Vec<Bucket>,
}

/// Who creates and configures a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketOwner {
    /// trainstack creates it and keeps its settings as declared.
    Trainstack,
    /// Terraform owns it; trainstack only checks that it exists.
    Terraform,
}

/// Default encryption of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BucketEncryption {
    /// SSE-S3 (AES256, keys managed by S3).
    SseS3,
    /// SSE-KMS with `kms_key_id`, or the AWS-managed `aws/s3` key when unset.
    SseKms,
}

/// One S3 bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Bucket name (S3 naming rules: 3-63 characters, lowercase, digits, `-`, `.`).
    pub name: String,
    /// `trainstack` (default) or `terraform`.
    #[serde(default = "default_bucket_owner")]
    pub managed_by: BucketOwner,
    /// Object versioning (trainstack-managed buckets; default true).
    #[serde(default)]
    pub versioning: Option<bool>,
    /// Default encryption (default `sse-s3`).
    #[serde(default)]
    pub encryption: Option<BucketEncryption>,
    /// KMS key ARN or alias for `sse-kms`.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Block all public access (default true).
    #[serde(default)]
    pub block_public_access: Option<bool>,
    /// Lifecycle rules; the bucket's whole lifecycle configuration (default none).
    #[serde(default)]
    pub lifecycle: Option<Vec<LifecycleRule>>,
}

fn default_bucket_owner() -> BucketOwner {
    BucketOwner::Trainstack
}

impl Bucket {
    /// Versioning as it should be.
    pub fn versioning(&self) -> bool {
        self.versioning.unwrap_or(true)
    }
    /// Encryption as it should be.
    pub fn encryption(&self) -> BucketEncryption {
        self.encryption.unwrap_or(BucketEncryption::SseS3)
    }
    /// Whether all public access is blocked.
    pub fn block_public_access(&self) -> bool {
        self.block_public_access.unwrap_or(true)
    }
    /// Lifecycle rules as they should be.
    pub fn lifecycle(&self) -> &[LifecycleRule] {
        self.lifecycle.as_deref().unwrap_or_default()
    }
}

/// One lifecycle rule; at least one of the day counts is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    /// Rule ID, unique in the bucket.
    pub id: String,
    /// Key prefix the rule applies to (default: the whole bucket).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Delete current objects this many days after creation.
    #[serde(default)]
    pub expire_days: Option<u32>,
    /// Delete noncurrent versions this many days after they became noncurrent.
    #[serde(default)]
    pub noncurrent_expire_days: Option<u32>,
    /// Abort incomplete multipart uploads this many days after they started.
    #[serde(default)]
    pub abort_incomplete_multipart_days: Option<u32>,
}

// ---------------------------------------------------------------- mlflow

/// MLflow tracking server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mlflow {
    /// Render MLflow.
    #[serde(default)]
    pub enabled: bool,
    /// Server image.
    #[serde(default = "default_mlflow_image")]
    pub image: String,
    /// Container resources.
    #[serde(default = "default_mlflow_resources")]
    pub resources: Resources,
    /// HorizontalPodAutoscaler bounds.
    #[serde(default)]
    pub autoscaling: Autoscaling,
    /// Secret holding the backend store URI (`postgresql://...`).
    #[serde(default)]
    pub backend_store: SecretKeyRef,
    /// Artifact destination `s3://<bucket>/<prefix>`.
    #[serde(default)]
    pub artifacts: Artifacts,
    /// `--app-name basic-auth` with admin credentials from a Secret.
    #[serde(default)]
    pub auth: MlflowAuth,
    /// Ingress.
    #[serde(default)]
    pub ingress: Ingress,
    /// Further `Host` header patterns the server answers (`MLFLOW_SERVER_ALLOWED_HOSTS`, beside
    /// the ingress host and the Service's in-cluster names), e.g. the API server's host name,
    /// which the service proxy forwards as `Host`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// IRSA role ARN of the MLflow ServiceAccount.
    #[serde(default)]
    pub irsa_role_arn: Option<String>,
}

fn default_mlflow_image() -> String {
    "ghcr.io/mlflow/mlflow:v3.9.0-full".into()
}
fn default_mlflow_resources() -> Resources {
    Resources::new(("500m", "2"), ("1Gi", "4Gi"))
}

impl Default for Mlflow {
    fn default() -> Self {
        Mlflow {
            enabled: false,
            image: default_mlflow_image(),
            resources: default_mlflow_resources(),
            autoscaling: Autoscaling::default(),
            backend_store: SecretKeyRef::default(),
            artifacts: Artifacts::default(),
            auth: MlflowAuth::default(),
            ingress: Ingress::default(),
            allowed_hosts: Vec::new(),
            irsa_role_arn: None,
        }
    }
}

/// HPA settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// Minimum replicas.
    #[serde(default = "default_hpa_min")]
    pub min_replicas: u32,
    /// Maximum replicas.
    #[serde(default = "default_hpa_max")]
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent.
    #[serde(default = "default_hpa_cpu")]
    pub target_cpu_percent: u32,
}

fn default_hpa_min() -> u32 {
    2
}
fn default_hpa_max() -> u32 {
    5
}
fn default_hpa_cpu() -> u32 {
    70
}

impl Default for Autoscaling {
    fn default() -> Self {
        Autoscaling {
            min_replicas: default_hpa_min(),
            max_replicas: default_hpa_max(),
            target_cpu_percent: default_hpa_cpu(),
        }
    }
}

/// A reference to one key of a Secret in the platform namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    #[serde(default = "default_backend_secret")]
    pub secret: String,
    /// Key in the Secret.
    #[serde(default = "default_backend_key")]
    pub key: String,
}

fn default_backend_secret() -> String {
    "mlflow-backend-store".into()
}
fn default_backend_key() -> String {
    "uri".into()
}

impl Default for SecretKeyRef {
    fn default() -> Self {
        SecretKeyRef { secret: default_backend_secret(), key: default_backend_key() }
    }
}

/// MLflow artifact store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// Bucket name (S3 or MinIO).
    #[serde(default = "default_artifacts_bucket")]
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default = "default_artifacts_prefix")]
    pub prefix: String,
    /// S3 endpoint override (`MLFLOW_S3_ENDPOINT_URL`); defaults to the in-cluster MinIO when
    /// it is enabled ([`Environment::derive_defaults`]).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Secret with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (MinIO); omit with IRSA.
    #[serde(default)]
    pub credentials_secret: Option<String>,
}

fn default_artifacts_bucket() -> String {
    "mlflow-artifacts".into()
}
fn default_artifacts_prefix() -> String {
    "artifacts".into()
}

impl Default for Artifacts {
    fn default() -> Self {
        Artifacts {
            bucket: default_artifacts_bucket(),
            prefix: default_artifacts_prefix(),
            endpoint: None,
            credentials_secret: None,
        }
    }
}

/// MLflow basic auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowAuth {
    /// Run with `--app-name basic-auth`.
    #[serde(default)]
    pub enabled: bool,
    /// Secret with `username` and `password` of the admin user.
    #[serde(default = "default_auth_secret")]
    pub admin_secret: String,
}

fn default_auth_secret() -> String {
    "mlflow-admin".into()
}

impl Default for MlflowAuth {
    fn default() -> Self {
        MlflowAuth { enabled: false, admin_secret: default_auth_secret() }
    }
}

/// Ingress of MLflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// Render the Ingress.
    #[serde(default)]
    pub enabled: bool,
    /// Host name; also `MLFLOW_SERVER_ALLOWED_HOSTS`.
    #[serde(default)]
    pub host: Option<String>,
    /// IngressClass (`alb` on EKS, `nginx` on kind).
    #[serde(default)]
    pub class_name: Option<String>,
    /// ACM certificate ARN for HTTPS (AWS Load Balancer Controller).
    #[serde(default)]
    pub certificate_arn: Option<String>,
}

// ---------------------------------------------------------------- postgres / minio

/// In-cluster PostgreSQL StatefulSet for MLflow on kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    /// Render PostgreSQL.
    #[serde(default)]
    pub enabled: bool,
    /// Image.
    #[serde(default = "default_postgres_image")]
    pub image: String,
    /// PVC size.
    #[serde(default = "default_postgres_storage")]
    pub storage: Quantity,
    /// Database name.
    #[serde(default = "default_db")]
    pub database: String,
    /// Secret with `username` and `password`.
    #[serde(default = "default_pg_secret")]
    pub credentials_secret: String,
}

fn default_postgres_image() -> String {
    "postgres:16.4".into()
}
fn default_postgres_storage() -> Quantity {
    "5Gi".into()
}
fn default_db() -> String {
    "mlflow".into()
}
fn default_pg_secret() -> String {
    "postgres-credentials".into()
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres {
            enabled: false,
            image: default_postgres_image(),
            storage: default_postgres_storage(),
            database: default_db(),
            credentials_secret: default_pg_secret(),
        }
    }
}

/// In-cluster MinIO for kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minio {
    /// Render MinIO.
    #[serde(default)]
    pub enabled: bool,
    /// Image.
    #[serde(default = "default_minio_image")]
    pub image: String,
    /// PVC size.
    #[serde(default = "default_minio_storage")]
    pub storage: Quantity,
    /// Secret with `rootUser` and `rootPassword`.
    #[serde(default = "default_minio_secret")]
    pub credentials_secret: String,
    /// Buckets created at start-up.
    #[serde(default = "default_minio_buckets")]
    pub buckets: Vec<String>,
}

fn default_minio_image() -> String {
    "minio/minio:RELEASE.2025-04-22T22-12-26Z".into()
}
fn default_minio_storage() -> Quantity {
    "10Gi".into()
}
fn default_minio_secret() -> String {
    "minio-credentials".into()
}
fn default_minio_buckets() -> Vec<String> {
    vec!["mlflow-artifacts".into(), "training-datasets".into(), "training-checkpoints".into()]
}

impl Default for Minio {
    fn default() -> Self {
        Minio {
            enabled: false,
            image: default_minio_image(),
            storage: default_minio_storage(),
            credentials_secret: default_minio_secret(),
            buckets: default_minio_buckets(),
        }
    }
}

// ---------------------------------------------------------------- ray

/// Ray cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ray {
    /// Render the RayCluster.
    #[serde(default)]
    pub enabled: bool,
    /// Cluster name.
    #[serde(default = "default_ray_name")]
    pub name: String,
    /// Ray version (must match the image).
    #[serde(default = "default_ray_version")]
    pub ray_version: String,
    /// Image of head and workers.
    #[serde(default = "default_ray_image")]
    pub image: String,
    /// Head resources.
    #[serde(default = "default_ray_head")]
    pub head: Resources,
    /// GPU worker group (autoscaled).
    #[serde(default)]
    pub gpu_workers: RayWorkers<1>,
    /// Optional CPU worker group (`gpus` defaults to 0 here).
    #[serde(default)]
    pub cpu_workers: Option<RayWorkers<0>>,
    /// IRSA role ARN of the Ray ServiceAccount.
    #[serde(default)]
    pub irsa_role_arn: Option<String>,
}

fn default_ray_name() -> String {
    "ray".into()
}
fn default_ray_version() -> String {
    "2.52.0".into()
}
fn default_ray_image() -> String {
    "rayproject/ray:2.52.0-py311".into()
}
fn default_ray_head() -> Resources {
    Resources::new(("1", "2"), ("2Gi", "4Gi"))
}

impl Default for Ray {
    fn default() -> Self {
        Ray {
            enabled: false,
            name: default_ray_name(),
            ray_version: default_ray_version(),
            image: default_ray_image(),
            head: default_ray_head(),
            gpu_workers: RayWorkers::default(),
            cpu_workers: None,
            irsa_role_arn: None,
        }
    }
}

/// A Ray worker group; `GPUS` is the default of `gpus` (1 for the GPU group, 0 for the CPU
/// group).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayWorkers<const GPUS: u32> {
    /// Render this group; the GPU group defaults to `components.gpu.enabled`, the CPU group to
    /// true ([`Environment::derive_defaults`]).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Minimum workers.
    #[serde(default)]
    pub min_replicas: u32,
    /// Maximum workers.
    #[serde(default = "default_pool_max")]
    pub max_replicas: u32,
    /// GPUs per worker (0 for a CPU group).
    #[serde(default = "default_worker_gpus::<GPUS>")]
    pub gpus: u32,
    /// Worker resources.
    #[serde(default = "default_ray_worker")]
    pub resources: Resources,
    /// GPU pool the workers are scheduled on.
    #[serde(default)]
    pub pool: Option<String>,
}

fn default_ray_worker() -> Resources {
    Resources::new(("2", "4"), ("8Gi", "16Gi"))
}

fn default_worker_gpus<const GPUS: u32>() -> u32 {
    GPUS
}

impl<const GPUS: u32> Default for RayWorkers<GPUS> {
    fn default() -> Self {
        RayWorkers {
            enabled: None,
            min_replicas: 0,
            max_replicas: default_pool_max(),
            gpus: GPUS,
            resources: default_ray_worker(),
            pool: None,
        }
    }
}
