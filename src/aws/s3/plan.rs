//! The plan for one declared bucket against S3 and its application: create when missing, then
//! write each drifted setting.

use super::{desired, drift, show_encryption, show_lifecycle, show_public_access, show_versioning};
use super::{BucketApi, Fix, Presence, Versioning};
use crate::aws::change::{AwsAction, AwsChange, Resource};
use crate::env::model::{Bucket, BucketOwner};

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
                "bucket {:?} does not exist; it is managed_by terraform, so create it with terraform (`trainstack infra apply`)",
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
