//! Stand-ins for the Trainer controller and the kubelet, switched on by tests: a TrainJob gets
//! a node pod (named and labelled as JobSet names them) whose log the test chooses, then the
//! `Complete` or `Failed` condition, or never finishes; a one-shot pod (`restartPolicy: Never`)
//! runs to the phase the test chooses. Without a knob nothing runs, as on a cluster without the
//! controllers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::discovery::ResourceDef;
use super::{internal, now, ApiServer, Shared, State};

/// How long after creation a TrainJob's pod appears and finishes.
const RUN_DELAY: Duration = Duration::from_millis(30);

/// What happens to a workload once it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// Its pod prints `log` and exits 0; a TrainJob becomes `Complete`.
    Succeed { log: String },
    /// Its pod prints `log` and exits 1; a TrainJob becomes `Failed` with `message`.
    Fail { log: String, message: String },
    /// Its pod keeps running; a TrainJob never finishes.
    Hang,
}

/// The test's choices, per kind of workload; `None` runs nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Knobs {
    trainjobs: Option<Run>,
    pods: Option<Run>,
}

impl ApiServer {
    /// From now on, every new TrainJob runs as `run` says.
    pub fn run_trainjobs(&self, run: Run) {
        self.shared.state.lock().unwrap().runs.trainjobs = Some(run);
    }

    /// From now on, every new one-shot pod (`restartPolicy: Never`, not a TrainJob's) runs as
    /// `run` says.
    pub fn run_pods(&self, run: Run) {
        self.shared.state.lock().unwrap().runs.pods = Some(run);
    }
}

/// Called for every object a write created; starts the simulated run of workloads.
pub(crate) fn on_create(shared: &Arc<Shared>, st: &State, def: &ResourceDef, obj: &Value) {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    match (def.group.as_str(), def.plural.as_str()) {
        ("trainer.kubeflow.org", "trainjobs") => {
            if let Some(run) = st.runs.trainjobs.clone() {
                let path = format!("/apis/{}/namespaces/{ns}/trainjobs/{name}", def.api_version());
                spawn(shared, move |shared| run_trainjob(shared, &path, &ns, &name, &run));
            }
        }
        ("", "pods") => {
            let one_shot = obj["spec"]["restartPolicy"] == "Never"
                && obj["metadata"]["labels"].get("jobset.sigs.k8s.io/jobset-name").is_none();
            if let (true, Some(run)) = (one_shot, st.runs.pods.clone()) {
                spawn(shared, move |shared| finish_pod(shared, &ns, &name, "main", &run));
            }
        }
        _ => {}
    }
}

/// Runs `work` after [`RUN_DELAY`], unless the server is gone by then.
fn spawn(shared: &Arc<Shared>, work: impl FnOnce(&Arc<Shared>) + Send + 'static) {
    let weak = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        tokio::time::sleep(RUN_DELAY).await;
        if let Some(shared) = weak.upgrade() {
            work(&shared);
        }
    });
}

/// The TrainJob controller's effect: one node pod, then the job's terminal condition.
fn run_trainjob(shared: &Arc<Shared>, path: &str, ns: &str, name: &str, run: &Run) {
    let Ok(job) = internal(shared, "GET", path, "trainer-controller", "", Value::Null) else { return };
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{name}-node-0-0-"),
            "namespace": ns,
            "labels": {
                "jobset.sigs.k8s.io/jobset-name": name,
                "trainer.kubeflow.org/trainjob-ancestor-step": "trainer",
            },
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "node", "image": job["spec"]["trainer"]["image"], "args": job["spec"]["trainer"]["args"]}],
        },
    });
    let Ok(created) = internal(
        shared,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        "jobset-controller",
        "application/json",
        pod,
    ) else {
        return;
    };
    let pod_name = created["metadata"]["name"].as_str().unwrap_or_default().to_string();
    finish_pod(shared, ns, &pod_name, "node", run);
    let ts = now();
    let condition = match run {
        Run::Succeed { .. } => {
            json!({"type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "jobs have been completed", "lastTransitionTime": ts})
        }
        Run::Fail { message, .. } => {
            json!({"type": "Failed", "status": "True", "reason": "JobsFailed", "message": message, "lastTransitionTime": ts})
        }
        Run::Hang => return,
    };
    let Ok(mut job) = internal(shared, "GET", path, "trainer-controller", "", Value::Null) else { return };
    job["status"] = json!({"conditions": [condition]});
    let _ = internal(shared, "PUT", &format!("{path}/status"), "trainer-controller", "application/json", job);
}

/// The kubelet's effect on a pod: its log and its phase.
fn finish_pod(shared: &Arc<Shared>, ns: &str, name: &str, container: &str, run: &Run) {
    let (phase, state, log) = match run {
        Run::Succeed { log } => {
            ("Succeeded", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), log.clone())
        }
        Run::Fail { log, .. } => {
            ("Failed", json!({"terminated": {"exitCode": 1, "reason": "Error"}}), log.clone())
        }
        Run::Hang => ("Running", json!({"running": {"startedAt": now()}}), String::new()),
    };
    shared.state.lock().unwrap().pod_logs.insert((ns.to_string(), name.to_string()), log);
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let Ok(mut pod) = internal(shared, "GET", &path, "kubelet", "", Value::Null) else { return };
    pod["status"] = json!({
        "phase": phase,
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": container, "ready": phase == "Running", "restartCount": 0, "image": "", "imageID": "", "state": state}],
    });
    let _ = internal(shared, "PUT", &format!("{path}/status"), "kubelet", "application/json", pod);
}

impl ApiServer {
    /// Adds a Ready node with `labels` and, when `gpus` is given, that many allocatable
    /// `nvidia.com/gpu` (as the device plugin would advertise them).
    pub fn add_node(&self, name: &str, labels: Value, gpus: Option<u32>) {
        self.seed(
            "kubelet",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}),
        );
        let mut allocatable = json!({"cpu": "8", "memory": "32Gi", "pods": "110"});
        if let Some(g) = gpus {
            allocatable["nvidia.com/gpu"] = json!(g.to_string());
        }
        self.set_status(
            "v1",
            "Node",
            None,
            name,
            json!({
                "capacity": allocatable.clone(),
                "allocatable": allocatable,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            }),
        );
    }
}
