//! The service proxy, `/api/v1/namespaces/<ns>/services/<name>[:<port>]/proxy/<path>`:
//! requests of every method go to the upstream address a test registered for the Service
//! port (`ApiServer::route_service`), with path, query, body and headers, and the upstream's
//! answer comes back unchanged.
//!
//! As kube-apiserver does: the Service must exist (else 404 `services "x" not found`); a
//! numeric port must be one of its ports (else 503 `no service port`); a Service without a
//! route is one without ready endpoints (503 `no endpoints available`, no `Retry-After`); an
//! upstream that refuses the connection is 503 `error trying to reach service`. The caller's
//! `Authorization` header is removed (the real server drops it once it has authenticated the
//! caller, kubernetes/kubernetes#38775) and so are hop-by-hop headers; `Host` stays what the
//! caller sent, the API server's own address. Proxy requests are long-running to the server,
//! so its in-flight limits do not apply to them. Simplifications: plain HTTP upstreams only,
//! one connection per request, bodies buffered, no HTML link rewriting, no upgrades.
//!
//! The routes are also the Services' endpoints as the EndpointSlice controller publishes them:
//! each routed Service has one EndpointSlice with a ready endpoint per routed port, emptied when
//! its last route goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderMap, HeaderName};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::handlers::def_for_kind;
use super::status::ApiError;
use super::store::ObjKey;
use super::{error_response, ApiServer, Body, Shared};

/// Upstream `host:port` per (namespace, Service, Service port).
#[derive(Default)]
pub(crate) struct Routes(Mutex<HashMap<(String, String, u16), String>>);

impl Routes {
    /// Where `namespace/service:port` is routed, if anywhere.
    pub(crate) fn upstream(&self, namespace: &str, service: &str, port: u16) -> Option<String> {
        self.0.lock().unwrap().get(&(namespace.to_string(), service.to_string(), port)).cloned()
    }
}

/// A parsed service-proxy path.
pub(crate) struct Target {
    namespace: String,
    /// The Service as the path names it (`mlflow:5000`), for messages that quote it.
    id: String,
    service: String,
    /// A port number, a port name, or empty (the Service's only or unnamed port).
    port: String,
    /// Everything after `/proxy`, `/` at least.
    path: String,
}

/// The service-proxy target of a request path, if it is one.
pub(crate) fn target(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("services/")?;
    let (id, rest) = rest.split_once('/')?;
    let tail = rest.strip_prefix("proxy")?;
    if !(tail.is_empty() || tail.starts_with('/')) {
        return None;
    }
    // `scheme:name:port`, `name:port` or `name`, as the real server splits the id.
    let parts: Vec<&str> = id.split(':').collect();
    let (service, port) = match parts.as_slice() {
        [name] => (*name, ""),
        [name, port] => (*name, *port),
        [_, name, port] => (*name, *port),
        _ => return None,
    };
    Some(Target {
        namespace: namespace.to_string(),
        id: id.to_string(),
        service: service.to_string(),
        port: port.to_string(),
        path: if tail.is_empty() { "/".to_string() } else { tail.to_string() },
    })
}

fn unavailable(message: String) -> ApiError {
    ApiError {
        code: 503,
        body: json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "ServiceUnavailable",
            "code": 503,
        }),
    }
}

/// The registered upstream for the target, or the error the real server would give.
fn resolve(shared: &Shared, t: &Target) -> Result<String, ApiError> {
    let st = shared.state.lock().unwrap();
    let def = def_for_kind(&st, "v1", "Service").expect("Services are built in");
    let key = ObjKey {
        group: String::new(),
        resource: "services".into(),
        namespace: t.namespace.clone(),
        name: t.service.clone(),
    };
    let svc = st.store.get(&key).ok_or_else(|| ApiError::not_found(&def, &t.service))?;
    let ports: Vec<&Value> = svc["spec"]["ports"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let number = |p: &Value| p["port"].as_u64().and_then(|n| u16::try_from(n).ok());
    let port = if let Ok(n) = t.port.parse::<u16>() {
        if !ports.iter().any(|p| number(p) == Some(n)) {
            return Err(unavailable(format!("no service port {n} found for service \"{}\"", t.service)));
        }
        Some(n)
    } else if t.port.is_empty() {
        match ports.as_slice() {
            [only] => number(only),
            _ => ports
                .iter()
                .find(|p| p["name"].as_str().unwrap_or_default().is_empty())
                .and_then(|p| number(p)),
        }
    } else {
        ports.iter().find(|p| p["name"] == t.port.as_str()).and_then(|p| number(p))
    };
    let routes = shared.proxy.0.lock().unwrap();
    if let Some(address) = port.and_then(|p| routes.get(&(t.namespace.clone(), t.service.clone(), p))) {
        return Ok(address.clone());
    }
    // Like `ResourceLocation`: a Service with no ready endpoint at all is named alone; one whose
    // endpoints serve other ports only is named as the request did. No Retry-After either way.
    let has_endpoints = routes.keys().any(|(ns, svc, _)| *ns == t.namespace && *svc == t.service);
    let named = if has_endpoints { &t.id } else { &t.service };
    Err(unavailable(format!("no endpoints available for service \"{named}\"")))
}

/// Connection-level headers a proxy never forwards (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwardable(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str())
}

/// Proxies one request; API-level failures come back as `Status` bodies.
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    target: Target,
    method: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> hyper::Response<Body> {
    let upstream = match resolve(shared, &target) {
        Ok(address) => address,
        Err(e) => return error_response(&e),
    };
    match exchange(&upstream, &target.path, method, query, headers, body).await {
        Ok(response) => response,
        Err(reason) => error_response(&unavailable(format!("error trying to reach service: {reason}"))),
    }
}

async fn exchange(
    upstream: &str,
    path: &str,
    method: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<hyper::Response<Body>, String> {
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("dial tcp {upstream}: connect: {}", e.kind().to_string().to_lowercase()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {upstream}: {e}"))?;
    tokio::spawn(conn);
    let uri = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
    let mut request = hyper::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        if forwardable(name) && name != hyper::header::AUTHORIZATION {
            request = request.header(name, value);
        }
    }
    let request = request.body(Full::new(body)).map_err(|e| format!("invalid request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("{upstream}: {e}"))?;
    let (parts, incoming) = response.into_parts();
    let bytes = incoming.collect().await.map_err(|e| format!("reading from {upstream}: {e}"))?.to_bytes();
    let mut out = hyper::Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if forwardable(name) && name != hyper::header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    Ok(out.body(super::whole(bytes)).expect("valid response"))
}

impl ApiServer {
    /// Sends service-proxy requests for `namespace/service:port` to `upstream` (`host:port`),
    /// as if the Service's endpoints were that address. The Service object itself must exist
    /// (seed it or apply it) for requests to get through.
    pub fn route_service(&self, namespace: &str, service: &str, port: u16, upstream: &str) {
        self.shared
            .proxy
            .0
            .lock()
            .unwrap()
            .insert((namespace.to_string(), service.to_string(), port), upstream.to_string());
        sync_endpoint_slice(&self.shared, namespace, service);
    }

    /// Takes the route away again: the Service has no ready endpoints from now on.
    pub fn unroute_service(&self, namespace: &str, service: &str, port: u16) {
        self.shared.proxy.0.lock().unwrap().remove(&(namespace.to_string(), service.to_string(), port));
        sync_endpoint_slice(&self.shared, namespace, service);
    }
}

/// Called for every created object: a Service created after its route was registered gets its
/// EndpointSlice now (the route could not place it in a namespace that did not exist yet).
pub(crate) fn on_create(shared: &Arc<Shared>, obj: &Value) {
    if obj["kind"] != "Service" || obj["apiVersion"] != "v1" {
        return;
    }
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let routed = shared.proxy.0.lock().unwrap().keys().any(|(n, s, _)| *n == ns && *s == name);
    if routed {
        // The caller holds the state lock; the slice is written once it is released.
        let weak = Arc::downgrade(shared);
        shared.runtime.spawn(async move {
            if let Some(shared) = weak.upgrade() {
                sync_endpoint_slice(&shared, &ns, &name);
            }
        });
    }
}

/// The EndpointSlice controller's view of the routes: one slice per Service (label
/// `kubernetes.io/service-name`), a ready endpoint serving each routed port, and no endpoint
/// once nothing is routed, so clients that read endpoints (not the proxy) see the same state.
/// Nothing is written while the namespace does not exist; creating the Service syncs again.
fn sync_endpoint_slice(shared: &Arc<Shared>, namespace: &str, service: &str) {
    const SERVICE_NAME: &str = "kubernetes.io/service-name";
    let ports: Vec<u16> = {
        let routes = shared.proxy.0.lock().unwrap();
        let mut ports: Vec<u16> =
            routes.keys().filter(|(ns, svc, _)| ns == namespace && svc == service).map(|k| k.2).collect();
        ports.sort_unstable();
        ports
    };
    let collection = format!("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices");
    let listed = super::internal(
        shared,
        "GET",
        &format!("{collection}?labelSelector={SERVICE_NAME}%3D{service}"),
        "endpointslice-controller",
        "",
        Value::Null,
    );
    let existing = listed.ok().and_then(|l| l["items"][0]["metadata"]["name"].as_str().map(str::to_string));
    let endpoints = if ports.is_empty() {
        json!([])
    } else {
        json!([{"addresses": ["127.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false}}])
    };
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": namespace,
            "labels": {SERVICE_NAME: service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports.iter().map(|p| json!({"port": p, "protocol": "TCP"})).collect::<Vec<_>>(),
    });
    let _ = match existing {
        Some(name) => super::internal(
            shared,
            "PATCH",
            &format!("{collection}/{name}"),
            "endpointslice-controller",
            "application/merge-patch+json",
            slice,
        ),
        None => {
            let suffix = shared.state.lock().unwrap().random_suffix();
            slice["metadata"]["name"] = json!(format!("{service}-{suffix}"));
            super::internal(
                shared,
                "POST",
                &collection,
                "endpointslice-controller",
                "application/json",
                slice,
            )
        }
    };
}
