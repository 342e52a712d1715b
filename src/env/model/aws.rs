//! `aws`: the S3 buckets, the tenants' AWS identity (EKS Pod Identity) and the Secrets Manager
//! secrets that become Kubernetes Secrets of an eks environment, which are not Kubernetes objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// AWS resources of an eks environment that are not Kubernetes objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsResources {
    /// S3 buckets the platform uses.
    pub buckets: Vec<Bucket>,
    /// The AWS identity of every tenant's `trainer` ServiceAccount.
    pub pod_identity: Option<PodIdentity>,
    /// Kubernetes Secrets in the platform namespace whose values come from Secrets Manager
    /// (how: `components.secrets.mode`).
    pub secrets: Vec<ManagedSecret>,
}

/// EKS Pod Identity for the tenants: one association per tenant namespace's `trainer`
/// ServiceAccount, all to one role whose policy scopes S3 by the `kubernetes-namespace` session
/// tag EKS attaches (Terraform's `tenant_role_arn`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodIdentity {
    /// The tenant role, usually `${terraform.tenant_role_arn}`.
    pub role_arn: String,
}

/// One Kubernetes Secret made from one Secrets Manager secret whose value is a JSON object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedSecret {
    /// Name of the Kubernetes Secret (in the platform namespace).
    pub name: String,
    /// ARN of the Secrets Manager secret, e.g. `${terraform.rds_secret_arn}`.
    pub from: String,
    /// Key of the Kubernetes Secret -> its value, a template over the secret's JSON fields:
    /// `{{ password }}`, or `{{ password | urlencode }}` inside a URI (`env::secret_template`).
    pub data: BTreeMap<String, String>,
}

/// Who creates and configures a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketOwner {
    /// trainstack creates it and keeps its settings as declared.
    #[default]
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

/// One S3 bucket; the accessors give the defaults of the settings left unset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Bucket name (S3 naming rules: 3-63 characters, lowercase, digits, `-`, `.`).
    pub name: String,
    /// `trainstack` (default) or `terraform`.
    #[serde(default)]
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
