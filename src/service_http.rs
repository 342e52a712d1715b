//! HTTP to the platform's services, by one of two transports. By default through the API
//! server's service proxy (`/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/<path>`),
//! sent with the kube client so its authentication, TLS and retries apply: no port-forward, no
//! ingress. Or straight to a URL (an ingress, a port-forward) with reqwest, for services that
//! need credentials of their own.
//!
//! Two properties of the real proxy shape what the checks can do, and the API server double
//! reproduces both: kube-apiserver removes the `Authorization` header once it has
//! authenticated the caller (kubernetes/kubernetes#38775), so credentials meant for the
//! Service never arrive (hence the direct transport); and it forwards the caller's `Host` (the
//! API server's own name).

use std::fmt::Write as _;
use std::time::Duration;

use http::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::error_chain::error_chain;

/// What a passing HTTP check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpReport {
    /// One line per step, in order.
    pub steps: Vec<String>,
    /// Output worth keeping: job logs, or the transcript of requests made.
    pub logs: String,
}

/// A failed HTTP check: the step that failed, why, and what to look at.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct HttpCheckError {
    /// The step that failed (`create run`, `wait for job`, ...).
    pub step: String,
    /// What went wrong, with the HTTP status and an excerpt of the answer.
    pub reason: String,
    /// What to look at next (a kubectl command, a setting).
    pub hint: String,
    /// Output captured up to the failure.
    pub logs: String,
}

/// One request to the proxied Service.
pub(crate) struct Request {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Request {
    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), content_type: None, body: Vec::new() }
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self { method: Method::DELETE, path: path.into(), content_type: None, body: Vec::new() }
    }

    /// `DELETE path` with a JSON body.
    pub fn delete_json(path: impl Into<String>, body: &Value) -> Self {
        Self {
            method: Method::DELETE,
            path: path.into(),
            content_type: Some("application/json"),
            body: body.to_string().into_bytes(),
        }
    }

    /// `POST path` with a JSON body.
    pub fn post_json(path: impl Into<String>, body: &Value) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            content_type: Some("application/json"),
            body: body.to_string().into_bytes(),
        }
    }

    /// `PUT path` with raw bytes.
    pub fn put_bytes(path: impl Into<String>, body: Vec<u8>) -> Self {
        Self { method: Method::PUT, path: path.into(), content_type: Some("application/octet-stream"), body }
    }

    fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A successful (2xx) answer.
pub(crate) struct Reply {
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, or the error a check reports when it is not.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("the answer is not JSON ({e}): {}", excerpt(&self.body)))
    }
}

/// Tries of an idempotent request through the service proxy whose connection is lost.
const PROXY_ATTEMPTS: u32 = 3;

/// How a check explains an unsuccessful answer from its own service: status and body in,
/// hint out. Answers the API server itself produced (no Service, no endpoints, RBAC) get
/// the proxy's own hints instead.
pub(crate) type UpstreamHint<'h> = &'h dyn Fn(u16, &str) -> String;

/// How requests reach the service.
enum Transport<'a> {
    /// A Service port through the API server.
    ServiceProxy { client: &'a kube::Client, namespace: String, service: String, port: u16 },
    /// Straight to `base` (scheme, host, optional port and path prefix, no trailing `/`).
    Direct { http: reqwest::Client, base: String },
}

/// A service the checks talk HTTP to, with a deadline every call must meet.
pub(crate) struct HttpEndpoint<'a> {
    transport: Transport<'a>,
    authorization: Option<String>,
    deadline: Instant,
    budget: Duration,
    transcript: std::sync::Mutex<String>,
}

impl<'a> HttpEndpoint<'a> {
    /// Service `namespace/service:port` through the API server; every call must finish within
    /// `budget` from now.
    pub fn service_proxy(
        client: &'a kube::Client,
        namespace: &str,
        service: &str,
        port: u16,
        budget: Duration,
    ) -> Self {
        let transport = Transport::ServiceProxy {
            client,
            namespace: namespace.to_string(),
            service: service.to_string(),
            port,
        };
        Self::with(transport, budget)
    }

    /// The service at `url` (http or https, as [`parse_http_url`] accepts it), reached
    /// directly; every call must finish within `budget` from now.
    pub fn direct(url: &str, budget: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self::with(Transport::Direct { http, base: url.trim_end_matches('/').to_string() }, budget))
    }

    fn with(transport: Transport<'a>, budget: Duration) -> Self {
        Self {
            transport,
            authorization: None,
            deadline: Instant::now() + budget,
            budget,
            transcript: std::sync::Mutex::new(String::new()),
        }
    }

    /// Sends `Authorization: Basic ...` with every request.
    pub fn basic_auth(mut self, credentials: Option<&(String, String)>) -> Self {
        use base64::Engine as _;
        self.authorization = credentials.map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        self
    }

    /// Gives the calls that follow a fresh `budget` (cleanup after a timeout still runs).
    pub fn renew(&mut self, budget: Duration) {
        self.deadline = Instant::now() + budget;
        self.budget = budget;
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Every request made so far with its outcome, one per line.
    pub fn transcript(&self) -> String {
        self.transcript.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn note(&self, line: &str) {
        if let Ok(mut t) = self.transcript.lock() {
            let _ = writeln!(t, "{line}");
        }
    }

    /// Sends `req`; a 2xx answer is a [`Reply`], anything else an error at `step` explained
    /// by `hint` (or by the proxy, when the API server answered for the Service).
    pub async fn call(
        &self,
        step: &str,
        req: Request,
        hint: UpstreamHint<'_>,
    ) -> Result<Reply, HttpCheckError> {
        let line = req.line();
        let fail = |reason: String, hint: String| HttpCheckError {
            step: step.to_string(),
            reason,
            hint,
            logs: self.transcript(),
        };
        let answer = match &self.transport {
            Transport::ServiceProxy { client, namespace, service, port } => {
                let uri =
                    format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{}", req.path);
                let build = || {
                    let mut builder = http::Request::builder().method(req.method.clone()).uri(&uri);
                    if let Some(ct) = req.content_type {
                        builder = builder.header(http::header::CONTENT_TYPE, ct);
                    }
                    if let Some(auth) = &self.authorization {
                        builder = builder.header(http::header::AUTHORIZATION, auth);
                    }
                    builder.body(kube::client::Body::from(req.body.clone()))
                };
                build().map_err(|e| fail(format!("{line}: cannot build the request: {e}"), String::new()))?;
                // The client retries 429s itself. A connection lost on the way is retried here,
                // for methods that may run twice; an answer, even a 503, is final.
                let idempotent =
                    matches!(req.method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE);
                let exchange = async {
                    let mut delay = Duration::from_millis(200);
                    let mut attempt = 1;
                    let response = loop {
                        let request = build().expect("built once already");
                        match client.send(request).await {
                            Err(kube::Error::Service(_) | kube::Error::HyperError(_))
                                if idempotent && attempt < PROXY_ATTEMPTS =>
                            {
                                tokio::time::sleep(delay + delay.mul_f64(fastrand::f64() / 2.0)).await;
                                delay *= 2;
                                attempt += 1;
                            }
                            other => break other?,
                        }
                    };
                    let status = response.status().as_u16();
                    let body = response.into_body().collect_bytes().await?;
                    Ok::<_, kube::Error>((status, body.to_vec()))
                };
                tokio::time::timeout_at(self.deadline, exchange).await.map(|r| {
                    r.map_err(|e| {
                        (
                            format!("the API server could not be reached: {e}"),
                            "check the cluster answers: kubectl cluster-info".to_string(),
                        )
                    })
                })
            }
            Transport::Direct { http, base } => {
                let url = format!("{base}{}", req.path);
                let mut builder = http.request(req.method.clone(), &url).body(req.body);
                if let Some(ct) = req.content_type {
                    builder = builder.header(http::header::CONTENT_TYPE, ct);
                }
                if let Some(auth) = &self.authorization {
                    builder = builder.header(http::header::AUTHORIZATION, auth);
                }
                let exchange = async {
                    let response = builder.send().await?;
                    let status = response.status().as_u16();
                    let body = response.bytes().await?;
                    Ok::<_, reqwest::Error>((status, body.to_vec()))
                };
                tokio::time::timeout_at(self.deadline, exchange).await.map(|r| {
                    r.map_err(|e| {
                        (
                            format!("{url} could not be reached: {}", error_chain(&e)),
                            format!("check the URL ({base}) resolves and answers from here: DNS, the ingress and its load balancer, TLS"),
                        )
                    })
                })
            }
        };
        let (status, body) = match answer {
            Err(_) => {
                self.note(&format!("{line} -> no answer"));
                return Err(fail(format!("{line}: no answer within {}", seconds(self.budget)), hint(0, "")));
            }
            Ok(Err((reason, transport_hint))) => {
                self.note(&format!("{line} -> {reason}"));
                return Err(fail(format!("{line}: {reason}"), transport_hint));
            }
            Ok(Ok(answer)) => answer,
        };
        self.note(&format!("{line} -> {status}"));
        if (200..300).contains(&status) {
            return Ok(Reply { body });
        }
        let text = excerpt(&body);
        match self.api_server_answer(status, &body) {
            Some((reason, api_hint)) => {
                Err(fail(format!("{line}: {reason}"), api_hint.unwrap_or_else(|| hint(status, &text))))
            }
            None => Err(fail(format!("{line}: HTTP {status}: {text}"), hint(status, &text))),
        }
    }

    /// When the answer is a `Status` the API server wrote itself (the Service was never
    /// reached): why, and a hint unless the service's own hint fits better.
    fn api_server_answer(&self, status: u16, body: &[u8]) -> Option<(String, Option<String>)> {
        let Transport::ServiceProxy { namespace: ns, service: svc, port, .. } = &self.transport else {
            return None;
        };
        let doc: Value = serde_json::from_slice(body).ok()?;
        if doc["kind"] != "Status" || doc["apiVersion"] != "v1" {
            return None;
        }
        let message = doc["message"].as_str().unwrap_or_default().to_string();
        let port = *port;
        // No ready pod behind the Service is a state to report, not a hiccup to retry: the 503
        // carries no Retry-After, and the check fails on the first answer.
        if status == 503 && message.contains("no endpoints available") {
            let reason = format!(
                "no ready endpoints for service {ns}/{svc} (the API server answered HTTP 503: {message})"
            );
            let hint = format!(
                "no ready pod backs the Service: kubectl -n {ns} get endpointslices -l kubernetes.io/service-name={svc}; kubectl -n {ns} describe service {svc}"
            );
            return Some((reason, Some(hint)));
        }
        let reason = format!("the API server answered HTTP {status} for the Service: {message}");
        let hint = match status {
            401 => Some("the cluster rejected your credentials: check the kubeconfig user (kubectl auth whoami)".into()),
            403 => Some(format!(
                "your user may not use the service proxy: kubectl auth can-i get services/proxy -n {ns}"
            )),
            404 => Some(format!(
                "the Service does not exist: kubectl -n {ns} get service {svc} (is the component enabled and applied?)"
            )),
            503 if message.contains("no service port") => {
                Some(format!("the Service has no port {port}: kubectl -n {ns} get service {svc} -o yaml"))
            }
            // "error trying to reach service": the pod is there but refused or dropped the
            // connection, which the service's own hint (its logs) explains best.
            _ => None,
        };
        Some((reason, hint))
    }
}

/// Accepts an `http://` or `https://` URL with a host and no query or fragment, for
/// `--mlflow-url`.
pub fn parse_http_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s)
        .map_err(|e| format!("{s:?} is not a URL ({e}); write e.g. https://mlflow.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} has scheme {:?}; use http:// or https://", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} has a query or fragment; give the server's base URL"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// The first 300 characters of a body, on one line.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".into();
    }
    match flat.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// `12s`, `1.5s`.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// A name no earlier smoke run used: `<prefix>-<time and process in hex>`.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{prefix}-{nanos:x}{:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"  a\n b  "), "a b");
        assert_eq!(excerpt(b""), "(empty body)");
        let long = "x".repeat(400);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(12)), "12s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn http_urls_are_checked() {
        assert_eq!(
            parse_http_url("https://mlflow.example.com/").as_deref(),
            Ok("https://mlflow.example.com")
        );
        assert_eq!(parse_http_url("http://127.0.0.1:5000").as_deref(), Ok("http://127.0.0.1:5000"));
        assert!(parse_http_url("mlflow.example.com").unwrap_err().contains("not a URL"));
        assert!(parse_http_url("ftp://mlflow.example.com").unwrap_err().contains("use http:// or https://"));
        assert!(parse_http_url("https://mlflow.example.com/?x=1").unwrap_err().contains("query"));
    }

    #[test]
    fn unique_names_differ() {
        let a = unique_name("trainstack-smoke");
        let b = unique_name("trainstack-smoke");
        assert!(a.starts_with("trainstack-smoke-"));
        assert_ne!(a, b);
    }
}
