//! [`PodIdentityApi`] over aws-sdk-eks: ListPodIdentityAssociations (paged), then
//! DescribePodIdentityAssociation of each, since the list carries neither the role nor the tags.

use std::collections::BTreeMap;

use super::{Association, PodIdentityApi};
use crate::aws::{Aws, AwsError};

/// [`PodIdentityApi`] over aws-sdk-eks.
pub struct PodIdentity {
    client: aws_sdk_eks::Client,
}

impl PodIdentity {
    /// The adapter.
    pub fn new(aws: &Aws) -> Self {
        PodIdentity { client: aws.eks() }
    }
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ResourceNotFoundException")
}

impl PodIdentityApi for PodIdentity {
    async fn live(&self, cluster: &str) -> Result<Vec<Association>, AwsError> {
        let mut ids = Vec::new();
        let mut pages =
            self.client.list_pod_identity_associations().cluster_name(cluster).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                AwsError::from_sdk("eks:ListPodIdentityAssociations", &format!("cluster {cluster}"), e)
            })?;
            ids.extend(page.associations().iter().filter_map(|a| a.association_id().map(str::to_string)));
        }
        let described = futures::future::join_all(ids.iter().map(|id| {
            self.client.describe_pod_identity_association().cluster_name(cluster).association_id(id).send()
        }))
        .await;
        let mut out = Vec::new();
        for (id, d) in ids.iter().zip(described) {
            let a = match d {
                Ok(out) => out.association,
                // Deleted between the list and the describe.
                Err(e) if not_found(&e) => None,
                Err(e) => {
                    return Err(AwsError::from_sdk(
                        "eks:DescribePodIdentityAssociation",
                        &format!("pod identity association {id}"),
                        e,
                    ))
                }
            };
            let Some(a) = a else { continue };
            out.push(Association {
                id: id.clone(),
                namespace: a.namespace().unwrap_or("").into(),
                service_account: a.service_account().unwrap_or("").into(),
                role_arn: a.role_arn().unwrap_or("").into(),
                tags: a
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_else(BTreeMap::new),
            });
        }
        Ok(out)
    }

    async fn create(&self, cluster: &str, a: &Association) -> Result<(), AwsError> {
        self.client
            .create_pod_identity_association()
            .cluster_name(cluster)
            .namespace(&a.namespace)
            .service_account(&a.service_account)
            .role_arn(&a.role_arn)
            .set_tags(Some(a.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "eks:CreatePodIdentityAssociation",
                    &format!("pod identity association {}", a.key()),
                    e,
                )
            })?;
        Ok(())
    }

    async fn update(&self, cluster: &str, id: &str, role_arn: &str) -> Result<(), AwsError> {
        self.client
            .update_pod_identity_association()
            .cluster_name(cluster)
            .association_id(id)
            .role_arn(role_arn)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "eks:UpdatePodIdentityAssociation",
                    &format!("pod identity association {id}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn delete(&self, cluster: &str, id: &str) -> Result<(), AwsError> {
        match self
            .client
            .delete_pod_identity_association()
            .cluster_name(cluster)
            .association_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(AwsError::from_sdk(
                "eks:DeletePodIdentityAssociation",
                &format!("pod identity association {id}"),
                e,
            )),
        }
    }
}
