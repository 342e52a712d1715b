//! Upstream add-ons (Kubeflow Trainer + JobSet, KubeRay, NVIDIA device plugin, Karpenter): loading
//! their pinned manifests from a verified, cached download, a local file or directory, or a
//! kustomize target pinned by the lock file and cached once built.
//!
//! Objects are returned untouched, in source order; labelling and ordering belong to `render`.

mod built;
mod error;
mod fetch;
mod kustomize;
mod lock;
mod objects;
mod source;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use error::{AddonError, StaleCache};
pub use kustomize::BuildError;
pub use lock::{Lock, Locked};

use crate::env::addon_source::check_source;
use crate::env::model::Addon;
use built::{Builder, Target};
use fetch::{Pinned, Retry};
use objects::{parse_objects, Origin};
use source::Resolved;

/// Loads add-on manifests. Holds the download cache location, the `kubectl` used for kustomize
/// targets and one HTTP client, so connections are reused across add-ons.
#[derive(Debug, Clone)]
pub struct AddonLoader {
    cache_dir: PathBuf,
    kubectl: PathBuf,
    client: reqwest::Client,
    retry: Retry,
    kustomize_timeout: Duration,
}

impl AddonLoader {
    /// A loader caching downloads under `cache_dir/addons/`, using `$TRAINSTACK_KUBECTL` (or
    /// `kubectl` from `PATH`) for kustomize targets, retrying transient download failures 4 times
    /// in all (0.5 s, 1 s, 2 s apart) and giving `kubectl kustomize` 3 minutes.
    pub fn new(cache_dir: PathBuf) -> Self {
        let kubectl = std::env::var_os("TRAINSTACK_KUBECTL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let client = reqwest::Client::builder()
            .user_agent(concat!("trainstack/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            // Per attempt; a stalled server must not hang `render` forever.
            .timeout(Duration::from_secs(120))
            .build()
            .expect("the rustls client configuration is static and always valid");
        AddonLoader {
            cache_dir,
            kubectl,
            client,
            retry: Retry { attempts: 4, first_delay: Duration::from_millis(500) },
            kustomize_timeout: Duration::from_secs(180),
        }
    }

    /// `$TRAINSTACK_CACHE_DIR`, else `$XDG_CACHE_HOME/trainstack`, else `~/.cache/trainstack`,
    /// else `trainstack` under the system temporary directory (no home, e.g. in a bare container).
    pub fn default_cache_dir() -> PathBuf {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("TRAINSTACK_CACHE_DIR") {
            return dir;
        }
        // The XDG spec says relative values are invalid and must be ignored.
        if let Some(xdg) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
            return xdg.join("trainstack");
        }
        if let Some(home) = var("HOME") {
            return home.join(".cache").join("trainstack");
        }
        std::env::temp_dir().join("trainstack")
    }

    /// Uses `program` instead of `kubectl` for kustomize targets.
    pub fn with_kubectl(mut self, program: impl Into<PathBuf>) -> Self {
        self.kubectl = program.into();
        self
    }

    /// Makes `attempts` tries (at least 1) at a download that fails transiently (connection
    /// errors, timeouts, HTTP 5xx, 408, 429), waiting `first_delay` and then twice as long each time.
    pub fn with_retry(mut self, attempts: u32, first_delay: Duration) -> Self {
        self.retry = Retry { attempts: attempts.max(1), first_delay };
        self
    }

    /// Gives `kubectl kustomize` at most `timeout` before it is killed.
    pub fn with_kustomize_timeout(mut self, timeout: Duration) -> Self {
        self.kustomize_timeout = timeout;
        self
    }

    /// Loads one add-on's objects, in source order, with `List`s flattened.
    ///
    /// `base_dir` is the directory of the environment file that declared the add-on; relative
    /// `file`, `dir` and local `kustomize` paths resolve against it. `lock` is that file's lock: a
    /// `kustomize` source must be in it, and its build is read from the cache when the cached copy
    /// has the locked sha256 (no kubectl, no network), else built and kept only if it matches. A
    /// disabled add-on yields no objects and touches nothing. A `dir` source reads the `*.yaml` and
    /// `*.yml` files directly in it (not subdirectories) in byte order of their names. A source
    /// that yields no object at all is an error, since it is always a wrong path or an empty download.
    pub async fn load(&self, addon: &Addon, base_dir: &Path, lock: &Lock) -> Result<Vec<Value>, AddonError> {
        if !addon.enabled {
            return Ok(Vec::new());
        }
        let resolved = self.resolve(addon, base_dir)?;
        let from = resolved.describe();
        let name = addon.name.as_str();
        let mut out = Vec::new();
        match &resolved {
            Resolved::Url { url, sha256 } => {
                let pinned = Pinned { addon: name, url, sha256 };
                let (text, path) =
                    fetch::fetch_cached(&self.client, &self.cache_dir, self.retry, &pinned).await?;
                let file = path.display().to_string();
                parse_objects(&text, &Origin { addon: name, from: &from, file: &file }, &mut out)?;
            }
            Resolved::File(path) => {
                let text = read_text(path, name, &from).await?;
                let file = path.display().to_string();
                parse_objects(&text, &Origin { addon: name, from: &from, file: &file }, &mut out)?;
            }
            Resolved::Dir(dir) => {
                for path in yaml_files(dir, name, &from).await? {
                    let text = read_text(&path, name, &from).await?;
                    let file = path.display().to_string();
                    parse_objects(&text, &Origin { addon: name, from: &from, file: &file }, &mut out)?;
                }
            }
            Resolved::Kustomize { target, local } => {
                let declared = addon.source.kustomize.as_deref().unwrap_or_default();
                let locked = match lock.addons.get(name) {
                    None => {
                        return Err(AddonError::NotLocked {
                            addon: name.into(),
                            from,
                            lock: lock.path.clone(),
                        })
                    }
                    Some(l) if l.kustomize != declared => {
                        return Err(AddonError::LockedForOtherTarget {
                            addon: name.into(),
                            from,
                            lock: lock.path.clone(),
                            locked: l.kustomize.clone(),
                        })
                    }
                    Some(l) => l,
                };
                let t = Target { addon: name, from: &from, target, local: *local };
                let (text, path) = self.builder().locked(&t, &locked.sha256, &lock.path).await?;
                let file = path.display().to_string();
                parse_objects(&text, &Origin { addon: name, from: &from, file: &file }, &mut out)?;
            }
        }
        if out.is_empty() {
            return Err(AddonError::Empty { addon: name.into(), from });
        }
        Ok(out)
    }

    /// Builds a `kustomize` add-on afresh (never from the cache), checks that the output is a
    /// non-empty set of objects, caches it and returns what its lock entry is. Other sources and
    /// disabled add-ons need no lock: `None`.
    pub async fn lock(&self, addon: &Addon, base_dir: &Path) -> Result<Option<Locked>, AddonError> {
        let Some(declared) = addon.source.kustomize.as_deref().filter(|_| addon.enabled) else {
            return Ok(None);
        };
        let resolved = self.resolve(addon, base_dir)?;
        let Resolved::Kustomize { target, local } = &resolved else { return Ok(None) };
        let from = resolved.describe();
        let name = addon.name.as_str();
        let t = Target { addon: name, from: &from, target, local: *local };
        let (sha256, text, path) = self.builder().fresh(&t).await?;
        let mut out = Vec::new();
        let file = path.display().to_string();
        parse_objects(&text, &Origin { addon: name, from: &from, file: &file }, &mut out)?;
        if out.is_empty() {
            return Err(AddonError::Empty { addon: name.into(), from });
        }
        Ok(Some(Locked { kustomize: declared.to_string(), sha256 }))
    }

    /// The checked source, with a local kustomize directory required to exist before anything
    /// runs kubectl on it.
    fn resolve(&self, addon: &Addon, base_dir: &Path) -> Result<Resolved, AddonError> {
        let resolved = Resolved::new(&addon.source, base_dir).ok_or_else(|| AddonError::InvalidSource {
            addon: addon.name.clone(),
            problems: check_source(&addon.source),
        })?;
        if let Resolved::Kustomize { target, local: true } = &resolved {
            if !Path::new(target).exists() {
                let from = resolved.describe();
                return Err(AddonError::NotFound { addon: addon.name.clone(), from, path: target.into() });
            }
        }
        Ok(resolved)
    }

    fn builder(&self) -> Builder<'_> {
        Builder { kubectl: &self.kubectl, timeout: self.kustomize_timeout, cache_dir: &self.cache_dir }
    }
}

async fn read_text(path: &Path, addon: &str, from: &str) -> Result<String, AddonError> {
    let bytes = tokio::fs::read(path).await.map_err(|e| io_error(path, e, addon, from))?;
    String::from_utf8(bytes).map_err(|e| AddonError::Yaml {
        addon: addon.into(),
        from: from.into(),
        file: path.display().to_string(),
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })
}

/// The `*.yaml`/`*.yml` regular files (symlinks followed) directly in `dir`, sorted by name so the
/// output does not depend on the filesystem's listing order.
async fn yaml_files(dir: &Path, addon: &str, from: &str) -> Result<Vec<PathBuf>, AddonError> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| io_error(dir, e, addon, from))?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(|e| io_error(dir, e, addon, from))? {
        let path = entry.path();
        let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_yaml && tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn io_error(path: &Path, e: std::io::Error, addon: &str, from: &str) -> AddonError {
    if e.kind() == std::io::ErrorKind::NotFound {
        AddonError::NotFound { addon: addon.into(), from: from.into(), path: path.to_path_buf() }
    } else {
        AddonError::Unreadable { addon: addon.into(), from: from.into(), path: path.to_path_buf(), source: e }
    }
}
