//! What prune and delete may touch (KEP-3659 ApplySet rules), and that a run cut off at any
//! request leaves nothing prune cannot find: the real binary against the API server double.

use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::Scenario;
use crate::harness::Output;
use crate::support::apiserver::{ApiServer, FaultRule};

const PART_OF: &str = "applyset.kubernetes.io/part-of";

fn report(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("JSON report ({e}): {}", out.stdout))
}

/// (kind, namespace, name) of every change of a JSON report with this action.
fn listed(report: &Value, action: &str) -> Vec<(String, Option<String>, String)> {
    let changes = report["changes"].as_array().expect("changes").iter();
    changes
        .filter(|c| c["action"] == action)
        .map(|c| {
            let s = |k: &str| c[k].as_str().map(str::to_string);
            (s("kind").unwrap(), s("namespace"), s("name").unwrap())
        })
        .collect()
}

fn kept(report: &Value) -> Vec<String> {
    let kept = report["kept"].as_array().cloned().unwrap_or_default();
    kept.iter().map(|k| k.as_str().unwrap().to_string()).collect()
}

/// The ApplySet ID of the kind environment, from its parent.
fn applyset_id(server: &ApiServer) -> String {
    let parent =
        server.get("v1", "Secret", Some("trainstack-system"), "trainstack-kind-dev").expect("parent");
    parent["metadata"]["labels"]["applyset.kubernetes.io/id"].as_str().unwrap().to_string()
}

/// Whether an object is gone, allowing a deleted namespace its moment in `Terminating`.
async fn gone(server: &ApiServer, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
    for _ in 0..40 {
        if server.get(api_version, kind, ns, name).is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_never_deletes_a_namespace_another_team_created_nor_its_content() {
    let s = Scenario::start().await;
    // Another team made `alice` (a tenant the environment declares) and works in it.
    s.server.seed(
        "kubectl-create",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alice"}}),
    );
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "team-notes", "namespace": "alice"}, "data": {"owner": "alice-team"}});
    s.server.seed("kubectl-create", theirs);

    // Before trainstack applied anything, nothing is its to delete.
    let early = s.test(&["delete", "--yes", "--timeout", "20s", "-o", "json"]).status(0).run_async().await;
    let early = report(&early);
    assert_eq!(listed(&early, "prune"), vec![], "nothing existed that trainstack applied: {early}");
    assert_eq!(early["summary"]["pruned"], 0, "{early}");
    assert!(
        kept(&early).iter().any(|k| k.starts_with("Namespace alice (") && k.contains("no ApplySet label")),
        "{early}"
    );
    assert!(s.server.get("v1", "Namespace", None, "alice").is_some());

    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let quota = s.server.list("v1", "ResourceQuota");
    assert!(quota.iter().any(|q| q["metadata"]["namespace"] == "alice"), "trainstack applied into alice");

    let dry = report(&s.run(&["delete", "--dry-run", "-o", "json"]).await);
    let would = listed(&dry, "prune");
    let out = s.test(&["delete", "--yes", "--timeout", "20s", "-o", "json"]).status(0).run_async().await;
    let done = report(&out);
    let deleted = listed(&done, "prune");
    assert_eq!(deleted, would, "the dry run lists exactly what delete deletes");
    assert_eq!(done["summary"]["pruned"], deleted.len(), "the count is what was deleted: {done}");
    assert!(!deleted.iter().any(|(k, _, n)| k == "Namespace" && n == "alice"), "{deleted:?}");
    assert!(
        deleted.iter().any(|(k, ns, _)| k == "ResourceQuota" && ns.as_deref() == Some("alice")),
        "trainstack's own objects in alice go: {deleted:?}"
    );
    assert!(
        kept(&done).iter().any(|k| k.starts_with("Namespace alice (") && k.contains("did not create")),
        "{done}"
    );
    let alice = s.server.get("v1", "Namespace", None, "alice").expect("alice stays");
    assert!(alice.pointer("/metadata/deletionTimestamp").is_none(), "{alice}");
    assert!(
        alice.pointer(&format!("/metadata/labels/{}", PART_OF.replace('/', "~1"))).is_none(),
        "trainstack takes back the member label it put on alice: {alice}"
    );
    assert!(s.server.get("v1", "ConfigMap", Some("alice"), "team-notes").is_some());
    // Namespaces trainstack created are gone, the parent with them.
    assert!(gone(&s.server, "v1", "Namespace", None, "team-vision").await);
    assert!(gone(&s.server, "v1", "Namespace", None, "trainstack-system").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_stays_in_the_applyset_namespaces_and_leaves_controller_owned_members() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let id = applyset_id(&s.server);
    // A copy of a member's label on an object in a namespace outside the set.
    s.server.seed(
        "kubectl-client-side-apply",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "copied", "namespace": "default", "labels": {PART_OF: id}}}),
    );
    // A labelled object a controller owns (its controller would recreate or collect it).
    let mlflow = s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").unwrap();
    s.server.seed(
        "kube-controller-manager",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "mlflow-generated", "namespace": "trainstack-system",
                "labels": {PART_OF: id},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "mlflow",
                    "uid": mlflow["metadata"]["uid"], "controller": true}]}}),
    );
    s.server.clear_requests();

    let diff = report(&s.run(&["diff", "-o", "json"]).await);
    assert_eq!(listed(&diff, "prune"), vec![], "{diff}");
    let out = s.test(&["apply", "--no-wait", "--prune", "-o", "json"]).status(0).run_async().await;
    let applied = report(&out);
    assert_eq!(listed(&applied, "prune"), vec![], "{applied}");
    assert!(s.server.get("v1", "ConfigMap", Some("default"), "copied").is_some());
    assert!(s.server.get("v1", "ConfigMap", Some("trainstack-system"), "mlflow-generated").is_some());
    let kept = kept(&applied);
    assert!(
        kept.iter().any(|k| k.starts_with("ConfigMap trainstack-system/mlflow-generated (")
            && k.contains("controlled by Deployment mlflow")),
        "{kept:?}"
    );
    assert!(
        !kept.iter().any(|k| k.contains("default/copied")),
        "outside the set, not even looked at: {kept:?}"
    );
    // A namespaced kind is read across the cluster only by its membership label (the live-state
    // read, whose members outside the set's namespaces are dropped, as `kept` shows above);
    // prune's own lists of namespaced kinds stay in the set's namespaces.
    let wide: Vec<String> = s
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("labelSelector"))
        .filter(|r| {
            !r.query.contains("applyset.kubernetes.io%2Fpart-of")
                && !r.query.contains("applyset.kubernetes.io/part-of")
        })
        .filter(|r| !r.path.contains("/namespaces/") && !r.path.ends_with("/namespaces"))
        .filter(|r| {
            let resource = r.path.rsplit('/').next().unwrap_or_default();
            let cluster_scoped = ["customresourcedefinitions", "priorityclasses", "storageclasses"];
            !resource.starts_with("cluster") && !cluster_scoped.contains(&resource)
        })
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(wide, Vec::<String>::new(), "cluster-wide lists of namespaced kinds");
}

/// base + kind without MLflow (so no HorizontalPodAutoscaler or PodDisruptionBudget).
const V1: &str = "components:\n  mlflow:\n    enabled: false\n";
/// V1 plus a new tenant namespace and MLflow back (two new group-kinds).
const V2: &str = "components:\n  tenants:\n    list:\n      - name: alice\n        hpo: {enabled: true}\n      - name: team-vision\n      - name: carol\n";

/// The write positions (1-based, dry runs included) where a v1 -> v2 apply at `--concurrency 1`
/// starts writing a new kind of object for real: every phase boundary and the kind boundaries
/// inside phases, plus the first writes (the parent's namespace and the parent).
async fn cut_points() -> Vec<usize> {
    let s = Scenario::start().await;
    s.overlay(V1);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.overlay(V2);
    s.server.clear_requests();
    s.test(&["apply", "--no-wait", "--concurrency", "1"]).status(0).run_async().await;
    let writes: Vec<_> = s
        .server
        .requests()
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .collect();
    let resource = |path: &str| path.rsplit('/').nth(1).unwrap_or_default().to_string();
    let mut boundaries = Vec::new();
    let mut last = String::new();
    for (i, w) in writes.iter().enumerate() {
        let r = resource(&w.path);
        if !w.is_dry_run() && r != last {
            boundaries.push(i + 1);
            last = r;
        }
    }
    // Each cut costs the client's full retry budget against a dead server (tens of seconds), so
    // the sweep takes four: the parent's write, the first real write of the new namespace, a
    // write mid-way through the config phase, and the last write.
    let mut points = vec![2];
    points.extend(boundaries.get(1));
    points.extend(boundaries.get(boundaries.len() / 2).map(|b| b + 1));
    points.push(writes.len());
    points.sort();
    points.dedup();
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_cut_off_at_any_write_leaves_every_new_member_prunable() {
    let points = cut_points().await;
    assert!(points.len() >= 4, "{points:?}");
    eprintln!("cutting at writes {points:?}");
    for n in points {
        let s = Scenario::start().await;
        s.overlay(V1);
        s.test(&["apply", "--no-wait"]).status(0).run_async().await;
        // The API server dies at the nth write of the apply that adds carol and MLflow.
        s.overlay(V2);
        s.server.add_fault(FaultRule::down_from_nth_write(n));
        let cut = s.run(&["apply", "--no-wait", "--concurrency", "1"]).await;
        s.server.clear_faults();
        // Reverting the environment and pruning removes whatever the cut-off run wrote.
        s.overlay(V1);
        let revert =
            s.test(&["apply", "--no-wait", "--prune", "--prune-namespaces"]).status(0).run_async().await;
        let at = format!("cut at write {n} (exit {}):\n{}\nthen:\n{}", cut.code, cut.stdout, revert.stdout);
        assert!(gone(&s.server, "v1", "Namespace", None, "carol").await, "{at}");
        assert!(
            s.server.list("v1", "ResourceQuota").iter().all(|q| q["metadata"]["namespace"] != "carol"),
            "{at}"
        );
        assert!(s.server.list("autoscaling/v2", "HorizontalPodAutoscaler").is_empty(), "{at}");
        assert!(s.server.list("policy/v1", "PodDisruptionBudget").is_empty(), "{at}");
        assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").is_none(), "{at}");
        let parent = s.server.get("v1", "Secret", Some("trainstack-system"), "trainstack-kind-dev").unwrap();
        let nss =
            parent["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"].to_string();
        assert!(!nss.contains("carol"), "the parent shrinks after the prune: {nss}\n{at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_apply_cut_off_after_the_parent_leaves_no_member_without_it() {
    let s = Scenario::start().await;
    // Cut off after a few real writes: every member written must be listed by a parent.
    s.server.add_fault(FaultRule::down_from_nth_write(12));
    s.test(&["apply", "--no-wait", "--concurrency", "1"]).status(1).run_async().await;
    s.server.clear_faults();
    let parent = s.server.get("v1", "Secret", Some("trainstack-system"), "trainstack-kind-dev");
    let parent = parent.expect("the parent is written before any member");
    let annotation = |key: &str| -> Vec<String> {
        let v = parent["metadata"]["annotations"][key].as_str().unwrap_or_default();
        v.split(',').map(str::to_string).collect()
    };
    let gks = annotation("applyset.kubernetes.io/contains-group-kinds");
    let nss = annotation("applyset.kubernetes.io/additional-namespaces");
    let id = applyset_id(&s.server);
    for (api, kind) in
        [("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ResourceQuota"), ("v1", "ConfigMap")]
    {
        for o in s.server.list(api, kind) {
            if o["metadata"]["labels"][PART_OF] != id {
                continue;
            }
            assert!(gks.iter().any(|g| g == kind), "{kind} not in {gks:?}");
            if let Some(ns) = o["metadata"]["namespace"].as_str() {
                assert!(ns == "trainstack-system" || nss.iter().any(|n| n == ns), "{ns} not in {nss:?}");
            }
        }
    }
}
