//! One line for an error and its causes, shared by every adapter's error wording (a leaf: it
//! imports nothing from the crate, so the Kubernetes and AWS sides can both use it).

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
