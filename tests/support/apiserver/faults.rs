//! Fault injection: rules that match requests by method, path prefix and position, and make
//! the server throttle (429 with Retry-After), fail (5xx), drop the connection, cut a watch
//! stream, or slow down.

use std::time::Duration;

/// What happens to a request a rule matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 TooManyRequests with a `Retry-After: <seconds>` header, like API Priority and
    /// Fairness rejecting a request.
    TooManyRequests { retry_after_secs: u64 },
    /// A 5xx `Status` (500 InternalError, 503 ServiceUnavailable, 504 Timeout).
    ServerError(u16),
    /// Close the socket without answering and without processing the request.
    DropConnection,
    /// Process the request (a write lands) and then close the socket without answering:
    /// the client cannot know whether its write happened.
    DropAfterProcessing,
    /// Delay the request, then serve it normally.
    Latency(Duration),
    /// Start a watch normally, send this many events, then cut the connection mid-stream
    /// (no clean end of the chunked body), as a load balancer or a restarting server does.
    /// Matches watch requests only.
    DropWatchAfter(usize),
}

/// A fault plus the requests it applies to. Built with [`FaultRule::new`] and narrowed with
/// the builder methods; by default it matches every request, forever.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub(crate) fault: Fault,
    method: Option<String>,
    path_prefix: Option<String>,
    writes_only: bool,
    skip: usize,
    times: Option<usize>,
    seen: usize,
    fired: usize,
    /// Set by [`FaultRule::down_from_nth_write`]: the writes served before the server goes away.
    writes_until_down: Option<usize>,
    down: bool,
}

impl FaultRule {
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            method: None,
            path_prefix: None,
            writes_only: false,
            skip: 0,
            times: None,
            seen: 0,
            fired: 0,
            writes_until_down: None,
            down: false,
        }
    }

    /// Only requests with this HTTP method (`"PATCH"`, ...).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path starts with `prefix` (`"/apis/apps/v1"`).
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    /// Only writes (POST, PUT, PATCH, DELETE), dry-run or not.
    pub fn writes_only(mut self) -> Self {
        self.writes_only = true;
        self
    }

    /// Let the first `n` matching requests through untouched.
    pub fn after(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Fire for `n` matching requests, then stop.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire once.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// Fail the `n`th (1-based) write the server receives, once.
    pub fn nth_write(fault: Fault, n: usize) -> Self {
        Self::new(fault).writes_only().after(n.saturating_sub(1)).once()
    }

    /// The API server dies at the `n`th (1-based) write: that write and every request after it,
    /// reads included, lose their connection unanswered, as when the server is killed mid-run
    /// (nothing of the `n`th write lands). Clearing the faults brings the server back.
    pub fn down_from_nth_write(n: usize) -> Self {
        let mut rule = Self::new(Fault::DropConnection);
        rule.writes_until_down = Some(n.saturating_sub(1));
        rule
    }

    fn matches(&self, method: &str, path: &str, watch: bool) -> bool {
        (watch || !matches!(self.fault, Fault::DropWatchAfter(_)))
            && self.method.as_deref().is_none_or(|m| m == method)
            && self.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
            && (!self.writes_only || matches!(method, "POST" | "PUT" | "PATCH" | "DELETE"))
    }

    fn exhausted(&self) -> bool {
        self.times.is_some_and(|t| self.fired >= t)
    }
}

/// The active rules, consulted in insertion order; every matching rule counts the request,
/// and the first one that fires decides its fate (latency rules add up and fall through).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    pub latency: Duration,
}

/// The decision for one request.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub delay: Duration,
    pub fault: Option<Fault>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.latency = Duration::ZERO;
    }

    /// `watch`: the request is a watch (`?watch=true`), which only watch faults match.
    pub fn decide(&mut self, method: &str, path: &str, watch: bool) -> Verdict {
        let mut verdict = Verdict { delay: self.latency, fault: None };
        for rule in &mut self.rules {
            if let Some(until) = rule.writes_until_down {
                let write = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
                if !(rule.down || write && rule.seen >= until) {
                    rule.seen += usize::from(write);
                    continue;
                }
                rule.down = true;
            } else if rule.exhausted() || !rule.matches(method, path, watch) {
                continue;
            } else {
                rule.seen += 1;
                if rule.seen <= rule.skip {
                    continue;
                }
            }
            match &rule.fault {
                Fault::Latency(d) => {
                    rule.fired += 1;
                    verdict.delay += *d;
                }
                fault if verdict.fault.is_none() => {
                    rule.fired += 1;
                    verdict.fault = Some(fault.clone());
                }
                _ => {}
            }
        }
        self.rules.retain(|r| !r.exhausted());
        verdict
    }
}
