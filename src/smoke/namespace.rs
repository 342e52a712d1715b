//! The smoke namespace: created for a run when missing (carrying the run's label), and at the
//! end emptied of the run's objects and deleted again when this run created it.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

use crate::engine::cluster::{retry, ClusterError};

use super::{Context, SMOKE_LABEL, SMOKE_NAMESPACE};

/// How long cleanup waits for the namespace to disappear.
const GONE_WAIT: Duration = Duration::from_secs(120);

/// The TrainJob resource (the same in every Trainer v2 release trainstack supports).
pub fn trainjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"),
        "trainjobs",
    )
}

/// Makes sure the smoke namespace exists and is not being deleted. A namespace left
/// terminating by an earlier run is waited out first.
pub async fn ensure(ctx: &Context) -> Result<(), ClusterError> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    loop {
        let live = retry("get namespace", || api.get_opt(SMOKE_NAMESPACE)).await?;
        // From here on objects of this run may exist (the create below may land even if its
        // answer is lost), so cleanup has work to check.
        ctx.namespace_reached.store(true, std::sync::atomic::Ordering::SeqCst);
        match live {
            Some(ns) if ns.metadata.deletion_timestamp.is_none() => return Ok(()),
            Some(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(_) => {
                return Err(ClusterError::Api {
                    what: format!("namespace {SMOKE_NAMESPACE}"),
                    message: format!(
                        "still terminating after {:?} (an earlier run is being cleaned up)",
                        ctx.timeout
                    ),
                    code: 0,
                })
            }
            None => {
                let ns: Namespace = serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": SMOKE_NAMESPACE, "labels": ctx.labels()},
                }))
                .expect("a valid Namespace");
                match api.create(&PostParams::default(), &ns).await {
                    Ok(_) => return Ok(()),
                    // Another run created it in between.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => {
                        return Err(ClusterError::Api {
                            what: format!("create namespace {SMOKE_NAMESPACE}"),
                            message: e.to_string(),
                            code: match e {
                                kube::Error::Api(s) => s.code,
                                _ => 0,
                            },
                        })
                    }
                }
            }
        }
    }
}

/// Deletes this run's TrainJobs and Pods in the smoke namespace, then the namespace itself if
/// this run created it, and waits until it is gone. Returns what was removed, for the report.
/// A run that never reached the namespace (the cluster was unreachable, or no check needed it)
/// created nothing and sends no request.
pub async fn cleanup(ctx: &Context) -> Result<Vec<String>, ClusterError> {
    let mut removed = Vec::new();
    if !ctx.namespace_reached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(removed);
    }
    let ns_api: Api<Namespace> = Api::all(ctx.client.clone());
    let Some(ns) = retry("get namespace", || ns_api.get_opt(SMOKE_NAMESPACE)).await? else {
        return Ok(removed);
    };
    let lp = ListParams::default().labels(&ctx.selector());
    let dp = DeleteParams::background();
    let trainjobs: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), SMOKE_NAMESPACE, &trainjob_resource());
    match retry("delete smoke TrainJobs", || trainjobs.delete_collection(&dp, &lp)).await {
        Ok(either) => removed.extend(deleted_names("TrainJob", either.left())),
        // Trainer's CRD is not installed: there is nothing of that kind to delete.
        Err(e) if e.code() == 404 => {}
        Err(e) => return Err(e),
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), SMOKE_NAMESPACE);
    let either = retry("delete smoke pods", || pods.delete_collection(&dp, &lp)).await?;
    removed.extend(deleted_names("Pod", either.left()));

    let ours = ns.metadata.labels.as_ref().and_then(|l| l.get(SMOKE_LABEL)) == Some(&ctx.run_id);
    if !ours {
        return Ok(removed);
    }
    match retry("delete namespace", || ns_api.delete(SMOKE_NAMESPACE, &dp)).await {
        Ok(_) => {}
        Err(e) if e.code() == 404 => {}
        Err(e) => return Err(e),
    }
    let deadline = tokio::time::Instant::now() + GONE_WAIT;
    while retry("get namespace", || ns_api.get_opt(SMOKE_NAMESPACE)).await?.is_some() {
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::Api {
                what: format!("namespace {SMOKE_NAMESPACE}"),
                message: format!("still terminating after {GONE_WAIT:?}; see kubectl get namespace {SMOKE_NAMESPACE} -o yaml (finalizers)"),
                code: 0,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    removed.push(format!("Namespace {SMOKE_NAMESPACE}"));
    Ok(removed)
}

fn deleted_names<K: kube::ResourceExt + Clone>(
    kind: &str,
    list: Option<kube::core::ObjectList<K>>,
) -> Vec<String> {
    list.map(|l| l.items)
        .unwrap_or_default()
        .iter()
        .map(|o| format!("{kind} {SMOKE_NAMESPACE}/{}", o.name_any()))
        .collect()
}
