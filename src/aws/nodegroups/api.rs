//! The EKS calls node group reconciliation makes, as a trait: the SDK adapter implements it,
//! tests use scripted fakes (moto has no DescribeUpdate and never reports CREATE_FAILED).

use std::future::Future;

use super::{ConfigUpdate, NodeGroup};
use crate::aws::AwsError;

/// State of an `UpdateNodegroupConfig` update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateState {
    /// Update ID.
    pub id: String,
    /// `InProgress`, `Successful`, `Failed`, `Cancelled`.
    pub status: String,
    /// Error details of a failed update.
    pub errors: Vec<String>,
}

/// The EKS calls node group reconciliation makes; [`super::Eks`] over the SDK, fakes in tests.
pub trait NodeGroupApi: Sync {
    /// The cluster's status (`ACTIVE`, ...); [`AwsError::ClusterNotFound`] when it does not exist.
    fn cluster_status(&self, cluster: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// Names of the cluster's node groups.
    fn list(&self, cluster: &str) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// One node group (None when it does not exist).
    fn describe(
        &self,
        cluster: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<NodeGroup>, AwsError>> + Send;
    /// CreateNodegroup.
    fn create(&self, cluster: &str, g: &NodeGroup) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// UpdateNodegroupConfig.
    fn update(
        &self,
        cluster: &str,
        name: &str,
        u: &ConfigUpdate,
    ) -> impl Future<Output = Result<UpdateState, AwsError>> + Send;
    /// DescribeUpdate.
    fn describe_update(
        &self,
        cluster: &str,
        name: &str,
        id: &str,
    ) -> impl Future<Output = Result<UpdateState, AwsError>> + Send;
    /// DeleteNodegroup.
    fn delete(&self, cluster: &str, name: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Every node group of the cluster, described. The cluster is looked up first, so a wrong name
/// or region reads as such rather than as a failed list.
pub async fn live(api: &impl NodeGroupApi, cluster: &str) -> Result<Vec<NodeGroup>, AwsError> {
    api.cluster_status(cluster).await?;
    let names = api.list(cluster).await?;
    let described = futures::future::join_all(names.iter().map(|n| api.describe(cluster, n))).await;
    let mut out = Vec::new();
    for d in described {
        out.extend(d?);
    }
    Ok(out)
}
