//! S3 buckets an environment declares: the settings trainstack manages in one comparable shape,
//! the plan (create, settings drift, Terraform-owned existence checks), and the SDK adapter.
//!
//! Buckets are never deleted: a bucket dropped from the environment keeps its data and is left
//! alone, with or without `--prune`.

use std::future::Future;

use aws_sdk_s3::types as s3t;

use super::reconcile::{AwsAction, AwsChange, Resource};
use super::{AwsError, ENVIRONMENT_TAG};
use crate::env::model::{Bucket, BucketEncryption, BucketOwner, LifecycleRule};

/// Versioning state of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled.
    Off,
    /// Enabled.
    Enabled,
    /// Enabled once, now suspended (S3 cannot go back to never-enabled).
    Suspended,
}

/// Default encryption: the algorithm and, for KMS, the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// `AES256`, `aws:kms`, ...
    pub algorithm: String,
    /// KMS key (None: the AWS-managed key).
    pub kms_key_id: Option<String>,
}

/// The four public access block switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccess {
    /// BlockPublicAcls.
    pub block_public_acls: bool,
    /// IgnorePublicAcls.
    pub ignore_public_acls: bool,
    /// BlockPublicPolicy.
    pub block_public_policy: bool,
    /// RestrictPublicBuckets.
    pub restrict_public_buckets: bool,
}

impl PublicAccess {
    fn all(on: bool) -> Self {
        PublicAccess {
            block_public_acls: on,
            ignore_public_acls: on,
            block_public_policy: on,
            restrict_public_buckets: on,
        }
    }
}

/// A lifecycle rule as S3 holds it; `other` lists what trainstack does not model (transitions,
/// tag filters, ...), so such a rule never equals a declared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Rule ID.
    pub id: String,
    /// Key prefix ("" for the whole bucket).
    pub prefix: String,
    /// `Enabled` or `Disabled`.
    pub enabled: bool,
    /// Current-version expiry in days.
    pub expire_days: Option<u32>,
    /// Noncurrent-version expiry in days.
    pub noncurrent_expire_days: Option<u32>,
    /// Incomplete multipart upload abort in days.
    pub abort_incomplete_multipart_days: Option<u32>,
    /// Settings trainstack does not manage.
    pub other: Vec<String>,
}

impl Rule {
    fn declared(r: &LifecycleRule) -> Self {
        Rule {
            id: r.id.clone(),
            prefix: r.prefix.clone().unwrap_or_default(),
            enabled: true,
            expire_days: r.expire_days,
            noncurrent_expire_days: r.noncurrent_expire_days,
            abort_incomplete_multipart_days: r.abort_incomplete_multipart_days,
            other: Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.prefix.is_empty() {
            parts.push(format!("prefix {}", self.prefix));
        }
        if !self.enabled {
            parts.push("disabled".into());
        }
        if let Some(d) = self.expire_days {
            parts.push(format!("expire after {d}d"));
        }
        if let Some(d) = self.noncurrent_expire_days {
            parts.push(format!("noncurrent versions after {d}d"));
        }
        if let Some(d) = self.abort_incomplete_multipart_days {
            parts.push(format!("abort uploads after {d}d"));
        }
        parts.extend(self.other.iter().cloned());
        format!("{} ({})", self.id, parts.join(", "))
    }
}

/// Everything trainstack manages on a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    /// Versioning.
    pub versioning: Versioning,
    /// Default encryption (None: not configured).
    pub encryption: Option<Encryption>,
    /// Public access block (all false when not configured).
    pub public_access: PublicAccess,
    /// Lifecycle rules, sorted by ID.
    pub lifecycle: Vec<Rule>,
}

/// What `HeadBucket` says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The bucket exists and is ours to read.
    Exists,
    /// No bucket of that name.
    Missing,
}

/// The S3 calls reconciliation makes; the SDK adapter below, fakes in tests.
pub trait BucketApi: Sync {
    /// Whether the bucket exists (403 and wrong-region answers are errors).
    fn presence(&self, bucket: &str) -> impl Future<Output = Result<Presence, AwsError>> + Send;
    /// The managed settings of an existing bucket.
    fn settings(&self, bucket: &str) -> impl Future<Output = Result<BucketSettings, AwsError>> + Send;
    /// Creates the bucket in the environment's region, tagged with the environment.
    fn create(&self, bucket: &str, env_name: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets versioning.
    fn put_versioning(
        &self,
        bucket: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets default encryption.
    fn put_encryption(
        &self,
        bucket: &str,
        e: &Encryption,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets the public access block.
    fn put_public_access(
        &self,
        bucket: &str,
        p: PublicAccess,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Replaces the lifecycle configuration (deletes it when `rules` is empty).
    fn put_lifecycle(
        &self,
        bucket: &str,
        rules: &[Rule],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// One setting to change on a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Enable or suspend versioning.
    Versioning(bool),
    /// Set default encryption.
    Encryption(Encryption),
    /// Set the public access block.
    PublicAccess(PublicAccess),
    /// Replace the lifecycle rules.
    Lifecycle(Vec<Rule>),
}

/// The desired managed settings of a trainstack-managed bucket.
pub fn desired(b: &Bucket) -> BucketSettings {
    let mut lifecycle: Vec<Rule> = b.lifecycle().iter().map(Rule::declared).collect();
    lifecycle.sort_by(|a, b| a.id.cmp(&b.id));
    BucketSettings {
        versioning: if b.versioning() { Versioning::Enabled } else { Versioning::Off },
        encryption: Some(match b.encryption() {
            BucketEncryption::SseS3 => Encryption { algorithm: "AES256".into(), kms_key_id: None },
            BucketEncryption::SseKms => {
                Encryption { algorithm: "aws:kms".into(), kms_key_id: b.kms_key_id.clone() }
            }
        }),
        public_access: PublicAccess::all(b.block_public_access()),
        lifecycle,
    }
}

fn show_versioning(v: Versioning) -> &'static str {
    match v {
        Versioning::Off => "off",
        Versioning::Enabled => "enabled",
        Versioning::Suspended => "suspended",
    }
}

fn show_encryption(e: &Option<Encryption>) -> String {
    match e {
        None => "none".into(),
        Some(Encryption { algorithm, kms_key_id: None }) if algorithm == "AES256" => "sse-s3".into(),
        Some(Encryption { algorithm, kms_key_id: None }) if algorithm == "aws:kms" => {
            "sse-kms (aws/s3 key)".into()
        }
        Some(Encryption { algorithm, kms_key_id: Some(k) }) if algorithm == "aws:kms" => {
            format!("sse-kms ({k})")
        }
        Some(Encryption { algorithm, .. }) => algorithm.clone(),
    }
}

fn show_public_access(p: PublicAccess) -> String {
    if p == PublicAccess::all(true) {
        return "all public access blocked".into();
    }
    if p == PublicAccess::all(false) {
        return "not blocked".into();
    }
    format!(
        "block_public_acls={}, ignore_public_acls={}, block_public_policy={}, restrict_public_buckets={}",
        p.block_public_acls, p.ignore_public_acls, p.block_public_policy, p.restrict_public_buckets
    )
}

fn show_lifecycle(rules: &[Rule]) -> String {
    if rules.is_empty() {
        "none".into()
    } else {
        rules.iter().map(Rule::describe).collect::<Vec<_>>().join("; ")
    }
}

/// The changes that make `live` match `want`, each with a `field: before -> after` line.
/// A bucket that should not be versioned but was once is suspended: S3 cannot un-version it.
pub fn drift(want: &BucketSettings, live: &BucketSettings) -> Vec<(Fix, String)> {
    let mut out = Vec::new();
    let versioning_ok = match want.versioning {
        Versioning::Enabled => live.versioning == Versioning::Enabled,
        _ => live.versioning != Versioning::Enabled,
    };
    if !versioning_ok {
        let after =
            if want.versioning == Versioning::Enabled { Versioning::Enabled } else { Versioning::Suspended };
        out.push((
            Fix::Versioning(want.versioning == Versioning::Enabled),
            format!("versioning: {} -> {}", show_versioning(live.versioning), show_versioning(after)),
        ));
    }
    if want.encryption != live.encryption {
        if let Some(e) = &want.encryption {
            out.push((
                Fix::Encryption(e.clone()),
                format!(
                    "encryption: {} -> {}",
                    show_encryption(&live.encryption),
                    show_encryption(&want.encryption)
                ),
            ));
        }
    }
    if want.public_access != live.public_access {
        out.push((
            Fix::PublicAccess(want.public_access),
            format!(
                "public access block: {} -> {}",
                show_public_access(live.public_access),
                show_public_access(want.public_access)
            ),
        ));
    }
    if want.lifecycle != live.lifecycle {
        out.push((
            Fix::Lifecycle(want.lifecycle.clone()),
            format!("lifecycle: {} -> {}", show_lifecycle(&live.lifecycle), show_lifecycle(&want.lifecycle)),
        ));
    }
    out
}

/// The plan for one bucket, and the fixes to make.
pub struct BucketPlan {
    /// What diff and apply report.
    pub change: AwsChange,
    /// Settings to write (all of them for a new bucket).
    pub fixes: Vec<Fix>,
}

/// Plans one declared bucket against S3.
pub async fn plan(api: &impl BucketApi, b: &Bucket) -> BucketPlan {
    let mut change = AwsChange::new(Resource::Bucket, &b.name);
    let presence = match api.presence(&b.name).await {
        Ok(p) => p,
        Err(e) => return BucketPlan { change: change.failed(e.to_string()), fixes: Vec::new() },
    };
    if b.managed_by == BucketOwner::Terraform {
        change.note = Some("managed by terraform".into());
        if presence == Presence::Missing {
            change = change.failed(format!(
                "bucket {:?} does not exist; it is managed_by terraform, so create it with terraform apply in terraform/envs/<env>",
                b.name
            ));
        }
        return BucketPlan { change, fixes: Vec::new() };
    }
    let want = desired(b);
    if presence == Presence::Missing {
        change.action = AwsAction::Create;
        change.details = vec![
            format!("versioning: {}", show_versioning(want.versioning)),
            format!("encryption: {}", show_encryption(&want.encryption)),
            format!("public access block: {}", show_public_access(want.public_access)),
            format!("lifecycle: {}", show_lifecycle(&want.lifecycle)),
        ];
        // Every setting is written, even one that matches S3's defaults for new buckets (which
        // have changed over the years: public access blocked and SSE-S3 only since 2023).
        let mut fixes = Vec::new();
        if want.versioning == Versioning::Enabled {
            fixes.push(Fix::Versioning(true));
        }
        fixes.extend(want.encryption.clone().map(Fix::Encryption));
        fixes.push(Fix::PublicAccess(want.public_access));
        if !want.lifecycle.is_empty() {
            fixes.push(Fix::Lifecycle(want.lifecycle.clone()));
        }
        return BucketPlan { change, fixes };
    }
    let live = match api.settings(&b.name).await {
        Ok(s) => s,
        Err(e) => return BucketPlan { change: change.failed(e.to_string()), fixes: Vec::new() },
    };
    let d = drift(&want, &live);
    if !d.is_empty() {
        change.action = AwsAction::Update;
    }
    let (fixes, details): (Vec<Fix>, Vec<String>) = d.into_iter().unzip();
    change.details = details;
    BucketPlan { change, fixes }
}

/// Applies a bucket plan: create when new, then every fix.
pub async fn apply(api: &impl BucketApi, p: BucketPlan, env_name: &str) -> AwsChange {
    let BucketPlan { change, fixes } = p;
    if change.error.is_some() || matches!(change.action, AwsAction::Unchanged) {
        return change;
    }
    let name = change.name.clone();
    if change.action == AwsAction::Create {
        if let Err(e) = api.create(&name, env_name).await {
            return change.failed(e.to_string());
        }
    }
    for fix in fixes {
        let r = match &fix {
            Fix::Versioning(on) => api.put_versioning(&name, *on).await,
            Fix::Encryption(e) => api.put_encryption(&name, e).await,
            Fix::PublicAccess(p) => api.put_public_access(&name, *p).await,
            Fix::Lifecycle(rules) => api.put_lifecycle(&name, rules).await,
        };
        if let Err(e) = r {
            return change.failed(e.to_string());
        }
    }
    change
}

/// [`BucketApi`] over aws-sdk-s3.
pub struct S3 {
    client: aws_sdk_s3::Client,
    region: String,
}

impl S3 {
    /// The adapter for one region.
    pub fn new(aws: &super::Aws) -> Self {
        S3 { client: aws.s3(), region: aws.region.clone() }
    }
}

fn days(d: Option<i32>) -> Option<u32> {
    d.and_then(|d| u32::try_from(d).ok())
}

fn build_err(call: &str, bucket: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::Api { call: call.into(), resource: format!("bucket {bucket}"), message: e.to_string() }
}

fn live_rule(r: &s3t::LifecycleRule) -> Rule {
    let mut other = Vec::new();
    let filter = r.filter();
    // Rules written before filters existed carry the prefix at the top level.
    #[allow(deprecated)]
    let legacy_prefix = r.prefix();
    let prefix = filter.and_then(|f| f.prefix()).or(legacy_prefix).unwrap_or("").to_string();
    if filter.is_some_and(|f| {
        f.tag().is_some()
            || f.and().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    }) {
        other.push("a filter trainstack does not manage".into());
    }
    if !r.transitions().is_empty() || !r.noncurrent_version_transitions().is_empty() {
        other.push("storage class transitions".into());
    }
    let exp = r.expiration();
    if exp.is_some_and(|e| e.date().is_some() || e.expired_object_delete_marker() == Some(true)) {
        other.push("an expiry date or delete-marker expiry".into());
    }
    Rule {
        id: r.id().unwrap_or("").to_string(),
        prefix,
        enabled: r.status() == &s3t::ExpirationStatus::Enabled,
        expire_days: days(exp.and_then(|e| e.days())),
        noncurrent_expire_days: days(r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days())),
        abort_incomplete_multipart_days: days(
            r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
        ),
        other,
    }
}

fn code_is<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    codes: &[&str],
) -> bool {
    e.as_service_error().and_then(|s| s.code()).is_some_and(|c| codes.contains(&c))
}

impl BucketApi for S3 {
    async fn presence(&self, bucket: &str) -> Result<Presence, AwsError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(Presence::Exists),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match status {
                    Some(404) => Ok(Presence::Missing),
                    Some(403) => Err(AwsError::AccessDenied {
                        call: "s3:HeadBucket".into(),
                        resource: format!("bucket {bucket}"),
                        message: "403 Forbidden: the bucket belongs to another account (bucket names are global), or this identity may not list it".into(),
                    }),
                    Some(301) => Err(AwsError::Api {
                        call: "s3:HeadBucket".into(),
                        resource: format!("bucket {bucket}"),
                        message: format!("the bucket exists in another region than {}", self.region),
                    }),
                    _ => Err(AwsError::from_sdk("s3:HeadBucket", &format!("bucket {bucket}"), e)),
                }
            }
        }
    }

    async fn settings(&self, bucket: &str) -> Result<BucketSettings, AwsError> {
        let res = format!("bucket {bucket}");
        let v = self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetBucketVersioning", &res, e))?;
        let versioning = match v.status() {
            Some(s3t::BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(s3t::BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        };
        let encryption = match self.client.get_bucket_encryption().bucket(bucket).send().await {
            Ok(out) => out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default())
                .map(|d| Encryption {
                    algorithm: d.sse_algorithm().as_str().to_string(),
                    kms_key_id: d.kms_master_key_id().map(str::to_string),
                }),
            Err(e) if code_is(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => None,
            Err(e) => return Err(AwsError::from_sdk("s3:GetEncryptionConfiguration", &res, e)),
        };
        let public_access = match self.client.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => out
                .public_access_block_configuration()
                .map(|p| PublicAccess {
                    block_public_acls: p.block_public_acls().unwrap_or(false),
                    ignore_public_acls: p.ignore_public_acls().unwrap_or(false),
                    block_public_policy: p.block_public_policy().unwrap_or(false),
                    restrict_public_buckets: p.restrict_public_buckets().unwrap_or(false),
                })
                .unwrap_or_default(),
            Err(e) if code_is(&e, &["NoSuchPublicAccessBlockConfiguration"]) => PublicAccess::default(),
            Err(e) => return Err(AwsError::from_sdk("s3:GetBucketPublicAccessBlock", &res, e)),
        };
        let mut lifecycle = match self.client.get_bucket_lifecycle_configuration().bucket(bucket).send().await
        {
            Ok(out) => out.rules().iter().map(live_rule).collect(),
            Err(e) if code_is(&e, &["NoSuchLifecycleConfiguration"]) => Vec::new(),
            Err(e) => return Err(AwsError::from_sdk("s3:GetLifecycleConfiguration", &res, e)),
        };
        lifecycle.sort_by(|a: &Rule, b: &Rule| a.id.cmp(&b.id));
        Ok(BucketSettings { versioning, encryption, public_access, lifecycle })
    }

    async fn create(&self, bucket: &str, env_name: &str) -> Result<(), AwsError> {
        let res = format!("bucket {bucket}");
        let mut req = self.client.create_bucket().bucket(bucket);
        // us-east-1 is the one region that takes no location constraint.
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                s3t::CreateBucketConfiguration::builder()
                    .location_constraint(s3t::BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(|e| AwsError::from_sdk("s3:CreateBucket", &res, e))?;
        let tag = s3t::Tag::builder()
            .key(ENVIRONMENT_TAG)
            .value(env_name)
            .build()
            .map_err(|e| build_err("s3:PutBucketTagging", bucket, e))?;
        let tagging = s3t::Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| build_err("s3:PutBucketTagging", bucket, e))?;
        self.client
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutBucketTagging", &res, e))?;
        Ok(())
    }

    async fn put_versioning(&self, bucket: &str, enabled: bool) -> Result<(), AwsError> {
        let status = if enabled {
            s3t::BucketVersioningStatus::Enabled
        } else {
            s3t::BucketVersioningStatus::Suspended
        };
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(s3t::VersioningConfiguration::builder().status(status).build())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutBucketVersioning", &format!("bucket {bucket}"), e))?;
        Ok(())
    }

    async fn put_encryption(&self, bucket: &str, e: &Encryption) -> Result<(), AwsError> {
        let call = "s3:PutEncryptionConfiguration";
        let by_default = s3t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(s3t::ServerSideEncryption::from(e.algorithm.as_str()))
            .set_kms_master_key_id(e.kms_key_id.clone())
            .build()
            .map_err(|err| build_err(call, bucket, err))?;
        let config = s3t::ServerSideEncryptionConfiguration::builder()
            .rules(
                s3t::ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(|err| build_err(call, bucket, err))?;
        self.client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|err| AwsError::from_sdk(call, &format!("bucket {bucket}"), err))?;
        Ok(())
    }

    async fn put_public_access(&self, bucket: &str, p: PublicAccess) -> Result<(), AwsError> {
        let config = s3t::PublicAccessBlockConfiguration::builder()
            .block_public_acls(p.block_public_acls)
            .ignore_public_acls(p.ignore_public_acls)
            .block_public_policy(p.block_public_policy)
            .restrict_public_buckets(p.restrict_public_buckets)
            .build();
        self.client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(config)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("s3:PutBucketPublicAccessBlock", &format!("bucket {bucket}"), e)
            })?;
        Ok(())
    }

    async fn put_lifecycle(&self, bucket: &str, rules: &[Rule]) -> Result<(), AwsError> {
        let call = "s3:PutLifecycleConfiguration";
        let res = format!("bucket {bucket}");
        if rules.is_empty() {
            self.client
                .delete_bucket_lifecycle()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(call, &res, e))?;
            return Ok(());
        }
        let mut built = Vec::new();
        for r in rules {
            let mut b = s3t::LifecycleRule::builder()
                .id(&r.id)
                .status(s3t::ExpirationStatus::Enabled)
                .filter(s3t::LifecycleRuleFilter::builder().prefix(&r.prefix).build());
            if let Some(d) = r.expire_days {
                b = b.expiration(s3t::LifecycleExpiration::builder().days(d as i32).build());
            }
            if let Some(d) = r.noncurrent_expire_days {
                b = b.noncurrent_version_expiration(
                    s3t::NoncurrentVersionExpiration::builder().noncurrent_days(d as i32).build(),
                );
            }
            if let Some(d) = r.abort_incomplete_multipart_days {
                b = b.abort_incomplete_multipart_upload(
                    s3t::AbortIncompleteMultipartUpload::builder().days_after_initiation(d as i32).build(),
                );
            }
            built.push(b.build().map_err(|e| build_err(call, bucket, e))?);
        }
        let config = s3t::BucketLifecycleConfiguration::builder()
            .set_rules(Some(built))
            .build()
            .map_err(|e| build_err(call, bucket, e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(call, &res, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(yaml: &str) -> Bucket {
        crate::yaml::from_str(yaml).unwrap()
    }

    fn live_default() -> BucketSettings {
        desired(&bucket("name: b\n"))
    }

    #[test]
    fn defaults_are_versioned_encrypted_and_private() {
        let d = live_default();
        assert_eq!(d.versioning, Versioning::Enabled);
        assert_eq!(d.encryption, Some(Encryption { algorithm: "AES256".into(), kms_key_id: None }));
        assert_eq!(d.public_access, PublicAccess::all(true));
        assert!(d.lifecycle.is_empty());
    }

    #[test]
    fn drift_names_each_setting_before_and_after() {
        let want = desired(&bucket("name: b\nlifecycle:\n  - {id: tmp, prefix: tmp/, expire_days: 14}\n"));
        let mut live = live_default();
        live.versioning = Versioning::Suspended;
        live.public_access.block_public_policy = false;
        let lines: Vec<String> = drift(&want, &live).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            vec![
                "versioning: suspended -> enabled".to_string(),
                "public access block: block_public_acls=true, ignore_public_acls=true, block_public_policy=false, restrict_public_buckets=true -> all public access blocked".into(),
                "lifecycle: none -> tmp (prefix tmp/, expire after 14d)".into(),
            ]
        );
        assert!(drift(&want, &want).is_empty());
    }

    #[test]
    fn unversioned_buckets_accept_never_enabled_and_suspended() {
        let want = desired(&bucket("name: b\nversioning: false\n"));
        let mut live = want.clone();
        live.versioning = Versioning::Suspended;
        assert!(drift(&want, &live).is_empty());
        live.versioning = Versioning::Enabled;
        let d = drift(&want, &live);
        assert_eq!(d[0].0, Fix::Versioning(false));
        assert_eq!(d[0].1, "versioning: enabled -> suspended");
    }

    #[test]
    fn a_rule_with_unmanaged_parts_is_drift() {
        let want = desired(&bucket("name: b\nlifecycle:\n  - {id: r, expire_days: 3}\n"));
        let mut live = want.clone();
        live.lifecycle[0].other.push("storage class transitions".into());
        let d = drift(&want, &live);
        assert_eq!(d.len(), 1);
        assert!(d[0].1.contains("storage class transitions"), "{}", d[0].1);
    }
}
