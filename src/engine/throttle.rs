//! Flow control toward the API server: one adaptive limit on requests in flight, shared by
//! every request a client sends, and retries of throttled requests that wait at least the
//! server's `Retry-After` plus random jitter.
//!
//! kube-apiserver throttles in two ways that look alike to a client: the max-in-flight filter
//! (`--max-requests-inflight` for reads, `--max-mutating-requests-inflight` for writes) and API
//! Priority and Fairness. Both reject at once with 429 and `Retry-After`. Retrying after exactly
//! that delay sends every rejected worker back in the same instant, where most are rejected
//! again (a lockstep that stretched a 150-tenant apply to 19 minutes); and keeping
//! `--concurrency` requests in flight against a server that admits fewer guarantees
//! rejections. So each retry waits `Retry-After` (or, without one, an exponential backoff) plus
//! jitter drawn per request; and the number of requests in flight follows AIMD: halved on a
//! 429, one more after each second without one, never above `--concurrency`, never below 1. The
//! limit is kept per class (reads, writes) because the server limits the two separately, and a
//! write pool of 1 must not hold the reads down with it.

/// Requests in flight at most per class when no `--concurrency` is given.
pub const DEFAULT_CONCURRENCY: usize = 8;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode, Uri};
use kube::client::Body;
use tokio::sync::Notify;
use tower::{Layer, Service, ServiceExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the limit holds after it changed before a success may raise it by one.
pub const GROWTH_INTERVAL: Duration = Duration::from_secs(1);

/// The longest the limit holds before trying one more: the interval doubles each time a step up
/// draws a 429 at once, so a server that admits exactly the current limit is probed rarely.
pub const MAX_GROWTH_INTERVAL: Duration = Duration::from_secs(16);

/// How long one request is retried while the server keeps throttling it, before the 429 is
/// returned to the caller: long enough to ride out a storm, short enough that a server which
/// never admits the request is reported.
pub const THROTTLED_FOR_AT_MOST: Duration = Duration::from_secs(120);

/// The backoff of the first retry when the server sends no `Retry-After` (and the least wait
/// when it sends 0); it doubles per retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The backoff stops doubling here.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The longest wait before jitter, whatever `Retry-After` asks for.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Subresources the server counts as long-running (`BasicLongRunningRequestCheck` in
/// kube-apiserver): exempt from its in-flight limits, and open for as long as they stream.
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["proxy", "log", "exec", "attach", "portforward"];

/// Which of the server's in-flight pools a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `get`, `list` and `watch` verbs (`--max-requests-inflight`).
    Read,
    /// Everything else, dry-runs included (`--max-mutating-requests-inflight`).
    Mutating,
}

impl Class {
    /// The class of a request as kube-apiserver's max-in-flight filter sees it, or `None` for
    /// a long-running request (watch, service proxy, logs, exec, attach, port-forward), which
    /// the server does not limit and which would hold a place for as long as it streams.
    pub fn of(method: &Method, uri: &Uri) -> Option<Class> {
        if is_long_running(uri) {
            return None;
        }
        Some(match *method {
            Method::GET | Method::HEAD => Class::Read,
            _ => Class::Mutating,
        })
    }

    fn index(self) -> usize {
        match self {
            Class::Read => 0,
            Class::Mutating => 1,
        }
    }
}

fn is_long_running(uri: &Uri) -> bool {
    let watch = uri.query().unwrap_or_default().split('&').any(|p| matches!(p, "watch=true" | "watch=1"));
    if watch {
        return true;
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => return false,
    };
    // The deprecated `/watch/...` and `/proxy/...` path prefixes name the verb up front.
    if matches!(rest.first(), Some(&"watch" | &"proxy")) {
        return true;
    }
    let rest = match rest {
        ["namespaces", _namespace, more @ ..] if !more.is_empty() => more,
        other => other,
    };
    matches!(rest, [_resource, _name, sub, ..] if LONG_RUNNING_SUBRESOURCES.contains(sub))
}

/// An additive-increase, multiplicative-decrease limit on requests in flight.
#[derive(Debug, Clone)]
pub struct Aimd {
    ceiling: usize,
    limit: usize,
    /// Bumped at every change, so the rejections of requests admitted under one limit cut it
    /// once: a burst of 429s answers one decision, not several.
    generation: u64,
    changed: Instant,
    /// How long the limit must hold before the next step up.
    interval: Duration,
    /// Whether the last change was a step up, not yet confirmed by an interval without a 429.
    probing: bool,
}

impl Aimd {
    /// A limit starting at `ceiling` (at least 1): a server that never throttles costs nothing.
    pub fn new(ceiling: usize, now: Instant) -> Self {
        let ceiling = ceiling.max(1);
        Aimd {
            ceiling,
            limit: ceiling,
            generation: 0,
            changed: now,
            interval: GROWTH_INTERVAL,
            probing: false,
        }
    }

    /// Requests that may be in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The generation a request admitted now belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A request admitted in `generation` was throttled: halve the limit, unless a rejection
    /// of the same generation already did. When that generation was a step up, the next step
    /// up waits twice as long.
    pub fn throttled(&mut self, generation: u64, now: Instant) {
        if generation != self.generation {
            return;
        }
        if self.probing {
            self.interval = (self.interval * 2).min(MAX_GROWTH_INTERVAL);
        }
        self.limit = (self.limit / 2).max(1);
        self.generation += 1;
        self.changed = now;
        self.probing = false;
    }

    /// A request was served: once the limit has held for the growth interval, raise it by one
    /// (a step up that held that long resets the interval to [`GROWTH_INTERVAL`]).
    pub fn succeeded(&mut self, now: Instant) {
        if now.saturating_duration_since(self.changed) < self.interval {
            return;
        }
        if self.probing {
            self.interval = GROWTH_INTERVAL;
            self.probing = false;
        }
        if self.limit < self.ceiling {
            self.limit += 1;
            self.generation += 1;
            self.changed = now;
            self.probing = true;
        }
    }
}

/// How long to wait before retry number `retry` (from 1) of a throttled request: the server's
/// `Retry-After`, or without one an exponential backoff, plus up to half as much again scaled by
/// `unit` (uniform in `[0, 1)`), so that requests rejected together return spread out. Backing
/// off from the server's load is the in-flight limit's job, not the wait's.
pub fn retry_wait(retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    let base = match retry_after {
        Some(after) => after.max(FIRST_BACKOFF),
        None => FIRST_BACKOFF.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(MAX_BACKOFF),
    }
    .min(MAX_WAIT);
    base + base.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// The `Retry-After` of a response in seconds (the form kube-apiserver sends).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    value.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// One class's limit and the requests of that class in flight.
struct Pool {
    aimd: Aimd,
    in_flight: usize,
}

/// The limits of one client, shared by every request it sends.
pub struct Gate {
    pools: Mutex<[Pool; 2]>,
    freed: Notify,
}

impl Gate {
    /// Limits starting at, and never above, `ceiling` requests in flight per class.
    pub fn new(ceiling: usize) -> Arc<Self> {
        let now = Instant::now();
        let pool = || Pool { aimd: Aimd::new(ceiling, now), in_flight: 0 };
        Arc::new(Gate { pools: Mutex::new([pool(), pool()]), freed: Notify::new() })
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, [Pool; 2]> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current limit of a class.
    pub fn limit(&self, class: Class) -> usize {
        self.pools()[class.index()].aimd.limit()
    }

    /// Waits until a request of `class` may be sent.
    async fn admit(self: &Arc<Self>, class: Class) -> Slot {
        loop {
            // Registered before the lock is released, so a slot freed in between still wakes it.
            let freed = self.freed.notified();
            {
                let mut pools = self.pools();
                let pool = &mut pools[class.index()];
                if pool.in_flight < pool.aimd.limit() {
                    pool.in_flight += 1;
                    return Slot { gate: self.clone(), class, generation: pool.aimd.generation() };
                }
            }
            freed.await;
        }
    }
}

/// A request in flight; its place is freed when dropped.
struct Slot {
    gate: Arc<Gate>,
    class: Class,
    generation: u64,
}

impl Slot {
    fn throttled(&self) {
        self.gate.pools()[self.class.index()].aimd.throttled(self.generation, Instant::now());
    }

    fn succeeded(&self) {
        self.gate.pools()[self.class.index()].aimd.succeeded(Instant::now());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.pools()[self.class.index()].in_flight -= 1;
        self.gate.freed.notify_waiters();
    }
}

/// The tower layer of [`Throttle`]: every service it wraps shares one [`Gate`].
#[derive(Clone)]
pub struct ThrottleLayer {
    gate: Arc<Gate>,
}

impl ThrottleLayer {
    /// A layer whose limits never exceed `ceiling` requests in flight per class.
    pub fn new(ceiling: usize) -> Self {
        ThrottleLayer { gate: Gate::new(ceiling) }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;
    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle { inner, gate: self.gate.clone() }
    }
}

/// Admits each request through the [`Gate`] and retries 429s (any method: the server rejected
/// the request before handling it). Nothing else is retried here: 5xx and lost connections are
/// retried only for idempotent calls, by `engine::cluster::retry`.
#[derive(Clone)]
pub struct Throttle<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> Service<Request<Body>> for Throttle<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready clone is the one that was polled; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let class = Class::of(request.method(), request.uri());
            let started = tokio::time::Instant::now();
            let mut request = request;
            let mut retries = 0;
            loop {
                let again = clone_request(&request);
                let slot = match class {
                    Some(class) => Some(gate.admit(class).await),
                    None => None,
                };
                let response =
                    inner.ready().await.map_err(Into::into)?.call(request).await.map_err(Into::into)?;
                let throttled = response.status() == StatusCode::TOO_MANY_REQUESTS;
                if let Some(slot) = &slot {
                    if throttled {
                        slot.throttled();
                    } else if !response.status().is_server_error() {
                        slot.succeeded();
                    }
                }
                drop(slot);
                let wait = retry_wait(retries + 1, retry_after(&response), fastrand::f64());
                match again {
                    Some(next) if throttled && started.elapsed() + wait <= THROTTLED_FOR_AT_MOST => {
                        retries += 1;
                        drop(response);
                        tokio::time::sleep(wait).await;
                        request = next;
                    }
                    _ => return Ok(response),
                }
            }
        })
    }
}

/// A copy of a request to send again, when its body can be replayed.
fn clone_request(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(method: Method, uri: &str) -> Option<Class> {
        Class::of(&method, &uri.parse().unwrap())
    }

    #[test]
    fn requests_are_classed_like_the_servers_max_in_flight_filter() {
        assert_eq!(class(Method::GET, "/api/v1/namespaces/a/configmaps/x"), Some(Class::Read));
        assert_eq!(class(Method::GET, "/apis/apps/v1/deployments?labelSelector=a%3Db"), Some(Class::Read));
        assert_eq!(class(Method::GET, "/api/v1/namespaces/a"), Some(Class::Read));
        assert_eq!(class(Method::GET, "/apis"), Some(Class::Read));
        let dry_run = "/apis/apps/v1/namespaces/a/deployments/x?dryRun=All&fieldManager=trainstack";
        assert_eq!(class(Method::PATCH, dry_run), Some(Class::Mutating));
        assert_eq!(class(Method::DELETE, "/api/v1/namespaces/a"), Some(Class::Mutating));
        assert_eq!(
            class(Method::POST, "/apis/authorization.k8s.io/v1/subjectaccessreviews"),
            Some(Class::Mutating)
        );
        assert_eq!(class(Method::PUT, "/api/v1/namespaces/a/status"), Some(Class::Mutating));
    }

    #[test]
    fn long_running_requests_are_not_limited() {
        for (method, uri) in [
            (Method::GET, "/api/v1/namespaces/a/pods?watch=true&resourceVersion=1"),
            (Method::GET, "/apis/trainer.kubeflow.org/v1alpha1/trainjobs?watch=1"),
            (Method::GET, "/api/v1/watch/namespaces/a/pods"),
            (Method::POST, "/api/v1/namespaces/a/services/mlflow:5000/proxy/api/2.0/runs/create"),
            (Method::GET, "/api/v1/namespaces/a/pods/p/log?container=c"),
            (Method::POST, "/api/v1/namespaces/a/pods/p/exec?command=ls"),
            (Method::GET, "/api/v1/nodes/n/proxy/metrics"),
        ] {
            assert_eq!(class(method.clone(), uri), None, "{method} {uri}");
        }
    }

    #[test]
    fn a_429_halves_the_limit_once_per_generation() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(8, t0);
        assert_eq!(aimd.limit(), 8);
        let sent_together = aimd.generation();
        // Eight requests sent together, five rejected: one cut, not five.
        for _ in 0..5 {
            aimd.throttled(sent_together, t0);
        }
        assert_eq!(aimd.limit(), 4);
        aimd.throttled(aimd.generation(), t0);
        aimd.throttled(aimd.generation(), t0);
        aimd.throttled(aimd.generation(), t0);
        assert_eq!(aimd.limit(), 1, "never below 1");
    }

    #[test]
    fn the_limit_grows_back_by_one_per_interval_of_successes_up_to_the_ceiling() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(3, t0);
        aimd.throttled(aimd.generation(), t0);
        assert_eq!(aimd.limit(), 1);
        // Successes right after the cut change nothing: the server just said no.
        aimd.succeeded(t0 + GROWTH_INTERVAL / 2);
        assert_eq!(aimd.limit(), 1);
        aimd.succeeded(t0 + GROWTH_INTERVAL);
        assert_eq!(aimd.limit(), 2);
        aimd.succeeded(t0 + GROWTH_INTERVAL + GROWTH_INTERVAL / 2);
        assert_eq!(aimd.limit(), 2, "one step per interval");
        for s in 2..10 {
            aimd.succeeded(t0 + GROWTH_INTERVAL * s);
        }
        assert_eq!(aimd.limit(), 3, "never above the ceiling");
    }

    #[test]
    fn a_step_up_that_draws_a_429_makes_the_next_one_wait_twice_as_long() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(8, t0);
        aimd.throttled(aimd.generation(), t0);
        aimd.throttled(aimd.generation(), t0);
        aimd.throttled(aimd.generation(), t0);
        assert_eq!(aimd.limit(), 1);
        // The server admits one: every probe to 2 is rejected, and probes grow rarer.
        let mut t = t0;
        let mut probes = Vec::new();
        for _ in 0..6 {
            let before = t;
            while aimd.limit() == 1 {
                t += Duration::from_millis(100);
                aimd.succeeded(t);
            }
            probes.push((t - before).as_secs());
            aimd.throttled(aimd.generation(), t);
        }
        assert_eq!(probes, [1, 2, 4, 8, 16, 16]);
        // A step up that holds resets the interval.
        while aimd.limit() == 1 {
            t += Duration::from_millis(100);
            aimd.succeeded(t);
        }
        aimd.succeeded(t + MAX_GROWTH_INTERVAL);
        assert_eq!(aimd.limit(), 3);
        aimd.succeeded(t + MAX_GROWTH_INTERVAL + GROWTH_INTERVAL);
        assert_eq!(aimd.limit(), 4);
    }

    #[test]
    fn a_429_of_a_request_sent_before_the_last_change_is_not_counted_again() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(8, t0);
        let old = aimd.generation();
        aimd.throttled(old, t0);
        aimd.succeeded(t0 + GROWTH_INTERVAL);
        assert_eq!(aimd.limit(), 5);
        aimd.throttled(old, t0 + GROWTH_INTERVAL);
        assert_eq!(aimd.limit(), 5);
    }

    #[test]
    fn the_wait_honours_retry_after_as_a_minimum_and_adds_jitter() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(retry_wait(1, second, 0.0), Duration::from_secs(1));
        assert_eq!(retry_wait(1, second, 0.5), Duration::from_millis(1250));
        assert!(retry_wait(1, second, 0.999) < Duration::from_millis(1500));
        // Without Retry-After: exponential from 250 ms, doubling, capped.
        assert_eq!(retry_wait(1, None, 0.0), Duration::from_millis(250));
        assert_eq!(retry_wait(3, None, 0.0), Duration::from_secs(1));
        assert_eq!(retry_wait(10, None, 0.0), MAX_BACKOFF);
        // The server's word holds however often it said it (the in-flight limit backs off).
        assert_eq!(retry_wait(5, second, 0.0), Duration::from_secs(1));
        // `Retry-After: 0` is no reason to hammer; a huge one is capped.
        assert_eq!(retry_wait(1, Some(Duration::ZERO), 0.0), FIRST_BACKOFF);
        assert_eq!(retry_wait(1, Some(Duration::from_secs(3600)), 0.0), MAX_WAIT);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let with = |v: &str| Response::builder().header("Retry-After", v).body(()).unwrap();
        assert_eq!(retry_after(&with("1")), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(&with(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&with("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&Response::new(())), None);
    }

    #[tokio::test]
    async fn the_gate_admits_up_to_the_limit_per_class_and_wakes_a_waiter_when_a_slot_frees() {
        let gate = Gate::new(2);
        let a = gate.admit(Class::Mutating).await;
        let b = gate.admit(Class::Mutating).await;
        // Reads have their own pool.
        let read = gate.admit(Class::Read).await;
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit(Class::Mutating).await.generation }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a third write waits while two are in flight");
        a.throttled();
        assert_eq!(gate.limit(Class::Mutating), 1);
        assert_eq!(gate.limit(Class::Read), 2);
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one write still in flight fills the cut limit");
        drop(b);
        let generation = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(generation, 1, "admitted under the cut limit");
        drop(read);
    }
}
