//! [`BucketApi`] over aws-sdk-s3: S3's shapes to and from the plan's [`BucketSettings`].

use aws_sdk_s3::types as s3t;

use super::{BucketApi, BucketSettings, Encryption, Presence, PublicAccess, Rule, Versioning};
use crate::aws::{Aws, AwsError, ENVIRONMENT_TAG};

/// [`BucketApi`] over aws-sdk-s3.
pub struct S3 {
    client: aws_sdk_s3::Client,
    region: String,
}

impl S3 {
    /// The adapter for one region.
    pub fn new(aws: &Aws) -> Self {
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
