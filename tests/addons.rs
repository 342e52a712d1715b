//! Add-on loading against a real local HTTP server, real files, a fake `kubectl`, and the real
//! `kubectl kustomize` on a local kustomize directory and a local git repository (`kubectl` and
//! `git` must be installed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use trainstack::addons::{AddonError, AddonLoader, Lock, Locked};
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

/// The lock of an environment file that locks nothing.
fn no_lock() -> Lock {
    Lock::empty(PathBuf::from("/nowhere/env.yaml.lock"))
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

    let objects = loader(cache.path())
        .load(&url_addon(&server.url("/demo.yaml"), &sha), Path::new("/"), &no_lock())
        .await
        .unwrap();

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
    loader(cache.path())
        .load(&url_addon(&url, &sha.to_uppercase()), Path::new("/"), &no_lock())
        .await
        .unwrap();
    loader(cache.path()).load(&url_addon(&url, &sha), Path::new("/"), &no_lock()).await.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(files_in(&cache.path().join("addons")), [format!("{sha}.yaml")]);
}

#[tokio::test]
async fn checksum_mismatch_names_both_hashes_and_caches_nothing() {
    let server = Server::serving(STREAM);
    let cache = tempfile::tempdir().unwrap();
    let pinned = sha256("a different release\n");
    let url = server.url("/demo.yaml");

    let err =
        loader(cache.path()).load(&url_addon(&url, &pinned), Path::new("/"), &no_lock()).await.unwrap_err();

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
    loader(cache.path()).load(&addon, Path::new("/"), &no_lock()).await.unwrap();
    server.shutdown();

    // A new loader, as in a later air-gapped run; the server's port now refuses connections.
    let objects = loader(cache.path()).load(&addon, Path::new("/"), &no_lock()).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn without_cache_a_dead_server_is_a_download_error() {
    let mut server = Server::serving(STREAM);
    let url = server.url("/demo.yaml");
    server.shutdown();
    let cache = tempfile::tempdir().unwrap();

    let err = loader(cache.path())
        .load(&url_addon(&url, &sha256(STREAM)), Path::new("/"), &no_lock())
        .await
        .unwrap_err();

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

    let objects = loader(cache.path())
        .load(&url_addon(&server.url("/demo.yaml"), &sha), Path::new("/"), &no_lock())
        .await
        .unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    assert_eq!(server.requests().len(), 1);
    assert_eq!(std::fs::read_to_string(&cached).unwrap(), STREAM);
}

#[tokio::test]
async fn not_found_names_url_and_status_and_is_not_retried() {
    let server = Server::start(|_, _| (404, "Not Found", "no such release\n".into()));
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("/missing.yaml");

    let err = loader(cache.path())
        .load(&url_addon(&url, &sha256(STREAM)), Path::new("/"), &no_lock())
        .await
        .unwrap_err();

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
        .load(&url_addon(&server.url("/demo.yaml"), &sha256(STREAM)), Path::new("/"), &no_lock())
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

    let err = loader(cache.path())
        .load(&url_addon(&url, &sha256(STREAM)), Path::new("/"), &no_lock())
        .await
        .unwrap_err();

    assert_eq!(err.to_string(), format!("add-on `demo` (url {url}): download failed: HTTP 502 Bad Gateway"));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn invalid_source_is_refused_before_any_request() {
    let cache = tempfile::tempdir().unwrap();
    let bad =
        addon("demo", AddonSource { url: Some("http://example.com/demo.yaml".into()), ..Default::default() });

    let err = loader(cache.path()).load(&bad, Path::new("/"), &no_lock()).await.unwrap_err();

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
        loader(cache.path()).load(&off, Path::new("/nowhere"), &no_lock()).await.unwrap(),
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

    let objects = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap();

    assert_eq!(kinds_and_names(&objects), expected_objects());
    // Local sources never populate the download cache.
    assert!(!cache.path().join("addons").exists());
}

#[tokio::test]
async fn missing_local_file_names_the_resolved_path() {
    let env_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { file: Some("vendor/demo.yaml".into()), ..Default::default() };

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap_err();

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

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap_err();

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

    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap_err();

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

    let objects = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap();

    let names: Vec<&str> = objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a1", "a2", "b", "c"]);
}

#[tokio::test]
async fn missing_dir_and_dir_without_yaml_are_errors() {
    let env_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = AddonSource { dir: Some("vendor".into()), ..Default::default() };
    let path = env_dir.path().join("vendor");

    let err =
        loader(cache.path()).load(&addon("demo", src.clone()), env_dir.path(), &no_lock()).await.unwrap_err();
    assert_eq!(err.to_string(), format!("add-on `demo` (dir {0}): {0} does not exist", path.display()));

    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("notes.txt"), "x").unwrap();
    let err = loader(cache.path()).load(&addon("demo", src), env_dir.path(), &no_lock()).await.unwrap_err();
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

fn kustomize_addon(target: &str) -> Addon {
    addon("demo", AddonSource { kustomize: Some(target.into()), ..Default::default() })
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

    let locked = loader.lock(&kustomize_addon("overlays/kind"), env_dir.path()).await.unwrap();
    // The lock records the target as declared (relative), so it holds in any checkout.
    assert_eq!(locked, Some(Locked { kustomize: "overlays/kind".into(), sha256: sha256(STREAM) }));
    let target = env_dir.path().join("overlays/kind");
    assert_eq!(std::fs::read_to_string(&args).unwrap(), format!("kustomize\n{}\n", target.display()));

    // Remote targets have no scheme; they must reach kubectl untouched, not joined to a path.
    let remote = "github.com/example/demo/config/default?ref=v1.0.0";
    loader.lock(&kustomize_addon(remote), env_dir.path()).await.unwrap();
    assert_eq!(std::fs::read_to_string(&args).unwrap(), format!("kustomize\n{remote}\n"));
}

#[tokio::test]
async fn lock_ignores_other_sources_and_disabled_addons() {
    let cache = tempfile::tempdir().unwrap();
    // A kubectl that does not exist proves none is run.
    let loader = loader(cache.path()).with_kubectl("/nonexistent/kubectl");
    let file = addon("demo", AddonSource { file: Some("demo.yaml".into()), ..Default::default() });
    assert_eq!(loader.lock(&file, Path::new("/nowhere")).await.unwrap(), None);
    let mut off = kustomize_addon("github.com/example/demo/config?ref=v1.0.0");
    off.enabled = false;
    assert_eq!(loader.lock(&off, Path::new("/nowhere")).await.unwrap(), None);
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

    let err = loader(cache.path())
        .with_kubectl(&program)
        .lock(&kustomize_addon("github.com/example/nope"), Path::new("/"))
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
    let loader =
        loader(cache.path()).with_kubectl(&program).with_kustomize_timeout(Duration::from_millis(300));

    let started = std::time::Instant::now();
    let err = loader.lock(&kustomize_addon("github.com/example/slow"), Path::new("/")).await.unwrap_err();

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

    let err = loader(cache.path())
        .with_kubectl(&program)
        .lock(&kustomize_addon("github.com/example/demo"), Path::new("/"))
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
    // A kubectl that would fail loudly proves it is never reached.
    let loader = loader(cache.path()).with_kubectl(env_dir.path().join("absent-kubectl"));
    let path = env_dir.path().join("./overlays/missing");
    let expected = format!("add-on `demo` (kustomize {0}): {0} does not exist", path.display());

    let src = kustomize_addon("./overlays/missing");
    let err = loader.load(&src, env_dir.path(), &no_lock()).await.unwrap_err();
    assert_eq!(err.to_string(), expected);
    let err = loader.lock(&src, env_dir.path()).await.unwrap_err();
    assert_eq!(err.to_string(), expected);
}

#[tokio::test]
async fn kustomize_addon_missing_from_the_lock_is_refused_without_building() {
    let cache = tempfile::tempdir().unwrap();
    let loader = loader(cache.path()).with_kubectl("/nonexistent/kubectl");
    let target = "https://example.com/demo.git/config?ref=v1.0.0";

    let err = loader.load(&kustomize_addon(target), Path::new("/"), &no_lock()).await.unwrap_err();

    assert!(matches!(err, AddonError::NotLocked { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "add-on `demo` (kustomize {target}): not locked: /nowhere/env.yaml.lock records no sha256 for \
             it; run `trainstack addons lock` with the same -e files once where kubectl and the source \
             are reachable, then commit the lock file (or pass --no-addons to leave add-ons out)"
        )
    );
}

#[tokio::test]
async fn lock_written_for_another_target_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let loader = loader(cache.path()).with_kubectl("/nonexistent/kubectl");
    let mut lock = no_lock();
    let old = "https://example.com/demo.git/config?ref=v1.0.0";
    lock.addons.insert("demo".into(), Locked { kustomize: old.into(), sha256: sha256(STREAM) });
    let new = "https://example.com/demo.git/config?ref=v1.1.0";

    let err = loader.load(&kustomize_addon(new), Path::new("/"), &lock).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "add-on `demo` (kustomize {new}): /nowhere/env.yaml.lock was written for kustomize {old}; run \
             `trainstack addons lock` with the same -e files to build and pin the new target"
        )
    );
}

// ---- `addons lock` and the cache of builds, with the real kubectl and git

const KUSTOMIZATION: &str = "resources:\n  - namespace.yaml\n  - settings.yaml\n";
const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo-system\n";

fn settings(mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-settings\n  namespace: demo-system\ndata:\n  mode: {mode}\n"
    )
}

/// The repository's own ConfigMap, in the namespace the local add-on creates, so the two
/// add-ons render side by side.
fn git_settings(mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-git-settings\n  namespace: demo-system\ndata:\n  mode: {mode}\n"
    )
}

fn git(repo: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=trainstack-test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A git repository whose `config/` kustomization says `mode: tagged` at tag v1.0.0 and
/// `mode: moved-on` on the branch after it; returns the kustomize target of the tag.
fn git_repo(repo: &Path) -> String {
    std::fs::create_dir_all(repo.join("config")).unwrap();
    git(repo, &["init", "-q"]);
    std::fs::write(repo.join("config/kustomization.yaml"), "resources:\n  - settings.yaml\n").unwrap();
    std::fs::write(repo.join("config/settings.yaml"), git_settings("tagged")).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "v1.0.0"]);
    git(repo, &["tag", "v1.0.0"]);
    std::fs::write(repo.join("config/settings.yaml"), git_settings("moved-on")).unwrap();
    git(repo, &["commit", "-q", "-a", "-m", "after the tag"]);
    format!("file://{}//config?ref=v1.0.0", repo.display())
}

/// An environment with add-on `demo-local` (the kustomize directory `overlay/` beside it) and,
/// when `remote` is given, `demo-git` (that remote target). The cache is `.cache` in the scratch
/// directory, named relatively so errors read the same in every run.
fn kustomize_env(remote: Option<&str>) -> crate::harness::Test {
    let mut env = format!(
        "{}addons:\n  - name: demo-local\n    version: v1.0.0\n    source: {{kustomize: overlay}}\n",
        crate::harness::MINIMAL_ENV
    );
    if let Some(remote) = remote {
        env.push_str(&format!(
            "  - name: demo-git\n    version: v1.0.0\n    source: {{kustomize: \"{remote}\"}}\n"
        ));
    }
    crate::harness::Test::new()
        .file("env.yaml", &env)
        .file("overlay/kustomization.yaml", KUSTOMIZATION)
        .file("overlay/namespace.yaml", NAMESPACE)
        .file("overlay/settings.yaml", &settings("local"))
        .env("TRAINSTACK_CACHE_DIR", ".cache")
        // Empty means unset: the tests choose kubectl through PATH alone.
        .env("TRAINSTACK_KUBECTL", "")
}

/// Makes every later run of `t` see a `PATH` with neither kubectl nor git, as on a machine
/// that only has the trainstack binary.
fn without_kubectl(t: crate::harness::Test) -> crate::harness::Test {
    std::fs::create_dir_all(t.path().join("empty-bin")).unwrap();
    let path = t.path().join("empty-bin").display().to_string();
    t.env("PATH", &path)
}

/// The cached builds, by file name.
fn cached_builds(t: &crate::harness::Test) -> Vec<PathBuf> {
    let dir = t.path().join(".cache/addons/kustomize");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// `stderr` with the one cached build's file name (a hash of the scratch directory's path)
/// replaced, so the snapshot holds in every run.
fn redact_cache_key(t: &crate::harness::Test, stderr: &str) -> String {
    let builds = cached_builds(t);
    let [build] = builds.as_slice() else { panic!("one cached build expected: {builds:?}") };
    stderr.replace(build.file_name().unwrap().to_str().unwrap(), "<sha256 of the target>.yaml")
}

/// Runs `t` expecting success; returns it (to run again) with the output.
fn lock_ok(t: crate::harness::Test) -> (crate::harness::Test, crate::harness::Output) {
    let t = t.status(0);
    let out = t.run();
    (t, out)
}

#[test]
fn addons_lock_pins_a_local_dir_and_a_git_tag_and_a_second_run_is_byte_identical() {
    let repo = tempfile::tempdir().unwrap();
    let remote = git_repo(repo.path());
    let t = kustomize_env(Some(&remote)).args(&["addons", "lock", "-e", "env.yaml"]);

    let (t, first) = lock_ok(t);
    let lock_text = std::fs::read_to_string(t.path().join("env.yaml.lock")).unwrap();
    let lock = Lock::read(&t.path().join("env.yaml.lock")).unwrap();
    let (git_sha, local_sha) = (&lock.addons["demo-git"].sha256, &lock.addons["demo-local"].sha256);
    assert_eq!(lock.addons["demo-git"].kustomize, remote);
    assert_eq!(lock.addons["demo-local"].kustomize, "overlay");
    assert_eq!(
        first.stdout,
        format!(
            "demo-git: sha256 {git_sha} (new)\ndemo-local: sha256 {local_sha} (new)\nwrote env.yaml.lock\n"
        )
    );
    // Each cached build is the one its lock entry pins; the git one is the tag, not the branch.
    let mut by_sha: Vec<(String, String)> = cached_builds(&t)
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            (sha256(&text), text)
        })
        .collect();
    by_sha.sort();
    let mut pinned = vec![git_sha.clone(), local_sha.clone()];
    pinned.sort();
    assert_eq!(by_sha.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(), pinned);
    let git_build = &by_sha.iter().find(|(s, _)| s == git_sha).unwrap().1;
    assert!(git_build.contains("mode: tagged") && !git_build.contains("moved-on"), "{git_build}");

    let (t, second) = lock_ok(t);
    assert_eq!(std::fs::read_to_string(t.path().join("env.yaml.lock")).unwrap(), lock_text);
    assert_eq!(
        second.stdout,
        format!(
            "demo-git: sha256 {git_sha} (unchanged)\ndemo-local: sha256 {local_sha} (unchanged)\n\
             env.yaml.lock is up to date\n"
        )
    );
}

#[test]
fn locked_kustomize_builds_render_from_the_cache_without_kubectl_or_the_source() {
    let repo = tempfile::tempdir().unwrap();
    let remote = git_repo(repo.path());
    let t = kustomize_env(Some(&remote)).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let t = t.replace_args(&["render", "-e", "env.yaml"]);
    let t = t.status(0);
    let online = t.run();

    // Offline: no kubectl, no git, and the repository gone.
    drop(repo);
    let t = without_kubectl(t);
    let t = t.status(0);
    let offline = t.run();
    assert_eq!(offline.stdout, online.stdout, "the cache gives the same manifests as a build");
    assert!(offline.stdout.contains("trainstack.io/addon: demo-git"), "{}", offline.stdout);
    assert!(offline.stdout.contains("mode: tagged") && offline.stdout.contains("mode: local"));
}

#[test]
fn tampered_cache_fails_offline_naming_the_add_on_and_both_hashes() {
    let t = kustomize_env(None).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let build = cached_builds(&t).remove(0);
    let mut text = std::fs::read_to_string(&build).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&build, text).unwrap();

    let t = without_kubectl(t.replace_args(&["render", "-e", "env.yaml"]));
    let t = t.status(1);
    let out = t.run();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    insta::assert_snapshot!(redact_cache_key(&t, &out.stderr));
}

#[test]
fn tampered_cache_is_rebuilt_and_verified_when_kubectl_is_there() {
    let t = kustomize_env(None).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let build = cached_builds(&t).remove(0);
    let good = std::fs::read_to_string(&build).unwrap();
    std::fs::write(&build, "# truncated\n").unwrap();

    let t = t.replace_args(&["render", "-e", "env.yaml"]);
    let t = t.status(0);
    let out = t.run();
    assert!(out.stdout.contains("mode: local"));
    assert_eq!(std::fs::read_to_string(&build).unwrap(), good);
}

#[test]
fn changed_lock_fails_naming_the_add_on_and_both_hashes() {
    let t = kustomize_env(None).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let lock_file = t.path().join("env.yaml.lock");
    let lock = Lock::read(&lock_file).unwrap();
    let edited = std::fs::read_to_string(&lock_file)
        .unwrap()
        .replace(&lock.addons["demo-local"].sha256, &sha256("something else\n"));
    std::fs::write(&lock_file, edited).unwrap();

    // With kubectl, the build is redone and does not match the edited lock either.
    let t = t.replace_args(&["render", "-e", "env.yaml"]);
    let t = t.status(1);
    let online = t.run();
    // Offline, the cached build is all there is.
    let t = without_kubectl(t);
    let t = t.status(1);
    let offline = t.run();

    insta::assert_snapshot!(format!(
        "with kubectl:\n{}\nwithout kubectl:\n{}",
        online.stderr,
        redact_cache_key(&t, &offline.stderr)
    ));
}

#[test]
fn missing_cache_offline_names_the_add_on_and_what_to_run() {
    let t = kustomize_env(None).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let build = cached_builds(&t).remove(0);
    std::fs::remove_file(&build).unwrap();

    let t = without_kubectl(t.replace_args(&["render", "-e", "env.yaml"]));
    let t = t.status(1);
    let out = t.run();
    let name = build.file_name().unwrap().to_str().unwrap();
    insta::assert_snapshot!(out.stderr.replace(name, "<sha256 of the target>.yaml"));
}

#[test]
fn moved_tag_fails_with_a_checksum_mismatch_once_the_cache_is_gone() {
    let repo = tempfile::tempdir().unwrap();
    let remote = git_repo(repo.path());
    let t = kustomize_env(Some(&remote)).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let locked = Lock::read(&t.path().join("env.yaml.lock")).unwrap().addons["demo-git"].sha256.clone();
    // Upstream re-points the tag at a later commit; a fresh machine has no cache.
    git(repo.path(), &["tag", "-f", "v1.0.0"]);
    std::fs::remove_dir_all(t.path().join(".cache")).unwrap();

    let out = t.replace_args(&["render", "-e", "env.yaml"]).status(1).run();
    let moved = std::process::Command::new("kubectl").args(["kustomize", &remote]).output().unwrap();
    let actual = sha256(&String::from_utf8(moved.stdout).unwrap());
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "error: add-on `demo-git` (kustomize {remote}): checksum mismatch: env.yaml.lock records \
             sha256 {locked}, the build has sha256 {actual}: the source changed since it was locked; \
             review the change, then run `trainstack addons lock` with the same -e files to accept it"
        )
    );
}

#[test]
fn shipped_environment_without_its_lock_file_names_the_command_that_writes_it() {
    // The shipped add-ons are GitHub targets, which only a build with network access can hash;
    // the repository ships without environments/base.yaml.lock until someone runs the command.
    assert!(!crate::harness::repo().join("environments/base.yaml.lock").exists());
    let out = crate::harness::Test::in_repo()
        .args(&["render", "-e", "environments/base.yaml", "-e", "environments/kind.yaml"])
        .status(1)
        .run();
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn editing_a_local_kustomize_directory_fails_against_the_lock_until_it_is_locked_again() {
    let t = kustomize_env(None).args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, _) = lock_ok(t);
    let locked = Lock::read(&t.path().join("env.yaml.lock")).unwrap().addons["demo-local"].sha256.clone();
    std::fs::write(t.path().join("overlay/settings.yaml"), settings("edited")).unwrap();
    let edited = std::process::Command::new("kubectl")
        .args(["kustomize", &t.path().join("overlay").display().to_string()])
        .output()
        .unwrap();
    let actual = sha256(&String::from_utf8(edited.stdout).unwrap());

    let t = t.replace_args(&["render", "-e", "env.yaml"]);
    let t = t.status(1);
    let out = t.run();
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "error: add-on `demo-local` (kustomize overlay): checksum mismatch: env.yaml.lock records \
             sha256 {locked}, the build has sha256 {actual}: the source changed since it was locked; \
             review the change, then run `trainstack addons lock` with the same -e files to accept it"
        )
    );
    let t = t.replace_args(&["addons", "lock", "-e", "env.yaml"]);
    let (t, out) = lock_ok(t);
    assert!(out.stdout.starts_with(&format!("demo-local: sha256 {actual} (was sha256 {locked})\n")));
    let out = t.replace_args(&["render", "-e", "env.yaml"]).status(0).run();
    assert!(out.stdout.contains("mode: edited"));
}
