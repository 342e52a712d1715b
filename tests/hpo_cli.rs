//! `trainstack hpo run|status` and the API double's trial pod runner, against the double, a
//! real Optuna gRPC storage server and a real optuna-dashboard; trial pods run as local
//! processes.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use trainstack::trials::wait::{self, Wait};

use crate::harness::ClusterScenario;
use crate::support::apiserver::{ApiServer, PodRunner};
use crate::support::pyservers::{self, PyServer};
use crate::support::pytools::tool;

const NS: &str = "alice";

/// A double that runs trial pods, their PVCs below `volumes`.
async fn double_running_trials(volumes: &Path) -> ApiServer {
    let server = ApiServer::builder()
        .run_trial_pods(PodRunner { python: tool("python"), volumes: volumes.to_path_buf() })
        .start()
        .await;
    server.seed("kubectl", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    server
}

/// The objects of a trial batch as the contract renders them: ConfigMap `hpo-<batch>` mounted at
/// /etc/trainstack/hpo, an Indexed Job running `python /etc/trainstack/hpo/<entry>`.
fn batch_objects(
    batch: &str,
    files: &[(&str, &str)],
    entry: &str,
    completions: i64,
    parallelism: i64,
) -> (Value, Value) {
    let name = format!("hpo-{batch}");
    let labels = json!({"trainstack.io/hpo-batch": batch, "trainstack.io/hpo-study": "s1"});
    let data: serde_json::Map<String, Value> = files.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let configmap = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": data,
    });
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimitPerIndex": 0,
            "maxFailedIndexes": completions,
            "template": {
                "metadata": {"labels": {"trainstack.io/hpo-trial": "true", "trainstack.io/hpo-batch": batch, "trainstack.io/hpo-study": "s1"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "trial",
                        "image": "python:3.11-slim",
                        "command": ["python", format!("/etc/trainstack/hpo/{entry}")],
                        "env": [
                            {"name": "TRAINSTACK_HPO_STORAGE", "value": format!("hpo-storage.{NS}.svc:13000")},
                            {"name": "TRAINSTACK_HPO_BATCH_FILE", "value": "/etc/trainstack/hpo/batch.json"},
                            {"name": "TRAINSTACK_HPO_ARTIFACTS", "value": "/artifacts"},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "volumeMounts": [
                            {"name": "hpo", "mountPath": "/etc/trainstack/hpo/", "readOnly": true},
                            {"name": "artifacts", "mountPath": "/artifacts"},
                        ],
                    }],
                    "volumes": [
                        {"name": "hpo", "configMap": {"name": name}},
                        {"name": "artifacts", "persistentVolumeClaim": {"claimName": "hpo-artifacts"}},
                    ],
                },
            },
        },
    });
    (configmap, job)
}

/// Polls until `done` holds for the Job, or panics after `limit` with its last state.
async fn wait_for_job(
    server: &ApiServer,
    name: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let job = server.get("batch/v1", "Job", Some(NS), name).expect("the job exists");
        if done(&job) {
            return job;
        }
        assert!(
            start.elapsed() < limit,
            "job {name} did not get there within {limit:?}: {:#}",
            job["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter().any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    })
}

fn condition_types(job: &Value) -> Vec<(String, String)> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Each index records when it ran in the shared artifacts volume; index 1 fails.
const WORK: &str = r#"
import os, sys, time
index = int(os.environ["JOB_COMPLETION_INDEX"])
out = os.path.join(os.environ["TRAINSTACK_HPO_ARTIFACTS"], "runs")
os.makedirs(out, exist_ok=True)
start = time.time()
time.sleep(0.6)
with open(os.path.join(out, str(index)), "w") as f:
    f.write(f"{os.environ['POD_NAME']} {start} {time.time()} {os.path.exists(os.environ['TRAINSTACK_HPO_BATCH_FILE'])}\n")
print(f"trial {index} done")
sys.exit(1 if index == 1 else 0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_pods_run_each_index_as_a_process_within_parallelism_and_the_job_fails_on_failed_indexes() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let (configmap, job) = batch_objects("b1", &[("work.py", WORK), ("batch.json", "{}")], "work.py", 4, 2);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);

    let job = wait_for_job(&server, "hpo-b1", Duration::from_secs(60), finished).await;

    let status = &job["status"];
    assert_eq!(
        (status["succeeded"].as_i64(), status["failed"].as_i64(), status["active"].as_i64()),
        (Some(3), Some(1), Some(0)),
        "{status:#}"
    );
    assert_eq!(status["completedIndexes"], "0,2-3");
    assert_eq!(status["failedIndexes"], "1");
    assert_eq!(
        condition_types(&job),
        [
            ("FailureTarget".to_string(), "FailedIndexes".to_string()),
            ("Failed".to_string(), "FailedIndexes".to_string())
        ]
    );
    assert!(status.get("completionTime").is_none(), "a failed Job has no completionTime: {status:#}");

    // One pod per index, named and annotated as the Job controller names them; their phases
    // follow the exit codes, and the log is the container's output.
    let pods: Vec<Value> = server.list("v1", "Pod");
    assert_eq!(pods.len(), 4, "{pods:#?}");
    let runs = volumes.path().join(NS).join("hpo-artifacts").join("runs");
    let mut spans = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let index =
            pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("hpo-b1-{index}-")) && name.len() == "hpo-b1-0-".len() + 5,
            "{name}"
        );
        assert_eq!(pod["metadata"]["labels"]["trainstack.io/hpo-trial"], "true");
        assert_eq!(pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], index);
        assert_eq!(pod["status"]["phase"], if index == "1" { "Failed" } else { "Succeeded" }, "{pod:#}");
        assert!(pod["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty()), "{pod:#}");
        let record = std::fs::read_to_string(runs.join(index)).expect("the trial wrote its record");
        let fields: Vec<&str> = record.split_whitespace().collect();
        assert_eq!(fields[0], name, "POD_NAME is the pod's name");
        assert_eq!(fields[3], "True", "the ConfigMap keys are files under the mount path");
        spans.push((fields[1].parse::<f64>().unwrap(), fields[2].parse::<f64>().unwrap()));
    }
    let most_at_once = spans.iter().map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count()).max();
    assert_eq!(most_at_once, Some(2), "parallelism 2: {spans:?}");
}

/// Runs until killed.
const SLEEP: &str = "import time\nprint('started', flush=True)\ntime.sleep(600)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_trial_pod_kills_its_process_and_fails_its_index() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let (configmap, job) = batch_objects("b2", &[("sleep.py", SLEEP)], "sleep.py", 1, 1);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);
    wait_for_job(&server, "hpo-b2", Duration::from_secs(30), |j| j["status"]["active"] == 1).await;
    let pod = loop {
        if let Some(p) = server.list("v1", "Pod").into_iter().find(|p| p["status"]["phase"] == "Running") {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();

    let started = Instant::now();
    server
        .client()
        .request::<Value>(
            http::Request::delete(format!("/api/v1/namespaces/{NS}/pods/{name}")).body(Vec::new()).unwrap(),
        )
        .await
        .expect("delete the pod");

    let job = wait_for_job(&server, "hpo-b2", Duration::from_secs(20), finished).await;
    assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM stopped the process at once");
    assert_eq!(job["status"]["failedIndexes"], "0", "{:#}", job["status"]);
    assert_eq!(condition_types(&job).last().map(|c| c.0.as_str()), Some("Failed"));
    assert!(server.get("v1", "Pod", Some(NS), &name).is_none(), "the counted pod is gone");
}

/// A tenant's workspace on the double: the storage and dashboard Services, routed to a real
/// Optuna gRPC storage server and a real optuna-dashboard sharing the pods' artifact volume.
struct Workspace {
    storage: PyServer,
    dashboard: PyServer,
    /// Kept until the servers stop: the dashboard's artifact store lives in it.
    _volumes: tempfile::TempDir,
}

async fn workspace(server: &ApiServer, volumes: tempfile::TempDir) -> Workspace {
    let journal = volumes.path().join(NS).join("hpo-journal");
    let artifacts = volumes.path().join(NS).join("hpo-artifacts");
    for dir in [&journal, &artifacts] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let storage = pyservers::optuna_storage(&journal.join("journal.log")).await;
    let dashboard = pyservers::optuna_dashboard(&storage.address(), &artifacts).await;
    for (name, port, port_name) in [("hpo-storage", 13000, "grpc"), ("hpo-dashboard", 8080, "http")] {
        server.seed(
            "trainstack",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"ports": [{"name": port_name, "port": port, "targetPort": port}], "selector": {"app.kubernetes.io/name": name}},
            }),
        );
    }
    server.route_service(NS, "hpo-storage", 13000, &storage.address());
    server.route_service(NS, "hpo-dashboard", 8080, &dashboard.address());
    Workspace { storage, dashboard, _volumes: volumes }
}

/// The objective of the test batches: the value is the trial's index (so the best trial is
/// known), and index 1 raises.
const OBJECTIVE: &str = r#"
import os
def objective(trial):
    index = float(os.environ["JOB_COMPLETION_INDEX"])
    x = trial.suggest_float("x", index, index)
    if index == 1:
        raise ValueError("index 1 always fails")
    return x + 0.5
"#;

/// Seeds batch `batch` of study `study` (3 trials, parallelism 2) running the trial workload.
fn seed_batch(server: &ApiServer, batch: &str, study: &str) {
    let spec = json!({
        "batch": batch, "study": study, "directions": ["minimize"],
        "sampler": {"name": "TPESampler", "params": {}}, "pruner": {"name": "MedianPruner", "params": {}},
        "top_n_artifacts": 5, "objective": "objective.py", "requirements": "requirements.txt", "optuna_version": "5.0.0",
    })
    .to_string();
    let trial = std::fs::read_to_string(crate::harness::repo().join("tests/fixtures/hpo/trial.py")).unwrap();
    let (mut configmap, mut job) = batch_objects(
        batch,
        &[("trial.py", &trial), ("objective.py", OBJECTIVE), ("batch.json", &spec), ("requirements.txt", "")],
        "trial.py",
        3,
        2,
    );
    for obj in [&mut configmap, &mut job] {
        obj["metadata"]["labels"]["trainstack.io/hpo-study"] = json!(study);
    }
    job["spec"]["template"]["metadata"]["labels"]["trainstack.io/hpo-study"] = json!(study);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);
}

fn scenario(server: ApiServer) -> ClusterScenario {
    ClusterScenario::with(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpo_status_shows_each_batchs_trials_best_value_and_dashboard_from_the_dashboard_api() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let ws = workspace(&server, volumes).await;
    seed_batch(&server, "b1", "s1");
    let job = wait_for_job(&server, "hpo-b1", Duration::from_secs(120), finished).await;
    assert_eq!(
        job["status"]["failedIndexes"],
        "1",
        "{:#}\nstorage:\n{}",
        job["status"],
        ws.storage.log_tail()
    );

    let s = scenario(server);
    let out = s.test(&["hpo", "status", "-o", "json"]).status(0).run_async().await;
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let batches = doc["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{doc:#}");
    let b = &batches[0];
    assert_eq!(
        (b["namespace"].as_str(), b["batch"].as_str(), b["study"].as_str()),
        (Some(NS), Some("b1"), Some("s1"))
    );
    assert_eq!(b["state"], "finished", "failed trials are results: {b:#}");
    assert_eq!(b["pods"], json!({"trials": 3, "active": 0, "succeeded": 2, "failed": 1}));
    assert_eq!(
        b["trials"],
        json!({"running": 0, "complete": 2, "failed": 1, "pruned": 0, "waiting": 0}),
        "{}",
        ws.dashboard.log_tail()
    );
    assert_eq!(
        b["best"],
        json!([{"number": b["best"][0]["number"], "values": [0.5], "params": {"x": "0.0"}}])
    );
    assert!(
        b["dashboard"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/namespaces/alice/services/hpo-dashboard:http/proxy/dashboard/studies/"),
        "{b:#}"
    );
    // The dashboard was read through the service proxy.
    assert!(s
        .server
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/services/hpo-dashboard:8080/proxy/api/studies") && r.status == 200));

    let text = s.test(&["hpo", "status"]).status(0).run_async().await.stdout;
    for line in [
        "batch alice/b1 (study s1): finished",
        "  pods:      3 trials, 0 running, 2 succeeded, 1 failed (hpo-b1)",
        "  trials:    2 complete, 1 failed, 0 pruned, 0 running, 0 waiting",
        "value 0.5 (x=0.0)",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    s.test(&["hpo", "status", "--batch", "other"])
        .status(0)
        .stdout_contains("no trial batches in namespaces alice, team-vision")
        .run_async()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpo_status_exits_1_naming_the_dashboard_when_it_cannot_be_read_and_still_shows_pods() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let _ws = workspace(&server, volumes).await;
    seed_batch(&server, "b1", "s1");
    wait_for_job(&server, "hpo-b1", Duration::from_secs(120), finished).await;
    server.unroute_service(NS, "hpo-dashboard", 8080);

    let s = scenario(server);
    s.test(&["hpo", "status"])
        .status(1)
        .stdout_contains("  pods:      3 trials, 0 running, 2 succeeded, 1 failed (hpo-b1)")
        .stdout_contains("trials:    unknown: the dashboard could not be read: GET /api/studies: no ready endpoints for service alice/hpo-dashboard")
        .run_async()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_one_trial_returns_before_the_batch_ends_and_all_waits_for_every_trial() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    // Index 0 ends at once; the others take seconds.
    const STAGGERED: &str =
        "import os, time\ntime.sleep(0 if os.environ['JOB_COMPLETION_INDEX'] == '0' else 4)\n";
    let (configmap, job) = batch_objects("b3", &[("work.py", STAGGERED)], "work.py", 3, 3);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);
    let client = server.client();
    let jobs = ["hpo-b3".to_string()];
    let silent = trainstack::progress::Silent;

    wait::wait(&client, NS, "b3", &jobs, Wait::One, Duration::from_secs(30), &silent)
        .await
        .expect("one trial finishes");
    let after_one = server.get("batch/v1", "Job", Some(NS), "hpo-b3").unwrap();
    assert_eq!(after_one["status"]["succeeded"], 1, "{:#}", after_one["status"]);
    assert_eq!(after_one["status"]["active"], 2);

    wait::wait(&client, NS, "b3", &jobs, Wait::All, Duration::from_secs(30), &silent)
        .await
        .expect("all finish");
    let done = server.get("batch/v1", "Job", Some(NS), "hpo-b3").unwrap();
    assert_eq!(condition_types(&done).last().map(|c| c.0.clone()), Some("Complete".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_names_what_is_still_running() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let (configmap, job) = batch_objects("b4", &[("sleep.py", SLEEP)], "sleep.py", 2, 1);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);

    let err = wait::wait(
        &server.client(),
        NS,
        "b4",
        &["hpo-b4".to_string()],
        Wait::One,
        Duration::from_secs(2),
        &trainstack::progress::Silent,
    )
    .await
    .expect_err("nothing finishes");
    assert_eq!(
        err.to_string(),
        "batch b4 did not get there within 2s: 0 of 2 trials finished, 1 running (kubectl -n alice get pods -l trainstack.io/hpo-batch=b4)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failed_for_another_reason_than_failed_indexes_fails_the_wait() {
    let volumes = tempfile::tempdir().expect("volumes");
    let server = double_running_trials(volumes.path()).await;
    let (configmap, job) = batch_objects("b5", &[("sleep.py", SLEEP)], "sleep.py", 1, 1);
    server.seed("trainstack", configmap);
    server.seed("trainstack", job);
    // After the runner's last status write before the pod ends: the condition stays.
    wait_for_job(&server, "hpo-b5", Duration::from_secs(30), |j| j["status"]["active"] == 1).await;
    let ts = "2026-01-01T00:00:00Z";
    server.set_status(
        "batch/v1",
        "Job",
        Some(NS),
        "hpo-b5",
        json!({"active": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline", "lastTransitionTime": ts}]}),
    );
    let err = wait::wait(
        &server.client(),
        NS,
        "b5",
        &["hpo-b5".to_string()],
        Wait::All,
        Duration::from_secs(5),
        &trainstack::progress::Silent,
    )
    .await
    .expect_err("the job failed");
    assert_eq!(
        err.to_string(),
        "job alice/hpo-b5 failed (DeadlineExceeded): Job was active longer than specified deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpo_run_without_the_tenants_workspace_names_the_tenant_and_namespace_and_exits_1() {
    let s = scenario(ApiServer::start().await);
    std::fs::write(
        s.path("quickstart.yaml"),
        "tenant: alice\nstudy: quickstart\nobjective_file: objective.py\n",
    )
    .unwrap();
    std::fs::write(
        s.path("objective.py"),
        "def objective(trial):\n    return trial.suggest_float(\"x\", 0, 1)\n",
    )
    .unwrap();
    let batch = s.path("quickstart.yaml").display().to_string();
    s.test(&["hpo", "run", &batch])
        .status(1)
        .stderr_contains("error: tenant alice has no HPO workspace in namespace alice (service hpo-storage not found): enable tenants.alice.hpo and run trainstack apply first")
        .run_async()
        .await;
    assert_eq!(s.server.list("batch/v1", "Job").len(), 0, "nothing of the batch was applied");
}
