//! The AWS part of `diff` and `apply`: S3 buckets, GPU node groups and the tenants' Pod Identity
//! associations, planned together and reported beside the Kubernetes objects.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::change::{AwsAction, AwsChange, Resource};
use super::nodegroups::{self, GroupPlan, NodeGroupApi, Waits};
use super::podidentity::{self, AssociationPlan, PodIdentityApi};
use super::s3::{self, BucketApi};
use super::AwsError;
use crate::env::model::{BucketOwner, Environment, TargetKind};
use crate::progress::Progress;
use crate::tally::Tally;

/// Counts of what the AWS part did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AwsSummary {
    /// Resources created.
    pub created: usize,
    /// Resources changed in place.
    pub updated: usize,
    /// Resources in sync.
    pub unchanged: usize,
    /// Node groups that need replacing.
    pub replace: usize,
    /// Node groups and associations deleted by prune.
    pub pruned: usize,
    /// Node groups and associations deleted by `delete`.
    pub deleted: usize,
    /// Resources that failed.
    pub failed: usize,
}

/// The AWS part of a diff or apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AwsReport {
    /// Buckets, then node groups, then associations, then prunes.
    pub changes: Vec<AwsChange>,
    /// Totals.
    pub summary: AwsSummary,
    /// Buckets `delete` leaves in place because they hold data (trainstack-managed ones that
    /// exist).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

impl AwsReport {
    fn from(changes: Vec<AwsChange>) -> Self {
        let t = Tally::of(&changes);
        let summary = AwsSummary {
            created: t.count(AwsAction::Create),
            updated: t.count(AwsAction::Update),
            unchanged: t.count(AwsAction::Unchanged),
            replace: t.count(AwsAction::Replace),
            pruned: t.count(AwsAction::Prune),
            deleted: t.count(AwsAction::Delete),
            failed: t.failed,
        };
        AwsReport { changes, summary, kept: Vec::new() }
    }

    /// Whether anything differs from AWS (replacements and prunes included).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != AwsAction::Unchanged)
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.summary.failed > 0
    }

    /// Appends the outcome of a later step (prune).
    pub fn extend(&mut self, more: AwsReport) {
        let mut all = std::mem::take(&mut self.changes);
        let mut kept = std::mem::take(&mut self.kept);
        all.extend(more.changes);
        kept.extend(more.kept);
        *self = AwsReport { kept, ..AwsReport::from(all) };
    }
}

/// Whether `diff` and `apply` reconcile an AWS side for the environment: an eks target that
/// declares buckets, node group placement (`components.gpu.node_groups`) or tenant identities
/// (`aws.pod_identity`). An eks environment with none needs no AWS access beyond its connection.
pub fn applies_to(env: &Environment) -> bool {
    env.target.kind == TargetKind::Eks
        && (!env.buckets().is_empty()
            || env.components.gpu.node_groups.is_some()
            || podidentity::declared(env))
}

/// Whether the environment declares GPU pools that are EKS managed node groups (which then need
/// `components.gpu.node_groups` to be reconciled).
pub fn declares_node_groups(env: &Environment) -> bool {
    let gpu = &env.components.gpu;
    env.target.kind == TargetKind::Eks
        && gpu.enabled
        && gpu.provider == crate::env::model::GpuProvider::ManagedNodeGroups
        && !gpu.pools.is_empty()
}

/// What `delete` does on AWS: the node groups and pod identity associations this environment
/// created, deleted after the Kubernetes objects, and the trainstack-managed buckets it keeps
/// (they hold data).
#[derive(Debug)]
pub struct Teardown {
    /// Node groups to delete.
    pub groups: Vec<GroupPlan>,
    /// Associations to delete.
    pub associations: Vec<AssociationPlan>,
    /// Existing trainstack-managed buckets, left in place.
    pub kept: Vec<String>,
}

impl Teardown {
    /// The plan as a report (`delete --dry-run`).
    pub fn report(&self) -> AwsReport {
        let changes = self
            .groups
            .iter()
            .map(|g| g.change.clone())
            .chain(self.associations.iter().map(|a| a.change.clone()))
            .collect();
        AwsReport { kept: self.kept.clone(), ..AwsReport::from(changes) }
    }
}

/// One AWS resource in `status`: drift against the environment and readiness as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsStatus {
    /// `NodeGroup`, `Bucket` or `PodIdentityAssociation`.
    pub resource: Resource,
    /// Its name.
    pub name: String,
    /// `in sync`, `missing`, `drifted`, `replace` (EKS cannot change it in place), `undeclared`
    /// (created by this environment, no longer declared) or `error`.
    pub state: &'static str,
    /// `ready`, or what is not: the node group's status and health issues, a missing bucket.
    pub ready: String,
    /// The drift (`field: live -> declared`), a node group's live scaling, the error.
    pub details: Vec<String>,
}

impl AwsStatus {
    fn of(change: AwsChange, ready: String) -> Self {
        let state = match (&change.error, change.action) {
            (Some(_), _) => "error",
            (None, AwsAction::Create) => "missing",
            (None, AwsAction::Update) => "drifted",
            (None, AwsAction::Replace) => "replace",
            (None, AwsAction::Prune | AwsAction::Delete) => "undeclared",
            (None, AwsAction::Unchanged) => "in sync",
        };
        let mut details = change.details;
        if let Some(e) = change.error {
            details.insert(0, e);
        }
        AwsStatus { resource: change.resource, name: change.name, state, ready, details }
    }
}

/// How the AWS part runs.
#[derive(Debug, Clone, Copy)]
pub struct AwsOptions {
    /// Plan only.
    pub dry_run: bool,
    /// Node group waits.
    pub waits: Waits,
    /// Buckets planned or written at once.
    pub concurrency: usize,
}

/// Reconciles one environment's buckets, node groups and pod identity associations.
pub struct Reconciler<'a, N, B, P> {
    env: &'a Environment,
    nodegroups: N,
    buckets: B,
    identities: P,
    opts: AwsOptions,
    progress: Arc<dyn Progress>,
}

impl<'a, N: NodeGroupApi, B: BucketApi, P: PodIdentityApi> Reconciler<'a, N, B, P> {
    /// A reconciler over the given adapters, reporting its phases to `progress`.
    pub fn new(
        env: &'a Environment,
        nodegroups: N,
        buckets: B,
        identities: P,
        opts: AwsOptions,
        progress: Arc<dyn Progress>,
    ) -> Self {
        Reconciler { env, nodegroups, buckets, identities, opts, progress }
    }

    fn cluster(&self) -> &str {
        &self.env.target.cluster_name
    }

    async fn plan_buckets(&self) -> Vec<s3::BucketPlan> {
        let buckets = self.env.buckets();
        if buckets.is_empty() {
            return Vec::new();
        }
        self.progress.phase("s3 diff", buckets.len());
        let plans = stream::iter(buckets)
            .map(|b| async move {
                let p = s3::plan(&self.buckets, b).await;
                self.progress.inc(&p.change.display_id());
                p
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        self.progress.finish();
        plans
    }

    async fn plan_groups(&self) -> Result<Vec<GroupPlan>, AwsError> {
        let want = nodegroups::desired(self.env);
        let live = nodegroups::live(&self.nodegroups, self.cluster()).await?;
        Ok(nodegroups::plan(&want, &live, &self.env.name))
    }

    /// Associations this environment declares or created; none asked of EKS when it declares
    /// no tenant identity (its associations from before are then left to `delete`).
    async fn live_associations(&self) -> Result<Vec<podidentity::Association>, AwsError> {
        if !podidentity::declared(self.env) {
            return Ok(Vec::new());
        }
        self.identities.live(self.cluster()).await
    }

    async fn plan_associations(&self) -> Result<Vec<AssociationPlan>, AwsError> {
        let live = self.live_associations().await?;
        Ok(podidentity::plan(&podidentity::desired(self.env), &live, &self.env.name))
    }

    /// The plan: every declared bucket, node group and association, plus the node groups and
    /// associations prune would delete.
    pub async fn diff(&self) -> Result<AwsReport, AwsError> {
        // Node groups first: a missing cluster stops the diff before any bucket is looked at.
        let groups = self.plan_groups().await?;
        let associations = self.plan_associations().await?;
        let mut changes: Vec<AwsChange> = self.plan_buckets().await.into_iter().map(|p| p.change).collect();
        changes.extend(groups.into_iter().map(|p| p.change));
        changes.extend(associations.into_iter().map(|p| p.change));
        Ok(AwsReport::from(changes))
    }

    /// Ensures buckets, then creates and updates node groups and waits for them to be ACTIVE,
    /// then creates and updates associations. Node groups and associations to prune are left
    /// for [`Reconciler::prune`], which runs after everything else succeeded.
    pub async fn apply(&self) -> Result<AwsReport, AwsError> {
        if self.opts.dry_run {
            let mut r = self.diff().await?;
            r.changes.retain(|c| c.action != AwsAction::Prune);
            return Ok(AwsReport::from(r.changes));
        }
        let groups: Vec<GroupPlan> =
            self.plan_groups().await?.into_iter().filter(|p| p.change.action != AwsAction::Prune).collect();
        let associations: Vec<AssociationPlan> = self
            .plan_associations()
            .await?
            .into_iter()
            .filter(|p| p.change.action != AwsAction::Prune)
            .collect();
        let plans = self.plan_buckets().await;
        // Nothing is written while any resource cannot even be planned (a missing Terraform
        // bucket, a foreign node group or association of a declared name, access denied).
        let unplannable: Vec<AwsChange> = plans
            .iter()
            .map(|p| &p.change)
            .chain(groups.iter().map(|g| &g.change))
            .chain(associations.iter().map(|a| &a.change))
            .filter(|c| c.error.is_some())
            .cloned()
            .collect();
        if !unplannable.is_empty() {
            return Ok(AwsReport::from(unplannable));
        }
        let mut changes = Vec::new();
        if !plans.is_empty() {
            self.progress.phase("s3", plans.len());
            let done: Vec<AwsChange> = stream::iter(plans)
                .map(|p| async move {
                    let c = s3::apply(&self.buckets, p, &self.env.name).await;
                    self.progress.inc(&c.display_id());
                    c
                })
                .buffered(self.opts.concurrency.max(1))
                .collect()
                .await;
            self.progress.finish();
            changes.extend(done);
        }
        changes.extend(self.run_groups(groups, "node groups").await);
        changes.extend(self.run_associations(associations, "pod identity").await);
        Ok(AwsReport::from(changes))
    }

    /// Deletes node groups and associations this environment created and no longer declares.
    pub async fn prune(&self) -> Result<AwsReport, AwsError> {
        let groups: Vec<GroupPlan> =
            self.plan_groups().await?.into_iter().filter(|p| p.change.action == AwsAction::Prune).collect();
        let associations: Vec<AssociationPlan> = self
            .plan_associations()
            .await?
            .into_iter()
            .filter(|p| p.change.action == AwsAction::Prune)
            .collect();
        if self.opts.dry_run {
            let changes =
                groups.into_iter().map(|g| g.change).chain(associations.into_iter().map(|a| a.change));
            return Ok(AwsReport::from(changes.collect()));
        }
        let mut changes = self.run_groups(groups, "prune node groups").await;
        changes.extend(self.run_associations(associations, "prune pod identity").await);
        Ok(AwsReport::from(changes))
    }

    /// Drift and readiness of every declared bucket, node group and association, and of node
    /// groups and associations this environment created and no longer declares. Nothing is
    /// written.
    pub async fn status(&self) -> Result<Vec<AwsStatus>, AwsError> {
        let live = nodegroups::live(&self.nodegroups, self.cluster()).await?;
        let groups = nodegroups::plan(&nodegroups::desired(self.env), &live, &self.env.name);
        let mut out: Vec<AwsStatus> = self
            .plan_buckets()
            .await
            .into_iter()
            .map(|p| {
                let ready = match (&p.change.error, p.change.action) {
                    (Some(_), _) => "error".to_string(),
                    (None, AwsAction::Create) => "does not exist".to_string(),
                    _ => "ready".to_string(),
                };
                AwsStatus::of(p.change, ready)
            })
            .collect();
        for p in groups {
            let l = live.iter().find(|l| l.name == p.change.name && p.change.error.is_none());
            let Some(l) = l else {
                let ready = if p.change.error.is_some() { "error" } else { "does not exist" };
                out.push(AwsStatus::of(p.change, ready.into()));
                continue;
            };
            let ready = match (l.status.as_str(), l.health.is_empty()) {
                ("ACTIVE", true) => "ready".to_string(),
                (s, true) => format!("status {s}"),
                (s, false) => format!("status {s}: {}", l.health.join("; ")),
            };
            let mut st = AwsStatus::of(p.change, ready);
            st.details.push(format!(
                "scaling: {} nodes desired (min {}, max {})",
                l.scaling.desired, l.scaling.min, l.scaling.max
            ));
            if st.state == "undeclared" {
                st.details.push("apply --prune or delete removes it".into());
            }
            out.push(st);
        }
        for p in self.plan_associations().await? {
            // An association is usable as soon as it exists: EKS has no status for it.
            let ready = match (&p.change.error, p.change.action) {
                (Some(_), _) => "error",
                (None, AwsAction::Create) => "does not exist",
                _ => "ready",
            };
            let mut st = AwsStatus::of(p.change, ready.into());
            if st.state == "undeclared" {
                st.details.push("apply --prune or delete removes it".into());
            }
            out.push(st);
        }
        Ok(out)
    }

    /// What `delete` would do on AWS (no writes): every node group and association tagged with
    /// this environment's name, and the trainstack-managed buckets that exist. A bucket whose
    /// existence cannot be checked is listed as kept too: `delete` never removes one.
    pub async fn teardown_plan(&self) -> Result<Teardown, AwsError> {
        let live = nodegroups::live(&self.nodegroups, self.cluster()).await?;
        let groups = nodegroups::teardown(&live, &self.env.name);
        let associations = podidentity::teardown(&self.live_associations().await?, &self.env.name);
        let ours = self.env.buckets().iter().filter(|b| b.managed_by == BucketOwner::Trainstack);
        let presence = stream::iter(ours)
            .map(|b| async move { (b.name.clone(), self.buckets.presence(&b.name).await) })
            .buffered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let kept = presence
            .into_iter()
            .filter(|(_, p)| !matches!(p, Ok(s3::Presence::Missing)))
            .map(|(name, _)| name)
            .collect();
        Ok(Teardown { groups, associations, kept })
    }

    /// Deletes the planned node groups concurrently, waiting until each is gone, then the
    /// associations (the order `delete --dry-run` lists them in).
    pub async fn teardown(&self, plan: Teardown) -> AwsReport {
        let mut changes = self.run_groups(plan.groups, "delete node groups").await;
        changes.extend(self.run_associations(plan.associations, "delete pod identity").await);
        AwsReport { kept: plan.kept, ..AwsReport::from(changes) }
    }

    /// Associations are written concurrently; each is one call, done when EKS answers.
    async fn run_associations(&self, plans: Vec<AssociationPlan>, phase: &str) -> Vec<AwsChange> {
        if plans.is_empty() {
            return Vec::new();
        }
        self.progress.phase(phase, plans.len());
        let done = stream::iter(plans)
            .map(|p| async move {
                let c = podidentity::apply(&self.identities, self.cluster(), p).await;
                self.progress.inc(&c.display_id());
                c
            })
            .buffered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        self.progress.finish();
        done
    }

    /// Node groups are created, updated and deleted concurrently: each takes minutes on EKS.
    async fn run_groups(&self, groups: Vec<GroupPlan>, phase: &str) -> Vec<AwsChange> {
        if groups.is_empty() {
            return Vec::new();
        }
        self.progress.phase(phase, groups.len());
        let done = stream::iter(groups)
            .map(|g| async move {
                let c =
                    nodegroups::apply(&self.nodegroups, self.cluster(), g, self.opts.waits, &*self.progress)
                        .await;
                self.progress.inc(&c.display_id());
                c
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        self.progress.finish();
        let mut done = done;
        done.sort_by(|a, b| a.name.cmp(&b.name));
        done
    }
}

#[cfg(test)]
mod tests {
    //! `status` and `delete`'s plan against fixed live node groups: EKS health issues, which moto
    //! never reports, and which groups are this environment's.
    use super::*;
    use crate::aws::nodegroups::{ConfigUpdate, NodeGroup, UpdateState};
    use crate::aws::s3::{BucketSettings, Presence};
    use crate::progress::Silent;

    fn env() -> Environment {
        crate::yaml::from_str(
            "name: dev\ntarget: {kind: eks, cluster_name: c1, region: us-east-1}\ncomponents:\n  gpu:\n    enabled: true\n    pools:\n      - name: gpu\n        max_size: 4\n    node_groups:\n      node_role_arn: arn:aws:iam::123456789012:role/node\n      subnet_ids: [subnet-1]\n",
        )
        .unwrap()
    }

    /// EKS with these node groups; every write is refused (status and a plan make none).
    struct Groups(Vec<NodeGroup>);

    fn refused() -> AwsError {
        AwsError::Api { call: "write".into(), resource: "test".into(), message: "no writes here".into() }
    }

    impl NodeGroupApi for Groups {
        async fn cluster_status(&self, _: &str) -> Result<String, AwsError> {
            Ok("ACTIVE".into())
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, AwsError> {
            Ok(self.0.iter().map(|g| g.name.clone()).collect())
        }
        async fn describe(&self, _: &str, name: &str) -> Result<Option<NodeGroup>, AwsError> {
            Ok(self.0.iter().find(|g| g.name == name).cloned())
        }
        async fn create(&self, _: &str, _: &NodeGroup) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn update(&self, _: &str, _: &str, _: &ConfigUpdate) -> Result<UpdateState, AwsError> {
            Err(refused())
        }
        async fn describe_update(&self, _: &str, _: &str, _: &str) -> Result<UpdateState, AwsError> {
            Err(refused())
        }
        async fn delete(&self, _: &str, _: &str) -> Result<(), AwsError> {
            Err(refused())
        }
    }

    /// S3 for an environment that declares no buckets: never called.
    struct NoBuckets;

    impl BucketApi for NoBuckets {
        async fn presence(&self, _: &str) -> Result<Presence, AwsError> {
            Err(refused())
        }
        async fn settings(&self, _: &str) -> Result<BucketSettings, AwsError> {
            Err(refused())
        }
        async fn create(&self, _: &str, _: &str) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn put_versioning(&self, _: &str, _: bool) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn put_encryption(&self, _: &str, _: &s3::Encryption) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn put_public_access(&self, _: &str, _: s3::PublicAccess) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn put_lifecycle(&self, _: &str, _: &[s3::Rule]) -> Result<(), AwsError> {
            Err(refused())
        }
    }

    /// EKS Pod Identity for an environment that declares none: never called.
    struct NoIdentities;

    impl PodIdentityApi for NoIdentities {
        async fn live(&self, _: &str) -> Result<Vec<podidentity::Association>, AwsError> {
            Err(refused())
        }
        async fn create(&self, _: &str, _: &podidentity::Association) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn update(&self, _: &str, _: &str, _: &str) -> Result<(), AwsError> {
            Err(refused())
        }
        async fn delete(&self, _: &str, _: &str) -> Result<(), AwsError> {
            Err(refused())
        }
    }

    fn opts() -> AwsOptions {
        AwsOptions {
            dry_run: true,
            waits: Waits { timeout: std::time::Duration::ZERO, interval: std::time::Duration::ZERO },
            concurrency: 2,
        }
    }

    fn group(env: &Environment, name: &str, owner: Option<&str>) -> NodeGroup {
        let mut g = nodegroups::desired(env)[0].clone();
        g.name = name.into();
        g.status = "ACTIVE".into();
        match owner {
            Some(o) => g.tags.insert(crate::aws::ENVIRONMENT_TAG.into(), o.into()),
            None => g.tags.remove(crate::aws::ENVIRONMENT_TAG),
        };
        g
    }

    #[tokio::test]
    async fn status_reports_eks_health_issues_and_live_scaling() {
        let env = env();
        let mut sick = group(&env, "gpu", Some("dev"));
        sick.status = "DEGRADED".into();
        sick.health = vec!["AsgInstanceLaunchFailures: no spot capacity (asg-1)".into()];
        sick.scaling.desired = 0;
        let r = Reconciler::new(&env, Groups(vec![sick]), NoBuckets, NoIdentities, opts(), Arc::new(Silent));
        let rows = r.status().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "in sync", "the settings match; only EKS says it is unwell");
        assert_eq!(rows[0].ready, "status DEGRADED: AsgInstanceLaunchFailures: no spot capacity (asg-1)");
        assert_eq!(
            rows[0].details,
            [
                "AsgInstanceLaunchFailures: no spot capacity (asg-1)",
                "scaling: 0 nodes desired (min 0, max 4)"
            ]
        );

        // Not created yet.
        let r = Reconciler::new(&env, Groups(Vec::new()), NoBuckets, NoIdentities, opts(), Arc::new(Silent));
        let rows = r.status().await.unwrap();
        assert_eq!((rows[0].state, rows[0].ready.as_str()), ("missing", "does not exist"));
    }

    #[tokio::test]
    async fn delete_plans_only_the_groups_this_environment_created() {
        let env = env();
        let live = vec![
            group(&env, "gpu", Some("dev")),
            group(&env, "old", Some("dev")),
            group(&env, "cpu", None),
            group(&env, "team-b", Some("prod")),
        ];
        let r = Reconciler::new(&env, Groups(live), NoBuckets, NoIdentities, opts(), Arc::new(Silent));
        let t = r.teardown_plan().await.unwrap();
        let names: Vec<(&str, AwsAction)> =
            t.groups.iter().map(|g| (g.change.name.as_str(), g.change.action)).collect();
        assert_eq!(names, [("gpu", AwsAction::Delete), ("old", AwsAction::Delete)]);
        assert!(t.kept.is_empty(), "no buckets declared");
        let report = t.report();
        assert_eq!(report.summary.deleted, 2);
        assert!(report.has_changes());
    }
}
