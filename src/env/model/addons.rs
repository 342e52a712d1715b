//! `addons`: upstream operators pinned to a version, and where their manifests come from.

use serde::{Deserialize, Serialize};

/// An upstream add-on (operator manifests) pinned to a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addon {
    /// Add-on name, e.g. `kubeflow-trainer`.
    pub name: String,
    /// Pinned upstream version, e.g. `v2.3.0`.
    pub version: String,
    /// Set to false to keep the declaration but not install it.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Where the manifests come from.
    pub source: AddonSource,
}

fn enabled() -> bool {
    true
}

/// Exactly one of `url` (with `sha256`), `file`, `dir` or `kustomize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddonSource {
    /// HTTPS URL of a multi-document YAML file; requires `sha256`.
    pub url: Option<String>,
    /// Expected sha256 of the downloaded file (hex).
    pub sha256: Option<String>,
    /// Local YAML file (relative to the environment file), for air-gapped clusters.
    pub file: Option<String>,
    /// Local directory of YAML files, read in name order.
    pub dir: Option<String>,
    /// A kustomize target rendered with `kubectl kustomize` (local path or remote URL with ref).
    pub kustomize: Option<String>,
}
