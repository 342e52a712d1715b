//! Validation of rendered Kubernetes objects: built-in kinds against the k8s-openapi types,
//! custom resources against the OpenAPI v3 schemas of their CustomResourceDefinitions.
//!
//! Both checks report [`Problem`]s at JSON paths such as
//! `.spec.template.spec.containers[0].imagePullPolicy`. Map keys are joined with `.` exactly as
//! written (no quoting), so stripping the leading `.` gives the path format of
//! [`crate::yaml::PosIndex`] and a problem can be pointed at a line of the source document.

mod core;
mod crd;
mod schema;
#[cfg(test)]
mod upstream_tests;

use std::fmt;

pub use self::core::{check_core, is_core_kind};
pub use self::crd::{CrdError, CrdSchemas};
pub use self::schema::{ListType, Schema};

/// A problem found in one object, at a JSON path like
/// `.spec.template.spec.containers[0].imagePullPolicy`.
///
/// The path of an unknown or badly typed field is the field itself; the path of a missing
/// required field is the object that lacks it. The object itself is `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the object, starting with `.`.
    pub path: String,
    /// What is wrong, and where it helps, what would be valid.
    pub message: String,
}

impl Problem {
    fn new(path: &str, message: impl Into<String>) -> Self {
        let path = if path.is_empty() { ".".to_string() } else { path.to_string() };
        Problem { path, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The path of `key` inside the object at `parent` (`""` is the root).
fn child_key(parent: &str, key: &str) -> String {
    format!("{parent}.{key}")
}

/// The path of item `index` inside the array at `parent`.
fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Short description of a JSON value for messages: its type, and the value itself when short.
fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("string {s:?}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// A serde_path_to_error path in the format of [`Problem::path`].
fn serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out = child_index(&out, *index),
            Segment::Map { key } => out = child_key(&out, key),
            Segment::Enum { variant } => out = child_key(&out, variant),
            Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}
