//! kube-apiserver's max-in-flight filter with API Priority and Fairness off
//! (`--enable-priority-and-fairness=false`, `--max-requests-inflight`,
//! `--max-mutating-requests-inflight`; `WithMaxInFlightLimit` in k8s.io/apiserver): two pools of
//! requests being handled, one for the `get`/`list`/`watch` verbs and one for every other verb
//! (dry-runs included). A request that finds its pool full is rejected at once, before any
//! handling, with 429, `Retry-After: 1` and `http.Error`'s plain-text body. Long-running
//! requests (watches, the proxy verb and the `proxy`, `log`, `exec`, `attach` and `portforward`
//! subresources) are exempt. Every caller counts; the double has no `system:masters` user to
//! exempt.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::Body;

/// The sizes of the two pools; 0 leaves a pool unlimited, as on the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxInFlight {
    /// `--max-requests-inflight`.
    pub read: usize,
    /// `--max-mutating-requests-inflight`.
    pub mutating: usize,
}

/// The pools of a running server.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    limits: Option<MaxInFlight>,
    read: AtomicUsize,
    mutating: AtomicUsize,
    /// Requests turned away so far.
    rejected: AtomicUsize,
}

/// What the filter decided for one request.
pub(crate) enum Admission<'a> {
    /// Not limited: no limits configured, a long-running request, or an unlimited pool.
    Exempt,
    /// Counted in a pool until the guard is dropped (when the handler has answered).
    Admitted(Guard<'a>),
    /// The pool was full.
    Rejected,
}

/// A place in a pool.
pub(crate) struct Guard<'a>(&'a AtomicUsize);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight {
    pub fn new(limits: Option<MaxInFlight>) -> Self {
        Self { limits, ..Self::default() }
    }

    pub fn admit(&self, method: &str, path: &str, query: &str) -> Admission<'_> {
        let Some(limits) = self.limits else { return Admission::Exempt };
        if long_running(path, query) {
            return Admission::Exempt;
        }
        let (pool, limit) = match method {
            "GET" | "HEAD" => (&self.read, limits.read),
            _ => (&self.mutating, limits.mutating),
        };
        if limit == 0 {
            return Admission::Exempt;
        }
        // A channel of `limit` places in Go; a bounded counter here.
        let taken = pool.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1));
        match taken {
            Ok(_) => Admission::Admitted(Guard(pool)),
            Err(_) => {
                self.rejected.fetch_add(1, Ordering::SeqCst);
                Admission::Rejected
            }
        }
    }

    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::SeqCst)
    }
}

/// The real server's rejection: `tooManyRequests` writes `Retry-After: 1` and calls Go's
/// `http.Error`, so the body is plain text, not a `Status`.
pub(crate) fn too_many_requests() -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(429)
        .header("Retry-After", "1")
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(super::whole(Bytes::from_static(b"Too many requests, please try again later.\n")))
        .expect("valid response")
}

/// `BasicLongRunningRequestCheck(verbs: watch, proxy; subresources: attach, exec, proxy, log,
/// portforward)` over the request info the server derives from the path.
fn long_running(path: &str, query: &str) -> bool {
    if query.split('&').any(|p| matches!(p, "watch=true" | "watch=1")) {
        return true;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => return false,
    };
    if matches!(rest.first(), Some(&"watch" | &"proxy")) {
        return true;
    }
    let rest = match rest {
        ["namespaces", _, more @ ..] if !more.is_empty() => more,
        other => other,
    };
    matches!(rest, [_, _, sub, ..] if ["attach", "exec", "proxy", "log", "portforward"].contains(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_fill_per_class_and_long_running_requests_pass() {
        let f = InFlight::new(Some(MaxInFlight { read: 2, mutating: 1 }));
        let a = f.admit("GET", "/api/v1/namespaces/a/configmaps/x", "");
        let b = f.admit("GET", "/api/v1/namespaces/a/configmaps/y", "");
        assert!(matches!((&a, &b), (Admission::Admitted(_), Admission::Admitted(_))));
        assert!(matches!(f.admit("GET", "/api/v1/namespaces", ""), Admission::Rejected));
        let w = f.admit("PATCH", "/api/v1/namespaces/a/configmaps/x", "dryRun=All");
        assert!(matches!(w, Admission::Admitted(_)));
        assert!(matches!(f.admit("DELETE", "/api/v1/namespaces/a/configmaps/x", ""), Admission::Rejected));
        assert!(matches!(f.admit("GET", "/api/v1/namespaces/a/pods", "watch=true"), Admission::Exempt));
        assert!(matches!(f.admit("GET", "/api/v1/namespaces/a/pods/p/log", ""), Admission::Exempt));
        let proxied = "/api/v1/namespaces/a/services/mlflow:5000/proxy/health";
        assert!(matches!(f.admit("POST", proxied, ""), Admission::Exempt));
        drop(a);
        assert!(matches!(f.admit("GET", "/api/v1/namespaces", ""), Admission::Admitted(_)));
        assert_eq!(f.rejected(), 2);
    }
}
