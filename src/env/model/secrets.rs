//! `components.secrets`: how the `aws.secrets` of an eks environment reach the cluster.

use serde::{Deserialize, Serialize};

/// How Secrets Manager secrets become Kubernetes Secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Secrets {
    /// `apply`, `external-secrets` or `none`.
    pub mode: SecretsMode,
    /// The External Secrets Operator objects (`mode: external-secrets`).
    pub external_secrets: ExternalSecrets,
}

/// Who writes the Kubernetes Secrets of `aws.secrets`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretsMode {
    /// `diff`, `apply` and `status` read Secrets Manager and server-side apply each Secret; no
    /// operator needed. Rendered files carry the Secret without its data.
    #[default]
    Apply,
    /// Render a SecretStore and one ExternalSecret per secret; the External Secrets Operator
    /// (installed beforehand) reads Secrets Manager and writes the Secrets.
    ExternalSecrets,
    /// Nothing: the Secrets are made some other way.
    None,
}

/// The SecretStore and the ServiceAccount it authenticates as.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalSecrets {
    /// ServiceAccount in the platform namespace whose IRSA role may read the secrets.
    pub service_account: String,
    /// IAM role of that ServiceAccount (`eks.amazonaws.com/role-arn`); it must trust
    /// `<platform_namespace>:<service_account>` and allow `secretsmanager:GetSecretValue` on
    /// the secrets (and `kms:Decrypt` on their key).
    pub role_arn: Option<String>,
    /// How often the operator re-reads Secrets Manager (a Go duration, e.g. `1h`).
    pub refresh_interval: String,
}

impl Default for ExternalSecrets {
    fn default() -> Self {
        ExternalSecrets {
            service_account: "external-secrets".into(),
            role_arn: None,
            refresh_interval: "1h".into(),
        }
    }
}
