//! `cluster config|create|delete`: the generated kind config is pinned by snapshots; the CLI
//! wrapper runs against fake `kind` and `docker` executables that record their arguments.

use crate::harness::{run_in_repo, Test};

/// A kind environment named `dev` that loads two local images.
const ENV: &str = "\
name: dev
target:
  kind: kind
  cluster_name: dev
  load_images: [trainer:dev, backend:dev]
";

/// A fake `kind`: logs `kind ARGS` to log.txt, copies the `--config` file to kind-config.yaml,
/// prints `$FAKE_KIND_CLUSTERS` for `get clusters`, and fails the subcommand named by
/// `$FAKE_KIND_FAIL` with twenty lines on stderr. Shell builtins only, so PATH may be empty.
const FAKE_KIND: &str = r#"#!/bin/sh
echo "kind $*" >> "$FAKE_DIR/log.txt"
if [ "$1" = "$FAKE_KIND_FAIL" ]; then
  i=1
  while [ $i -le 20 ]; do echo "kind error line $i" >&2; i=$((i + 1)); done
  exit 1
fi
case "$1 $2" in
  "get clusters")
    if [ -n "$FAKE_KIND_CLUSTERS" ]; then
      for c in $FAKE_KIND_CLUSTERS; do echo "$c"; done
    else
      echo "No kind clusters found." >&2
    fi ;;
  "create cluster")
    while [ $# -gt 0 ]; do
      if [ "$1" = "--config" ]; then
        while IFS= read -r line; do printf '%s\n' "$line"; done < "$2" > "$FAKE_DIR/kind-config.yaml"
      fi
      shift
    done
    echo " ✓ Ensuring node image" >&2 ;;
esac
exit 0
"#;

/// A fake `docker`: logs its arguments; `docker info` fails when `$FAKE_DOCKER_DOWN` is set.
const FAKE_DOCKER: &str = r#"#!/bin/sh
echo "docker $*" >> "$FAKE_DIR/log.txt"
if [ -n "$FAKE_DOCKER_DOWN" ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
  exit 1
fi
exit 0
"#;

/// A scratch directory with `env.yaml`, and fake `kind` and `docker` in `bin/`, which is the
/// child's whole PATH (the fakes need no other program).
fn fakes() -> Test {
    let t = Test::new()
        .file("env.yaml", ENV)
        .executable("bin/kind", FAKE_KIND)
        .executable("bin/docker", FAKE_DOCKER);
    let dir = t.path().to_string_lossy().into_owned();
    t.env("FAKE_DIR", &dir).env("PATH", &format!("{dir}/bin"))
}

/// The commands the fakes ran, with the temporary config path replaced by `<FILE>`.
fn log(t: &Test) -> Vec<String> {
    let text = std::fs::read_to_string(t.path().join("log.txt")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut words: Vec<&str> = l.split(' ').collect();
            if let Some(i) = words.iter().position(|w| *w == "--config") {
                words[i + 1] = "<FILE>";
            }
            words.join(" ")
        })
        .collect()
}

#[test]
fn cluster_config_of_the_shipped_kind_environment() {
    let out = Test::in_repo()
        .args(&["cluster", "config", "-e", "environments/base.yaml", "-e", "environments/kind.yaml"])
        .status(0)
        .run();
    insta::assert_snapshot!("cluster_config_kind", out.stdout);
}

#[test]
fn cluster_config_with_two_gpu_pools() {
    let out = Test::in_repo()
        .args(&["cluster", "config", "-e", "tests/fixtures/kind-two-pools.yaml"])
        .status(0)
        .run();
    insta::assert_snapshot!("cluster_config_two_pools", out.stdout);
}

#[test]
fn cluster_config_as_json_is_the_same_config() {
    let files = ["-e", "environments/base.yaml", "-e", "environments/kind.yaml"];
    let yaml = run_in_repo(&[&["cluster", "config"][..], &files].concat());
    let json =
        Test::in_repo().args(&[&["cluster", "config", "-o", "json"][..], &files].concat()).status(0).run();
    let from_yaml: serde_json::Value = serde_yaml::from_str(&yaml.stdout).unwrap();
    let from_json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(from_yaml, from_json);
}

#[test]
fn cluster_create_runs_kind_with_the_generated_config_then_loads_images() {
    let t = fakes().args(&["cluster", "create", "-e", "env.yaml", "--no-wait"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(
        log(&t),
        [
            "docker info",
            "kind get clusters",
            "kind create cluster --name dev --config <FILE>",
            "kind load docker-image trainer:dev --name dev",
            "kind load docker-image backend:dev --name dev",
        ]
    );
    // The file kind was given is exactly what `cluster config` prints.
    let config =
        Test::new().file("env.yaml", ENV).args(&["cluster", "config", "-e", "env.yaml"]).status(0).run();
    let given = std::fs::read_to_string(t.path().join("kind-config.yaml")).unwrap();
    assert_eq!(given, config.stdout);
    // kind's own progress is passed through, and the next step is spelled out.
    assert!(out.stderr.contains("  ✓ Ensuring node image"), "{}", out.stderr);
    assert!(
        out.stderr.contains("kubeconfig context kind-dev. Next: trainstack apply -e env.yaml"),
        "{}",
        out.stderr
    );
}

#[test]
fn cluster_create_leaves_an_existing_cluster_and_still_loads_images() {
    let t = fakes().env("FAKE_KIND_CLUSTERS", "other dev").args(&[
        "cluster",
        "create",
        "-e",
        "env.yaml",
        "--no-wait",
    ]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(
        log(&t),
        [
            "docker info",
            "kind get clusters",
            "kind load docker-image trainer:dev --name dev",
            "kind load docker-image backend:dev --name dev",
        ]
    );
    assert!(out.stderr.contains("kind cluster \"dev\" already exists"), "{}", out.stderr);
}

#[test]
fn cluster_create_waits_for_nodes_through_the_kind_context() {
    // No cluster exists, so the wait must fail; what matters is that kind was asked to wait
    // with the given bound and the nodes were looked for through `kind-dev` in the kubeconfig
    // that kind wrote to.
    let t =
        fakes().file("kubeconfig", "apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n");
    let kubeconfig = t.path().join("kubeconfig").to_string_lossy().into_owned();
    let t = t.args(&["cluster", "create", "-e", "env.yaml", "--timeout", "2m", "--kubeconfig", &kubeconfig]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        log(&t),
        [
            "docker info".to_string(),
            "kind get clusters".to_string(),
            format!("kind create cluster --name dev --config <FILE> --wait 2m --kubeconfig {kubeconfig}"),
        ]
    );
    assert!(
        out.stderr.contains("kind cluster \"dev\" was created but cannot be reached")
            && out.stderr.contains("context \"kind-dev\" does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn cluster_create_failure_shows_the_command_exit_code_and_stderr_tail() {
    let t =
        fakes().env("FAKE_KIND_FAIL", "create").args(&["cluster", "create", "-e", "env.yaml", "--no-wait"]);
    let t = t.status(1);
    let out = t.run();
    let err = out.stderr.lines().skip_while(|l| !l.starts_with("error:")).collect::<Vec<_>>().join("\n");
    assert!(
        err.starts_with("error: `kind create cluster --name dev --config /")
            && err.contains("failed (exit code 1); the end of its output:"),
        "{err}"
    );
    // The last fifteen lines of stderr, not the first five.
    assert!(err.contains("    kind error line 6\n") && err.ends_with("    kind error line 20"), "{err}");
    assert!(!err.contains("kind error line 5\n"), "{err}");
    // Nothing is loaded into a cluster that was not created.
    assert!(!log(&t).iter().any(|l| l.contains("load")), "{:?}", log(&t));
}

#[test]
fn cluster_create_without_kind_says_what_to_install() {
    let t = Test::new().file("env.yaml", ENV).executable("bin/docker", FAKE_DOCKER);
    let dir = t.path().to_string_lossy().into_owned();
    let t = t
        .env("FAKE_DIR", &dir)
        .env("PATH", &format!("{dir}/bin"))
        .args(&["cluster", "create", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        out.stderr.trim(),
        "error: kind is not installed: see https://kind.sigs.k8s.io/docs/user/quick-start/#installation \
         (kind was not found on PATH)"
    );
    assert!(log(&t).is_empty(), "{:?}", log(&t));
}

#[test]
fn cluster_create_without_docker_says_what_to_install() {
    let t = Test::new().file("env.yaml", ENV).executable("bin/kind", FAKE_KIND);
    let dir = t.path().to_string_lossy().into_owned();
    let t = t
        .env("FAKE_DIR", &dir)
        .env("PATH", &format!("{dir}/bin"))
        .args(&["cluster", "create", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(
        out.stderr.contains("docker is not installed: see https://docs.docker.com/engine/install/"),
        "{}",
        out.stderr
    );
    assert!(log(&t).is_empty(), "{:?}", log(&t));
}

#[test]
fn cluster_create_with_the_docker_engine_down_says_so() {
    let t = fakes().env("FAKE_DOCKER_DOWN", "1").args(&["cluster", "create", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(
        out.stderr.contains("docker is installed but its engine is not running")
            && out.stderr.contains("Cannot connect to the Docker daemon"),
        "{}",
        out.stderr
    );
    assert_eq!(log(&t), ["docker info"]);
}

#[test]
fn cluster_create_uses_trainstack_kind_instead_of_path() {
    let t = fakes().executable("tools/kind-v0.29.0", FAKE_KIND);
    let pinned = t.path().join("tools/kind-v0.29.0").to_string_lossy().into_owned();
    // The kind on PATH would log the same line; removing it proves the override was used.
    std::fs::remove_file(t.path().join("bin/kind")).unwrap();
    let t = t.env("TRAINSTACK_KIND", &pinned).args(&["cluster", "create", "-e", "env.yaml", "--no-wait"]);
    let t = t.status(0);
    t.run();
    assert_eq!(log(&t)[2], "kind create cluster --name dev --config <FILE>");
}

#[test]
fn cluster_delete_with_yes_deletes_it() {
    let t = fakes().env("FAKE_KIND_CLUSTERS", "dev").args(&["cluster", "delete", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), ["docker info", "kind get clusters", "kind delete cluster --name dev"]);
    assert!(out.stderr.contains("kind cluster \"dev\" deleted"), "{}", out.stderr);
}

#[test]
fn cluster_delete_of_a_missing_cluster_is_not_an_error() {
    let t = fakes().args(&["cluster", "delete", "-e", "env.yaml", "--yes"]);
    let t = t.status(0);
    let out = t.run();
    assert_eq!(log(&t), ["docker info", "kind get clusters"]);
    assert!(out.stderr.contains("does not exist; nothing to delete"), "{}", out.stderr);
}

#[test]
fn cluster_delete_refuses_without_yes_when_not_on_a_terminal() {
    let t = fakes().env("FAKE_KIND_CLUSTERS", "dev").args(&["cluster", "delete", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert!(out.stderr.contains("refusing to delete kind cluster \"dev\" without confirmation: pass --yes"));
    assert!(log(&t).is_empty(), "{:?}", log(&t));
}

#[test]
fn cluster_commands_refuse_an_eks_environment() {
    let t = fakes()
        .file("eks.yaml", "name: prod\ntarget:\n  kind: eks\n  cluster_name: prod\n  region: us-east-1\n")
        .args(&["cluster", "create", "-e", "eks.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        out.stderr.trim(),
        "error: environment \"prod\" targets eks; `trainstack cluster` only manages kind clusters"
    );
    assert!(log(&t).is_empty(), "{:?}", log(&t));
}
