//! `render`: shipped environments are pinned as snapshots and byte-identical across runs;
//! add-ons join the set in the right phases; `--out` writes a GitOps tree.

use crate::harness::{run_in_repo, Test, MINIMAL_ENV};

const OPERATOR: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: Namespace
metadata:
  name: widget-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: widget-controller
  namespace: widget-system
spec:
  selector: {matchLabels: {app: widget}}
  template:
    metadata: {labels: {app: widget}}
    spec:
      containers:
        - name: manager
          image: example.com/widget:v1.0.0
";

fn addon_env() -> String {
    format!("{MINIMAL_ENV}addons:\n  - name: widgets\n    version: v1.0.0\n    source: {{file: addons/widgets.yaml}}\n")
}

/// (kind, name) of each object, in output order.
fn kinds(stream: &str) -> Vec<(String, String)> {
    stream
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let v: serde_json::Value = serde_yaml::from_str(d).unwrap();
            (v["kind"].as_str().unwrap().to_string(), v["metadata"]["name"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn addons_join_the_set_in_apply_phase_order() {
    let t = Test::new().file("env.yaml", &addon_env()).file("addons/widgets.yaml", OPERATOR);
    let out = t.args(&["render", "-e", "env.yaml"]).status(0).run();
    let got = kinds(&out.stdout);
    let pos = |k: &str| {
        got.iter().position(|(kind, _)| kind == k).unwrap_or_else(|| panic!("{k} missing in {got:?}"))
    };
    // CRDs first, then namespaces, then config, then the operator, then workloads.
    assert_eq!(pos("CustomResourceDefinition"), 0);
    assert!(pos("Namespace") < pos("Deployment"));
    assert!(out.stdout.contains("trainstack.io/addon: widgets"));
}

#[test]
fn no_addons_leaves_them_out() {
    let t = Test::new().file("env.yaml", &addon_env()).file("addons/widgets.yaml", OPERATOR);
    let out = t.args(&["render", "-e", "env.yaml", "--no-addons"]).status(0).run();
    assert!(!out.stdout.contains("widget"), "{}", out.stdout);
}

#[test]
fn out_dir_writes_one_file_per_object_and_replaces_stale_files() {
    let t = Test::new()
        .file("env.yaml", &addon_env())
        .file("addons/widgets.yaml", OPERATOR)
        .args(&["render", "-e", "env.yaml", "--out", "deploy"]);
    let t = t.status(0);
    t.run();
    let crd = t.path().join("deploy/00-crds/_cluster/customresourcedefinition-widgets.example.com.yaml");
    assert!(crd.exists());
    let dep = t.path().join("deploy/03-operators/widget-system/deployment-widget-controller.yaml");
    assert!(dep.exists());
    // Rendering again without the add-on removes its files.
    std::fs::write(t.path().join("env.yaml"), MINIMAL_ENV).unwrap();
    let t = t.status(0);
    t.run();
    assert!(!dep.exists() && !crd.exists());
}

#[test]
fn out_dir_with_json_output_lists_the_files_written() {
    let t = Test::new()
        .file("env.yaml", &addon_env())
        .file("addons/widgets.yaml", OPERATOR)
        .args(&["render", "-e", "env.yaml", "--out", "deploy", "-o", "json"]);
    let t = t.status(0);
    let out = t.run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["dir"], "deploy");
    let files = v["files"].as_array().unwrap();
    // Every object of the set, in apply order, each in the file that holds it.
    assert_eq!(files[0]["path"], "deploy/00-crds/_cluster/customresourcedefinition-widgets.example.com.yaml");
    assert_eq!(
        (files[0]["kind"].as_str(), files[0]["namespace"].as_str()),
        (Some("CustomResourceDefinition"), None)
    );
    for f in files {
        let text = std::fs::read_to_string(t.path().join(f["path"].as_str().unwrap())).unwrap();
        let obj: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!((&obj["kind"], &obj["metadata"]["name"]), (&f["kind"], &f["name"]));
    }
    let stream = Test::new().file("env.yaml", &addon_env()).file("addons/widgets.yaml", OPERATOR);
    let stream = stream.args(&["render", "-e", "env.yaml"]).run();
    assert_eq!(files.len(), kinds(&stream.stdout).len());
    // Text output keeps stdout empty (the count goes to stderr).
    let text = t.replace_args(&["render", "-e", "env.yaml", "--out", "deploy"]).status(0).run();
    assert_eq!(text.stdout, "");
}

#[test]
fn out_phase_folders_are_the_ones_the_docs_table_names() {
    let t = Test::new()
        .file("env.yaml", &addon_env())
        .file("addons/widgets.yaml", OPERATOR)
        .args(&["render", "-e", "env.yaml", "--out", "deploy"]);
    let t = t.status(0);
    t.run();
    let docs = std::fs::read_to_string(crate::harness::repo().join("docs/operations.md")).unwrap();
    let documented: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .filter(|cell| cell.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(documented, ["00-crds", "01-namespaces", "02-config", "03-operators", "04-workloads"]);
    for entry in std::fs::read_dir(t.path().join("deploy")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with('.') {
            assert!(documented.contains(&name.as_str()), "folder {name} is not in the docs' phase table");
        }
    }
}

#[test]
fn out_dir_refuses_a_directory_it_did_not_write() {
    let t = Test::new()
        .file("env.yaml", MINIMAL_ENV)
        .file("deploy/README.md", "mine\n")
        .args(&["render", "-e", "env.yaml", "--out", "deploy"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        out.stderr.trim(),
        "error: deploy is not empty and was not written by trainstack render (no .trainstack-render file); choose an empty or new directory"
    );
    assert!(t.path().join("deploy/README.md").exists());
}

#[test]
fn json_output_is_a_list() {
    let out = Test::new()
        .file("env.yaml", MINIMAL_ENV)
        .args(&["render", "-e", "env.yaml", "-o", "json"])
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    assert!(!v["items"].as_array().unwrap().is_empty());
}

#[test]
fn help_and_completions() {
    Test::in_repo()
        .args(&["render", "--help"])
        .status(0)
        .stdout_contains("--no-addons")
        .stdout_contains("--out <DIR>")
        .run();
    Test::in_repo().args(&["completions", "bash"]).status(0).stdout_contains("_trainstack").run();
}

#[test]
fn a_closed_stdout_pipe_stops_quietly() {
    // The reader is gone before trainstack writes (as with `render | head` once head has exited).
    // Spawned by hand: the builder's run() reads stdout to the end, and this test must close it.
    let mut child = crate::harness::Test::in_repo()
        .args(&[
            "render",
            "--no-addons",
            "-o",
            "json",
            "-e",
            "environments/base.yaml",
            "-e",
            "environments/kind.yaml",
        ])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run trainstack");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for trainstack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn completions_into_a_closed_pipe_exit_141_without_a_panic() {
    // `trainstack completions bash | head -1`: clap_complete used to panic on the failed write.
    // The pipe's read end is closed before the child starts. A test thread that forks at the
    // same moment can still hold a copy of it until its exec, and then the write lands in the
    // pipe's buffer; so a run may try three times, and every run must end quietly.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        // Spawned by hand: stdout must be a pipe whose reader is already gone.
        let out = crate::harness::Test::in_repo()
            .args(&["completions", "bash"])
            .command()
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run trainstack");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        codes.push(out.status.code());
        if out.status.code() == Some(141) {
            return;
        }
    }
    panic!("completions into a closed pipe never exited 141: {codes:?}");
}

#[test]
fn usage_errors_exit_1_never_the_drift_code_2() {
    // A CI job reads exit 2 from `diff`, `status` and `infra plan` as "changes present".
    for args in [
        &["diff", "--concurrency", "0", "-e", "environments/base.yaml"][..],
        &["apply", "--timeout", "5", "-e", "environments/base.yaml"],
        &["status", "-o", "deploy/kind", "-e", "environments/base.yaml"],
        &["infra", "plan", "--no-such-flag"],
        &["no-such-command"],
        &[],
    ] {
        let out = crate::harness::Test::in_repo().args(args).status(1).run();
        assert!(!out.stderr.is_empty(), "trainstack {args:?} explains the usage error");
    }
    for args in [&["--help"][..], &["diff", "--help"], &["--version"]] {
        let out = crate::harness::Test::in_repo().args(args).status(0).run();
        assert!(!out.stdout.is_empty());
    }
}

const TF_OUTPUTS: &str = "terraform/envs/eks-dev/outputs.example.json";

/// Renders shipped environment files from the repository twice and checks the runs agree.
fn shipped(files: &[&str]) -> String {
    let mut args = vec!["render", "--no-addons", "--terraform-outputs", TF_OUTPUTS];
    for f in files {
        args.extend(["-e", f]);
    }
    let first = crate::harness::Test::in_repo().args(&args).status(0).run();
    let second = run_in_repo(&args);
    assert_eq!(first.stdout, second.stdout, "render is not byte-identical across runs");
    first.stdout
}

#[test]
fn shipped_kind() {
    insta::assert_snapshot!("kind", shipped(&["environments/base.yaml", "environments/kind.yaml"]));
}

#[test]
fn shipped_eks_dev() {
    insta::assert_snapshot!("eks-dev", shipped(&["environments/base.yaml", "environments/eks-dev.yaml"]));
}

#[test]
fn shipped_eks_prod() {
    insta::assert_snapshot!("eks-prod", shipped(&["environments/base.yaml", "environments/eks-prod.yaml"]));
}

/// The documents of a rendered stream that `component` rendered.
fn component_docs(out: &str, component: &str) -> String {
    let label = format!("app.kubernetes.io/name: {component}\n");
    out.split("---\n").filter(|d| d.contains(&label)).collect::<Vec<_>>().join("---\n")
}

#[test]
fn external_secrets_mode_renders_a_secret_store_and_external_secrets_instead_of_secrets() {
    let apply = shipped(&["environments/base.yaml", "environments/eks-dev.yaml"]);
    let applied = component_docs(&apply, "secrets");
    assert!(applied.contains("kind: Secret\n") && !applied.contains("\ndata:"), "{applied}");
    let out = shipped(&[
        "environments/base.yaml",
        "environments/eks-dev.yaml",
        "tests/fixtures/external-secrets.yaml",
    ]);
    let eso = component_docs(&out, "secrets");
    assert!(!eso.contains("kind: Secret\n"), "the operator writes the Secret: {eso}");
    insta::assert_snapshot!("eks-dev-external-secrets", eso);
}

#[test]
fn mlflow_alb_is_internal_unless_an_environment_opts_in_by_name() {
    let scheme = |out: &str| {
        out.lines().find(|l| l.contains("alb.ingress.kubernetes.io/scheme:")).map(|l| l.trim().to_string())
    };
    let dev = shipped(&["environments/base.yaml", "environments/eks-dev.yaml"]);
    assert_eq!(scheme(&dev).as_deref(), Some("alb.ingress.kubernetes.io/scheme: internal"));
    let prod = shipped(&["environments/base.yaml", "environments/eks-prod.yaml"]);
    assert_eq!(
        scheme(&prod).as_deref(),
        Some("alb.ingress.kubernetes.io/scheme: internet-facing"),
        "behind auth"
    );
    let public = shipped(&[
        "environments/base.yaml",
        "environments/eks-dev.yaml",
        "tests/fixtures/public-mlflow-without-auth.yaml",
    ]);
    assert_eq!(scheme(&public).as_deref(), Some("alb.ingress.kubernetes.io/scheme: internet-facing"));
}

#[test]
fn trainer_v2_1_renders_pod_template_overrides() {
    let out =
        shipped(&["environments/base.yaml", "environments/eks-dev.yaml", "tests/fixtures/trainer-v2.1.yaml"]);
    assert!(out.contains("podTemplateOverrides:") && !out.contains("runtimePatches:"));
    let v23 = shipped(&["environments/base.yaml", "environments/eks-dev.yaml"]);
    assert!(v23.contains("runtimePatches:") && !v23.contains("podTemplateOverrides:"));
    insta::assert_snapshot!("eks-dev-trainer-v2.1", out);
}

#[test]
fn gpu_request_is_absent_for_cpu_jobs() {
    let out = shipped(&["environments/base.yaml", "environments/kind.yaml"]);
    // Quotas may say 0 GPUs; container resources must not carry the key at all.
    let gpu_keys: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("nvidia.com/gpu:")).collect();
    assert!(gpu_keys.is_empty(), "kind renders no GPU resources: {gpu_keys:?}");
    let eks = shipped(&["environments/base.yaml", "environments/eks-dev.yaml"]);
    assert!(eks.lines().any(|l| l.trim_start() == "nvidia.com/gpu: 1"), "GPU jobs request GPUs on EKS");
}
