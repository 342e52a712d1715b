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
