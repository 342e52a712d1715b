//! The one way tests run the trainstack binary: a builder with arguments, environment, working
//! directory, stdin and expectations, checked inside `run()`:
//! `Test::new().file("env.yaml", "...").args(&["render", "-e", "env.yaml"]).status(0).run()`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The shortest valid environment, for tests to extend.
pub const MINIMAL_ENV: &str = "name: test\ntarget:\n  kind: kind\n  cluster_name: test\n";

/// A command for the binary with nothing of the developer's shell that could change its
/// behaviour: a kubeconfig, an AWS profile or credentials, trainstack's own overrides, a cache.
/// Tests set what they need on top.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainstack"));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if ["KUBECONFIG", "XDG_CACHE_HOME", "COLUMNS"].contains(&key)
            || key.starts_with("AWS_")
            || key.starts_with("TRAINSTACK_")
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// One run of the binary.
pub struct Test {
    dir: tempfile::TempDir,
    current_dir: Option<PathBuf>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    removed: Vec<String>,
    stdin: Option<String>,
    status: Option<i32>,
    stdout_contains: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_contains: Vec<String>,
    stderr_lacks: Vec<String>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            current_dir: None,
            args: Vec::new(),
            envs: Vec::new(),
            removed: Vec::new(),
            stdin: None,
            status: None,
            stdout_contains: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr_contains: Vec::new(),
            stderr_lacks: Vec::new(),
        }
    }

    /// A run from the repository root (for shipped environments and templates).
    pub fn in_repo() -> Self {
        Self::new().current_dir(repo())
    }

    /// Writes a file (parent directories created) relative to the scratch directory.
    pub fn file(self, path: &str, content: &str) -> Self {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    /// Writes an executable file (a fake of a CLI the binary runs).
    #[cfg(unix)]
    pub fn executable(self, path: &str, content: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let this = self.file(path, content);
        let p = this.dir.path().join(path);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        this
    }

    /// Sets an environment variable of the child process (after the harness's own).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves a variable the harness sets unset (e.g. the cache directory `--help` would show).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.removed.push(key.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Replaces the arguments and forgets the expectations (to run another command in the same
    /// directory).
    pub fn replace_args(mut self, args: &[&str]) -> Self {
        self.args.clear();
        self.reset_expectations().args(args)
    }

    /// Runs in `dir` instead of the scratch directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Feeds `input` on stdin (otherwise stdin is empty).
    // No command reads a piped stdin yet; kept so the builder covers every input of a run.
    #[allow(dead_code)]
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_string());
        self
    }

    /// Expects the exit code `code`.
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    pub fn stdout_contains(mut self, text: &str) -> Self {
        self.stdout_contains.push(text.to_string());
        self
    }

    pub fn stdout_lacks(mut self, text: &str) -> Self {
        self.stdout_lacks.push(text.to_string());
        self
    }

    pub fn stderr_contains(mut self, text: &str) -> Self {
        self.stderr_contains.push(text.to_string());
        self
    }

    // For symmetry with stdout_lacks; no converted test needs it yet.
    #[allow(dead_code)]
    pub fn stderr_lacks(mut self, text: &str) -> Self {
        self.stderr_lacks.push(text.to_string());
        self
    }

    /// Forgets the expectations (to run another command on the same builder).
    pub fn reset_expectations(mut self) -> Self {
        self.status = None;
        self.stdout_contains.clear();
        self.stdout_lacks.clear();
        self.stderr_contains.clear();
        self.stderr_lacks.clear();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The process this builder describes, for a test that must drive it itself.
    pub fn command(&self) -> Command {
        let mut cmd = command();
        cmd.args(&self.args)
            .current_dir(self.current_dir.as_deref().unwrap_or(self.dir.path()))
            .env("TRAINSTACK_CACHE_DIR", self.dir.path().join(".cache"))
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        for key in &self.removed {
            cmd.env_remove(key);
        }
        cmd
    }

    /// Runs the binary, checks the expectations and returns the output for further assertions.
    #[track_caller]
    pub fn run(&self) -> Output {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run trainstack");
        let input = self.stdin.clone().unwrap_or_default();
        let mut pipe = child.stdin.take().unwrap();
        // Written from a thread so a child that fills its output pipe before reading stdin
        // cannot deadlock the test; a child that never reads stdin closes the pipe (ignored).
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
        let out = Output::from(child.wait_with_output().expect("wait for trainstack"));
        writer.join().unwrap();
        self.check(&out);
        out
    }

    /// [`Test::run`] off the async runtime, for tests whose API double is served on it.
    pub async fn run_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.run())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    #[track_caller]
    fn check(&self, out: &Output) {
        let shown = || format!("trainstack {:?}\n{out}", self.args);
        if let Some(code) = self.status {
            assert_eq!(out.code, code, "unexpected exit code of {}", shown());
        }
        for text in &self.stdout_contains {
            assert!(out.stdout.contains(text.as_str()), "stdout lacks {text:?}: {}", shown());
        }
        for text in &self.stdout_lacks {
            assert!(!out.stdout.contains(text.as_str()), "stdout shows {text:?}: {}", shown());
        }
        for text in &self.stderr_contains {
            assert!(out.stderr.contains(text.as_str()), "stderr lacks {text:?}: {}", shown());
        }
        for text in &self.stderr_lacks {
            assert!(!out.stderr.contains(text.as_str()), "stderr shows {text:?}: {}", shown());
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The repository root (for shipped environments and templates).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the repository root.
pub fn run_in_repo(args: &[&str]) -> Output {
    Test::in_repo().args(args).run()
}

/// An overlay that swaps the environment's remote add-ons for the upstream CRD files beside the
/// checkout, so custom resources and their CRDs go in one offline apply.
pub(crate) fn crd_addons_overlay() -> String {
    let upstream = |file: &str| format!("{}/../shared/upstream/{file}", env!("CARGO_MANIFEST_DIR"));
    format!(
        "addons:\n  - name: trainer-crds\n    version: v2.3.0\n    source: {{file: {}}}\n  - name: trainjob-crds\n    version: v2.3.0\n    source: {{file: {}}}\n  - name: raycluster-crds\n    version: v1.7.0\n    source: {{file: {}}}\n",
        upstream("kubeflow-trainer-v2.3.0/trainer.kubeflow.org_clustertrainingruntimes.yaml"),
        upstream("kubeflow-trainer-v2.3.0/trainer.kubeflow.org_trainjobs.yaml"),
        upstream("kuberay-v1.7.0/ray.io_rayclusters.yaml"),
    )
}

/// The binary against the API server double: a scratch directory with a kubeconfig for the
/// double, and runs on shipped environment files + the CRD add-on overlay + an overlay the test
/// rewrites (`extra.yaml`).
pub struct ClusterScenario {
    dir: tempfile::TempDir,
    /// The Kubernetes API double.
    pub server: crate::support::apiserver::ApiServer,
    envs: Vec<PathBuf>,
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

impl ClusterScenario {
    /// base + kind against a fresh double (context `kind-trainstack`).
    pub async fn start() -> Self {
        Self::with(crate::support::apiserver::ApiServer::start().await)
    }

    /// base + kind against `server`.
    pub fn with(server: crate::support::apiserver::ApiServer) -> Self {
        Self::new(server, &["environments/base.yaml", "environments/kind.yaml"], "kind-trainstack")
    }

    /// `envs` are repository paths (`environments/base.yaml`); `context` names the kubeconfig
    /// context written for the double.
    pub fn new(server: crate::support::apiserver::ApiServer, envs: &[&str], context: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        server.write_kubeconfig(&dir.path().join("kubeconfig"), context).unwrap();
        std::fs::write(dir.path().join("crds.yaml"), crd_addons_overlay()).unwrap();
        std::fs::write(dir.path().join("extra.yaml"), "{}\n").unwrap();
        let mut envs: Vec<PathBuf> = envs.iter().map(|e| repo().join(e)).collect();
        envs.extend([dir.path().join("crds.yaml"), dir.path().join("extra.yaml")]);
        ClusterScenario { dir, server, envs, args: Vec::new(), vars: Vec::new() }
    }

    /// Arguments added to every run (after the command's own).
    pub fn always(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable of every run.
    pub fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    /// A file in the scratch directory.
    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// Rewrites the last overlay (e.g. to change one field).
    pub fn overlay(&self, yaml: &str) {
        std::fs::write(self.path("extra.yaml"), yaml).unwrap();
    }

    /// Runs `args` + the environment files + `--kubeconfig` for the double.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.test(args).run_async().await
    }

    /// The run of `args` + the environment files + `--kubeconfig` for the double, for a test to
    /// add expectations to before [`Test::run_async`].
    pub fn test(&self, args: &[&str]) -> Test {
        let kubeconfig = self.path("kubeconfig").display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--kubeconfig", &kubeconfig]);
        self.test_without_kubeconfig(&all)
    }

    /// The run of `args` + the environment files, with no kubeconfig.
    pub fn test_without_kubeconfig(&self, args: &[&str]) -> Test {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        for f in &self.envs {
            all.extend(["-e".into(), f.display().to_string()]);
        }
        all.extend(self.args.iter().cloned());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut test = Test::new()
            .args(&all)
            .current_dir(self.dir.path())
            // Shared across scenarios: add-on downloads are the same for all of them.
            .env(
                "TRAINSTACK_CACHE_DIR",
                &std::env::temp_dir().join("trainstack-test-cache").display().to_string(),
            );
        for (k, v) in &self.vars {
            test = test.env(k, v);
        }
        test
    }

    /// The command [`ClusterScenario::run`] runs, for tests that drive the process themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        self.test(args).command()
    }
}
