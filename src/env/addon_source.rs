//! What an add-on source declaration may say: one source, https with a sha256, pinned
//! kustomize revisions. Pure rules (the filesystem is asked only whether a kustomize target
//! exists locally), used by environment validation and by the add-on fetcher in `addons/`.

use std::path::Path;

use crate::env::model::AddonSource;

/// Syntactic checks of a source, for environment validation before anything runs.
///
/// Exactly one of `url`, `file`, `dir`, `kustomize` must be set; `url` requires a `sha256` of 64
/// hex characters and must be `https` (plain `http` only to `127.0.0.1`, `localhost` or `[::1]`,
/// which tests use); `sha256` without `url` is an error. Returns `(field, message)` pairs with the
/// field relative to the source (`"sha256"`); an empty field means the source as a whole.
/// Nothing is read from disk or the network.
pub fn check_source(source: &AddonSource) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut push = |field: &str, message: String| problems.push((field.to_string(), message));

    let set: Vec<&str> = [
        ("url", source.url.is_some()),
        ("file", source.file.is_some()),
        ("dir", source.dir.is_some()),
        ("kustomize", source.kustomize.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    match set.as_slice() {
        [] => push("", "one of url, file, dir or kustomize is required".into()),
        [_] => {}
        [first, rest @ ..] => {
            for other in rest {
                push(
                    other,
                    format!("only one of url, file, dir or kustomize may be set; `{first}` is already set"),
                );
            }
        }
    }

    for (field, value) in [("file", &source.file), ("dir", &source.dir), ("kustomize", &source.kustomize)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            push(field, "must not be empty".into());
        }
    }

    if let Some(url) = &source.url {
        if let Err(message) = check_url(url) {
            push("url", message);
        }
        if source.sha256.is_none() {
            push(
                "sha256",
                "required with url: the sha256 of the file as 64 hex characters (`sha256sum FILE`)".into(),
            );
        }
    }

    if let Some(sha) = &source.sha256 {
        if source.url.is_none() {
            push("sha256", "only valid with url; file, dir and kustomize sources are not downloaded".into());
        } else if !is_sha256(sha) {
            push(
                "sha256",
                format!(
                    "`{sha}` is not a sha256: expected 64 hex characters, got {} characters",
                    sha.chars().count()
                ),
            );
        }
    }
    problems
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("`{url}` must use https (http is accepted only for 127.0.0.1 and localhost)")),
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a remote kustomize `target` is not pinned to one revision, or `None` when it is (or is a
/// local directory, which the environment's own repository versions).
///
/// kustomize reads the revision from `?ref=` (or `?version=`). A missing ref builds the default
/// branch and a branch moves, so the lock file would stop matching the next time the cache is
/// filled. Branches and tags cannot be told apart offline, so only refs shaped like a release tag
/// (`v2.3.0`, `1.7.0`) or a commit id (7 to 40 hex characters) are accepted. `base_dir` is the
/// directory of the environment file declaring the target, against which local paths resolve.
pub fn check_kustomize_pin(target: &str, base_dir: &Path) -> Option<String> {
    if kustomize_is_local(target, base_dir) {
        return None;
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let reference = query
        .split('&')
        .filter_map(|param| param.split_once('='))
        .find(|(key, _)| matches!(*key, "ref" | "version"))
        .map(|(_, value)| value);
    match reference {
        None | Some("") => Some(format!(
            "`{target}` is not pinned to a revision: add ?ref=<release tag or commit id>, e.g. \
             ?ref=v2.3.0 (without it kustomize builds the default branch, which moves)"
        )),
        Some(r) if is_release_tag(r) || is_commit_id(r) => None,
        Some(r) => Some(format!(
            "ref `{r}` of `{target}` may be a branch, which moves: pin a release tag (v2.3.0, 1.7.0) \
             or a commit id (7 to 40 hex characters)"
        )),
    }
}

/// `v2.3.0`, `1.7.0`, `v1.0.0-rc.1`: an optional `v`, a digit, then version characters.
fn is_release_tag(r: &str) -> bool {
    let rest = r.strip_prefix('v').unwrap_or(r);
    rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
}

fn is_commit_id(r: &str) -> bool {
    (7..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a kustomize `target` is a local directory rather than a remote target.
///
/// kustomize accepts both paths and remote targets such as
/// `github.com/kubeflow/trainer/manifests/overlays/manager?ref=v2.1.0`, which have no scheme and
/// so look like relative paths. Explicit paths (`./`, `../`, absolute) and anything that exists
/// next to the environment file (in `base_dir`) are local; everything else is remote.
pub fn kustomize_is_local(target: &str, base_dir: &Path) -> bool {
    target.starts_with("./")
        || target.starts_with("../")
        || Path::new(target).is_absolute()
        || base_dir.join(target).exists()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn src(f: impl FnOnce(&mut AddonSource)) -> AddonSource {
        let mut s = AddonSource::default();
        f(&mut s);
        s
    }

    fn fields(problems: &[(String, String)]) -> Vec<&str> {
        problems.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn accepts_each_single_source() {
        let ok = [
            src(|s| {
                s.url = Some("https://github.com/x/y/releases/download/v1/m.yaml".into());
                s.sha256 = Some(SHA.into());
            }),
            src(|s| {
                s.url = Some("http://127.0.0.1:8080/m.yaml".into());
                s.sha256 = Some(SHA.to_uppercase());
            }),
            src(|s| {
                s.url = Some("http://localhost/m.yaml".into());
                s.sha256 = Some(SHA.into());
            }),
            src(|s| s.file = Some("addons/trainer.yaml".into())),
            src(|s| s.dir = Some("addons/kuberay".into())),
            src(|s| s.kustomize = Some("github.com/kubeflow/trainer/manifests?ref=v2.1.0".into())),
        ];
        for s in &ok {
            assert_eq!(check_source(s), vec![], "{s:?}");
        }
    }

    #[test]
    fn requires_exactly_one_source() {
        assert_eq!(
            check_source(&AddonSource::default()),
            vec![(String::new(), "one of url, file, dir or kustomize is required".to_string())]
        );
        let two = src(|s| {
            s.file = Some("a.yaml".into());
            s.kustomize = Some("k".into());
        });
        assert_eq!(
            check_source(&two),
            vec![(
                "kustomize".to_string(),
                "only one of url, file, dir or kustomize may be set; `file` is already set".to_string()
            )]
        );
    }

    #[test]
    fn url_needs_a_well_formed_sha256() {
        let missing = src(|s| s.url = Some("https://example.com/m.yaml".into()));
        assert_eq!(fields(&check_source(&missing)), ["sha256"]);

        let short = src(|s| {
            s.url = Some("https://example.com/m.yaml".into());
            s.sha256 = Some("abc123".into());
        });
        assert_eq!(
            check_source(&short),
            vec![(
                "sha256".to_string(),
                "`abc123` is not a sha256: expected 64 hex characters, got 6 characters".to_string()
            )]
        );

        let not_hex = src(|s| {
            s.url = Some("https://example.com/m.yaml".into());
            s.sha256 = Some(SHA.replace('9', "g"));
        });
        assert_eq!(fields(&check_source(&not_hex)), ["sha256"]);
    }

    #[test]
    fn url_must_be_https_except_loopback() {
        for url in ["http://example.com/m.yaml", "ftp://127.0.0.1/m.yaml", "http://10.0.0.1/m.yaml"] {
            let s = src(|s| {
                s.url = Some(url.into());
                s.sha256 = Some(SHA.into());
            });
            assert_eq!(
                check_source(&s),
                vec![(
                    "url".to_string(),
                    format!("`{url}` must use https (http is accepted only for 127.0.0.1 and localhost)")
                )]
            );
        }
        let garbage = src(|s| {
            s.url = Some("not a url".into());
            s.sha256 = Some(SHA.into());
        });
        assert_eq!(fields(&check_source(&garbage)), ["url"]);
    }

    #[test]
    fn sha256_without_url_is_an_error() {
        let s = src(|s| {
            s.file = Some("a.yaml".into());
            s.sha256 = Some(SHA.into());
        });
        assert_eq!(
            check_source(&s),
            vec![(
                "sha256".to_string(),
                "only valid with url; file, dir and kustomize sources are not downloaded".to_string()
            )]
        );
    }

    #[test]
    fn empty_paths_are_errors() {
        let s = src(|s| s.dir = Some(" ".into()));
        assert_eq!(check_source(&s), vec![("dir".to_string(), "must not be empty".to_string())]);
    }

    #[test]
    fn remote_kustomize_targets_must_pin_a_tag_or_commit() {
        let base = Path::new("/nonexistent-env-dir");
        for pinned in [
            "https://github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.3.0",
            "github.com/ray-project/kuberay/ray-operator/config/default?ref=1.7.0",
            "https://example.com/a.git/config?timeout=2m&ref=v1.0.0-rc.1",
            "file:///srv/repo//config?version=3f2a9c1",
            "https://example.com/a.git/config?ref=0123456789abcdef0123456789abcdef01234567",
            "./overlays/kind",
            "/abs/overlay",
        ] {
            assert_eq!(check_kustomize_pin(pinned, base), None, "{pinned}");
        }
        assert_eq!(
            check_kustomize_pin("https://example.com/a.git/config", base).unwrap(),
            "`https://example.com/a.git/config` is not pinned to a revision: add ?ref=<release tag or \
             commit id>, e.g. ?ref=v2.3.0 (without it kustomize builds the default branch, which moves)"
        );
        assert!(check_kustomize_pin("https://example.com/a.git/config?ref=", base).is_some());
        for branch in ["main", "master", "release-1.2", "HEAD", "feature/x"] {
            let target = format!("https://example.com/a.git/config?ref={branch}");
            assert_eq!(
                check_kustomize_pin(&target, base).unwrap(),
                format!(
                    "ref `{branch}` of `{target}` may be a branch, which moves: pin a release tag \
                     (v2.3.0, 1.7.0) or a commit id (7 to 40 hex characters)"
                )
            );
        }
    }
}
