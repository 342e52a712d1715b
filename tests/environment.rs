//! Environment files that load: layering, derived defaults and the YAML features they may use,
//! pinned by what they render. (Files that must fail are in `bad_inputs.rs`.)

use crate::harness::{Test, MINIMAL_ENV};

/// Renders the files (given in order) and returns the objects.
fn render(files: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let mut t = Test::new();
    let mut args = vec!["render", "--no-addons"];
    for (path, content) in files {
        t = t.file(path, content);
        if !path.starts_with("jobs/") {
            args.extend(["-e", path]);
        }
    }
    let out = t.args(&args).status(0).run();
    out.stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect()
}

fn object<'a>(objs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

/// `name` -> `value` of a container's env list.
fn env_var<'a>(container: &'a serde_json::Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{name} not set in {container}"))
}

#[test]
fn tenant_partial_quota_keeps_the_other_keys_of_defaults_quota() {
    let objs = render(&[(
        "env.yaml",
        &format!("{MINIMAL_ENV}components:\n  tenants:\n    defaults:\n      quota: {{cpu: \"8\", memory: 16Gi, pods: 20}}\n    list:\n      - name: alice\n        quota: {{gpu: 2}}\n"),
    )]);
    let hard = &object(&objs, "ResourceQuota", "alice-quota")["spec"]["hard"];
    assert_eq!(hard["requests.cpu"], "8", "{hard}");
    assert_eq!(hard["limits.memory"], "16Gi", "{hard}");
    assert_eq!(hard["pods"], "20", "{hard}");
    assert_eq!(hard["requests.nvidia.com/gpu"], "2", "{hard}");
}

#[test]
fn platform_namespace_moves_callback_url_and_minio_endpoints() {
    let env = format!(
        "{MINIMAL_ENV}platform_namespace: ml-system\ncomponents:\n  tenants:\n    list: [{{name: alice}}]\n  trainer:\n    jobs_dir: jobs\n  minio:\n    enabled: true\n  mlflow:\n    enabled: true\n"
    );
    let job = "name: detect\ntenant: alice\nframework: custom\nimage: trainer:1\nresources:\n  cpu: {request: \"1\", limit: \"2\"}\n  memory: {request: 1Gi, limit: 2Gi}\ncustom:\n  job_id: \"7\"\n  model_name: m\n  dataset_s3_uri: s3://training-datasets/alice/x\n";
    let objs = render(&[("env.yaml", &env), ("jobs/detect.yaml", job)]);
    let job = objs.iter().find(|o| o["kind"] == "Job").expect("the custom job is rendered");
    let trainer = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        env_var(trainer, "CALLBACK_URL"),
        "http://trainstack-backend.ml-system.svc:8000/api/v1/callbacks"
    );
    assert_eq!(env_var(trainer, "EXTERNAL_STORAGE_ENDPOINT"), "http://minio.ml-system.svc:9000");
    assert_eq!(env_var(trainer, "INTERNAL_STORAGE_ENDPOINT"), "http://minio.ml-system.svc:9000");
    let mlflow = &object(&objs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(env_var(mlflow, "MLFLOW_S3_ENDPOINT_URL"), "http://minio.ml-system.svc:9000");
}

#[test]
fn storage_endpoints_default_to_s3_without_minio() {
    let env = format!(
        "{MINIMAL_ENV}components:\n  tenants:\n    list: [{{name: alice}}]\n  trainer:\n    jobs_dir: jobs\n"
    );
    let job = "name: detect\ntenant: alice\nframework: custom\nimage: trainer:1\nresources:\n  cpu: {request: \"1\", limit: \"2\"}\n  memory: {request: 1Gi, limit: 2Gi}\ncustom:\n  job_id: \"7\"\n  model_name: m\n  dataset_s3_uri: s3://training-datasets/alice/x\n";
    let objs = render(&[("env.yaml", &env), ("jobs/detect.yaml", job)]);
    let job = objs.iter().find(|o| o["kind"] == "Job").expect("the custom job is rendered");
    let trainer = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(env_var(trainer, "EXTERNAL_STORAGE_ENDPOINT"), "https://s3.amazonaws.com");
    assert_eq!(
        env_var(trainer, "CALLBACK_URL"),
        "http://trainstack-backend.trainstack-system.svc:8000/api/v1/callbacks"
    );
}

#[test]
fn ray_gpu_workers_are_off_when_components_gpu_is() {
    let without_gpu =
        render(&[("env.yaml", &format!("{MINIMAL_ENV}components:\n  ray:\n    enabled: true\n"))]);
    let groups = &object(&without_gpu, "RayCluster", "ray")["spec"]["workerGroupSpecs"];
    assert!(groups.as_array().is_none_or(|g| g.is_empty()), "no GPU group without GPUs: {groups}");

    let with_gpu = render(&[(
        "env.yaml",
        &format!("{MINIMAL_ENV}components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools: [{{name: gpu}}]\n  ray:\n    enabled: true\n"),
    )]);
    let groups = &object(&with_gpu, "RayCluster", "ray")["spec"]["workerGroupSpecs"];
    assert_eq!(groups[0]["groupName"], "gpu-workers", "{groups}");
}

#[test]
fn empty_and_comment_only_overlays_change_nothing() {
    let base = format!("{MINIMAL_ENV}components:\n  tenants:\n    list: [{{name: alice}}]\n");
    let alone = render(&[("base.yaml", &base)]);
    let layered = render(&[
        ("base.yaml", &base),
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing differs yet\n---\n"),
    ]);
    assert_eq!(alone, layered);
}

#[test]
fn merge_keys_apply_and_the_mapping_own_keys_win() {
    let env = format!(
        "{MINIMAL_ENV}components:\n  ray:\n    enabled: true\n    head: &head\n      cpu: {{request: 100m, limit: 500m}}\n      memory: {{request: 128Mi, limit: 256Mi}}\n    cpu_workers:\n      resources:\n        <<: *head\n        memory: {{request: 1Gi, limit: 2Gi}}\n"
    );
    let objs = render(&[("env.yaml", &env)]);
    let groups = &object(&objs, "RayCluster", "ray")["spec"]["workerGroupSpecs"];
    let cpu = groups.as_array().unwrap().iter().find(|g| g["groupName"] == "cpu-workers").expect("cpu group");
    let resources = &cpu["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["cpu"], "500m", "{resources}");
    assert_eq!(resources["limits"]["memory"], "2Gi", "{resources}");
}
