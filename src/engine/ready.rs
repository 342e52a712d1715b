//! Readiness rules per kind, as pure functions of a live object. The engine's waits and the
//! `status` command use the same rules.

use serde_json::Value;

/// What a live object says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready (or a kind with no readiness to wait for).
    Ready,
    /// Not ready yet; the reason says what is missing.
    Pending(String),
    /// Will not become ready without a change (failed Job, DaemonSet with no GPU nodes, ...).
    Failed(String),
}

/// Facts about the cluster that change what "ready" means.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterFacts {
    /// The environment declares GPU pools, so a GPU DaemonSet scheduling nothing is a failure.
    pub expects_gpu_nodes: bool,
}

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(v: &'a Value, ty: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
}

fn condition_true(v: &Value, ty: &str) -> bool {
    condition(v, ty).and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True")
}

fn condition_message(v: &Value, ty: &str) -> String {
    condition(v, ty)
        .map(|c| {
            let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
            let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
            format!("{reason}: {msg}").trim_matches([' ', ':']).to_string()
        })
        .unwrap_or_default()
}

/// The controller has seen the latest spec.
fn observed(v: &Value) -> bool {
    v.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0)
        >= int(v, "/metadata/generation")
}

/// Readiness of one live object. `want_complete` makes Jobs and TrainJobs wait for completion.
pub fn readiness(obj: &Value, facts: ClusterFacts, want_complete: bool) -> Readiness {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match (api, kind) {
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            if condition_true(obj, "Established") {
                Readiness::Ready
            } else {
                Readiness::Pending("not Established yet".into())
            }
        }
        ("apps/v1", "Deployment") => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let (updated, available) =
                (int(obj, "/status/updatedReplicas"), int(obj, "/status/availableReplicas"));
            if condition(obj, "Progressing").and_then(|c| c.get("reason")).and_then(Value::as_str)
                == Some("ProgressDeadlineExceeded")
            {
                return Readiness::Failed(format!(
                    "rollout stuck: {}",
                    condition_message(obj, "Progressing")
                ));
            }
            if observed(obj)
                && updated >= want
                && available >= want
                && int(obj, "/status/replicas") <= want.max(updated)
            {
                Readiness::Ready
            } else {
                // Pods its ReplicaSet cannot create (quota, Pod Security) leave it pending
                // forever; the condition says why.
                let failure = match condition_true(obj, "ReplicaFailure") {
                    true => format!("; {}", condition_message(obj, "ReplicaFailure")),
                    false => String::new(),
                };
                Readiness::Pending(format!(
                    "{available}/{want} replicas available, {updated} updated{failure}"
                ))
            }
        }
        ("apps/v1", "StatefulSet") => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = int(obj, "/status/readyReplicas");
            let same_rev = obj.pointer("/status/currentRevision") == obj.pointer("/status/updateRevision");
            if observed(obj) && ready >= want && same_rev {
                Readiness::Ready
            } else {
                Readiness::Pending(format!("{ready}/{want} replicas ready"))
            }
        }
        ("apps/v1", "DaemonSet") => {
            let desired = int(obj, "/status/desiredNumberScheduled");
            let ready = int(obj, "/status/numberReady");
            let gpu = obj.to_string().contains("nvidia.com/gpu");
            if !observed(obj) {
                Readiness::Pending("controller has not observed the latest spec".into())
            } else if desired == 0 && gpu && facts.expects_gpu_nodes {
                Readiness::Failed("0 pods desired although the environment has GPU pools: no node matches its selector and tolerations (are the GPU nodes labelled nvidia.com/gpu.present=true?)".into())
            } else if ready >= desired && int(obj, "/status/updatedNumberScheduled") >= desired {
                Readiness::Ready
            } else {
                Readiness::Pending(format!("{ready}/{desired} pods ready"))
            }
        }
        ("batch/v1", "Job") => {
            if condition_true(obj, "Failed") {
                Readiness::Failed(format!("job failed: {}", condition_message(obj, "Failed")))
            } else if !want_complete || condition_true(obj, "Complete") {
                Readiness::Ready
            } else {
                Readiness::Pending(format!(
                    "{} succeeded, {} active",
                    int(obj, "/status/succeeded"),
                    int(obj, "/status/active")
                ))
            }
        }
        ("ray.io/v1", "RayCluster") => {
            let state = obj.pointer("/status/state").and_then(Value::as_str).unwrap_or("");
            if state == "ready" || condition_true(obj, "HeadPodReady") {
                Readiness::Ready
            } else if state == "failed" {
                Readiness::Failed(format!(
                    "RayCluster failed: {}",
                    obj.pointer("/status/reason").and_then(Value::as_str).unwrap_or("")
                ))
            } else {
                Readiness::Pending(format!(
                    "state {:?}, head pod not ready",
                    if state.is_empty() { "unknown" } else { state }
                ))
            }
        }
        ("trainer.kubeflow.org/v1alpha1", "TrainJob") => {
            if condition_true(obj, "Failed") {
                Readiness::Failed(format!("TrainJob failed: {}", condition_message(obj, "Failed")))
            } else if !want_complete || condition_true(obj, "Complete") {
                Readiness::Ready
            } else {
                Readiness::Pending("not Complete yet".into())
            }
        }
        _ => Readiness::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_waits_for_available_replicas_of_the_latest_generation() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 2},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(matches!(readiness(&d, ClusterFacts::default(), false), Readiness::Pending(_)));
        d["status"]["observedGeneration"] = json!(2);
        assert_eq!(readiness(&d, ClusterFacts::default(), false), Readiness::Ready);
    }

    #[test]
    fn deployment_whose_pods_cannot_be_created_says_why() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
            "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 0, "conditions": [
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                 "message": "pods \"web-1\" is forbidden: exceeded quota: q"}]}});
        assert_eq!(
            readiness(&d, ClusterFacts::default(), false),
            Readiness::Pending(
                "0/1 replicas available, 0 updated; FailedCreate: pods \"web-1\" is forbidden: exceeded quota: q".into()
            )
        );
    }

    #[test]
    fn gpu_daemonset_with_no_desired_pods_fails_when_gpu_nodes_are_expected() {
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1},
            "spec": {"template": {"spec": {"tolerations": [{"key": "nvidia.com/gpu"}]}}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 0, "numberReady": 0}});
        assert!(matches!(
            readiness(&ds, ClusterFacts { expects_gpu_nodes: true }, false),
            Readiness::Failed(_)
        ));
        assert_eq!(readiness(&ds, ClusterFacts { expects_gpu_nodes: false }, false), Readiness::Ready);
    }

    #[test]
    fn job_and_trainjob_completion() {
        let j = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert_eq!(
            readiness(&j, ClusterFacts::default(), true),
            Readiness::Failed("job failed: BackoffLimitExceeded".into())
        );
        let t = json!({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "status": {}});
        assert_eq!(readiness(&t, ClusterFacts::default(), false), Readiness::Ready);
        assert!(matches!(readiness(&t, ClusterFacts::default(), true), Readiness::Pending(_)));
    }
}
