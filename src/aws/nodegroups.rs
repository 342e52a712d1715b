//! EKS managed node groups for the environment's GPU pools: the desired groups, the pure plan
//! against what EKS has (create, in-place update of scaling, labels and taints, replacement
//! reports, prune of groups this environment created), the waits, and the SDK adapter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use aws_sdk_eks::types as ekst;

use super::reconcile::{AwsAction, AwsChange, Resource};
use super::{AwsError, ENVIRONMENT_TAG};
use crate::engine::progress::Progress;
use crate::env::model::{CapacityType, Environment, GpuProvider, TaintEffect, TargetKind};

/// Tag naming the pool a node group stands for.
pub const POOL_TAG: &str = "trainstack.io/pool";

/// A taint in EKS's spelling (`NO_SCHEDULE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeTaint {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// `NO_SCHEDULE`, `PREFER_NO_SCHEDULE` or `NO_EXECUTE`.
    pub effect: String,
}

impl NodeTaint {
    fn show(&self) -> String {
        format!("{}={}:{}", self.key, self.value, self.effect)
    }
}

/// Scaling bounds and the desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaling {
    /// Minimum nodes.
    pub min: u32,
    /// Maximum nodes.
    pub max: u32,
    /// Desired nodes.
    pub desired: u32,
}

/// A node group as it should be, or as EKS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGroup {
    /// Node group name (the pool name).
    pub name: String,
    /// `ACTIVE`, `CREATING`, ... (empty for a desired group).
    pub status: String,
    /// EC2 instance types.
    pub instance_types: Vec<String>,
    /// AMI type.
    pub ami_type: String,
    /// `SPOT` or `ON_DEMAND`.
    pub capacity_type: String,
    /// Root volume size in GiB (None when a launch template sets it).
    pub disk_size: Option<u32>,
    /// Scaling.
    pub scaling: Scaling,
    /// Kubernetes node labels.
    pub labels: BTreeMap<String, String>,
    /// Kubernetes node taints, sorted.
    pub taints: Vec<NodeTaint>,
    /// Subnet IDs, sorted.
    pub subnets: Vec<String>,
    /// Node IAM role ARN.
    pub node_role: String,
    /// AWS tags.
    pub tags: BTreeMap<String, String>,
    /// Health issues EKS reports (`code: message`).
    pub health: Vec<String>,
}

fn effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NO_SCHEDULE",
        TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
        TaintEffect::NoExecute => "NO_EXECUTE",
    }
}

/// The node groups the environment declares: one per GPU pool when the GPU provider is
/// `managed_node_groups` on an eks target, none otherwise.
pub fn desired(env: &Environment) -> Vec<NodeGroup> {
    let gpu = &env.components.gpu;
    let Some(placement) = gpu.node_groups.as_ref() else { return Vec::new() };
    if env.target.kind != TargetKind::Eks || !gpu.enabled || gpu.provider != GpuProvider::ManagedNodeGroups {
        return Vec::new();
    }
    let mut subnets = placement.subnet_ids.clone();
    subnets.sort();
    subnets.dedup();
    gpu.pools
        .iter()
        .map(|p| {
            let mut labels = p.labels.clone();
            labels.insert("nvidia.com/gpu.present".into(), "true".into());
            labels.insert(POOL_TAG.into(), p.name.clone());
            let mut taints: Vec<NodeTaint> = p
                .taints
                .iter()
                .map(|t| NodeTaint {
                    key: t.key.clone(),
                    value: t.value.clone(),
                    effect: effect(t.effect).into(),
                })
                .collect();
            taints.sort();
            NodeGroup {
                name: p.name.clone(),
                status: String::new(),
                instance_types: p.instance_types.clone(),
                ami_type: p.ami_type.clone(),
                capacity_type: match p.capacity_type {
                    CapacityType::Spot => "SPOT".into(),
                    CapacityType::OnDemand => "ON_DEMAND".into(),
                },
                disk_size: Some(p.disk_size_gib),
                scaling: Scaling { min: p.min_size, max: p.max_size, desired: p.desired_size },
                labels,
                taints,
                subnets: subnets.clone(),
                node_role: placement.node_role_arn.clone(),
                tags: BTreeMap::from([
                    (ENVIRONMENT_TAG.to_string(), env.name.clone()),
                    (POOL_TAG.to_string(), p.name.clone()),
                ]),
                health: Vec::new(),
            }
        })
        .collect()
}

/// An in-place change through `UpdateNodegroupConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    /// New scaling (desired kept unless outside the new bounds).
    pub scaling: Option<Scaling>,
    /// Labels to add or change.
    pub add_labels: BTreeMap<String, String>,
    /// Label keys to remove.
    pub remove_labels: Vec<String>,
    /// Taints to add or change.
    pub add_taints: Vec<NodeTaint>,
    /// Taints to remove.
    pub remove_taints: Vec<NodeTaint>,
}

impl ConfigUpdate {
    fn is_empty(&self) -> bool {
        self == &ConfigUpdate::default()
    }
}

/// What to do with one node group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    None,
    /// Create it.
    Create(NodeGroup),
    /// Update it in place.
    Update(ConfigUpdate),
    /// Delete it (prune).
    Delete,
}

/// The plan for one node group.
#[derive(Debug, Clone)]
pub struct GroupPlan {
    /// What diff and apply report.
    pub change: AwsChange,
    /// The write to make.
    pub step: Step,
    /// Whether apply waits for this group to become ACTIVE (every declared group).
    pub declared: bool,
}

/// Plans the declared groups against the live ones. Groups that another environment or tool
/// created (no matching `trainstack.io/environment` tag) are never touched: a declared group
/// of the same name is an error, an undeclared one is not listed.
pub fn plan(want: &[NodeGroup], live: &[NodeGroup], env_name: &str) -> Vec<GroupPlan> {
    let ours = |g: &NodeGroup| created_by(g, env_name);
    let mut out = Vec::new();
    for w in want {
        let mut change = AwsChange::new(Resource::NodeGroup, &w.name);
        let Some(l) = live.iter().find(|l| l.name == w.name) else {
            change.action = AwsAction::Create;
            change.details = describe(w);
            out.push(GroupPlan { change, step: Step::Create(w.clone()), declared: true });
            continue;
        };
        if !ours(l) {
            let owner = match l.tags.get(ENVIRONMENT_TAG) {
                Some(other) => format!("environment {other:?}"),
                None => "something other than trainstack (Terraform, eksctl, the console)".into(),
            };
            let msg = format!(
                "a node group of this name exists in the cluster, created by {owner}; trainstack leaves it alone: rename the pool or remove the other node group"
            );
            out.push(GroupPlan { change: change.failed(msg), step: Step::None, declared: false });
            continue;
        }
        change.status = Some(l.status.clone());
        let replace = replacements(w, l);
        if !replace.is_empty() {
            change.action = AwsAction::Replace;
            change.details = replace;
            out.push(GroupPlan { change, step: Step::None, declared: true });
            continue;
        }
        let (update, details) = config_update(w, l);
        if !update.is_empty() {
            change.action = AwsAction::Update;
            change.details = details;
            out.push(GroupPlan { change, step: Step::Update(update), declared: true });
        } else {
            // Nothing to change, but a group EKS reports as unhealthy is worth showing.
            if l.status != "ACTIVE" {
                change.note = Some(format!("status {}", l.status));
                change.details = l.health.clone();
            }
            out.push(GroupPlan { change, step: Step::None, declared: true });
        }
    }
    let declared: BTreeSet<&str> = want.iter().map(|w| w.name.as_str()).collect();
    for l in live.iter().filter(|l| ours(l) && !declared.contains(l.name.as_str())) {
        let mut change = AwsChange::new(Resource::NodeGroup, &l.name);
        change.action = AwsAction::Prune;
        change.status = Some(l.status.clone());
        change.details = vec![format!("created by this environment, no longer declared ({})", shape(l))];
        out.push(GroupPlan { change, step: Step::Delete, declared: false });
    }
    out
}

/// `p3.2xlarge x SPOT, 0 of 0..5 nodes`: what a live group is, for prune and delete lines.
fn shape(g: &NodeGroup) -> String {
    format!(
        "{} x {}, {} of {}..{} nodes",
        g.instance_types.join(","),
        g.capacity_type,
        g.scaling.desired,
        g.scaling.min,
        g.scaling.max
    )
}

/// Whether environment `env_name` created the group (its `trainstack.io/environment` tag).
pub fn created_by(g: &NodeGroup, env_name: &str) -> bool {
    g.tags.get(ENVIRONMENT_TAG).map(String::as_str) == Some(env_name)
}

/// What `delete` removes: every node group this environment created, declared or not, by name.
/// Groups another environment or tool created are never listed.
pub fn teardown(live: &[NodeGroup], env_name: &str) -> Vec<GroupPlan> {
    let mut ours: Vec<&NodeGroup> = live.iter().filter(|g| created_by(g, env_name)).collect();
    ours.sort_by(|a, b| a.name.cmp(&b.name));
    ours.into_iter()
        .map(|g| {
            let mut change = AwsChange::new(Resource::NodeGroup, &g.name);
            change.action = AwsAction::Delete;
            change.status = Some(g.status.clone());
            change.details = vec![format!("created by this environment ({})", shape(g))];
            GroupPlan { change, step: Step::Delete, declared: false }
        })
        .collect()
}

fn describe(g: &NodeGroup) -> Vec<String> {
    vec![
        format!("instance_types: {}", g.instance_types.join(", ")),
        format!("capacity_type: {}", g.capacity_type),
        format!("ami_type: {}", g.ami_type),
        format!("disk_size_gib: {}", g.disk_size.unwrap_or_default()),
        format!("scaling: min {}, desired {}, max {}", g.scaling.min, g.scaling.desired, g.scaling.max),
        format!("labels: {}", show_labels(&g.labels)),
        format!("taints: {}", show_taints(&g.taints)),
        format!("subnets: {}", g.subnets.join(", ")),
        format!("node_role: {}", g.node_role),
    ]
}

fn show_labels(l: &BTreeMap<String, String>) -> String {
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn show_taints(t: &[NodeTaint]) -> String {
    if t.is_empty() {
        return "none".into();
    }
    t.iter().map(NodeTaint::show).collect::<Vec<_>>().join(", ")
}

/// Settings EKS cannot change on an existing node group, as `field: live -> declared` lines.
fn replacements(w: &NodeGroup, l: &NodeGroup) -> Vec<String> {
    let mut out = Vec::new();
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if sorted(&w.instance_types) != sorted(&l.instance_types) {
        out.push(format!(
            "instance_types: {} -> {}",
            l.instance_types.join(", "),
            w.instance_types.join(", ")
        ));
    }
    if w.ami_type != l.ami_type {
        out.push(format!("ami_type: {} -> {}", l.ami_type, w.ami_type));
    }
    if w.capacity_type != l.capacity_type {
        out.push(format!("capacity_type: {} -> {}", l.capacity_type, w.capacity_type));
    }
    if let (Some(want), Some(live)) = (w.disk_size, l.disk_size) {
        if want != live {
            out.push(format!("disk_size_gib: {live} -> {want}"));
        }
    }
    if w.subnets != l.subnets {
        out.push(format!("subnets: {} -> {}", l.subnets.join(", "), w.subnets.join(", ")));
    }
    if w.node_role != l.node_role {
        out.push(format!("node_role: {} -> {}", l.node_role, w.node_role));
    }
    if !out.is_empty() {
        out.push(format!(
            "EKS cannot change these in place: the node group must be replaced. trainstack does not replace node groups by itself; rename the pool (a new group is created and, with --prune, {} is deleted) or delete the group and apply again",
            l.name
        ));
    }
    out
}

/// The in-place update and its `field: live -> declared` lines. Scaling is declared like
/// everything else: a desired size changed outside the file (by hand, or by an autoscaler the
/// platform does not install) is set back to the declared one.
fn config_update(w: &NodeGroup, l: &NodeGroup) -> (ConfigUpdate, Vec<String>) {
    let mut u = ConfigUpdate::default();
    let mut lines = Vec::new();
    if w.scaling != l.scaling {
        u.scaling = Some(w.scaling);
        for (field, live, want) in [
            ("min_size", l.scaling.min, w.scaling.min),
            ("desired_size", l.scaling.desired, w.scaling.desired),
            ("max_size", l.scaling.max, w.scaling.max),
        ] {
            if live != want {
                lines.push(format!("{field}: {live} -> {want}"));
            }
        }
    }
    for (k, v) in &w.labels {
        match l.labels.get(k) {
            Some(lv) if lv == v => {}
            Some(lv) => {
                lines.push(format!("label {k}: {lv} -> {v}"));
                u.add_labels.insert(k.clone(), v.clone());
            }
            None => {
                lines.push(format!("label {k}: (none) -> {v}"));
                u.add_labels.insert(k.clone(), v.clone());
            }
        }
    }
    for k in l.labels.keys().filter(|k| !w.labels.contains_key(*k)) {
        lines.push(format!("label {k}: {} -> (removed)", l.labels[k]));
        u.remove_labels.push(k.clone());
    }
    // A taint is identified by key and effect; its value can change in place.
    let id = |t: &NodeTaint| (t.key.clone(), t.effect.clone());
    for t in &w.taints {
        match l.taints.iter().find(|lt| id(lt) == id(t)) {
            Some(lt) if lt == t => {}
            Some(lt) => {
                lines.push(format!("taint: {} -> {}", lt.show(), t.show()));
                u.add_taints.push(t.clone());
            }
            None => {
                lines.push(format!("taint: (none) -> {}", t.show()));
                u.add_taints.push(t.clone());
            }
        }
    }
    for t in l.taints.iter().filter(|lt| !w.taints.iter().any(|t| id(t) == id(lt))) {
        lines.push(format!("taint: {} -> (removed)", t.show()));
        u.remove_taints.push(t.clone());
    }
    (u, lines)
}

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

/// The EKS calls node group reconciliation makes; the SDK adapter below, fakes in tests.
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

/// How long and how often apply polls EKS.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// Bound on each wait (create, update, delete).
    pub timeout: Duration,
    /// Pause between polls.
    pub interval: Duration,
}

fn health_text(g: &NodeGroup) -> String {
    if g.health.is_empty() {
        String::new()
    } else {
        format!(": {}", g.health.join("; "))
    }
}

/// Polls until the group is ACTIVE; CREATE_FAILED, DEGRADED and timeouts are errors that carry
/// EKS's health issues.
pub async fn wait_active(
    api: &impl NodeGroupApi,
    cluster: &str,
    name: &str,
    waits: Waits,
    progress: &Progress,
) -> Result<NodeGroup, String> {
    let start = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        match api.describe(cluster, name).await {
            Ok(Some(g)) => match g.status.as_str() {
                "ACTIVE" => return Ok(g),
                "CREATE_FAILED" | "DEGRADED" | "DELETE_FAILED" => {
                    return Err(format!("node group {name} is {}{}", g.status, health_text(&g)))
                }
                s => {
                    if s != last {
                        progress.note(&format!("node group {name}: {s} ({}s)", start.elapsed().as_secs()));
                        last = s.to_string();
                    }
                }
            },
            Ok(None) => return Err(format!("node group {name} disappeared while waiting for it")),
            Err(e) => return Err(e.to_string()),
        }
        if start.elapsed() >= waits.timeout {
            return Err(format!("node group {name} is not ACTIVE after {:?}: status {last}", waits.timeout));
        }
        tokio::time::sleep(waits.interval).await;
    }
}

async fn wait_update(
    api: &impl NodeGroupApi,
    cluster: &str,
    name: &str,
    mut state: UpdateState,
    waits: Waits,
) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    loop {
        match state.status.as_str() {
            "Successful" => return Ok(()),
            "Failed" | "Cancelled" => {
                return Err(format!(
                    "update {} of node group {name} {}: {}",
                    state.id,
                    state.status.to_lowercase(),
                    if state.errors.is_empty() { "no details".into() } else { state.errors.join("; ") }
                ))
            }
            _ if start.elapsed() >= waits.timeout => {
                return Err(format!(
                    "update {} of node group {name} still {} after {:?}",
                    state.id, state.status, waits.timeout
                ))
            }
            _ => {}
        }
        tokio::time::sleep(waits.interval).await;
        state = api.describe_update(cluster, name, &state.id).await.map_err(|e| e.to_string())?;
    }
}

async fn wait_deleted(
    api: &impl NodeGroupApi,
    cluster: &str,
    name: &str,
    waits: Waits,
    progress: &Progress,
) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    loop {
        match api.describe(cluster, name).await {
            Ok(None) => return Ok(()),
            Ok(Some(g)) if g.status == "DELETE_FAILED" => {
                return Err(format!("node group {name} is DELETE_FAILED{}", health_text(&g)))
            }
            Ok(Some(g)) => {
                progress.note(&format!("node group {name}: {} ({}s)", g.status, start.elapsed().as_secs()))
            }
            Err(e) => return Err(e.to_string()),
        }
        if start.elapsed() >= waits.timeout {
            return Err(format!("node group {name} is still there after {:?}", waits.timeout));
        }
        tokio::time::sleep(waits.interval).await;
    }
}

/// Runs one planned step and waits for its outcome. Declared groups end ACTIVE or the change
/// fails with EKS's reasons; a group still settling from an earlier run is waited for first.
pub async fn apply(
    api: &impl NodeGroupApi,
    cluster: &str,
    p: GroupPlan,
    waits: Waits,
    progress: &Progress,
) -> AwsChange {
    let GroupPlan { mut change, step, declared } = p;
    if change.error.is_some() {
        return change;
    }
    if change.action == AwsAction::Replace {
        return change.failed("requires replacement (see above); nothing was changed".into());
    }
    let name = change.name.clone();
    let settling = matches!(change.status.as_deref(), Some("CREATING" | "UPDATING"));
    if settling && step != Step::Delete {
        if let Err(e) = wait_active(api, cluster, &name, waits, progress).await {
            return change.failed(e);
        }
    }
    let result = match &step {
        Step::None => Ok(()),
        Step::Create(g) => api.create(cluster, g).await.map_err(|e| e.to_string()),
        Step::Update(u) => match api.update(cluster, &name, u).await {
            // moto answers UpdateNodegroupConfig with a finished update and has no DescribeUpdate;
            // EKS answers InProgress and the update is followed through DescribeUpdate.
            Ok(state) => wait_update(api, cluster, &name, state, waits).await,
            Err(e) => Err(e.to_string()),
        },
        Step::Delete => match api.delete(cluster, &name).await {
            Ok(()) => wait_deleted(api, cluster, &name, waits, progress).await,
            Err(e) => Err(e.to_string()),
        },
    };
    if let Err(e) = result {
        return change.failed(e);
    }
    if declared {
        match wait_active(api, cluster, &name, waits, progress).await {
            Ok(g) => change.status = Some(g.status),
            Err(e) => return change.failed(e),
        }
    }
    change
}

/// [`NodeGroupApi`] over aws-sdk-eks.
pub struct Eks {
    aws: super::Aws,
    client: aws_sdk_eks::Client,
}

impl Eks {
    /// The adapter.
    pub fn new(aws: &super::Aws) -> Self {
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
        Ok(super::eks::describe_cluster(&self.aws, cluster).await?.status)
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

#[cfg(test)]
mod tests {
    //! The plan against hand-made live groups, and the waits against a scripted fake of the EKS
    //! API: moto has no DescribeUpdate and never reports CREATE_FAILED or DEGRADED.
    use std::sync::Mutex;

    use super::*;

    fn env(extra: &str) -> Environment {
        let yaml = format!(
            "name: dev\ntarget: {{kind: eks, cluster_name: c1, region: us-east-1}}\ncomponents:\n  gpu:\n    enabled: true\n    pools:\n      - name: gpu\n        max_size: 4\n{extra}    node_groups:\n      node_role_arn: arn:aws:iam::123456789012:role/node\n      subnet_ids: [subnet-2, subnet-1]\n"
        );
        crate::yaml::from_str(&yaml).unwrap()
    }

    fn live_of(g: &NodeGroup) -> NodeGroup {
        NodeGroup { status: "ACTIVE".into(), ..g.clone() }
    }

    #[test]
    fn desired_groups_carry_the_spec_defaults() {
        let g = &desired(&env(""))[0];
        assert_eq!(g.ami_type, "AL2023_x86_64_NVIDIA");
        assert_eq!(g.capacity_type, "SPOT");
        assert_eq!(g.instance_types, ["p3.2xlarge"]);
        assert_eq!(g.labels["nvidia.com/gpu.present"], "true");
        assert_eq!(g.labels[POOL_TAG], "gpu");
        assert_eq!(
            g.taints,
            [NodeTaint { key: "nvidia.com/gpu".into(), value: "true".into(), effect: "NO_SCHEDULE".into() }]
        );
        assert_eq!(g.subnets, ["subnet-1", "subnet-2"]);
        assert_eq!(g.tags[ENVIRONMENT_TAG], "dev");
    }

    #[test]
    fn plan_creates_updates_reports_replacements_and_prunes_only_its_own() {
        let want = desired(&env(""));
        let p = plan(&want, &[], "dev");
        assert!(matches!(p[0].step, Step::Create(_)));
        assert_eq!(p[0].change.action, AwsAction::Create);

        // Scaling, a label and a taint changed by hand: one in-place update that restores them.
        let mut live = live_of(&want[0]);
        live.scaling = Scaling { min: 0, max: 2, desired: 2 };
        live.labels.insert("team".into(), "x".into());
        live.taints[0].value = "false".into();
        let p = plan(&want, std::slice::from_ref(&live), "dev");
        let Step::Update(u) = &p[0].step else { panic!("{:?}", p[0]) };
        assert_eq!(u.scaling, Some(Scaling { min: 0, max: 4, desired: 0 }), "the declared scaling, whole");
        assert_eq!(u.remove_labels, ["team"]);
        assert_eq!(u.add_taints[0].value, "true");
        assert_eq!(
            p[0].change.details,
            [
                "desired_size: 2 -> 0",
                "max_size: 2 -> 4",
                "label team: x -> (removed)",
                "taint: nvidia.com/gpu=false:NO_SCHEDULE -> nvidia.com/gpu=true:NO_SCHEDULE"
            ]
        );

        // Settings EKS cannot change in place.
        for (field, edit) in [
            (
                "instance_types",
                Box::new(|g: &mut NodeGroup| g.instance_types = vec!["g5.xlarge".into()])
                    as Box<dyn Fn(&mut NodeGroup)>,
            ),
            ("ami_type", Box::new(|g: &mut NodeGroup| g.ami_type = "AL2_x86_64_GPU".into())),
            ("capacity_type", Box::new(|g: &mut NodeGroup| g.capacity_type = "ON_DEMAND".into())),
            ("disk_size_gib", Box::new(|g: &mut NodeGroup| g.disk_size = Some(50))),
        ] {
            let mut live = live_of(&want[0]);
            edit(&mut live);
            let p = plan(&want, &[live], "dev");
            assert_eq!(p[0].change.action, AwsAction::Replace, "{field}");
            assert_eq!(p[0].step, Step::None, "{field}: nothing is written");
            assert!(p[0].change.details[0].starts_with(&format!("{field}: ")), "{:?}", p[0].change.details);
        }

        // An unchanged but degraded group carries its status and health issues.
        let mut sick = live_of(&want[0]);
        sick.status = "DEGRADED".into();
        sick.health = vec!["Ec2SubnetInvalidConfiguration: no public IP on launch (subnet-1)".into()];
        let p = plan(&want, &[sick], "dev");
        assert_eq!(p[0].change.action, AwsAction::Unchanged);
        assert_eq!(p[0].change.note.as_deref(), Some("status DEGRADED"));
        assert_eq!(p[0].change.details, ["Ec2SubnetInvalidConfiguration: no public IP on launch (subnet-1)"]);

        // Undeclared groups: ours are pruned, others are not even listed; a foreign group with a
        // declared name is an error.
        let mut old = live_of(&want[0]);
        old.name = "old".into();
        let mut foreign = old.clone();
        foreign.name = "cpu".into();
        foreign.tags.clear();
        let mut other_env = old.clone();
        other_env.name = "gpu".into();
        other_env.tags.insert(ENVIRONMENT_TAG.into(), "prod".into());
        let p = plan(&want, &[old, foreign, other_env], "dev");
        let names: Vec<(&str, AwsAction, bool)> =
            p.iter().map(|p| (p.change.name.as_str(), p.change.action, p.change.error.is_some())).collect();
        assert_eq!(names, [("gpu", AwsAction::Unchanged, true), ("old", AwsAction::Prune, false)]);
        assert!(p[0].change.error.as_ref().unwrap().contains("environment \"prod\""));
    }

    /// A fake EKS whose node group walks through scripted statuses on each describe.
    #[derive(Default)]
    struct Fake {
        statuses: Mutex<Vec<&'static str>>,
        health: Vec<String>,
        updates: Mutex<Vec<UpdateState>>,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn group(&self, status: &str) -> NodeGroup {
            let mut g = desired(&env(""))[0].clone();
            g.status = status.into();
            g.health = self.health.clone();
            g
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl NodeGroupApi for Fake {
        async fn cluster_status(&self, _: &str) -> Result<String, AwsError> {
            Ok("ACTIVE".into())
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, AwsError> {
            Ok(vec![])
        }
        async fn describe(&self, _: &str, _: &str) -> Result<Option<NodeGroup>, AwsError> {
            let mut s = self.statuses.lock().unwrap();
            let status = if s.len() > 1 { s.remove(0) } else { s.first().copied().unwrap_or("GONE") };
            Ok((status != "GONE").then(|| self.group(status)))
        }
        async fn create(&self, _: &str, g: &NodeGroup) -> Result<(), AwsError> {
            self.calls.lock().unwrap().push(format!("create {}", g.name));
            Ok(())
        }
        async fn update(&self, _: &str, name: &str, _: &ConfigUpdate) -> Result<UpdateState, AwsError> {
            self.calls.lock().unwrap().push(format!("update {name}"));
            Ok(self.updates.lock().unwrap().remove(0))
        }
        async fn describe_update(&self, _: &str, _: &str, id: &str) -> Result<UpdateState, AwsError> {
            self.calls.lock().unwrap().push(format!("describe_update {id}"));
            Ok(self.updates.lock().unwrap().remove(0))
        }
        async fn delete(&self, _: &str, name: &str) -> Result<(), AwsError> {
            self.calls.lock().unwrap().push(format!("delete {name}"));
            Ok(())
        }
    }

    const FAST: Waits = Waits { timeout: Duration::from_secs(5), interval: Duration::from_millis(1) };

    fn update(status: &str, errors: &[&str]) -> UpdateState {
        UpdateState {
            id: "u1".into(),
            status: status.into(),
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn create_plan() -> GroupPlan {
        plan(&desired(&env("")), &[], "dev").remove(0)
    }

    fn update_plan() -> GroupPlan {
        let want = desired(&env(""));
        let mut live = live_of(&want[0]);
        live.scaling.max = 2;
        plan(&want, &[live], "dev").remove(0)
    }

    #[tokio::test]
    async fn create_waits_through_creating_until_active() {
        let fake = Fake { statuses: Mutex::new(vec!["CREATING", "CREATING", "ACTIVE"]), ..Fake::default() };
        let c = apply(&fake, "c1", create_plan(), FAST, &Progress::new(false)).await;
        assert_eq!(c.error, None);
        assert_eq!(c.status.as_deref(), Some("ACTIVE"));
        assert_eq!(fake.calls(), ["create gpu"]);
    }

    #[tokio::test]
    async fn create_failed_and_degraded_report_the_health_issues() {
        for status in ["CREATE_FAILED", "DEGRADED"] {
            let fake = Fake {
                statuses: Mutex::new(vec!["CREATING", status]),
                health: vec!["InsufficientFreeAddresses: the subnet has no free IPs (subnet-1)".into()],
                ..Fake::default()
            };
            let c = apply(&fake, "c1", create_plan(), FAST, &Progress::new(false)).await;
            let e = c.error.unwrap();
            assert_eq!(e, format!("node group gpu is {status}: InsufficientFreeAddresses: the subnet has no free IPs (subnet-1)"));
        }
    }

    #[tokio::test]
    async fn an_update_in_progress_is_followed_through_describe_update() {
        let fake = Fake {
            statuses: Mutex::new(vec!["ACTIVE"]),
            updates: Mutex::new(vec![
                update("InProgress", &[]),
                update("InProgress", &[]),
                update("Successful", &[]),
            ]),
            ..Fake::default()
        };
        let c = apply(&fake, "c1", update_plan(), FAST, &Progress::new(false)).await;
        assert_eq!(c.error, None);
        assert_eq!(fake.calls(), ["update gpu", "describe_update u1", "describe_update u1"]);
    }

    #[tokio::test]
    async fn a_failed_update_reports_eks_errors() {
        let fake = Fake {
            statuses: Mutex::new(vec!["ACTIVE"]),
            updates: Mutex::new(vec![
                update("InProgress", &[]),
                update("Failed", &["NodeCreationFailure: instances failed to join"]),
            ]),
            ..Fake::default()
        };
        let c = apply(&fake, "c1", update_plan(), FAST, &Progress::new(false)).await;
        assert_eq!(
            c.error.unwrap(),
            "update u1 of node group gpu failed: NodeCreationFailure: instances failed to join"
        );
    }

    #[tokio::test]
    async fn a_replacement_is_never_written_and_prune_waits_until_gone() {
        let want = desired(&env(""));
        let mut live = live_of(&want[0]);
        live.capacity_type = "ON_DEMAND".into();
        let fake = Fake::default();
        let c =
            apply(&fake, "c1", plan(&want, &[live.clone()], "dev").remove(0), FAST, &Progress::new(false))
                .await;
        assert!(c.error.unwrap().starts_with("requires replacement"));
        assert!(fake.calls().is_empty());

        live.name = "old".into();
        let fake = Fake { statuses: Mutex::new(vec!["DELETING", "DELETING", "GONE"]), ..Fake::default() };
        let p = plan(&want[..0], &[live], "dev").remove(0);
        let c = apply(&fake, "c1", p, FAST, &Progress::new(false)).await;
        assert_eq!(c.error, None);
        assert_eq!(fake.calls(), ["delete old"]);
    }

    #[tokio::test]
    async fn a_wait_gives_up_at_the_timeout() {
        let fake = Fake { statuses: Mutex::new(vec!["CREATING"]), ..Fake::default() };
        let waits = Waits { timeout: Duration::from_millis(30), interval: Duration::from_millis(5) };
        let c = apply(&fake, "c1", create_plan(), waits, &Progress::new(false)).await;
        assert!(c.error.unwrap().contains("is not ACTIVE after 30ms: status CREATING"));
    }
}
