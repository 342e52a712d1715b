//! `components.mlflow`: the MLflow tracking server, its stores, auth and ingress.

use serde::{Deserialize, Serialize};

use super::Resources;

/// MLflow tracking server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mlflow {
    /// Render MLflow.
    pub enabled: bool,
    /// Server image.
    pub image: String,
    /// Container resources.
    pub resources: Resources,
    /// HorizontalPodAutoscaler bounds.
    pub autoscaling: Autoscaling,
    /// Secret holding the backend store URI (`postgresql://...`).
    pub backend_store: SecretKeyRef,
    /// Artifact destination `s3://<bucket>/<prefix>`.
    pub artifacts: Artifacts,
    /// `--app-name basic-auth` with admin credentials from a Secret.
    pub auth: MlflowAuth,
    /// Ingress.
    pub ingress: Ingress,
    /// Further `Host` header patterns the server answers (`MLFLOW_SERVER_ALLOWED_HOSTS`, beside
    /// the ingress host and the Service's in-cluster names), e.g. the API server's host name,
    /// which the service proxy forwards as `Host`.
    pub allowed_hosts: Vec<String>,
    /// IRSA role ARN of the MLflow ServiceAccount.
    pub irsa_role_arn: Option<String>,
}

impl Default for Mlflow {
    fn default() -> Self {
        Mlflow {
            enabled: false,
            image: "ghcr.io/mlflow/mlflow:v3.9.0-full".into(),
            resources: Resources::new(("500m", "2"), ("1Gi", "4Gi")),
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
#[serde(default, deny_unknown_fields)]
pub struct Autoscaling {
    /// Minimum replicas.
    pub min_replicas: u32,
    /// Maximum replicas.
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent.
    pub target_cpu_percent: u32,
}

impl Default for Autoscaling {
    fn default() -> Self {
        Autoscaling { min_replicas: 2, max_replicas: 5, target_cpu_percent: 70 }
    }
}

/// A reference to one key of a Secret in the platform namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    pub secret: String,
    /// Key in the Secret.
    pub key: String,
}

impl Default for SecretKeyRef {
    fn default() -> Self {
        SecretKeyRef { secret: "mlflow-backend-store".into(), key: "uri".into() }
    }
}

/// MLflow artifact store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Artifacts {
    /// Bucket name (S3 or MinIO).
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    /// S3 endpoint override (`MLFLOW_S3_ENDPOINT_URL`); defaults to the in-cluster MinIO when
    /// it is enabled ([`super::Environment::derive_defaults`]).
    pub endpoint: Option<String>,
    /// Secret with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (MinIO); omit with IRSA.
    pub credentials_secret: Option<String>,
}

impl Default for Artifacts {
    fn default() -> Self {
        Artifacts {
            bucket: "mlflow-artifacts".into(),
            prefix: "artifacts".into(),
            endpoint: None,
            credentials_secret: None,
        }
    }
}

/// MLflow basic auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlflowAuth {
    /// Run with `--app-name basic-auth`.
    pub enabled: bool,
    /// Secret with `username` and `password` of the admin user.
    pub admin_secret: String,
}

impl Default for MlflowAuth {
    fn default() -> Self {
        MlflowAuth { enabled: false, admin_secret: "mlflow-admin".into() }
    }
}

/// Ingress of MLflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingress {
    /// Render the Ingress.
    pub enabled: bool,
    /// Host name; also `MLFLOW_SERVER_ALLOWED_HOSTS`.
    pub host: Option<String>,
    /// IngressClass (`alb` on EKS, `nginx` on kind).
    pub class_name: Option<String>,
    /// ACM certificate ARN for HTTPS (AWS Load Balancer Controller).
    pub certificate_arn: Option<String>,
    /// ALB scheme (class `alb` on eks): `internal` (the VPC only) or `internet-facing`.
    pub scheme: IngressScheme,
    /// `internet-facing` without `auth.enabled` is refused unless this names the environment:
    /// an opt-in that cannot be copied into another environment by accident.
    pub allow_public_without_auth: Option<String>,
}

/// Who can reach the ALB of the MLflow Ingress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IngressScheme {
    /// Reachable only from inside the VPC (and networks peered with it).
    #[default]
    Internal,
    /// Reachable from the internet.
    InternetFacing,
}
