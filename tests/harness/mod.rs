//! A fluent harness that runs the trainstack binary in a scratch directory:
//! `Test::new().file("env.yaml", "...").args(&["render", "-e", "env.yaml"]).run()`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shortest valid environment, for tests to extend.
pub const MINIMAL_ENV: &str = "name: test\ntarget:\n  kind: kind\n  cluster_name: test\n";

/// One run of the binary.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    envs: Vec<(String, String)>,
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

impl Test {
    pub fn new() -> Self {
        Test { dir: tempfile::tempdir().expect("tempdir"), args: Vec::new(), envs: Vec::new() }
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

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Replaces the arguments (to run another command in the same directory).
    pub fn replace_args(mut self, args: &[&str]) -> Self {
        self.args.clear();
        self.args(args)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_trainstack"))
            .args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            // A developer's own kind/docker overrides must not leak into the fakes' tests.
            .env_remove("TRAINSTACK_KIND")
            .env_remove("TRAINSTACK_DOCKER")
            .env_remove("TRAINSTACK_TERRAFORM")
            .env("TRAINSTACK_CACHE_DIR", self.dir.path().join(".cache"))
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run trainstack");
        Output::from(out)
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
    let out = Command::new(env!("CARGO_BIN_EXE_trainstack"))
        .args(args)
        .current_dir(repo())
        .env_remove("KUBECONFIG")
        .output()
        .expect("run trainstack");
    Output::from(out)
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
        Self::output(self.command(args)).await
    }

    /// Runs `args` + the environment files, with no kubeconfig.
    pub async fn run_without_kubeconfig(&self, args: &[&str]) -> Output {
        Self::output(self.command_without_kubeconfig(args)).await
    }

    /// The command [`ClusterScenario::run`] runs, for tests that drive the process themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let kubeconfig = self.path("kubeconfig").display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--kubeconfig", &kubeconfig]);
        self.command_without_kubeconfig(&all)
    }

    fn command_without_kubeconfig(&self, args: &[&str]) -> Command {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        for f in &self.envs {
            all.extend(["-e".into(), f.display().to_string()]);
        }
        all.extend(self.args.iter().cloned());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainstack"));
        cmd.args(all)
            .current_dir(self.dir.path())
            .env("TRAINSTACK_CACHE_DIR", std::env::temp_dir().join("trainstack-test-cache"))
            .env_remove("KUBECONFIG")
            // A developer's own AWS profile must not leak into tests that point AWS at moto.
            .env_remove("AWS_PROFILE")
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs a command off the async runtime (the double is served on it).
    pub async fn output(mut cmd: Command) -> Output {
        tokio::task::spawn_blocking(move || Output::from(cmd.output().expect("run trainstack")))
            .await
            .unwrap()
    }
}
