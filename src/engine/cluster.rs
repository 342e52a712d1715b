//! The Kubernetes adapter: client construction (the one place a client is made, so EKS token
//! auth can plug in), discovery-based resolution, and retried API calls.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use kube::Client;
use serde_json::Value;

use crate::aws::token::BearerLayer;
use crate::engine::throttle::ThrottleLayer;
use crate::env::model::{Environment, TargetKind};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "trainstack";

/// Errors talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig file cannot be read or parsed.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The requested context does not exist.
    #[error("kubeconfig {path}: context {context:?} does not exist; available contexts: {available} (pass --context NAME or set target.context)")]
    NoContext {
        /// The file.
        path: String,
        /// The context asked for.
        context: String,
        /// Contexts in the file.
        available: String,
    },
    /// The EKS connection (DescribeCluster, credentials, token) failed.
    #[error(transparent)]
    Eks(#[from] crate::aws::AwsError),
    /// An API call failed.
    #[error("{what}: {message}")]
    Api {
        /// Which call, on which object.
        what: String,
        /// The server's answer.
        message: String,
        /// HTTP status, 0 for connection problems.
        code: u16,
    },
    /// A server-side apply met fields other field managers own (409 `FieldManagerConflict`).
    #[error("{what}: {message}")]
    Conflict {
        /// Which call, on which object.
        what: String,
        /// The server's answer, with one line per conflicting field.
        message: String,
        /// Who owns which field (boxed: errors travel by value through every `Result`).
        conflict: Box<crate::engine::plan::Conflict>,
    },
}

impl ClusterError {
    /// HTTP status of an API error (0 when the connection failed).
    pub fn code(&self) -> u16 {
        match self {
            ClusterError::Api { code, .. } => *code,
            ClusterError::Conflict { .. } => 409,
            _ => 0,
        }
    }
}

/// Where to find the cluster, and how hard to press it.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Kubeconfig path (`--kubeconfig`, `$KUBECONFIG`); default `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Context (`--context`); default from the environment.
    pub context: Option<String>,
    /// AWS configuration to reuse for an EKS connection (loaded when absent).
    pub aws: Option<crate::aws::Aws>,
    /// Requests in flight at most per class (`--concurrency`): the ceiling of the adaptive
    /// limit (`engine::throttle`).
    pub concurrency: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            kubeconfig: None,
            context: None,
            aws: None,
            concurrency: crate::engine::throttle::DEFAULT_CONCURRENCY,
        }
    }
}

/// Whether `connect` goes through the EKS API: an eks target with no kubeconfig, no context
/// flag and no `target.context`. An explicit kubeconfig or context always wins.
pub fn uses_eks_api(opts: &ConnectOptions, env: &Environment) -> bool {
    env.target.kind == TargetKind::Eks
        && opts.kubeconfig.is_none()
        && opts.context.is_none()
        && env.target.context.is_none()
}

/// The context an environment deploys to when `--context` is not given.
pub fn default_context(env: &Environment) -> Option<String> {
    env.target.context.clone().or_else(|| match env.target.kind {
        TargetKind::Kind => Some(format!("kind-{}", env.target.cluster_name)),
        TargetKind::Eks => None,
    })
}

/// Builds the client for an environment's cluster: through the EKS API (see [`uses_eks_api`]),
/// else from a kubeconfig file and context. Errors name the cluster, or the file and context.
pub async fn connect(opts: &ConnectOptions, env: &Environment) -> Result<Client, ClusterError> {
    if uses_eks_api(opts, env) {
        let aws = match &opts.aws {
            Some(aws) => aws.clone(),
            None => crate::aws::Aws::load(env.target.region.as_deref().unwrap_or_default()).await,
        };
        return Ok(crate::aws::eks::connect(&aws, &env.target.cluster_name, opts.concurrency).await?);
    }
    let paths = kubeconfig_paths(opts.kubeconfig.as_deref());
    let shown = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let (kubeconfig, files) = load_kubeconfig(paths)?;
    let context = opts.context.clone().or_else(|| default_context(env));
    let (context_name, user) = check_context(&kubeconfig, &files, &shown, context.as_deref())?;
    let options = KubeConfigOptions { context, ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ClusterError::Kubeconfig { path: shown.clone(), message: format!("{e}") })?;
    let client = client_from(config, opts.concurrency)
        .map_err(|e| ClusterError::Kubeconfig { path: shown, message: format!("{e}") })?;
    if let Ok(mut target) = TARGET.lock() {
        target.context = Some(context_name);
        target.user = user;
    }
    Ok(client)
}

/// One kubeconfig file as read.
struct KubeconfigFile {
    path: PathBuf,
    config: Kubeconfig,
}

/// The kubeconfig paths in the order kubectl reads them: `--kubeconfig`, else every entry of
/// `$KUBECONFIG` (a path list), else `~/.kube/config`.
fn kubeconfig_paths(flag: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = flag {
        return vec![p.to_path_buf()];
    }
    let from_env: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    if from_env.is_empty() {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        vec![home.join(".kube/config")]
    } else {
        from_env
    }
}

/// Reads the files and merges them (the first file that names a context, cluster or user
/// wins, as in kubectl). Syntax and type errors carry kube's position. As kubectl does, entries
/// of a `$KUBECONFIG` list that do not exist are skipped; a lone path (`--kubeconfig`, a
/// one-entry list, `~/.kube/config`) or a list with no existing entry is an error.
fn load_kubeconfig(paths: Vec<PathBuf>) -> Result<(Kubeconfig, Vec<KubeconfigFile>), ClusterError> {
    let mut merged = Kubeconfig::default();
    let mut files = Vec::with_capacity(paths.len());
    let skip_missing = paths.len() > 1 && paths.iter().any(|p| p.exists());
    for path in paths {
        let shown = path.display().to_string();
        if !path.exists() && skip_missing {
            continue;
        }
        if !path.exists() {
            return Err(ClusterError::Kubeconfig {
                path: shown,
                message:
                    "no such file (pass --kubeconfig FILE or set KUBECONFIG to the cluster's kubeconfig)"
                        .into(),
            });
        }
        let config = Kubeconfig::read_from(&path)
            .map_err(|e| ClusterError::Kubeconfig { path: shown.clone(), message: format!("{e}") })?;
        merged = merged
            .merge(config.clone())
            .map_err(|e| ClusterError::Kubeconfig { path: shown, message: format!("{e}") })?;
        files.push(KubeconfigFile { path, config });
    }
    Ok((merged, files))
}

/// Checks that the context to use exists and names a cluster (with a server and, if given,
/// certificate-authority-data that holds a PEM certificate) and a user the files define,
/// before any request, naming the file, line and field of a broken reference. Returns the
/// context's name and its user's.
fn check_context(
    merged: &Kubeconfig,
    files: &[KubeconfigFile],
    all: &str,
    context: Option<&str>,
) -> Result<(String, Option<String>), ClusterError> {
    let Some(name) = context.map(str::to_string).or_else(|| merged.current_context.clone()) else {
        return Err(ClusterError::Kubeconfig {
            path: all.to_string(),
            message:
                "no context to use: current-context is not set (pass --context NAME or set target.context)"
                    .into(),
        });
    };
    if !merged.contexts.iter().any(|c| c.name == name) {
        let available: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(ClusterError::NoContext {
            path: all.to_string(),
            context: name,
            available: if available.is_empty() { "(none)".into() } else { available.join(", ") },
        });
    }
    // Where a named entry is defined: the first file that has it, and its position there (the
    // file is parsed again for positions only here, on the error path).
    let locate = |list: &str, entry: &str, field: &str| -> (String, String) {
        for f in files {
            let names: Vec<&str> = match list {
                "contexts" => f.config.contexts.iter().map(|c| c.name.as_str()).collect(),
                "clusters" => f.config.clusters.iter().map(|c| c.name.as_str()).collect(),
                _ => f.config.auth_infos.iter().map(|u| u.name.as_str()).collect(),
            };
            if let Some(i) = names.iter().position(|n| *n == entry) {
                let key = format!("{list}[{i}]{field}");
                let pos = std::fs::read_to_string(&f.path)
                    .ok()
                    .and_then(|text| crate::yaml::parse_located(&text).ok())
                    .and_then(|(_, ix)| ix.key(&key).or_else(|| ix.key(&format!("{list}[{i}]"))));
                let at = match pos {
                    Some(p) => format!("{}:{}:{}", f.path.display(), p.line, p.column),
                    None => f.path.display().to_string(),
                };
                return (at, key);
            }
        }
        (all.to_string(), format!("{list}.{entry}"))
    };
    let broken = |(path, key): (String, String), message: String| ClusterError::Kubeconfig {
        path,
        message: format!("{key}: {message}"),
    };
    let ctx = merged.contexts.iter().find(|c| c.name == name).and_then(|c| c.context.as_ref());
    let Some(ctx) = ctx else {
        return Err(broken(
            locate("contexts", &name, ""),
            format!("context {name:?} has no `context` mapping"),
        ));
    };
    let defined = |names: Vec<&str>| if names.is_empty() { "none".to_string() } else { names.join(", ") };
    match merged.clusters.iter().find(|c| c.name == ctx.cluster) {
        None => {
            let names = merged.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(broken(
                locate("contexts", &name, ".context.cluster"),
                format!(
                    "context {name:?} names cluster {:?}, which is not defined (clusters: {})",
                    ctx.cluster,
                    defined(names)
                ),
            ));
        }
        Some(c) if c.cluster.as_ref().and_then(|c| c.server.as_deref()).is_none_or(str::is_empty) => {
            return Err(broken(
                locate("clusters", &c.name, ".cluster"),
                format!("cluster {:?} has no server URL (cluster.server)", c.name),
            ));
        }
        Some(c) => {
            let data = c.cluster.as_ref().and_then(|c| c.certificate_authority_data.as_deref());
            if let Some(why) = data.and_then(ca_data_problem) {
                return Err(broken(
                    locate("clusters", &c.name, ".cluster.certificate-authority-data"),
                    format!("the CA of cluster {:?} {why}", c.name),
                ));
            }
        }
    }
    if let Some(user) = &ctx.user {
        if !merged.auth_infos.iter().any(|u| &u.name == user) {
            let names = merged.auth_infos.iter().map(|u| u.name.as_str()).collect();
            return Err(broken(
                locate("contexts", &name, ".context.user"),
                format!(
                    "context {name:?} names user {user:?}, which is not defined (users: {})",
                    defined(names)
                ),
            ));
        }
    }
    Ok((name, ctx.user.clone()))
}

/// What is wrong with a kubeconfig's `certificate-authority-data`, if anything: it must be the
/// base64 of PEM certificates, else every TLS handshake would fail and read as a connection
/// error.
fn ca_data_problem(data: &str) -> Option<String> {
    use base64::Engine;
    const VALID: &str = "it must be the base64 of the cluster's PEM CA certificate (base64 -w0 ca.crt)";
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => bytes,
        Err(e) => return Some(format!("is not base64 ({e}); {VALID}")),
    };
    match pem::parse_many(&bytes) {
        Ok(blocks) if blocks.iter().any(|b| b.tag() == "CERTIFICATE") => None,
        _ => Some(format!("decodes to no PEM certificate (no -----BEGIN CERTIFICATE----- block); {VALID}")),
    }
}

/// A client for `config` that keeps at most `concurrency` requests of a kind (reads, writes)
/// in flight, fewer while the server throttles, and retries 429s after at least their
/// `Retry-After` plus jitter (`engine::throttle`). kube's own retry policy is off: it waits
/// exactly `Retry-After`, so workers rejected together come back together, and it retries 503s
/// that mean "no endpoints" as if they were throttling. 5xx and dropped connections are retried
/// by [`retry`] below, for idempotent calls only.
pub fn client_from(config: kube::Config, concurrency: usize) -> Result<Client, kube::Error> {
    client_with_auth(config, None, concurrency)
}

/// [`client_from`] with EKS token auth between the connection and the throttle, so that every
/// retried request asks for the token again (and gets a re-minted one once it is old).
pub fn client_with_auth(
    mut config: kube::Config,
    auth: Option<BearerLayer>,
    concurrency: usize,
) -> Result<Client, kube::Error> {
    config.default_retry = false;
    if let Ok(mut target) = TARGET.lock() {
        *target = Target { server: Some(config.cluster_url.to_string()), context: None, user: None };
    }
    // Retries need a cloneable inner service; a buffer makes the boxed stack one.
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::util::option_layer(auth))
        .with_layer(&ThrottleLayer::new(concurrency))
        .with_layer(&crate::engine::warnings::CaptureLayer)
        .build())
}

/// A resolved resource: how to reach objects of one kind.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Group, version, kind, plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

/// The cluster's served kinds, from discovery.
pub struct Catalog {
    discovery: Discovery,
}

impl Catalog {
    /// Runs discovery.
    pub async fn discover(client: &Client) -> Result<Self, ClusterError> {
        let discovery = retry("discovery", || Discovery::new(client.clone()).run()).await?;
        Ok(Catalog { discovery })
    }

    /// Resolves an object's apiVersion/kind to its resource, if the cluster serves it.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Resolved> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        self.discovery
            .resolve_gvk(&gvk)
            .map(|(resource, caps)| Resolved { resource, namespaced: caps.scope == Scope::Namespaced })
    }
}

/// The dynamic API for an object's resource in its namespace.
pub fn api_for(client: &Client, r: &Resolved, namespace: Option<&str>) -> Api<DynamicObject> {
    match (r.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &r.resource),
        (true, None) => Api::all_with(client.clone(), &r.resource),
        (false, _) => Api::all_with(client.clone(), &r.resource),
    }
}

fn to_cluster_error(what: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(status) => {
            let mut message = status.message.clone();
            let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
            for c in causes {
                message.push_str(&format!("\n    {}: {}", c.field, c.message));
            }
            let conflict = (status.code == 409)
                .then(|| {
                    let causes =
                        causes.iter().map(|c| (c.reason.as_str(), c.message.as_str(), c.field.as_str()));
                    crate::engine::plan::Conflict::from_causes(&status.message, causes)
                })
                .flatten();
            match conflict {
                Some(conflict) => {
                    ClusterError::Conflict { what: what.to_string(), message, conflict: Box::new(conflict) }
                }
                None => {
                    let message = match status.code {
                        401 => format!(
                            "the API server {} refused the credentials of {} (401 Unauthorized: {message}); they are missing, wrong or expired",
                            server_url(),
                            user_shown()
                        ),
                        403 => format!(
                            "{message} ({} is authenticated, but the cluster's authorization forbids this)",
                            user_shown()
                        ),
                        _ => message,
                    };
                    ClusterError::Api { what: what.to_string(), message, code: status.code }
                }
            }
        }
        other @ (kube::Error::Service(_) | kube::Error::HyperError(_)) => ClusterError::Api {
            what: what.to_string(),
            message: connection_failure(&error_chain(&other)),
            code: 0,
        },
        other => ClusterError::Api { what: what.to_string(), message: error_chain(&other), code: 0 },
    }
}

/// What went wrong in a call made outside [`retry`], worded as the engine's errors are (the
/// server and context of a failed connection, the kubeconfig user refused).
pub fn describe(e: kube::Error) -> String {
    match to_cluster_error("", e) {
        ClusterError::Api { message, .. } | ClusterError::Conflict { message, .. } => message,
        other => other.to_string(),
    }
}

/// A failed connection, worded by its cause: the TLS verdicts the way kubectl names them
/// (unknown authority, a certificate for other names), anything else as unreachable.
fn connection_failure(chain: &str) -> String {
    let server = server_shown();
    // rustls says BadSignature when a CA of the same name but another key is trusted: for
    // the user, as for Go's x509, the certificate is from an unknown authority.
    if chain.contains("UnknownIssuer") || chain.contains("BadSignature") {
        format!(
            "TLS: the API server {server} presented a certificate signed by an unknown authority (not by the cluster's certificate-authority-data in the kubeconfig; is it the right cluster, or has its CA changed?): {chain}"
        )
    } else if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        format!(
            "TLS: the API server {server} presented a certificate that is not valid for its address (certificate name mismatch: the kubeconfig's server URL must be a name or IP the certificate lists, or set tls-server-name): {chain}"
        )
    } else {
        format!("cannot reach the API server {server}: {chain}")
    }
}

/// Who the last client talks to, to name it in connection and credential errors (a run talks
/// to one cluster).
struct Target {
    server: Option<String>,
    context: Option<String>,
    user: Option<String>,
}

static TARGET: std::sync::Mutex<Target> =
    std::sync::Mutex::new(Target { server: None, context: None, user: None });

/// `https://host:6443/`.
fn server_url() -> String {
    TARGET.lock().ok().and_then(|t| t.server.clone()).unwrap_or_else(|| "(unknown)".into())
}

/// `https://host:6443/ (context "kind-dev")`.
fn server_shown() -> String {
    match TARGET.lock().ok().and_then(|t| t.context.clone()) {
        Some(c) => format!("{} (context {c:?})", server_url()),
        None => server_url(),
    }
}

/// `kubeconfig user "dev" of context "kind-dev"`, or the EKS token's identity.
fn user_shown() -> String {
    let Ok(t) = TARGET.lock() else { return "the client".into() };
    match (&t.user, &t.context) {
        (Some(u), Some(c)) => format!("kubeconfig user {u:?} of context {c:?}"),
        (None, Some(c)) => format!("context {c:?} (it names no user)"),
        _ => "the EKS token of the AWS identity in use".into(),
    }
}

/// An error and its sources, each once: `client error (Connect): tcp connect error: Connection
/// refused (os error 111)` rather than kube's outermost `ServiceError: client error (Connect)`
/// (reqwest's and hyper's own messages leave out why a connection failed).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Runs an idempotent call, retrying 5xx and dropped connections with jittered backoff.
/// (429s are retried by the client for every call, see [`client_from`].)
pub async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 6;
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let err = to_cluster_error(what, e);
                let transient = matches!(err.code(), 0 | 500 | 502 | 503 | 504);
                if !transient || attempt >= ATTEMPTS {
                    return Err(err);
                }
                // Up to half again, so that objects failing together are retried apart.
                tokio::time::sleep(delay + delay.mul_f64(fastrand::f64() / 2.0)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// GET, mapping 404 to None.
pub async fn get(api: &Api<DynamicObject>, name: &str, what: &str) -> Result<Option<Value>, ClusterError> {
    let r = retry(what, || api.get_opt(name)).await?;
    Ok(r.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
}

/// Server-side apply (optionally dry-run, optionally forcing conflicts). The API server's
/// warnings go to the sink of the `engine::warnings::collect` scope the call runs in.
pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    obj: &Value,
    dry_run: bool,
    force: bool,
    what: &str,
) -> Result<Value, ClusterError> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = dry_run;
    params.force = force;
    let patch = Patch::Apply(obj);
    // `Api::patch` cannot carry the caller's warnings sink; the same request built here can.
    let request = kube::core::Request::new(api.resource_url());
    let client = api.clone().into_client();
    let sink = crate::engine::warnings::Warnings::current();
    let out: DynamicObject = retry(what, || async {
        let mut req = request.patch(name, &params, &patch).map_err(kube::Error::BuildRequest)?;
        req.extensions_mut().insert("patch");
        if let Some(sink) = &sink {
            req.extensions_mut().insert(sink.clone());
        }
        client.request(req).await
    })
    .await?;
    Ok(serde_json::to_value(out).unwrap_or(Value::Null))
}

/// DELETE with background propagation: true when this call deleted it (or would, on a dry
/// run), false when it was already gone (404).
pub async fn delete(
    api: &Api<DynamicObject>,
    name: &str,
    dry_run: bool,
    what: &str,
) -> Result<bool, ClusterError> {
    let params = DeleteParams { dry_run, ..DeleteParams::background() };
    match retry(what, || api.delete(name, &params)).await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// LIST with a label selector.
pub async fn list(api: &Api<DynamicObject>, selector: &str, what: &str) -> Result<Vec<Value>, ClusterError> {
    let lp = ListParams::default().labels(selector);
    let list = retry(what, || api.list(&lp)).await?;
    Ok(list.items.into_iter().map(|o| serde_json::to_value(o).unwrap_or(Value::Null)).collect())
}
