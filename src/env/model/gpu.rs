//! `components.gpu`: GPU node pools (Karpenter, EKS managed node groups or kind workers) and the
//! NVIDIA device plugin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Maximum nodes of a GPU pool, and workers of a Ray group, when unset.
pub(super) const DEFAULT_MAX_NODES: u32 = 5;

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
#[serde(default, deny_unknown_fields)]
pub struct Gpu {
    /// Render GPU pools and the device plugin.
    pub enabled: bool,
    /// `managed_node_groups`, `karpenter` or `kind`.
    pub provider: GpuProvider,
    /// The pools.
    pub pools: Vec<GpuPool>,
    /// NVIDIA device plugin DaemonSet (skipped on kind).
    pub device_plugin: DevicePlugin,
    /// Karpenter settings (provider `karpenter`).
    pub karpenter: KarpenterSettings,
    /// Managed node group settings (provider `managed_node_groups`).
    pub node_groups: Option<NodeGroupSettings>,
}

impl Default for Gpu {
    fn default() -> Self {
        Gpu {
            enabled: false,
            provider: GpuProvider::ManagedNodeGroups,
            pools: Vec::new(),
            device_plugin: DevicePlugin::default(),
            karpenter: KarpenterSettings::default(),
            node_groups: None,
        }
    }
}

/// Capacity type of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapacityType {
    /// Spot instances.
    #[default]
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

/// One GPU pool. `name` is required, so its defaults are field functions rather than an
/// `impl Default`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPool {
    /// Pool name (DNS-1123 label); node label `trainstack.io/pool=<name>`.
    pub name: String,
    /// EC2 instance types, e.g. `[p3.2xlarge]`.
    #[serde(default = "default_instance_types")]
    pub instance_types: Vec<String>,
    /// `SPOT` or `ON_DEMAND`.
    #[serde(default)]
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
    #[serde(default = "default_max_size")]
    pub max_size: u32,
    /// GPUs per node of this pool's instance type.
    #[serde(default = "default_gpus_per_node")]
    pub gpus_per_node: u32,
    /// Root volume size in GiB.
    #[serde(default = "default_disk_size_gib")]
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
fn default_ami_type() -> String {
    "AL2023_x86_64_NVIDIA".into()
}
fn default_max_size() -> u32 {
    DEFAULT_MAX_NODES
}
fn default_gpus_per_node() -> u32 {
    1
}
fn default_disk_size_gib() -> u32 {
    100
}
/// The taint every GPU pool gets unless it declares its own.
pub fn default_gpu_taints() -> Vec<Taint> {
    vec![Taint { key: "nvidia.com/gpu".into(), value: "true".into(), effect: TaintEffect::NoSchedule }]
}

/// NVIDIA device plugin settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicePlugin {
    /// Render the DaemonSet (never on kind).
    pub enabled: bool,
    /// Image.
    pub image: String,
}

impl Default for DevicePlugin {
    fn default() -> Self {
        DevicePlugin { enabled: true, image: "nvcr.io/nvidia/k8s-device-plugin:v0.20.0".into() }
    }
}

/// Karpenter EC2NodeClass settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KarpenterSettings {
    /// IAM role of the nodes (name, not ARN), e.g. `${terraform.karpenter_node_role}`.
    pub node_role: String,
    /// AMI alias, e.g. `al2023@latest`.
    pub ami_alias: String,
    /// Value of the `karpenter.sh/discovery` tag on subnets and security groups.
    pub discovery_tag: Option<String>,
}

impl Default for KarpenterSettings {
    fn default() -> Self {
        KarpenterSettings {
            node_role: "KarpenterNodeRole".into(),
            ami_alias: "al2023@latest".into(),
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
