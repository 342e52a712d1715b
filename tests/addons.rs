//! Add-on loading against a real local HTTP server, real files and a fake `kubectl`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use trainstack::addons::{AddonError, AddonLoader};
use trainstack::env::model::{Addon, AddonSource};

/// A small upstream-like stream: a namespace, a `List` holding a CRD and a ServiceAccount, and a
/// Deployment, so flattening and document order are both exercised.
const STREAM: &str = "\
# operator manifests
---
apiVersion: v1
kind: Namespace
metadata:
  name: demo-system
---
apiVersion: v1
kind: List
items:
- apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata:
    name: widgets.demo.example.com
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: demo-controller
    namespace: demo-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-controller
  namespace: demo-system
spec:
  replicas: 1
";

const STREAM_OBJECTS: [(&str, &str); 4] = [
    ("Namespace", "demo-system"),
    ("CustomResourceDefinition", "widgets.demo.example.com"),
    ("ServiceAccount", "demo-controller"),
    ("Deployment", "demo-controller"),
];

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A response: status code, reason phrase, body.
type Reply = (u16, &'static str, String);

/// A one-thread HTTP/1.1 server on 127.0.0.1 answering each request with `respond(path, n)`,
/// where `n` counts earlier requests. Records every requested path.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(respond: impl Fn(&str, usize) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Non-blocking accept so the thread can notice `stop` and drop the listener, which is
        // what makes the port refuse connections after `shutdown`.
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let mut stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                stream.set_nonblocking(false).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
                let n = {
                    let mut r = reqs.lock().unwrap();
                    r.push(path.clone());
                    r.len() - 1
                };
                let (code, reason, body) = respond(&path, n);
                let response = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: application/yaml\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        Server { addr, requests, stop, thread: Some(thread) }
    }

    /// Always answers 200 with `body`.
    fn serving(body: &'static str) -> Server {
        Server::start(move |_, _| (200, "OK", body.to_string()))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops accepting and closes the port.
    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn addon(name: &str, source: AddonSource) -> Addon {
    Addon { name: name.into(), version: "v1.0.0".into(), enabled: true, source }
}

fn url_addon(url: &str, sha256: &str) -> Addon {
    addon("demo", AddonSource { url: Some(url.into()), sha256: Some(sha256.into()), ..Default::default() })
}

/// A loader with a fresh cache and fast retries, so failing tests do not wait seconds.
fn loader(cache: &Path) -> AddonLoader {
    AddonLoader::new(cache.to_path_buf()).with_retry(3, Duration::from_millis(10))
}

fn kinds_and_names(objects: &[serde_json::Value]) -> Vec<(String, String)> {
    objects
        .iter()
        .map(|o| {
            (o["kind"].as_str().unwrap().to_string(), o["metadata"]["name"].as_str().unwrap().to_string())
        })
        .collect()
}

fn expected_objects() -> Vec<(String, String)> {
    STREAM_OBJECTS.iter().map(|(k, n)| (k.to_string(), n.to_string())).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn download_is_verified_cached_and_returned_as_objects() {
    let server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let sha = sha256(STREAM);

    let objects =
        loader(cache.path()).load(&url_addon(&server.url("/demo.yaml"), &sha), Path::new("/")).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(objects[3]["spec"]["replicas"], 1);
    assert_eq!(server.requests(), ["/demo.yaml"]);
    // Only the final file, no temporary leftovers.
    assert_eq!(files_in(&cache.path().join("addons")), [format!("{sha}.yaml")]);
    assert_eq!(
        std::fs::read_to_string(cache.path().join("addons").join(format!("{sha}.yaml"))).unwrap(),
        STREAM
    );
}

#[tokio::test]
async fn uppercase_sha256_finds_the_same_cache_entry() {
    let server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let sha = sha256(STREAM);
    let url = server.url("/demo.yaml");
    loader(cache.path()).load(&url_addon(&url, &sha.to_uppercase()), Path::new("/")).await.unwrap();
    loader(cache.path()).load(&url_addon(&url, &sha), Path::new("/")).await.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(files_in(&cache.path().join("addons")), [format!("{sha}.yaml")]);
}

#[tokio::test]
async fn checksum_mismatch_names_both_hashes_and_caches_nothing() {
    let server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let pinned = sha256("a different release\n");
    let url = server.url("/demo.yaml");

    let err = loader(cache.path()).load(&url_addon(&url, &pinned), Path::new("/")).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "add-on `demo` (url {url}): checksum mismatch: expected sha256 {pinned}, downloaded file has sha256 {}",
            sha256(STREAM)
        )
    );
    assert!(matches!(err, AddonError::ChecksumMismatch { .. }));
    // A mismatch is not transient: one request, and nothing lands in the cache.
    assert_eq!(server.requests().len(), 1);
    let addons_dir = cache.path().join("addons");
    assert!(!addons_dir.exists() || files_in(&addons_dir).is_empty());
}

#[tokio::test]
async fn second_load_is_served_from_cache_without_network() {
    let mut server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let addon = url_addon(&server.url("/demo.yaml"), &sha256(STREAM));
    loader(cache.path()).load(&addon, Path::new("/")).await.unwrap();
    server.shutdown();

    // A new loader, as in a later air-gapped run; the server's port now refuses connections.
    let objects = loader(cache.path()).load(&addon, Path::new("/")).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn without_cache_a_dead_server_is_a_download_error() {
    let mut server = Server::serving(STREAM);
    let url = server.url("/demo.yaml");
    server.shutdown();
    let cache = tempfile::tempdir().unwrap();

    let err = loader(cache.path()).load(&url_addon(&url, &sha256(STREAM)), Path::new("/")).await.unwrap_err();

    let text = err.to_string();
    assert!(text.starts_with(&format!("add-on `demo` (url {url}): download failed: ")), "{text}");
    assert!(text.to_lowercase().contains("connect"), "the cause should say what failed: {text}");
    assert!(matches!(err, AddonError::Download { .. }));
}

#[tokio::test]
async fn corrupt_cache_file_is_downloaded_again() {
    let server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let sha = sha256(STREAM);
    let cached = cache.path().join("addons").join(format!("{sha}.yaml"));
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    // Truncated, as a crash of some other tool or a bad disk might leave it.
    std::fs::write(&cached, &STREAM[..40]).unwrap();

    let objects =
        loader(cache.path()).load(&url_addon(&server.url("/demo.yaml"), &sha), Path::new("/")).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(server.requests().len(), 1);
    assert_eq!(std::fs::read_to_string(&cached).unwrap(), STREAM);
}

#[tokio::test]
async fn not_found_names_url_and_status_and_is_not_retried() {
    let server = Server::start(|_, _| (404, "Not Found", "no such release\n".into()));
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("/missing.yaml");

    let err = loader(cache.path()).load(&url_addon(&url, &sha256(STREAM)), Path::new("/")).await.unwrap_err();

    assert_eq!(err.to_string(), format!("add-on `demo` (url {url}): download failed: HTTP 404 Not Found"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let server = Server::start(|_, n| match n {
        0 => (503, "Service Unavailable", String::new()),
        1 => (429, "Too Many Requests", String::new()),
        _ => (200, "OK", STREAM.to_string()),
    });
    let cache = tempfile::tempdir().unwrap();

    let objects = loader(cache.path())
        .load(&url_addon(&server.url("/demo.yaml"), &sha256(STREAM)), Path::new("/"))
        .await
        .unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_configured_attempts() {
    let server = Server::start(|_, _| (502, "Bad Gateway", String::new()));
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("/demo.yaml");

    let err = loader(cache.path()).load(&url_addon(&url, &sha256(STREAM)), Path::new("/")).await.unwrap_err();

    assert_eq!(err.to_string(), format!("add-on `demo` (url {url}): download failed: HTTP 502 Bad Gateway"));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn invalid_source_is_refused_before_any_request() {
    let cache = tempfile::tempdir().unwrap();
    let bad =
        addon("demo", AddonSource { url: Some("http://example.com/demo.yaml".into()), ..Default::default() });

    let err = loader(cache.path()).load(&bad, Path::new("/")).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "add-on `demo`: invalid source: source.url: `http://example.com/demo.yaml` must use https \
         (http is accepted only for 127.0.0.1 and localhost); source.sha256: required with url: the \
         sha256 of the file as 64 hex characters (`sha256sum FILE`)"
    );
}

#[tokio::test]
async fn disabled_addon_yields_nothing_and_reads_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let mut off =
        addon("demo", AddonSource { file: Some("does-not-exist.yaml".into()), ..Default::default() });
    off.enabled = false;
    assert_eq!(
        loader(cache.path()).load(&off, Path::new("/nowhere")).await.unwrap(),
        Vec::<serde_json::Value>::new()
    );
}

#[tokio::test]
async fn local_file_resolves_against_the_environment_directory() {
    let env_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(env_dir.path().join("vendor")).unwrap();
    std::fs::write(env_dir.path().join("vendor/demo.yaml"), STREAM).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { file: Some("vendor/demo.yaml".into()), ..Default::default() };

    let objects = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    // Local sources never populate the download cache.
    assert!(!cache.path().join("addons").exists());
}

#[tokio::test]
async fn missing_local_file_names_the_resolved_path() {
    let env_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { file: Some("vendor/demo.yaml".into()), ..Default::default() };

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap_err();

    let path = env_dir.path().join("vendor/demo.yaml");
    assert_eq!(
        err.to_string(),
        format!("add-on `demo` (file {}): {} does not exist", path.display(), path.display())
    );
}

#[tokio::test]
async fn invalid_yaml_in_a_file_names_file_and_line() {
    let env_dir = tempfile::tempdir().unwrap();
    let path = env_dir.path().join("demo.yaml");
    std::fs::write(&path, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: {x: 1\n")
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { file: Some("demo.yaml".into()), ..Default::default() };

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap_err();

    let AddonError::Yaml { file, line, .. } = &err else { panic!("{err}") };
    assert_eq!(file, &path.display().to_string());
    // The flow mapping opened on line 5 is never closed; the parser notices at the end.
    assert!(matches!(line, Some(5 | 6)), "{err}");
    assert!(err.to_string().starts_with(&format!("add-on `demo` (file {0}): {0}:", path.display())), "{err}");
}

#[tokio::test]
async fn empty_file_is_an_error() {
    let env_dir = tempfile::tempdir().unwrap();
    std::fs::write(env_dir.path().join("demo.yaml"), "# nothing here\n---\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { file: Some("demo.yaml".into()), ..Default::default() };

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "add-on `demo` (file {}): no Kubernetes objects found",
            env_dir.path().join("demo.yaml").display()
        )
    );
}

#[tokio::test]
async fn dir_reads_yaml_files_in_name_order_and_ignores_the_rest() {
    let env_dir = tempfile::tempdir().unwrap();
    let dir = env_dir.path().join("vendor/demo");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    // Written out of order so a listing-order implementation would be caught.
    std::fs::write(dir.join("20-b.yml"), cm("b")).unwrap();
    std::fs::write(dir.join("10-a.yaml"), format!("{}---\n{}", cm("a1"), cm("a2"))).unwrap();
    std::fs::write(dir.join("30-c.yaml"), cm("c")).unwrap();
    std::fs::write(dir.join("README.md"), "not yaml").unwrap();
    std::fs::write(dir.join("nested/00-deep.yaml"), cm("deep")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { dir: Some("vendor/demo".into()), ..Default::default() };

    let objects = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap();

    let names: Vec<&str> = objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a1", "a2", "b", "c"]);
}

#[tokio::test]
async fn missing_dir_and_dir_without_yaml_are_errors() {
    let env_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { dir: Some("vendor".into()), ..Default::default() };
    let path = env_dir.path().join("vendor");

    let err = loader(cache.path()).load(&addon("demo", src.clone()), env_dir.path()).await.unwrap_err();
    assert_eq!(err.to_string(), format!("add-on `demo` (dir {0}): {0} does not exist", path.display()));

    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("notes.txt"), "x").unwrap();
    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("add-on `demo` (dir {}): no Kubernetes objects found", path.display())
    );
}

/// Serialises the tests that write and then execute a script: a script still open for writing
/// in this process when another test thread forks makes `exec` fail with "text file busy".
fn exec_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes an executable `kubectl` stand-in that records its arguments (one a line) in `args`
/// and then runs `body`.
fn fake_kubectl(dir: &Path, body: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("kubectl");
    let args = dir.join("args");
    std::fs::write(&program, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n{body}\n", args.display()))
        .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program, args)
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn kustomize_runs_kubectl_kustomize_on_the_resolved_target() {
    let _guard = exec_lock();
    let bin = tempfile::tempdir().unwrap();
    let stream_file = bin.path().join("out.yaml");
    std::fs::write(&stream_file, STREAM).unwrap();
    let (program, args) = fake_kubectl(bin.path(), &format!("cat '{}'", stream_file.display()));
    let env_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(env_dir.path().join("overlays/kind")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let loader = loader(cache.path()).with_kubectl(&program);

    let local = AddonSource { kustomize: Some("overlays/kind".into()), ..Default::default() };
    let objects = loader.load(&addon("demo", local), env_dir.path()).await.unwrap();
    assert_eq!(kinds_and_names(&objects), expected_objects());
    let target = env_dir.path().join("overlays/kind");
    assert_eq!(std::fs::read_to_string(&args).unwrap(), format!("kustomize\n{}\n", target.display()));

    // Remote targets have no scheme; they must reach kubectl untouched, not joined to a path.
    let remote = "github.com/example/demo/config/default?ref=v1.0.0";
    let src = AddonSource { kustomize: Some(remote.into()), ..Default::default() };
    loader.load(&addon("demo", src), env_dir.path()).await.unwrap();
    assert_eq!(std::fs::read_to_string(&args).unwrap(), format!("kustomize\n{remote}\n"));
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn kustomize_failure_reports_exit_code_and_stderr_tail() {
    let _guard = exec_lock();
    let bin = tempfile::tempdir().unwrap();
    let (program, _) = fake_kubectl(
        bin.path(),
        "echo 'warning: something harmless' >&2\necho 'error: accumulating resources: missing kustomization.yaml' >&2\nexit 3",
    );
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { kustomize: Some("github.com/example/nope".into()), ..Default::default() };

    let err = loader(cache.path())
        .with_kubectl(&program)
        .load(&addon("demo", src), Path::new("/"))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "add-on `demo` (kustomize github.com/example/nope): `kubectl kustomize` failed (exit code 3):\n\
         warning: something harmless\nerror: accumulating resources: missing kustomization.yaml"
    );
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn kustomize_that_hangs_is_killed_after_the_timeout() {
    let _guard = exec_lock();
    let bin = tempfile::tempdir().unwrap();
    let (program, _) = fake_kubectl(bin.path(), "exec sleep 30");
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { kustomize: Some("github.com/example/slow".into()), ..Default::default() };
    let loader =
        loader(cache.path()).with_kubectl(&program).with_kustomize_timeout(Duration::from_millis(300));

    let started = std::time::Instant::now();
    let err = loader.load(&addon("demo", src), Path::new("/")).await.unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        err.to_string(),
        "add-on `demo` (kustomize github.com/example/slow): `kubectl kustomize` did not finish within 300ms"
    );
}

#[tokio::test]
async fn missing_kubectl_says_what_to_install() {
    let bin = tempfile::tempdir().unwrap();
    let program = bin.path().join("no-such-kubectl");
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { kustomize: Some("github.com/example/demo".into()), ..Default::default() };

    let err = loader(cache.path())
        .with_kubectl(&program)
        .load(&addon("demo", src), Path::new("/"))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "add-on `demo` (kustomize github.com/example/demo): `{}` not found: kubectl is needed to render \
             kustomize targets; install it or set TRAINSTACK_KUBECTL",
            program.display()
        )
    );
}

#[tokio::test]
async fn missing_local_kustomize_directory_is_reported_before_running_kubectl() {
    let env_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { kustomize: Some("./overlays/missing".into()), ..Default::default() };
    // A kubectl that would fail loudly proves it is never reached.
    let loader = loader(cache.path()).with_kubectl(env_dir.path().join("absent-kubectl"));

    let err = loader.load(&addon("demo", src), env_dir.path()).await.unwrap_err();

    let path = env_dir.path().join("./overlays/missing");
    assert_eq!(err.to_string(), format!("add-on `demo` (kustomize {0}): {0} does not exist", path.display()));
}
