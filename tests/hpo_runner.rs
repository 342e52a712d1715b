//! The HPO trial runner (`hpo/runner.py`) run the way trial pods run it: from a directory laid
//! out like the batch ConfigMap, with the pod contract's env, against a real Optuna gRPC storage
//! server and a real optuna-dashboard on 127.0.0.1. Each "pod" is a local process.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

use crate::support::pyservers::{self, free_port, PyServer};
use crate::support::pytools::tool;

/// A trial batch as the batch ConfigMap mounts it: runner.py, batch.json, objective.py and
/// requirements.txt in one directory, plus the artifact store and the pip directory.
struct Batch {
    dir: tempfile::TempDir,
    artifacts: tempfile::TempDir,
    pip: tempfile::TempDir,
    study: String,
}

impl Batch {
    /// `overrides` replace keys of a small default batch (TPE, Median, one minimised objective).
    fn new(study: &str, objective: &str, overrides: Value) -> Batch {
        let dir = tempfile::tempdir().expect("batch dir");
        let mut batch = json!({
            "batch": "batch-a",
            "study": study,
            "directions": ["minimize"],
            "sampler": {"name": "TPESampler", "params": {}},
            "pruner": {"name": "MedianPruner", "params": {}},
            "top_n_artifacts": 5,
            "objective": "objective.py",
            "requirements": "requirements.txt",
            "optuna_version": "5.0.0",
        });
        for (key, value) in overrides.as_object().expect("overrides are an object") {
            batch[key] = value.clone();
        }
        std::fs::write(dir.path().join("batch.json"), batch.to_string()).expect("batch.json");
        std::fs::write(dir.path().join("objective.py"), objective).expect("objective.py");
        std::fs::write(dir.path().join("requirements.txt"), "").expect("requirements.txt");
        let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("hpo/runner.py");
        std::fs::copy(runner, dir.path().join("runner.py")).expect("runner.py");
        Batch {
            dir,
            artifacts: tempfile::tempdir().expect("artifact store"),
            pip: tempfile::tempdir().expect("pip dir"),
            study: study.to_string(),
        }
    }

    /// A trial pod's process: `python runner.py` with the contract's env.
    fn pod(&self, storage: &str, index: u32) -> Command {
        self.python_pod(storage, index, &[self.dir.path().join("runner.py").as_os_str()])
    }

    /// `python ARGS` with a trial pod's env.
    fn python_pod(&self, storage: &str, index: u32, args: &[&std::ffi::OsStr]) -> Command {
        let mut command = Command::new(tool("python"));
        command
            .args(args)
            .env("TRAINSTACK_HPO_STORAGE", storage)
            .env("TRAINSTACK_HPO_BATCH_FILE", self.dir.path().join("batch.json"))
            .env("POD_NAME", pod_name(index))
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("TRAINSTACK_HPO_ARTIFACTS", self.artifacts.path())
            .env("TRAINSTACK_HPO_GPU_MODEL", "")
            .env("TRAINSTACK_HPO_PIP_DIR", self.pip.path())
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn spawn(&self, storage: &str, index: u32) -> Child {
        self.pod(storage, index).spawn().expect("runner process")
    }

    /// Runs pods `0..count` at the same time and returns their outputs in index order.
    async fn run_pods(&self, storage: &str, count: u32) -> Vec<Output> {
        let children: Vec<Child> = (0..count).map(|i| self.spawn(storage, i)).collect();
        let mut outputs = Vec::new();
        for child in children {
            outputs.push(
                tokio::time::timeout(POD_LIMIT, child.wait_with_output())
                    .await
                    .expect("pod in time")
                    .expect("pod output"),
            );
        }
        outputs
    }

    async fn run_pod(&self, storage: &str, index: u32) -> Output {
        let child = self.spawn(storage, index);
        tokio::time::timeout(POD_LIMIT, child.wait_with_output())
            .await
            .expect("pod in time")
            .expect("pod output")
    }

    fn requirements(self, lines: &str) -> Batch {
        std::fs::write(self.dir.path().join("requirements.txt"), lines).expect("requirements.txt");
        self
    }

    fn artifact_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.artifacts.path())
            .expect("artifact dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

const POD_LIMIT: Duration = Duration::from_secs(180);

fn pod_name(index: u32) -> String {
    format!("hpo-batch-a-{index}-pod")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

/// A journal directory and the storage server on it.
async fn storage() -> (PyServer, tempfile::TempDir) {
    let journal = tempfile::tempdir().expect("journal dir");
    let server = pyservers::optuna_storage(&journal.path().join("journal.log")).await;
    (server, journal)
}

/// Runs a Python script against the storage with the virtualenv's Optuna; its stdout.
async fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new(tool("python"))
        .args(["-W", "ignore", "-c", script])
        .args(args)
        .output()
        .await
        .expect("python");
    assert!(output.status.success(), "python helper failed:\n{}", describe(&output));
    String::from_utf8(output.stdout).expect("utf-8")
}

const CONNECT: &str = r#"
import json, sys
import optuna
from optuna.storages import GrpcStorageProxy
host, port = sys.argv[1].rsplit(":", 1)
storage = GrpcStorageProxy(host=host, port=int(port))
"#;

/// The study as the storage holds it (`null` when it does not exist): its system attributes
/// and each trial's number, state, values, params and attributes.
async fn study(storage: &str, name: &str) -> Value {
    let script = format!(
        "{CONNECT}{}",
        r#"
try:
    study_id = storage.get_study_id_from_name(sys.argv[2])
except KeyError:
    print("null")
    sys.exit(0)
trials = [
    {"id": t._trial_id, "number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
     "user_attrs": t.user_attrs, "system_attrs": t.system_attrs}
    for t in storage.get_all_trials(study_id)
]
print(json.dumps({"id": study_id, "system_attrs": storage.get_study_system_attrs(study_id), "trials": trials}))
"#
    );
    serde_json::from_str(&python(&script, &[storage, name]).await).expect("study JSON")
}

async fn enqueue(storage: &str, name: &str, directions: &str, xs: &[f64]) {
    let script = format!(
        "{CONNECT}{}",
        r#"
study = optuna.create_study(storage=storage, study_name=sys.argv[2], directions=json.loads(sys.argv[3]))
for x in json.loads(sys.argv[4]):
    study.enqueue_trial({"x": x})
"#
    );
    python(&script, &[storage, name, directions, &serde_json::to_string(xs).expect("xs")]).await;
}

fn trials(study: &Value) -> &Vec<Value> {
    study["trials"].as_array().expect("trials")
}

fn states(study: &Value) -> Vec<&str> {
    trials(study).iter().map(|t| t["state"].as_str().expect("state")).collect()
}

/// `GET path` on the server; status and body.
async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, body.to_string())
}

/// The trial notes the dashboard serves for the study, by trial number.
async fn dashboard_notes(dashboard: &PyServer, study_id: i64) -> Vec<String> {
    let (status, body) = http_get(&dashboard.address(), &format!("/api/studies/{study_id}")).await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).expect("study detail");
    let mut trials = detail["trials"].as_array().expect("trials").clone();
    trials.sort_by_key(|t| t["number"].as_i64());
    trials.iter().map(|t| t["note"]["body"].as_str().expect("note body").to_string()).collect()
}

async fn wait_for_file(path: &Path, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(started.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const QUADRATIC: &str = r#"
def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pods_each_complete_one_trial_with_their_pod_and_batch_names() {
    let (server, _journal) = storage().await;
    let batch = Batch::new("concurrent", QUADRATIC, json!({}));
    let outputs = batch.run_pods(&server.address(), 3).await;
    for output in &outputs {
        assert_exit(output, 0);
    }
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["COMPLETE", "COMPLETE", "COMPLETE"]);
    let mut pods: Vec<&str> =
        trials(&study).iter().map(|t| t["user_attrs"]["pod_name"].as_str().expect("pod_name")).collect();
    pods.sort();
    assert_eq!(pods, [pod_name(0), pod_name(1), pod_name(2)]);
    for trial in trials(&study) {
        assert_eq!(trial["user_attrs"]["trialbatch_name"], "batch-a");
        assert!(trial["system_attrs"]["trainstack:heartbeat"].is_f64(), "{trial}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_trials_run_exactly_once_across_concurrent_pods() {
    let (server, _journal) = storage().await;
    let batch = Batch::new("enqueued", QUADRATIC, json!({}));
    enqueue(&server.address(), &batch.study, r#"["minimize"]"#, &[7.0, 8.0]).await;
    for output in batch.run_pods(&server.address(), 3).await {
        assert_exit(&output, 0);
    }
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["COMPLETE", "COMPLETE", "COMPLETE"]);
    let xs: Vec<f64> = trials(&study).iter().map(|t| t["params"]["x"].as_f64().expect("x")).collect();
    for enqueued in [7.0, 8.0] {
        assert_eq!(xs.iter().filter(|x| **x == enqueued).count(), 1, "x = {enqueued} in {xs:?}");
    }
}

const SLEEPER: &str = r#"
def objective(trial):
    import os
    import time
    import trainstack_hpo
    tc = trainstack_hpo.TrialController(trial)
    tc.log("started")
    tc.flush()
    with open(os.environ["TRIAL_STARTED"], "w") as marker:
        marker.write(str(trial.number))
    time.sleep(600)
    return 0.0
"#;

/// The storage server as the Deployment runs it, but sweeping for dead pods' trials every 0.5 s
/// instead of every 10 s, so the tests' 2 s limits take effect promptly.
async fn reaping_storage() -> (PyServer, tempfile::TempDir) {
    let journal = tempfile::tempdir().expect("journal dir");
    let server = pyservers::optuna_storage_with(
        &journal.path().join("journal.log"),
        &[("TRAINSTACK_HPO_REAP_INTERVAL_SECONDS", "0.5")],
    )
    .await;
    (server, journal)
}

/// A limit the tests' batches set (`stale_after_seconds`), far shorter than the default 60 s.
const LIMIT_SECONDS: u64 = 2;

/// Polls the study until trial `number` is in `state`; the study then.
async fn wait_for_state(server: &PyServer, name: &str, number: usize, state: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let study = study(&server.address(), name).await;
        if study.is_object() && states(&study).get(number) == Some(&state) {
            return study;
        }
        assert!(
            started.elapsed() < limit,
            "trial {number} of {name} not {state} within {limit:?}: {study}\nstorage log:\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Starts the SLEEPER pod, waits until its objective runs, and SIGKILLs it.
async fn kill_mid_trial(batch: &Batch, server: &PyServer, index: u32, after: Duration) {
    let marker = tempfile::tempdir().expect("marker dir");
    let started = marker.path().join("started");
    let mut pod = batch.pod(&server.address(), index).env("TRIAL_STARTED", &started).spawn().expect("pod");
    wait_for_file(&started, POD_LIMIT).await;
    tokio::time::sleep(after).await;
    pod.start_kill().expect("SIGKILL");
    pod.wait().await.expect("killed pod");
}

fn fail_reason(study: &Value, number: usize) -> &str {
    trials(study)[number]["system_attrs"]["trainstack:fail_reason"].as_str().expect("fail reason")
}

/// A pod that claims its trial with the runner's own `claim_trial` and dies on the spot
/// (`os._exit`, as abrupt as SIGKILL): nothing of it but the claim reaches the storage.
const CLAIM_AND_VANISH: &str = r#"
import json, os, sys
sys.path.insert(0, os.path.dirname(os.environ["TRAINSTACK_HPO_BATCH_FILE"]))
import runner
with open(os.environ["TRAINSTACK_HPO_BATCH_FILE"]) as handle:
    batch = json.load(handle)
study, trial = runner.claim_trial(batch, {"pod_name": os.environ["POD_NAME"], "trialbatch_name": batch["batch"]})
os._exit(137)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_whose_pod_died_before_its_first_heartbeat_ends_fail() {
    let (server, _journal) = reaping_storage().await;
    let batch = Batch::new("unbeaten", QUADRATIC, json!({"stale_after_seconds": LIMIT_SECONDS}));
    let args = ["-W", "ignore", "-c", CLAIM_AND_VANISH].map(std::ffi::OsStr::new);
    let output = batch.python_pod(&server.address(), 0, &args).output().await.expect("claiming pod");
    assert_exit(&output, 137);
    let study = wait_for_state(&server, &batch.study, 0, "FAIL", Duration::from_secs(20)).await;
    let reason = fail_reason(&study, 0);
    assert!(reason.starts_with(&format!("no heartbeat from pod {} since 20", pod_name(0))), "{reason}");
    assert!(reason.ends_with(&format!("limit {LIMIT_SECONDS}s); the trial fails")), "{reason}");
    assert_eq!(note_of(&study, 0), format!("trainstack: {reason}"));
    let log = server.log_tail();
    assert!(log.contains(&format!("failed trial 0 of study unbeaten: {reason}")), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_last_trial_ends_fail_without_another_runner_of_the_study() {
    let (server, _journal) = reaping_storage().await;
    // An enqueued trial: claimed by turning it RUNNING, not by creating it.
    enqueue(&server.address(), "last", r#"["minimize"]"#, &[7.0]).await;
    let batch =
        Batch::new("last", SLEEPER, json!({"heartbeat_seconds": 0.5, "stale_after_seconds": LIMIT_SECONDS}));
    let dashboard = pyservers::optuna_dashboard(&server.address(), batch.artifacts.path()).await;
    // Beats a few times first, then dies as the batch's last pod: no runner of the study follows.
    kill_mid_trial(&batch, &server, 0, Duration::from_millis(1500)).await;
    let study = wait_for_state(&server, &batch.study, 0, "FAIL", Duration::from_secs(20)).await;
    assert_eq!(trials(&study).len(), 1, "the pod ran the enqueued trial");
    assert_eq!(trials(&study)[0]["system_attrs"]["fixed_params"]["x"], 7.0);
    let reason = fail_reason(&study, 0);
    assert!(reason.starts_with(&format!("no heartbeat from pod {} since", pod_name(0))), "{reason}");

    // What `hpo status` and a user read: the dashboard's trial, failed, saying why.
    let (status, body) = http_get(&dashboard.address(), &format!("/api/studies/{}", study["id"])).await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).expect("study detail");
    let trial = &detail["trials"][0];
    assert_eq!(trial["state"], "Fail", "{trial}");
    assert_eq!(
        trial["note"]["body"].as_str().expect("note"),
        format!("```text\nstarted\n```\ntrainstack: {reason}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_cut_off_past_its_limit_finds_its_trial_failed_stops_its_objective_and_exits_1() {
    let (server, _journal) = reaping_storage().await;
    let marker = tempfile::tempdir().expect("marker dir");
    let started = marker.path().join("started");
    let batch = Batch::new(
        "cut-off",
        SLEEPER,
        json!({"heartbeat_seconds": 0.5, "stale_after_seconds": LIMIT_SECONDS}),
    );
    let pod = batch.pod(&server.address(), 0).env("TRIAL_STARTED", &started).spawn().expect("pod");
    wait_for_file(&started, POD_LIMIT).await;
    // A frozen pod (a node cut off from the storage) sends no heartbeat but is not dead.
    let pid = pod.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().expect("kill").success());
    wait_for_state(&server, &batch.study, 0, "FAIL", Duration::from_secs(20)).await;
    assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().expect("kill").success());
    // The objective sleeps for 600 s: only the runner stopping it ends the pod in time.
    let output = tokio::time::timeout(Duration::from_secs(30), pod.wait_with_output())
        .await
        .expect("the pod stops its objective")
        .expect("output");
    assert_exit(&output, 1);
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["FAIL"]);
    assert_eq!(
        note_of(&study, 0),
        format!(
            "```text\nstarted\ntrainstack: the storage server failed this trial: no heartbeat of this pod reached it within its {LIMIT_SECONDS}s limit; the objective was stopped\n```"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_heartbeating_trial_is_never_reaped() {
    let (server, _journal) = reaping_storage().await;
    let slow = r#"
def objective(trial):
    import time
    time.sleep(6)
    return trial.suggest_float("x", -1, 1)
"#;
    let batch =
        Batch::new("slow", slow, json!({"heartbeat_seconds": 0.5, "stale_after_seconds": LIMIT_SECONDS}));
    // Three times its limit, beating all along.
    assert_exit(&batch.run_pod(&server.address(), 0).await, 0);
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["COMPLETE"]);
    assert_eq!(trials(&study)[0]["system_attrs"].get("trainstack:fail_reason"), None);
    assert!(!server.log_tail().contains("failed trial"), "{}", server.log_tail());
}

/// A trial's note as the runner stored it (the dashboard's layout), read from study attributes.
fn note_of(study: &Value, number: usize) -> String {
    let trial_id = &trials(study)[number]["id"];
    let prefix = format!("dashboard:{trial_id}:note_str:");
    let attrs = study["system_attrs"].as_object().expect("study attrs");
    let count = attrs.keys().filter(|k| k.starts_with(&prefix)).count();
    (0..count).map(|i| attrs[&format!("{prefix}{i}")].as_str().expect("chunk").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_the_running_trial_with_a_note_and_exits_1() {
    let (server, _journal) = storage().await;
    let marker = tempfile::tempdir().expect("marker dir");
    let started = marker.path().join("started");
    let batch = Batch::new("terminated", SLEEPER, json!({}));
    let pod = batch.pod(&server.address(), 0).env("TRIAL_STARTED", &started).spawn().expect("pod");
    wait_for_file(&started, POD_LIMIT).await;
    let pid = pod.id().expect("pid").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let output =
        tokio::time::timeout(POD_LIMIT, pod.wait_with_output()).await.expect("in time").expect("output");
    assert_exit(&output, 1);
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["FAIL"]);
    let note = note_of(&study, 0);
    assert!(
        note.contains("started\ntrainstack: SIGTERM (pod deleted or evicted); the trial fails"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_study_survives_a_storage_server_restart_on_the_same_journal() {
    let journal = tempfile::tempdir().expect("journal dir");
    let path = journal.path().join("journal.log");
    let batch = Batch::new("restarted", QUADRATIC, json!({}));
    let first = pyservers::optuna_storage(&path).await;
    assert_exit(&batch.run_pod(&first.address(), 0).await, 0);
    drop(first);
    let second = pyservers::optuna_storage(&path).await;
    assert_exit(&batch.run_pod(&second.address(), 1).await, 0);
    let study = study(&second.address(), &batch.study).await;
    assert_eq!(states(&study), ["COMPLETE", "COMPLETE"]);
    let pods: Vec<&Value> = trials(&study).iter().map(|t| &t["user_attrs"]["pod_name"]).collect();
    assert_eq!(pods, [&json!(pod_name(0)), &json!(pod_name(1))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_heartbeating_through_a_storage_restart_is_not_reaped() {
    let journal = tempfile::tempdir().expect("journal dir");
    let path = journal.path().join("journal.log");
    let reaping = [("TRAINSTACK_HPO_REAP_INTERVAL_SECONDS", "0.5")];
    let first = pyservers::optuna_storage_with(&path, &reaping).await;
    let marker = tempfile::tempdir().expect("marker dir");
    let objective = r#"
def objective(trial):
    import os
    import time
    with open(os.path.join(os.environ["MARKERS"], "started"), "w"):
        pass
    while not os.path.exists(os.path.join(os.environ["MARKERS"], "release")):
        time.sleep(0.1)
    return 1.0
"#;
    // A limit above gRPC's reconnect backoff, so the pod's heartbeat reaches the new server in
    // time; the outage is longer than the limit.
    let batch = Batch::new("outage", objective, json!({"heartbeat_seconds": 0.5, "stale_after_seconds": 5}));
    let pod = batch.pod(&first.address(), 0).env("MARKERS", marker.path()).spawn().expect("pod");
    wait_for_file(&marker.path().join("started"), POD_LIMIT).await;
    let second = pyservers::restart_optuna_storage(first, &path, &reaping, Duration::from_secs(6)).await;
    // Two limits after the restart: a reaper that counted the outage would have failed it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(states(&study(&second.address(), &batch.study).await), ["RUNNING"], "{}", second.log_tail());
    std::fs::write(marker.path().join("release"), "").expect("release");
    let output =
        tokio::time::timeout(POD_LIMIT, pod.wait_with_output()).await.expect("in time").expect("output");
    assert_exit(&output, 0);
    assert_eq!(states(&study(&second.address(), &batch.study).await), ["COMPLETE"]);
}

const UPLOADER: &str = r#"
def objective(trial):
    import os
    import tempfile
    import trainstack_hpo
    tc = trainstack_hpo.TrialController(trial)
    x = trial.suggest_float("x", -10, 10)
    path = os.path.join(tempfile.mkdtemp(), "model-%d.txt" % trial.number)
    with open(path, "w") as model:
        model.write("x = %s" % x)
    tc.upload_artifact(path)
    return x
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_top_n_trials_keep_their_artifacts_and_the_others_are_marked_removed() {
    let (server, _journal) = storage().await;
    let batch = Batch::new("artifacts", UPLOADER, json!({"top_n_artifacts": 2}));
    enqueue(&server.address(), &batch.study, r#"["minimize"]"#, &[4.0, 1.0, 3.0, 2.0]).await;
    for output in batch.run_pods(&server.address(), 4).await {
        assert_exit(&output, 0);
    }
    let study = study(&server.address(), &batch.study).await;
    assert_eq!(states(&study), ["COMPLETE"; 4]);
    let mut kept = Vec::new();
    for trial in trials(&study) {
        let x = trial["params"]["x"].as_f64().expect("x");
        let number = trial["number"].as_i64().expect("number");
        let artifact = trial["user_attrs"]["artifact_id"].as_str().expect("artifact_id").to_string();
        let removed = study["system_attrs"].get(format!("trainstack:artifact_removed:{number}"));
        if x <= 2.0 {
            assert_eq!(removed, None, "trial {number} (x = {x}) is in the top 2");
            kept.push(artifact);
        } else {
            assert_eq!(removed, Some(&json!(true)), "trial {number} (x = {x}) is outside the top 2");
        }
    }
    kept.sort();
    assert_eq!(batch.artifact_files(), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_objective_artifacts_rank_by_the_first_objective() {
    let (server, _journal) = storage().await;
    let objective = UPLOADER.replace("return x", "return x, -x");
    let directions = r#"["maximize", "minimize"]"#;
    let batch = Batch::new(
        "pareto",
        &objective,
        json!({"top_n_artifacts": 1, "directions": ["maximize", "minimize"]}),
    );
    enqueue(&server.address(), &batch.study, directions, &[1.0, 3.0, 2.0]).await;
    for index in 0..3 {
        assert_exit(&batch.run_pod(&server.address(), index).await, 0);
    }
    let study = study(&server.address(), &batch.study).await;
    let best = trials(&study).iter().find(|t| t["params"]["x"] == 3.0).expect("x = 3");
    assert_eq!(batch.artifact_files(), [best["user_attrs"]["artifact_id"].as_str().expect("artifact_id")]);
}

/// Objectives that break the seed's rules, and the exact line the runner prints for each.
const REFUSED: &[(&str, &str, &str)] = &[
    ("bare eval", "def objective(trial):\n    return eval('1')\n", "objective.py:2:12: 4-9: bare eval() is not allowed (a method call such as model.eval() is)"),
    ("exec", "def objective(trial):\n    exec('x = 1')\n    return 1\n", "objective.py:2:5: 4-9: exec() is not allowed"),
    (
        "bare open",
        "def objective(trial):\n    f = open('/etc/passwd')\n    return 1\n",
        "objective.py:2:9: 4-9: open() is only allowed as `with open(...) as f:`",
    ),
    (
        "__import__",
        "def objective(trial):\n    os = __import__('os')\n    return 1\n",
        "objective.py:2:10: 4-9: __import__() is not allowed; write an import statement inside objective()",
    ),
    ("import subprocess", "def objective(trial):\n    import subprocess\n    return 1\n", "objective.py:2:5: 4-9: importing subprocess is not allowed"),
    (
        "from subprocess",
        "def objective(trial):\n    from subprocess import run\n    return 1\n",
        "objective.py:2:5: 4-9: importing from subprocess is not allowed",
    ),
    ("subprocess attribute", "def objective(trial):\n    import asyncio\n    return asyncio.subprocess\n", "objective.py:3:12: 4-9: subprocess is not allowed"),
    ("os.system", "def objective(trial):\n    import os\n    os.system('ls')\n    return 1\n", "objective.py:3:5: 4-9: os.system is not allowed"),
    ("from os import system", "def objective(trial):\n    from os import system\n    return 1\n", "objective.py:2:5: 4-9: os.system is not allowed"),
    ("input", "def objective(trial):\n    return float(input())\n", "objective.py:2:18: 4-9: input() is not allowed: a trial pod has no terminal"),
    ("raw_input", "def objective(trial):\n    return raw_input()\n", "objective.py:2:12: 4-9: raw_input() is not allowed: a trial pod has no terminal"),
    ("builtins.open", "def objective(trial):\n    import builtins\n    return builtins.open('x')\n", "objective.py:3:12: 4-9: open() is only allowed as `with open(...) as f:`"),
    (
        "module-level import",
        "import math\n\ndef objective(trial):\n    return math.pi\n",
        "objective.py:1:1: 4-1: imports belong inside objective() (write `def objective(trial):` then `import ...` in its body)",
    ),
    ("no objective", "def train(trial):\n    return 1\n", "objective.py:1:1: 4-9: no top-level `def objective(trial):` found"),
    (
        "two parameters",
        "def objective(trial, extra):\n    return 1\n",
        "objective.py:1:1: 4-9: objective must take exactly one argument: `def objective(trial):`",
    ),
    ("syntax error", "def objective(trial):\n    return (1\n", "objective.py:2:12: syntax error: '(' was never closed"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_breaking_the_4_1_and_4_9_rules_exit_3_before_any_trial_exists() {
    let (server, _journal) = storage().await;
    for (case, objective, expected) in REFUSED {
        let batch = Batch::new("refused", objective, json!({}));
        let output = batch.run_pod(&server.address(), 0).await;
        assert_eq!(output.status.code(), Some(3), "{case}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert_eq!(first, *expected, "{case}: {stderr}");
        assert!(stderr.contains("no trial was created"), "{case}: {stderr}");
    }
    assert_eq!(study(&server.address(), "refused").await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_eval_with_open_and_imports_inside_the_objective_pass_the_check() {
    let (server, _journal) = storage().await;
    let objective = r#"
from __future__ import annotations


def objective(trial):
    import os
    import tempfile

    class Model:
        def eval(self):
            return 0.5

    model = Model()
    path = os.path.join(tempfile.mkdtemp(), "scratch.txt")
    with open(path, "w") as scratch:
        scratch.write("ok")
    with open(path) as scratch:
        assert scratch.read() == "ok"
    return model.eval() + trial.suggest_float("x", 0, 1)
"#;
    let batch = Batch::new("allowed", objective, json!({}));
    assert_exit(&batch.run_pod(&server.address(), 0).await, 0);
    assert_eq!(states(&study(&server.address(), &batch.study).await), ["COMPLETE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_user_attrs_are_refused_to_the_objective_and_keep_the_runners_values() {
    let (server, _journal) = storage().await;
    let through_trial = "def objective(trial):\n    trial.set_user_attr('my_metric', 1)\n    trial.set_user_attr('pod_name', 'mine')\n    return 1.0\n";
    let through_controller = "def objective(trial):\n    import trainstack_hpo\n    trainstack_hpo.TrialController(trial).set_user_attr('artifact_id', 'x')\n    return 1.0\n";
    let first = Batch::new("reserved", through_trial, json!({}));
    assert_exit(&first.run_pod(&server.address(), 0).await, 1);
    let second = Batch::new("reserved", through_controller, json!({}));
    assert_exit(&second.run_pod(&server.address(), 1).await, 1);
    let study = study(&server.address(), "reserved").await;
    assert_eq!(states(&study), ["FAIL", "FAIL"]);
    assert_eq!(trials(&study)[0]["user_attrs"]["pod_name"], pod_name(0));
    assert_eq!(trials(&study)[0]["user_attrs"]["my_metric"], 1);
    assert_eq!(trials(&study)[1]["user_attrs"].get("artifact_id"), None);
    for (number, key) in [(0, "pod_name"), (1, "artifact_id")] {
        let note = note_of(&study, number);
        let message = format!(
            "ValueError: user attribute '{key}' is reserved by trainstack (reserved: pod_name, trialbatch_name, gpu_name, artifact_id, artifact_removed); choose another key"
        );
        assert!(note.contains(&message), "{note}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_land_in_the_trial_note_in_batches_and_the_dashboard_serves_it() {
    let (server, _journal) = storage().await;
    let marker = tempfile::tempdir().expect("marker dir");
    let objective = r#"
def objective(trial):
    import os
    import time
    import trainstack_hpo
    tc = trainstack_hpo.TrialController(trial)
    for epoch in range(7):
        tc.log("epoch %d loss %d" % (epoch, 100 - epoch))
    with open(os.path.join(os.environ["MARKERS"], "logged"), "w"):
        pass
    while not os.path.exists(os.path.join(os.environ["MARKERS"], "release")):
        time.sleep(0.1)
    tc.log("done")
    return 1.0
"#;
    let batch = Batch::new("notes", objective, json!({"log_flush_lines": 5, "log_flush_seconds": 600}));
    let dashboard = pyservers::optuna_dashboard(&server.address(), batch.artifacts.path()).await;
    let pod = batch.pod(&server.address(), 0).env("MARKERS", marker.path()).spawn().expect("pod");
    wait_for_file(&marker.path().join("logged"), POD_LIMIT).await;
    let while_running = dashboard_notes(&dashboard, 0).await;
    assert_eq!(
        while_running,
        ["```text\nepoch 0 loss 100\nepoch 1 loss 99\nepoch 2 loss 98\nepoch 3 loss 97\nepoch 4 loss 96\n```"],
        "five lines are one batch; the sixth and seventh wait for the next"
    );
    std::fs::write(marker.path().join("release"), "").expect("release");
    let output =
        tokio::time::timeout(POD_LIMIT, pod.wait_with_output()).await.expect("in time").expect("output");
    assert_exit(&output, 0);
    let lines: Vec<String> = (0..7).map(|e| format!("epoch {e} loss {}", 100 - e)).collect();
    assert_eq!(dashboard_notes(&dashboard, 0).await, [format!("```text\n{}\ndone\n```", lines.join("\n"))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_pod_contract_for_complete_pruned_failed_and_unreachable() {
    let (server, _journal) = storage().await;
    let cases = [
        ("def objective(trial):\n    return 1.0\n", 0, "COMPLETE"),
        ("def objective(trial):\n    import optuna\n    raise optuna.TrialPruned()\n", 0, "PRUNED"),
        ("def objective(trial):\n    raise RuntimeError('out of memory')\n", 1, "FAIL"),
        ("def objective(trial):\n    return None\n", 1, "FAIL"),
    ];
    for (index, (objective, code, _)) in cases.iter().enumerate() {
        let batch = Batch::new("exits", objective, json!({}));
        assert_exit(&batch.run_pod(&server.address(), index as u32).await, *code);
    }
    let study = study(&server.address(), "exits").await;
    assert_eq!(states(&study), cases.iter().map(|c| c.2).collect::<Vec<_>>());
    let raised = note_of(&study, 2);
    assert!(
        raised.contains("trainstack: the objective raised:\nTraceback")
            && raised.contains("RuntimeError: out of memory"),
        "{raised}"
    );
    assert!(note_of(&study, 3).contains("trainstack: objective returned None, not a number per direction"));

    // pip reads options from requirement lines; `--no-index` keeps the failure off the network.
    let uninstallable = Batch::new("exits", "def objective(trial):\n    return 1.0\n", json!({}))
        .requirements("--no-index\ntrainstack-no-such-package==1.0\n");
    assert_exit(&uninstallable.run_pod(&server.address(), 4).await, 1);
    let study = self::study(&server.address(), "exits").await;
    assert_eq!(trials(&study)[4]["state"], "FAIL");
    let note = note_of(&study, 4);
    assert!(
        note.contains("trainstack: installing --no-index trainstack-no-such-package==1.0 failed:"),
        "{note}"
    );

    let nowhere = format!("127.0.0.1:{}", free_port());
    let batch = Batch::new("exits", QUADRATIC, json!({"storage_timeout_seconds": 1}));
    let output = batch.run_pod(&nowhere, 0).await;
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("trainstack-hpo: the HPO storage at {nowhere} did not answer within 1s")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_name_comes_from_nvidia_smi_when_the_node_has_it() {
    let (server, _journal) = storage().await;
    let bin = tempfile::tempdir().expect("bin dir");
    let smi = bin.path().join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\n[ \"$1 $2\" = '--query-gpu=name --format=csv,noheader' ] || exit 2\necho 'NVIDIA A100-SXM4-40GB'\necho 'NVIDIA A100-SXM4-40GB'\n")
        .expect("nvidia-smi");
    std::process::Command::new("chmod").arg("+x").arg(&smi).status().expect("chmod");
    let path: PathBuf = bin.path().to_path_buf();
    let search = std::env::join_paths(
        std::iter::once(path).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let batch = Batch::new("gpu", QUADRATIC, json!({}));
    let output = batch.pod(&server.address(), 0).env("PATH", search).output().await.expect("pod");
    assert_exit(&output, 0);
    let study = study(&server.address(), "gpu").await;
    assert_eq!(trials(&study)[0]["user_attrs"]["gpu_name"], "NVIDIA A100-SXM4-40GB");
}
