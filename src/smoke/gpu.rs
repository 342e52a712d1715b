//! The `gpu` check (EKS with GPU pools): the pools' nodes advertise `nvidia.com/gpu`, a pod
//! asking for one GPU runs `nvidia-smi` to success, and the NVIDIA device plugin DaemonSet
//! has every desired pod ready. The DaemonSet is checked after the pod, so a pool that scales
//! from zero for the pod counts.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};

use crate::engine::cluster::retry;
use crate::env::model::TaintEffect;

use super::{pods, Context, Outcome, Record, SMOKE_NAMESPACE};

/// Where the device plugin runs (templates/gpu/device-plugin.yaml).
const PLUGIN: (&str, &str) = ("kube-system", "nvidia-device-plugin");

/// A CUDA base image: small, and `nvidia-smi` is injected by the NVIDIA container runtime.
pub const CUDA_IMAGE: &str = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04";

/// `nvidia.com/gpu` allocatable on a node (0 when absent or unreadable).
pub fn allocatable_gpus(node: &Node) -> i64 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get("nvidia.com/gpu"))
        .and_then(|q| q.0.parse::<i64>().ok())
        .unwrap_or(0)
}

/// The one-shot pod: one GPU, the pools' taints tolerated, the restricted security profile.
fn smi_pod(ctx: &Context, name: &str) -> Pod {
    let mut tolerations =
        vec![serde_json::json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})];
    for t in ctx.env.components.gpu.pools.iter().flat_map(|p| &p.taints) {
        let effect = match t.effect {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        };
        let tol = serde_json::json!({"key": t.key, "operator": "Exists", "effect": effect});
        if !tolerations.contains(&tol) {
            tolerations.push(tol);
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": SMOKE_NAMESPACE, "labels": ctx.labels()},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": tolerations,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "nvidia-smi",
                "image": CUDA_IMAGE,
                "command": ["nvidia-smi"],
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }))
    .expect("a valid Pod")
}

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> Outcome {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for pool in &ctx.env.components.gpu.pools {
        let lp = ListParams::default().labels(&format!("trainstack.io/pool={}", pool.name));
        let list = match retry("list nodes", || nodes.list(&lp)).await {
            Ok(l) => l.items,
            Err(e) => {
                return Outcome::failed(
                    format!("cannot list the nodes of pool {}: {e}", pool.name),
                    "the user running smoke needs list on nodes",
                )
            }
        };
        if (list.len() as u32) < pool.min_size {
            return Outcome::failed(
                format!("pool {} has {} node(s), fewer than its min_size {}", pool.name, list.len(), pool.min_size),
                format!("check the node group or Karpenter NodePool of pool {} (kubectl get nodes -l trainstack.io/pool={})", pool.name, pool.name),
            );
        }
        if list.is_empty() {
            rec.step(format!(
                "pool {}: no nodes now (min_size 0, it scales from zero for the test pod)",
                pool.name
            ));
        }
        for node in &list {
            let name = node.metadata.name.clone().unwrap_or_default();
            let gpus = allocatable_gpus(node);
            if gpus <= 0 {
                return Outcome::failed(
                    format!("node {name} of pool {} reports allocatable nvidia.com/gpu {gpus}", pool.name),
                    format!("the device plugin is not advertising GPUs on {name}: check its pod there (kubectl -n kube-system get pods -l app.kubernetes.io/name=nvidia-device-plugin -o wide) and the NVIDIA driver on the node"),
                );
            }
            rec.step(format!("pool {}: node {name} has {gpus} allocatable nvidia.com/gpu", pool.name));
        }
    }

    let name = format!("nvidia-smi-{}", ctx.run_id);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), SMOKE_NAMESPACE);
    if let Err(e) = pods_api.create(&PostParams::default(), &smi_pod(ctx, &name)).await {
        return Outcome::failed(
            format!("cannot create pod {SMOKE_NAMESPACE}/{name}: {e}"),
            "the user running smoke needs create on pods in the smoke namespace",
        );
    }
    rec.step(format!("created pod {SMOKE_NAMESPACE}/{name} requesting 1 nvidia.com/gpu"));
    let pod = match pods::wait_finished(&ctx.client, SMOKE_NAMESPACE, &name, deadline).await {
        Ok(p) => p,
        Err(e) => return Outcome::failed(format!("cannot follow pod {name}: {e}"), "check the API server"),
    };
    let logs = pods::logs(&ctx.client, SMOKE_NAMESPACE, &name).await;
    rec.log(&format!("pod {SMOKE_NAMESPACE}/{name}"), &logs);
    match pod.as_ref().map(pods::phase) {
        Some("Succeeded") => rec.step(format!("pod {name} ran nvidia-smi successfully")),
        Some("Failed") => {
            return Outcome::failed(
                format!("nvidia-smi failed: {}", pod.as_ref().map(pods::describe).unwrap_or_default()),
                "read the pod log below; a driver/library mismatch or a missing NVIDIA container runtime on the node are the usual causes",
            )
        }
        _ => {
            return Outcome::failed(
                format!(
                    "nvidia-smi pod did not finish within {:?}: {}",
                    ctx.timeout,
                    pod.as_ref().map(pods::describe).unwrap_or_else(|| "it disappeared".into())
                ),
                format!("kubectl -n {SMOKE_NAMESPACE} describe pod {name} (rerun with --keep); an unschedulable pod means no GPU node could be provisioned for it"),
            )
        }
    }

    if !ctx.env.components.gpu.device_plugin.enabled {
        rec.step("device plugin not managed by trainstack (components.gpu.device_plugin.enabled is false)");
        return Outcome::passed("GPU nodes advertise nvidia.com/gpu and nvidia-smi runs");
    }
    let ds_api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), PLUGIN.0);
    let mut last;
    loop {
        match retry("get DaemonSet", || ds_api.get_opt(PLUGIN.1)).await {
            Ok(Some(ds)) => {
                let s = ds.status.unwrap_or_default();
                let (desired, ready) = (s.desired_number_scheduled, s.number_ready);
                if desired > 0 && desired == ready {
                    rec.step(format!("DaemonSet {}/{}: {ready}/{desired} pods ready", PLUGIN.0, PLUGIN.1));
                    return Outcome::passed(format!("GPU nodes advertise nvidia.com/gpu, nvidia-smi runs, device plugin {ready}/{desired} ready"));
                }
                last = format!("{ready}/{desired} pods ready");
            }
            Ok(None) => last = "not found".into(),
            Err(e) => last = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            return Outcome::failed(
                format!("DaemonSet {}/{}: {last}, expected desired = ready > 0", PLUGIN.0, PLUGIN.1),
                "kubectl -n kube-system describe daemonset nvidia-device-plugin; 0 desired means no node carries nvidia.com/gpu.present=true or its taints are not tolerated",
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_gpus_reads_the_extended_resource() {
        let node = |alloc: serde_json::Value| -> Node {
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": "n"}, "status": {"allocatable": alloc}}),
            )
            .unwrap()
        };
        assert_eq!(allocatable_gpus(&node(serde_json::json!({"cpu": "8", "nvidia.com/gpu": "4"}))), 4);
        assert_eq!(allocatable_gpus(&node(serde_json::json!({"cpu": "8"}))), 0);
    }
}
