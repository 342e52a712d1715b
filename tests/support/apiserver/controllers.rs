//! Stand-ins for the workload controllers: after a Deployment, StatefulSet or DaemonSet spec
//! changes they report it ready, and a Job complete, so apply-and-wait flows finish.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{internal, now, Shared};

/// Kinds whose readiness the simulated controllers report.
pub(crate) fn is_workload(group: &str, kind: &str) -> bool {
    matches!((group, kind), ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job"))
}

/// The status a healthy controller reports for `obj` at its current generation.
pub(crate) fn ready_status(kind: &str, obj: &Value, ts: &str) -> Value {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastUpdateTime": ts, "lastTransitionTime": ts, "reason": reason, "message": message});
    match kind {
        "Deployment" => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "NewReplicaSetAvailable", "ReplicaSet has successfully progressed."),
            ],
        }),
        "StatefulSet" => {
            let revision = format!("{}-{generation}", obj["metadata"]["name"].as_str().unwrap_or_default());
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            })
        }
        "DaemonSet" => json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "updatedNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
        }),
        "Job" => {
            let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
            json!({
                "startTime": ts,
                "completionTime": ts,
                "succeeded": completions,
                "ready": 0,
                "terminating": 0,
                "uncountedTerminatedPods": {},
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": ts, "lastTransitionTime": ts, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                    {"type": "Complete", "status": "True", "lastProbeTime": ts, "lastTransitionTime": ts, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                ],
            })
        }
        _ => json!({}),
    }
}

/// The object's `/status` path.
pub(crate) fn status_path(api_version: &str, plural: &str, namespace: &str, name: &str) -> String {
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{base}/namespaces/{namespace}/{plural}/{name}/status")
}

/// After `delay`, reports the workload ready if it is still at `generation`.
pub(crate) fn schedule_ready(shared: &Arc<Shared>, path: String, generation: i64, delay: Duration) {
    let weak = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(shared) = weak.upgrade() else { return };
        let object_path = path.trim_end_matches("/status");
        let Ok(obj) = internal(&shared, "GET", object_path, "kube-controller-manager", "", Value::Null)
        else {
            return;
        };
        if obj["metadata"]["generation"].as_i64() != Some(generation)
            || obj["metadata"].get("deletionTimestamp").is_some()
        {
            return;
        }
        let mut updated = obj.clone();
        updated["status"] = ready_status(obj["kind"].as_str().unwrap_or_default(), &obj, &now());
        // A conflicting concurrent write just means a newer generation will be reported on.
        let _ = internal(&shared, "PUT", &path, "kube-controller-manager", "application/json", updated);
    });
}
