//! What the API server says, passed on to the user: `Warning` headers (Pod Security, deprecated
//! versions) per object on diff and apply, counted, and failing the run with
//! `--warnings-as-errors`; a workload whose pods cannot be created shows why in `status`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::Scenario;
use crate::harness::{crd_addons_overlay, Output};
use crate::support::apiserver::ApiServer;

/// A Deployment with no securityContext: it violates the `restricted` level the platform
/// namespace enforces and warns about.
const UNHARDENED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidecar-demo
  namespace: trainstack-system
spec:
  replicas: 1
  selector:
    matchLabels: {app: sidecar-demo}
  template:
    metadata:
      labels: {app: sidecar-demo}
    spec:
      containers:
        - name: app
          image: busybox:1.36
";

/// A CRD whose v1alpha1 is served but deprecated, and an object of that version.
const DEPRECATED: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1alpha1
      served: true
      storage: false
      deprecated: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: example.com/v1alpha1
kind: Widget
metadata:
  name: w1
  namespace: trainstack-system
spec:
  size: 1
";

const PSS_WARNING: &str = "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

/// The environment applied once, then the objects of `addon` added as a local add-on.
async fn applied_then(addon: &str) -> Scenario {
    let s = Scenario::start().await;
    let first = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(
        !first.stdout.lines().any(|l| l.starts_with("    Warning: ")),
        "the shipped templates draw no warning: {}",
        first.stdout
    );
    with_addon(&s, addon);
    s
}

/// Adds the objects of `addon` to the scenario's environment as a local add-on.
fn with_addon(s: &Scenario, addon: &str) {
    std::fs::write(s.path("extra-addon.yaml"), addon).unwrap();
    let overlay = format!(
        "{}  - name: extra\n    version: v1.0.0\n    source: {{file: {}}}\n",
        crd_addons_overlay(),
        s.path("extra-addon.yaml").display()
    );
    std::fs::write(s.path("crds.yaml"), overlay).unwrap();
}

/// The line after `object_line` in the text report.
fn line_after<'a>(out: &'a Output, object_line: &str) -> &'a str {
    let mut lines = out.stdout.lines();
    lines
        .by_ref()
        .find(|l| *l == object_line)
        .unwrap_or_else(|| panic!("no {object_line:?} in\n{}", out.stdout));
    lines.next().unwrap_or_default()
}

fn change<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diff_and_apply_show_each_objects_server_warnings_and_count_them() {
    let s = applied_then(&format!("{UNHARDENED}---\n{DEPRECATED}")).await;

    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert_eq!(
        line_after(&diff, "+ Deployment trainstack-system/sidecar-demo (create)"),
        format!("    Warning: {PSS_WARNING}")
    );
    assert!(diff.stdout.lines().last().unwrap().ends_with(" 0 failed, 1 warning"), "{}", diff.stdout);

    let apply = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(
        line_after(&apply, "+ Deployment trainstack-system/sidecar-demo (create)"),
        format!("    Warning: {PSS_WARNING}")
    );
    // Its CRD went in with this apply: the custom resource is dry-run and written in its phase.
    assert_eq!(
        line_after(&apply, "+ Widget trainstack-system/w1 (create)"),
        "    Warning: example.com/v1alpha1 Widget is deprecated"
    );
    assert!(apply.stdout.lines().last().unwrap().ends_with(" 0 failed, 2 warnings"), "{}", apply.stdout);
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "sidecar-demo").is_some());

    // In sync now, the fast path decides both objects locally and sends no request that could
    // draw a warning; the full dry-run still shows what the server says about them.
    let fast = s.test(&["diff", "-o", "json"]).status(0).run_async().await;
    let report: Value = serde_json::from_str(&fast.stdout).unwrap();
    assert_eq!(report["summary"]["warnings"], 0, "{report}");
    let json = s.test(&["diff", "--server-dry-run-all", "-o", "json"]).status(0).run_async().await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["summary"]["warnings"], 2, "{report}");
    assert_eq!(change(&report, "Deployment", "sidecar-demo")["warnings"], serde_json::json!([PSS_WARNING]));
    assert_eq!(
        change(&report, "Widget", "w1")["warnings"],
        serde_json::json!(["example.com/v1alpha1 Widget is deprecated"])
    );
    assert_eq!(change(&report, "Deployment", "mlflow")["warnings"], serde_json::json!([]));
    let text = s.run(&["diff", "--server-dry-run-all"]).await;
    assert_eq!(
        line_after(&text, "= Deployment trainstack-system/sidecar-demo (unchanged)"),
        format!("    Warning: {PSS_WARNING}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warnings_as_errors_exits_1_and_apply_writes_nothing() {
    let s = applied_then(UNHARDENED).await;

    let diff = s.test(&["diff", "--warnings-as-errors"]).status(1).run_async().await;
    assert!(diff.stdout.contains(&format!("    Warning: {PSS_WARNING}")), "{}", diff.stdout);
    assert!(
        diff.stderr.contains("error: the API server sent 1 warning (--warnings-as-errors)"),
        "{}",
        diff.stderr
    );

    s.server.reset_writes();
    let apply = s.test(&["apply", "--no-wait", "--warnings-as-errors"]).status(1).run_async().await;
    assert_eq!(s.server.writes().total(), 0, "nothing is written: {}", apply.stdout);
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "sidecar-demo").is_none());
    assert_eq!(
        line_after(
            &apply,
            "! Deployment trainstack-system/sidecar-demo failed: the API server warned about it and --warnings-as-errors is set; nothing was written"
        ),
        format!("    Warning: {PSS_WARNING}")
    );
    let json =
        s.test(&["apply", "--no-wait", "--warnings-as-errors", "-o", "json"]).status(1).run_async().await;
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["summary"]["warnings"], 1, "{report}");
    assert_eq!(report["summary"]["failed"], 1, "{report}");
    assert_eq!(s.server.writes().total(), 0);
}

/// On a fresh cluster the namespace of the warned object does not exist before the apply, so
/// the dry-run pass cannot see the warning: the object is refused just before its own write,
/// after the earlier phases, and nothing after it is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warnings_as_errors_on_a_fresh_cluster_refuses_the_object_before_its_write() {
    let s = Scenario::start().await;
    with_addon(&s, UNHARDENED);
    let apply = s.test(&["apply", "--no-wait", "--warnings-as-errors"]).status(1).run_async().await;
    assert_eq!(
        line_after(
            &apply,
            "! Deployment trainstack-system/sidecar-demo failed: the API server warned about it and --warnings-as-errors is set; nothing was written"
        ),
        format!("    Warning: {PSS_WARNING}")
    );
    assert!(s.server.get("apps/v1", "Deployment", Some("trainstack-system"), "sidecar-demo").is_none());
    assert!(s.server.get("v1", "Namespace", None, "trainstack-system").is_some(), "earlier phases went in");
    assert!(
        s.server.get("trainer.kubeflow.org/v1alpha1", "TrainJob", Some("alice"), "ddp-cpu").is_none(),
        "the phases after the operators phase were not applied"
    );
}

/// Polls until `cond` holds (the double's controllers act shortly after a write).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_why_a_workload_cannot_create_its_pods() {
    let statefulset = UNHARDENED
        .replace("kind: Deployment", "kind: StatefulSet")
        .replace("  replicas: 1\n", "  replicas: 1\n  serviceName: sidecar-demo\n");
    let job = "apiVersion: batch/v1
kind: Job
metadata:
  name: stuck-job
  namespace: trainstack-system
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: app
          image: busybox:1.36
";
    let s =
        applied_then(&format!("{UNHARDENED}---\n{}---\n{job}", statefulset.replace("sidecar-demo", "stuck")))
            .await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let server: &ApiServer = &s.server;
    eventually("the FailedCreate events and conditions", || {
        server.list("v1", "Event").iter().filter(|e| e["reason"] == "FailedCreate").count() == 3
            && server
                .get("apps/v1", "Deployment", Some("trainstack-system"), "sidecar-demo")
                .is_some_and(|d| d["status"]["conditions"].to_string().contains("ReplicaFailure"))
    })
    .await;

    let out = s.test(&["status", "-o", "json"]).status(2).run_async().await;
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let ready = |object: &str| -> String {
        let row = rows.as_array().unwrap().iter().find(|r| r["object"] == object);
        row.unwrap_or_else(|| panic!("no {object} in {rows}"))["ready"].as_str().unwrap().to_string()
    };
    let refused =
        "is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false";
    let sts = ready("StatefulSet/trainstack-system/stuck");
    assert!(
        sts.starts_with("pending: 0/1 replicas ready; FailedCreate: create Pod stuck-0 in StatefulSet stuck failed error: pods \"stuck-0\" ")
            && sts.contains(refused),
        "{sts}"
    );
    let deploy = ready("Deployment/trainstack-system/sidecar-demo");
    assert!(
        deploy.starts_with("pending: 0/1 replicas available, 0 updated; FailedCreate: pods \"sidecar-demo-")
            && deploy.contains(refused),
        "{deploy}"
    );
    let job = ready("Job/trainstack-system/stuck-job");
    assert!(
        job.starts_with("pending: no pod created; FailedCreate: Error creating: pods \"stuck-job-")
            && job.contains(refused),
        "{job}"
    );
    let table = s.run(&["status"]).await;
    assert!(table.stdout.contains(&sts), "the table shows it too: {}", table.stdout);
}
