//! `components.tenants`: one namespace per user or team, with quota, limits, network policy and
//! RBAC, and the platform backend's ServiceAccount.

use serde::{Deserialize, Serialize};

use super::{Quantity, Resources, TenantHpo};

/// Tenants: one namespace per user or team, with quota, limits, network policy and RBAC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tenants {
    /// Render tenants and RBAC.
    pub enabled: bool,
    /// The platform backend's ServiceAccount (lives in the platform namespace).
    pub backend: Backend,
    /// Defaults for every tenant; a tenant may override any of them.
    pub defaults: TenantSettings,
    /// The tenants.
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

impl Tenants {
    /// A tenant's effective quota: its own keys over `defaults.quota`.
    pub fn quota_of(&self, tenant: &Tenant) -> Quota {
        match &tenant.quota {
            Some(over) => self.defaults.quota.with(over),
            None => self.defaults.quota.clone(),
        }
    }
}

/// The platform backend's ServiceAccount, bound to `trainjob-backend-role` in every tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backend {
    /// ServiceAccount name.
    pub service_account: String,
    /// IRSA role ARN (EKS), usually `${terraform.backend_role_arn}`.
    pub irsa_role_arn: Option<String>,
}

impl Default for Backend {
    fn default() -> Self {
        Backend { service_account: "trainjob-backend".into(), irsa_role_arn: None }
    }
}

/// Per-tenant limits. Missing values fall back to `tenants.defaults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// ResourceQuota.
    pub quota: Quota,
    /// LimitRange defaults for containers that declare nothing.
    pub limit_range: LimitRange,
    /// Extra namespaces (besides the platform namespace and the tenant itself) allowed to reach
    /// the tenant's pods.
    pub allow_from_namespaces: Vec<String>,
}

/// ResourceQuota values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// `requests.cpu` and `limits.cpu`.
    pub cpu: Quantity,
    /// `requests.memory` and `limits.memory`.
    pub memory: Quantity,
    /// `requests.nvidia.com/gpu` (0 forbids GPUs).
    pub gpu: u32,
    /// Maximum number of pods.
    pub pods: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Quota { cpu: "16".into(), memory: "64Gi".into(), gpu: 0, pods: 50 }
    }
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

/// A tenant's `quota`: each key it sets replaces that key of `tenants.defaults.quota`; the keys
/// it leaves out keep the defaults (maps deep-merge, as in layering).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaOverride {
    /// `requests.cpu` and `limits.cpu`.
    pub cpu: Option<Quantity>,
    /// `requests.memory` and `limits.memory`.
    pub memory: Option<Quantity>,
    /// `requests.nvidia.com/gpu`.
    pub gpu: Option<u32>,
    /// Maximum number of pods.
    pub pods: Option<u32>,
}

/// LimitRange container defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRange {
    /// Default requests and limits for containers that set none.
    pub default: Resources,
}

impl Default for LimitRange {
    fn default() -> Self {
        LimitRange { default: Resources::new(("250m", "1"), ("256Mi", "1Gi")) }
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
    /// The tenant's Optuna workspace (`components.hpo`).
    #[serde(default)]
    pub hpo: TenantHpo,
}
