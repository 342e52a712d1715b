//! The add-on lock file beside an environment file (`base.yaml` -> `base.yaml.lock`): the sha256
//! of each kustomize add-on's built manifests, written by `trainstack addons lock` and checked by
//! every command that renders.
//!
//! A kustomize target is a recipe, not a file: the lock is what turns it into one pinned
//! manifest set that can be cached and verified like a `url` source with its `sha256`. It lives in
//! its own file rather than in the environment because it is machine-written, and because a
//! remote target can only be hashed by building it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics};
use crate::yaml;

/// The first lines of every lock file; `read` skips them like any comment.
const HEADER: &str = "\
# Written by `trainstack addons lock`: the sha256 of each kustomize add-on's built manifests.
# Commit it beside the environment file; rerun the command after changing a kustomize target.
";

/// What a lock file records for one kustomize add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// The kustomize target exactly as the environment file declares it.
    pub kustomize: String,
    /// Lowercase hex sha256 of its `kubectl kustomize` output.
    pub sha256: String,
}

/// The file's shape: add-ons by name, so the file is sorted and diffs stay small.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockDoc {
    #[serde(default)]
    addons: BTreeMap<String, Locked>,
}

/// The lock of one environment file. A lock file that does not exist is an empty lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// Where the lock file is (or would be).
    pub path: PathBuf,
    /// Locked add-ons by name.
    pub addons: BTreeMap<String, Locked>,
}

impl Lock {
    /// The lock file of the environment file `env_file`: its name with `.lock` appended, so it
    /// sorts next to it and a `*.yaml` glob over environments never picks it up.
    pub fn path_for(env_file: &Path) -> PathBuf {
        let mut name = env_file.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        env_file.with_file_name(name)
    }

    /// An empty lock for `path`.
    pub fn empty(path: PathBuf) -> Lock {
        Lock { path, addons: BTreeMap::new() }
    }

    /// Reads the lock file at `path`; a missing file is an empty lock. Problems are reported as
    /// `file:line:column: field: message`, like an environment file's.
    pub fn read(path: &Path) -> Result<Lock, Diagnostics> {
        let file = path.display().to_string();
        let diag = |pos, field: &str, message: String| Diagnostic {
            file: file.clone(),
            pos,
            field: field.to_string(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::empty(path.into())),
            Err(e) => return Err(diag(None, "", format!("cannot read the add-on lock file: {e}")).into()),
        };
        let (value, index) = yaml::parse_located(&text).map_err(|e| diag(e.pos, "", e.message))?;
        if value.is_null() {
            return Ok(Lock::empty(path.into()));
        }
        let typed = yaml::from_value_all::<LockDoc>(value, Vec::new());
        let mut problems = Diagnostics::default();
        for e in &typed.errors {
            let pos = if e.is_unknown_key() { index.key(&e.path) } else { index.value(&e.path) };
            problems.push(diag(pos, &e.path, e.message.clone()));
        }
        problems.into_result()?;
        let mut problems = Diagnostics::default();
        let Some(doc) = typed.value else {
            return Err(diag(None, "", "the lock file does not hold add-on pins".into()).into());
        };

        for (name, locked) in &doc.addons {
            let field = format!("addons.{name}.sha256");
            if !crate::env::addon_source::is_sha256(&locked.sha256) {
                problems.push(diag(
                    index.value(&field),
                    &field,
                    format!(
                        "`{}` is not a sha256: expected 64 hex characters, got {} characters; \
                         run `trainstack addons lock` to rewrite the file",
                        locked.sha256,
                        locked.sha256.chars().count()
                    ),
                ));
            }
        }
        problems.into_result()?;
        let addons = doc
            .addons
            .into_iter()
            .map(|(name, l)| (name, Locked { sha256: l.sha256.to_ascii_lowercase(), ..l }))
            .collect();
        Ok(Lock { path: path.into(), addons })
    }

    /// The file's text: the same add-ons always give the same bytes.
    pub fn render(&self) -> String {
        let doc = LockDoc { addons: self.addons.clone() };
        format!("{HEADER}{}", yaml::to_string(&doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn lock_file_sits_beside_the_environment_file() {
        assert_eq!(
            Lock::path_for(Path::new("environments/base.yaml")),
            Path::new("environments/base.yaml.lock")
        );
        assert_eq!(Lock::path_for(Path::new("env.yaml")), Path::new("env.yaml.lock"));
    }

    #[test]
    fn render_then_read_gives_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.yaml.lock");
        let mut lock = Lock::empty(path.clone());
        for name in ["zeta", "alpha"] {
            lock.addons.insert(
                name.into(),
                Locked {
                    kustomize: format!("https://example.com/{name}.git/config?ref=v1.0.0"),
                    sha256: SHA.into(),
                },
            );
        }
        let text = lock.render();
        assert!(text.starts_with(HEADER));
        assert!(text.find("alpha:").unwrap() < text.find("zeta:").unwrap(), "sorted by name:\n{text}");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), lock);
    }

    #[test]
    fn a_missing_or_empty_lock_file_is_an_empty_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.yaml.lock");
        assert_eq!(Lock::read(&path).unwrap(), Lock::empty(path.clone()));
        std::fs::write(&path, "# nothing locked yet\n").unwrap();
        assert_eq!(Lock::read(&path).unwrap(), Lock::empty(path));
    }
}
