//! [`NodeGroupApi`] over aws-sdk-eks: EKS's shapes to and from the plan's [`NodeGroup`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::types as ekst;

use super::{ConfigUpdate, NodeGroup, NodeGroupApi, NodeTaint, Scaling, UpdateState};
use crate::aws::{Aws, AwsError};

/// [`NodeGroupApi`] over aws-sdk-eks.
pub struct Eks {
    aws: Aws,
    client: aws_sdk_eks::Client,
}

impl Eks {
    /// The adapter.
    pub fn new(aws: &Aws) -> Self {
        Eks { aws: aws.clone(), client: aws.eks() }
    }
}

fn to_u32(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn from_sdk(g: &ekst::Nodegroup) -> NodeGroup {
    let scaling = g.scaling_config();
    let mut taints: Vec<NodeTaint> = g
        .taints()
        .iter()
        .map(|t| NodeTaint {
            key: t.key().unwrap_or("").into(),
            value: t.value().unwrap_or("").into(),
            effect: t.effect().map(|e| e.as_str().to_string()).unwrap_or_default(),
        })
        .collect();
    taints.sort();
    let mut subnets = g.subnets().to_vec();
    subnets.sort();
    let map = |m: Option<&HashMap<String, String>>| -> BTreeMap<String, String> {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    };
    NodeGroup {
        name: g.nodegroup_name().unwrap_or("").into(),
        status: g.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        instance_types: g.instance_types().to_vec(),
        ami_type: g.ami_type().map(|a| a.as_str().to_string()).unwrap_or_default(),
        capacity_type: g.capacity_type().map(|c| c.as_str().to_string()).unwrap_or_default(),
        disk_size: g.disk_size().and_then(|d| u32::try_from(d).ok()),
        scaling: Scaling {
            min: to_u32(scaling.and_then(|s| s.min_size())),
            max: to_u32(scaling.and_then(|s| s.max_size())),
            desired: to_u32(scaling.and_then(|s| s.desired_size())),
        },
        labels: map(g.labels()),
        taints,
        subnets,
        node_role: g.node_role().unwrap_or("").into(),
        tags: map(g.tags()),
        health: g
            .health()
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        let code = i.code().map(|c| c.as_str().to_string()).unwrap_or_default();
                        let res = i.resource_ids();
                        let on =
                            if res.is_empty() { String::new() } else { format!(" ({})", res.join(", ")) };
                        format!("{code}: {}{on}", i.message().unwrap_or(""))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn sdk_taint(t: &NodeTaint) -> ekst::Taint {
    ekst::Taint::builder()
        .key(&t.key)
        .value(&t.value)
        .effect(ekst::TaintEffect::from(t.effect.as_str()))
        .build()
}

fn update_state(u: Option<&ekst::Update>) -> UpdateState {
    UpdateState {
        id: u.and_then(|u| u.id()).unwrap_or("").into(),
        status: u.and_then(|u| u.status()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        errors: u
            .map(|u| {
                u.errors()
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.error_code().map(|c| c.as_str()).unwrap_or(""),
                            e.error_message().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ResourceNotFoundException")
}

impl NodeGroupApi for Eks {
    async fn cluster_status(&self, cluster: &str) -> Result<String, AwsError> {
        Ok(crate::aws::eks::describe_cluster(&self.aws, cluster).await?.status)
    }

    async fn list(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut pages = self.client.list_nodegroups().cluster_name(cluster).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("eks:ListNodegroups", &format!("cluster {cluster}"), e))?;
            names.extend(page.nodegroups().iter().cloned());
        }
        Ok(names)
    }

    async fn describe(&self, cluster: &str, name: &str) -> Result<Option<NodeGroup>, AwsError> {
        match self.client.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
            Ok(out) => Ok(out.nodegroup().map(from_sdk)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(AwsError::from_sdk("eks:DescribeNodegroup", &format!("node group {name}"), e)),
        }
    }

    async fn create(&self, cluster: &str, g: &NodeGroup) -> Result<(), AwsError> {
        let scaling = ekst::NodegroupScalingConfig::builder()
            .min_size(g.scaling.min as i32)
            .max_size(g.scaling.max as i32)
            .desired_size(g.scaling.desired as i32)
            .build();
        self.client
            .create_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(&g.name)
            .set_instance_types(Some(g.instance_types.clone()))
            .ami_type(ekst::AmiTypes::from(g.ami_type.as_str()))
            .capacity_type(ekst::CapacityTypes::from(g.capacity_type.as_str()))
            .set_disk_size(g.disk_size.map(|d| d as i32))
            .scaling_config(scaling)
            .set_labels(Some(g.labels.clone().into_iter().collect()))
            .set_taints(Some(g.taints.iter().map(sdk_taint).collect()))
            .set_subnets(Some(g.subnets.clone()))
            .node_role(&g.node_role)
            .set_tags(Some(g.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("eks:CreateNodegroup", &format!("node group {}", g.name), e))?;
        Ok(())
    }

    async fn update(&self, cluster: &str, name: &str, u: &ConfigUpdate) -> Result<UpdateState, AwsError> {
        let mut req = self.client.update_nodegroup_config().cluster_name(cluster).nodegroup_name(name);
        if let Some(s) = u.scaling {
            req = req.scaling_config(
                ekst::NodegroupScalingConfig::builder()
                    .min_size(s.min as i32)
                    .max_size(s.max as i32)
                    .desired_size(s.desired as i32)
                    .build(),
            );
        }
        if !u.add_labels.is_empty() || !u.remove_labels.is_empty() {
            req = req.labels(
                ekst::UpdateLabelsPayload::builder()
                    .set_add_or_update_labels(
                        (!u.add_labels.is_empty()).then(|| u.add_labels.clone().into_iter().collect()),
                    )
                    .set_remove_labels((!u.remove_labels.is_empty()).then(|| u.remove_labels.clone()))
                    .build(),
            );
        }
        if !u.add_taints.is_empty() || !u.remove_taints.is_empty() {
            req = req.taints(
                ekst::UpdateTaintsPayload::builder()
                    .set_add_or_update_taints(
                        (!u.add_taints.is_empty()).then(|| u.add_taints.iter().map(sdk_taint).collect()),
                    )
                    .set_remove_taints(
                        (!u.remove_taints.is_empty())
                            .then(|| u.remove_taints.iter().map(sdk_taint).collect()),
                    )
                    .build(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("eks:UpdateNodegroupConfig", &format!("node group {name}"), e))?;
        Ok(update_state(out.update()))
    }

    async fn describe_update(&self, cluster: &str, name: &str, id: &str) -> Result<UpdateState, AwsError> {
        let out = self
            .client
            .describe_update()
            .name(cluster)
            .nodegroup_name(name)
            .update_id(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("eks:DescribeUpdate", &format!("node group {name}"), e))?;
        Ok(update_state(out.update()))
    }

    async fn delete(&self, cluster: &str, name: &str) -> Result<(), AwsError> {
        match self.client.delete_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(AwsError::from_sdk("eks:DeleteNodegroup", &format!("node group {name}"), e)),
        }
    }
}
