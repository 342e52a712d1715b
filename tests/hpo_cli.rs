//! `trainstack hpo run|status`, the `hpo` smoke check and the API double's trial pod runner,
//! against the double, a real Optuna gRPC storage server and a real optuna-dashboard; trial
//! pods run as local processes, a rendered batch's pods its real `runner.py`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::OnceCell;

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

/// Tenant alice's HPO workspace as the kind environment declares it, on the double: the
/// `hpo-storage` and `hpo-dashboard` Services routed to a real Optuna gRPC storage server and a
/// real optuna-dashboard, and trial pods run as local processes (the batch ConfigMap's
/// `runner.py` with the pod's env) whose `hpo-artifacts` claim is the dashboard's artifact store.
pub(crate) struct Workspace {
    pub storage: PyServer,
    pub dashboard: PyServer,
    volumes: tempfile::TempDir,
}

impl Workspace {
    pub async fn start() -> Workspace {
        let volumes = tempfile::tempdir().expect("volumes");
        let journal = volumes.path().join(NS).join("hpo-journal");
        let artifacts = volumes.path().join(NS).join("hpo-artifacts");
        for dir in [&journal, &artifacts] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let storage = pyservers::optuna_storage(&journal.join("journal.log")).await;
        let dashboard = pyservers::optuna_dashboard(&storage.address(), &artifacts).await;
        Workspace { storage, dashboard, volumes }
    }

    /// The directory behind alice's `hpo-artifacts` claim.
    pub fn artifacts(&self) -> PathBuf {
        self.volumes.path().join(NS).join("hpo-artifacts")
    }

    /// Points `server` at this workspace: it runs trial pods against it, and alice's workspace
    /// Services (applied or seeded) reach its servers.
    pub fn serve(&self, server: &ApiServer) {
        server
            .run_trial_pods(PodRunner { python: tool("python"), volumes: self.volumes.path().to_path_buf() });
        server.route_service(NS, "hpo-storage", 13000, &self.storage.address());
        server.route_service(NS, "hpo-dashboard", 8080, &self.dashboard.address());
    }
}

/// One healthy workspace for the tests that only need the hpo check to pass along the others
/// (smoke of a healthy platform, `up`); every smoke run has a study of its own in it.
pub(crate) async fn shared_workspace() -> &'static Workspace {
    static WORKSPACE: OnceCell<Workspace> = OnceCell::const_new();
    WORKSPACE.get_or_init(Workspace::start).await
}

/// alice's namespace and workspace Services as `apply` of the kind environment leaves them.
fn seed_workspace_services(server: &ApiServer) {
    server.seed("kubectl", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
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
}

/// The kind environment on a double whose alice workspace is `ws`.
async fn scenario_with_workspace(ws: &Workspace) -> ClusterScenario {
    let server = ApiServer::start().await;
    seed_workspace_services(&server);
    ws.serve(&server);
    ClusterScenario::with(server)
}

/// A batch spec of alice's in the scenario's directory, with its objective. The image's Python
/// takes the server's Optuna 5.0.0 client, which the test virtualenv holds, so the runner
/// installs nothing.
fn write_batch(
    s: &ClusterScenario,
    name: &str,
    study: &str,
    objective: &str,
    trials: u32,
    parallelism: u32,
) -> String {
    std::fs::write(
        s.path(&format!("{name}.yaml")),
        format!(
            "tenant: {NS}\nstudy: {study}\ndirection: minimize\nobjective_file: {name}.py\nn_trials: {trials}\nparallelism: {parallelism}\nruntime_image: python:3.11-slim\nresources:\n  cpu: {{request: 100m}}\n  memory: {{request: 256Mi}}\n"
        ),
    )
    .unwrap();
    std::fs::write(s.path(&format!("{name}.py")), objective).unwrap();
    s.path(&format!("{name}.yaml")).display().to_string()
}

/// The value is the trial's index (so the best trial is known), the note says which index ran
/// on which pod, and index 1 raises.
const OBJECTIVE: &str = r#"
def objective(trial):
    import os

    import trainstack_hpo

    index = int(os.environ["JOB_COMPLETION_INDEX"])
    trainstack_hpo.TrialController(trial).log("index {} on {}".format(index, os.environ["POD_NAME"]))
    x = trial.suggest_float("x", float(index), float(index))
    if index == 1:
        raise ValueError("index 1 always fails")
    return x + 0.5
"#;

/// A document of the workspace's dashboard, read through the double's service proxy.
pub(crate) async fn dashboard_get(server: &ApiServer, path: &str) -> Value {
    let uri = format!("/api/v1/namespaces/{NS}/services/hpo-dashboard:8080/proxy{path}");
    server
        .client()
        .request::<Value>(http::Request::get(uri).body(Vec::new()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("GET {path} on the dashboard: {e}"))
}

/// The dashboard's document of study `name`, if it exists.
pub(crate) async fn dashboard_study(server: &ApiServer, name: &str) -> Option<Value> {
    let list = dashboard_get(server, "/api/studies").await;
    let id =
        list["study_summaries"].as_array()?.iter().find(|s| s["study_name"] == name)?["study_id"].as_i64()?;
    Some(dashboard_get(server, &format!("/api/studies/{id}")).await)
}

fn user_attr<'t>(trial: &'t Value, key: &str) -> Option<&'t str> {
    trial["user_attrs"].as_array()?.iter().find(|a| a["key"] == key)?["value"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpo_run_waits_for_every_trial_of_the_real_runner_and_hpo_status_reads_them_and_exits_1_without_the_dashboard(
) {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    let batch = write_batch(&s, "b1", "s1", OBJECTIVE, 3, 2);

    let run = s.test(&["hpo", "run", "--wait", "all", &batch]).status(0).run_async().await;
    for line in [
        "batch alice/b1 (study s1): finished",
        "  pods:      3 trials, 0 running, 2 succeeded, 1 failed (hpo-b1)",
        "  trials:    2 complete, 1 failed, 0 pruned, 0 running, 0 waiting",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in:\n{}\n{}", run.stdout, ws.storage.log_tail());
    }
    let job = s.server.get("batch/v1", "Job", Some(NS), "hpo-b1").expect("the batch's Job");
    assert_eq!(job["status"]["failedIndexes"], "1", "{:#}", job["status"]);

    // Each pod ran the ConfigMap's runner.py, which set pod_name to the pod and put the
    // objective's logged line in the trial's note; index 1's traceback is in its pod's log.
    let pods = s.server.list("v1", "Pod");
    assert_eq!(pods.len(), 3, "{pods:#?}");
    let study = dashboard_study(&s.server, "s1").await.expect("study s1");
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let index =
            pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().unwrap();
        let log = s.server.pod_log(NS, name);
        assert!(log.contains(&format!("runs on pod {name}")), "{log}");
        assert_eq!(log.contains("ValueError: index 1 always fails"), index == "1", "{log}");
        let trial = study["trials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| user_attr(t, "pod_name") == Some(name))
            .unwrap_or_else(|| panic!("no trial names pod {name}: {study:#}"));
        assert_eq!(user_attr(trial, "trialbatch_name"), Some("b1"));
        let note = trial["note"]["body"].as_str().unwrap_or_default();
        assert!(note.contains(&format!("index {index} on {name}")), "{note}");
    }

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

    // Without the dashboard the pods are still shown, and the exit code says the trials are not.
    s.server.unroute_service(NS, "hpo-dashboard", 8080);
    s.test(&["hpo", "status"])
        .status(1)
        .stdout_contains("  pods:      3 trials, 0 running, 2 succeeded, 1 failed (hpo-b1)")
        .stdout_contains("trials:    unknown: the dashboard could not be read: GET /api/studies: no ready endpoints for service alice/hpo-dashboard")
        .run_async()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpo_run_wait_one_returns_when_the_first_real_trial_ends_while_the_others_still_run() {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    // Index 0 ends at once; the others take long enough to be running when `hpo run` returns.
    const STAGGERED: &str = r#"
def objective(trial):
    import os
    import time

    if os.environ["JOB_COMPLETION_INDEX"] != "0":
        time.sleep(20)
    return trial.suggest_float("x", 0.0, 1.0)
"#;
    let batch = write_batch(&s, "b2", "s2", STAGGERED, 3, 3);

    let out = s.test(&["hpo", "run", "--wait", "one", &batch]).status(0).run_async().await;
    let job = s.server.get("batch/v1", "Job", Some(NS), "hpo-b2").expect("the batch's Job");
    assert_eq!(
        (job["status"]["succeeded"].as_i64(), job["status"]["active"].as_i64()),
        (Some(1), Some(2)),
        "{:#}",
        job["status"]
    );
    assert!(out.stdout.contains("batch alice/b2 (study s2): running"), "{}", out.stdout);
    assert!(
        out.stdout.contains("  trials:    1 complete, 0 failed, 0 pruned, 2 running, 0 waiting"),
        "{}",
        out.stdout
    );
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
    let s = ClusterScenario::with(ApiServer::start().await);
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

/// Smoke's report of a run, from `-o json`.
fn report_of(out: &crate::harness::Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
}

/// The `hpo` entry of a smoke report.
fn hpo_check(report: &Value) -> &Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "hpo").expect("an hpo entry")
}

/// Nothing the hpo check created is left: batch objects, ApplySet parent, smoke studies and
/// their artifacts.
async fn assert_no_smoke_batch_left(server: &ApiServer, ws: &Workspace) {
    crate::smoke::assert_cleaned_up(server);
    let studies = dashboard_get(server, "/api/studies").await;
    let left: Vec<&Value> = studies["study_summaries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["study_name"].as_str().is_some_and(|n| n.starts_with("trainstack-smoke-")))
        .collect();
    assert!(left.is_empty(), "smoke studies left: {left:#?}");
    let files: Vec<_> = std::fs::read_dir(ws.artifacts()).unwrap().collect();
    assert!(files.is_empty(), "artifacts left: {files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_runs_three_real_trials_proves_pods_notes_and_artifacts_and_removes_batch_and_study() {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    let junit = s.path("smoke.xml");
    let out = s
        .test(&[
            "smoke",
            "--only",
            "hpo",
            "-o",
            "json",
            "--junit",
            junit.to_str().unwrap(),
            "--timeout",
            "90s",
        ])
        .status(0)
        .run_async()
        .await;
    let report = report_of(&out);
    let hpo = hpo_check(&report);
    assert_eq!(hpo["status"], "passed", "{hpo:#}");
    let summary = hpo["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("3 trials of study trainstack-smoke-")
            && summary.contains(" COMPLETE in workspace alice from pods hpo-smoke-")
            && summary.ends_with("with notes and 3 artifact(s)"),
        "{summary}"
    );
    let steps: Vec<&str> = hpo["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(steps[0] == "storage Service alice/hpo-storage has 1 ready endpoint(s)", "{steps:#?}");
    assert!(steps[1] == "dashboard alice/hpo-dashboard answers", "{steps:#?}");
    assert!(
        steps[2].starts_with("applied batch alice/smoke-") && steps[2].ends_with("3 trials, parallelism 2)"),
        "{steps:#?}"
    );
    let trials = steps.iter().filter(|s| {
        s.contains(" COMPLETE on pod hpo-smoke-") && s.ends_with("note holds its log line; 1 artifact(s)")
    });
    assert_eq!(trials.count(), 3, "{steps:#?}");
    assert!(steps.iter().any(|s| s.starts_with("deleted study trainstack-smoke-") && s.ends_with("and its 3 artifact(s)")), "{steps:#?}");
    assert!(steps.last().unwrap().starts_with("deleted batch alice/smoke-"), "{steps:#?}");
    // The runner's own lines from each pod are in the captured logs.
    let logs = hpo["logs"].as_str().unwrap();
    assert_eq!(logs.matches("==> pod alice/hpo-smoke-").count(), 3, "{logs}");
    assert!(logs.contains("trainstack smoke: trial 0 ran on pod hpo-smoke-"), "{logs}");
    // The Job ran at most two trials at once and its pods are the ones the trials name.
    let job = s.server.list("batch/v1", "Job");
    assert!(job.is_empty(), "the batch's Job is removed: {job:#?}");

    let cases = crate::smoke::parse_junit(&junit);
    let hpo_case = cases.iter().find(|c| c.0 == "hpo").expect("an hpo testcase");
    assert_eq!(hpo_case.1, "passed", "{cases:?}");
    assert!(hpo_case.2.contains("deleted batch alice/smoke-"), "{}", hpo_case.2);
    assert!(cases.iter().filter(|c| c.0 != "hpo").all(|c| c.1 == "skipped"), "{cases:?}");
    assert_no_smoke_batch_left(&s.server, &ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_fails_at_once_naming_the_storage_when_its_service_has_no_ready_endpoints() {
    let server = ApiServer::start().await;
    seed_workspace_services(&server);
    // The storage pod was ready once; now nothing serves the Service.
    server.route_service(NS, "hpo-storage", 13000, &format!("127.0.0.1:{}", pyservers::free_port()));
    server.unroute_service(NS, "hpo-storage", 13000);
    let s = ClusterScenario::with(server);
    let started = Instant::now();
    let out = s.test(&["smoke", "--only", "hpo", "-o", "json"]).status(1).run_async().await;
    let hpo = hpo_check(&report_of(&out)).clone();
    assert_eq!(hpo["status"], "failed", "{hpo:#}");
    assert_eq!(
        hpo["reason"],
        "storage down: Service alice/hpo-storage has no ready endpoints, so trials cannot report"
    );
    assert_eq!(
        hpo["hint"],
        "the Optuna gRPC storage server is not serving, so no trial can report: kubectl -n alice get pods -l app.kubernetes.io/name=hpo-storage; kubectl -n alice logs deploy/hpo-storage (its journal is on PVC hpo-journal)"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "no trial waited for the storage");
    assert!(s.server.list("batch/v1", "Job").is_empty(), "no batch was applied");
    assert!(s.server.list("v1", "ConfigMap").iter().all(|c| c["metadata"]["name"] != "hpo-smoke"));
}

/// Makes a directory unwritable for the trial pods until dropped: `chmod` where the tests do not
/// run as root, `chattr +i` where they do (root ignores modes).
struct Unwritable(PathBuf);

impl Unwritable {
    fn new(dir: PathBuf) -> Unwritable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let guard = Unwritable(dir);
        if guard.writable() {
            let chattr = std::process::Command::new("chattr").arg("+i").arg(&guard.0).status();
            assert!(
                chattr.is_ok_and(|s| s.success()) && !guard.writable(),
                "cannot make {} unwritable as root: chattr +i needs CAP_LINUX_IMMUTABLE and ext4/xfs",
                guard.0.display()
            );
        }
        guard
    }

    fn writable(&self) -> bool {
        let probe = self.0.join(".probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(probe);
        ok
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_fails_with_the_trials_error_when_the_objective_raises_and_still_cleans_up() {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    // The artifact volume turned read-only: the built-in objective's upload raises.
    let _readonly = Unwritable::new(ws.artifacts());
    let out =
        s.test(&["smoke", "--only", "hpo", "-o", "json", "--timeout", "90s"]).status(1).run_async().await;
    let hpo = hpo_check(&report_of(&out)).clone();
    assert_eq!(hpo["status"], "failed", "{hpo:#}");
    let reason = hpo["reason"].as_str().unwrap();
    for number in 0..3 {
        assert!(reason.contains(&format!("trial {number} ended FAIL: PermissionError: [Errno ")), "{reason}");
    }
    assert!(reason.contains(&ws.artifacts().display().to_string()), "the error names the path: {reason}");
    let hint = hpo["hint"].as_str().unwrap();
    assert!(hint.contains("the artifact store at /artifacts, PVC hpo-artifacts"), "{hint}");
    assert!(hint.contains("kubectl -n alice get pods -l trainstack.io/hpo-batch=smoke-"), "{hint}");
    // The traceback is in the pods' logs the check captured.
    assert!(hpo["logs"].as_str().unwrap().contains("Traceback (most recent call last)"), "{hpo:#}");
    let steps: Vec<&str> = hpo["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    // Optuna recorded each artifact before its write failed; optuna-dashboard cannot delete the
    // study with those records, so the check deletes it without them and says which they are.
    let deleted = steps
        .iter()
        .find(|s| s.starts_with("deleted study trainstack-smoke-"))
        .expect("the study is deleted");
    assert!(
        deleted
            .contains(" without its artifacts, which the dashboard could not remove (DELETE /api/studies/"),
        "{deleted}"
    );
    assert!(deleted.contains("may remain in PVC hpo-artifacts"), "{deleted}");
    assert!(steps.last().unwrap().starts_with("deleted batch alice/smoke-"), "{steps:#?}");
    assert_no_smoke_batch_left(&s.server, &ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_is_skipped_when_no_tenant_has_a_workspace() {
    let s = ClusterScenario::with(ApiServer::start().await);
    s.overlay("components:\n  hpo: {enabled: false, batches_dir: null}\n  tenants:\n    list: [{name: alice}, {name: team-vision}]\n");
    let out = s.test(&["smoke", "--only", "hpo", "-o", "json"]).status(0).run_async().await;
    let hpo = hpo_check(&report_of(&out)).clone();
    assert_eq!(
        hpo,
        json!({"check": "hpo", "status": "skipped", "why": "components.hpo.enabled is false", "duration": 0.0, "steps": [], "logs": ""})
    );
    s.overlay("components:\n  hpo: {batches_dir: null}\n  tenants:\n    list: [{name: alice}, {name: team-vision}]\n");
    let out = s.test(&["smoke", "--only", "hpo", "-o", "json"]).status(0).run_async().await;
    assert_eq!(
        hpo_check(&report_of(&out))["why"],
        "no tenant has an HPO workspace (tenants.<name>.hpo.enabled)"
    );
    assert!(s.server.list("batch/v1", "Job").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_interrupted_by_ctrl_c_removes_its_batch_and_exits_130() {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    // The storage accepts connections but never answers gRPC: trials wait for it, and the
    // check waits for them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.server.route_service(NS, "hpo-storage", 13000, &silent.local_addr().unwrap().to_string());
    let child = s
        .command(&["smoke", "--only", "hpo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.server.list("v1", "Pod").iter().any(|p| p["status"]["phase"] == "Running") {
        assert!(Instant::now() < deadline, "no smoke trial pod started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let out = crate::harness::Output::from(out);
    assert_eq!(out.code, 130, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("smoke: interrupted; removing the smoke objects"), "{}", out.stderr);
    assert!(out.stderr.contains("  hpo check: deleted batch alice/smoke-"), "{}", out.stderr);
    assert_no_smoke_batch_left(&s.server, &ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_hpo_with_keep_leaves_its_batch_and_study_and_says_where() {
    let ws = Workspace::start().await;
    let s = scenario_with_workspace(&ws).await;
    let out = s
        .test(&["smoke", "--only", "hpo", "--keep", "-o", "json", "--timeout", "90s"])
        .status(0)
        .run_async()
        .await;
    let report = report_of(&out);
    let hpo = hpo_check(&report);
    assert_eq!(hpo["status"], "passed", "{hpo:#}");
    let run_id = report["run_id"].as_str().unwrap();
    let kept = hpo["steps"].as_array().unwrap().last().unwrap().as_str().unwrap();
    assert_eq!(
        kept,
        format!("kept batch alice/smoke-{run_id} (kubectl -n alice get jobs,configmaps -l trainstack.io/smoke={run_id}) and study trainstack-smoke-{run_id} (its dashboard)")
    );
    let job =
        s.server.get("batch/v1", "Job", Some(NS), &format!("hpo-smoke-{run_id}")).expect("the Job is kept");
    assert_eq!(job["metadata"]["labels"]["trainstack.io/smoke"], run_id);
    let study =
        dashboard_study(&s.server, &format!("trainstack-smoke-{run_id}")).await.expect("the study is kept");
    assert_eq!(study["trials"].as_array().unwrap().len(), 3);
}
