//! Layering rules for environment files: maps deep-merge, lists replace, `null` removes.

use crate::yaml::Value;

/// Merges `overlay` into `base` by the layering rules.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                } else if let Some(existing) = b.get_mut(&k) {
                    merge(existing, v);
                } else {
                    b.insert(k, without_nulls(v));
                }
            }
        }
        (b, o) => *b = without_nulls(o),
    }
}

/// A subtree that replaces or adds to the base carries no `null` keys: `null` means "absent".
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn v(s: &str) -> Value {
        yaml::from_str(s).unwrap()
    }

    #[test]
    fn maps_deep_merge_lists_replace_null_removes() {
        let mut base = v("a: {b: 1, c: 2}\nlist: [1, 2, 3]\ngone: {x: 1}\n");
        merge(&mut base, v("a: {c: 3, d: 4}\nlist: [9]\ngone: null\n"));
        assert_eq!(base, v("a: {b: 1, c: 3, d: 4}\nlist: [9]\n"));
    }

    #[test]
    fn nulls_inside_new_subtrees_mean_absent() {
        let mut base = v("a: 1\n");
        merge(&mut base, v("b: {c: null, d: 2}\n"));
        assert_eq!(base, v("a: 1\nb: {d: 2}\n"));
    }
}
