//! EKS managed node groups for the environment's GPU pools: the desired groups and the pure plan
//! against what EKS has (create, in-place update of scaling, labels and taints, replacement
//! reports, prune of groups this environment created). The EKS calls sit behind
//! [`NodeGroupApi`] (`api.rs`), the steps and their waits in `apply.rs`, the SDK adapter in
//! `sdk.rs`.

mod api;
mod apply;
mod sdk;

use std::collections::{BTreeMap, BTreeSet};

pub use api::{live, NodeGroupApi, UpdateState};
pub use apply::{apply, wait_active, Waits};
pub use sdk::Eks;

use super::change::{AwsAction, AwsChange, Resource};
use super::ENVIRONMENT_TAG;
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

#[cfg(test)]
pub(crate) mod tests {
    //! The plan against hand-made live groups.
    use super::*;

    /// An eks environment with one GPU pool, `extra` added to the pool.
    pub(crate) fn env(extra: &str) -> Environment {
        let yaml = format!(
            "name: dev\ntarget: {{kind: eks, cluster_name: c1, region: us-east-1}}\ncomponents:\n  gpu:\n    enabled: true\n    pools:\n      - name: gpu\n        max_size: 4\n{extra}    node_groups:\n      node_role_arn: arn:aws:iam::123456789012:role/node\n      subnet_ids: [subnet-2, subnet-1]\n"
        );
        crate::yaml::from_str(&yaml).unwrap()
    }

    /// `g` as EKS reports it once active.
    pub(crate) fn live_of(g: &NodeGroup) -> NodeGroup {
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
}
