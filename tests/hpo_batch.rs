//! Optuna trial batches: the objects rendered for CPU, GPU and `gpu_model`-map batches (pinned
//! as snapshots), that they pass `validate`, and that a pull Secret's value never reaches `diff`.

use serde::Deserialize as _;
use serde_json::Value;

use crate::harness::{Test, MINIMAL_ENV};

/// Tenant alice (CPU) and team-vision (4 GPUs) with workspaces; two GPU pools, one with a taint
/// of its own.
const ENV: &str = "components:
  tenants:
    list:
      - name: alice
        hpo: {enabled: true}
      - name: team-vision
        quota: {gpu: 4}
        hpo: {enabled: true, shared_cache_dir: /mnt/cache}
  gpu:
    enabled: true
    provider: kind
    pools:
      - name: a100
      - name: t4-spot
        taints:
          - {key: nvidia.com/gpu, value: \"true\", effect: NoSchedule}
          - {key: spot, effect: NoExecute}
  hpo:
    enabled: true
    batches_dir: batches
";

const OBJECTIVE: &str =
    "def objective(trial):\n    x = trial.suggest_float(\"x\", -10, 10)\n    return (x - 2) ** 2\n";

const CPU: &str = "tenant: alice
study: quick
direction: minimize
objective_file: objective.py
requirements_list: [numpy==2.1.3]
";

const GPU: &str = "tenant: team-vision
study: vision-lr
directions: [minimize, maximize]
sampler: {name: NSGAIISampler, params: {population_size: 8}}
objective_file: objective.py
n_trials: 4
parallelism: 2
use_gpu: true
gpu_model: a100
resources:
  gpu: {request: 2, limit: 2}
  memory: {request: 8Gi, limit: 16Gi}
dev_shm_size: 2Gi
tmp_cache_dir: /scratch
image_pull:
  docker_config_json:
    auths:
      ghcr.io: {username: bot, password_env: GHCR_TOKEN}
";

const MAP: &str = "name: sweep
tenant: team-vision
study: vision-lr
direction: maximize
pruner: {name: HyperbandPruner, params: {min_resource: 1}}
objective_file: objective.py
n_trials: 10
parallelism: 4
use_gpu: true
gpu_model: {a100: 3, t4-spot: 4}
runtime_image: ghcr.io/astral-sh/uv:python3.12-bookworm-slim
requirements_file: requirements.txt
use_tmp_cache_mem: true
tmp_cache_size: 1Gi
top_n_artifacts: 2
log_flush_lines: 20
image_pull: {registry: registry.example.com, username: deploy, password_env: REGISTRY_TOKEN}
";

/// A scratch environment with the three batches.
fn scenario() -> Test {
    Test::new()
        .file("env.yaml", &format!("{MINIMAL_ENV}{ENV}"))
        .file("batches/objective.py", OBJECTIVE)
        .file("batches/requirements.txt", "torch==2.5.1\n")
        .file("batches/cpu.yaml", CPU)
        .file("batches/gpu.yaml", GPU)
        .file("batches/map.yaml", MAP)
        .env("GHCR_TOKEN", "ghcr-secret-token")
        .env("REGISTRY_TOKEN", "registry-secret-token")
}

/// The rendered objects of one batch, as YAML documents, with `runner.py` (another part of
/// issue 11 writes it; its content is pinned by the render test below) replaced by a marker.
fn batch_objects(stream: &str, batch: &str) -> String {
    let runner = std::fs::read_to_string(crate::harness::repo().join("hpo/runner.py")).unwrap();
    let mut out = String::new();
    // A YAML stream reader, not a split on `---`: runner.py's own comment rules end in `---`.
    for doc in serde_yaml::Deserializer::from_str(stream) {
        let mut v = Value::deserialize(doc).unwrap();
        if v.is_null() {
            continue;
        }
        if v["metadata"]["labels"]["trainstack.io/hpo-batch"] != batch {
            continue;
        }
        if let Some(r) = v.pointer_mut("/data/runner.py") {
            assert_eq!(r.as_str(), Some(runner.as_str()), "the ConfigMap carries hpo/runner.py as it is");
            *r = Value::String("<hpo/runner.py>".into());
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&v).unwrap());
    }
    out
}

fn rendered() -> String {
    scenario().args(&["render", "-e", "env.yaml"]).status(0).run().stdout
}

#[test]
fn cpu_batch_renders_configmap_and_one_indexed_job() {
    insta::assert_snapshot!("hpo_batch_cpu", batch_objects(&rendered(), "cpu"));
}

#[test]
fn gpu_batch_pins_its_pool_and_renders_the_pull_secret() {
    insta::assert_snapshot!("hpo_batch_gpu", batch_objects(&rendered(), "gpu"));
}

#[test]
fn gpu_model_map_renders_one_job_per_pool_and_one_for_the_trials_left() {
    let out = batch_objects(&rendered(), "sweep");
    let jobs: Vec<(String, u64, u64)> = out
        .split("---\n")
        .filter(|d| d.contains("kind: Job"))
        .map(|d| {
            let v: Value = serde_yaml::from_str(d).unwrap();
            let spec = &v["spec"];
            (
                v["metadata"]["name"].as_str().unwrap().to_string(),
                spec["completions"].as_u64().unwrap(),
                spec["parallelism"].as_u64().unwrap(),
            )
        })
        .collect();
    // 3 + 4 pinned, 3 left; parallelism 4 shared so at most 4 trials run at once.
    assert_eq!(
        jobs,
        [
            ("hpo-sweep".to_string(), 3, 1),
            ("hpo-sweep-a100".to_string(), 3, 1),
            ("hpo-sweep-t4-spot".to_string(), 4, 2)
        ]
    );
    insta::assert_snapshot!("hpo_batch_gpu_model_map", out);
}

#[test]
fn every_rendered_batch_object_passes_validate() {
    let out = scenario().args(&["validate", "--no-addons", "-e", "env.yaml"]).status(0).run();
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("valid: "), "{}", out.stdout);
    // Only the trainer runtimes go unchecked here (--no-addons leaves their CRD out); every
    // batch object is a built-in kind checked against the API types.
    let unchecked: Vec<&str> = (out.stdout.lines().chain(out.stderr.lines()))
        .filter(|l| l.starts_with("warning: ") && !l.contains("ClusterTrainingRuntime"))
        .collect();
    assert!(unchecked.is_empty(), "{unchecked:?}");
}

#[test]
fn the_client_pin_defaults_to_4_5_on_a_python_3_8_image_and_to_the_server_pin_otherwise() {
    let out = rendered();
    let pin = |batch: &str| {
        let doc = batch_objects(&out, batch);
        let cm = doc.split("---\n").find(|d| d.contains("kind: ConfigMap")).unwrap().to_string();
        let v: Value = serde_yaml::from_str(&cm).unwrap();
        let json: Value = serde_json::from_str(v["data"]["batch.json"].as_str().unwrap()).unwrap();
        json["optuna_version"].as_str().unwrap().to_string()
    };
    // cpu: the default CPU image (python3.8); sweep: python3.12; gpu: the default GPU image,
    // whose tag names no Python.
    assert_eq!(
        (pin("cpu").as_str(), pin("sweep").as_str(), pin("gpu").as_str()),
        ("4.5.0", "5.0.0", "5.0.0")
    );
}

#[test]
fn the_runner_is_told_the_tmp_cache_dir_the_job_mounts_so_it_installs_packages_there() {
    let out = rendered();
    for (batch, dir) in [("cpu", "/mnt/tmp-cache"), ("gpu", "/scratch")] {
        let docs = batch_objects(&out, batch);
        let doc = |kind: &str| -> Value {
            serde_yaml::from_str(
                docs.split("---\n").find(|d| d.contains(&format!("kind: {kind}\n"))).unwrap(),
            )
            .unwrap()
        };
        let json: Value =
            serde_json::from_str(doc("ConfigMap")["data"]["batch.json"].as_str().unwrap()).unwrap();
        assert_eq!(json["tmp_cache_dir"], dir, "{batch}");
        let mounts = &doc("Job")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
        let mounted =
            mounts.as_array().unwrap().iter().any(|m| m["name"] == "tmp-cache" && m["mountPath"] == dir);
        assert!(mounted, "{batch}: the Job mounts tmp-cache at {dir}: {mounts}");
    }
}

#[tokio::test]
async fn a_pull_secret_password_never_reaches_diff_and_is_read_from_its_variable() {
    let s = crate::harness::ClusterScenario::start().await.var("REGISTRY_TOKEN", "registry-secret-token");
    std::fs::create_dir_all(s.path("private")).unwrap();
    std::fs::write(s.path("private/objective.py"), OBJECTIVE).unwrap();
    std::fs::write(
        s.path("private/private.yaml"),
        "tenant: alice\nstudy: quick\nobjective_file: objective.py\nruntime_image: registry.example.com/t/uv:python3.12-slim\nimage_pull: {registry: registry.example.com, username: deploy, password_env: REGISTRY_TOKEN}\n",
    )
    .unwrap();
    s.overlay("components:\n  hpo:\n    batches_dir: private\n");
    let out = s.test(&["diff"]).status(2).run_async().await;
    assert!(out.stdout.contains("hpo-private-pull"), "{}", out.stdout);
    assert!(out.stdout.contains("'.dockerconfigjson': '<redacted"), "{}", out.stdout);
    // The password, and the base64 docker config JSON (`{"auths":` ...) that carries it.
    for leak in ["registry-secret-token", "eyJhdXRocyI6"] {
        assert!(!out.stdout.contains(leak) && !out.stderr.contains(leak), "diff shows {leak:?}");
    }
}
