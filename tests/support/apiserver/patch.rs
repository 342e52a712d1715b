//! The non-apply patch formats: JSON merge patch (RFC 7386), which also stands in for
//! strategic merge patch, and JSON patch (RFC 6902).

use serde_json::Value;

/// RFC 7386: objects merge key by key, `null` deletes, anything else replaces.
///
/// Strategic merge patch is served with these semantics too. The difference (lists with a
/// patch merge key are merged by key instead of replaced, plus `$patch` directives) matters
/// only for clients that send partial lists; trainstack writes with server-side apply and
/// kube-rs never emits directives on its own.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { unreachable!() };
    for (k, v) in p {
        if v.is_null() {
            t.shift_remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(pointer: &str) -> Result<(String, String), String> {
    let idx = pointer.rfind('/').ok_or_else(|| format!("invalid JSON pointer {pointer:?}"))?;
    Ok((pointer[..idx].to_string(), unescape(&pointer[idx + 1..])))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(pointer)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse().map_err(|_| format!("bad index {last:?}"))?
            };
            if idx > a.len() {
                return Err(format!("index {idx} out of bounds"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {pointer:?}")),
    }
}

fn take(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(pointer)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.shift_remove(&last).ok_or_else(|| format!("doc is missing key: {pointer:?}"))
        }
        Some(Value::Array(a)) => {
            let idx: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if idx >= a.len() {
                return Err(format!("index {idx} out of bounds"));
            }
            Ok(a.remove(idx))
        }
        _ => Err(format!("doc is missing path: {pointer:?}")),
    }
}

/// Applies an RFC 6902 operation list; on any failure the document is left as it was.
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be a list of operations")?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without a path")?;
        match op["op"].as_str() {
            Some("add") => add(&mut work, path, op["value"].clone())?,
            Some("remove") => {
                take(&mut work, path)?;
            }
            Some("replace") => {
                take(&mut work, path)?;
                add(&mut work, path, op["value"].clone())?;
            }
            Some("move") => {
                let from = op["from"].as_str().ok_or("move without from")?;
                let v = take(&mut work, from)?;
                add(&mut work, path, v)?;
            }
            Some("copy") => {
                let from = op["from"].as_str().ok_or("copy without from")?;
                let v =
                    work.pointer(from).cloned().ok_or_else(|| format!("doc is missing path: {from:?}"))?;
                add(&mut work, path, v)?;
            }
            Some("test") => {
                if work.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected kind of patch operation: {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patch() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/l/-", "value": 4},
                {"op": "replace", "path": "/a/c", "value": 5},
                {"op": "test", "path": "/a/d", "value": 3}
            ]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": {"d": 3, "c": 5}, "l": [3, 4]}));
        assert!(json_patch(&mut doc, &json!([{"op": "test", "path": "/a/d", "value": 9}])).is_err());
    }
}
