//! The errors of loading an add-on; every one names the add-on and where its manifests came from.

use std::path::PathBuf;

use super::kustomize::BuildError;

/// Why an add-on's manifests could not be loaded.
///
/// `addon` is the add-on's name; `from` describes its source the way the environment declared it,
/// resolved (`url https://…`, `file /abs/path.yaml`, `dir /abs/dir`, `kustomize target`).
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// The source does not pass [`check_source`](crate::env::addon_source::check_source); nothing was attempted.
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

    /// The cache of downloads and kustomize builds could not be read or written.
    #[error("add-on `{addon}` ({from}): cache {}: {source}", .path.display())]
    Cache {
        /// Add-on name.
        addon: String,
        /// The source the cached file belongs to.
        from: String,
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

    /// `kubectl kustomize` gave no manifests for the add-on.
    #[error("add-on `{addon}` ({from}): {source}")]
    Kustomize {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// What went wrong.
        #[source]
        source: BuildError,
    },

    /// A kustomize add-on has no sha256 in the lock file of the environment file declaring it.
    #[error(
        "add-on `{addon}` ({from}): not locked: {} records no sha256 for it; run `trainstack addons \
         lock` with the same -e files once where kubectl and the source are reachable, then commit \
         the lock file (or pass --no-addons to leave add-ons out)",
        .lock.display()
    )]
    NotLocked {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The lock file that was consulted (it may not exist).
        lock: PathBuf,
    },

    /// The lock file pins the add-on, but for another kustomize target than the environment's.
    #[error(
        "add-on `{addon}` ({from}): {} was written for kustomize {locked}; run `trainstack addons \
         lock` with the same -e files to build and pin the new target",
        .lock.display()
    )]
    LockedForOtherTarget {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The lock file.
        lock: PathBuf,
        /// The target the lock file records.
        locked: String,
    },

    /// Nothing is cached for a locked kustomize add-on, and it cannot be built here.
    #[error(
        "add-on `{addon}` ({from}): no cached build at {} and building it failed: {source}\n\
         To fill the cache, run the same command once where kubectl and the source are reachable \
         (the build must have the sha256 that {} records), or copy that file from a machine that \
         has it",
        .cache.display(), .lock.display()
    )]
    NotCached {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// Where the build is cached.
        cache: PathBuf,
        /// The lock file whose sha256 a build must match.
        lock: PathBuf,
        /// Why it could not be built.
        #[source]
        source: Box<BuildError>,
    },

    /// The cached build is not the one the lock file pins, and it cannot be rebuilt here.
    #[error("add-on `{addon}` ({from}): {source}")]
    CacheMismatch {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// Both hashes and why the rebuild failed (boxed: errors travel by value on every path).
        #[source]
        source: Box<StaleCache>,
    },

    /// A fresh build of a kustomize target is not the one the lock file pins.
    #[error(
        "add-on `{addon}` ({from}): checksum mismatch: {} records sha256 {expected}, the build has \
         sha256 {actual}: the source changed since it was locked; review the change, then run \
         `trainstack addons lock` with the same -e files to accept it",
        .lock.display()
    )]
    BuildMismatch {
        /// Add-on name.
        addon: String,
        /// The source.
        from: String,
        /// The lock file.
        lock: PathBuf,
        /// The sha256 the lock file records.
        expected: String,
        /// The sha256 of the build.
        actual: String,
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

/// A cached kustomize build whose sha256 is not the locked one, and why it could not be rebuilt.
#[derive(Debug, thiserror::Error)]
#[error(
    "cached build {} has sha256 {actual}, but {} records sha256 {expected}, and rebuilding it \
     failed: {source}",
    .cache.display(), .lock.display()
)]
pub struct StaleCache {
    /// The cached build.
    pub cache: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
    /// The sha256 the lock file records.
    pub expected: String,
    /// The sha256 of the cached file.
    pub actual: String,
    /// Why it could not be rebuilt.
    #[source]
    pub source: BuildError,
}
