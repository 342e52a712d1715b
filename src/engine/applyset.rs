//! ApplySet inventory (KEP-3659), compatible with `kubectl apply --prune --applyset`: a parent
//! Secret per environment records which group-kinds and namespaces its members live in, and
//! every member carries the `applyset.kubernetes.io/part-of` label.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Label on every member.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// Label on the parent.
pub const ID: &str = "applyset.kubernetes.io/id";
/// Parent annotation: member group-kinds (`Kind.group`, core kinds without a group).
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// Parent annotation: member namespaces other than the parent's.
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
/// Parent annotation: the tool that owns the set.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// Namespace annotation: the ApplySet ID of the run that created the namespace. Only a
/// namespace carrying it is ever deleted: labelling a namespace that someone else created
/// (applying a declared tenant over it) does not make it trainstack's to delete.
pub const CREATED_BY: &str = "trainstack.io/created-by-applyset";

/// The parent object's identity.
#[derive(Debug, Clone)]
pub struct Parent {
    /// Secret name (`trainstack-<environment>`).
    pub name: String,
    /// Its namespace (the platform namespace).
    pub namespace: String,
}

impl Parent {
    /// The parent of an environment.
    pub fn for_env(env_name: &str, namespace: &str) -> Self {
        Parent { name: format!("trainstack-{env_name}"), namespace: namespace.to_string() }
    }

    /// The ApplySet ID: `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`.
    pub fn id(&self) -> String {
        let key = format!("{}.{}.Secret.", self.name, self.namespace);
        let digest = Sha256::digest(key.as_bytes());
        format!("applyset-{}-v1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }

    /// The parent Secret listing `group_kinds` and `namespaces`.
    pub fn object(&self, group_kinds: &BTreeSet<String>, namespaces: &BTreeSet<String>) -> Value {
        let extra: Vec<&str> =
            namespaces.iter().map(String::as_str).filter(|ns| *ns != self.namespace).collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {ID: self.id(), "app.kubernetes.io/managed-by": "trainstack"},
                "annotations": {
                    TOOLING: format!("trainstack/v{}", env!("CARGO_PKG_VERSION")),
                    GROUP_KINDS: group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
                    NAMESPACES: extra.join(","),
                },
            },
            "type": "Opaque",
        })
    }
}

/// `Kind.group` as ApplySet writes it (`Deployment.apps`, `ConfigMap`).
pub fn group_kind(api_version: &str, kind: &str) -> String {
    match api_version.rsplit_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

/// Parses the parent's annotations back into (group-kinds, namespaces).
pub fn read_parent(parent: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let ann = |k: &str| -> BTreeSet<String> {
        parent
            .pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut namespaces = ann(NAMESPACES);
    if let Some(ns) = parent.pointer("/metadata/namespace").and_then(Value::as_str) {
        namespaces.insert(ns.to_string());
    }
    (ann(GROUP_KINDS), namespaces)
}

/// Adds the member label to an object.
pub fn label_member(obj: &mut Value, id: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(PART_OF.to_string(), Value::String(id.to_string()));
        }
    }
}

/// Why a live object is not this set's to delete, or `None` when it is: it carries the member
/// label of `id`, no controller owns it (its controller would recreate or garbage-collect it,
/// KEP-3659), and, for a Namespace, trainstack created it.
pub fn not_ours(live: &Value, id: &str) -> Option<String> {
    let label =
        live.pointer(&format!("/metadata/labels/{}", PART_OF.replace('/', "~1"))).and_then(Value::as_str);
    match label {
        None => return Some("not applied by trainstack: it has no ApplySet label".into()),
        Some(other) if other != id => return Some(format!("a member of another ApplySet ({other})")),
        Some(_) => {}
    }
    let refs = live.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    if let Some(owner) = refs.into_iter().flatten().find(|r| r["controller"] == true) {
        let s = |k: &str| owner[k].as_str().unwrap_or("").to_string();
        return Some(format!(
            "controlled by {} {} (ownerReference): its controller manages it",
            s("kind"),
            s("name")
        ));
    }
    if live["kind"] == "Namespace" && !created_by(live, id) {
        return Some("a namespace trainstack did not create: it existed before trainstack applied it".into());
    }
    None
}

/// Whether a Namespace carries this set's creation mark.
pub fn created_by(live: &Value, id: &str) -> bool {
    live.pointer(&format!("/metadata/annotations/{}", CREATED_BY.replace('/', "~1"))).and_then(Value::as_str)
        == Some(id)
}

/// Whether a live object was only ever written by `manager`: a namespace created by an earlier
/// trainstack run before the creation mark existed, or one this run created bare.
pub fn only_managed_by(live: &Value, manager: &str) -> bool {
    let entries = live.pointer("/metadata/managedFields").and_then(Value::as_array);
    entries.is_some_and(|e| !e.is_empty() && e.iter().all(|m| m["manager"] == manager))
}

/// Adds the creation mark to a Namespace object.
pub fn mark_created(obj: &mut Value, id: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(CREATED_BY.to_string(), Value::String(id.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_follows_kep_3659() {
        // Independent computation of the same formula with coreutils:
        // printf 'trainstack-kind-dev.trainstack-system.Secret.' | sha256sum | xxd -r -p | base64 | tr '+/' '-_' | tr -d '='
        let p = Parent::for_env("kind-dev", "trainstack-system");
        assert_eq!(p.id(), "applyset-GCOToikrhCEOeYWMo1zyRXbnUTuVsRl3mUE2rHjVCnk-v1");
    }

    #[test]
    fn parent_round_trips_its_inventory() {
        let p = Parent::for_env("e", "platform");
        let gks: BTreeSet<String> = ["Deployment.apps".to_string(), "Namespace".to_string()].into();
        let nss: BTreeSet<String> = ["platform".to_string(), "alice".to_string()].into();
        let obj = p.object(&gks, &nss);
        assert_eq!(obj["metadata"]["annotations"][NAMESPACES], "alice");
        let (g, n) = read_parent(&obj);
        assert_eq!(g, gks);
        assert_eq!(n, nss);
    }

    #[test]
    fn only_labelled_uncontrolled_members_and_created_namespaces_are_ours() {
        let id = "applyset-x-v1";
        let mut cm = json!({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {PART_OF: id}}});
        assert_eq!(not_ours(&cm, id), None);
        assert!(not_ours(&cm, "applyset-y-v1").unwrap().contains("another ApplySet"));
        cm["metadata"]["ownerReferences"] = json!([{"kind": "Job", "name": "j", "controller": true}]);
        assert!(not_ours(&cm, id).unwrap().contains("controlled by Job j"));
        let bare = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        assert!(not_ours(&bare, id).unwrap().contains("no ApplySet label"));
        let mut ns = json!({"kind": "Namespace", "metadata": {"name": "alice", "labels": {PART_OF: id}}});
        assert!(not_ours(&ns, id).unwrap().contains("did not create"));
        mark_created(&mut ns, id);
        assert_eq!(not_ours(&ns, id), None);
    }

    #[test]
    fn group_kinds() {
        assert_eq!(group_kind("apps/v1", "Deployment"), "Deployment.apps");
        assert_eq!(group_kind("v1", "Namespace"), "Namespace");
    }
}
