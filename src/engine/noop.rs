//! The provable no-op: decides from the live object's `managedFields` and values alone, without
//! the API server, that a server-side apply of the desired object would change nothing. What it
//! cannot prove with certainty falls back to the server's dry-run, with the reason.
//!
//! A server-side apply changes nothing when (a) the fields the manager's `Apply` entry owns are
//! exactly the fields of the applied object (so nothing is removed), (b) every applied value
//! equals the live one, (c) no other manager owns any of them (a shared or taken-over field
//! moves ownership) and (d) the entry is for the same apiVersion and the main resource. Field
//! sets are compared by their leaves (scalars, atomic lists, set items, empty objects), which
//! is where applied values live; list items are addressed by key (`k:`) or value (`v:`) as in
//! `fieldsV1`.
//!
//! List types follow the server's rule: a list is atomic unless its schema marks it as a map
//! or a set (built-in kinds by `patchMergeKey`/`x-kubernetes-list-type`, CRDs by
//! `x-kubernetes-list-type`, free-form fields never). A wrong guess cannot prove a change away:
//! the server recorded the list in trainstack's own `fieldsV1` by the type it really has (one
//! leaf for an atomic list, `k:`/`v:` items for the others), so the owned and desired field
//! sets differ and the proof falls back.
//!
//! Values are compared as JSON, type included. That is exact for int-or-string fields: the
//! server stores `8080` and `"8080"` as sent (apimachinery's `IntOrString` keeps its type;
//! a CRD's `x-kubernetes-int-or-string` value is stored verbatim), so only a built-in
//! `resource.Quantity`, which the server rewrites, needs its canonical-form check.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::validate::{ListType, Schema};

/// What the proof concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A server-side apply would change neither a value nor an owner.
    Unchanged,
    /// The proof cannot decide; the server's dry-run must.
    NeedsDryRun(Fallback),
}

/// Why the proof fell back to a dry-run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The rule that could not be proven, worded the same for every object so reports can
    /// count them.
    pub reason: &'static str,
    /// Where in the object (`.spec.replicas`); empty for the object as a whole.
    pub at: String,
}

impl Fallback {
    fn new(reason: &'static str, at: &[Pe]) -> Self {
        Fallback { reason, at: path_string(at) }
    }
}

/// Where the list types of an object's fields come from.
#[derive(Debug, Clone, Copy)]
pub enum Shapes<'a> {
    /// A built-in kind: the table of [`builtin_list`].
    Builtin,
    /// A custom resource whose CRD schema is known (the validator's compiled schema).
    Custom(&'a Schema),
    /// A kind whose list semantics are unknown: any list in it falls back.
    Unknown,
}

/// Fallback reasons, each one rule of the proof.
pub mod reason {
    /// The live object has no `Apply` entry of the manager for the main resource.
    pub const NO_APPLY_ENTRY: &str = "no apply entry of trainstack in managedFields";
    /// The manager's entry was written with another apiVersion.
    pub const OTHER_API_VERSION: &str = "managed fields recorded for another apiVersion";
    /// The manager owns a field the desired object no longer sets: apply would remove it.
    pub const FIELD_REMOVED: &str = "a field trainstack owns is no longer desired";
    /// A desired field the manager does not own yet (new, or owned by another manager).
    pub const FIELD_NOT_OWNED: &str = "a desired field is not owned by trainstack";
    /// Another manager owns a desired field too.
    pub const SHARED: &str = "another manager owns a desired field";
    /// A desired value differs from the live one (or is missing live).
    pub const VALUE_DIFFERS: &str = "a live value differs from the desired one";
    /// A desired object or atomic list whose live value has more in it (server defaults).
    pub const DEFAULTED: &str = "server-defaulted or changed value inside a desired field";
    /// A quantity the server would rewrite (`1000m` is stored as `1`).
    pub const QUANTITY: &str = "quantity not in canonical form";
    /// Secret `stringData` is write-only: the server merges it into `data`.
    pub const STRING_DATA: &str = "Secret stringData";
    /// An associative list whose items are not objects: no key to address them by.
    pub const UNKEYED_ITEM: &str = "associative-list item without keys";
    /// A custom resource whose CRD schema is neither part of the environment nor readable
    /// from the cluster.
    pub const UNKNOWN_SCHEMA: &str = "no CRD schema";
    /// An empty associative or set list, whose ownership the proof does not model.
    pub const EMPTY_LIST: &str = "empty associative or set list";
    /// A null value, which apply treats as a removal.
    pub const NULL: &str = "null value";
    /// A desired `status`, which belongs to the status subresource.
    pub const STATUS: &str = "desired status";
    /// The live object is being deleted.
    pub const DELETING: &str = "live object is being deleted";
    /// The object does not exist yet: the dry-run shows what creating it makes.
    pub const NEW: &str = "new object";
    /// `--server-dry-run-all`.
    pub const FORCED: &str = "--server-dry-run-all";
    /// `--warnings-as-errors`: only a dry-run draws the server's warnings.
    pub const WARNINGS: &str = "--warnings-as-errors";
}

/// Decides whether a server-side apply of `desired` by `manager` onto `live` is a no-op.
pub fn decide(desired: &Value, live: &Value, manager: &str, shapes: Shapes) -> Verdict {
    match prove(desired, live, manager, shapes) {
        Ok(()) => Verdict::Unchanged,
        Err(f) => Verdict::NeedsDryRun(f),
    }
}

fn prove(desired: &Value, live: &Value, manager: &str, shapes: Shapes) -> Result<(), Fallback> {
    let whole = |reason| Fallback { reason, at: String::new() };
    if live.get("metadata").and_then(|m| m.get("deletionTimestamp")).is_some_and(|t| !t.is_null()) {
        return Err(whole(reason::DELETING));
    }
    let wanted = desired_fields(desired, shapes)?;
    let entries = live.get("metadata").and_then(|m| m.get("managedFields")).and_then(Value::as_array);
    let entries: Vec<&Value> = entries.into_iter().flatten().collect();
    let is_mine = |e: &Value| {
        e["manager"].as_str() == Some(manager)
            && e["operation"].as_str() == Some("Apply")
            && e["subresource"].as_str().unwrap_or("").is_empty()
            && e["fieldsType"].as_str() == Some("FieldsV1")
    };
    let Some(mine) = entries.iter().copied().find(|e| is_mine(e)) else {
        return Err(whole(reason::NO_APPLY_ENTRY));
    };
    if mine["apiVersion"].as_str() != desired["apiVersion"].as_str() {
        return Err(whole(reason::OTHER_API_VERSION));
    }
    let owned = leaves(decode_fields(&mine["fieldsV1"]));
    if let Some(p) = owned.difference(&wanted).next() {
        return Err(Fallback::new(reason::FIELD_REMOVED, p));
    }
    if let Some(p) = wanted.difference(&owned).next() {
        return Err(Fallback::new(reason::FIELD_NOT_OWNED, p));
    }
    for e in entries.iter().copied().filter(|e| !std::ptr::eq(*e, mine)) {
        let theirs = leaves(decode_fields(&e["fieldsV1"]));
        let overlap = wanted.iter().find(|p| theirs.iter().any(|q| q.starts_with(p) || p.starts_with(q)));
        if let Some(p) = overlap {
            return Err(Fallback::new(reason::SHARED, p));
        }
    }
    for p in &wanted {
        let want = get(desired, p);
        let have = get(live, p);
        if want != have {
            let reason = match want {
                Some(Value::Object(_) | Value::Array(_)) => reason::DEFAULTED,
                _ => reason::VALUE_DIFFERS,
            };
            return Err(Fallback::new(reason, p));
        }
    }
    Ok(())
}

/// One step into a value, as `fieldsV1` names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pe {
    /// `f:name`: a struct field or map key.
    Field(String),
    /// `k:{...}`: an associative-list item, by its key fields as canonical JSON.
    Key(String),
    /// `v:...`: a set-list item, by its JSON encoding.
    Value(String),
    /// `i:N`: a position in an atomic list (only ever read from other writers' entries).
    Index(usize),
}

type Path = Vec<Pe>;

/// Metadata the server manages itself; it never appears in a field set.
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf fields of the desired object, as an apply of it would own them.
fn desired_fields(obj: &Value, shapes: Shapes) -> Result<BTreeSet<Path>, Fallback> {
    let mut set = BTreeSet::new();
    let Some(top) = obj.as_object() else {
        return Ok(set);
    };
    let kind = obj["kind"].as_str().unwrap_or_default();
    let root = match shapes {
        Shapes::Builtin => Node::Builtin,
        Shapes::Custom(s) => Node::Custom(Some(s)),
        Shapes::Unknown => Node::Unknown,
    };
    let walker = Walker { kind };
    for (k, v) in top {
        let mut path = vec![Pe::Field(k.clone())];
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" => return Err(Fallback::new(reason::STATUS, &path)),
            "stringData" if kind == "Secret" => return Err(Fallback::new(reason::STRING_DATA, &path)),
            "metadata" => {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !STRIPPED_METADATA.contains(&mk.as_str()) {
                        path.push(Pe::Field(mk.clone()));
                        walker.walk(mv, &mut path, Node::Builtin, &mut set)?;
                        path.pop();
                    }
                }
            }
            _ => {
                let node = match root {
                    Node::Custom(s) => Node::Custom(s.and_then(|s| s.field(k))),
                    other => other,
                };
                if matches!(root, Node::Unknown) {
                    return Err(Fallback::new(reason::UNKNOWN_SCHEMA, &path));
                }
                walker.walk(v, &mut path, node, &mut set)?;
            }
        }
    }
    Ok(set)
}

/// Where the walk is in the object's schema: the built-in table, a CRD schema node (`None`
/// below a field the schema does not describe), or nowhere known.
#[derive(Clone, Copy)]
enum Node<'a> {
    Builtin,
    Custom(Option<&'a Schema>),
    Unknown,
}

struct Walker<'a> {
    kind: &'a str,
}

impl Walker<'_> {
    fn walk(&self, v: &Value, path: &mut Path, node: Node, set: &mut BTreeSet<Path>) -> Result<(), Fallback> {
        match v {
            Value::Null => Err(Fallback::new(reason::NULL, path)),
            Value::Object(m) if m.is_empty() => {
                set.insert(path.clone());
                Ok(())
            }
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(Pe::Field(k.clone()));
                    self.walk(child, path, child_node(node, k), set)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Array(items) => {
                let list = match node {
                    Node::Builtin => match path.split_last() {
                        Some((Pe::Field(field), parent)) => builtin_list(self.kind, parent, field),
                        _ => ListType::Atomic,
                    },
                    Node::Custom(Some(s)) => s.list_type().clone(),
                    // Free-form (preserve-unknown-fields) values: the server deduces their
                    // type, and deduced lists are atomic.
                    Node::Custom(None) | Node::Unknown => ListType::Atomic,
                };
                if items.is_empty() && list != ListType::Atomic {
                    return Err(Fallback::new(reason::EMPTY_LIST, path));
                }
                let item_node = match node {
                    Node::Custom(s) => Node::Custom(s.and_then(Schema::item)),
                    other => other,
                };
                match list {
                    ListType::Atomic => {
                        set.insert(path.clone());
                    }
                    ListType::Set => {
                        for item in items {
                            path.push(Pe::Value(item.to_string()));
                            set.insert(path.clone());
                            path.pop();
                        }
                    }
                    ListType::Map(keys) => {
                        for item in items {
                            let Some(fields) = item.as_object() else {
                                return Err(Fallback::new(reason::UNKEYED_ITEM, path));
                            };
                            path.push(Pe::Key(item_key(item, &keys)));
                            for (k, child) in fields {
                                path.push(Pe::Field(k.clone()));
                                self.walk(child, path, child_node(item_node, k), set)?;
                                path.pop();
                            }
                            path.pop();
                        }
                    }
                }
                Ok(())
            }
            scalar => {
                self.check_scalar(scalar, path, node)?;
                set.insert(path.clone());
                Ok(())
            }
        }
    }

    /// Scalars the server may store in another form than written: only a built-in kind's
    /// `resource.Quantity` (a custom resource's quantity is an int-or-string, kept verbatim).
    fn check_scalar(&self, v: &Value, path: &[Pe], node: Node) -> Result<(), Fallback> {
        let field = |i: usize| match path.len().checked_sub(i + 1).map(|at| &path[at]) {
            Some(Pe::Field(f)) => f.as_str(),
            _ => "",
        };
        let quantity = QUANTITY_MAPS.contains(&field(1)) || field(0) == "sizeLimit";
        if matches!(node, Node::Builtin) && quantity && !v.as_str().is_some_and(canonical_quantity) {
            return Err(Fallback::new(reason::QUANTITY, path));
        }
        Ok(())
    }
}

fn child_node<'a>(node: Node<'a>, field: &str) -> Node<'a> {
    match node {
        Node::Custom(s) => Node::Custom(s.and_then(|s| s.field(field))),
        other => other,
    }
}

/// Built-in maps whose values are `resource.Quantity`.
const QUANTITY_MAPS: &[&str] = &["limits", "requests", "hard", "capacity", "allocatable"];

/// The list type of a built-in field, as the Kubernetes OpenAPI marks it
/// (`x-kubernetes-list-type`, `x-kubernetes-patch-merge-key`); every other built-in list is
/// atomic, as it is to the server.
fn builtin_list(kind: &str, parent: &[Pe], field: &str) -> ListType {
    let keys = |k: &[&str]| ListType::Map(k.iter().map(|s| s.to_string()).collect());
    let in_item = matches!(parent.last(), Some(Pe::Key(_)));
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "ownerReferences" => keys(&["uid"]),
        "ports" if in_item => keys(&["containerPort", "protocol"]),
        "ports" if kind == "Service" && parent == [Pe::Field("spec".into())] => keys(&["port", "protocol"]),
        "secrets" if kind == "ServiceAccount" && parent.is_empty() => keys(&["name"]),
        "finalizers" if parent == [Pe::Field("metadata".into())] => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// The canonical key of an associative-list item: its key fields, sorted, as compact JSON.
/// A port's protocol defaults to TCP before the server extracts keys.
fn item_key(item: &Value, keys: &[String]) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut m = Map::new();
    for k in sorted {
        match item.get(k) {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            None if k == "protocol" => {
                m.insert(k.clone(), Value::String("TCP".into()));
            }
            None => {}
        }
    }
    Value::Object(m).to_string()
}

fn item_matches_key(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    want.iter().all(|(k, v)| match item.get(k) {
        Some(actual) => actual == v,
        None => k == "protocol" && v == "TCP",
    })
}

/// The value at `path`, if present.
fn get<'a>(v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = match pe {
            Pe::Field(f) => cur.get(f)?,
            Pe::Key(k) => cur.as_array()?.iter().find(|i| item_matches_key(i, k))?,
            Pe::Value(j) => {
                let want: Value = serde_json::from_str(j).ok()?;
                cur.as_array()?.iter().find(|i| **i == want)?
            }
            Pe::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// Decodes `fieldsV1` into every path it lists (members and leaves); unknown keys are skipped.
fn decode_fields(v: &Value) -> BTreeSet<Path> {
    fn go(v: &Value, path: &mut Path, set: &mut BTreeSet<Path>) {
        let Some(m) = v.as_object() else { return };
        if m.is_empty() && !path.is_empty() {
            set.insert(path.clone());
        }
        for (k, child) in m {
            if k == "." {
                set.insert(path.clone());
                continue;
            }
            if let Some(pe) = parse_pe(k) {
                path.push(pe);
                go(child, path, set);
                path.pop();
            }
        }
    }
    let mut set = BTreeSet::new();
    go(v, &mut Vec::new(), &mut set);
    set
}

fn parse_pe(key: &str) -> Option<Pe> {
    let (prefix, rest) = key.split_at_checked(2)?;
    Some(match prefix {
        "f:" => Pe::Field(rest.to_string()),
        // Other writers may order key fields differently; sorting makes them compare equal.
        "k:" => {
            let Value::Object(m) = serde_json::from_str::<Value>(rest).ok()? else {
                return None;
            };
            let mut fields: Vec<(String, Value)> = m.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Pe::Key(Value::Object(fields.into_iter().collect()).to_string())
        }
        "v:" => Pe::Value(serde_json::from_str::<Value>(rest).ok()?.to_string()),
        "i:" => Pe::Index(rest.parse().ok()?),
        _ => return None,
    })
}

/// The paths of a set that no other path extends: where values are, rather than the maps and
/// list items that hold them (whose `.` membership writers record differently).
fn leaves(set: BTreeSet<Path>) -> BTreeSet<Path> {
    let all: Vec<&Path> = set.iter().collect();
    set.iter()
        .enumerate()
        .filter(|(i, p)| all.get(i + 1).is_none_or(|next| !(next.len() > p.len() && next.starts_with(p))))
        .map(|(_, p)| p.clone())
        .collect()
}

/// `.spec.containers[name="app"].image`, as the server names fields in conflicts.
fn path_string(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
            Pe::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Whether a quantity string is in the form the server stores (`resource.Quantity`'s
/// canonical form): an integer mantissa without a smaller-unit spelling of a larger unit
/// (`1000m` is stored as `1`, `1024Mi` as `1Gi`, `0.5` as `500m`). Anything else is uncertain.
fn canonical_quantity(s: &str) -> bool {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(end);
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return false;
    }
    let Ok(n) = digits.parse::<u64>() else {
        return false;
    };
    if n == 0 {
        return suffix.is_empty();
    }
    match suffix {
        "m" | "" | "k" | "M" | "G" | "T" | "P" => n % 1000 != 0,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" => n % 1024 != 0,
        "E" | "Ei" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_with(obj: &Value, entries: Value) -> Value {
        let mut live = obj.clone();
        live["metadata"]["managedFields"] = entries;
        live["metadata"]["resourceVersion"] = json!("7");
        live
    }

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "v1", "fieldsType": "FieldsV1",
               "time": "2026-01-01T00:00:00Z", "fieldsV1": fields})
    }

    fn config_map() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n",
               "labels": {"app": "x"}}, "data": {"k": "v"}})
    }

    fn owned_config_map() -> Value {
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:data": {".": {}, "f:k": {}}})
    }

    fn reason_of(v: Verdict) -> &'static str {
        match v {
            Verdict::Unchanged => "unchanged",
            Verdict::NeedsDryRun(f) => f.reason,
        }
    }

    #[test]
    fn equal_values_and_exact_ownership_are_unchanged() {
        let d = config_map();
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map())]));
        assert_eq!(decide(&d, &live, "trainstack", Shapes::Builtin), Verdict::Unchanged);
    }

    #[test]
    fn a_field_no_longer_desired_needs_a_dry_run() {
        let mut d = config_map();
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map())]));
        d["data"].as_object_mut().unwrap().remove("k");
        d["data"]["other"] = json!("v");
        let v = decide(&d, &live, "trainstack", Shapes::Builtin);
        assert_eq!(v, Verdict::NeedsDryRun(Fallback { reason: reason::FIELD_REMOVED, at: ".data.k".into() }));
    }

    #[test]
    fn a_new_desired_field_needs_a_dry_run() {
        let mut d = config_map();
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map())]));
        d["metadata"]["labels"]["team"] = json!("ml");
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::FIELD_NOT_OWNED);
    }

    #[test]
    fn a_changed_live_value_needs_a_dry_run() {
        let d = config_map();
        let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map())]));
        live["data"]["k"] = json!("drifted");
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::VALUE_DIFFERS);
    }

    #[test]
    fn a_field_shared_with_another_manager_needs_a_dry_run() {
        let d = config_map();
        let theirs = entry("kubectl", "Apply", json!({"f:data": {"f:k": {}}}));
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map()), theirs]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::SHARED);
    }

    #[test]
    fn another_managers_label_beside_ours_is_still_unchanged() {
        let d = config_map();
        let theirs =
            entry("kubectl-label", "Update", json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}));
        let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map()), theirs]));
        live["metadata"]["labels"]["team"] = json!("ml");
        assert_eq!(decide(&d, &live, "trainstack", Shapes::Builtin), Verdict::Unchanged);
    }

    #[test]
    fn no_apply_entry_or_another_api_version_needs_a_dry_run() {
        let d = config_map();
        let live = live_with(&d, json!([entry("kubectl-create", "Update", owned_config_map())]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::NO_APPLY_ENTRY);
        let mut old = entry("trainstack", "Apply", owned_config_map());
        old["apiVersion"] = json!("v1beta1");
        let live = live_with(&d, json!([old]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::OTHER_API_VERSION);
        let mut status = entry("trainstack", "Apply", owned_config_map());
        status["subresource"] = json!("status");
        let live = live_with(&d, json!([status]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::NO_APPLY_ENTRY);
    }

    fn deployment(cpu: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
               "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": "i",
                 "args": ["a", "b"], "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": cpu}}}]}}}})
    }

    fn owned_deployment() -> Value {
        json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:image": {}, "f:args": {},
              "f:ports": {"k:{\"protocol\":\"TCP\",\"containerPort\":80}": {".": {}, "f:containerPort": {}}},
              "f:resources": {"f:limits": {"f:cpu": {}}}}}}}}})
    }

    #[test]
    fn associative_lists_match_by_key_even_with_server_defaults_in_items() {
        let d = deployment("500m");
        let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_deployment())]));
        live["metadata"]["managedFields"][0]["apiVersion"] = json!("apps/v1");
        // Defaults the server adds beside desired fields change nothing an apply owns.
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
        assert_eq!(decide(&d, &live, "trainstack", Shapes::Builtin), Verdict::Unchanged);
    }

    #[test]
    fn an_atomic_list_is_one_field_compared_whole() {
        let d = deployment("500m");
        let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_deployment())]));
        live["metadata"]["managedFields"][0]["apiVersion"] = json!("apps/v1");
        live["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b", "c"]);
        let v = decide(&d, &live, "trainstack", Shapes::Builtin);
        assert_eq!(
            v,
            Verdict::NeedsDryRun(Fallback {
                reason: reason::DEFAULTED,
                at: ".spec.template.spec.containers[name=\"app\"].args".into()
            })
        );
    }

    #[test]
    fn a_non_canonical_quantity_needs_a_dry_run() {
        let d = deployment("1000m");
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned_deployment())]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::QUANTITY);
        assert!(canonical_quantity("500m") && canonical_quantity("2Gi") && canonical_quantity("0"));
        for odd in ["1000m", "1024Mi", "0.5", "1e3", "01", "0m", "2000", "1.5Gi"] {
            assert!(!canonical_quantity(odd), "{odd}");
        }
    }

    #[test]
    fn secret_string_data_needs_a_dry_run() {
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"p": "x"}});
        let live = live_with(&s, json!([]));
        assert_eq!(reason_of(decide(&s, &live, "trainstack", Shapes::Builtin)), reason::STRING_DATA);
    }

    fn service(target: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"port": 80, "targetPort": target}]}})
    }

    fn owned_service() -> Value {
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}":
            {".": {}, "f:port": {}, "f:targetPort": {}}}}})
    }

    #[test]
    fn int_or_string_values_are_unchanged_only_when_equal_in_json_type_and_value() {
        for same in [json!("http"), json!(8080), json!("8080"), json!("25%")] {
            let d = service(same.clone());
            let live = live_with(&d, json!([entry("trainstack", "Apply", owned_service())]));
            assert_eq!(decide(&d, &live, "trainstack", Shapes::Builtin), Verdict::Unchanged, "{same}");
        }
        for (desired, stored) in
            [(json!(8080), json!("8080")), (json!("8080"), json!(8080)), (json!("http"), json!("web"))]
        {
            let d = service(desired.clone());
            let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_service())]));
            live["spec"]["ports"][0]["targetPort"] = stored.clone();
            let v = decide(&d, &live, "trainstack", Shapes::Builtin);
            assert_eq!(
                v,
                Verdict::NeedsDryRun(Fallback {
                    reason: reason::VALUE_DIFFERS,
                    at: ".spec.ports[port=80,protocol=\"TCP\"].targetPort".into()
                }),
                "{desired} stored as {stored}"
            );
        }
    }

    fn limit_range(items: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "n"},
               "spec": {"limits": items}})
    }

    #[test]
    fn lists_without_merge_markers_are_atomic_and_compared_whole() {
        let items =
            json!([{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]);
        let d = limit_range(items);
        let owned = json!({"f:spec": {"f:limits": {}}});
        let live = live_with(&d, json!([entry("trainstack", "Apply", owned.clone())]));
        assert_eq!(decide(&d, &live, "trainstack", Shapes::Builtin), Verdict::Unchanged);

        // A default the server filled into an item changes the list as a whole.
        let mut defaulted = live.clone();
        defaulted["spec"]["limits"][0]["max"] = json!({"cpu": "1"});
        let v = decide(&d, &defaulted, "trainstack", Shapes::Builtin);
        assert_eq!(
            v,
            Verdict::NeedsDryRun(Fallback { reason: reason::DEFAULTED, at: ".spec.limits".into() })
        );

        // Had the server merged the list by key, trainstack's entry would name its items, not
        // the list: the field sets differ, and the wrong guess falls back instead of passing.
        let by_key = json!({"f:spec": {"f:limits": {"k:{\"type\":\"Container\"}": {".": {}, "f:type": {}}}}});
        let live = live_with(&d, json!([entry("trainstack", "Apply", by_key)]));
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::FIELD_REMOVED);
    }

    #[test]
    fn unknown_schemas_nulls_status_and_deletion_need_a_dry_run() {
        let cr =
            json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"a": 1}});
        let live = live_with(&cr, json!([]));
        assert_eq!(reason_of(decide(&cr, &live, "trainstack", Shapes::Unknown)), reason::UNKNOWN_SCHEMA);
        let null =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": null}});
        assert_eq!(reason_of(decide(&null, &live, "trainstack", Shapes::Builtin)), reason::NULL);
        let status =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "status": {}});
        assert_eq!(reason_of(decide(&status, &live, "trainstack", Shapes::Builtin)), reason::STATUS);
        let fin =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": []}});
        assert_eq!(reason_of(decide(&fin, &live, "trainstack", Shapes::Builtin)), reason::EMPTY_LIST);
        let d = config_map();
        let mut live = live_with(&d, json!([entry("trainstack", "Apply", owned_config_map())]));
        live["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(reason_of(decide(&d, &live, "trainstack", Shapes::Builtin)), reason::DELETING);
    }

    fn thing_schema() -> crate::validate::CrdSchemas {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.x.io"},
            "spec": {"group": "x.io", "scope": "Namespaced", "names": {"kind": "Thing", "plural": "things"},
              "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                  "workers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}},
                  "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                  "size": {"x-kubernetes-int-or-string": true},
                  "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}});
        let mut schemas = crate::validate::CrdSchemas::new();
        schemas.add_crd(&crd).unwrap();
        schemas
    }

    #[test]
    fn crd_list_markers_decide_how_items_are_owned() {
        let schemas = thing_schema();
        let shapes = Shapes::Custom(schemas.schema("x.io/v1", "Thing").unwrap());
        let cr = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"},
                        "spec": {"workers": [{"name": "a", "n": 1}], "tags": ["x", "y"]}});
        let mut mine = entry(
            "trainstack",
            "Apply",
            json!({"f:spec": {"f:workers": {
            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:n": {}}}, "f:tags": {"v:\"x\"": {}, "v:\"y\"": {}}}}),
        );
        mine["apiVersion"] = json!("x.io/v1");
        let live = live_with(&cr, json!([mine]));
        assert_eq!(decide(&cr, &live, "trainstack", shapes), Verdict::Unchanged);
    }

    #[test]
    fn crd_int_or_string_and_free_form_lists_are_decided_by_their_stored_values() {
        let schemas = thing_schema();
        let shapes = Shapes::Custom(schemas.schema("x.io/v1", "Thing").unwrap());
        let cr = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"},
                        "spec": {"size": "10Gi", "free": {"list": [1, 2]}}});
        let mut mine =
            entry("trainstack", "Apply", json!({"f:spec": {"f:size": {}, "f:free": {"f:list": {}}}}));
        mine["apiVersion"] = json!("x.io/v1");
        let live = live_with(&cr, json!([mine]));
        assert_eq!(decide(&cr, &live, "trainstack", shapes), Verdict::Unchanged);

        let mut resized = live.clone();
        resized["spec"]["size"] = json!(10);
        assert_eq!(reason_of(decide(&cr, &resized, "trainstack", shapes)), reason::VALUE_DIFFERS);
        let mut grown = live.clone();
        grown["spec"]["free"]["list"] = json!([1, 2, 3]);
        assert_eq!(reason_of(decide(&cr, &grown, "trainstack", shapes)), reason::DEFAULTED);
    }
}
