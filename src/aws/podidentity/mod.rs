//! EKS Pod Identity associations of the tenants' `trainer` ServiceAccounts: one association per
//! tenant, all to the one tenant role from Terraform (`aws.pod_identity.role_arn`), whose S3
//! policy reaches only the tenant's own prefixes through the session tags EKS attaches
//! (`kubernetes-namespace`). The pure plan (create, change the role, prune what this environment
//! created) is here; the calls sit behind [`PodIdentityApi`], the SDK adapter in `sdk.rs`.
//!
//! Associations carry the `trainstack.io/environment` tag: one without it (made by eksctl,
//! Terraform or by hand) is never changed or deleted, so a tenant added to the environment gets
//! its identity on the next `apply` and one removed loses it only with `apply --prune`.

mod sdk;

use std::collections::BTreeMap;
use std::future::Future;

pub use sdk::PodIdentity;

use super::change::{AwsAction, AwsChange, Resource};
use super::{AwsError, ENVIRONMENT_TAG};
use crate::env::model::{Environment, TargetKind, TRAINER_SERVICE_ACCOUNT};

/// An association as it should be, or as EKS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// EKS's ID (`a-...`); empty for a desired association.
    pub id: String,
    /// The tenant's namespace.
    pub namespace: String,
    /// The ServiceAccount (`trainer`).
    pub service_account: String,
    /// The IAM role pods of that ServiceAccount get.
    pub role_arn: String,
    /// Tags (`trainstack.io/environment`).
    pub tags: BTreeMap<String, String>,
}

impl Association {
    /// `team-vision/trainer`: how reports name it (EKS allows one per ServiceAccount).
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.service_account)
    }
}

/// The EKS calls association reconciliation makes; [`PodIdentity`] over the SDK, fakes in tests.
pub trait PodIdentityApi: Sync {
    /// Every association of the cluster, described (the list alone has no role or tags).
    fn live(&self, cluster: &str) -> impl Future<Output = Result<Vec<Association>, AwsError>> + Send;
    /// CreatePodIdentityAssociation.
    fn create(&self, cluster: &str, a: &Association) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// UpdatePodIdentityAssociation (the role).
    fn update(
        &self,
        cluster: &str,
        id: &str,
        role_arn: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// DeletePodIdentityAssociation.
    fn delete(&self, cluster: &str, id: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// The write one association needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// In sync, or not ours to touch.
    None,
    /// Create it.
    Create(Association),
    /// Point the live association (its ID) at the declared role.
    Update {
        /// Association ID.
        id: String,
        /// The declared role.
        role_arn: String,
    },
    /// Delete the live association (its ID).
    Delete(String),
}

/// One association's plan.
#[derive(Debug, Clone)]
pub struct AssociationPlan {
    /// What diff and apply report.
    pub change: AwsChange,
    /// The write to make.
    pub step: Step,
}

/// Whether the environment declares tenant identities (an eks target with `aws.pod_identity`).
pub fn declared(env: &Environment) -> bool {
    env.target.kind == TargetKind::Eks && env.aws.as_ref().is_some_and(|a| a.pod_identity.is_some())
}

/// One association per tenant (when tenants are rendered): its namespace's `trainer`
/// ServiceAccount to the tenant role, tagged with the environment's name.
pub fn desired(env: &Environment) -> Vec<Association> {
    let Some(pi) = env.aws.as_ref().and_then(|a| a.pod_identity.as_ref()) else { return Vec::new() };
    if env.target.kind != TargetKind::Eks || !env.components.tenants.enabled {
        return Vec::new();
    }
    env.components
        .tenants
        .list
        .iter()
        .map(|t| Association {
            id: String::new(),
            namespace: t.name.clone(),
            service_account: TRAINER_SERVICE_ACCOUNT.into(),
            role_arn: pi.role_arn.clone(),
            tags: BTreeMap::from([(ENVIRONMENT_TAG.to_string(), env.name.clone())]),
        })
        .collect()
}

/// Whether environment `env_name` created the association (its `trainstack.io/environment` tag).
pub fn created_by(a: &Association, env_name: &str) -> bool {
    a.tags.get(ENVIRONMENT_TAG).map(String::as_str) == Some(env_name)
}

fn owner(a: &Association) -> String {
    match a.tags.get(ENVIRONMENT_TAG) {
        Some(other) => format!("environment {other:?}"),
        None => "something other than trainstack (eksctl, Terraform, the console)".into(),
    }
}

/// Plans the declared associations against the live ones, then the ones this environment
/// created and no longer declares (deleted only by `apply --prune`). An association of a
/// declared ServiceAccount that someone else made is kept as it is: the same role is in sync
/// (noted), another role is an error, since EKS allows one association per ServiceAccount and
/// trainstack never changes what it did not create.
pub fn plan(want: &[Association], live: &[Association], env_name: &str) -> Vec<AssociationPlan> {
    let mut out = Vec::new();
    for w in want {
        let mut change = AwsChange::new(Resource::PodIdentityAssociation, &w.key());
        let Some(l) =
            live.iter().find(|l| l.namespace == w.namespace && l.service_account == w.service_account)
        else {
            change.action = AwsAction::Create;
            change.details = vec![format!("role_arn: {}", w.role_arn)];
            out.push(AssociationPlan { change, step: Step::Create(w.clone()) });
            continue;
        };
        let ours = created_by(l, env_name);
        match (ours, l.role_arn == w.role_arn) {
            (_, true) => {
                if !ours {
                    change.note = Some(format!("created by {}", owner(l)));
                }
                out.push(AssociationPlan { change, step: Step::None });
            }
            (true, false) => {
                change.action = AwsAction::Update;
                change.details = vec![format!("role_arn: {} -> {}", l.role_arn, w.role_arn)];
                out.push(AssociationPlan {
                    change,
                    step: Step::Update { id: l.id.clone(), role_arn: w.role_arn.clone() },
                });
            }
            (false, false) => {
                let msg = format!(
                    "an association of this ServiceAccount exists, created by {}, with role {}; trainstack leaves it alone: delete it or set aws.pod_identity.role_arn to that role",
                    owner(l),
                    l.role_arn
                );
                out.push(AssociationPlan { change: change.failed(msg), step: Step::None });
            }
        }
    }
    let mut stale: Vec<&Association> = live
        .iter()
        .filter(|l| created_by(l, env_name))
        .filter(|l| {
            !want.iter().any(|w| w.namespace == l.namespace && w.service_account == l.service_account)
        })
        .collect();
    stale.sort_by_key(|a| a.key());
    for l in stale {
        let mut change = AwsChange::new(Resource::PodIdentityAssociation, &l.key());
        change.action = AwsAction::Prune;
        change.details =
            vec![format!("created by this environment, no longer declared (role {})", l.role_arn)];
        out.push(AssociationPlan { change, step: Step::Delete(l.id.clone()) });
    }
    out
}

/// What `delete` removes: every association this environment created, declared or not.
pub fn teardown(live: &[Association], env_name: &str) -> Vec<AssociationPlan> {
    let mut ours: Vec<&Association> = live.iter().filter(|a| created_by(a, env_name)).collect();
    ours.sort_by_key(|a| a.key());
    ours.into_iter()
        .map(|a| {
            let mut change = AwsChange::new(Resource::PodIdentityAssociation, &a.key());
            change.action = AwsAction::Delete;
            change.details = vec![format!("created by this environment (role {})", a.role_arn)];
            AssociationPlan { change, step: Step::Delete(a.id.clone()) }
        })
        .collect()
}

/// Makes the planned write; the change comes back failed when EKS refuses it.
pub async fn apply(api: &impl PodIdentityApi, cluster: &str, p: AssociationPlan) -> AwsChange {
    let done = match &p.step {
        Step::None => Ok(()),
        Step::Create(a) => api.create(cluster, a).await,
        Step::Update { id, role_arn } => api.update(cluster, id, role_arn).await,
        Step::Delete(id) => api.delete(cluster, id).await,
    };
    match done {
        Ok(()) => p.change,
        Err(e) => p.change.failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/tenant-trainer";

    fn live(id: &str, ns: &str, role: &str, env: Option<&str>) -> Association {
        Association {
            id: id.into(),
            namespace: ns.into(),
            service_account: TRAINER_SERVICE_ACCOUNT.into(),
            role_arn: role.into(),
            tags: env
                .map(|e| BTreeMap::from([(ENVIRONMENT_TAG.to_string(), e.to_string())]))
                .unwrap_or_default(),
        }
    }

    fn want(ns: &str) -> Association {
        Association { id: String::new(), ..live("", ns, ROLE, Some("dev")) }
    }

    fn actions(p: &[AssociationPlan]) -> Vec<(String, AwsAction, bool)> {
        p.iter().map(|p| (p.change.name.clone(), p.change.action, p.change.error.is_some())).collect()
    }

    #[test]
    fn a_changed_role_updates_the_association_this_environment_created() {
        let p = plan(
            &[want("alice")],
            &[live("a-1", "alice", "arn:aws:iam::123456789012:role/old", Some("dev"))],
            "dev",
        );
        assert_eq!(actions(&p), [("alice/trainer".to_string(), AwsAction::Update, false)]);
        assert_eq!(p[0].step, Step::Update { id: "a-1".into(), role_arn: ROLE.into() });
        assert_eq!(p[0].change.details, [format!("role_arn: arn:aws:iam::123456789012:role/old -> {ROLE}")]);
    }

    #[test]
    fn a_foreign_association_is_never_changed_or_pruned() {
        let live = [
            live("a-1", "alice", "arn:aws:iam::123456789012:role/other", None),
            live("a-2", "bob", ROLE, None),
            live("a-3", "carol", ROLE, Some("prod")),
            live("a-4", "team-vision", ROLE, None),
        ];
        let p = plan(&[want("alice"), want("team-vision")], &live, "dev");
        assert_eq!(
            actions(&p),
            [
                ("alice/trainer".to_string(), AwsAction::Unchanged, true),
                ("team-vision/trainer".to_string(), AwsAction::Unchanged, false)
            ]
        );
        assert!(p.iter().all(|p| p.step == Step::None), "{p:?}");
        assert_eq!(
            p[1].change.note.as_deref(),
            Some("created by something other than trainstack (eksctl, Terraform, the console)")
        );
        assert!(teardown(&live, "dev").is_empty());
    }
}
