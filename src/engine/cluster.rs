//! The Kubernetes API as the engine uses it: discovery-based resolution, retried calls, and
//! errors worded with the server and credentials in use. The client itself is built above the
//! engine, in `connect/`, and handed in.

use std::future::Future;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, ObjectList};
use kube::discovery::{ApiGroup, Discovery, Scope};
use kube::Client;
use serde_json::Value;

use crate::error_chain::error_chain;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "trainstack";

/// Errors from API calls.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
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
        }
    }
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
    /// Runs discovery: aggregated (two requests, served since Kubernetes 1.30), else one
    /// request per API group version.
    pub async fn discover(client: &Client) -> Result<Self, ClusterError> {
        let aggregated = retry("discovery", || Discovery::new(client.clone()).run_aggregated()).await;
        // A server without aggregated discovery answers in the legacy format, which reads as
        // no groups at all (every server has the core group), or refuses the media type; the
        // legacy discovery then runs, and reports the error if there is one.
        if let Some(discovery) = aggregated.ok().filter(|d| d.has_group(ApiGroup::CORE_GROUP)) {
            return Ok(Catalog { discovery });
        }
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

/// Records the server a new client talks to; its context and user are not known yet (an EKS
/// client has neither).
pub fn name_server(server: String) {
    if let Ok(mut target) = TARGET.lock() {
        *target = Target { server: Some(server), context: None, user: None };
    }
}

/// Records the kubeconfig context and user the last client was built from.
pub fn name_context(context: String, user: Option<String>) {
    if let Ok(mut target) = TARGET.lock() {
        target.context = Some(context);
        target.user = user;
    }
}

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

/// Runs an idempotent call, retrying 5xx and dropped connections with jittered backoff.
/// (429s are retried by the client for every call, see `connect::client_from`.)
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

/// Objects a LIST returns per page: big enough that a few pages cover an environment, small
/// enough that one response stays cheap for the API server to build.
const PAGE: u32 = 500;

/// LIST with a label selector, page by page (`limit`/`continue`). The first page reads the
/// latest state (no `resourceVersion`, so a quorum read rather than a possibly stale cache)
/// and later pages continue that same snapshot; if the snapshot expires between pages (410
/// Gone), the list starts over, so the result is always one consistent snapshot.
/// Items are read as plain JSON: the engine works on JSON values, and going through
/// `DynamicObject` would parse and re-serialize every object of the page once more.
pub async fn list(api: &Api<DynamicObject>, selector: &str, what: &str) -> Result<Vec<Value>, ClusterError> {
    const RESTARTS: u32 = 3;
    let client = api.clone().into_client();
    let request = kube::core::Request::new(api.resource_url());
    let page_of = |lp: &ListParams| {
        let built = request.list(lp).map_err(kube::Error::BuildRequest);
        let client = client.clone();
        async move { client.request::<ObjectList<Value>>(built?).await }
    };
    let mut restarts = 0;
    'snapshot: loop {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().labels(selector).limit(PAGE);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = match retry(what, || page_of(&lp)).await {
                Ok(page) => page,
                Err(e) if e.code() == 410 && token.is_some() && restarts < RESTARTS => {
                    restarts += 1;
                    continue 'snapshot;
                }
                Err(e) => return Err(e),
            };
            items.extend(page.items);
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }
}
