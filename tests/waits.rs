//! Readiness waits of `apply` against the API double: they watch (one LIST and one watch per
//! resource type and namespace) instead of polling, end as soon as the controllers report
//! ready, survive a cut watch and a `410 Gone`, and still say what is not ready and why.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::ClusterScenario as Scenario;
use crate::support::apiserver::{ApiServer, Fault, FaultRule, RequestRecord};

/// Requests on the collection of `plural` (any namespace) that are watches.
fn watches<'a>(requests: &'a [RequestRecord], plural: &'a str) -> impl Iterator<Item = &'a RequestRecord> {
    requests.iter().filter(move |r| r.path.ends_with(&format!("/{plural}")) && r.query.contains("watch=true"))
}

/// GETs of the collection of `plural` that are lists, not watches.
fn lists<'a>(requests: &'a [RequestRecord], plural: &'a str) -> impl Iterator<Item = &'a RequestRecord> {
    requests.iter().filter(move |r| {
        r.method == "GET" && r.path.ends_with(&format!("/{plural}")) && !r.query.contains("watch=true")
    })
}

/// GETs of single objects of `plural` (`.../deployments/<name>`).
fn gets<'a>(requests: &'a [RequestRecord], plural: &'a str) -> impl Iterator<Item = &'a RequestRecord> {
    requests.iter().filter(move |r| r.method == "GET" && r.path.rsplit('/').nth(1) == Some(plural))
}

/// Plays KubeRay for the scenario's RayCluster: ready once it exists.
async fn ray_ready(server: &ApiServer) {
    // The kind is served only once its CRD is established.
    until("the RayCluster CRD", || {
        server.list("apiextensions.k8s.io/v1", "CustomResourceDefinition").iter().any(|c| {
            c["metadata"]["name"] == "rayclusters.ray.io"
                && c["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|x| x["type"] == "Established" && x["status"] == "True"))
        })
    })
    .await;
    until("the RayCluster", || {
        server.get("ray.io/v1", "RayCluster", Some("trainstack-system"), "ray").is_some()
    })
    .await;
    server.set_status("ray.io/v1", "RayCluster", Some("trainstack-system"), "ray", json!({"state": "ready"}));
}

/// Waits until `check` holds (at most 20 s).
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_waits_end_when_the_controllers_report_ready_without_polling() {
    // Controllers report ready 1.5 s after a change: a 250 ms poll would GET every workload
    // about six times meanwhile.
    let s = Scenario::with(
        ApiServer::builder().workload_ready_delay(Some(Duration::from_millis(1500))).start().await,
    );
    let started = Instant::now();
    tokio::join!(s.test(&["apply", "--timeout", "30s"]).status(0).run_async(), ray_ready(&s.server));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "apply returned before the workloads were ready: {took:?}");
    assert!(took < Duration::from_secs(8), "apply kept waiting after the workloads were ready: {took:?}");
    let requests = s.server.requests();
    let deployments = s.server.list("apps/v1", "Deployment");
    assert!(!deployments.is_empty());
    // At most the plan's own read of each object, never one per poll.
    assert!(
        gets(&requests, "deployments").count() <= deployments.len(),
        "{:#?}",
        gets(&requests, "deployments").collect::<Vec<_>>()
    );
    let namespaces: std::collections::BTreeSet<_> =
        deployments.iter().map(|d| d["metadata"]["namespace"].as_str().unwrap().to_string()).collect();
    // One list and one watch per namespace (the plan may list too).
    assert_eq!(watches(&requests, "deployments").count(), namespaces.len(), "{requests:#?}");
    assert!(lists(&requests, "deployments").count() <= 2 * namespaces.len(), "{requests:#?}");
    let selectors: Vec<&str> = watches(&requests, "deployments").map(|r| r.query.as_str()).collect();
    assert!(
        selectors
            .iter()
            .all(|q| q.contains("fieldSelector=metadata.name") || q.contains("labelSelector=applyset")),
        "each watch is narrowed to what the wait is for: {selectors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_that_times_out_names_what_is_not_ready_and_why() {
    let s = Scenario::with(ApiServer::builder().workload_ready_delay(None).start().await);
    let apply = s.test(&["apply", "--timeout", "2s"]).status(1).run_async();
    let fail_replicas = async {
        until("the mlflow Deployment", || {
            s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").is_some()
        })
        .await;
        s.server.seed(
            "kube-controller-manager",
            json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "mlflow.1", "namespace": "trainstack-system"},
                "involvedObject": {"kind": "Deployment", "name": "mlflow", "namespace": "trainstack-system"},
                "reason": "FailedCreate", "type": "Warning",
                "message": "pods \"mlflow-1\" is forbidden: exceeded quota: compute"}),
        );
        s.server.set_status(
            "apps/v1",
            "Deployment",
            Some("trainstack-system"),
            "mlflow",
            json!({"observedGeneration": 1, "replicas": 0, "conditions": [{"type": "ReplicaFailure",
                "status": "True", "reason": "FailedCreate", "message": "exceeded quota: compute"}]}),
        );
    };
    let (out, ()) = tokio::join!(apply, fail_replicas);
    assert!(
        out.stdout.contains(
            "! not ready: Deployment trainstack-system/mlflow: not ready after 2s: 0/1 replicas available, \
             0 updated; FailedCreate: exceeded quota: compute\n    event FailedCreate: pods \"mlflow-1\" is \
             forbidden: exceeded quota: compute"
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_watch_resumes_from_its_resource_version_and_the_wait_ends() {
    let s = Scenario::with(
        ApiServer::builder().workload_ready_delay(Some(Duration::from_millis(1200))).start().await,
    );
    s.server.add_fault(FaultRule::new(Fault::DropWatchAfter(0)).path_prefix("/apis/apps/v1").once());
    tokio::join!(s.test(&["apply", "--timeout", "30s"]).status(0).run_async(), ray_ready(&s.server));
    let requests = s.server.requests();
    let cut =
        requests.iter().position(|r| r.fault == Some(Fault::DropWatchAfter(0))).expect("a watch was cut");
    let path = &requests[cut].path;
    let next = requests[cut + 1..].iter().find(|r| &r.path == path).expect("the watch was restarted");
    assert!(next.query.contains("watch=true"), "the watcher resumed without a relist: {next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_resumed_after_compaction_gets_410_gone_relists_and_the_wait_ends() {
    // The controllers report ready only when the test says so: after the relist, so the
    // watcher has to watch again from the relisted resourceVersion to see it.
    let s = Scenario::with(ApiServer::builder().workload_ready_delay(None).start().await);
    s.server.add_fault(FaultRule::new(Fault::DropWatchAfter(0)).path_prefix("/apis/apps/v1").once());
    let apply = s.test(&["apply", "--timeout", "30s"]).status(0).run_async();
    let cut_path = || {
        let requests = s.server.requests();
        let cut = requests.iter().position(|r| r.fault.is_some())?;
        Some((cut, requests[cut].path.clone(), requests))
    };
    let compact_then_ready = async {
        until("the cut watch", || cut_path().is_some()).await;
        // Something changes and etcd compacts before the watcher comes back (it backs off
        // for about 800 ms): its resourceVersion is gone.
        s.server.seed(
            "kubectl",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "unrelated", "namespace": "default"}}),
        );
        s.server.compact();
        until("the relist", || {
            cut_path().is_some_and(|(cut, path, requests)| {
                requests[cut + 1..].iter().any(|r| r.path == path && !r.query.contains("watch=true"))
            })
        })
        .await;
        s.server.mark_workloads_ready();
    };
    tokio::join!(apply, compact_then_ready, ray_ready(&s.server));
    let (cut, path, requests) = cut_path().unwrap();
    let after: Vec<&RequestRecord> = requests[cut + 1..].iter().filter(|r| r.path == path).collect();
    let rv = |r: &RequestRecord| {
        r.query.split('&').find_map(|p| p.strip_prefix("resourceVersion=")).map(str::to_string)
    };
    // The cut watch resumed from its resourceVersion, was told 410 Gone (a relist, not another
    // resume, follows), and watched again from the relist's newer resourceVersion.
    assert!(after.len() >= 3, "{after:#?}");
    assert!(after[0].query.contains("watch=true") && rv(after[0]).is_some(), "{after:#?}");
    assert!(!after[1].query.contains("watch=true"), "a relist after 410: {after:#?}");
    assert!(after[2].query.contains("watch=true"), "{after:#?}");
    assert!(rv(after[2]).is_some() && rv(after[2]) != rv(after[0]), "{after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_crd_wait_ends_when_the_crds_are_established() {
    let s = Scenario::with(ApiServer::builder().crd_establish_delay(None).start().await);
    let apply = s.test(&["apply", "--no-wait", "--timeout", "30s"]).status(0).run_async();
    let establish = async {
        // The CRDs phase writes them all before waiting.
        until("the CRDs", || s.server.list("apiextensions.k8s.io/v1", "CustomResourceDefinition").len() >= 2)
            .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        for crd in s.server.list("apiextensions.k8s.io/v1", "CustomResourceDefinition") {
            s.server.establish_crd(crd["metadata"]["name"].as_str().unwrap());
        }
    };
    tokio::join!(apply, establish, ray_ready(&s.server));
    let requests = s.server.requests();
    let crds = s.server.list("apiextensions.k8s.io/v1", "CustomResourceDefinition").len();
    assert!(gets(&requests, "customresourcedefinitions").count() <= crds, "{requests:#?}");
    assert_eq!(watches(&requests, "customresourcedefinitions").count(), 1, "{requests:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crd_never_established_is_named_at_the_timeout() {
    let s = Scenario::with(ApiServer::builder().crd_establish_delay(None).start().await);
    let out = s.test(&["apply", "--timeout", "1s"]).status(1).run_async().await;
    assert!(
        out.stdout.contains(": not ready after 1s: not Established yet")
            && out.stdout.contains("! not ready: CustomResourceDefinition "),
        "{}",
        out.stdout
    );
}
