//! The cache of kustomize builds (`<cache>/addons/kustomize/<sha256 of the target>.yaml`),
//! verified against the sha256 the lock file records.
//!
//! Keyed by the target (a remote URL with its ref, or a local directory's canonical path and
//! files) rather than by content, so a cached build the lock no longer matches is found and
//! reported with both hashes instead of looking like a cache miss. A valid cached build is used without running kubectl or
//! touching the network; a missing or stale one is rebuilt, and kept only if it matches the lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::StaleCache;
use super::fetch::{sha256_hex, write_atomically};
use super::kustomize;
use super::AddonError;

/// One kustomize add-on to build or read from the cache.
pub(crate) struct Target<'a> {
    pub addon: &'a str,
    /// How errors name the source (`kustomize <target>`).
    pub from: &'a str,
    /// What `kubectl kustomize` is given: the remote target verbatim or the resolved local path.
    pub target: &'a str,
    pub local: bool,
}

/// How to run `kubectl kustomize`.
pub(crate) struct Builder<'a> {
    pub kubectl: &'a Path,
    pub timeout: Duration,
    pub cache_dir: &'a Path,
}

impl Builder<'_> {
    /// Where `t`'s build is cached.
    pub(crate) fn cache_path(&self, t: &Target<'_>) -> PathBuf {
        // A local directory is known by its canonical path, so two projects with an `overlays/kind`
        // never share an entry, and by its files, so an edited overlay is a cache miss that is
        // rebuilt and checked against the lock instead of a stale build served silently.
        let key = if t.local {
            let dir = std::fs::canonicalize(t.target).unwrap_or_else(|_| PathBuf::from(t.target));
            format!("local:{}:{}", dir.display(), tree_sha256(&dir))
        } else {
            t.target.to_string()
        };
        self.cache_dir.join("addons").join("kustomize").join(format!("{}.yaml", sha256_hex(key.as_bytes())))
    }

    /// The build of `t` whose sha256 is `expected` (what `lock` records), and the file it was read
    /// from: the cached copy when it matches, else a fresh build that matches.
    pub(crate) async fn locked(
        &self,
        t: &Target<'_>,
        expected: &str,
        lock: &Path,
    ) -> Result<(String, PathBuf), AddonError> {
        let path = self.cache_path(t);
        let cached_sha256 = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual == expected {
                    if let Ok(text) = String::from_utf8(bytes) {
                        return Ok((text, path));
                    }
                }
                Some(actual)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(cache_error(t, &path, e)),
        };

        let text = match kustomize::build(self.kubectl, t.target, self.timeout).await {
            Ok(text) => text,
            Err(source) => {
                return Err(match cached_sha256 {
                    Some(actual) => AddonError::CacheMismatch {
                        addon: t.addon.into(),
                        from: t.from.into(),
                        source: Box::new(StaleCache {
                            cache: path,
                            lock: lock.into(),
                            expected: expected.into(),
                            actual,
                            source,
                        }),
                    },
                    None => AddonError::NotCached {
                        addon: t.addon.into(),
                        from: t.from.into(),
                        cache: path,
                        lock: lock.into(),
                        source: Box::new(source),
                    },
                })
            }
        };
        let actual = sha256_hex(text.as_bytes());
        if actual != expected {
            return Err(AddonError::BuildMismatch {
                addon: t.addon.into(),
                from: t.from.into(),
                lock: lock.into(),
                expected: expected.into(),
                actual,
            });
        }
        self.store(t, &path, &text).await?;
        Ok((text, path))
    }

    /// A fresh build of `t` (the cache is never read), stored in the cache, with its sha256.
    pub(crate) async fn fresh(&self, t: &Target<'_>) -> Result<(String, String, PathBuf), AddonError> {
        let text = kustomize::build(self.kubectl, t.target, self.timeout)
            .await
            .map_err(|source| AddonError::Kustomize { addon: t.addon.into(), from: t.from.into(), source })?;
        let path = self.cache_path(t);
        self.store(t, &path, &text).await?;
        Ok((sha256_hex(text.as_bytes()), text, path))
    }

    async fn store(&self, t: &Target<'_>, path: &Path, text: &str) -> Result<(), AddonError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| cache_error(t, dir, e))?;
        }
        write_atomically(path, text.as_bytes()).await.map_err(|(p, e)| cache_error(t, &p, e))
    }
}

fn cache_error(t: &Target<'_>, path: &Path, source: std::io::Error) -> AddonError {
    AddonError::Cache { addon: t.addon.into(), from: t.from.into(), path: path.into(), source }
}

/// Deepest directory nesting hashed; deeper is a symlink loop, not a kustomization.
const MAX_TREE_DEPTH: usize = 16;

/// sha256 over the relative path and contents of every file under `dir`, in path order. An
/// unreadable entry counts as empty: the build reports what is wrong with it.
fn tree_sha256(dir: &Path) -> String {
    fn walk(root: &Path, dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                if depth < MAX_TREE_DEPTH {
                    walk(root, &path, depth + 1, files);
                }
            } else if let Ok(rel) = path.strip_prefix(root) {
                files.push(rel.to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, 0, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for rel in files {
        let content = std::fs::read(dir.join(&rel)).unwrap_or_default();
        // Name, separator and length first, so no two trees feed the hash the same bytes.
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    hex::encode(hasher.finalize())
}
