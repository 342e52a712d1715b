//! S3 buckets an environment declares: the naming rule, the settings trainstack manages in one
//! comparable shape, their desired values and the drift between two of them. The plan (create,
//! settings drift, Terraform-owned existence checks) is `plan.rs`, the S3 calls sit behind
//! [`BucketApi`] (`api.rs`), the SDK adapter is `sdk.rs`.
//!
//! Buckets are never deleted: a bucket dropped from the environment keeps its data and is left
//! alone, with or without `--prune`.

mod api;
mod plan;
mod sdk;

pub use api::{BucketApi, Presence};
pub use plan::{apply, plan, BucketPlan};
pub use sdk::S3;

use crate::env::model::{Bucket, BucketEncryption, LifecycleRule};

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
