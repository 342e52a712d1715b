//! The whole kind lifecycle against a real cluster: `addons lock`, `up`, then `diff` in sync, `smoke` passing,
//! a second `apply` writing nothing, then `down`. Ignored by default (`just test-cluster` runs
//! them); each behaviour here is also tested against the API server double, these only prove it
//! holds on a real API server with real controllers.
//!
//! Needs `kind` and `docker` (the cluster), `kubectl` (kustomize add-ons) and network access for
//! images and add-ons. It creates kind cluster `trainstack` (an existing one is reused) and
//! deletes it at the end. The kubeconfig is the caller's (`$KUBECONFIG` or ~/.kube/config, where
//! kind writes the context); every command gets `--context $TRAINSTACK_TEST_CONTEXT`, default
//! `kind-trainstack` (the context the shipped kind environment names).

use std::process::{Command, Stdio};

use crate::harness::{repo, Output};

const ENVS: [&str; 4] = ["-e", "environments/base.yaml", "-e", "environments/kind.yaml"];

fn context() -> String {
    std::env::var("TRAINSTACK_TEST_CONTEXT").unwrap_or_else(|_| "kind-trainstack".into())
}

/// Runs `trainstack <args> -e base -e kind --context <context>` from the repository root with the
/// caller's environment. stderr (progress of long waits) goes straight to the terminal.
fn trainstack(args: &[&str]) -> Output {
    let context = context();
    eprintln!("+ trainstack {} --context {context}", args.join(" "));
    // Its own spawn on purpose: against a real cluster the caller's kubeconfig and tools are the
    // point, which the harness's environment policy clears.
    let out = Command::new(env!("CARGO_BIN_EXE_trainstack"))
        .args(args)
        .args(ENVS)
        .args(["--context", &context])
        .current_dir(repo())
        .stderr(Stdio::inherit())
        .output()
        .expect("run trainstack");
    Output::from(out)
}

fn code(out: &Output, expected: i32, what: &str) {
    assert_eq!(out.code, expected, "{what}: exit code {}; stdout:\n{}", out.code, out.stdout);
}

/// Tears the environment down when the test ends, passed or not, so a failed run leaves no
/// cluster behind (the test's own `down` makes this a no-op).
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = trainstack(&["down", "--yes"]);
        }
    }
}

#[test]
#[ignore = "needs cluster"]
fn kind_up_is_in_sync_passes_smoke_reapplies_nothing_and_goes_down() {
    let _teardown = Teardown;

    // The shipped kustomize add-ons are pinned by a lock file that only a build with network
    // access can write.
    let lock = trainstack(&["addons", "lock"]);
    code(&lock, 0, "addons lock");

    let up = trainstack(&["up", "--yes", "--timeout", "15m", "--smoke-timeout", "10m"]);
    code(&up, 0, "up");
    let apply_line = up.stdout.lines().find(|l| l.starts_with("apply: ")).expect("apply's summary");
    assert!(apply_line.ends_with(" pruned, 0 failed"), "{apply_line}");

    let diff = trainstack(&["diff"]);
    code(&diff, 0, "diff right after up (in sync)");

    let junit = tempfile::NamedTempFile::new().unwrap();
    let junit_path = junit.path().to_string_lossy().into_owned();
    let smoke = trainstack(&["smoke", "--timeout", "10m", "--junit", &junit_path]);
    code(&smoke, 0, "smoke");
    for check in ["cluster", "objects", "rbac", "trainer", "mlflow", "ray"] {
        let row = smoke.stdout.lines().find(|l| l.starts_with(check)).unwrap_or_else(|| panic!("{check}"));
        assert_eq!(row.split_whitespace().nth(1), Some("passed"), "{row}\n{}", smoke.stdout);
    }
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(xml.contains("<testsuite") && !xml.contains("<failure"), "{xml}");

    let again = trainstack(&["apply", "--timeout", "10m"]);
    code(&again, 0, "apply again");
    let summary = again.stdout.lines().find(|l| l.starts_with("apply: ")).expect("apply's summary");
    let re =
        regex::Regex::new(r"^apply: 0 created, 0 configured, [1-9][0-9]* unchanged, 0 pruned, 0 failed$")
            .unwrap();
    assert!(re.is_match(summary), "a second apply writes nothing: {summary}\n{}", again.stdout);

    let down = trainstack(&["down", "--yes"]);
    code(&down, 0, "down");
    let clusters = Command::new(std::env::var("TRAINSTACK_KIND").unwrap_or_else(|_| "kind".into()))
        .args(["get", "clusters"])
        .output()
        .expect("run kind");
    let listed = String::from_utf8_lossy(&clusters.stdout);
    assert!(!listed.lines().any(|c| c == "trainstack"), "the kind cluster is gone: {listed}");
}
