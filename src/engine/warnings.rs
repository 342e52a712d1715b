//! API server warnings (`Warning: 299 - "..."` response headers): a tower layer that reads them
//! off every response and hands them to the sink of the call that made the request.
//!
//! kube's typed calls drop response headers, and the client stack runs behind a buffer in a
//! task of its own, so the caller cannot read them nor be found by a task-local from inside the
//! stack. Instead each call that wants its warnings carries a [`Warnings`] sink in its request's
//! extensions (set by `engine/cluster.rs` from the task-local scope [`collect`] opens), which
//! survives the buffer and kube's retries; concurrent objects each have their own scope.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

tokio::task_local! {
    static SINK: Warnings;
}

/// The warnings the API server attached to one object's requests, each once, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn push(&self, text: String) {
        if let Ok(mut all) = self.0.lock() {
            if !all.contains(&text) {
                all.push(text);
            }
        }
    }

    fn take(&self) -> Vec<String> {
        self.0.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    /// The sink of the [`collect`] scope the current task runs in, if any.
    pub fn current() -> Option<Warnings> {
        SINK.try_with(Clone::clone).ok()
    }
}

/// Runs `f` and returns, with its output, the warnings of the requests it made through
/// `engine/cluster.rs` calls that attach the sink (server-side apply, dry-run or not).
pub async fn collect<F: Future>(f: F) -> (F::Output, Vec<String>) {
    let sink = Warnings::default();
    let out = SINK.scope(sink.clone(), f).await;
    (out, sink.take())
}

/// The texts of one `Warning` header value: RFC 7234 `warn-code SP warn-agent SP warn-text
/// [SP warn-date]`, several separated by commas. Like client-go, only code 299 (the one
/// Kubernetes uses) is kept, and an entry that does not parse is dropped.
pub fn parse_header(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return out;
        }
        let Some((code, after)) = rest.split_once(' ') else { return out };
        let Some((_agent, after)) = after.trim_start().split_once(' ') else { return out };
        let Some((text, after)) = quoted(after.trim_start()) else { return out };
        if code == "299" {
            out.push(text);
        }
        // An optional quoted warn-date, then the next entry.
        rest = after.trim_start();
        if rest.starts_with('"') {
            rest = quoted(rest).map_or("", |(_, after)| after);
        }
    }
}

/// A quoted-string at the start of `s` (backslash escapes undone) and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '"' => return Some((text, &body[i + 1..])),
            c => text.push(c),
        }
    }
    None
}

/// The layer that captures warnings for requests carrying a [`Warnings`] sink.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureLayer;

impl<S> tower::Layer<S> for CaptureLayer {
    type Service = Capture<S>;
    fn layer(&self, inner: S) -> Capture<S> {
        Capture { inner }
    }
}

/// See [`CaptureLayer`].
#[derive(Debug, Clone)]
pub struct Capture<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Capture<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    B: 'static,
    R: 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let sink = req.extensions().get::<Warnings>().cloned();
        let response = self.inner.call(req);
        Box::pin(async move {
            let res = response.await?;
            if let Some(sink) = sink {
                for value in res.headers().get_all(http::header::WARNING) {
                    for text in parse_header(&String::from_utf8_lossy(value.as_bytes())) {
                        sink.push(text);
                    }
                }
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_parse_like_client_go() {
        assert_eq!(
            parse_header(r#"299 - "would violate PodSecurity \"restricted:latest\": runAsNonRoot != true""#),
            vec![r#"would violate PodSecurity "restricted:latest": runAsNonRoot != true"#]
        );
        assert_eq!(
            parse_header(
                r#"299 - "a, b", 299 kube-apiserver "c" "Sun, 06 Dec 2026 07:00:00 GMT", 199 - "misc""#
            ),
            vec!["a, b", "c"],
            "commas inside the text, several entries, a date, codes other than 299 dropped"
        );
        assert!(parse_header("garbage").is_empty());
        assert!(parse_header(r#"299 - "unterminated"#).is_empty());
    }

    #[tokio::test]
    async fn each_scope_collects_only_its_own_warnings() {
        let (_, outer) = collect(async {
            Warnings::current().expect("in scope").push("outer".into());
            let (_, inner) = collect(async {
                let w = Warnings::current().expect("in scope");
                w.push("inner".into());
                w.push("inner".into());
            })
            .await;
            assert_eq!(inner, vec!["inner"], "deduplicated");
        })
        .await;
        assert_eq!(outer, vec!["outer"]);
        assert!(Warnings::current().is_none());
    }
}
