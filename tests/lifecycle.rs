//! `infra plan|apply|output|destroy`, `up` and `down`: the real binary against a fake
//! `terraform` and fake `kind`/`docker` that record their arguments, and the API server double
//! for the Kubernetes steps.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{repo, Output, Test};
use crate::support::apiserver::{ApiServer, Run};

/// A fake `terraform`: logs `terraform ARGS` to log.txt (after `TF_DATA_DIR=...` when that is
/// set); `plan` writes the `-out` file and exits
/// `$FAKE_TF_PLAN_EXIT` (default 2: changes); `apply` fails unless its plan file exists;
/// `output` prints outputs.json; the subcommand named by `$FAKE_TF_FAIL` fails. Shell builtins
/// only, so PATH may be just the fakes' directory.
const FAKE_TERRAFORM: &str = r#"#!/bin/sh
echo "${TF_DATA_DIR:+TF_DATA_DIR=$TF_DATA_DIR }terraform $*" >> "$FAKE_DIR/log.txt"
case "$1" in -chdir=*) shift ;; esac
if [ "$1" = "$FAKE_TF_FAIL" ]; then
  echo "Error: fake $1 failure" >&2
  exit 1
fi
case "$1" in
  init) echo "Terraform has been successfully initialized!" ;;
  plan)
    for a in "$@"; do
      case "$a" in -out=*) echo "saved plan" > "${a#-out=}" ;; esac
    done
    echo "Plan: 3 to add, 0 to change, 0 to destroy."
    exit "${FAKE_TF_PLAN_EXIT:-2}" ;;
  apply)
    for a in "$@"; do plan="$a"; done
    if [ ! -f "$plan" ]; then echo "Error: no saved plan at $plan" >&2; exit 1; fi
    echo "module.platform.module.eks: Creation complete after 9m12s"
    echo "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." ;;
  output) while IFS= read -r line; do printf '%s\n' "$line"; done < "$FAKE_DIR/outputs.json" ;;
  destroy) echo "Destroy complete! Resources: 3 destroyed." ;;
esac
exit 0
"#;

/// A fake `kind`: logs its arguments; `get clusters` prints `$FAKE_KIND_CLUSTERS`; `create
/// cluster` writes the kubeconfig kind would (a copy of kubeconfig.src, whose context points at
/// the API double) to its `--kubeconfig`; the subcommand named by `$FAKE_KIND_FAIL` fails.
const FAKE_KIND: &str = r#"#!/bin/sh
echo "kind $*" >> "$FAKE_DIR/log.txt"
if [ "$1" = "$FAKE_KIND_FAIL" ]; then
  echo "ERROR: failed to create cluster: fake" >&2
  exit 1
fi
case "$1 $2" in
  "get clusters") for c in $FAKE_KIND_CLUSTERS; do echo "$c"; done ;;
  "create cluster")
    while [ $# -gt 0 ]; do
      if [ "$1" = "--kubeconfig" ]; then
        while IFS= read -r line; do printf '%s\n' "$line"; done < "$FAKE_DIR/kubeconfig.src" > "$2"
      fi
      shift
    done ;;
esac
exit 0
"#;

const FAKE_DOCKER: &str = "#!/bin/sh\necho \"docker $*\" >> \"$FAKE_DIR/log.txt\"\nexit 0\n";

/// The add-on that serves ClusterTrainingRuntime (every environment renders some).
fn runtime_crd_addon() -> String {
    format!(
        "addons:\n  - name: trainer-crds\n    version: v2.3.0\n    source: {{file: {}/../shared/upstream/kubeflow-trainer-v2.3.0/trainer.kubeflow.org_clustertrainingruntimes.yaml}}\n",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// An EKS environment whose Terraform directory is `tf/`; its cluster name and the backend's
/// IRSA role come from Terraform outputs.
fn eks_env(terraform: &str) -> String {
    format!(
        "name: eks-test\ntarget:\n  kind: eks\n  cluster_name: ${{terraform.cluster_name}}\n  region: ${{terraform.region}}\nterraform:\n{terraform}components:\n  tenants:\n    backend:\n      irsa_role_arn: ${{terraform.backend_role_arn}}\n{}",
        runtime_crd_addon()
    )
}

/// A kind environment with cluster `test` (context `kind-test`).
fn kind_env() -> String {
    format!("name: kind-test\ntarget:\n  kind: kind\n  cluster_name: test\n{}", runtime_crd_addon())
}

/// The example outputs shipped beside the dev Terraform, as the fake prints them.
fn example_outputs() -> String {
    std::fs::read_to_string(repo().join("terraform/envs/eks-dev/outputs.example.json")).unwrap()
}

/// A scratch directory with the fakes in `bin/` (the child's whole PATH), `tf/` as the
/// Terraform directory and the example outputs.
fn fakes(env: &str) -> Test {
    let t = Test::new()
        .file("env.yaml", env)
        .file("tf/main.tf", "")
        .file("outputs.json", &example_outputs())
        .executable("bin/terraform", FAKE_TERRAFORM)
        .executable("bin/kind", FAKE_KIND)
        .executable("bin/docker", FAKE_DOCKER);
    let dir = t.path().to_string_lossy().into_owned();
    t.env("FAKE_DIR", &dir).env("PATH", &format!("{dir}/bin"))
}

/// An already initialised Terraform directory (no `init` runs).
fn initialised(t: Test) -> Test {
    t.file("tf/.terraform/terraform.tfstate", "{}")
}

/// The commands the fakes ran, with temporary plan and config paths replaced by `<PLAN>` and
/// `<FILE>`.
fn log(t: &Test) -> Vec<String> {
    let text = std::fs::read_to_string(t.path().join("log.txt")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut words: Vec<String> = l.split(' ').map(String::from).collect();
            for w in words.iter_mut() {
                if w.starts_with("-out=") {
                    *w = "-out=<PLAN>".into();
                } else if w.ends_with(".tfplan") {
                    *w = "<PLAN>".into();
                }
            }
            if let Some(i) = words.iter().position(|w| w == "--config") {
                words[i + 1] = "<FILE>".into();
            }
            words.join(" ")
        })
        .collect()
}

fn raw_log(t: &Test) -> String {
    std::fs::read_to_string(t.path().join("log.txt")).unwrap_or_default()
}

const INIT: &str = "terraform -chdir=tf init -no-color -input=false";
const PLAN: &str = "terraform -chdir=tf plan -no-color -input=false -detailed-exitcode";
const SAVED_PLAN: &str = "terraform -chdir=tf plan -no-color -input=false -detailed-exitcode -out=<PLAN>";
const APPLY: &str = "terraform -chdir=tf apply -no-color -input=false <PLAN>";
const OUTPUT: &str = "terraform -chdir=tf output -json";
const DESTROY: &str = "terraform -chdir=tf destroy -no-color -input=false -auto-approve";

// ------------------------------------------------------------------------------ infra

#[test]
fn infra_plan_initialises_a_fresh_directory_and_exits_2_on_changes() {
    let t = fakes(&eks_env("  dir: tf\n")).args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(2);
    let out = t.run();
    assert_eq!(log(&t), [INIT, PLAN]);
    // terraform's output reaches the user.
    assert!(out.stdout.contains("Plan: 3 to add, 0 to change, 0 to destroy."), "{}", out.stdout);
    assert!(out.stderr.contains("tf has not been initialised: running terraform init"), "{}", out.stderr);
}

#[test]
fn infra_plan_exit_codes_follow_diff() {
    let t = initialised(fakes(&eks_env("  dir: tf\n")))
        .env("FAKE_TF_PLAN_EXIT", "0")
        .args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(0);
    t.run();
    assert_eq!(log(&t), [PLAN], "no init once .terraform exists");

    let t = initialised(fakes(&eks_env("  dir: tf\n")))
        .env("FAKE_TF_FAIL", "plan")
        .args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(
        out.stderr.contains(&format!(
            "error: `{PLAN}` failed (exit code 1); the end of its output:\n    Error: fake plan failure"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn infra_apply_with_yes_applies_the_plan_it_showed_and_refreshes_the_outputs_file() {
    let t = initialised(fakes(&eks_env("  dir: tf\n  outputs_file: state/outputs.json\n")))
        .args(&["infra", "apply", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), [SAVED_PLAN, APPLY, OUTPUT]);
    // The plan applied is the file the plan was saved to.
    let raw = raw_log(&t);
    let saved = raw.split("-out=").nth(1).unwrap().split_whitespace().next().unwrap();
    assert!(raw.contains(&format!("apply -no-color -input=false {saved}\n")), "{raw}");
    assert!(!Path::new(saved).exists(), "the saved plan (it holds secrets) is removed");
    assert!(out.stdout.contains("Apply complete! Resources: 3 added"), "{}", out.stdout);
    let written = std::fs::read_to_string(t.path().join("state/outputs.json")).unwrap();
    assert_eq!(written, example_outputs());
    assert!(out
        .stderr
        .contains("wrote the Terraform outputs to state/outputs.json (terraform.outputs_file)"));
}

#[test]
fn infra_apply_refuses_a_plan_with_changes_without_yes_off_a_terminal() {
    let t = initialised(fakes(&eks_env("  dir: tf\n"))).args(&["infra", "apply", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(log(&t), [SAVED_PLAN], "nothing is applied");
    assert_eq!(
        out.stderr.lines().last().unwrap(),
        "error: refusing to apply the Terraform plan of environment \"eks-test\" without confirmation: pass --yes"
    );
}

#[test]
fn infra_apply_without_changes_needs_no_confirmation_and_applies_nothing() {
    let t = initialised(fakes(&eks_env("  dir: tf\n")))
        .env("FAKE_TF_PLAN_EXIT", "0")
        .args(&["infra", "apply", "-e", "env.yaml"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), [SAVED_PLAN]);
    assert!(out.stderr.contains("is up to date; nothing to apply"), "{}", out.stderr);
}

#[test]
fn infra_output_prints_a_table_or_the_json_document_and_its_file_feeds_rendering() {
    let t = initialised(fakes(&eks_env("  dir: tf\n"))).args(&["infra", "output", "-e", "env.yaml"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), [OUTPUT]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAME", "VALUE"]);
    // Names are padded to the longest, mlflow_admin_secret_arn.
    assert!(lines.contains(&"cluster_name             trainstack-dev"), "{}", out.stdout);
    assert!(out.stdout.contains("private_subnet_ids       [\"subnet-0a1b2c3d4e5f60001\","), "{}", out.stdout);

    let t = initialised(fakes(&eks_env("  dir: tf\n")))
        .args(&["infra", "output", "-e", "env.yaml", "-o", "json"]);
    let t = t.status(0);
    let out = t.run();
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed, serde_json::from_str::<Value>(&example_outputs()).unwrap());

    let t = initialised(fakes(&eks_env("  dir: tf\n"))).args(&[
        "infra",
        "output",
        "-e",
        "env.yaml",
        "--write",
        "saved.json",
    ]);
    let t = t.status(0);
    t.run();
    let render = Test::new()
        .file("env.yaml", &eks_env("  dir: tf\n"))
        .file("saved.json", &std::fs::read_to_string(t.path().join("saved.json")).unwrap())
        .args(&["render", "-e", "env.yaml", "--no-addons", "--terraform-outputs", "saved.json"])
        .status(0)
        .run();
    assert!(
        render
            .stdout
            .contains("eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/trainstack-dev-backend"),
        "{}",
        render.stdout
    );
}

#[test]
fn infra_output_stdout_is_only_the_outputs_when_init_runs_first() {
    // A fresh Terraform directory: init runs, and its chatter must not precede the document.
    let expected: Value = serde_json::from_str(&example_outputs()).unwrap();
    for format in ["json", "yaml", "text"] {
        let t = fakes(&eks_env("  dir: tf\n")).args(&["infra", "output", "-e", "env.yaml", "-o", format]);
        let t = t.status(0);
        let out = t.run();
        assert_eq!(log(&t), [INIT, OUTPUT]);
        assert!(out.stderr.contains("Terraform has been successfully initialized!"), "{}", out.stderr);
        match format {
            "json" => assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), expected),
            "yaml" => assert_eq!(serde_yaml::from_str::<Value>(&out.stdout).unwrap(), expected),
            _ => assert!(out.stdout.starts_with("NAME "), "{}", out.stdout),
        }
    }
}

#[test]
fn infra_destroy_asks_first_and_then_destroys_without_terraforms_prompt() {
    let t = initialised(fakes(&eks_env("  dir: tf\n"))).args(&["infra", "destroy", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(out.stderr.contains(
        "refusing to destroy the infrastructure of environment \"eks-test\" without confirmation: pass --yes"
    ));
    assert!(log(&t).is_empty(), "{:?}", log(&t));

    let t =
        initialised(fakes(&eks_env("  dir: tf\n"))).args(&["infra", "destroy", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    t.run();
    assert_eq!(log(&t), [DESTROY]);
}

#[test]
fn infra_without_terraform_says_what_to_install() {
    let t = fakes(&eks_env("  dir: tf\n"));
    std::fs::remove_file(t.path().join("bin/terraform")).unwrap();
    let out = t.args(&["infra", "plan", "-e", "env.yaml"]).status(1).run();
    assert_eq!(
        out.stderr.trim(),
        "error: terraform is not installed: see https://developer.hashicorp.com/terraform/install \
         (terraform was not found on PATH)"
    );
}

#[test]
fn infra_uses_trainstack_terraform_instead_of_path() {
    let t = initialised(fakes(&eks_env("  dir: tf\n"))).executable("tools/terraform-1.11", FAKE_TERRAFORM);
    let pinned = t.path().join("tools/terraform-1.11").to_string_lossy().into_owned();
    std::fs::remove_file(t.path().join("bin/terraform")).unwrap();
    let t = t.env("TRAINSTACK_TERRAFORM", &pinned).args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(2);
    t.run();
    assert_eq!(log(&t), [PLAN]);
}

#[test]
fn infra_refuses_a_kind_environment() {
    let t = fakes(&kind_env()).args(&["infra", "apply", "-e", "env.yaml", "--yes"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        out.stderr.trim(),
        "error: environment \"kind-test\" targets kind; `trainstack infra` runs the Terraform of EKS environments \
         (a kind cluster is made with `trainstack cluster create` or `trainstack up`)"
    );
    assert!(log(&t).is_empty());
}

#[test]
fn infra_needs_a_terraform_directory() {
    let t = fakes(&eks_env("  outputs_file: outputs.json\n")).args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(
        out.stderr.starts_with("error: env.yaml:6:1: terraform: terraform.dir is not set"),
        "{}",
        out.stderr
    );
    let t = fakes(&eks_env("  dir: nowhere\n")).args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(out.stderr.contains("terraform.dir: nowhere is not a directory"), "{}", out.stderr);
    assert!(log(&t).is_empty());
}

/// Environment `eks-test` sharing the Terraform root `tf/` with others: its settings and its
/// state are its own files under `tf/envs/test/`.
const SHARED_ROOT: &str =
    "  dir: tf\n  var_files: [tf/envs/test/settings.tfvars]\n  backend_config: tf/envs/test/backend.tfbackend\n";

/// The fakes and a shared root with the files [`SHARED_ROOT`] names; the environment's data
/// directory is initialised when `initialised` says so.
fn shared_root(initialised: bool) -> Test {
    let t = fakes(&eks_env(SHARED_ROOT))
        .file("tf/envs/test/settings.tfvars", "environment = \"test\"\n")
        .file("tf/envs/test/backend.tfbackend", "path = \"envs/test/terraform.tfstate\"\n");
    if initialised {
        t.file("tf/.terraform/eks-test/terraform.tfstate", "{}")
    } else {
        t
    }
}

/// The commands [`SHARED_ROOT`] runs, by subcommand: the environment's own data directory
/// always, its backend config at init, its var files where terraform evaluates the
/// configuration (plan, destroy), never with a saved plan (it holds them already).
fn shared_root_commands(t: &Test) -> [String; 6] {
    let abs = |f: &str| t.path().join(f).to_string_lossy().into_owned();
    let env = "TF_DATA_DIR=.terraform/eks-test terraform -chdir=tf";
    let var_file = format!("-var-file={}", abs("tf/envs/test/settings.tfvars"));
    [
        format!(
            "{env} init -no-color -input=false -backend-config={}",
            abs("tf/envs/test/backend.tfbackend")
        ),
        format!("{env} plan -no-color -input=false -detailed-exitcode {var_file}"),
        format!("{env} plan -no-color -input=false -detailed-exitcode {var_file} -out=<PLAN>"),
        format!("{env} apply -no-color -input=false <PLAN>"),
        format!("{env} output -json"),
        format!("{env} destroy -no-color -input=false -auto-approve {var_file}"),
    ]
}

#[test]
fn infra_on_a_shared_root_runs_terraform_with_the_environments_files_and_data_directory() {
    let t = shared_root(false).args(&["infra", "plan", "-e", "env.yaml"]);
    let t = t.status(2);
    let out = t.run();
    let [init, plan, ..] = shared_root_commands(&t);
    assert_eq!(log(&t), [init, plan]);
    assert!(
        out.stderr.contains(
            "tf has not been initialised for this environment (.terraform/eks-test): running terraform init"
        ),
        "{}",
        out.stderr
    );

    // Another environment's initialised data directory is not this one's.
    let t = shared_root(false)
        .file("tf/.terraform/eks-other/terraform.tfstate", "{}")
        .file("tf/.terraform/terraform.tfstate", "{}")
        .args(&["infra", "output", "-e", "env.yaml", "-o", "json"]);
    let t = t.status(0);
    t.run();
    let [init, _, _, _, output, _] = shared_root_commands(&t);
    assert_eq!(log(&t), [init, output]);

    let t = shared_root(true).args(&["infra", "apply", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    t.run();
    let [_, _, saved_plan, apply, ..] = shared_root_commands(&t);
    assert_eq!(log(&t), [saved_plan, apply]);

    let t = shared_root(true).args(&["infra", "output", "-e", "env.yaml"]);
    let t = t.status(0);
    t.run();
    let [.., output, _] = shared_root_commands(&t);
    assert_eq!(log(&t), [output]);

    let t = shared_root(true).args(&["infra", "destroy", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    t.run();
    let [.., destroy] = shared_root_commands(&t);
    assert_eq!(log(&t), [destroy]);
}

#[test]
fn a_data_directory_the_user_set_wins_over_the_environments_own() {
    let t = shared_root(false)
        .env("TF_DATA_DIR", ".terraform-mine")
        .file("tf/.terraform-mine/terraform.tfstate", "{}")
        .args(&["infra", "output", "-e", "env.yaml"]);
    let t = t.status(0);
    t.run();
    assert_eq!(log(&t), ["TF_DATA_DIR=.terraform-mine terraform -chdir=tf output -json"]);
}

#[test]
fn rendering_reads_the_outputs_of_the_environments_own_state() {
    let t = shared_root(true).args(&["render", "-e", "env.yaml", "--no-addons"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), [shared_root_commands(&t)[4].clone()]);
    assert!(out.stdout.contains("arn:aws:iam::123456789012:role/trainstack-dev-backend"), "{}", out.stdout);
}

// ------------------------------------------------------------------------------ up and down

/// Runs a prepared test off the async runtime (the API double serves on it meanwhile).
async fn run(t: Test) -> (Test, Output) {
    tokio::task::spawn_blocking(move || {
        let out = t.run();
        (t, out)
    })
    .await
    .unwrap()
}

/// The fakes plus what kind would write: a kubeconfig whose `kind-test` context is the double.
fn kind_fakes(server: &ApiServer) -> (Test, String) {
    let t = fakes(&kind_env()).file("kubeconfig.src", &server.kubeconfig_yaml("kind-test"));
    let kubeconfig = t.path().join("kubeconfig").to_string_lossy().into_owned();
    (t, kubeconfig)
}

/// The two nodes of a new cluster of `kind_env` (control-plane and one worker), Ready.
fn ready_nodes(server: &ApiServer) {
    ready(server, &["test-control-plane", "test-worker"]);
}

/// Nodes `names`, Ready.
fn ready(server: &ApiServer, names: &[&str]) {
    for &name in names {
        server.seed("kubelet", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}));
        server.set_status(
            "v1",
            "Node",
            None,
            name,
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        );
    }
}

/// `up` on the kind environment against a double whose nodes are Ready.
async fn up_on_kind(server: &ApiServer, extra: &[&str], status: i32) -> (Test, Output, String) {
    ready_nodes(server);
    let (t, kubeconfig) = kind_fakes(server);
    let t = t.args(&["up", "-e", "env.yaml", "--kubeconfig", &kubeconfig]).args(extra).status(status);
    let (t, out) = run(t).await;
    (t, out, kubeconfig)
}

/// Every step header is on stderr, in this order.
fn headers_in_order(out: &Output, headers: &[&str]) {
    let at: Vec<usize> =
        headers.iter().map(|h| out.stderr.find(h).unwrap_or_else(|| panic!("{h}: {}", out.stderr))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", out.stderr);
}

fn backend_sa(server: &ApiServer) -> Option<Value> {
    server.get("v1", "ServiceAccount", Some("trainstack-system"), "trainjob-backend")
}

/// The fakes with the shipped kind environment (base + kind + the CRD add-ons): what kind
/// would write is a kubeconfig whose `kind-trainstack` context is the double.
fn platform_fakes(server: &ApiServer) -> (Test, String) {
    let t = fakes(&kind_env())
        .file("crds.yaml", &crate::harness::crd_addons_overlay())
        .file("kubeconfig.src", &server.kubeconfig_yaml("kind-trainstack"));
    let kubeconfig = t.path().join("kubeconfig").to_string_lossy().into_owned();
    (t, kubeconfig)
}

/// `-e` of base, kind and the CRD add-ons.
fn platform_envs() -> Vec<String> {
    let mut args = Vec::new();
    for f in [repo().join("environments/base.yaml"), repo().join("environments/kind.yaml")] {
        args.extend(["-e".to_string(), f.display().to_string()]);
    }
    args.extend(["-e".to_string(), "crds.yaml".to_string()]);
    args
}

/// Runs `t` while playing KubeRay, which the double lacks: the RayCluster apply creates is
/// reported ready, so the platform is healthy by the time the smoke step looks at it.
async fn run_with_ray_operator(server: &ApiServer, t: Test) -> (Test, Output) {
    let run = run(t);
    tokio::pin!(run);
    loop {
        tokio::select! {
            done = &mut run => return done,
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                let crd = ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "rayclusters.ray.io");
                if server.get(crd.0, crd.1, None, crd.2).is_none() {
                    continue;
                }
                let ray = server.get("ray.io/v1", "RayCluster", Some("trainstack-system"), "ray");
                if ray.is_some_and(|r| r.pointer("/status/state").is_none()) {
                    server.set_status("ray.io/v1", "RayCluster", Some("trainstack-system"), "ray", json!({"state": "ready"}));
                }
            }
        }
    }
}

/// `up --no-wait` of the shipped kind environment, its three nodes Ready, with KubeRay played.
async fn up_on_platform(server: &ApiServer, extra: &[&str], status: i32) -> (Test, Output, String) {
    ready(server, &["trainstack-control-plane", "trainstack-worker", "trainstack-worker2"]);
    let (t, kubeconfig) = platform_fakes(server);
    let envs = platform_envs();
    let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
    let t = t.args(&["up"]).args(&envs).args(&["--kubeconfig", &kubeconfig, "--no-wait"]).args(extra);
    let (t, out) = run_with_ray_operator(server, t.status(status)).await;
    (t, out, kubeconfig)
}

/// Node list and watch requests the double received.
fn node_requests(server: &ApiServer) -> (usize, usize) {
    let requests = server.requests();
    let nodes = requests.iter().filter(|r| r.method == "GET" && r.path == "/api/v1/nodes");
    let watches = nodes.clone().filter(|r| r.query.contains("watch=true")).count();
    (nodes.count() - watches, watches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_create_watches_the_nodes_until_the_last_one_is_ready() {
    let server = ApiServer::start().await;
    ready(&server, &["test-control-plane"]);
    server.seed("kubelet", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "test-worker"}}));
    let (t, kubeconfig) = kind_fakes(&server);
    let t = t.args(&["cluster", "create", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--timeout", "30s"]);
    let created = run(t.status(0));
    let worker_joins = async {
        // Long enough for a poll every 2 s to list the nodes twice.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ready(&server, &["test-worker"]);
    };
    let ((_, out), ()) = tokio::join!(created, worker_joins);
    assert!(out.stderr.contains("waiting for nodes: 1/2 Ready"), "{}", out.stderr);
    assert!(out.stderr.contains("all 2 nodes of kind cluster \"test\" are Ready"), "{}", out.stderr);
    assert_eq!(node_requests(&server), (1, 1), "one list, one watch: {:#?}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_create_names_the_nodes_not_ready_at_the_timeout() {
    let server = ApiServer::start().await;
    ready(&server, &["test-control-plane"]);
    server.seed("kubelet", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "test-worker"}}));
    let (t, kubeconfig) = kind_fakes(&server);
    let t = t.args(&["cluster", "create", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--timeout", "1s"]);
    let (_, out) = run(t.status(1)).await;
    assert!(
        out.stderr
            .contains("nodes of kind cluster \"test\" not ready after 1s: 1/2 ready; waiting on test-worker"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_on_kind_creates_the_cluster_applies_smoke_tests_and_down_reverses_it() {
    let server = ApiServer::start().await;
    crate::smoke::route_platform_services(&server).await;
    server.run_trainjobs(Run::Succeed { log: "trainstack smoke: TrainJob ran\n".into() });
    // hpo is left out: with trial pods running for real, the quick-start batch `apply` creates
    // would pip-install its Python 3.8 client pin. tests/smoke.rs runs hpo on a healthy platform.
    let (t, out, kubeconfig) = up_on_platform(
        &server,
        &["--junit", "smoke.xml", "--smoke-timeout", "90s", "--smoke-skip", "hpo"],
        0,
    )
    .await;
    assert_eq!(
        log(&t),
        [
            "docker info".to_string(),
            "kind get clusters".to_string(),
            format!(
                "kind create cluster --name trainstack --config <FILE> --wait 5m --kubeconfig {kubeconfig}"
            ),
        ]
    );
    headers_in_order(
        &out,
        &[
            "==> step 1/3: create kind cluster \"trainstack\"",
            "==> step 2/3: apply the platform",
            "==> step 3/3: smoke-test the platform",
        ],
    );
    assert!(out.stderr.contains("up: all 3 steps done"), "{}", out.stderr);
    assert!(backend_sa(&server).is_some(), "the platform was applied to the new cluster");
    // apply's summary, then smoke's table: every applicable check passed.
    let apply_summary = out.stdout.lines().position(|l| l.starts_with("apply: ")).expect(&out.stdout);
    let table = out.stdout.lines().position(|l| l.starts_with("cluster ")).expect(&out.stdout);
    assert!(apply_summary < table, "{}", out.stdout);
    crate::smoke::assert_healthy_table(&out, "skipped");
    // --junit reached the smoke step: the file has a testcase per check.
    let cases = crate::smoke::parse_junit(&t.path().join("smoke.xml"));
    let passed: Vec<&str> = cases.iter().filter(|c| c.1 == "passed").map(|c| c.0.as_str()).collect();
    assert_eq!(passed, ["cluster", "objects", "rbac", "trainer", "mlflow", "ray"], "{cases:?}");
    crate::smoke::assert_cleaned_up(&server);

    // down: refused off a terminal without --yes, before anything is deleted.
    std::fs::remove_file(t.path().join("log.txt")).unwrap();
    let t = t.env("FAKE_KIND_CLUSTERS", "trainstack");
    let envs = platform_envs();
    let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
    let mut down = vec!["down"];
    down.extend(&envs);
    down.extend(["--kubeconfig", &kubeconfig]);
    let t = t.replace_args(&down);
    let t = t.status(1);
    let refused = t.run();
    assert!(refused
        .stderr
        .contains("refusing to tear down environment \"kind-dev\" without confirmation: pass --yes"));
    assert!(backend_sa(&server).is_some());
    assert_eq!(log(&t), ["docker info"], "kind is checked first, nothing deleted");

    std::fs::remove_file(t.path().join("log.txt")).unwrap();
    down.push("--yes");
    let t = t.replace_args(&down);
    let (t, out) = run(t.status(0)).await;
    assert!(backend_sa(&server).is_none(), "the objects are deleted first");
    assert!(server.get("v1", "Namespace", None, "trainstack-system").is_none());
    assert_eq!(
        log(&t),
        [
            "docker info".to_string(),
            "kind get clusters".to_string(),
            "docker info".to_string(),
            "kind get clusters".to_string(),
            format!("kind delete cluster --name trainstack --kubeconfig {kubeconfig}"),
        ]
    );
    headers_in_order(
        &out,
        &["==> step 1/2: delete the platform's objects", "==> step 2/2: delete kind cluster \"trainstack\""],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_smoke_check_fails_up_and_smoke_alone_resumes_it() {
    let server = ApiServer::start().await;
    // --mlflow-url reaches the smoke step, and nothing listens there: the mlflow check fails.
    let url = format!("http://127.0.0.1:{}", crate::support::pyservers::free_port());
    let (_, out, kubeconfig) = up_on_platform(
        &server,
        &["--smoke-skip", "trainer,ray", "--smoke-timeout", "20s", "--mlflow-url", &url],
        1,
    )
    .await;
    assert!(backend_sa(&server).is_some(), "apply ran");
    let row = crate::smoke::row(&out, "mlflow");
    assert!(
        row.contains("failed") && row.contains(&format!("GET /health: {url}/health could not be reached")),
        "{}",
        out.stdout
    );
    assert!(crate::smoke::row(&out, "ray").contains("left out by --skip"), "{}", out.stdout);
    let envs = platform_envs().join(" ");
    let tail = out.stderr.split_once("up stopped: ").map(|(_, t)| t).expect(&out.stderr);
    assert_eq!(
        tail,
        format!(
            "step 3/3 (smoke-test the platform) failed; the steps after it did not run.\n\
             To resume once the problem is fixed, run:\n  \
             trainstack smoke {envs} --kubeconfig {kubeconfig} --skip trainer,ray --timeout 20s --mlflow-url {url}\n\
             (or `trainstack up {envs} --kubeconfig {kubeconfig} --no-wait --smoke-skip trainer,ray --smoke-timeout 20s --mlflow-url {url}` again: every step is safe to rerun)\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_step_stops_up_and_says_how_to_resume() {
    let server = ApiServer::start().await;
    let (t, kubeconfig) = kind_fakes(&server);
    let t = t.env("FAKE_KIND_FAIL", "create").args(&[
        "up",
        "-e",
        "env.yaml",
        "--kubeconfig",
        &kubeconfig,
        "--no-addons",
        "--prune",
    ]);
    let (t, out) = run(t.status(1)).await;
    assert!(!log(&t).iter().any(|l| l.contains("load")), "{:?}", log(&t));
    assert_eq!(server.writes().total(), 0, "apply did not run");
    assert!(!out.stderr.contains("step 2/3"), "{}", out.stderr);
    let tail = out.stderr.split_once("up stopped: ").map(|(_, t)| t).expect(&out.stderr);
    assert_eq!(
        tail,
        format!(
            "step 1/3 (create kind cluster \"test\") failed; the steps after it did not run.\n\
             To resume once the problem is fixed, run:\n  \
             trainstack cluster create -e env.yaml --kubeconfig {kubeconfig}\n  \
             trainstack apply -e env.yaml --kubeconfig {kubeconfig} --no-addons --prune\n  \
             trainstack smoke -e env.yaml --kubeconfig {kubeconfig} --no-addons\n\
             (or `trainstack up -e env.yaml --kubeconfig {kubeconfig} --no-addons --prune` again: every step is safe to rerun)\n"
        )
    );
    assert!(out.stderr.contains("ERROR: failed to create cluster: fake"), "{}", out.stderr);
}

#[test]
fn up_refuses_an_unlocked_kustomize_addon_before_creating_the_cluster() {
    let env = "name: kind-test\ntarget:\n  kind: kind\n  cluster_name: test\naddons:\n  - name: demo\n    version: v1.0.0\n    source:\n      kustomize: https://example.com/demo.git/config?ref=v1.0.0\n";
    let t = fakes(env).args(&["up", "-e", "env.yaml", "--kubeconfig", "kubeconfig"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(log(&t), Vec::<String>::new(), "neither kind nor docker ran");
    assert_eq!(
        out.stderr,
        "error: env.yaml:9:18: addons[0].source.kustomize: add-on `demo` is not locked: env.yaml.lock \
         records no sha256 for it; run `trainstack addons lock -e env.yaml` once where kubectl and the \
         source are reachable and commit the lock file, or pass --no-addons\n\
         1 problem found; nothing was rendered or applied\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_on_eks_applies_terraform_then_the_platform_with_its_outputs() {
    let server = ApiServer::start().await;
    let t = initialised(fakes(&eks_env("  dir: tf\n")));
    let kubeconfig = t.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "eks-test").unwrap();
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let t =
        t.args(&["up", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--no-wait", "--yes", "--no-smoke"]);
    let (t, out) = run(t.status(0)).await;
    // --no-smoke leaves the smoke step out.
    assert!(out.stderr.contains("up: all 2 steps done"), "{}", out.stderr);
    assert!(!out.stderr.contains("smoke"), "{}", out.stderr);
    // The saved plan and its apply, then rendering reads the outputs from tf/.
    assert_eq!(log(&t), [SAVED_PLAN, APPLY, OUTPUT]);
    let sa = backend_sa(&server).expect("applied");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/trainstack-dev-backend"
    );
    // terraform's progress goes to stderr, so stdout holds only apply's report.
    assert!(out.stderr.contains("module.platform.module.eks: Creation complete"), "{}", out.stderr);
    assert!(!out.stdout.contains("Apply complete!"), "{}", out.stdout);
    assert!(out.stderr.contains("==> step 1/2: apply the base infrastructure (Terraform)"), "{}", out.stderr);

    // down: delete the objects, then terraform destroy.
    std::fs::remove_file(t.path().join("log.txt")).unwrap();
    let t = t.replace_args(&["down", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--yes"]);
    let (t, _) = run(t.status(0)).await;
    assert!(backend_sa(&server).is_none());
    assert_eq!(log(&t), [OUTPUT, DESTROY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_and_down_on_a_shared_root_run_terraform_with_the_environments_files() {
    let server = ApiServer::start().await;
    let t = shared_root(true);
    let [_, _, saved_plan, apply, output, destroy] = shared_root_commands(&t);
    let kubeconfig = t.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "eks-test").unwrap();
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let t =
        t.args(&["up", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--no-wait", "--yes", "--no-smoke"]);
    let (t, _) = run(t.status(0)).await;
    assert_eq!(log(&t), [saved_plan, apply, output.clone()]);
    assert!(backend_sa(&server).is_some());

    std::fs::remove_file(t.path().join("log.txt")).unwrap();
    let t = t.replace_args(&["down", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--yes"]);
    let (t, _) = run(t.status(0)).await;
    assert!(backend_sa(&server).is_none());
    assert_eq!(log(&t), [output, destroy]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_on_eks_without_yes_off_a_terminal_stops_before_applying_anything() {
    let server = ApiServer::start().await;
    let t = fakes(&eks_env("  dir: tf\n"));
    let kubeconfig = t.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "eks-test").unwrap();
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let t = t.args(&["up", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--no-addons"]);
    let (t, out) = run(t.status(1)).await;
    assert_eq!(log(&t), [INIT, SAVED_PLAN]);
    assert_eq!(server.writes().total(), 0);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "To resume once the problem is fixed, run:\n  trainstack infra apply -e env.yaml --kubeconfig {kubeconfig}\n  trainstack apply -e env.yaml --kubeconfig {kubeconfig} --no-addons\n"
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_on_eks_stops_before_destroying_when_the_objects_cannot_be_deleted() {
    let t = initialised(fakes(&eks_env("  dir: tf\n")))
        .file("kubeconfig", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
    let kubeconfig = t.path().join("kubeconfig").to_string_lossy().into_owned();
    let t = t.args(&["down", "-e", "env.yaml", "--kubeconfig", &kubeconfig, "--context", "gone", "--yes"]);
    let (t, out) = run(t.status(1)).await;
    assert!(!log(&t).iter().any(|l| l.contains("destroy")), "{:?}", log(&t));
    assert!(out.stderr.contains("context \"gone\" does not exist"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "down stopped: step 1/2 (delete the platform's objects) failed; the steps after it did not run.\n\
             To resume once the problem is fixed, run:\n  \
             trainstack delete -e env.yaml --kubeconfig {kubeconfig} --context gone --yes\n  \
             trainstack infra destroy -e env.yaml --kubeconfig {kubeconfig} --context gone --yes\n"
        )),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------------------------ Terraform outputs

/// Output names declared in the Terraform root's outputs.tf.
fn declared_outputs() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("terraform/outputs.tf")).unwrap();
    let re = regex::Regex::new(r#"(?m)^output "([a-z0-9_]+)""#).unwrap();
    re.captures_iter(&text).map(|c| c[1].to_string()).collect()
}

/// Every `.tf` file under `dir`, recursively.
fn tf_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.ends_with(".terraform") {
            tf_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "tf") {
            out.push(path);
        }
    }
}

#[test]
fn the_terraform_outputs_contract_is_declared_once_in_the_shared_root() {
    let mut files = Vec::new();
    tf_files(&repo().join("terraform"), &mut files);
    let roots: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(repo().join("terraform/modules")))
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("\noutput \""))
        .collect();
    assert_eq!(roots, [&repo().join("terraform/outputs.tf")], "root outputs outside terraform/outputs.tf");
    assert!(
        !repo().join("terraform/envs/eks-dev/main.tf").exists()
            && !repo().join("terraform/envs/eks-prod/main.tf").exists()
    );
}

/// Names assigned in a `.tfvars` file (top-level `name = ...` lines).
fn tfvars_names(path: &Path) -> std::collections::BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^([a-z0-9_]+)\s*=").unwrap();
    re.captures_iter(&std::fs::read_to_string(path).unwrap()).map(|c| c[1].to_string()).collect()
}

#[test]
fn each_environment_file_names_its_own_settings_and_state_for_the_shared_root() {
    let variables = std::fs::read_to_string(repo().join("terraform/variables.tf")).unwrap();
    let blocks = regex::Regex::new(r#"(?ms)^variable "([a-z0-9_]+)" \{(.*?)^\}"#).unwrap();
    let mut declared = std::collections::BTreeSet::new();
    let mut required = std::collections::BTreeSet::new();
    for c in blocks.captures_iter(&variables) {
        declared.insert(c[1].to_string());
        if !c[2].contains("default") {
            required.insert(c[1].to_string());
        }
    }
    assert!(required.contains("environment") && required.contains("rds_deletion_protection"), "{required:?}");
    let mut backends = std::collections::BTreeSet::new();
    for env in ["eks-dev", "eks-prod"] {
        let text = std::fs::read_to_string(repo().join(format!("environments/{env}.yaml"))).unwrap();
        let settings = format!("../terraform/envs/{env}/settings.tfvars");
        let backend = format!("../terraform/envs/{env}/backend.tfbackend");
        assert!(text.contains("\n  dir: ../terraform\n"), "{env} runs the shared root");
        assert!(text.contains(&format!("\n  var_files: [{settings}]\n")), "{env} names {settings}");
        assert!(text.contains(&format!("\n  backend_config: {backend}\n")), "{env} names {backend}");
        let set = tfvars_names(&repo().join("environments").join(&settings));
        assert!(
            set.is_subset(&declared),
            "{settings} sets undeclared variables: {:?}",
            set.difference(&declared)
        );
        assert!(required.is_subset(&set), "{settings} misses {:?}", required.difference(&set));
        let state = std::fs::read_to_string(repo().join("environments").join(&backend)).unwrap();
        assert!(backends.insert(state.lines().find(|l| l.starts_with("path")).unwrap().to_string()));
    }
}

#[test]
fn terraform_outputs_are_what_the_environment_files_reference() {
    let dev = declared_outputs();
    // The node group reconciler needs these beside the references below.
    for name in ["node_role_arn", "private_subnet_ids", "cluster_name", "region"] {
        assert!(dev.contains(name), "{name} is not an output");
    }
    for env in ["eks-dev", "eks-prod"] {
        let example =
            std::fs::read_to_string(repo().join(format!("terraform/envs/{env}/outputs.example.json")))
                .unwrap();
        let example: serde_json::Map<String, Value> = serde_json::from_str(&example).unwrap();
        let keys: std::collections::BTreeSet<String> = example.keys().cloned().collect();
        assert_eq!(keys, dev, "terraform/envs/{env}/outputs.example.json has exactly the declared outputs");
    }
    let re = regex::Regex::new(r"\$\{terraform\.([A-Za-z0-9_]+)\}").unwrap();
    let mut referenced = 0;
    for entry in std::fs::read_dir(repo().join("environments")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for c in re.captures_iter(&std::fs::read_to_string(&path).unwrap()) {
                referenced += 1;
                assert!(
                    dev.contains(&c[1]),
                    "{} references ${{terraform.{}}}, which no environment outputs",
                    path.display(),
                    &c[1]
                );
            }
        }
    }
    assert!(referenced > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_apply_step_is_resumed_by_apply_alone() {
    let server = ApiServer::start().await;
    // Without the add-on the cluster serves no ClusterTrainingRuntime: apply refuses to start.
    let (t, out, kubeconfig) = up_on_kind(&server, &["--no-addons"], 1).await;
    assert!(log(&t).iter().any(|l| l.starts_with("kind create cluster")), "{:?}", log(&t));
    assert!(out.stderr.contains("the cluster does not serve these kinds"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "up stopped: step 2/3 (apply the platform) failed; the steps after it did not run.\n\
             To resume once the problem is fixed, run:\n  \
             trainstack apply -e env.yaml --kubeconfig {kubeconfig} --no-addons\n  \
             trainstack smoke -e env.yaml --kubeconfig {kubeconfig} --no-addons\n"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn help_teaches_the_lifecycle_commands() {
    let mut up = crate::harness::Test::in_repo()
        .args(&["up", "--help"])
        .status(0)
        .stdout_contains("trainstack up -e environments/base.yaml -e environments/kind.yaml")
        .stdout_contains("--prune")
        .stdout_lacks("--dry-run");
    for flag in
        ["--no-smoke", "--smoke-skip", "--smoke-timeout", "--junit", "--junit smoke.xml", "--mlflow-url"]
    {
        up = up.stdout_contains(flag);
    }
    up.run();
    let mut infra = crate::harness::Test::in_repo()
        .args(&["infra", "--help"])
        .status(0)
        .stdout_contains("--write tf.json");
    for sub in ["plan", "apply", "output", "destroy"] {
        infra = infra.stdout_contains(&format!("  {sub} "));
    }
    infra.run();
}

// ------------------------------------------------------------------------------ one render

/// `env` with the backend's IRSA role read from the Terraform outputs of `tf/`: every load of
/// the environment runs `terraform output` once, so the fake's log counts the loads.
fn with_terraform_reference(env: &str) -> String {
    format!(
        "{env}terraform:\n  dir: tf\ncomponents:\n  tenants:\n    backend:\n      irsa_role_arn: ${{terraform.backend_role_arn}}\n"
    )
}

fn outputs_run(t: &Test) -> usize {
    log(t).iter().filter(|l| *l == OUTPUT).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_and_down_on_kind_load_and_render_the_environment_once() {
    let server = ApiServer::start().await;
    ready_nodes(&server);
    let t = fakes(&with_terraform_reference(&kind_env()))
        .file("kubeconfig.src", &server.kubeconfig_yaml("kind-test"));
    let kubeconfig = t.path().join("kubeconfig").to_string_lossy().into_owned();
    let t = t.args(&[
        "up",
        "-e",
        "env.yaml",
        "--kubeconfig",
        &kubeconfig,
        "--no-wait",
        "--smoke-skip",
        "trainer",
    ]);
    let (t, out) = run(t.status(0)).await;
    headers_in_order(&out, &["==> step 1/3: create kind", "==> step 2/3: apply", "==> step 3/3: smoke"]);
    assert!(backend_sa(&server)
        .is_some_and(|sa| sa.pointer("/metadata/annotations/eks.amazonaws.com~1role-arn").is_some()));
    assert_eq!(outputs_run(&t), 1, "cluster create, apply and smoke share one load: {:?}", log(&t));

    std::fs::remove_file(t.path().join("log.txt")).unwrap();
    let t = t.env("FAKE_KIND_CLUSTERS", "test").replace_args(&[
        "down",
        "-e",
        "env.yaml",
        "--kubeconfig",
        &kubeconfig,
        "--yes",
    ]);
    let (t, _) = run(t.status(0)).await;
    assert!(backend_sa(&server).is_none());
    assert_eq!(outputs_run(&t), 1, "delete and cluster delete share one load: {:?}", log(&t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_on_eks_reads_the_terraform_outputs_once_after_infra_apply() {
    let server = ApiServer::start().await;
    let t = initialised(fakes(&eks_env("  dir: tf\n")));
    let kubeconfig = t.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "eks-test").unwrap();
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let t = t.args(&[
        "up",
        "-e",
        "env.yaml",
        "--kubeconfig",
        &kubeconfig,
        "--no-wait",
        "--yes",
        "--smoke-skip",
        "trainer",
    ]);
    let (t, out) = run(t).await;
    headers_in_order(&out, &["==> step 1/3: apply the base", "==> step 2/3: apply", "==> step 3/3: smoke"]);
    // The smoke step ran on the render of the apply step: `terraform output` once, after apply.
    assert_eq!(log(&t), [SAVED_PLAN, APPLY, OUTPUT], "{}", out.stderr);
}
