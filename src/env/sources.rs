//! Where each setting of an environment came from: the layered files and the positions of
//! what they wrote, to point a problem at the line that set the field.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::yaml::{Pos, PosIndex};

/// One file of a layered environment, with the positions of everything it wrote.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The path as the user gave it.
    pub path: PathBuf,
    pub(super) index: PosIndex,
}

/// The files an environment was merged from, to point errors at the line that set a field.
#[derive(Debug, Clone)]
pub struct Sources {
    pub(super) layers: Vec<Layer>,
    /// Whether a field that no file wrote, nor any parent of it below the top, points at the
    /// document itself (environment layers) or at no line (a job file, where such a problem is
    /// named by its field alone).
    pub(super) document_fallback: bool,
}

impl Sources {
    /// The layer that last wrote `field` (or its nearest written parent), and the position.
    /// `key` picks the key's position rather than the value's.
    pub fn locate(&self, field: &str, key: bool) -> (Option<&Layer>, Option<Pos>) {
        let mut path = field.to_string();
        loop {
            for layer in self.layers.iter().rev() {
                if layer.index.contains(&path) {
                    let pos = if key { layer.index.key(&path) } else { layer.index.value(&path) };
                    return (Some(layer), pos);
                }
            }
            match parent_path(&path) {
                Some(p) if self.document_fallback || !p.is_empty() => path = p,
                _ => return (self.layers.last(), None),
            }
        }
    }

    /// A diagnostic for `field`, pointing at the value that set it.
    pub fn error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(field, message, false)
    }

    /// A diagnostic for `field`, pointing at its key (for unknown or misplaced keys).
    pub fn key_error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(field, message, true)
    }

    fn diag(&self, field: &str, message: impl Into<String>, key: bool) -> Diagnostic {
        let (layer, pos) = self.locate(field, key);
        Diagnostic {
            file: layer.map(|l| l.path.display().to_string()).unwrap_or_default(),
            pos,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Directory of the file that set `field`: relative paths in that field resolve against it.
    pub fn base_dir(&self, field: &str) -> PathBuf {
        let (layer, _) = self.locate(field, false);
        layer.and_then(|l| l.path.parent()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    }

    /// The sources of one file read on its own (a job spec).
    pub(crate) fn single(path: PathBuf, index: PosIndex) -> Sources {
        Sources { layers: vec![Layer { path, index }], document_fallback: false }
    }

    /// The files, in layering order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.layers.iter().map(|l| l.path.as_path())
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> None.
fn parent_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}

/// Whether `field` is `path` or lies inside it.
pub fn within(field: &str, path: &str) -> bool {
    field.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}
