//! The change to one AWS resource, as planned and as done: what node groups, buckets, pod
//! identity associations and their orchestrator share, kept below them so none imports another.

use serde::Serialize;

/// Kinds of AWS resources trainstack reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resource {
    /// An EKS managed node group.
    NodeGroup,
    /// An S3 bucket.
    Bucket,
    /// An EKS Pod Identity association (a tenant's `trainer` ServiceAccount to the tenant role).
    PodIdentityAssociation,
}

/// What happens (or would happen) to one AWS resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsAction {
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Needs replacing, which trainstack reports but never does by itself.
    Replace,
    /// Deleted by `--prune` (node groups and associations this environment created).
    Prune,
    /// Deleted by `delete` (node groups and associations this environment created).
    Delete,
    /// In sync.
    Unchanged,
}

/// One AWS resource's plan or outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsChange {
    /// `NodeGroup`, `Bucket` or `PodIdentityAssociation`.
    pub resource: Resource,
    /// Its name.
    pub name: String,
    /// The action.
    pub action: AwsAction,
    /// The status EKS reports (node groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A remark (e.g. `managed by terraform`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `field: before -> after` lines (all settings for a create).
    pub details: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl AwsChange {
    /// An unchanged resource.
    pub fn new(resource: Resource, name: &str) -> Self {
        AwsChange {
            resource,
            name: name.to_string(),
            action: AwsAction::Unchanged,
            status: None,
            note: None,
            details: Vec::new(),
            error: None,
        }
    }

    /// The same change, failed with `message`.
    pub fn failed(mut self, message: String) -> Self {
        self.error = Some(message);
        self
    }

    /// `EKS node group gpu-p3`, `S3 bucket my-bucket`.
    pub fn display_id(&self) -> String {
        match self.resource {
            Resource::NodeGroup => format!("EKS node group {}", self.name),
            Resource::Bucket => format!("S3 bucket {}", self.name),
            Resource::PodIdentityAssociation => format!("EKS pod identity association {}", self.name),
        }
    }
}

impl crate::tally::Counted for AwsChange {
    type Action = AwsAction;
    fn action(&self) -> AwsAction {
        self.action
    }
    fn failed(&self) -> bool {
        self.error.is_some()
    }
}
