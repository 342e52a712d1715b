//! Pods the checks start or follow: waiting for them to finish, describing why they have not,
//! and reading their logs.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::Client;

use crate::engine::cluster::{retry, ClusterError};

/// Logs longer than this keep only their tail: enough to see why something failed.
const LOG_LIMIT: usize = 64 * 1024;

/// The phase of a pod, `Unknown` when it reports none.
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Unknown")
}

/// Why a pod is where it is: its phase, an unschedulable condition, waiting or terminated
/// container states (image pull errors, crash loops, exit codes).
pub fn describe(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut parts = vec![format!("pod {name} is {}", phase(pod))];
    let Some(status) = &pod.status else { return parts.concat() };
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            parts.push(format!(
                "unschedulable: {}",
                c.message.clone().or_else(|| c.reason.clone()).unwrap_or_default()
            ));
        }
    }
    let containers =
        status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    for cs in containers {
        let Some(state) = &cs.state else { continue };
        if let Some(w) = &state.waiting {
            parts.push(format!(
                "container {} waiting: {} {}",
                cs.name,
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            ));
        }
        if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                parts.push(format!(
                    "container {} exited {} ({})",
                    cs.name,
                    t.exit_code,
                    t.reason.clone().unwrap_or_default()
                ));
            }
        }
    }
    parts.iter().map(|p| p.trim().to_string()).collect::<Vec<_>>().join("; ")
}

/// The pod's logs (all containers' default container), tail-limited. A pod whose logs cannot be
/// read yet gives the reason instead, so a report always says something.
pub async fn logs(client: &Client, namespace: &str, name: &str) -> String {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match api.logs(name, &LogParams::default()).await {
        Ok(text) if text.len() > LOG_LIMIT => {
            let cut = text.len() - LOG_LIMIT;
            let start = (cut..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
            format!("[... {cut} bytes cut ...]\n{}", &text[start..])
        }
        Ok(text) => text,
        Err(e) => format!("(logs unavailable: {e})"),
    }
}

/// Pods in `namespace` matching `selector`.
pub async fn list(client: &Client, namespace: &str, selector: &str) -> Result<Vec<Pod>, ClusterError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(selector);
    Ok(retry("list pods", || api.list(&lp)).await?.items)
}

/// Polls a pod until it has `Succeeded` or `Failed`, or `deadline` passes; gives the last
/// pod seen (`None` if it never appeared).
pub async fn wait_finished(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: tokio::time::Instant,
) -> Result<Option<Pod>, ClusterError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    loop {
        let pod = retry("get pod", || api.get_opt(name)).await?;
        let finished = pod.as_ref().is_some_and(|p| matches!(phase(p), "Succeeded" | "Failed"));
        if finished || tokio::time::Instant::now() >= deadline {
            return Ok(pod);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_unschedulable_pods_and_failing_containers() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}],
                "containerStatuses": [
                    {"name": "a", "ready": false, "restartCount": 0, "image": "", "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}},
                    {"name": "b", "ready": false, "restartCount": 1, "image": "", "imageID": "", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
                ]
            }
        }))
        .unwrap();
        assert_eq!(
            describe(&pod),
            "pod p is Pending; unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.; container a waiting: ImagePullBackOff pull access denied; container b exited 137 (OOMKilled)"
        );
    }
}
