//! An in-process Kubernetes API server double for tests: real HTTP/1.1 on 127.0.0.1 speaking
//! the protocol kube-rs uses (discovery, CRUD, server-side apply, watch, dry-run), plus a Rust
//! control API to inspect and steer it, fault injection to make it misbehave, and the
//! max-in-flight limits of a throttling server (`inflight.rs`).
//!
//! ```ignore
//! let server = ApiServer::start().await;               // or ApiServer::builder()...start()
//! let client = server.client();                         // or server.write_kubeconfig(path, "kind-dev")
//! server.add_fault(FaultRule::new(Fault::TooManyRequests { retry_after_secs: 1 }).times(3));
//! // ... run the code under test against `client` ...
//! assert_eq!(server.writes().total(), 0);
//! ```
//!
//! Deliberate simplifications, each noted where it lives: strategic merge patch is served as
//! JSON merge patch; list types for server-side apply come from a table of the built-in merge
//! keys (and `x-kubernetes-list-*` in CRD schemas) rather than full OpenAPI; later list pages
//! read current state; no garbage collection through ownerReferences; of admission only Pod
//! Security and deprecation warnings (`admission.rs`); authentication only by bearer token when
//! a test asks for it ([`ApiServerBuilder::users`]), with a user either allowed everything or
//! nothing; authorization otherwise only as SubjectAccessReviews evaluated against the stored
//! RBAC (`authz.rs`).

mod admission;
mod authz;
mod controllers;
mod defaults;
mod discovery;
mod faults;
mod handlers;
mod inflight;
mod patch;
mod proxy;
mod selectors;
mod ssa;
mod status;
mod store;
mod trainjobs;
mod trial_pods;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule};
pub use inflight::MaxInFlight;
pub use trainjobs::Run;
pub use trial_pods::PodRunner;

use faults::Faults;
use handlers::{ApiRequest, Reply, Verb, WatchSpec};
use inflight::{Admission, InFlight};
use status::ApiError;
use store::{ObjKey, Store};

type Body = UnsyncBoxBody<Bytes, Dropped>;

/// A whole body, in the one body type every response has.
pub(crate) fn whole(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Writes clients made that changed stored state, per verb (server-side apply counts as
/// `patch`). Dry runs, no-op writes and the double's own controllers are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub create: usize,
    pub update: usize,
    pub patch: usize,
    pub delete: usize,
}

impl WriteCounts {
    pub fn total(&self) -> usize {
        self.create + self.update + self.patch + self.delete
    }

    pub(crate) fn count(&mut self, verb: Verb) {
        match verb {
            Verb::Create => self.create += 1,
            Verb::Update => self.update += 1,
            Verb::Patch => self.patch += 1,
            Verb::Delete => self.delete += 1,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The HTTP status sent; 0 when the connection was dropped instead.
    pub status: u16,
    /// The injected fault, if one fired.
    pub fault: Option<Fault>,
}

impl RequestRecord {
    /// Whether the request carried `dryRun=All`.
    pub fn is_dry_run(&self) -> bool {
        self.query.split('&').any(|p| p == "dryRun=All")
    }
}

/// Behaviour knobs, set through [`ApiServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Options {
    crd_establish_delay: Option<Duration>,
    cleanup_delay: Duration,
    workload_ready_delay: Option<Duration>,
    /// How often a watch that asked for bookmarks gets one.
    bookmark_interval: Duration,
    aggregated_discovery: bool,
    /// Bearer token → (user, allowed); `None` serves anyone, as an unauthenticated test server.
    users: Option<HashMap<String, (String, bool)>>,
    max_in_flight: Option<MaxInFlight>,
    /// Runs trial batch pods as local processes (`trial_pods.rs`); set at build time or later.
    trial_pods: Arc<Mutex<Option<Arc<PodRunner>>>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            crd_establish_delay: Some(Duration::from_millis(50)),
            cleanup_delay: Duration::from_millis(20),
            workload_ready_delay: Some(Duration::from_millis(20)),
            // kube-apiserver's watch cache sends one about every minute.
            bookmark_interval: Duration::from_secs(60),
            aggregated_discovery: true,
            users: None,
            max_in_flight: None,
            trial_pods: Default::default(),
        }
    }
}

/// Mutable server state, behind one lock so every request sees a consistent snapshot.
pub(crate) struct State {
    pub store: Store,
    pub writes: WriteCounts,
    /// Whether the request being handled is a client's (counted) or the double's own.
    pub counting: bool,
    pub pod_logs: HashMap<(String, String), String>,
    /// Which simulated workloads run, and how.
    pub runs: trainjobs::Knobs,
    /// What [`handlers::served`] computed, and at which CRD epoch.
    pub served_cache: Mutex<Option<(u64, Arc<Vec<discovery::ResourceDef>>)>>,
    seq: u64,
    seed: u64,
}

impl State {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            store: Store::new(),
            writes: WriteCounts::default(),
            counting: true,
            pod_logs: HashMap::new(),
            runs: trainjobs::Knobs::default(),
            served_cache: Mutex::new(None),
            seq: 0,
            seed,
        }
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn new_uid(&mut self) -> String {
        let n = self.next();
        let x = self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (x >> 32) as u32,
            (x >> 16) as u16,
            (x & 0xfff) as u16,
            ((x >> 12) & 0xfff) as u16,
            n & 0xffff_ffff_ffff
        )
    }

    pub fn next_cluster_ip(&mut self) -> String {
        let n = self.next();
        format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 2)
    }

    /// Five characters, like the real `generateName` suffix alphabet.
    pub fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut x = self.seed ^ self.next().wrapping_mul(0x2545_F491_4F6C_DD1D);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<RequestRecord>>,
    pub options: Options,
    pub runtime: tokio::runtime::Handle,
    pub address: String,
    shutdown: tokio::sync::watch::Receiver<bool>,
    proxy: proxy::Routes,
    in_flight: InFlight,
}

/// RFC 3339 at second precision, as Kubernetes timestamps are.
pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Configures an [`ApiServer`] before it starts.
#[derive(Debug, Default)]
pub struct ApiServerBuilder {
    options: Options,
}

impl ApiServerBuilder {
    /// How long after creation a CRD becomes `Established`; `None` leaves that to
    /// [`ApiServer::establish_crd`]. Default 50 ms.
    pub fn crd_establish_delay(mut self, delay: Option<Duration>) -> Self {
        self.options.crd_establish_delay = delay;
        self
    }

    /// How long a deleted namespace (or CRD) stays `Terminating` before its content is
    /// removed. Default 20 ms.
    pub fn cleanup_delay(mut self, delay: Duration) -> Self {
        self.options.cleanup_delay = delay;
        self
    }

    /// How long after a spec change Deployments, StatefulSets and DaemonSets report ready and
    /// Jobs complete, as their controllers would; `None` leaves status to the test. Default
    /// 20 ms.
    pub fn workload_ready_delay(mut self, delay: Option<Duration>) -> Self {
        self.options.workload_ready_delay = delay;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK event carrying the
    /// resourceVersion they have seen up to. Default one minute, as kube-apiserver.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.options.bookmark_interval = interval;
        self
    }

    /// Whether `/api` and `/apis` answer aggregated discovery (v2) when asked, as servers
    /// since 1.30 do. Off emulates an older server that only speaks the legacy format.
    pub fn aggregated_discovery(mut self, enabled: bool) -> Self {
        self.options.aggregated_discovery = enabled;
        self
    }

    /// Requires a bearer token: each `(token, user, allowed)` authenticates as `user`, who may
    /// do everything or (not `allowed`) nothing. Any other request gets the real server's 401;
    /// a user not allowed gets its 403 naming the user.
    pub fn users(mut self, users: &[(&str, &str, bool)]) -> Self {
        self.options.users =
            Some(users.iter().map(|(t, u, a)| (t.to_string(), (u.to_string(), *a))).collect());
        self
    }

    /// Limits requests being handled at once, as kube-apiserver with
    /// `--enable-priority-and-fairness=false --max-requests-inflight=READ
    /// --max-mutating-requests-inflight=MUTATING` does: one more is rejected at once with 429
    /// and `Retry-After: 1` (see `inflight.rs`). Latency added by [`ApiServer::set_latency`] or
    /// latency faults counts as handling time. Default: no limit.
    pub fn max_in_flight(mut self, limits: MaxInFlight) -> Self {
        self.options.max_in_flight = Some(limits);
        self
    }

    pub async fn start(self) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            runtime: tokio::runtime::Handle::current(),
            address: addr.to_string(),
            shutdown: shutdown_rx,
            proxy: proxy::Routes::default(),
            in_flight: InFlight::new(self.options.max_in_flight),
            options: self.options,
        });
        seed_cluster(&shared);
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        ApiServer { addr, shared, accept, shutdown: shutdown_tx }
    }
}

/// What every fresh cluster has: the standard namespaces and their default ServiceAccounts.
fn seed_cluster(shared: &Arc<Shared>) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        internal(
            shared,
            "POST",
            "/api/v1/namespaces",
            "kube-apiserver",
            "application/json",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .expect("seed namespace");
        internal(
            shared,
            "POST",
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            "kube-controller-manager",
            "application/json",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        )
        .expect("seed service account");
    }
}

/// Runs a request through the API handlers without HTTP, faults, the request log or the
/// write counters: how the control API and the simulated controllers write.
fn internal(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    manager: &str,
    content_type: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    query.push(("fieldManager".into(), manager.into()));
    let req = ApiRequest {
        method: method.into(),
        path: path.into(),
        query,
        accept: "application/json".into(),
        content_type: content_type.into(),
        user_agent: manager.into(),
        body: Bytes::from(body.to_string()),
        internal: true,
        warnings: Default::default(),
    };
    match handlers::handle(shared, &req)? {
        Reply::Json { body, .. } => Ok(body),
        Reply::Text(t) => Ok(Value::String(t)),
        Reply::Watch(_) => Ok(Value::Null),
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let mut shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let svc = service_fn(move |req| serve(svc_shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Returned to hyper to make it close the connection without a response, or, from a body,
/// in the middle of one.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

fn full(code: u16, content_type: &str, body: impl Into<Bytes>) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(code)
        .header("Content-Type", content_type)
        .body(whole(body))
        .expect("valid response")
}

fn error_response(e: &ApiError) -> hyper::Response<Body> {
    full(e.code, "application/json", e.body.to_string())
}

async fn serve(shared: Arc<Shared>, req: hyper::Request<Incoming>) -> Result<hyper::Response<Body>, Dropped> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (accept, content_type, user_agent) = (header("accept"), header("content-type"), header("user-agent"));
    // The filter runs before anything else handles the request, and holds its place until the
    // handler has answered.
    let _in_flight = match shared.in_flight.admit(&method, &path, &raw_query) {
        Admission::Rejected => {
            shared.log.lock().unwrap().push(RequestRecord {
                method,
                path,
                query: raw_query,
                status: 429,
                fault: None,
            });
            return Ok(inflight::too_many_requests());
        }
        Admission::Admitted(guard) => Some(guard),
        Admission::Exempt => None,
    };
    let is_watch = raw_query.split('&').any(|p| matches!(p, "watch=true" | "watch=1"));
    let verdict = shared.faults.lock().unwrap().decide(&method, &path, is_watch);
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let record = |status: u16, fault: Option<Fault>| {
        shared.log.lock().unwrap().push(RequestRecord {
            method: method.clone(),
            path: path.clone(),
            query: raw_query.clone(),
            status,
            fault,
        });
    };
    match &verdict.fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            record(429, verdict.fault.clone());
            let mut resp = error_response(&ApiError::too_many_requests(*retry_after_secs));
            resp.headers_mut()
                .insert("Retry-After", retry_after_secs.to_string().parse().expect("header value"));
            return Ok(resp);
        }
        Some(Fault::ServerError(code)) => {
            record(*code, verdict.fault.clone());
            return Ok(error_response(&ApiError::server_error(*code)));
        }
        Some(Fault::DropConnection) => {
            record(0, verdict.fault.clone());
            return Err(Dropped);
        }
        _ => {}
    }
    if let Some(users) = &shared.options.users {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let refusal = match users.get(token) {
            None => Some(ApiError::unauthorized()),
            Some((user, false)) => Some(status::forbidden_user(user, &method, &path)),
            Some((_, true)) => None,
        };
        if let Some(e) = refusal {
            record(e.code, None);
            return Ok(error_response(&e));
        }
    }
    if let Some(target) = proxy::target(&path) {
        let resp = proxy::forward(&shared, target, &method, &raw_query, &headers, body).await;
        record(resp.status().as_u16(), None);
        return Ok(resp);
    }
    let api_req = ApiRequest {
        method: method.clone(),
        path: path.clone(),
        query: form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect(),
        accept,
        content_type,
        user_agent,
        body,
        internal: false,
        warnings: Default::default(),
    };
    let result = handlers::handle(&shared, &api_req);
    if verdict.fault == Some(Fault::DropAfterProcessing) {
        record(0, verdict.fault);
        return Err(Dropped);
    }
    let mut resp = match result {
        Ok(Reply::Json { code, body, content_type }) => full(code, content_type, body.to_string()),
        Ok(Reply::Text(text)) => full(200, "text/plain", text),
        Ok(Reply::Watch(spec)) => {
            let cut_after = match verdict.fault {
                Some(Fault::DropWatchAfter(n)) => Some(n),
                _ => None,
            };
            watch_response(&shared, *spec, cut_after)
        }
        Err(e) => error_response(&e),
    };
    // One header per warning, as kube-apiserver sends them.
    for w in api_req.warnings.lock().unwrap().iter() {
        let value = admission::warning_header(w).parse().expect("printable warning text");
        resp.headers_mut().append("Warning", value);
    }
    // A watch cut by a fault is answered (200) before it is cut.
    record(resp.status().as_u16(), verdict.fault.clone());
    Ok(resp)
}

/// Streams a watch: the backlog first (current objects, or history since the requested
/// resourceVersion), then live events and, when asked for, bookmarks, until the timeout or
/// server shutdown. A resourceVersion older than the compacted history gets the real server's
/// answer: a `200` stream holding one `ERROR` event with a `410 Expired` Status.
/// After `cut_after` events, if set, the connection is cut mid-stream.
fn watch_response(shared: &Arc<Shared>, spec: WatchSpec, cut_after: Option<usize>) -> hyper::Response<Body> {
    let subscribed = {
        let st = shared.state.lock().unwrap();
        let now = st.store.resource_version();
        match spec.since {
            None => {
                let lines: Vec<Bytes> = st
                    .store
                    .list(&spec.def.group, &spec.def.plural, spec.namespace.as_deref())
                    .filter(|(_, o)| spec.labels.matches(o) && spec.fields.matches(o))
                    .map(|(_, o)| spec.line("ADDED", o))
                    .collect();
                Ok((lines, st.store.subscribe(), now))
            }
            Some(rv) => st.store.subscribe_since(rv).map(|(events, rx)| {
                let seen = events.last().map_or(rv, |e| e.rv).max(rv);
                (events.iter().filter_map(|e| spec.render(e)).collect(), rx, seen)
            }),
        }
    };
    let (backlog, rx, seen) = match subscribed {
        Ok(s) => s,
        Err(oldest) => {
            let rv = spec.since.unwrap_or_default();
            let gone = ApiError::expired(&format!("too old resource version: {rv} ({oldest})"));
            let line = format!("{}\n", json!({"type": "ERROR", "object": gone.body}));
            return hyper::Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(whole(line))
                .expect("valid response");
        }
    };
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let bookmarks = spec.bookmarks.then_some(shared.options.bookmark_interval);
    let shutdown = shared.shutdown.clone();
    let state = (rx, shutdown, spec, seen);
    let live = futures::stream::unfold(state, move |(mut rx, mut shutdown, spec, mut seen)| async move {
        let next_bookmark = bookmarks.map(|every| tokio::time::Instant::now() + every);
        loop {
            let bookmark_due = async {
                match next_bookmark {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return None,
                _ = shutdown.changed() => return None,
                _ = bookmark_due => {
                    let line = spec.bookmark(seen);
                    return Some((line, (rx, shutdown, spec, seen)));
                }
                event = rx.recv() => match event {
                    Ok(event) => {
                        // Every change moves the watch's resourceVersion, seen or not, so a
                        // bookmark lets a client resume past changes it was not shown.
                        seen = seen.max(event.rv);
                        if let Some(line) = spec.render(&event) {
                            return Some((line, (rx, shutdown, spec, seen)));
                        }
                    }
                    // A lagging or closed watch ends; the client re-lists, as with a real server.
                    Err(_) => return None,
                },
            }
        }
    });
    let frames = futures::stream::iter(backlog).chain(live).map(Ok::<_, Dropped>);
    let stream: futures::stream::BoxStream<'static, Result<Bytes, Dropped>> = match cut_after {
        Some(n) => frames.take(n).chain(futures::stream::once(async { Err(Dropped) })).boxed(),
        None => frames.boxed(),
    };
    hyper::Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync())
        .expect("valid response")
}

/// A running API server double. Dropping it stops the server and ends open watches.
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

impl ApiServer {
    /// Starts a server with default options on a random local port.
    pub async fn start() -> ApiServer {
        Self::builder().start().await
    }

    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube config pointing at the server (plain HTTP, no auth, kube's default retries).
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().expect("valid URL"))
    }

    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("client for the API server double")
    }

    /// A kubeconfig whose only context, `context`, points at the server.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\ncurrent-context: {context}\nusers:\n- name: {context}\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`ApiServer::kubeconfig_yaml`] to `path`, for CLI tests' `--kubeconfig`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(context))
    }

    fn def(&self, api_version: &str, kind: &str) -> discovery::ResourceDef {
        let st = self.shared.state.lock().unwrap();
        handlers::def_for_kind(&st, api_version, kind)
            .unwrap_or_else(|| panic!("the API server double does not know {api_version} {kind}"))
    }

    fn object_path(def: &discovery::ResourceDef, namespace: Option<&str>, name: &str) -> String {
        let base =
            if def.group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{}", def.api_version()) };
        match namespace {
            Some(ns) if def.namespaced => format!("{base}/namespaces/{ns}/{}/{name}", def.plural),
            _ => format!("{base}/{}/{name}", def.plural),
        }
    }

    /// The stored object, as a GET would return it.
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let def = self.def(api_version, kind);
        let st = self.shared.state.lock().unwrap();
        let key = ObjKey {
            group: def.group.clone(),
            resource: def.plural.clone(),
            namespace: if def.namespaced { namespace.unwrap_or_default().to_string() } else { String::new() },
            name: name.to_string(),
        };
        st.store.get(&key).cloned()
    }

    /// Every stored object of a kind, across namespaces, in namespace/name order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let def = self.def(api_version, kind);
        let st = self.shared.state.lock().unwrap();
        st.store.list(&def.group, &def.plural, None).map(|(_, o)| o.clone()).collect()
    }

    /// Forgets the event history up to now, as etcd's compaction does: a watch resuming from
    /// an older resourceVersion gets `410 Gone` (reason `Expired`) and must relist.
    pub fn compact(&self) {
        self.shared.state.lock().unwrap().store.compact();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().unwrap().store.resource_version()
    }

    pub fn writes(&self) -> WriteCounts {
        self.shared.state.lock().unwrap().writes
    }

    pub fn reset_writes(&self) {
        self.shared.state.lock().unwrap().writes = WriteCounts::default();
    }

    /// Every request received over HTTP so far, in arrival order of their responses.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Creates `obj` (or merge-patches it into an existing object) as a plain, non-apply
    /// write by `manager`, the way `kubectl create` or client-side apply
    /// (`kubectl-client-side-apply`) records ownership.
    /// Not counted in [`ApiServer::writes`]. Panics if the server rejects it.
    pub fn seed(&self, manager: &str, obj: Value) -> Value {
        let (def, ns, name) = self.identify(&obj);
        let path = Self::object_path(&def, ns.as_deref(), &name);
        let result = if self.get(&def.api_version(), &def.kind, ns.as_deref(), &name).is_some() {
            internal(&self.shared, "PATCH", &path, manager, "application/merge-patch+json", obj)
        } else {
            let collection = path.rsplit_once('/').map(|(c, _)| c.to_string()).unwrap_or_default();
            internal(&self.shared, "POST", &collection, manager, "application/json", obj)
        };
        result.unwrap_or_else(|e| panic!("seeding {name} failed: {}", e.body))
    }

    /// Server-side applies `obj` as `manager` (forcing conflicts), like another tool or
    /// controller owning fields. Not counted in [`ApiServer::writes`].
    pub fn seed_apply(&self, manager: &str, obj: Value) -> Value {
        let (def, ns, name) = self.identify(&obj);
        let path = format!("{}?force=true", Self::object_path(&def, ns.as_deref(), &name));
        internal(&self.shared, "PATCH", &path, manager, "application/apply-patch+yaml", obj)
            .unwrap_or_else(|e| panic!("seeding {name} failed: {}", e.body))
    }

    fn identify(&self, obj: &Value) -> (discovery::ResourceDef, Option<String>, String) {
        let def = self
            .def(obj["apiVersion"].as_str().unwrap_or_default(), obj["kind"].as_str().unwrap_or_default());
        let ns =
            def.namespaced.then(|| obj["metadata"]["namespace"].as_str().unwrap_or("default").to_string());
        let name = obj["metadata"]["name"].as_str().expect("metadata.name").to_string();
        (def, ns, name)
    }

    /// Replaces an object's status through `/status` as `kube-controller-manager` would.
    /// Not counted in [`ApiServer::writes`]. Panics if the object does not exist.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Value {
        let def = self.def(api_version, kind);
        let mut obj = self
            .get(api_version, kind, namespace, name)
            .unwrap_or_else(|| panic!("{kind} {name} does not exist"));
        obj["status"] = status;
        let path = format!("{}/status", Self::object_path(&def, namespace, name));
        internal(&self.shared, "PUT", &path, "kube-controller-manager", "application/json", obj)
            .unwrap_or_else(|e| panic!("setting status of {name} failed: {}", e.body))
    }

    /// Reports every Deployment, StatefulSet and DaemonSet ready and every Job complete at
    /// its current generation, as the controllers would: for tests that hold readiness back
    /// (`workload_ready_delay(None)`) until a point of their choosing.
    pub fn mark_workloads_ready(&self) {
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("batch/v1", "Job"),
        ] {
            for obj in self.list(api_version, kind) {
                let ns = obj["metadata"]["namespace"].as_str();
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                self.set_status(api_version, kind, ns, name, controllers::ready_status(kind, &obj, &now()));
            }
        }
    }

    /// Reports a Deployment rolled out and available at its current generation.
    pub fn mark_deployment_available(&self, namespace: &str, name: &str) {
        let obj = self.get("apps/v1", "Deployment", Some(namespace), name).expect("deployment exists");
        self.set_status(
            "apps/v1",
            "Deployment",
            Some(namespace),
            name,
            controllers::ready_status("Deployment", &obj, &now()),
        );
    }

    /// Reports a Job finished successfully.
    pub fn mark_job_complete(&self, namespace: &str, name: &str) {
        let obj = self.get("batch/v1", "Job", Some(namespace), name).expect("job exists");
        self.set_status(
            "batch/v1",
            "Job",
            Some(namespace),
            name,
            controllers::ready_status("Job", &obj, &now()),
        );
    }

    /// Establishes a CRD now instead of after the configured delay; false if it does not
    /// exist.
    pub fn establish_crd(&self, name: &str) -> bool {
        handlers::establish(&mut self.shared.state.lock().unwrap(), name)
    }

    /// Removes every finalizer from an object, as its controller would when done; an object
    /// being deleted then disappears.
    pub fn remove_finalizers(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        let def = self.def(api_version, kind);
        let path = Self::object_path(&def, namespace, name);
        internal(
            &self.shared,
            "PATCH",
            &path,
            "finalizer-controller",
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        )
        .unwrap_or_else(|e| panic!("removing finalizers of {name} failed: {}", e.body));
    }

    /// What `pods/<name>/log` returns for a pod.
    pub fn set_pod_log(&self, namespace: &str, name: &str, log: &str) {
        self.shared.state.lock().unwrap().pod_logs.insert((namespace.into(), name.into()), log.into());
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.lock().unwrap().add(rule);
    }

    /// Removes every fault rule and the added latency.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Requests the max-in-flight limit (see [`ApiServerBuilder::max_in_flight`]) turned away.
    pub fn rejected_in_flight(&self) -> usize {
        self.shared.in_flight.rejected()
    }

    /// Latency added to every request from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.lock().unwrap().latency = latency;
    }
}
