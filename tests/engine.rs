//! Scenario tests of diff, apply, prune and delete: the real binary against the in-process
//! API server double, with the kind environment (and the upstream CRDs its custom resources
//! need, as local add-ons).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::Output;
use crate::support::apiserver::{ApiServer, Fault, FaultRule, MaxInFlight};

/// base + kind + CRD add-ons + an overlay, against the API double (also used by the smoke tests).
pub(crate) use crate::harness::ClusterScenario as Scenario;

fn summary(out: &Output) -> &str {
    out.stdout.lines().last().unwrap_or("")
}

/// Every stored object's (kind, namespace, name, resourceVersion) of the kinds the env renders.
fn snapshot_versions(server: &ApiServer) -> Vec<(String, String, String, String)> {
    let kinds = [
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ];
    let mut out = Vec::new();
    for (api, kind) in kinds {
        for o in server.list(api, kind) {
            let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
            out.push((
                kind.to_string(),
                s("/metadata/namespace"),
                s("/metadata/name"),
                s("/metadata/resourceVersion"),
            ));
        }
    }
    out
}

/// The double's controllers go on writing status for a moment after an apply (pods becoming
/// ready), which moves resourceVersions as on a real cluster: wait until none has moved for
/// 200 ms (at most 5 s), so that only a write by trainstack could move one afterwards.
async fn settled_versions(server: &ApiServer) -> Vec<(String, String, String, String)> {
    let mut last = snapshot_versions(server);
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = snapshot_versions(server);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_apply_then_noop_reapply_writes_nothing() {
    let s = Scenario::start().await;
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(summary(&out).starts_with("apply: "), "{}", out.stdout);
    assert!(
        summary(&out).ends_with(" created, 0 configured, 0 unchanged, 0 pruned, 0 failed"),
        "{}",
        summary(&out)
    );
    // CRDs and their custom resources went in together.
    assert!(s.server.get("trainer.kubeflow.org/v1alpha1", "TrainJob", Some("alice"), "ddp-cpu").is_some());
    assert!(s.server.get("ray.io/v1", "RayCluster", Some("trainstack-system"), "ray").is_some());
    // Every member carries the ApplySet label; the parent records the inventory.
    let mlflow = s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").unwrap();
    assert!(mlflow.pointer("/metadata/labels/applyset.kubernetes.io~1part-of").is_some());
    let parent = s.server.get("v1", "Secret", Some("trainstack-system"), "trainstack-kind-dev").unwrap();
    let gks = parent
        .pointer("/metadata/annotations/applyset.kubernetes.io~1contains-group-kinds")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(gks.contains("Deployment.apps") && gks.contains("TrainJob.trainer.kubeflow.org"), "{gks}");

    let before = settled_versions(&s.server).await;
    s.server.reset_writes();
    let again = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(s.server.writes().total(), 0, "a no-op apply writes nothing: {:?}", s.server.writes());
    assert_eq!(snapshot_versions(&s.server), before, "no resourceVersion changed");
    assert!(summary(&again).contains(" 0 created, 0 configured, "), "{}", summary(&again));

    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_changed_field_shows_exactly_that_line_and_exit_code_2() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.overlay("components:\n  tenants:\n    defaults:\n      quota:\n        pods: 60\n");
    let diff = s.test(&["diff"]).status(2).run_async().await;
    let changed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
        })
        .collect();
    // alice uses the defaults; team-vision has its own quota.
    assert_eq!(changed, vec!["-    pods: '50'", "+    pods: '60'"], "{}", diff.stdout);
    assert!(diff.stdout.contains("~ ResourceQuota alice/"), "{}", diff.stdout);
    let json = s.test(&["diff", "-o", "json"]).status(2).run_async().await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let updates: Vec<&Value> =
        v["changes"].as_array().unwrap().iter().filter(|c| c["action"] != "unchanged").collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["kind"], "ResourceQuota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removed_objects_are_pruned_and_nothing_else() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // Something trainstack did not apply, in the same namespace.
    s.server.seed(
        "kubectl-client-side-apply",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand-made", "namespace": "trainstack-system"}, "data": {"a": "b"}}),
    );
    s.overlay("components:\n  mlflow:\n    enabled: false\n");
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(diff.stdout.contains("- Deployment trainstack-system/mlflow (prune)"), "{}", diff.stdout);
    let before_deploys = s.server.list("apps/v1", "Deployment").len();
    let out = s.test(&["apply", "--no-wait", "--prune"]).status(0).run_async().await;
    let pruned: Vec<&str> =
        out.stdout.lines().filter(|l| l.starts_with("- ") && l.ends_with(" (prune)")).collect();
    assert!(!pruned.is_empty());
    assert!(pruned.iter().all(|l| l.contains("mlflow")), "only MLflow objects are pruned: {pruned:?}");
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").is_none());
    assert!(s
        .server
        .get("autoscaling/v2", "HorizontalPodAutoscaler", Some("trainstack-system"), "mlflow")
        .is_none());
    assert!(s.server.get("policy/v1", "PodDisruptionBudget", Some("trainstack-system"), "mlflow").is_none());
    assert_eq!(s.server.list("apps/v1", "Deployment").len(), before_deploys - 1);
    assert!(s.server.get("v1", "ConfigMap", Some("trainstack-system"), "hand-made").is_some());
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreign_field_manager_conflict_is_reported_and_forced_only_on_request() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // Someone else takes over the PDB's minAvailable with another value.
    s.server.seed_apply(
        "ops-team",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "mlflow", "namespace": "trainstack-system"}, "spec": {"minAvailable": 2}}),
    );
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    let failure = out
        .stdout
        .lines()
        .find(|l| l.starts_with("! PodDisruptionBudget trainstack-system/mlflow failed"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(failure.contains("409") || out.stdout.contains("conflict"), "{}", out.stdout);
    assert!(out.stdout.contains(".spec.minAvailable"), "the conflicting field is named: {}", out.stdout);
    assert!(out.stdout.contains("--force-conflicts"), "{}", out.stdout);
    let pdb = s.server.get("policy/v1", "PodDisruptionBudget", Some("trainstack-system"), "mlflow").unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], 2, "not overridden without --force-conflicts");

    s.test(&["apply", "--no-wait", "--force-conflicts"]).status(0).run_async().await;
    let pdb = s.server.get("policy/v1", "PodDisruptionBudget", Some("trainstack-system"), "mlflow").unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_by_another_field_manager_is_a_diff_naming_the_manager_and_exit_2() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // `kubectl patch` of a quota value trainstack owns: kubectl-patch takes the field over, so
    // trainstack's next (dry-run) apply of it is a 409 conflict.
    s.server.seed(
        "kubectl-patch",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "alice-quota", "namespace": "alice"}, "spec": {"hard": {"pods": "99"}}}),
    );

    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains("~ ResourceQuota alice/alice-quota (update, conflict with kubectl-patch)"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains(".spec.hard.pods"), "the conflicting field is named: {}", diff.stdout);
    let changed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
        })
        .collect();
    assert_eq!(changed, vec!["-    pods: '99'", "+    pods: '50'"], "{}", diff.stdout);
    let counts = summary(&diff);
    assert!(
        counts.starts_with("diff: 0 created, 1 configured, ") && counts.ends_with(" 0 failed"),
        "{counts}"
    );
    assert!(diff.stdout.contains(".spec.hard.pods: owned by \"kubectl-patch\""), "{}", diff.stdout);

    let json = s.test(&["diff", "-o", "json"]).status(2).run_async().await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let quota = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "ResourceQuota" && c["namespace"] == "alice")
        .unwrap();
    assert_eq!(quota["action"], "update");
    assert_eq!(quota["conflict"]["managers"], json!(["kubectl-patch"]));
    assert!(quota.get("error").is_none(), "{quota}");

    let status = s.test(&["status", "-o", "json"]).status(2).run_async().await;
    let rows: Value = serde_json::from_str(&status.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"] == "ResourceQuota/alice/alice-quota")
        .unwrap_or_else(|| panic!("{}", status.stdout));
    assert_eq!(row["state"], "drifted", "{row}");
    assert!(row["details"][0].as_str().is_some_and(|d| d.contains("conflict with kubectl-patch")), "{row}");

    // Only apply refuses it, unless told to take the field over.
    let apply = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert!(apply.stdout.contains("! ResourceQuota alice/alice-quota failed"), "{}", apply.stdout);
    assert!(apply.stdout.contains("--force-conflicts"), "{}", apply.stdout);
    let quota = s.server.get("v1", "ResourceQuota", Some("alice"), "alice-quota").unwrap();
    assert_eq!(quota["spec"]["hard"]["pods"], "99", "not overridden without --force-conflicts");
    s.test(&["apply", "--no-wait", "--force-conflicts"]).status(0).run_async().await;
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_storm_is_ridden_out() {
    let s = Scenario::start().await;
    // Every server-side apply and dry-run is throttled until 24 have been turned away.
    s.server
        .add_fault(FaultRule::new(Fault::TooManyRequests { retry_after_secs: 1 }).method("PATCH").times(24));
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let throttled = s.server.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 24);
    s.test(&["diff"]).status(0).run_async().await;
}

/// An overlay declaring `n` tenants besides the kind environment's own: about 12 objects each.
fn many_tenants(n: usize) -> String {
    let mut y =
        String::from("components:\n  tenants:\n    list:\n      - name: alice\n        hpo: {enabled: true}\n      - name: team-vision\n");
    for t in 0..n {
        y.push_str(&format!("      - name: tenant-{t}\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_under_max_in_flight_limits_converges_with_few_429s_and_no_lockstep() {
    // A server admitting 3 reads and 1 write at a time, each handled in 5 ms, against the
    // default 8 workers: kube's fixed one-second retries brought every rejected worker back at
    // once, to be rejected again (thousands of 429s for 2000 objects).
    let server = ApiServer::builder().max_in_flight(MaxInFlight { read: 3, mutating: 1 }).start().await;
    server.set_latency(Duration::from_millis(5));
    let s = Scenario::with(server);
    s.overlay(&many_tenants(30));
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let created: usize = summary(&out)
        .strip_prefix("apply: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no created count in {:?}", summary(&out)));
    assert!(created > 350, "{}", summary(&out));
    let rejected = s.server.rejected_in_flight();
    let requests = s.server.requests().len();
    eprintln!("{created} objects: {rejected} of {requests} requests rejected with 429");
    // After the first rejections the client keeps within the limits, probing upward about
    // once a second.
    assert!(rejected * 20 < created, "{rejected} 429s for {created} objects");
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_dropped_mid_apply_then_a_rerun_converges() {
    let s = Scenario::start().await;
    // After 30 writes every write's connection drops: more than the retries can absorb.
    s.server.add_fault(FaultRule::new(Fault::DropAfterProcessing).writes_only().after(30));
    let out = s.test(&["apply", "--no-wait", "--prune"]).status(1).run_async().await;
    assert!(summary(&out).contains(" 0 pruned, "), "nothing is pruned after a failure: {}", summary(&out));
    s.server.clear_faults();
    s.test(&["apply", "--no-wait", "--prune"]).status(0).run_async().await;
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_appear_in_diff_output() {
    let s = Scenario::start().await;
    let first = s.test(&["diff"]).status(2).run_async().await;
    // The dev Secrets are rendered as `data`: neither the value nor its base64 may show.
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    for secret in ["mlflow-dev-password", "minio-dev-password"] {
        for form in [secret.to_string(), b64(secret)] {
            assert!(!first.stdout.contains(&form), "{form} leaked in:\n{}", first.stdout);
        }
    }
    assert!(first.stdout.contains("<redacted"), "{}", first.stdout);
    let shown = s.run(&["diff", "--show-secrets"]).await;
    assert!(shown.stdout.contains(&b64("minio-dev-password")), "{}", shown.stdout);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // A changed secret value is marked changed, still without its value.
    let mut secret = s.server.get("v1", "Secret", Some("trainstack-system"), "minio-credentials").unwrap();
    secret["data"]["rootPassword"] = json!("b3RoZXI=");
    s.server.seed("kubectl-edit", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "minio-credentials", "namespace": "trainstack-system"}, "data": secret["data"].clone()}));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains("<redacted: after>")
            && !diff.stdout.contains("b3RoZXI=")
            && !diff.stdout.contains("minio-dev-password"),
        "{}",
        diff.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unserved_kinds_are_reported_before_anything_is_written() {
    let s = Scenario::start().await;
    // Without the CRD add-ons, TrainJobs and RayClusters have no resource.
    std::fs::write(s.path("crds.yaml"), "addons: []\n").unwrap();
    let out = s.test(&["apply"]).status(1).run_async().await;
    assert!(out.stderr.contains("the cluster does not serve these kinds"), "{}", out.stderr);
    assert!(out.stderr.contains("TrainJob alice/ddp-cpu (trainer.kubeflow.org/v1alpha1)"), "{}", out.stderr);
    assert_eq!(s.server.writes().total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waits_report_what_is_not_ready() {
    let s = Scenario::with(ApiServer::builder().workload_ready_delay(None).start().await);
    let out = s.test(&["apply", "--timeout", "2s"]).status(1).run_async().await;
    assert!(
        out.stdout.contains("! not ready: Deployment trainstack-system/mlflow: not ready after 2s"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_needs_confirmation_off_a_terminal_and_tears_down_in_reverse() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let refused = s.test(&["delete"]).status(1).run_async().await;
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").is_some());
    s.test(&["delete", "--yes", "--timeout", "20s"]).status(0).run_async().await;
    assert!(s.server.get("v1", "Namespace", None, "alice").is_none());
    assert!(s.server.get("v1", "Secret", Some("trainstack-system"), "trainstack-kind-dev").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_dry_run_lists_every_phase_and_deletes_nothing() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let listed = |out: &str| -> Vec<(String, String, String)> {
        let json: serde_json::Value = serde_json::from_str(out).expect("JSON report");
        let changes = json["changes"].as_array().expect("changes").iter();
        changes.map(|c| (c["phase"].to_string(), c["kind"].to_string(), c["name"].to_string())).collect()
    };
    let dry = s.test(&["delete", "--dry-run", "-o", "json"]).status(0).run_async().await;
    assert!(s.server.get("v1", "Namespace", None, "alice").is_some(), "a dry run deletes nothing");
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "mlflow").is_some());
    // The dry run used to stop after the first phase it listed (workloads), hiding namespaces
    // and CRDs: it must list exactly what `delete` then deletes, in the same order.
    let real = s.test(&["delete", "--yes", "--timeout", "20s", "-o", "json"]).status(0).run_async().await;
    let (would, did) = (listed(&dry.stdout), listed(&real.stdout));
    assert!(would.iter().any(|(phase, ..)| phase == "\"namespaces\""), "{would:?}");
    assert!(would.iter().any(|(phase, ..)| phase == "\"crds\""), "{would:?}");
    assert_eq!(would, did);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_lost_mid_apply_is_named_and_its_error_not_repeated_per_object() {
    let s = Scenario::start().await;
    // The API server goes away early in the config phase, where many objects are in flight.
    s.server.add_fault(FaultRule::down_from_nth_write(24));
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    let failed: Vec<&str> =
        out.stdout.lines().filter(|l| l.starts_with("! ") && l.contains(" failed: ")).collect();
    assert!(!failed.is_empty() && failed.len() <= 3, "{}", out.stdout);
    let server = s.server.url();
    let named = format!("cannot reach the API server {}", server.trim_end_matches('/'));
    assert!(failed.iter().all(|l| l.contains(&named)), "{named}\n{}", out.stdout);
    let more: Vec<&str> =
        out.stdout.lines().filter(|l| l.contains("more objects failed the same way: ")).collect();
    assert_eq!(more.len(), 1, "{}", out.stdout);
    assert!(more[0].contains(&named), "{}", out.stdout);
    let failures: usize =
        summary(&out).rsplit(", ").next().and_then(|f| f.strip_suffix(" failed")).unwrap().parse().unwrap();
    assert!(failures > 3, "the summary still counts every failed object: {}", summary(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_mid_apply_says_what_was_written_and_a_rerun_completes_it() {
    let s = Scenario::start().await;
    s.server.set_latency(std::time::Duration::from_millis(40));
    // Spawned from the scenario's command, not run(): the test sends SIGINT mid-run.
    let child = s
        .command(&["apply", "--no-wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.server.writes().total() < 12 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out: Output =
        tokio::task::spawn_blocking(move || Output::from(child.wait_with_output().unwrap())).await.unwrap();
    assert_eq!(out.code, 130, "{}\n{}", out.stdout, out.stderr);
    let line =
        out.stderr.lines().find(|l| l.starts_with("interrupted: apply stopped after ")).unwrap_or_else(
            || {
                panic!("no interrupted summary: {}", out.stderr);
            },
        );
    let n: usize = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(n >= 1, "{line}");
    assert!(out.stderr.contains("+ Secret trainstack-system/trainstack-kind-dev (create)"), "{}", out.stderr);
    assert!(out.stderr.contains("run the same apply again to finish it"), "{}", out.stderr);
    s.server.set_latency(std::time::Duration::ZERO);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_says_why_an_object_is_in_error() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // Every read of one object fails on the server: the list of its kind (so the engine falls
    // back to reading it alone) and the object itself.
    for path in [
        "/apis/policy/v1/poddisruptionbudgets",
        "/apis/policy/v1/namespaces/trainstack-system/poddisruptionbudgets",
    ] {
        s.server.add_fault(FaultRule::new(Fault::ServerError(500)).method("GET").path_prefix(path));
    }
    let out = s.test(&["status", "-o", "json"]).status(2).run_async().await;
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"] == "PodDisruptionBudget/trainstack-system/mlflow")
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["state"], "error", "{row}");
    let details = row["details"].as_array().map(Vec::len).unwrap_or(0);
    assert!(details > 0, "an error row carries its reason: {row}");
    let reason = row["details"][0].as_str().unwrap();
    let text = s.run(&["status"]).await;
    assert!(text.stdout.contains(reason), "the table shows it too: {}", text.stdout);
}

/// The API path of the ApplySet parent Secret the double holds (the one carrying the ID label).
pub(crate) fn parent_secret_path(server: &ApiServer) -> String {
    let parent = server
        .list("v1", "Secret")
        .into_iter()
        .find(|s| s.pointer("/metadata/labels/applyset.kubernetes.io~1id").is_some())
        .expect("an apply wrote the ApplySet parent");
    let s = |p: &str| parent.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    format!("/api/v1/namespaces/{}/secrets/{}", s("/metadata/namespace"), s("/metadata/name"))
}

/// How many GETs of exactly `path` the double served since its log was last cleared.
pub(crate) fn gets_of(server: &ApiServer, path: &str) -> usize {
    server.requests().iter().filter(|r| r.method == "GET" && r.path == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_discovers_once_and_reads_each_object_once() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let parent = parent_secret_path(&s.server);
    s.server.clear_requests();
    let out = s.run(&["status", "-o", "json"]).await;
    assert!(out.code == 0 || out.code == 2, "{}\n{}", out.stdout, out.stderr);
    // Plan and readiness come from one pass: one discovery, one read of the parent, one GET of
    // each object (a second pass would read every object, the parent and discovery again).
    assert_eq!(gets_of(&s.server, "/api"), 1, "discovery of the core group");
    assert_eq!(gets_of(&s.server, "/apis"), 1, "discovery of the API groups");
    assert_eq!(gets_of(&s.server, &parent), 1, "the ApplySet parent is read once");
    let mut seen = std::collections::BTreeMap::new();
    for r in s.server.requests().iter().filter(|r| r.method == "GET") {
        *seen.entry(format!("{}?{}", r.path, r.query)).or_insert(0) += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "read more than once: {repeated:?}");
    // Live state comes from one list of the set's members per resource type, not a GET each.
    let mut lists = std::collections::BTreeMap::new();
    for r in s.server.requests().iter().filter(|r| r.query.contains("applyset.kubernetes.io")) {
        *lists.entry(r.path.clone()).or_insert(0) += 1;
    }
    assert!(!lists.is_empty(), "status reads live state by listing the set's members");
    assert!(lists.values().all(|n| *n == 1), "one list per resource type: {lists:?}");
}
