//! Resolving an add-on source declaration against the environment file's directory; the rules
//! a declaration must follow are in `env/addon_source.rs`.

use std::path::{Path, PathBuf};

use crate::env::addon_source::{check_source, kustomize_is_local};
use crate::env::model::AddonSource;

/// A source that passed [`check_source`], with local paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Download `url`, expecting the lowercase hex `sha256`.
    Url { url: String, sha256: String },
    /// One local multi-document YAML file.
    File(PathBuf),
    /// A local directory of YAML files.
    Dir(PathBuf),
    /// A `kubectl kustomize` target: a local directory (joined to the environment's directory)
    /// or a remote target, verbatim.
    Kustomize { target: String, local: bool },
}

impl Resolved {
    /// Resolves a source that [`check_source`] accepted; `None` if it did not.
    pub(crate) fn new(source: &AddonSource, base_dir: &Path) -> Option<Resolved> {
        if !check_source(source).is_empty() {
            return None;
        }
        Some(match (&source.url, &source.file, &source.dir, &source.kustomize) {
            (Some(url), ..) => {
                Resolved::Url { url: url.clone(), sha256: source.sha256.as_deref()?.to_ascii_lowercase() }
            }
            (_, Some(file), ..) => Resolved::File(base_dir.join(file)),
            (_, _, Some(dir), _) => Resolved::Dir(base_dir.join(dir)),
            (.., Some(target)) => resolve_kustomize(target, base_dir),
            _ => return None,
        })
    }

    /// How errors name this source.
    pub(crate) fn describe(&self) -> String {
        match self {
            Resolved::Url { url, .. } => format!("url {url}"),
            Resolved::File(p) => format!("file {}", p.display()),
            Resolved::Dir(p) => format!("dir {}", p.display()),
            Resolved::Kustomize { target, .. } => format!("kustomize {target}"),
        }
    }
}

/// A kustomize target as `kubectl kustomize` takes it: local directories joined to the
/// environment's directory ([`kustomize_is_local`]), remote targets verbatim.
fn resolve_kustomize(target: &str, base_dir: &Path) -> Resolved {
    if kustomize_is_local(target, base_dir) {
        Resolved::Kustomize { target: base_dir.join(target).to_string_lossy().into_owned(), local: true }
    } else {
        Resolved::Kustomize { target: target.to_string(), local: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn src(f: impl FnOnce(&mut AddonSource)) -> AddonSource {
        let mut s = AddonSource::default();
        f(&mut s);
        s
    }

    #[test]
    fn resolves_paths_against_the_environment_directory() {
        let base = Path::new("/envs");
        let file = src(|s| s.file = Some("addons/a.yaml".into()));
        assert_eq!(Resolved::new(&file, base), Some(Resolved::File("/envs/addons/a.yaml".into())));
        let local = src(|s| s.kustomize = Some("./overlays/kind".into()));
        assert_eq!(
            Resolved::new(&local, base),
            Some(Resolved::Kustomize { target: "/envs/./overlays/kind".into(), local: true })
        );
        let remote = "github.com/kubeflow/trainer/manifests/overlays/manager?ref=v2.1.0";
        let remote_src = src(|s| s.kustomize = Some(remote.into()));
        assert_eq!(
            Resolved::new(&remote_src, base),
            Some(Resolved::Kustomize { target: remote.into(), local: false })
        );
        let url = src(|s| {
            s.url = Some("https://example.com/m.yaml".into());
            s.sha256 = Some(SHA.to_uppercase());
        });
        assert_eq!(
            Resolved::new(&url, base),
            Some(Resolved::Url { url: "https://example.com/m.yaml".into(), sha256: SHA.into() })
        );
        assert_eq!(Resolved::new(&AddonSource::default(), base), None);
    }
}
