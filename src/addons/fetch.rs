//! Downloading pinned manifests into a content-addressed cache (`<cache>/addons/<sha256>.yaml`).
//!
//! The cache is keyed by the expected sha256, so a cached file is found without the network (an
//! air-gapped re-run needs no connectivity) and is re-hashed before use: a corrupt or tampered file
//! is downloaded again and replaced. Downloads are verified in memory and only then written to a
//! temporary file that is renamed into place, so an interrupted run never leaves a partial file
//! under the final name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::AddonError;
use sha2::{Digest, Sha256};

/// Upstream add-on manifests are a few MB; anything far larger is not a manifest and should not
/// be buffered in memory.
const MAX_DOWNLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How often and how patiently a transient failure is retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// Total attempts, at least 1.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub first_delay: Duration,
}

/// Who is downloading what, for error messages and the cache key.
pub(crate) struct Pinned<'a> {
    pub addon: &'a str,
    pub url: &'a str,
    /// Lowercase hex.
    pub sha256: &'a str,
}

/// Returns the verified text of `pinned.url`, from the cache when a good copy is there.
pub(crate) async fn fetch_cached(
    client: &reqwest::Client,
    cache_dir: &Path,
    retry: Retry,
    pinned: &Pinned<'_>,
) -> Result<(String, PathBuf), AddonError> {
    let dir = cache_dir.join("addons");
    let path = dir.join(format!("{}.yaml", pinned.sha256));
    let cache_err = |path: &Path, source| AddonError::Cache {
        addon: pinned.addon.to_string(),
        from: format!("url {}", pinned.url),
        path: path.to_path_buf(),
        source,
    };

    match tokio::fs::read(&path).await {
        Ok(bytes) if sha256_hex(&bytes) == pinned.sha256 => {
            if let Ok(text) = String::from_utf8(bytes) {
                return Ok((text, path));
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(cache_err(&path, e)),
    }
    // Reaching here with a file present means it failed verification; it is replaced below.

    let bytes = download(client, retry, pinned).await?;
    let actual = sha256_hex(&bytes);
    if actual != pinned.sha256 {
        return Err(AddonError::ChecksumMismatch {
            addon: pinned.addon.to_string(),
            url: pinned.url.to_string(),
            expected: pinned.sha256.to_string(),
            actual,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| AddonError::Yaml {
        addon: pinned.addon.to_string(),
        from: format!("url {}", pinned.url),
        file: pinned.url.to_string(),
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })?;

    tokio::fs::create_dir_all(&dir).await.map_err(|e| cache_err(&dir, e))?;
    write_atomically(&path, text.as_bytes()).await.map_err(|(p, e)| cache_err(&p, e))?;
    Ok((text, path))
}

/// Writes to a unique temporary file beside `path`, syncs it and renames it over `path`.
pub(crate) async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    // Unique per process and call, so concurrent loads of the same add-on never share a temp file;
    // whichever rename lands last wins, and both wrote identical verified bytes.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.{n}.tmp", std::process::id()));

    let (tmp_in, path_in, bytes) = (tmp.clone(), path.to_path_buf(), bytes.to_vec());
    // std::fs on the blocking pool: the write must be synced before the rename, and the crate
    // does not enable tokio's io-util for async writes.
    let result = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp_in)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp_in, &path_in)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err((tmp, e));
    }
    Ok(())
}

/// One attempt's failure: whether it is worth retrying, and the error if it is the last.
struct Failure {
    transient: bool,
    error: AddonError,
}

async fn download(
    client: &reqwest::Client,
    retry: Retry,
    pinned: &Pinned<'_>,
) -> Result<Vec<u8>, AddonError> {
    let mut delay = retry.first_delay;
    let mut attempt = 1;
    loop {
        match download_once(client, pinned).await {
            Ok(bytes) => return Ok(bytes),
            Err(f) if f.transient && attempt < retry.attempts.max(1) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(f) => return Err(f.error),
        }
    }
}

async fn download_once(client: &reqwest::Client, pinned: &Pinned<'_>) -> Result<Vec<u8>, Failure> {
    let transport = |e: reqwest::Error| Failure {
        // Builder errors (a malformed URL) will fail the same way every time.
        transient: !e.is_builder(),
        error: AddonError::Download {
            addon: pinned.addon.to_string(),
            url: pinned.url.to_string(),
            cause: error_chain(&e),
        },
    };
    let mut response = client.get(pinned.url).send().await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure {
            transient: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
            error: AddonError::HttpStatus {
                addon: pinned.addon.to_string(),
                url: pinned.url.to_string(),
                status: status.to_string(),
            },
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_DOWNLOAD_BYTES {
            return Err(Failure {
                transient: false,
                error: AddonError::Download {
                    addon: pinned.addon.to_string(),
                    url: pinned.url.to_string(),
                    cause: format!("response is larger than {} MiB", MAX_DOWNLOAD_BYTES / (1024 * 1024)),
                },
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `a: b: c` from an error and its sources, skipping repeats (hyper often echoes its cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Lowercase hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex(b"test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    }

    #[tokio::test]
    async fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["x.yaml"]);
    }
}
