//! The kubelet and Job controller for HPO trial batches, switched on by
//! [`ApiServerBuilder::run_trial_pods`]: an Indexed Job labelled `trainstack.io/hpo-batch` gets
//! one Pod per completion index, at most `parallelism` at once, and each Pod's container runs
//! as a local process the way kubelet would run it, so trials really reach a local Optuna
//! server. The Job's status follows what the v1.36 Job controller writes for an Indexed Job with
//! `backoffLimitPerIndex` (no retry of an index here: the contract renders 0).
//!
//! What a container sees, as in a pod: ConfigMap volumes are files in a directory standing in
//! for the mount path, and PVC volumes are directories shared by every pod of the namespace
//! that mounts the claim (one node, as on kind); paths under a mount path in the command line
//! and in env values are rewritten to those directories. An env value `<svc>.<ns>.svc:<port>`
//! (cluster DNS) becomes the address a test routed that Service port to
//! ([`ApiServer::route_service`]), or a closed local port when nothing backs it, as kube-proxy
//! rejects a connection to a Service without endpoints. `python` is the runner's interpreter.
//!
//! A rendered batch's pods so run trainstack's `runner.py` from the batch ConfigMap with the
//! env the Job template gives them. The runner installs nothing when that interpreter already
//! holds the batch's Optuna client pin (the same major.minor) and the batch has no
//! requirements, so tests pick images whose pin is the server's 5.0.0, which the test
//! virtualenv holds, and stay off the network.
//!
//! Deleting a Pod stops its process (SIGTERM to its process group, SIGKILL after the grace
//! period) and the index counts as failed, as the Job controller counts a Pod deleted before
//! it finished; deleting the Job stops all of them (the garbage collector's background
//! propagation). Simplifications: no `activeDeadlineSeconds`, no suspend, no pod failure
//! policy, no retry of an index (`backoffLimitPerIndex` above 0 is run as 0), one container.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};

use super::{internal, now, ApiServer, ApiServerBuilder, Shared};

/// The label that marks a trial batch's objects.
const BATCH_LABEL: &str = "trainstack.io/hpo-batch";
const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The finalizer the Job controller puts on its pods so it counts each one before it is gone.
const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// How often a running pod looks for its own deletion or its Job's.
const POLL: Duration = Duration::from_millis(100);

/// How trial pods run on this machine.
#[derive(Debug, Clone)]
pub struct PodRunner {
    /// What runs a container's `python` (the test virtualenv's interpreter).
    pub python: PathBuf,
    /// Where PVCs live: claim `<claim>` of namespace `<ns>` is the directory `<ns>/<claim>`
    /// below this one, shared by every pod that mounts it.
    pub volumes: PathBuf,
}

impl PodRunner {
    /// The directory that stands in for PVC `claim` of `namespace`.
    pub fn claim_dir(&self, namespace: &str, claim: &str) -> PathBuf {
        self.volumes.join(namespace).join(claim)
    }
}

impl ApiServerBuilder {
    /// Runs the pods of trial batch Jobs as local processes (see `trial_pods.rs`); the Job
    /// controller stand-in then leaves those Jobs alone.
    pub fn run_trial_pods(self, runner: PodRunner) -> Self {
        *self.options.trial_pods.lock().unwrap() = Some(Arc::new(runner));
        self
    }
}

impl ApiServer {
    /// From now on, runs the pods of new trial batch Jobs as local processes, as
    /// [`ApiServerBuilder::run_trial_pods`] does from the start.
    pub fn run_trial_pods(&self, runner: PodRunner) {
        *self.shared.options.trial_pods.lock().unwrap() = Some(Arc::new(runner));
    }
}

impl ApiServer {
    /// What the container of pod `namespace/name` wrote, once it ended (empty before).
    pub fn pod_log(&self, namespace: &str, name: &str) -> String {
        let st = self.shared.state.lock().unwrap();
        st.pod_logs.get(&(namespace.to_string(), name.to_string())).cloned().unwrap_or_default()
    }
}

fn runner_of(shared: &Shared) -> Option<Arc<PodRunner>> {
    shared.options.trial_pods.lock().unwrap().clone()
}

/// Whether the runner owns this Job (the workload stand-in must not complete it).
pub(crate) fn owns(shared: &Shared, obj: &Value) -> bool {
    runner_of(shared).is_some()
        && obj["kind"] == "Job"
        && obj["metadata"]["labels"].get(BATCH_LABEL).is_some()
}

/// Called for every created object: starts a trial batch Job's pods.
pub(crate) fn on_create(shared: &Arc<Shared>, obj: &Value) {
    if !owns(shared, obj) || obj["spec"]["completionMode"] != "Indexed" {
        return;
    }
    let runner = runner_of(shared).expect("owns() checked the runner");
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let weak = Arc::downgrade(shared);
    shared.runtime.spawn(async move { run_job(weak, runner, ns, name).await });
}

/// What the Job controller knows about the indexes.
#[derive(Default)]
struct Tally {
    active: BTreeSet<i64>,
    succeeded: BTreeSet<i64>,
    failed: BTreeSet<i64>,
    start: String,
}

/// How one pod ended.
enum End {
    Succeeded,
    Failed,
}

fn job_path(ns: &str, name: &str) -> String {
    format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}")
}

fn get(shared: &Arc<Shared>, path: &str) -> Option<Value> {
    internal(shared, "GET", path, "job-controller", "", Value::Null).ok()
}

async fn run_job(weak: Weak<Shared>, runner: Arc<PodRunner>, ns: String, name: String) {
    let path = job_path(&ns, &name);
    let Some(job) = weak.upgrade().and_then(|s| get(&s, &path)) else { return };
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(1);
    let max_failed = job["spec"]["maxFailedIndexes"].as_i64();
    let mut tally = Tally { start: now(), ..Tally::default() };
    let mut next = 0;
    let mut running = tokio::task::JoinSet::new();
    let mut gave_up = false;
    loop {
        while !gave_up && (tally.active.len() as i64) < parallelism && next < completions {
            let Some(shared) = weak.upgrade() else { return };
            if get(&shared, &path).is_none_or(|j| j["metadata"].get("deletionTimestamp").is_some()) {
                gave_up = true;
                break;
            }
            tally.active.insert(next);
            running.spawn(run_pod(weak.clone(), runner.clone(), job.clone(), next));
            next += 1;
        }
        if let Some(shared) = weak.upgrade() {
            write_status(&shared, &path, &tally, completions, max_failed, false);
        }
        let Some(done) = running.join_next().await else { break };
        let Ok((index, end)) = done else { continue };
        tally.active.remove(&index);
        match end {
            End::Succeeded => tally.succeeded.insert(index),
            End::Failed => tally.failed.insert(index),
        };
        if max_failed.is_some_and(|m| tally.failed.len() as i64 > m) {
            // The controller stops creating pods (and would terminate the running ones, which
            // here run out: the contract's maxFailedIndexes never lets it come to that).
            gave_up = true;
        }
    }
    if let Some(shared) = weak.upgrade() {
        write_status(&shared, &path, &tally, completions, max_failed, true);
    }
}

/// `0-2,4`: the compressed index list the Job status uses.
fn ranges(indexes: &BTreeSet<i64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().expect("peeked");
        }
        out.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
    }
    out.join(",")
}

/// Writes the Job status; at the end, the terminal conditions.
fn write_status(
    shared: &Arc<Shared>,
    path: &str,
    tally: &Tally,
    completions: i64,
    max_failed: Option<i64>,
    finished: bool,
) {
    let Some(mut current) = get(shared, path) else { return };
    let ts = now();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastProbeTime": ts, "lastTransitionTime": ts, "reason": reason, "message": message});
    let active = tally.active.len() as i64;
    let mut status = json!({
        "startTime": tally.start,
        "active": active,
        "ready": active,
        "succeeded": tally.succeeded.len(),
        "failed": tally.failed.len(),
        "terminating": 0,
        "failedIndexes": ranges(&tally.failed),
        "uncountedTerminatedPods": {},
    });
    if !tally.succeeded.is_empty() {
        status["completedIndexes"] = json!(ranges(&tally.succeeded));
    }
    if finished {
        let exceeded = max_failed.is_some_and(|m| tally.failed.len() as i64 > m);
        let conditions = if exceeded {
            let message = "Job has exceeded the specified maximal number of failed indexes";
            vec![
                condition("FailureTarget", "MaxFailedIndexesExceeded", message),
                condition("Failed", "MaxFailedIndexesExceeded", message),
            ]
        } else if !tally.failed.is_empty() {
            vec![
                condition("FailureTarget", "FailedIndexes", "Job has failed indexes"),
                condition("Failed", "FailedIndexes", "Job has failed indexes"),
            ]
        } else if tally.succeeded.len() as i64 == completions {
            status["completionTime"] = json!(ts);
            let message = "Reached expected number of succeeded pods";
            vec![
                condition("SuccessCriteriaMet", "CompletionsReached", message),
                condition("Complete", "CompletionsReached", message),
            ]
        } else {
            // Stopped early: the Job was deleted.
            Vec::new()
        };
        status["conditions"] = json!(conditions);
    }
    current["status"] = status;
    let _ = internal(shared, "PUT", &format!("{path}/status"), "job-controller", "application/json", current);
}

/// The directories a pod's volumes stand for: mount path → local directory.
struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    /// `value` with a leading mount path replaced by its directory.
    fn rewrite(&self, value: &str) -> String {
        let best = self
            .0
            .iter()
            .filter(|(mount, _)| {
                value == mount
                    || value.strip_prefix(mount.as_str()).is_some_and(|rest| rest.starts_with('/'))
                    || (mount.ends_with('/') && value.starts_with(mount.as_str()))
            })
            .max_by_key(|(mount, _)| mount.len());
        match best {
            Some((mount, dir)) => {
                let rest = value[mount.len()..].trim_start_matches('/');
                if rest.is_empty() {
                    dir.display().to_string()
                } else {
                    dir.join(rest).display().to_string()
                }
            }
            None => value.to_string(),
        }
    }
}

/// Prepares the volumes of `template` for one pod in `pod_dir`.
fn mount_volumes(
    shared: &Arc<Shared>,
    runner: &PodRunner,
    ns: &str,
    template: &Value,
    pod_dir: &Path,
) -> Mounts {
    let mut dirs: HashMap<String, PathBuf> = HashMap::new();
    for volume in template["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or_default().to_string();
        let dir = if let Some(cm) = volume["configMap"]["name"].as_str() {
            let dir = pod_dir.join("volumes").join(&name);
            std::fs::create_dir_all(&dir).expect("configMap volume directory");
            let configmap = get(shared, &format!("/api/v1/namespaces/{ns}/configmaps/{cm}"));
            for (key, value) in configmap.iter().flat_map(|c| c["data"].as_object()).flatten() {
                std::fs::write(dir.join(key), value.as_str().unwrap_or_default())
                    .expect("configMap key file");
            }
            dir
        } else if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
            runner.claim_dir(ns, claim)
        } else {
            pod_dir.join("volumes").join(&name)
        };
        std::fs::create_dir_all(&dir).expect("volume directory");
        dirs.insert(name, dir);
    }
    let container = &template["spec"]["containers"][0];
    let mounts = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let dir = dirs.get(m["name"].as_str()?)?;
            Some((m["mountPath"].as_str()?.to_string(), dir.clone()))
        })
        .collect();
    Mounts(mounts)
}

/// An env value naming a Service by its cluster DNS name (`<svc>.<ns>.svc[.cluster.local]:<port>`)
/// resolved to where the test routed it, or to a closed local port.
fn resolve_service(shared: &Shared, value: &str) -> Option<String> {
    let (host, port) = value.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.strip_suffix(".cluster.local").unwrap_or(host);
    let (svc, ns) = host.strip_suffix(".svc")?.split_once('.')?;
    let routed = shared.proxy.upstream(ns, svc, port);
    Some(routed.unwrap_or_else(|| {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port");
        closed.to_string()
    }))
}

/// The container's environment as kubelet builds it (downward API included).
fn environment(
    shared: &Shared,
    container: &Value,
    mounts: &Mounts,
    ns: &str,
    pod: &str,
    index: i64,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(name) = var["name"].as_str() else { continue };
        let value = if let Some(v) = var["value"].as_str() {
            resolve_service(shared, v).unwrap_or_else(|| mounts.rewrite(v))
        } else {
            match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod.to_string(),
                Some("metadata.namespace") => ns.to_string(),
                Some(p) if p.contains(INDEX_KEY) => index.to_string(),
                _ => continue,
            }
        };
        env.push((name.to_string(), value));
    }
    // Kubernetes adds it to every container of an Indexed Job.
    env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
    env
}

/// Creates the pod of `index`, runs its container, reports its phases; returns how it ended.
async fn run_pod(weak: Weak<Shared>, runner: Arc<PodRunner>, job: Value, index: i64) -> (i64, End) {
    let ns = job["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let job_name = job["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let template = &job["spec"]["template"];
    let Some(shared) = weak.upgrade() else { return (index, End::Failed) };
    let suffix = shared.state.lock().unwrap().random_suffix();
    let pod_name = format!("{job_name}-{index}-{suffix}");
    let uid = job["metadata"]["uid"].clone();
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid.clone()),
        ("batch.kubernetes.io/job-name", json!(job_name)),
        ("controller-uid", uid.clone()),
        ("job-name", json!(job_name)),
        (INDEX_KEY, json!(index.to_string())),
    ] {
        labels[k] = v;
    }
    let mut annotations = template["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations[INDEX_KEY] = json!(index.to_string());
    let mut spec = template["spec"].clone();
    spec["hostname"] = json!(format!("{job_name}-{index}"));
    spec["nodeName"] = json!("trial-node");
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": ns,
            "labels": labels,
            "annotations": annotations,
            "finalizers": [TRACKING_FINALIZER],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": spec,
    });
    let pod_path = format!("/api/v1/namespaces/{ns}/pods/{pod_name}");
    if let Err(e) = internal(
        &shared,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        "job-controller",
        "application/json",
        pod,
    ) {
        eprintln!("trial pod runner: cannot create pod {pod_name}: {}", e.body);
        return (index, End::Failed);
    }
    let pod_dir = tempfile::tempdir().expect("pod directory");
    let mounts = mount_volumes(&shared, &runner, &ns, template, pod_dir.path());
    let container = &template["spec"]["containers"][0];
    let container_name = container["name"].as_str().unwrap_or("trial").to_string();
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str())
        .map(|a| mounts.rewrite(a))
        .collect();
    let env = environment(&shared, container, &mounts, &ns, &pod_name, index);
    let grace = Duration::from_secs(template["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
    drop(shared);

    let log_path = pod_dir.path().join("container.log");
    let log = std::fs::File::create(&log_path).expect("container log");
    let program = match argv.first().map(String::as_str) {
        Some("python" | "python3") => runner.python.clone(),
        Some(other) => PathBuf::from(other),
        None => PathBuf::from("true"),
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(argv.iter().skip(1))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", pod_dir.path())
        .envs(env)
        .current_dir(pod_dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("container log"))
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    let started = now();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let message = format!("exec: {e}");
            if let Some(shared) = weak.upgrade() {
                set_phase(
                    &shared,
                    &pod_path,
                    &container_name,
                    "Failed",
                    json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": message}}),
                    &started,
                );
                release(&shared, &pod_path);
            }
            return (index, End::Failed);
        }
    };
    if let Some(shared) = weak.upgrade() {
        set_phase(
            &shared,
            &pod_path,
            &container_name,
            "Running",
            json!({"running": {"startedAt": started}}),
            &started,
        );
    }
    let pgid = child.id().unwrap_or_default();
    let code = loop {
        tokio::select! {
            status = child.wait() => break status.ok().and_then(|s| s.code()).unwrap_or(137),
            _ = tokio::time::sleep(POLL) => {
                let Some(shared) = weak.upgrade() else { signal(pgid, "KILL"); return (index, End::Failed) };
                let pod_gone = get(&shared, &pod_path).is_none_or(|p| p["metadata"].get("deletionTimestamp").is_some());
                let job_gone = get(&shared, &job_path(&ns, &job_name)).is_none_or(|j| j["metadata"].get("deletionTimestamp").is_some());
                if pod_gone || job_gone {
                    drop(shared);
                    signal(pgid, "TERM");
                    let code = match tokio::time::timeout(grace, child.wait()).await {
                        Ok(s) => s.ok().and_then(|s| s.code()).unwrap_or(143),
                        Err(_) => {
                            signal(pgid, "KILL");
                            let _ = child.wait().await;
                            137
                        }
                    };
                    if job_gone && !pod_gone {
                        if let Some(shared) = weak.upgrade() {
                            let _ = internal(&shared, "DELETE", &pod_path, "generic-garbage-collector", "application/json", Value::Null);
                        }
                    }
                    break code.max(1);
                }
            }
        }
    };
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let Some(shared) = weak.upgrade() else { return (index, End::Failed) };
    shared.state.lock().unwrap().pod_logs.insert((ns.clone(), pod_name.clone()), text);
    let (phase, reason) = if code == 0 { ("Succeeded", "Completed") } else { ("Failed", "Error") };
    let state = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}});
    set_phase(&shared, &pod_path, &container_name, phase, state, &started);
    release(&shared, &pod_path);
    (index, if code == 0 { End::Succeeded } else { End::Failed })
}

/// The kubelet's status report for the pod.
fn set_phase(shared: &Arc<Shared>, path: &str, container: &str, phase: &str, state: Value, started: &str) {
    let Some(mut pod) = get(shared, path) else { return };
    let running = phase == "Running";
    let ready = if running { "True" } else { "False" };
    pod["status"] = json!({
        "phase": phase,
        "startTime": started,
        "podIP": "127.0.0.1",
        "hostIP": "127.0.0.1",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": ready},
            {"type": "ContainersReady", "status": ready},
        ],
        "containerStatuses": [{"name": container, "ready": running, "started": running, "restartCount": 0, "image": "", "imageID": "", "state": state}],
    });
    let _ = internal(shared, "PUT", &format!("{path}/status"), "kubelet", "application/json", pod);
}

/// The Job controller has counted the pod: its tracking finalizer goes (a deleted pod is then
/// gone).
fn release(shared: &Arc<Shared>, path: &str) {
    let Some(pod) = get(shared, path) else { return };
    let finalizers: Vec<Value> = pod["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .cloned()
        .collect();
    let _ = internal(
        shared,
        "PATCH",
        path,
        "job-controller",
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": finalizers}}),
    );
}

/// Sends `SIG<name>` to a process group.
fn signal(pgid: u32, name: &str) {
    if pgid == 0 {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args([format!("-{name}"), "--".into(), format!("-{pgid}")])
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_compress_runs_as_the_job_controller_writes_them() {
        let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
        assert_eq!(ranges(&set(&[])), "");
        assert_eq!(ranges(&set(&[0, 1, 2, 4, 6, 7])), "0-2,4,6-7");
    }
}
