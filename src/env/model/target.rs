//! `target` (the cluster an environment deploys to) and `terraform` (where its outputs come from).

use serde::{Deserialize, Serialize};

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
    /// `kubernetes_version` (see `crate::env::versions::default_node_image`).
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
#[serde(default, deny_unknown_fields)]
pub struct IngressPorts {
    /// Host port mapped to container port 80.
    pub http: u32,
    /// Host port mapped to container port 443.
    pub https: u32,
}

impl Default for IngressPorts {
    // Unprivileged ports, so that creating the cluster needs no root and rarely collides with a
    // web server already running on the workstation.
    fn default() -> Self {
        IngressPorts { http: 8080, https: 8443 }
    }
}

/// Terraform outputs (a saved `terraform output -json` file or a Terraform directory) and how
/// trainstack runs that directory's Terraform for this environment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerraformSource {
    /// Path to a file holding `terraform output -json` (relative to the environment file).
    pub outputs_file: Option<String>,
    /// Terraform working directory to run `terraform output -json` in (relative to the file).
    pub dir: Option<String>,
    /// `-var-file`s of `terraform plan` and `destroy` (relative to the file): the settings of
    /// this environment when several share one Terraform root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<String>,
    /// `-backend-config` file of `terraform init` (relative to the file): where this
    /// environment keeps its state when several share one Terraform root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_config: Option<String>,
}
