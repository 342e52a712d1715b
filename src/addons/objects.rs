//! Turning a multi-document YAML manifest into Kubernetes objects: `List`s flattened, every object
//! required to have `apiVersion` and `kind`.

use serde_json::Value;

use super::AddonError;
use crate::yaml;

/// Who is parsing: the add-on, its source and the file (or command output) the text came from,
/// so every error can name all three.
pub(crate) struct Origin<'a> {
    pub addon: &'a str,
    pub from: &'a str,
    pub file: &'a str,
}

/// Parses `text` and appends its objects to `out`, in document order.
pub(crate) fn parse_objects(text: &str, origin: &Origin<'_>, out: &mut Vec<Value>) -> Result<(), AddonError> {
    let yaml_err = |line: Option<usize>, message: String| AddonError::Yaml {
        addon: origin.addon.to_string(),
        from: origin.from.to_string(),
        file: origin.file.to_string(),
        line,
        message,
    };
    let docs = yaml::parse_stream(text).map_err(|e| yaml_err(e.pos.map(|p| p.line), e.message))?;
    for (i, doc) in docs.into_iter().enumerate() {
        let not_object = |problem: String| AddonError::NotAnObject {
            addon: origin.addon.to_string(),
            from: origin.from.to_string(),
            file: origin.file.to_string(),
            document: i + 1,
            problem,
        };
        // Kubernetes objects are JSON; YAML-only shapes (non-string keys) cannot be objects.
        let value =
            serde_json::to_value(&doc).map_err(|e| not_object(format!("not representable as JSON: {e}")))?;
        push_flattened(value, &not_object, out)?;
    }
    Ok(())
}

fn push_flattened(
    value: Value,
    not_object: &impl Fn(String) -> AddonError,
    out: &mut Vec<Value>,
) -> Result<(), AddonError> {
    let Value::Object(map) = &value else {
        return Err(not_object("is not a mapping".into()));
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(not_object(format!("{} has no `kind`", describe(map)))),
    };
    if !matches!(map.get("apiVersion"), Some(Value::String(v)) if !v.is_empty()) {
        return Err(not_object(format!("{} has no `apiVersion`", describe(map))));
    }
    if kind == "List" {
        let Some(Value::Array(items)) = value.get("items").cloned() else {
            return Err(not_object("`List` without an `items` array".into()));
        };
        for item in items {
            push_flattened(item, not_object, out)?;
        }
    } else {
        out.push(value);
    }
    Ok(())
}

/// `Deployment foo` when kind and name are known, so the user can find the object.
fn describe(map: &serde_json::Map<String, Value>) -> String {
    let kind = map.get("kind").and_then(Value::as_str);
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str);
    match (kind, name) {
        (Some(k), Some(n)) if !k.is_empty() => format!("object {k} `{n}`"),
        (_, Some(n)) => format!("object `{n}`"),
        _ => "object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let origin = Origin { addon: "jobset", from: "file /m/jobset.yaml", file: "/m/jobset.yaml" };
        parse_objects(text, &origin, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn keeps_document_order_and_key_order() {
        let objs = parse(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n---\n\
             kind: ServiceAccount\napiVersion: v1\nmetadata: {name: a, namespace: b}\n",
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["kind"], "Namespace");
        let keys: Vec<&String> = objs[1].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata"]);
    }

    #[test]
    fn flattens_lists() {
        let objs = parse(
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
             - {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Secret, metadata: {name: b}}]}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {name: c}\n",
        )
        .unwrap();
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", "Service"]);
    }

    #[test]
    fn object_without_kind_or_api_version_is_an_error() {
        assert_eq!(
            parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: x}\n")
                .unwrap_err(),
            "add-on `jobset` (file /m/jobset.yaml): /m/jobset.yaml: document 2: object `x` has no `kind`"
        );
        assert_eq!(
            parse("kind: Deployment\nmetadata: {name: ctl}\n").unwrap_err(),
            "add-on `jobset` (file /m/jobset.yaml): /m/jobset.yaml: document 1: object Deployment `ctl` has no `apiVersion`"
        );
        assert_eq!(
            parse("- a\n- b\n").unwrap_err(),
            "add-on `jobset` (file /m/jobset.yaml): /m/jobset.yaml: document 1: is not a mapping"
        );
        assert_eq!(
            parse("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, metadata: {name: y}}\n")
                .unwrap_err(),
            "add-on `jobset` (file /m/jobset.yaml): /m/jobset.yaml: document 1: object `y` has no `kind`"
        );
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let err =
            parse("apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nkind: [Service\nmetadata: {}\n")
                .unwrap_err();
        assert!(
            err.starts_with("add-on `jobset` (file /m/jobset.yaml): /m/jobset.yaml:6: invalid YAML: "),
            "{err}"
        );
    }
}
