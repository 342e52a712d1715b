//! Running one planned node group step and waiting for EKS to settle: ACTIVE after a create or
//! update, gone after a delete, with EKS's health issues when it does not get there.

use std::time::Duration;

use super::{GroupPlan, NodeGroup, NodeGroupApi, Step, UpdateState};
use crate::aws::change::{AwsAction, AwsChange};
use crate::progress::Progress;

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
    progress: &dyn Progress,
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
    progress: &dyn Progress,
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
    progress: &dyn Progress,
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

#[cfg(test)]
mod tests {
    //! The waits against a scripted fake of the EKS API: moto has no DescribeUpdate and never
    //! reports CREATE_FAILED or DEGRADED.
    use std::sync::Mutex;

    use super::*;
    use crate::aws::nodegroups::tests::{env, live_of};
    use crate::aws::nodegroups::{desired, plan, ConfigUpdate};
    use crate::aws::AwsError;
    use crate::progress::Silent;

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
        let c = apply(&fake, "c1", create_plan(), FAST, &Silent).await;
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
            let c = apply(&fake, "c1", create_plan(), FAST, &Silent).await;
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
        let c = apply(&fake, "c1", update_plan(), FAST, &Silent).await;
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
        let c = apply(&fake, "c1", update_plan(), FAST, &Silent).await;
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
        let c = apply(&fake, "c1", plan(&want, &[live.clone()], "dev").remove(0), FAST, &Silent).await;
        assert!(c.error.unwrap().starts_with("requires replacement"));
        assert!(fake.calls().is_empty());

        live.name = "old".into();
        let fake = Fake { statuses: Mutex::new(vec!["DELETING", "DELETING", "GONE"]), ..Fake::default() };
        let p = plan(&want[..0], &[live], "dev").remove(0);
        let c = apply(&fake, "c1", p, FAST, &Silent).await;
        assert_eq!(c.error, None);
        assert_eq!(fake.calls(), ["delete old"]);
    }

    #[tokio::test]
    async fn a_wait_gives_up_at_the_timeout() {
        let fake = Fake { statuses: Mutex::new(vec!["CREATING"]), ..Fake::default() };
        let waits = Waits { timeout: Duration::from_millis(30), interval: Duration::from_millis(5) };
        let c = apply(&fake, "c1", create_plan(), waits, &Silent).await;
        assert!(c.error.unwrap().contains("is not ACTIVE after 30ms: status CREATING"));
    }
}
