//! Stand-ins for the workload controllers: after a Deployment, StatefulSet or DaemonSet spec
//! changes they report it ready, and a Job complete, so apply-and-wait flows finish; when Pod
//! Security admission would refuse its pods they report 0 ready and record `FailedCreate` the way
//! the real controllers do.

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
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let mut updated = obj.clone();
        if let Some(status) = refuse_pods(&shared, &kind, &obj) {
            updated["status"] = status;
            let _ = internal(&shared, "PUT", &path, "kube-controller-manager", "application/json", updated);
            return;
        }
        updated["status"] = ready_status(&kind, &obj, &now());
        // A conflicting concurrent write just means a newer generation will be reported on.
        let _ = internal(&shared, "PUT", &path, "kube-controller-manager", "application/json", updated);
    });
}

/// When the namespace's Pod Security `enforce` level refuses the workload's pods: records the
/// `FailedCreate` Warning event its controller would and returns the status it reports (no pod
/// ready; for a Deployment the `ReplicaFailure` condition, its event going to the ReplicaSet).
fn refuse_pods(shared: &Arc<Shared>, kind: &str, obj: &Value) -> Option<Value> {
    let ns = obj["metadata"]["namespace"].as_str()?.to_string();
    let name = obj["metadata"]["name"].as_str()?.to_string();
    let (pod, replica_set) = {
        let mut st = shared.state.lock().unwrap();
        let hash =
            format!("{}{}", st.random_suffix(), st.random_suffix()).chars().take(9).collect::<String>();
        let pod = match kind {
            "Deployment" => format!("{name}-{hash}-{}", st.random_suffix()),
            "StatefulSet" => format!("{name}-0"),
            _ => format!("{name}-{}", st.random_suffix()),
        };
        (pod, format!("{name}-{hash}"))
    };
    let refusal = {
        let st = shared.state.lock().unwrap();
        super::admission::pod_refusal(&st, &ns, kind, obj, &pod)?
    };
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let ts = now();
    let (regarding, component, message) = match kind {
        "Deployment" => (
            json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "namespace": ns, "name": replica_set}),
            "replicaset-controller",
            format!("Error creating: {refusal}"),
        ),
        "StatefulSet" => (
            json!({"kind": kind, "apiVersion": "apps/v1", "namespace": ns, "name": name, "uid": obj["metadata"]["uid"]}),
            "statefulset-controller",
            format!("create Pod {pod} in StatefulSet {name} failed error: {refusal}"),
        ),
        "DaemonSet" => (
            json!({"kind": kind, "apiVersion": "apps/v1", "namespace": ns, "name": name, "uid": obj["metadata"]["uid"]}),
            "daemonset-controller",
            format!("Error creating: {refusal}"),
        ),
        _ => (
            json!({"kind": kind, "apiVersion": "batch/v1", "namespace": ns, "name": name, "uid": obj["metadata"]["uid"]}),
            "job-controller",
            format!("Error creating: {refusal}"),
        ),
    };
    let event_name = format!("{}.{:x}", regarding["name"].as_str().unwrap_or_default(), generation);
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name, "namespace": ns},
        "involvedObject": regarding,
        "reason": "FailedCreate",
        "message": message,
        "type": "Warning",
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    });
    let _ = internal(
        shared,
        "POST",
        &format!("/api/v1/namespaces/{ns}/events"),
        component,
        "application/json",
        event,
    );
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    Some(match kind {
        "Deployment" => json!({
            "observedGeneration": generation,
            "replicas": 0,
            "unavailableReplicas": replicas,
            "conditions": [
                {"type": "Progressing", "status": "True", "lastUpdateTime": ts, "lastTransitionTime": ts, "reason": "NewReplicaSetCreated", "message": format!("Created new replica set \"{replica_set}\"")},
                {"type": "Available", "status": "False", "lastUpdateTime": ts, "lastTransitionTime": ts, "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                {"type": "ReplicaFailure", "status": "True", "lastUpdateTime": ts, "lastTransitionTime": ts, "reason": "FailedCreate", "message": refusal},
            ],
        }),
        "StatefulSet" => json!({"observedGeneration": generation, "replicas": 0, "availableReplicas": 0}),
        "DaemonSet" => json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 0,
            "updatedNumberScheduled": 0,
            "numberReady": 0,
            "numberAvailable": 0,
            "numberUnavailable": 1,
            "numberMisscheduled": 0,
        }),
        _ => json!({"active": 0, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}),
    })
}
