//! Real MLflow tracking servers, a real Ray head, Optuna gRPC storage servers and
//! optuna-dashboards on 127.0.0.1, started from the test virtualenv (`pytools`), for the smoke
//! checks and the HPO runner tests to talk to.
//!
//! Each server runs in its own process group in a temporary directory and is killed, group
//! and descendants, when dropped. Servers shared by a whole test run live in statics, which
//! are never dropped, so every server also gets a watchdog process that kills its group as
//! soon as the test binary is gone: nothing outlives the run.

use std::collections::HashMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::OnceCell;

pub use super::ports::free_port;
use super::ports::free_ports;
use super::pytools::{pyenv, tool};

/// The admin of [`mlflow_with_basic_auth`].
pub const MLFLOW_ADMIN: (&str, &str) = ("smoke-admin", "smoke-admin-password-1234");

/// A running server; dropping it kills every process it started.
pub struct PyServer {
    name: &'static str,
    /// Shared servers are read through `&'static`; whether the leader still runs needs `&mut`.
    leader: Mutex<Child>,
    watchdog: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl PyServer {
    /// `127.0.0.1:<port>`, what the double's `route_service` takes.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's working directory (database, artifacts, Ray session).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines the server wrote, for assertion messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Panics with the server's log tail when it is gone, so a test whose server died reads
    /// as that (a Ray head names the subprocess that took it down) rather than as whatever
    /// its client made of a refused connection.
    pub fn assert_running(&self) {
        if let Some(status) = self.exit_status() {
            panic!("{self:?} exited with {status} during the test:\n{}", self.log_tail());
        }
    }

    /// The first process the server started whose command line contains `needle`.
    pub fn process_running(&self, needle: &str) -> Option<u32> {
        let leader = self.leader.lock().unwrap_or_else(|e| e.into_inner()).id();
        descendants(leader).into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
    }

    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.leader.lock().unwrap_or_else(|e| e.into_inner()).try_wait().ok().flatten()
    }

    fn stop(&mut self) {
        let leader = self.leader.get_mut().unwrap_or_else(|e| e.into_inner());
        let pgid = leader.id();
        // Descendants that left the group (Ray workers start new sessions) are found through
        // their parents before the parents die.
        let mut pids = descendants(pgid);
        pids.retain(|p| *p != pgid);
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
        if !pids.is_empty() {
            let mut kill = Command::new("kill");
            kill.arg("-KILL").arg("--").args(pids.iter().map(u32::to_string)).stderr(Stdio::null());
            let _ = kill.status();
        }
        let _ = leader.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for PyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.name, self.address())
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Every process below `root` (by parent pid, from /proc), `root` included.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        found.extend(children.get(&found[i]).cloned().unwrap_or_default());
        i += 1;
    }
    found
}

/// How a server is started: its working directory and port in, the command out.
type MakeCommand<'m> = &'m dyn Fn(&Path, u16) -> Command;

/// Where a server listens: on the port it was given, or on one it bound itself and wrote
/// into a file of its directory (found there by the function, `None` until written).
#[derive(Clone, Copy)]
enum Listens {
    On(u16),
    Reported(fn(&Path) -> Option<u16>),
}

impl Listens {
    fn port(self, dir: &Path) -> Option<u16> {
        match self {
            Listens::On(port) => Some(port),
            Listens::Reported(find) => find(dir),
        }
    }
}

/// How [`launch`] knows a server is ready: `GET path` answers 200, or (for a gRPC server, which
/// has no HTTP endpoint) the port accepts connections. `also` are more servers of the process
/// that must listen first: given ports accept connections, reported ones are written (a Ray
/// head dies whole when one of them cannot bind, and its Jobs API needs its dashboard agent).
struct Probe<'p> {
    http: Option<&'p str>,
    also: Vec<Listens>,
}

impl<'p> From<&'p str> for Probe<'p> {
    fn from(path: &'p str) -> Self {
        Probe { http: Some(path), also: Vec::new() }
    }
}

impl Probe<'_> {
    const TCP: Probe<'static> = Probe { http: None, also: Vec::new() };

    async fn ready(&self, port: u16, dir: &Path) -> bool {
        for also in &self.also {
            let listens = match *also {
                Listens::On(port) => tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
                // Written once it listens, and maybe on the node's address rather than loopback.
                Listens::Reported(find) => find(dir).is_some(),
            };
            if !listens {
                return false;
            }
        }
        match self.http {
            Some(path) => http_status(port, path).await == Some(200),
            None => tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
        }
    }
}

/// Starts the server on a port from [`free_port`] in a fresh directory, in its own process
/// group with a watchdog, and waits until `ready` says so.
async fn launch<'p>(
    name: &'static str,
    make: MakeCommand<'_>,
    ready: impl Into<Probe<'p>>,
    limit: Duration,
) -> PyServer {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    launch_in(name, make(dir.path(), port), dir, Listens::On(port), ready.into(), limit).await
}

/// Starts `command` in `dir` and waits until it listens where `listens` says and `ready`
/// answers. A server that exits first fails the test with its log: the ports it was given
/// are nobody else's, so a bind failure is a finding, not bad luck to retry.
async fn launch_in(
    name: &'static str,
    command: Command,
    dir: tempfile::TempDir,
    listens: Listens,
    ready: Probe<'_>,
    limit: Duration,
) -> PyServer {
    let mut server = spawn(name, command, dir);
    let started = Instant::now();
    loop {
        if let Some(status) = server.exit_status() {
            panic!("{name} exited with {status} before it was ready:\n{}", server.log_tail());
        }
        if let Some(port) = listens.port(server.dir()) {
            if ready.ready(port, server.dir()).await {
                server.port = port;
                return server;
            }
        }
        if started.elapsed() > limit {
            panic!("{name} was not ready within {limit:?}:\n{}", server.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn spawn(name: &'static str, mut command: Command, dir: tempfile::TempDir) -> PyServer {
    let log = dir.path().join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("server log file");
    let err = out.try_clone().expect("server log file");
    let leader = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    // dash's kill takes `-PGID` without `--`.
    let watchdog = Command::new("sh")
        .args([
            "-c",
            r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -KILL "-$2" 2>/dev/null"#,
            "trainstack-test-watchdog",
            &std::process::id().to_string(),
            &leader.id().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("watchdog shell");
    PyServer { name, leader: Mutex::new(leader), watchdog, port: 0, log, dir }
}

/// The status of `GET path` on 127.0.0.1:port, `None` when nothing answers.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await.ok()?.ok()?;
    let line = String::from_utf8_lossy(&head[..n]).to_string();
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mlflow_command(dir: &Path, port: u16) -> Command {
    let mut command = Command::new(tool("mlflow"));
    command
        .arg("server")
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("artifacts"))
        .arg("--serve-artifacts")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "1");
    command
}

const MLFLOW_START_LIMIT: Duration = Duration::from_secs(240);

/// A tracking server with a SQLite backend store and a local artifact store it serves.
pub async fn mlflow() -> PyServer {
    launch("mlflow", &mlflow_command, "/health", MLFLOW_START_LIMIT).await
}

/// A tracking server as [`mlflow`] starts it, with `MLFLOW_SERVER_ALLOWED_HOSTS` set to
/// `allowed_hosts` (the Host patterns it answers).
pub async fn mlflow_allowing_hosts(allowed_hosts: &str) -> PyServer {
    let make = |dir: &Path, port: u16| {
        let mut command = mlflow_command(dir, port);
        command.env("MLFLOW_SERVER_ALLOWED_HOSTS", allowed_hosts);
        command
    };
    launch("mlflow (allowed hosts)", &make, "/health", MLFLOW_START_LIMIT).await
}

/// A tracking server running the `basic-auth` app with [`MLFLOW_ADMIN`] as its admin.
pub async fn mlflow_with_basic_auth() -> PyServer {
    let make = |dir: &Path, port: u16| {
        let ini = dir.join("basic_auth.ini");
        std::fs::write(
            &ini,
            format!(
                "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\nadmin_username = {}\nadmin_password = {}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                dir.join("basic_auth.db").display(),
                MLFLOW_ADMIN.0,
                MLFLOW_ADMIN.1
            ),
        )
        .expect("basic auth config");
        let mut command = mlflow_command(dir, port);
        command
            .args(["--app-name", "basic-auth"])
            .env("MLFLOW_AUTH_CONFIG_PATH", &ini)
            // basic-auth refuses to start without a static CSRF key since MLflow 3.x.
            .env("MLFLOW_FLASK_SERVER_SECRET_KEY", "trainstack-smoke-test-key");
        command
    };
    launch("mlflow (basic-auth)", &make, "/health", MLFLOW_START_LIMIT).await
}

/// One plain tracking server for the whole test run.
pub async fn shared_mlflow() -> &'static PyServer {
    static SERVER: OnceCell<PyServer> = OnceCell::const_new();
    SERVER.get_or_init(mlflow).await
}

/// A Ray head with the dashboard (Jobs API) and one CPU.
pub async fn ray_head() -> PyServer {
    ray_head_with_driver_path(&pyenv().join("bin")).await
}

/// Worker ports per Ray head: one CPU runs a few workers at a time (job supervisor, driver,
/// task), and a port comes back to the pool when its worker exits.
const RAY_WORKER_PORTS: u16 = 64;

/// A Ray head whose job drivers find `python` in `bin` first (before the rest of PATH).
///
/// Every server of the head that can bind port 0 does (GCS, raylet, object manager, the
/// dashboard and its agents), and the dashboard's port is read from its log. The Ray Client
/// server cannot (Ray takes no port below 1024 for it, 0 included) and workers take ports from
/// a range, so those come from [`free_ports`]: a head whose client server found its port taken
/// would pass a dashboard-only readiness check and then be killed whole by `ray start --block`
/// a moment later. The head counts as started once the dashboard, its agent and the Ray Client
/// server all listen, so a head that dies of any of them dies here, with its log.
pub async fn ray_head_with_driver_path(bin: &Path) -> PyServer {
    ray_head_with_client_port(bin, free_port()).await
}

/// [`ray_head_with_driver_path`] with the Ray Client server on `client`.
pub async fn ray_head_with_client_port(bin: &Path, client: u16) -> PyServer {
    let path = match std::env::var_os("PATH") {
        Some(p) => std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&p)))
            .expect("PATH"),
        None => bin.as_os_str().to_owned(),
    };
    let workers = free_ports(RAY_WORKER_PORTS);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(tool("ray"));
    command
        .args(["start", "--head", "--block", "--disable-usage-stats"])
        .args(["--node-ip-address", "127.0.0.1", "--port", "0"])
        .args(["--dashboard-host", "127.0.0.1", "--dashboard-port", "0"])
        .args(["--include-dashboard", "true"])
        .args(["--ray-client-server-port", &client.to_string()])
        .args(["--dashboard-agent-listen-port", "0"])
        .args(["--min-worker-port", &workers.start.to_string()])
        .args(["--max-worker-port", &(workers.end - 1).to_string()])
        .args(["--num-cpus", "1", "--object-store-memory", "100000000"])
        .arg("--temp-dir")
        .arg(dir.path().join("ray"))
        // Job entrypoints run `python`: normally the virtualenv's, which has Ray.
        .env("PATH", path)
        .env("RAY_USAGE_STATS_ENABLED", "0");
    let ready = Probe {
        http: Some("/api/jobs/"),
        also: vec![Listens::On(client), Listens::Reported(ray_dashboard_agent_port)],
    };
    launch_in("ray", command, dir, Listens::Reported(ray_dashboard_port), ready, Duration::from_secs(180))
        .await
}

/// The HTTP port of the head's dashboard agent, which runs the jobs the dashboard accepts
/// (until it listens, submissions fail with "No available agent"). The agent writes it to a
/// file named after the node once it listens; -1 there means its HTTP server failed to start.
fn ray_dashboard_agent_port(dir: &Path) -> Option<u16> {
    let session = dir.join("ray/session_latest");
    let file = std::fs::read_dir(session)
        .ok()?
        .flatten()
        .find(|f| f.file_name().to_string_lossy().starts_with("dashboard_agent_listen_port_"))?;
    std::fs::read_to_string(file.path()).ok()?.trim().parse().ok()
}

/// The port the Ray dashboard bound, from the line its head logs once it listens (Ray writes
/// no port file for the dashboard, unlike its GCS and agents).
fn ray_dashboard_port(dir: &Path) -> Option<u16> {
    let log = std::fs::read_to_string(dir.join("ray/session_latest/logs/dashboard.log")).ok()?;
    let address = log.lines().find_map(|l| l.split_once("Dashboard head http address: "))?.1;
    address.trim().rsplit_once(':')?.1.parse().ok()
}

/// One basic-auth tracking server for the whole test run.
pub async fn shared_mlflow_with_basic_auth() -> &'static PyServer {
    static SERVER: OnceCell<PyServer> = OnceCell::const_new();
    SERVER.get_or_init(mlflow_with_basic_auth).await
}

/// One Ray head for the whole test run.
pub async fn shared_ray() -> &'static PyServer {
    static SERVER: OnceCell<PyServer> = OnceCell::const_new();
    SERVER.get_or_init(ray_head).await
}

/// The workspace's `hpo-storage` server: the Deployment's own script (`templates/hpo/storage.py`,
/// `run_grpc_proxy_server` over the journal, and the reaper of dead pods' trials) with its default
/// reaper settings. The journal lives outside the server's directory so a second server can take
/// over the same study.
pub async fn optuna_storage(journal: &Path) -> PyServer {
    optuna_storage_with(journal, &[]).await
}

/// [`optuna_storage`] with more `TRAINSTACK_HPO_*` variables of the script set (a test's short
/// reaper interval, for one).
pub async fn optuna_storage_with(journal: &Path, env: &[(&str, &str)]) -> PyServer {
    storage_on(journal, env, free_port()).await
}

/// Stops `server` and starts [`optuna_storage_with`] on the same journal and port after `down`,
/// as a restarted Deployment comes back behind the same Service.
pub async fn restart_optuna_storage(
    server: PyServer,
    journal: &Path,
    env: &[(&str, &str)],
    down: Duration,
) -> PyServer {
    let port = server.port;
    drop(server);
    tokio::time::sleep(down).await;
    storage_on(journal, env, port).await
}

async fn storage_on(journal: &Path, env: &[(&str, &str)], port: u16) -> PyServer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/hpo/storage.py");
    let mut command = Command::new(tool("python"));
    command
        .args(["-W", "ignore"])
        .arg(&script)
        .env("TRAINSTACK_HPO_JOURNAL", journal)
        .env("TRAINSTACK_HPO_HOST", "127.0.0.1")
        .env("TRAINSTACK_HPO_PORT", port.to_string())
        .envs(env.iter().copied());
    let dir = tempfile::tempdir().expect("temp dir");
    launch_in("optuna gRPC storage", command, dir, Listens::On(port), Probe::TCP, Duration::from_secs(120))
        .await
}

/// The workspace's `hpo-dashboard`: `optuna_dashboard.run_server` against the gRPC storage at
/// `storage` (`host:port`) with the file-system artifact store in `artifacts`.
pub async fn optuna_dashboard(storage: &str, artifacts: &Path) -> PyServer {
    const SERVER: &str = r#"
import sys
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import GrpcStorageProxy
from optuna_dashboard import run_server
host, port = sys.argv[1].rsplit(":", 1)
run_server(GrpcStorageProxy(host=host, port=int(port)), host="127.0.0.1", port=int(sys.argv[2]),
           artifact_store=FileSystemArtifactStore(sys.argv[3]))
"#;
    let make = |_: &Path, port: u16| {
        let mut command = Command::new(tool("python"));
        command.args(["-W", "ignore", "-c", SERVER, storage, &port.to_string()]).arg(artifacts);
        command
    };
    launch("optuna-dashboard", &make, "/api/studies", Duration::from_secs(240)).await
}
