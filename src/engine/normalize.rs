//! Diff normalisation: strips what the server owns (status, bookkeeping metadata) and redacts
//! Secret values, so a diff shows only what an apply would change.

use serde_json::{Map, Value};

/// Metadata fields the server sets and users never declare.
const SERVER_METADATA: &[&str] =
    &["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"];

/// Annotations written by controllers or other tools, not by the environment.
const SERVER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
];

/// A copy of `obj` without status and server bookkeeping.
pub fn normalize(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA {
                meta.remove(*f);
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                for a in SERVER_ANNOTATIONS {
                    ann.remove(*a);
                }
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    out
}

/// Annotation of the Secrets `apply` builds from AWS Secrets Manager (`aws.secrets`).
pub const SECRETS_MANAGER_ARN: &str = "trainstack.io/secrets-manager-arn";

/// Whether a Secret's values stay redacted even with `--show-secrets`: those read from Secrets
/// Manager, whose values are never printed (read them there, where access is logged).
pub fn always_redacted(obj: &Value) -> bool {
    is_secret(obj) && obj.pointer("/metadata/annotations").and_then(|a| a.get(SECRETS_MANAGER_ARN)).is_some()
}

/// Whether an object is a Secret, whose values must never be printed.
pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// Replaces Secret `data`/`stringData` values in a pair of objects. Values that are equal in
/// both read `<redacted>`; values that differ read `<redacted: before>` and `<redacted: after>`,
/// so the diff still says which keys change without revealing them.
pub fn redact_pair(mut before: Option<&mut Value>, mut after: Option<&mut Value>) {
    for field in ["data", "stringData"] {
        let b = before.as_deref().and_then(|v| v.get(field)).and_then(Value::as_object).cloned();
        let a = after.as_deref().and_then(|v| v.get(field)).and_then(Value::as_object).cloned();
        let redact = |own: &Map<String, Value>, other: Option<&Map<String, Value>>, tag: &str| -> Value {
            Value::Object(
                own.iter()
                    .map(|(k, v)| {
                        let same = other.and_then(|o| o.get(k)) == Some(v);
                        let text = if same { "<redacted>".to_string() } else { format!("<redacted: {tag}>") };
                        (k.clone(), Value::String(text))
                    })
                    .collect(),
            )
        };
        let new_b = b.as_ref().map(|m| redact(m, a.as_ref(), "before"));
        let new_a = a.as_ref().map(|m| redact(m, b.as_ref(), "after"));
        if let (Some(v), Some(r)) = (before.as_deref_mut(), new_b) {
            v[field] = r;
        }
        if let (Some(v), Some(r)) = (after.as_deref_mut(), new_a) {
            v[field] = r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_server_fields() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "uid": "1",
            "resourceVersion": "5", "managedFields": [], "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "data": {"k": "v"}, "status": {}});
        assert_eq!(
            normalize(&live),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn redacts_secret_values_but_shows_which_changed() {
        let mut before = json!({"kind": "Secret", "data": {"same": "c2VjcmV0", "changed": "b2xk"}});
        let mut after = json!({"kind": "Secret", "data": {"same": "c2VjcmV0", "changed": "bmV3"}});
        redact_pair(Some(&mut before), Some(&mut after));
        assert_eq!(before["data"], json!({"same": "<redacted>", "changed": "<redacted: before>"}));
        assert_eq!(after["data"], json!({"same": "<redacted>", "changed": "<redacted: after>"}));
        assert!(!after.to_string().contains("bmV3"));
    }
}
