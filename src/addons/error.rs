//! The errors of loading an add-on; every one names the add-on and where its manifests came from.

use std::path::PathBuf;

/// Why an add-on's manifests could not be loaded.
///
/// `addon` is the add-on's name; `from` describes its source the way the environment declared it,
/// resolved (`url https://…`, `file /abs/path.yaml`, `dir /abs/dir`, `kustomize target`).
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// The source does not pass [`check_source`](super::check_source); nothing was attempted.
    #[error("add-on `{addon}`: invalid source: {}", render_problems(.problems))]
    InvalidSource {
        /// Add-on name.
        addon: String,
        /// `(field, message)` pairs, field relative to `source`.
        problems: Vec<(String, String)>,
    },

    /// The server answered with a non-success HTTP status (after retries if it was transient).
    #[error("add-on `{addon}` (url {url}): download failed: HTTP {status}")]
    HttpStatus {
        /// Add-on name.
        addon: String,
        /// The URL requested.
        url: String,
        /// Status code and reason, e.g. `404 Not Found`.
        status: String,
    },

    /// The request failed before a status arrived, or the body could not be read.
    #[error("add-on `{addon}` (url {url}): download failed: {cause}")]
    Download {
        /// Add-on name.
        addon: String,
        /// The URL requested.
        url: String,
        /// The transport error with its whole cause chain. Kept as text because reqwest's own
        /// message omits the underlying reason ("connection refused"), which is what users need.
        cause: String,
    },

    /// The downloaded file is not the one the environment pinned.
    #[error(
        "add-on `{addon}` (url {url}): checksum mismatch: expected sha256 {expected}, \
         downloaded file has sha256 {actual}"
    )]
    ChecksumMismatch {
        /// Add-on name.
        addon: String,
        /// The URL downloaded.
        url: String,
        /// The sha256 declared in the environment.
        expected: String,
        /// The sha256 of what the server sent.
        actual: String,
    },

    /// The download cache could not be read or written.
    #[error("add-on `{addon}` (url {url}): cache {}: {source}", .path.display())]
    Cache {
        /// Add-on name.
        addon: String,
        /// The URL the cached file belongs to.
        url: String,
        /// The cache path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A local file, directory or kustomize target does not exist.
    #[error("add-on `{addon}` ({from}): {} does not exist", .path.display())]
    NotFound {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The missing path, resolved against the environment file's directory.
        path: PathBuf,
    },

    /// A local file or directory exists but cannot be read.
    #[error("add-on `{addon}` ({from}): cannot read {}: {source}", .path.display())]
    Unreadable {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A manifest is not valid YAML.
    #[error("add-on `{addon}` ({from}): {file}{}: invalid YAML: {message}", line_suffix(*.line))]
    Yaml {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The file that failed (or the command whose output failed).
        file: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },

    /// A document is not a Kubernetes object.
    #[error("add-on `{addon}` ({from}): {file}: document {document}: {problem}")]
    NotAnObject {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The file the document came from.
        file: String,
        /// 1-based index of the non-empty document in its file.
        document: usize,
        /// What is wrong, e.g. "has no `kind`".
        problem: String,
    },

    /// The source produced no objects at all, which is never what an add-on means.
    #[error("add-on `{addon}` ({from}): no Kubernetes objects found")]
    Empty {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
    },

    /// `kubectl` (or `$TRAINSTACK_KUBECTL`) is not installed.
    #[error(
        "add-on `{addon}` ({from}): `{}` not found: kubectl is needed to render kustomize \
         targets; install it or set TRAINSTACK_KUBECTL",
        .program.display()
    )]
    KubectlMissing {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The program that was looked for.
        program: PathBuf,
    },

    /// `kubectl` exists but could not be started (e.g. not executable).
    #[error("add-on `{addon}` ({from}): cannot run `{}`: {source}", .program.display())]
    KubectlSpawn {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The program that failed to start.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `kubectl kustomize` exited unsuccessfully.
    #[error("add-on `{addon}` ({from}): `kubectl kustomize` failed ({}):\n{stderr_tail}", exit_text(*.code))]
    KustomizeFailed {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// Exit code, `None` when killed by a signal.
        code: Option<i32>,
        /// The last lines of its standard error.
        stderr_tail: String,
    },

    /// `kubectl kustomize` did not finish in time (remote targets clone repositories).
    #[error("add-on `{addon}` ({from}): `kubectl kustomize` did not finish within {timeout:?}")]
    KustomizeTimeout {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The timeout that expired.
        timeout: std::time::Duration,
    },
}

fn render_problems(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(field, message)| {
            if field.is_empty() {
                format!("source: {message}")
            } else {
                format!("source.{field}: {message}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".into(),
    }
}
