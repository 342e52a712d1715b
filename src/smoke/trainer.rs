//! The `trainer` check: the rendered ClusterTrainingRuntimes exist, and a tiny CPU TrainJob
//! (one node, a command that exits 0) created in the smoke namespace reaches `Complete`; the
//! logs of its pods are captured either way.

use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{json, Value};

use crate::engine::cluster::retry;
use crate::engine::ready::{readiness, ClusterFacts, Readiness};
use crate::manifest::Manifest;

use super::{pods, Context, Outcome, Record, SMOKE_NAMESPACE};

/// What the TrainJob runs: it proves the runtime's prelude, the image and the controller, not
/// training itself.
pub const COMMAND: [&str; 3] = ["python", "-c", "print('trainstack smoke: TrainJob ran')"];

/// The runtime the smoke TrainJob uses: a CPU runtime of the rendered set, PyTorch first.
fn pick_runtime(runtimes: &[&Manifest]) -> Option<&'static str> {
    let has = |n: &str| runtimes.iter().any(|m| m.name() == n);
    ["pytorch-simple", "tensorflow-distributed"].into_iter().find(|n| has(n))
}

/// The smoke TrainJob.
pub fn trainjob(ctx: &Context, api_version: &str, name: &str, runtime: &str) -> Value {
    let trainer = &ctx.env.components.trainer;
    let image =
        if runtime.starts_with("pytorch") { &trainer.pytorch_image } else { &trainer.tensorflow_image };
    json!({
        "apiVersion": api_version,
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": SMOKE_NAMESPACE, "labels": ctx.labels()},
        "spec": {
            "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": runtime},
            "trainer": {
                "image": image,
                "numNodes": 1,
                "args": COMMAND,
                "resourcesPerNode": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
            },
        },
    })
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> Outcome {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let runtimes: Vec<&Manifest> = ctx.set.iter().filter(|m| m.kind() == "ClusterTrainingRuntime").collect();
    let Some(first) = runtimes.first() else {
        return Outcome::failed(
            "the environment renders no ClusterTrainingRuntime",
            "components.trainer is enabled but templates/trainer/runtimes.yaml rendered nothing; check a --templates override",
        );
    };
    let api_version = first.api_version().to_string();
    let rt_api: Api<DynamicObject> = Api::all_with(
        ctx.client.clone(),
        &resource(&api_version, "ClusterTrainingRuntime", "clustertrainingruntimes"),
    );
    let mut missing = Vec::new();
    for m in &runtimes {
        match retry("get ClusterTrainingRuntime", || rt_api.get_opt(m.name())).await {
            Ok(Some(_)) => rec.step(format!("ClusterTrainingRuntime {} present", m.name())),
            Ok(None) => missing.push(m.name().to_string()),
            Err(e) if e.code() == 404 => missing.push(m.name().to_string()),
            Err(e) => return Outcome::failed(format!("cannot read ClusterTrainingRuntime {}: {e}", m.name()), "check that the Trainer CRDs are installed (kubectl get crd clustertrainingruntimes.trainer.kubeflow.org)"),
        }
    }
    if !missing.is_empty() {
        return Outcome::failed(
            format!("ClusterTrainingRuntime missing: {}", missing.join(", ")),
            "run trainstack apply; trainstack status shows which objects are missing",
        );
    }
    let Some(runtime) = pick_runtime(&runtimes) else {
        return Outcome::failed(
            format!(
                "no CPU runtime among {}",
                runtimes.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
            ),
            "the smoke TrainJob runs on pytorch-simple or tensorflow-distributed",
        );
    };

    let name = format!("smoke-{}", ctx.run_id);
    let tj_api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        SMOKE_NAMESPACE,
        &resource(&api_version, "TrainJob", "trainjobs"),
    );
    let obj: DynamicObject =
        serde_json::from_value(trainjob(ctx, &api_version, &name, runtime)).expect("a valid TrainJob");
    if let Err(e) = tj_api.create(&PostParams::default(), &obj).await {
        return Outcome::failed(
            format!("cannot create TrainJob {SMOKE_NAMESPACE}/{name}: {e}"),
            "a webhook rejection names the field; check the Trainer controller (kubectl -n kubeflow-system get pods)",
        );
    }
    rec.step(format!(
        "created TrainJob {SMOKE_NAMESPACE}/{name} on runtime {runtime}, 1 node, command {COMMAND:?}"
    ));

    let pod_selector = format!("jobset.sigs.k8s.io/jobset-name={name}");
    let mut last;
    let verdict = loop {
        match retry("get TrainJob", || tj_api.get_opt(&name)).await {
            Ok(Some(live)) => {
                let live = serde_json::to_value(live).unwrap_or(Value::Null);
                match readiness(&live, ClusterFacts::default(), true) {
                    Readiness::Ready => break Ok(()),
                    Readiness::Failed(why) => break Err(why),
                    Readiness::Pending(why) => last = why,
                }
            }
            Ok(None) => last = "it disappeared".into(),
            Err(e) => last = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(format!("not Complete after {:?} ({last})", ctx.timeout));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let pods = pods::list(&ctx.client, SMOKE_NAMESPACE, &pod_selector).await.unwrap_or_default();
    let mut described = Vec::new();
    for p in &pods {
        let pod_name = p.metadata.name.clone().unwrap_or_default();
        rec.log(
            &format!("pod {SMOKE_NAMESPACE}/{pod_name}"),
            &pods::logs(&ctx.client, SMOKE_NAMESPACE, &pod_name).await,
        );
        described.push(pods::describe(p));
    }
    match verdict {
        Ok(()) => Outcome::passed(format!(
            "{} ClusterTrainingRuntime(s) present; TrainJob {name} on {runtime} Complete",
            runtimes.len()
        )),
        Err(why) => {
            let pods_line = if described.is_empty() {
                "no pods were created for it".to_string()
            } else {
                described.join("; ")
            };
            Outcome::failed(
                format!("TrainJob {SMOKE_NAMESPACE}/{name} {why}; {pods_line}"),
                format!("kubectl -n {SMOKE_NAMESPACE} describe trainjob {name} (rerun with --keep to keep it); no pods means the Trainer or JobSet controller is not running (kubectl -n kubeflow-system get pods); a pending pod names its scheduling or image problem"),
            )
        }
    }
}
