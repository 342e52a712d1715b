//! The rendered manifest set: objects, their apply phase, stable ordering and output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::yaml;

/// Apply phases, in order. Deletion runs them in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// CustomResourceDefinitions; applied first, then waited on until Established.
    Crds,
    /// Namespaces.
    Namespaces,
    /// ServiceAccounts, RBAC, ConfigMaps, Secrets, PVCs, quotas, policies, classes.
    Config,
    /// Add-on operator workloads (controllers, webhooks) that custom resources depend on.
    Operators,
    /// Custom resources and platform workloads.
    Workloads,
}

impl Phase {
    /// All phases in apply order.
    pub const ALL: [Phase; 5] =
        [Phase::Crds, Phase::Namespaces, Phase::Config, Phase::Operators, Phase::Workloads];

    /// Short name used in directories and progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Crds => "crds",
            Phase::Namespaces => "namespaces",
            Phase::Config => "config",
            Phase::Operators => "operators",
            Phase::Workloads => "workloads",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A trainstack template (`component/file.yaml`).
    Template {
        /// Component name.
        component: String,
        /// Template name.
        template: String,
    },
    /// An upstream add-on.
    Addon {
        /// Add-on name.
        name: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Template { template, .. } => write!(f, "template {template}"),
            Origin::Addon { name } => write!(f, "add-on {name}"),
        }
    }
}

/// One Kubernetes object of the rendered set.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The object.
    pub obj: Value,
    /// Where it came from.
    pub origin: Origin,
}

const CONFIG_KINDS: &[&str] = &[
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "PriorityClass",
    "StorageClass",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "IngressClass",
    "RuntimeClass",
];

impl Manifest {
    fn str_at(&self, ptr: &str) -> &str {
        self.obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion")
    }

    /// API group ("" for core).
    pub fn group(&self) -> &str {
        self.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.str_at("/kind")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.obj.pointer("/metadata/namespace").and_then(Value::as_str)
    }

    /// The phase this object is applied in.
    pub fn phase(&self) -> Phase {
        let kind = self.kind();
        if kind == "CustomResourceDefinition" {
            Phase::Crds
        } else if kind == "Namespace" {
            Phase::Namespaces
        } else if CONFIG_KINDS.contains(&kind) && is_builtin_group(self.group()) {
            Phase::Config
        } else if matches!(self.origin, Origin::Addon { .. }) && is_builtin_group(self.group()) {
            Phase::Operators
        } else {
            Phase::Workloads
        }
    }

    /// `kind/namespace/name` (or `kind/name`), for messages.
    pub fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{}/{}/{}", self.kind(), ns, self.name()),
            None => format!("{}/{}", self.kind(), self.name()),
        }
    }

    /// Sort key: phase, kind, namespace, name (then group, so same-named kinds stay apart).
    pub fn sort_key(&self) -> (Phase, String, String, String, String) {
        (
            self.phase(),
            self.kind().to_string(),
            self.namespace().unwrap_or("").to_string(),
            self.name().to_string(),
            self.group().to_string(),
        )
    }

    /// Adds labels that are not already set.
    pub fn add_labels(&mut self, labels: &BTreeMap<&str, String>) {
        let Some(meta) = self.obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
        let entry = meta.entry("labels").or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = entry.as_object_mut() {
            for (k, v) in labels {
                map.entry(k.to_string()).or_insert_with(|| Value::String(v.clone()));
            }
        }
    }
}

/// Whether `group` is served by Kubernetes itself (not by a CRD).
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// Sorts a manifest set into apply order.
pub fn sort(set: &mut [Manifest]) {
    set.sort_by_cached_key(Manifest::sort_key);
}

/// One multi-document YAML stream.
pub fn to_stream(set: &[Manifest]) -> String {
    let mut out = String::new();
    for m in set {
        out.push_str("---\n");
        out.push_str(&yaml::to_string(&m.obj));
    }
    out
}

/// Marker file that makes a directory ours to rewrite.
const MARKER: &str = ".trainstack-render";

/// Errors writing a rendered set to a directory.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// The directory holds files trainstack did not write.
    #[error("{dir} is not empty and was not written by trainstack render (no {MARKER} file); choose an empty or new directory")]
    Foreign {
        /// The directory.
        dir: PathBuf,
    },
    /// I/O failure.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Writes one file per object: `DIR/<NN-phase>/<namespace|_cluster>/<kind>-<name>.yaml`.
/// Argo CD and Flux read the tree recursively; the phase prefix keeps it readable in apply
/// order. A directory written before is replaced whole, so removed objects disappear from Git.
pub fn write_dir(set: &[Manifest], dir: &Path) -> Result<Vec<PathBuf>, OutError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutError::Io { path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?.peekable();
        if entries.peek().is_some() && !dir.join(MARKER).exists() {
            return Err(OutError::Foreign { dir: dir.to_path_buf() });
        }
        for phase in Phase::ALL {
            let sub = dir.join(phase_dir(phase));
            if sub.exists() {
                std::fs::remove_dir_all(&sub).map_err(io(&sub))?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::write(dir.join(MARKER), "written by trainstack render; the whole tree is regenerated\n")
        .map_err(io(&dir.join(MARKER)))?;
    let mut written = Vec::new();
    for m in set {
        let scope = m.namespace().unwrap_or("_cluster");
        let file = format!("{}-{}.yaml", m.kind().to_lowercase(), m.name());
        let path = dir.join(phase_dir(m.phase())).join(scope).join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, yaml::to_string(&m.obj)).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

fn phase_dir(p: Phase) -> String {
    format!("{:02}-{}", p as u8, p.name())
}
