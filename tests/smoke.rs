//! `trainstack smoke` against the API server double after `trainstack apply` of the kind
//! environment: every applicable check passes on a healthy platform, and each failure path
//! (broken RBAC, a TrainJob that never completes, a GPU pool without GPUs, a failing Ray job,
//! an unsupported version) is reported as a failed check with a useful reason, in the table,
//! JSON and JUnit.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::Scenario;
use crate::harness::Output;
use crate::support::apiserver::{ApiServer, Run};
use crate::support::pyservers::{self, free_port};
use crate::support::pytools;

const SMOKE_NS: &str = "trainstack-smoke";

/// Applies the kind environment and reports the RayCluster ready (the double has no KubeRay
/// operator), so the platform is healthy before smoke runs.
async fn applied() -> Scenario {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.server.set_status(
        "ray.io/v1",
        "RayCluster",
        Some("trainstack-system"),
        "ray",
        json!({"state": "ready"}),
    );
    s
}

/// Routes the rendered MLflow and Ray dashboard Services to real servers on 127.0.0.1.
pub(crate) async fn route_platform_services(server: &ApiServer) {
    let (mlflow, ray) = tokio::join!(pyservers::shared_mlflow(), pyservers::shared_ray());
    server.route_service("trainstack-system", "mlflow", 5000, &mlflow.address());
    server.route_service("trainstack-system", "ray-dashboard", 8265, &ray.address());
}

/// Serves alice's HPO workspace from the shared real storage server and dashboard, with trial
/// pods running the batch ConfigMap's runner. After `apply`: the shipped quick-start batch it
/// applies is left to the workload stand-in, since its default Python 3.8 image pins a client
/// the runner would pip-install.
pub(crate) async fn serve_hpo_workspace(server: &ApiServer) {
    crate::hpo_cli::shared_workspace().await.serve(server);
}

/// The row of check `name` in smoke's table.
pub(crate) fn row<'o>(out: &'o Output, name: &str) -> &'o str {
    out.stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {}", out.stdout))
}

/// Smoke's table of a healthy kind platform: every check passed but gpu (no GPUs on kind), and
/// hpo as `hpo` says.
pub(crate) fn assert_healthy_table(out: &Output, hpo: &str) {
    for (name, result) in [
        ("cluster", "passed"),
        ("objects", "passed"),
        ("rbac", "passed"),
        ("gpu", "skipped"),
        ("trainer", "passed"),
        ("mlflow", "passed"),
        ("ray", "passed"),
        ("hpo", hpo),
    ] {
        let row = row(out, name);
        assert_eq!(row.split_whitespace().nth(1), Some(result), "{row}\n{}", out.stdout);
    }
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["check"] == name).unwrap()
}

/// Nothing of any smoke run is left: no smoke namespace, no labelled pods, TrainJobs, trial
/// batch Jobs or ConfigMaps, no ApplySet parent of a smoke batch.
pub(crate) fn assert_cleaned_up(server: &ApiServer) {
    assert!(server.get("v1", "Namespace", None, SMOKE_NS).is_none(), "smoke namespace left behind");
    let labelled = |o: &Value| o.pointer("/metadata/labels/trainstack.io~1smoke").is_some();
    assert!(!server.list("v1", "Pod").iter().any(labelled), "smoke pods left behind");
    assert!(!server.list("batch/v1", "Job").iter().any(labelled), "smoke trial batch Jobs left behind");
    assert!(!server.list("v1", "ConfigMap").iter().any(labelled), "smoke trial batch ConfigMaps left behind");
    let parents: Vec<Value> = server
        .list("v1", "Secret")
        .into_iter()
        .filter(|s| s["metadata"]["name"].as_str().is_some_and(|n| n.contains("-hpo-smoke-")))
        .collect();
    assert!(parents.is_empty(), "smoke batch ApplySet parents left behind: {parents:#?}");
    if server
        .get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "trainjobs.trainer.kubeflow.org")
        .is_some()
    {
        assert!(
            !server.list("trainer.kubeflow.org/v1alpha1", "TrainJob").iter().any(labelled),
            "smoke TrainJobs left"
        );
    }
}

/// Parses a JUnit file with `junitparser` (a standard parser, pinned in
/// tests/requirements.txt) and returns, per testcase, its name and result.
pub(crate) fn parse_junit(path: &std::path::Path) -> Vec<(String, String, String)> {
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    for case in suite:
        kind, message = "passed", ""
        for r in case.result:
            kind = "failed" if isinstance(r, Failure) else "skipped" if isinstance(r, Skipped) else "error"
            message = r.message or ""
        out.append([case.name, kind, message, case.system_out or ""])
print(json.dumps({"suites": len(list(xml)), "cases": out}))
"#;
    let out = std::process::Command::new(pytools::tool("python"))
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run python");
    assert!(out.status.success(), "junitparser failed: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["suites"], 1, "one testsuite");
    parsed["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |i: usize| c[i].as_str().unwrap().to_string();
            (s(0), s(1), format!("{}\n{}", s(2), s(3)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_platform_passes_every_applicable_check_and_leaves_nothing_behind() {
    let s = applied().await;
    route_platform_services(&s.server).await;
    serve_hpo_workspace(&s.server).await;
    s.server.run_trainjobs(Run::Succeed { log: "trainstack smoke: TrainJob ran\n".into() });
    let junit = s.path("smoke.xml");
    let out = s
        .test(&["smoke", "--junit", junit.to_str().unwrap(), "--timeout", "60s"])
        .status(0)
        .run_async()
        .await;
    assert_healthy_table(&out, "passed");
    assert!(out.stdout.contains("server v1.33.1 within 1.33-1.34"), "{}", out.stdout);
    assert!(out.stdout.contains("kind has no GPUs"), "{}", out.stdout);
    assert!(out.stdout.contains("removed Namespace trainstack-smoke"), "{}", out.stdout);
    // Progress went to stderr while the checks ran.
    assert!(out.stderr.contains("smoke: trainer passed"), "{}", out.stderr);

    let cases = parse_junit(&junit);
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["cluster", "objects", "rbac", "gpu", "trainer", "mlflow", "ray", "hpo"]);
    let trainer = cases.iter().find(|c| c.0 == "trainer").unwrap();
    assert_eq!(trainer.1, "passed");
    // The TrainJob's pod log is captured.
    assert!(trainer.2.contains("trainstack smoke: TrainJob ran"), "{}", trainer.2);
    assert_eq!(cases.iter().find(|c| c.0 == "gpu").unwrap().1, "skipped");
    // The MLflow round trip and the Ray job ran against the real servers.
    let mlflow = cases.iter().find(|c| c.0 == "mlflow").unwrap();
    assert!(mlflow.2.contains("downloaded the artifact"), "{}", mlflow.2);
    let ray = cases.iter().find(|c| c.0 == "ray").unwrap();
    assert!(ray.2.contains("SUCCEEDED") && ray.2.contains("CPU"), "{}", ray.2);
    let hpo = cases.iter().find(|c| c.0 == "hpo").unwrap();
    assert!(
        hpo.2.contains("3 trials of study trainstack-smoke-") && hpo.2.contains("==> pod alice/hpo-smoke-"),
        "{}",
        hpo.2
    );
    assert_cleaned_up(&s.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_down_and_ray_unreachable_fail_their_checks_in_the_junit_file() {
    let s = applied().await;
    // Both Services point at ports nothing listens on.
    s.server.route_service("trainstack-system", "mlflow", 5000, &format!("127.0.0.1:{}", free_port()));
    s.server.route_service("trainstack-system", "ray-dashboard", 8265, &format!("127.0.0.1:{}", free_port()));
    let junit = s.path("smoke.xml");
    let out = s
        .test(&["smoke", "--only", "mlflow,ray", "--timeout", "10s", "--junit", junit.to_str().unwrap()])
        .status(1)
        .run_async()
        .await;
    let row = |name: &str| out.stdout.lines().find(|l| l.starts_with(name)).unwrap().to_string();
    assert!(row("mlflow").contains("failed") && row("mlflow").contains("health"), "{}", out.stdout);
    assert!(row("ray").contains("failed") && row("ray").contains("dashboard"), "{}", out.stdout);
    let cases = parse_junit(&junit);
    for name in ["mlflow", "ray"] {
        let case = cases.iter().find(|c| c.0 == name).unwrap();
        assert_eq!(case.1, "failed", "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ray_job_failing_fails_the_ray_check_with_its_logs_in_the_junit_file() {
    let s = applied().await;
    // A real Ray head whose job drivers get a Python without Ray (as with an image that lacks
    // it): the dashboard answers, the smoke job is accepted and then FAILED by Ray itself.
    let bin = tempfile::tempdir().unwrap();
    let python = bin.path().join("python");
    std::fs::write(&python, format!("#!/bin/sh\nexec {} -I -S \"$@\"\n", pytools::tool("python").display()))
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ray = pyservers::ray_head_with_driver_path(bin.path()).await;
    s.server.route_service("trainstack-system", "ray-dashboard", 8265, &ray.address());
    let junit = s.path("smoke.xml");
    let out = s
        .test(&["smoke", "--only", "ray", "--timeout", "60s", "--junit", junit.to_str().unwrap()])
        .status(1)
        .run_async()
        .await;
    ray.assert_running();
    let row = row(&out, "ray");
    assert!(row.contains("failed") && row.contains("FAILED"), "{}", out.stdout);
    let cases = parse_junit(&junit);
    let case = cases.iter().find(|c| c.0 == "ray").unwrap();
    assert_eq!(case.1, "failed", "{case:?}");
    assert!(case.2.contains("FAILED"), "the failure message names Ray's job status: {case:?}");
    assert!(case.2.contains("No module named 'ray'"), "the job's own output is captured: {case:?}");
    assert_cleaned_up(&s.server);
}

/// A platform with MLflow basic auth on (admin Secret `smoke-admin`, no ingress, as on kind):
/// only its namespace exists, and the Secret when `password` is given.
fn basic_auth_platform(s: &Scenario, password: Option<&str>) {
    s.overlay("components:\n  mlflow:\n    auth: {enabled: true, admin_secret: smoke-admin}\n");
    s.server.seed(
        "kubectl",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "trainstack-system"}}),
    );
    if let Some(password) = password {
        s.server.seed(
            "kubectl",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "smoke-admin", "namespace": "trainstack-system"},
                "stringData": {"username": pyservers::MLFLOW_ADMIN.0, "password": password, "flask_secret_key": "k"}}),
        );
    }
}

/// `smoke --only mlflow -o json --mlflow-url` the basic-auth server, and its mlflow result.
async fn smoke_basic_auth_mlflow(s: &Scenario) -> Value {
    let url = format!("http://{}", pyservers::shared_mlflow_with_basic_auth().await.address());
    let out = s.run(&["smoke", "--only", "mlflow", "-o", "json", "--mlflow-url", &url]).await;
    check(&json_of(&out), "mlflow").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_basic_auth_round_trip_goes_to_the_mlflow_url_as_the_admin_of_the_secret() {
    let s = Scenario::start().await;
    basic_auth_platform(&s, None);
    let mlflow = smoke_basic_auth_mlflow(&s).await;
    assert_eq!(mlflow["status"], "failed", "{mlflow}");
    assert_eq!(mlflow["reason"], "Secret trainstack-system/smoke-admin does not exist", "{mlflow}");
    assert!(mlflow["hint"].as_str().unwrap().contains("keys username and password"), "{mlflow}");

    basic_auth_platform(&s, Some(pyservers::MLFLOW_ADMIN.1));
    let mlflow = smoke_basic_auth_mlflow(&s).await;
    assert_eq!(mlflow["status"], "passed", "{mlflow}");
    let url = format!("http://{}", pyservers::shared_mlflow_with_basic_auth().await.address());
    assert_eq!(
        mlflow["summary"],
        format!("health and an experiment/run/param/metric/artifact round trip at {url} as user smoke-admin")
    );
    let steps = mlflow["steps"].to_string();
    for step in ["created experiment", "uploaded artifact", "downloaded the artifact", "deleted experiment"] {
        assert!(steps.contains(step), "{step}: {steps}");
    }
    // Nothing went through the service proxy (the Service has no route: it could not have).
    assert!(!s.server.requests().iter().any(|r| r.path.contains("/services/mlflow")), "proxied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_basic_auth_with_a_wrong_password_fails_at_the_first_authenticated_step() {
    let s = Scenario::start().await;
    basic_auth_platform(&s, Some("not-the-admin-password"));
    let mlflow = smoke_basic_auth_mlflow(&s).await;
    assert_eq!(mlflow["status"], "failed", "{mlflow}");
    let reason = mlflow["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("create experiment: POST /api/2.0/mlflow/experiments/create: HTTP 401"),
        "{reason}"
    );
    let hint = mlflow["hint"].as_str().unwrap();
    assert!(
        hint.contains("MLflow did not accept user smoke-admin of Secret trainstack-system/smoke-admin"),
        "{hint}"
    );
    // /health needs no credentials and passed.
    assert!(mlflow["logs"].as_str().unwrap().contains("GET /health -> 200"), "{mlflow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_basic_auth_without_ingress_or_mlflow_url_is_skipped_saying_what_to_pass() {
    let s = Scenario::start().await;
    basic_auth_platform(&s, Some(pyservers::MLFLOW_ADMIN.1));
    let out = s.test(&["smoke", "--only", "mlflow", "-o", "json"]).status(0).run_async().await;
    let mlflow = check(&json_of(&out), "mlflow").clone();
    assert_eq!(mlflow["status"], "skipped", "{mlflow}");
    let why = mlflow["why"].as_str().unwrap();
    assert!(why.contains("cannot sign in through the service proxy"), "{why}");
    assert!(why.contains("components.mlflow.ingress is disabled"), "{why}");
    assert!(why.contains("pass --mlflow-url URL"), "{why}");
    assert!(s.server.requests().iter().all(|r| !r.path.contains("/services/mlflow")), "nothing was sent");
}

#[test]
fn a_bad_mlflow_url_is_refused_before_anything_runs() {
    crate::harness::Test::in_repo()
        .args(&[
            "smoke",
            "-e",
            "environments/base.yaml",
            "-e",
            "environments/kind.yaml",
            "--mlflow-url",
            "mlflow.example.com",
        ])
        .status(1)
        .stderr_contains("invalid value 'mlflow.example.com' for '--mlflow-url <URL>'")
        .stderr_contains("write e.g. https://mlflow.example.com")
        .run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_rolebinding_fails_the_rbac_check_naming_the_binding() {
    let s = applied().await;
    // Someone rebinds the backend's tenant RoleBinding to another account.
    s.server.seed(
        "kubectl-edit",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "trainjob-backend", "namespace": "alice"},
            "subjects": [{"kind": "ServiceAccount", "name": "someone-else", "namespace": "trainstack-system"}]}),
    );
    let junit = s.path("smoke.xml");
    let out =
        s.test(&["smoke", "--only", "rbac", "--junit", junit.to_str().unwrap()]).status(1).run_async().await;
    let row = "ServiceAccount trainstack-system/trainjob-backend may create trainjobs.trainer.kubeflow.org in namespace alice: denied; the environment grants it through RoleBinding alice/trainjob-backend (roleRef trainjob-backend-role)";
    assert!(out.stdout.contains(row), "{}", out.stdout);
    assert!(out.stdout.contains("(and 6 more in the steps); look at RoleBinding alice/trainjob-backend (roleRef trainjob-backend-role)\n"), "{}", out.stdout);
    assert!(out.stdout.contains("look at: compare the named bindings"), "{}", out.stdout);
    // team-vision's binding is intact, so only alice's rows fail.
    assert!(!out.stdout.contains("in namespace team-vision: denied"), "{}", out.stdout);

    let cases = parse_junit(&junit);
    let rbac = cases.iter().find(|c| c.0 == "rbac").unwrap();
    assert_eq!(rbac.1, "failed");
    assert!(rbac.2.contains("RoleBinding alice/trainjob-backend"), "{}", rbac.2);
    assert_eq!(cases.iter().filter(|c| c.1 == "skipped").count(), 7, "{cases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_into_another_tenant_fails_the_rbac_check_naming_what_allowed_it() {
    let s = applied().await;
    s.server.seed(
        "kubectl-create",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "helpful-colleague", "namespace": "team-vision"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "trainjob-backend-role"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:alice"}]}),
    );
    let out = s.test(&["smoke", "--only", "rbac", "-o", "json"]).status(1).run_async().await;
    let report = json_of(&out);
    let rbac = check(&report, "rbac");
    assert_eq!(rbac["status"], "failed");
    let reason = rbac["reason"].as_str().unwrap();
    assert!(
        reason.contains("ServiceAccount alice/trainer may not create trainjobs.trainer.kubeflow.org in namespace team-vision: allowed (RBAC: allowed by RoleBinding \"helpful-colleague/team-vision\" of ClusterRole \"trainjob-backend-role\" to Group \"system:serviceaccounts:alice\")"),
        "{reason}"
    );
    let steps: Vec<&str> = rbac["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(steps.len(), 3, "create trainjobs, get pods, get configmaps: {steps:?}");
    // Secrets are not in that role, so that row still holds; the full matrix is in the logs.
    assert!(!steps.iter().any(|s| s.contains("secrets")), "{steps:?}");
    assert!(
        rbac["logs"]
            .as_str()
            .unwrap()
            .contains("ok    ServiceAccount alice/trainer may not get secrets in namespace team-vision"),
        "{rbac}"
    );
    assert_eq!(report["summary"], json!({"passed": 0, "failed": 1, "skipped": 7}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_between_tenants_that_are_not_neighbours_in_the_list_is_found() {
    // Three tenants: alice -> carol is not a successor pair in the list (a ring would check
    // alice -> team-vision -> carol -> alice only), and is still checked.
    let s = Scenario::start().await;
    s.overlay("components:\n  tenants:\n    list:\n      - name: alice\n        hpo: {enabled: true}\n      - name: team-vision\n      - name: carol\n");
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.server.seed(
        "kubectl-create",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "shared-secrets", "namespace": "carol"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "trainer", "namespace": "alice"}]}),
    );
    s.server.seed(
        "kubectl-create",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    );
    let out = s.test(&["smoke", "--only", "rbac", "-o", "json"]).status(1).run_async().await;
    let report = json_of(&out);
    let rbac = check(&report, "rbac");
    let reason = rbac["reason"].as_str().unwrap();
    assert!(
        reason.contains("ServiceAccount alice/trainer may not get secrets in namespace carol: allowed"),
        "{reason}"
    );
    let logs = rbac["logs"].as_str().unwrap();
    for (who, ns) in
        [("alice", "team-vision"), ("carol", "alice"), ("team-vision", "alice"), ("carol", "team-vision")]
    {
        assert!(
            logs.contains(&format!(
                "ok    ServiceAccount {who}/trainer may not get secrets in namespace {ns}"
            )),
            "every ordered pair is checked, {who} -> {ns} missing: {logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trainjob_that_never_completes_fails_with_the_timeout_and_is_cleaned_up() {
    let s = applied().await;
    s.server.run_trainjobs(Run::Hang);
    let junit = s.path("smoke.xml");
    let out = s
        .test(&["smoke", "--only", "trainer", "--timeout", "2s", "--junit", junit.to_str().unwrap()])
        .status(1)
        .run_async()
        .await;
    let row = out.stdout.lines().find(|l| l.starts_with("trainer")).unwrap();
    assert!(row.contains("not Complete after 2s (not Complete yet)"), "{row}");
    assert!(row.contains("-node-0-0-") && row.contains("is Running"), "{row}");
    assert!(
        out.stdout.contains("look at: kubectl -n trainstack-smoke describe trainjob smoke-"),
        "{}",
        out.stdout
    );
    let cases = parse_junit(&junit);
    let trainer = cases.iter().find(|c| c.0 == "trainer").unwrap();
    assert_eq!(trainer.1, "failed");
    assert!(trainer.2.contains("not Complete after 2s"), "{}", trainer.2);
    assert_cleaned_up(&s.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_trainjob_reports_the_controller_message_and_the_pod_log() {
    let s = applied().await;
    s.server.run_trainjobs(Run::Fail {
        log: "Traceback: ModuleNotFoundError: No module named 'torch'\n".into(),
        message: "jobset failed: 1 pod failed".into(),
    });
    let out = s.test(&["smoke", "--only", "trainer", "-o", "json"]).status(1).run_async().await;
    let report = json_of(&out);
    let trainer = check(&report, "trainer");
    let reason = trainer["reason"].as_str().unwrap();
    assert!(reason.contains("TrainJob failed: JobsFailed: jobset failed: 1 pod failed"), "{reason}");
    assert!(reason.contains("exited 1"), "{reason}");
    assert!(trainer["logs"].as_str().unwrap().contains("No module named 'torch'"), "{trainer}");
    assert_cleaned_up(&s.server);
}

/// The kind environment turned into an EKS one with a managed GPU pool `gpu` of at least one
/// node (rendered only: the gpu check needs nothing applied); alice's HPO workspace gets the
/// ReadWriteMany class an eks target needs.
const EKS: &str = "name: eks-smoke\ntarget: {kind: eks, region: us-east-1}\ncomponents:\n  hpo:\n    storage: {class_name: efs-sc, access_mode: ReadWriteMany}\n  gpu:\n    provider: managed_node_groups\n    pools:\n      - {name: gpu, min_size: 1, desired_size: 1, max_size: 2}\n";

fn gpu_node_labels() -> Value {
    json!({"trainstack.io/pool": "gpu", "nvidia.com/gpu.present": "true"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gpu_pool_with_no_allocatable_gpus_fails_the_gpu_check() {
    let s = Scenario::start().await;
    s.overlay(EKS);
    s.server.add_node("gpu-node-1", gpu_node_labels(), Some(0));
    let junit = s.path("smoke.xml");
    let out =
        s.test(&["smoke", "--only", "gpu", "--junit", junit.to_str().unwrap()]).status(1).run_async().await;
    assert!(
        out.stdout.contains("node gpu-node-1 of pool gpu reports allocatable nvidia.com/gpu 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("look at: the device plugin is not advertising GPUs on gpu-node-1"),
        "{}",
        out.stdout
    );
    let cases = parse_junit(&junit);
    assert_eq!(cases.iter().find(|c| c.0 == "gpu").unwrap().1, "failed");
    assert_cleaned_up(&s.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gpu_check_passes_with_gpu_nodes_a_ready_device_plugin_and_nvidia_smi() {
    let s = Scenario::start().await;
    s.overlay(EKS);
    s.server.add_node("gpu-node-1", gpu_node_labels(), Some(4));
    s.server.run_pods(Run::Succeed {
        log: "NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4\n".into(),
    });
    s.server.seed(
        "trainstack",
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nvidia-device-plugin", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": "p"}}, "template": {"metadata": {"labels": {"app": "p"}},
            "spec": {"containers": [{"name": "p", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"}]}}}}),
    );
    let out = s.test(&["smoke", "--only", "gpu", "-o", "json"]).status(0).run_async().await;
    let gpu = check(&json_of(&out), "gpu").clone();
    assert_eq!(gpu["status"], "passed", "{gpu}");
    let steps: Vec<&str> = gpu["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(steps.contains(&"pool gpu: node gpu-node-1 has 4 allocatable nvidia.com/gpu"), "{steps:?}");
    assert!(steps.contains(&"DaemonSet kube-system/nvidia-device-plugin: 1/1 pods ready"), "{steps:?}");
    assert!(gpu["logs"].as_str().unwrap().contains("NVIDIA-SMI 550.54.15"), "{gpu}");
    // The pod asked for a GPU on a GPU node.
    let pod = s.server.requests();
    assert!(pod.iter().any(|r| r.method == "POST" && r.path == "/api/v1/namespaces/trainstack-smoke/pods"));
    assert_cleaned_up(&s.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_and_skip_pick_the_checks_and_unknown_names_are_rejected() {
    let s = Scenario::start().await;
    let out = s.test(&["smoke", "--only", "cluster", "-o", "json"]).status(0).run_async().await;
    let report = json_of(&out);
    assert_eq!(check(&report, "cluster")["status"], "passed");
    for name in ["objects", "rbac", "gpu", "trainer", "mlflow", "ray"] {
        assert_eq!(check(&report, name)["why"], "not selected by --only", "{report}");
    }

    let out = s
        .test(&["smoke", "--skip", "objects,rbac,mlflow,ray", "--skip", "trainer,hpo", "-o", "json"])
        .status(0)
        .run_async()
        .await;
    let report = json_of(&out);
    assert_eq!(check(&report, "trainer")["why"], "left out by --skip");
    assert_eq!(check(&report, "gpu")["status"], "skipped");
    assert_eq!(report["summary"], json!({"passed": 1, "failed": 0, "skipped": 7}));
    let out = s.test(&["smoke", "--only", "cluster", "-o", "yaml"]).status(0).run_async().await;
    assert!(out.stdout.contains("- check: cluster\n    status: passed\n"), "{}", out.stdout);

    let out = s.test(&["smoke", "--only", "cluster,gpus"]).status(1).run_async().await;
    assert!(out.stderr.contains("invalid value 'gpus' for '--only <CHECK>'"), "{}", out.stderr);
    assert!(
        out.stderr.contains("[possible values: cluster, objects, rbac, gpu, trainer, mlflow, ray, hpo]"),
        "{}",
        out.stderr
    );
    let out = s.test(&["smoke", "--only", "cluster", "--skip", "gpu"]).status(1).run_async().await;
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    // A JUnit path that cannot be written fails before any check talks to the cluster.
    s.server.clear_requests();
    let out = s.test(&["smoke", "--junit", "no/such/dir/smoke.xml"]).status(1).run_async().await;
    assert!(
        out.stderr.contains("error: --junit no/such/dir/smoke.xml: cannot write the file:"),
        "{}",
        out.stderr
    );
    assert!(s.server.requests().is_empty(), "{:?}", s.server.requests());
    assert!(s.server.get("v1", "Namespace", None, SMOKE_NS).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_version_outside_the_environments_range_fails_the_cluster_check() {
    // The double serves v1.33.1.
    let s = Scenario::start().await;
    s.overlay("target:\n  kubernetes_version: \"1.35\"\n  node_image: kindest/node:v1.35.0\n");
    let out = s.test(&["smoke", "--only", "cluster"]).status(1).run_async().await;
    assert!(
        out.stdout.contains(
            "server v1.33.1 is outside the supported range 1.35-1.36 (target.kubernetes_version 1.35)"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("older Kubernetes than the environment declares"), "{}", out.stdout);

    s.overlay("target:\n  kubernetes_version: \"1.31\"\n");
    let out = s.test(&["smoke", "--only", "cluster"]).status(1).run_async().await;
    assert!(out.stdout.contains("outside the supported range 1.31-1.32"), "{}", out.stdout);
    assert!(out.stdout.contains("set target.kubernetes_version to \"1.33\""), "{}", out.stdout);

    // One minor behind the server is the upgrade window: supported.
    s.overlay("target:\n  kubernetes_version: \"1.32\"\n");
    s.test(&["smoke", "--only", "cluster"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_cluster_fails_once_and_skips_the_rest() {
    let s = Scenario::start().await;
    let dead = ApiServer::start().await;
    let url = dead.url();
    drop(dead);
    let kubeconfig = std::fs::read_to_string(s.path("kubeconfig")).unwrap().replace(&s.server.url(), &url);
    std::fs::write(s.path("kubeconfig"), kubeconfig).unwrap();
    let out = s.test(&["smoke", "--timeout", "5s", "-o", "json"]).status(1).run_async().await;
    let report = json_of(&out);
    assert_eq!(check(&report, "cluster")["status"], "failed");
    assert!(
        check(&report, "cluster")["reason"].as_str().unwrap().starts_with("GET /version failed"),
        "{report}"
    );
    assert_eq!(check(&report, "objects")["why"], "the cluster API is unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smoke_against_an_unreachable_cluster_names_it_and_claims_no_cleanup() {
    let s = Scenario::start().await;
    let dead = ApiServer::start().await;
    let url = dead.url();
    drop(dead);
    let kubeconfig = std::fs::read_to_string(s.path("kubeconfig")).unwrap().replace(&s.server.url(), &url);
    std::fs::write(s.path("kubeconfig"), kubeconfig).unwrap();
    let out = s.test(&["smoke", "--timeout", "5s", "-o", "json"]).status(1).run_async().await;
    let report = json_of(&out);
    let reason = check(&report, "cluster")["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "GET /version failed: cannot reach the API server {url}/ (context \"kind-trainstack\"): "
        )) && reason.contains("Connection refused"),
        "{reason}"
    );
    // It created nothing, so there is nothing to clean up and no cleanup to fail.
    assert_eq!(report["cleanup"], json!([]), "{report}");
    let text = s.test(&["smoke", "--timeout", "5s"]).status(1).run_async().await;
    for said in [&text.stdout, &text.stderr] {
        assert!(!said.contains("cleanup failed") && !said.contains("kubectl delete namespace"), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_leaves_the_smoke_objects_in_place() {
    let s = applied().await;
    s.server.run_trainjobs(Run::Succeed { log: "ok\n".into() });
    let out = s.test(&["smoke", "--only", "trainer", "--keep"]).status(0).run_async().await;
    assert!(
        out.stdout
            .contains("kept the smoke objects: kubectl -n trainstack-smoke get all -l trainstack.io/smoke=s"),
        "{}",
        out.stdout
    );
    assert!(s.server.get("v1", "Namespace", None, SMOKE_NS).is_some());
    let jobs = s.server.list("trainer.kubeflow.org/v1alpha1", "TrainJob");
    assert!(jobs.iter().any(|j| j["metadata"]["namespace"] == SMOKE_NS), "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_cleans_up_then_exits_130() {
    let s = applied().await;
    s.server.run_trainjobs(Run::Hang);
    // Spawned from the scenario's command, not run(): the test sends SIGINT mid-run.
    let child = s
        .command(&["smoke", "--only", "trainer"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the TrainJob is waited on.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !s
        .server
        .list("trainer.kubeflow.org/v1alpha1", "TrainJob")
        .iter()
        .any(|j| j["metadata"]["namespace"] == SMOKE_NS)
    {
        assert!(std::time::Instant::now() < deadline, "the smoke TrainJob never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let out = Output::from(out);
    assert_eq!(out.code, 130, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("smoke: interrupted; removing the smoke objects"), "{}", out.stderr);
    assert!(out.stderr.contains("removed Namespace trainstack-smoke"), "{}", out.stderr);
    assert_cleaned_up(&s.server);
}

/// The double's SubjectAccessReviews follow the RBAC authorizer's matching rules.
#[tokio::test]
async fn double_evaluates_subject_access_reviews_like_rbac() {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let server = ApiServer::start().await;
    for ns in ["a", "b"] {
        server.seed("t", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    server.seed("t", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "logs"},
        "rules": [{"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]},
                  {"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["*"], "resourceNames": ["only-this"]}]}));
    server.seed("t", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pods", "namespace": "a"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}));
    // A ServiceAccount subject without a namespace means the binding's namespace.
    server.seed("t", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}));
    server.seed("t", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "logs"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:a"}]}));
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(server.client());
    let ask = |ns: &str, verb: &str, resource: &str, sub: &str, name: &str| {
        let sar: SubjectAccessReview = serde_json::from_value(json!({"spec": {
            "user": "system:serviceaccount:a:sa", "groups": ["system:serviceaccounts", "system:serviceaccounts:a"],
            "resourceAttributes": {"namespace": ns, "verb": verb, "group": "", "resource": resource, "subresource": sub, "name": name}}}))
        .unwrap();
        let api = api.clone();
        async move { api.create(&Default::default(), &sar).await.unwrap().status.unwrap() }
    };
    let s = ask("a", "list", "pods", "", "").await;
    assert!(s.allowed);
    assert_eq!(
        s.reason.as_deref(),
        Some("RBAC: allowed by RoleBinding \"rb/a\" of Role \"pods\" to ServiceAccount \"sa/a\"")
    );
    assert!(!ask("b", "list", "pods", "", "").await.allowed, "a RoleBinding grants only in its namespace");
    assert!(!ask("a", "get", "pods", "", "").await.allowed, "verbs must match");
    assert!(
        ask("b", "get", "pods", "log", "").await.allowed,
        "*/log matches any log subresource, via the group"
    );
    assert!(!ask("b", "get", "pods", "", "").await.allowed, "a subresource rule does not grant the resource");
    assert!(
        ask("b", "delete", "configmaps", "", "only-this").await.allowed,
        "resourceNames with a wildcard verb"
    );
    assert!(!ask("b", "delete", "configmaps", "", "other").await.allowed, "other names are not granted");
    assert!(
        !ask("b", "list", "configmaps", "", "").await.allowed,
        "a named rule does not grant unnamed requests"
    );
}
