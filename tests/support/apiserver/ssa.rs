//! Field ownership for server-side apply: field sets in the real `fieldsV1` trie format
//! (`f:`, `k:`, `v:`, `i:`, `.`), `metadata.managedFields` entries, the apply merge with its
//! conflict detection and removal of fields a manager stopped applying, and ownership
//! transfer for plain updates. Modelled on sigs.k8s.io/structured-merge-diff, with list types
//! taken from a small table for built-in kinds and from `x-kubernetes-list-*` for CRDs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

/// One step into a value. The variant order is structured-merge-diff's element order, which
/// is also the key order of a serialized `fieldsV1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pe {
    /// A struct field or map key.
    Field(String),
    /// An associative-list item, as the canonical JSON object of its key fields (sorted).
    Key(String),
    /// A set-list item, as its JSON encoding.
    Value(String),
    /// An atomic-list position; only produced when decoding foreign managed fields.
    Index(usize),
}

pub(crate) type Path = Vec<Pe>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// Which part of the object a write addresses: field sets never mix the two for kinds with a
/// status subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource; `status_separate` when the kind has a `/status` subresource.
    Main {
        status_separate: bool,
    },
    Status,
}

impl Part {
    pub fn subresource(self) -> &'static str {
        match self {
            Part::Main { .. } => "",
            Part::Status => "status",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    Map(Vec<String>),
    Set,
    Atomic,
}

/// Where list and map types come from: the real server uses the OpenAPI schema; the double
/// knows the merge keys of the built-in lists trainstack renders, and reads CRD schemas.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Schema<'a> {
    Builtin { kind: &'a str },
    Custom(&'a Value),
}

/// Map-typed (not struct) built-in fields: the real server lists the map itself as a member
/// (`"f:labels": {".": {}, ...}`).
const BUILTIN_MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "stringData",
    "binaryData",
    "matchLabels",
    "nodeSelector",
    "limits",
    "requests",
    "hard",
    "capacity",
    "parameters",
];

impl Schema<'_> {
    fn custom_node<'v>(root: &'v Value, parent: &[Pe]) -> Option<&'v Value> {
        let mut node = root;
        for pe in parent {
            node = match pe {
                Pe::Field(f) => node
                    .get("properties")
                    .and_then(|p| p.get(f))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?,
                _ => node.get("items")?,
            };
        }
        Some(node)
    }

    fn custom_field<'v>(root: &'v Value, parent: &[Pe], field: &str) -> Option<&'v Value> {
        let node = Self::custom_node(root, parent)?;
        node.get("properties")
            .and_then(|p| p.get(field))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
    }

    pub fn list_kind(&self, parent: &[Pe], field: &str) -> ListKind {
        let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
        match self {
            Schema::Builtin { kind } => match field {
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
                "conditions" => keys(&["type"]),
                "hostAliases" => keys(&["ip"]),
                "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
                "ownerReferences" => keys(&["uid"]),
                "ports" if matches!(parent.last(), Some(Pe::Key(_))) => keys(&["containerPort", "protocol"]),
                "ports" if *kind == "Service" && parent == [Pe::Field("spec".into())] => {
                    keys(&["port", "protocol"])
                }
                "secrets" if *kind == "ServiceAccount" && parent.is_empty() => keys(&["name"]),
                "finalizers" if parent == [Pe::Field("metadata".into())] => ListKind::Set,
                _ => ListKind::Atomic,
            },
            Schema::Custom(root) => {
                if parent == [Pe::Field("metadata".into())] {
                    return Schema::Builtin { kind: "" }.list_kind(parent, field);
                }
                let Some(node) = Self::custom_field(root, parent, field) else {
                    return ListKind::Atomic;
                };
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => ListKind::Map(
                        node["x-kubernetes-list-map-keys"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect(),
                    ),
                    Some("set") => ListKind::Set,
                    _ => ListKind::Atomic,
                }
            }
        }
    }

    fn is_map_field(&self, parent: &[Pe], field: &str) -> bool {
        match self {
            Schema::Builtin { kind } => {
                BUILTIN_MAP_FIELDS.contains(&field)
                    || (*kind == "Service" && field == "selector" && parent == [Pe::Field("spec".into())])
            }
            Schema::Custom(root) => {
                if parent == [Pe::Field("metadata".into())] {
                    return BUILTIN_MAP_FIELDS.contains(&field);
                }
                Self::custom_field(root, parent, field)
                    .is_some_and(|n| n.get("additionalProperties").is_some_and(Value::is_object))
            }
        }
    }
}

/// Server-managed metadata that never appears in a field set (structured-merge-diff's
/// strip-meta manager removes the same list).
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

/// The canonical key of an associative-list item. Ports default their protocol to TCP, as
/// the real server defaults it before extracting keys.
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
                m.insert(k.clone(), json!("TCP"));
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

fn walk(v: &Value, path: &mut Path, schema: &Schema, set: &mut FieldSet) {
    match v {
        Value::Object(m) => {
            let is_map = match path.split_last() {
                Some((Pe::Field(name), parent)) => schema.is_map_field(parent, name),
                _ => false,
            };
            if m.is_empty() || is_map {
                set.insert(path.clone());
            }
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                walk(child, path, schema, set);
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = match path.split_last() {
                Some((Pe::Field(name), parent)) => schema.list_kind(parent, name),
                _ => ListKind::Atomic,
            };
            match kind {
                ListKind::Atomic => {
                    set.insert(path.clone());
                }
                ListKind::Set => {
                    for item in items {
                        let mut p = path.clone();
                        p.push(Pe::Value(item.to_string()));
                        set.insert(p);
                    }
                }
                ListKind::Map(keys) => {
                    for item in items {
                        path.push(Pe::Key(item_key(item, &keys)));
                        set.insert(path.clone());
                        if let Value::Object(m) = item {
                            for (k, child) in m {
                                path.push(Pe::Field(k.clone()));
                                walk(child, path, schema, set);
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
}

/// The fields of `obj` that belong to `part`, without server-managed metadata.
pub(crate) fn field_set(obj: &Value, schema: &Schema, part: Part) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(top) = obj.as_object() else {
        return set;
    };
    for (k, v) in top {
        let include = match (k.as_str(), part) {
            ("apiVersion" | "kind", _) => false,
            ("metadata", Part::Status) => false,
            ("metadata", Part::Main { .. }) => {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !STRIPPED_METADATA.contains(&mk.as_str()) {
                        let mut path = vec![Pe::Field("metadata".into()), Pe::Field(mk.clone())];
                        walk(mv, &mut path, schema, &mut set);
                    }
                }
                false
            }
            ("status", Part::Status) => true,
            ("status", Part::Main { status_separate }) => !status_separate,
            (_, Part::Status) => false,
            (_, Part::Main { .. }) => true,
        };
        if include {
            let mut path = vec![Pe::Field(k.clone())];
            walk(v, &mut path, schema, &mut set);
        }
    }
    set
}

/// Whether `v` is the set item whose JSON encoding is `encoded`.
fn same_json(v: &Value, encoded: &str) -> bool {
    serde_json::from_str::<Value>(encoded).is_ok_and(|e| e == *v)
}

/// The value at `path`, if present.
pub(crate) fn get<'a>(v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = match pe {
            Pe::Field(f) => cur.get(f)?,
            Pe::Key(k) => cur.as_array()?.iter().find(|i| item_matches_key(i, k))?,
            Pe::Value(j) => cur.as_array()?.iter().find(|i| same_json(i, j))?,
            Pe::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn get_mut<'a>(v: &'a mut Value, path: &[Pe]) -> Option<&'a mut Value> {
    let mut cur = v;
    for pe in path {
        cur = match pe {
            Pe::Field(f) => cur.get_mut(f)?,
            Pe::Key(k) => cur.as_array_mut()?.iter_mut().find(|i| item_matches_key(i, k))?,
            Pe::Value(j) => cur.as_array_mut()?.iter_mut().find(|i| same_json(i, j))?,
            Pe::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// Removes the field or list item at `path`; a missing path is already removed.
pub(crate) fn remove(v: &mut Value, path: &[Pe]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(parent) = get_mut(v, parent) else {
        return;
    };
    match (last, parent) {
        (Pe::Field(f), Value::Object(m)) => {
            m.shift_remove(f);
        }
        (Pe::Key(k), Value::Array(items)) => items.retain(|i| !item_matches_key(i, k)),
        (Pe::Value(j), Value::Array(items)) => items.retain(|i| !same_json(i, j)),
        (Pe::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// Merges an applied configuration into the live object: maps field by field, associative
/// lists item by item (by key), sets by value, and everything else (scalars, atomic lists)
/// replaced by the applied value.
fn merge(live: &mut Value, applied: &Value, path: &mut Path, schema: &Schema) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                path.push(Pe::Field(k.clone()));
                match l.get_mut(k) {
                    Some(lv) => merge(lv, av, path, schema),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                path.pop();
            }
        }
        (live @ Value::Array(_), Value::Array(a)) => {
            let kind = match path.split_last() {
                Some((Pe::Field(name), parent)) => schema.list_kind(parent, name),
                _ => ListKind::Atomic,
            };
            let Value::Array(l) = live else { unreachable!() };
            match kind {
                ListKind::Atomic => *l = a.clone(),
                ListKind::Set => {
                    for x in a {
                        if !l.contains(x) {
                            l.push(x.clone());
                        }
                    }
                }
                ListKind::Map(keys) => {
                    for item in a {
                        let key = item_key(item, &keys);
                        match l.iter_mut().find(|li| item_key(li, &keys) == key) {
                            Some(li) => {
                                path.push(Pe::Key(key));
                                merge(li, item, path, schema);
                                path.pop();
                            }
                            None => l.push(item.clone()),
                        }
                    }
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_identity(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How conflict messages name a manager (structured-merge-diff's `printManager`).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Whether two entry lists record the same ownership, ignoring timestamps.
pub(crate) fn same_ownership(a: &[ManagedEntry], b: &[ManagedEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.subresource == y.subresource
                && x.api_version == y.api_version
                && x.fields == y.fields
        })
}

fn pe_key(pe: &Pe) -> String {
    match pe {
        Pe::Field(f) => format!("f:{f}"),
        Pe::Key(k) => format!("k:{k}"),
        Pe::Value(v) => format!("v:{v}"),
        Pe::Index(i) => format!("i:{i}"),
    }
}

/// Human-readable path as in conflict causes: `.spec.containers[name="app"].image`.
pub(crate) fn path_string(path: &[Pe]) -> String {
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

#[derive(Default)]
struct Trie {
    member: bool,
    children: BTreeMap<Pe, Trie>,
}

impl Trie {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (pe, child) in &self.children {
            m.insert(pe_key(pe), child.to_json());
        }
        Value::Object(m)
    }
}

/// Encodes a field set as `fieldsV1`.
pub(crate) fn encode_fields(set: &FieldSet) -> Value {
    let mut root = Trie::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    root.to_json()
}

fn parse_pe(key: &str) -> Option<Pe> {
    let (prefix, rest) = key.split_at_checked(2)?;
    Some(match prefix {
        "f:" => Pe::Field(rest.to_string()),
        // Re-serialise so keys written by other clients compare equal to ours.
        "k:" => {
            let Value::Object(m) = serde_json::from_str::<Value>(rest).ok()? else {
                return None;
            };
            let sorted: BTreeMap<String, Value> = m.into_iter().collect();
            Pe::Key(serde_json::to_string(&sorted).ok()?)
        }
        "v:" => Pe::Value(serde_json::from_str::<Value>(rest).ok()?.to_string()),
        "i:" => Pe::Index(rest.parse().ok()?),
        _ => return None,
    })
}

/// Decodes `fieldsV1` into a field set; unknown keys are skipped.
pub(crate) fn decode_fields(v: &Value) -> FieldSet {
    fn go(v: &Value, path: &mut Path, set: &mut FieldSet) {
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
    let mut set = FieldSet::new();
    go(v, &mut Vec::new(), &mut set);
    set
}

pub(crate) fn parse_managed(obj: &Value) -> Vec<ManagedEntry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(ManagedEntry {
                manager: e["manager"].as_str()?.to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                fields: decode_fields(&e["fieldsV1"]),
            })
        })
        .collect()
}

pub(crate) fn render_managed(entries: &[ManagedEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": encode_fields(&e.fields),
                });
                if !e.subresource.is_empty() {
                    v["subresource"] = json!(e.subresource);
                }
                v
            })
            .collect(),
    )
}

/// A field another manager owns with a different value than the apply asks for.
#[derive(Debug, Clone)]
pub(crate) struct Conflict {
    pub manager: String,
    pub path: Path,
}

impl Conflict {
    pub fn cause(&self) -> Value {
        json!({
            "reason": "FieldManagerConflict",
            "message": format!("conflict with {}", self.manager),
            "field": path_string(&self.path),
        })
    }
}

/// The message of a 409 apply conflict, worded like the real server's.
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager,
            path_string(&c.path)
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(path_string(&c.path));
    }
    let mut lines = Vec::new();
    for (manager, paths) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(paths.into_iter().map(|p| format!("- {p}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// What an apply asks for.
pub(crate) struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub part: Part,
    pub force: bool,
    pub now: &'a str,
}

/// Server-side apply of `applied` (already stripped to `req.part`) onto `live` (an empty
/// object for a create). Returns the merged object and the new ownership, or the conflicts.
pub(crate) fn apply(
    live: &Value,
    applied: &Value,
    mut managers: Vec<ManagedEntry>,
    schema: &Schema,
    req: &ApplyRequest,
) -> Result<(Value, Vec<ManagedEntry>), Vec<Conflict>> {
    let sub = req.part.subresource();
    let new_set = field_set(applied, schema, req.part);
    let mine = managers.iter().position(|e| e.same_identity(req.manager, "Apply", sub));
    let prev_set = mine.map(|i| managers[i].fields.clone()).unwrap_or_default();

    let mut merged = live.clone();
    merge(&mut merged, applied, &mut Vec::new(), schema);

    let mut conflicts = Vec::new();
    for path in &new_set {
        // Item and map membership is never a value conflict; only leaves are compared.
        if matches!(get(applied, path), Some(Value::Object(m)) if !m.is_empty()) {
            continue;
        }
        if get(live, path) == get(&merged, path) {
            continue;
        }
        for (i, e) in managers.iter().enumerate() {
            if Some(i) != mine && e.fields.contains(path) {
                conflicts.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflicts
            .into_iter()
            .map(|(i, path)| Conflict { manager: managers[i].describe(), path })
            .collect());
    }
    // Forcing takes the conflicting fields away from their previous owners.
    for (i, path) in &conflicts {
        managers[*i].fields.remove(path);
    }

    // Fields this manager applied before and no longer applies go away unless someone else
    // still owns them or something beneath them.
    for path in prev_set.difference(&new_set) {
        let owned_elsewhere = managers
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != mine && e.fields.iter().any(|p| p.starts_with(path)));
        if !owned_elsewhere && !new_set.iter().any(|p| p.starts_with(path)) {
            remove(&mut merged, path);
        }
    }

    match mine {
        Some(i) => {
            managers[i].fields = new_set;
            managers[i].time = req.now.to_string();
            managers[i].api_version = req.api_version.to_string();
        }
        None => managers.push(ManagedEntry {
            manager: req.manager.to_string(),
            operation: "Apply".into(),
            api_version: req.api_version.to_string(),
            time: req.now.to_string(),
            subresource: sub.to_string(),
            fields: new_set,
        }),
    }
    managers.retain(|e| !e.fields.is_empty());
    Ok((merged, managers))
}

/// Ownership after a non-apply write (create, update, merge/JSON patch) by `manager`: fields
/// it added or changed move to its `Update` entry, fields it removed are owned by nobody.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &Value,
    managers: &mut Vec<ManagedEntry>,
    schema: &Schema,
    req: &ApplyRequest,
) {
    let sub = req.part.subresource();
    let new_set = field_set(new, schema, req.part);
    let old_set = old.map(|o| field_set(o, schema, req.part)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            !old_set.contains(*p)
                || (!matches!(get(new, p), Some(Value::Object(m)) if !m.is_empty())
                    && old.and_then(|o| get(o, p)) != get(new, p))
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for e in managers.iter_mut() {
        if !e.same_identity(req.manager, "Update", sub) {
            e.fields.retain(|p| !changed.contains(p) && !removed.contains(p));
        }
    }
    match managers.iter_mut().find(|e| e.same_identity(req.manager, "Update", sub)) {
        Some(e) => {
            e.fields.extend(changed);
            e.fields.retain(|p| !removed.contains(p));
            e.time = req.now.to_string();
            e.api_version = req.api_version.to_string();
        }
        None if !changed.is_empty() => managers.push(ManagedEntry {
            manager: req.manager.to_string(),
            operation: "Update".into(),
            api_version: req.api_version.to_string(),
            time: req.now.to_string(),
            subresource: sub.to_string(),
            fields: changed,
        }),
        None => {}
    }
    managers.retain(|e| !e.fields.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip_uses_real_format() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "d"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "x", "ports": [{"containerPort": 80}]}
            ]}}}
        });
        let schema = Schema::Builtin { kind: "Deployment" };
        let set = field_set(&obj, &schema, Part::Main { status_separate: true });
        let encoded = encode_fields(&set);
        assert_eq!(
            encoded,
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                    }}
                }}}}
            })
        );
        assert_eq!(decode_fields(&encoded), set);
    }
}
