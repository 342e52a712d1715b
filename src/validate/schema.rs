//! Structural OpenAPI v3 schemas of CustomResourceDefinitions, compiled once and checked against
//! objects with the API server's semantics (pruning of unknown fields, nullable, defaults,
//! int-or-string, embedded resources, preserve-unknown-fields).
//!
//! `x-kubernetes-validations` (CEL rules) are not evaluated: that needs a CEL interpreter with
//! the Kubernetes extension libraries, and a partial one would report false problems. The API
//! server still enforces them at apply time.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use regex::Regex;
use serde_json::{Map, Value};

use super::{child_index, child_key, describe, Problem};

/// A schema that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A `pattern` that is not a valid regular expression.
    #[error("at {path}: invalid pattern {pattern:?}")]
    Pattern {
        /// Schema path of the offending node, like `.properties.spec.properties.name`.
        path: String,
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },
    /// A `type` that OpenAPI v3 does not define.
    #[error("at {path}: unknown type {ty:?} (valid: object, array, string, integer, number, boolean)")]
    Type {
        /// Schema path of the offending node.
        path: String,
        /// The type as written.
        ty: String,
    },
    /// `items` given as a list, which structural schemas forbid.
    #[error("at {path}: `items` must be a single schema, not a list")]
    ItemsList {
        /// Schema path of the offending node.
        path: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            Type::Object => value.is_object(),
            Type::Array => value.is_array(),
            Type::String => value.is_string(),
            Type::Integer => is_integer(value),
            Type::Number => value.is_number(),
            Type::Boolean => value.is_boolean(),
        }
    }
}

/// JSON decoders turn `2.0` into a float; the OpenAPI validator the API server uses still counts
/// a float without a fractional part as an integer.
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Int32,
    Int64,
    DateTime,
}

#[derive(Debug)]
struct Bound {
    value: f64,
    exclusive: bool,
}

#[derive(Debug)]
enum Additional {
    /// No `additionalProperties`: keys outside `properties` are pruned by the server.
    Pruned,
    /// `additionalProperties: true`.
    Any,
    /// `additionalProperties: false`, which structural schemas forbid but which is unambiguous.
    Forbidden,
    Schema(Box<Schema>),
}

/// How server-side apply merges a list (`x-kubernetes-list-type`, atomic when unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole.
    Atomic,
    /// Items merged by value.
    Set,
    /// Items merged by these key fields.
    Map(Vec<String>),
}

/// One compiled schema node.
#[derive(Debug)]
pub struct Schema {
    ty: Option<Type>,
    nullable: bool,
    has_default: bool,
    enum_values: Vec<Value>,
    format: Option<Format>,
    pattern: Option<Regex>,
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    multiple_of: Option<f64>,
    min_length: Option<i64>,
    max_length: Option<i64>,
    min_items: Option<i64>,
    max_items: Option<i64>,
    min_properties: Option<i64>,
    max_properties: Option<i64>,
    properties: BTreeMap<String, Schema>,
    required: Vec<String>,
    items: Option<Box<Schema>>,
    additional: Additional,
    preserve_unknown: bool,
    int_or_string: bool,
    embedded_resource: bool,
    list_type: ListType,
    all_of: Vec<Schema>,
    any_of: Vec<Schema>,
    one_of: Vec<Schema>,
    not: Option<Box<Schema>>,
}

/// Compiles schemas, sharing one compiled regex per distinct pattern: the upstream CRDs repeat
/// the same few dozen patterns of the Pod spec hundreds of times.
#[derive(Default)]
pub struct Compiler {
    patterns: HashMap<String, Regex>,
}

impl Compiler {
    /// Compiles `props`; `path` names the node in errors.
    pub fn compile(&mut self, props: &JSONSchemaProps, path: &str) -> Result<Schema, SchemaError> {
        let ty = match props.type_.as_deref() {
            None | Some("") => None,
            Some("object") => Some(Type::Object),
            Some("array") => Some(Type::Array),
            Some("string") => Some(Type::String),
            Some("integer") => Some(Type::Integer),
            Some("number") => Some(Type::Number),
            Some("boolean") => Some(Type::Boolean),
            Some(other) => return Err(SchemaError::Type { path: path.to_string(), ty: other.to_string() }),
        };
        let format = match props.format.as_deref() {
            Some("int32") => Some(Format::Int32),
            Some("int64") => Some(Format::Int64),
            Some("date-time") => Some(Format::DateTime),
            // The API server checks a few more string formats (uri, uuid, ...) that these CRDs
            // do not use; unknown formats are ignored there as well.
            _ => None,
        };
        let pattern = match &props.pattern {
            None => None,
            Some(p) => Some(self.regex(p, path)?),
        };
        let mut properties = BTreeMap::new();
        for (name, sub) in props.properties.iter().flatten() {
            properties.insert(name.clone(), self.compile(sub, &format!("{path}.properties.{name}"))?);
        }
        let items = match &props.items {
            None => None,
            Some(JSONSchemaPropsOrArray::Schema(s)) => {
                Some(Box::new(self.compile(s, &format!("{path}.items"))?))
            }
            Some(JSONSchemaPropsOrArray::Schemas(_)) => {
                return Err(SchemaError::ItemsList { path: path.to_string() })
            }
        };
        let additional = match &props.additional_properties {
            None => Additional::Pruned,
            Some(JSONSchemaPropsOrBool::Bool(true)) => Additional::Any,
            Some(JSONSchemaPropsOrBool::Bool(false)) => Additional::Forbidden,
            Some(JSONSchemaPropsOrBool::Schema(s)) => {
                Additional::Schema(Box::new(self.compile(s, &format!("{path}.additionalProperties"))?))
            }
        };
        let list_type = match props.x_kubernetes_list_type.as_deref() {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(props.x_kubernetes_list_map_keys.clone().unwrap_or_default()),
            _ => ListType::Atomic,
        };
        let mut junction = |list: &Option<Vec<JSONSchemaProps>>, name: &str| {
            list.iter()
                .flatten()
                .enumerate()
                .map(|(i, s)| self.compile(s, &format!("{path}.{name}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        let all_of = junction(&props.all_of, "allOf")?;
        let any_of = junction(&props.any_of, "anyOf")?;
        let one_of = junction(&props.one_of, "oneOf")?;
        let not = match &props.not {
            None => None,
            Some(s) => Some(Box::new(self.compile(s, &format!("{path}.not"))?)),
        };
        Ok(Schema {
            ty,
            nullable: props.nullable == Some(true),
            has_default: props.default.is_some(),
            enum_values: props.enum_.iter().flatten().map(|j| j.0.clone()).collect(),
            format,
            pattern,
            minimum: props
                .minimum
                .map(|value| Bound { value, exclusive: props.exclusive_minimum == Some(true) }),
            maximum: props
                .maximum
                .map(|value| Bound { value, exclusive: props.exclusive_maximum == Some(true) }),
            multiple_of: props.multiple_of,
            min_length: props.min_length,
            max_length: props.max_length,
            min_items: props.min_items,
            max_items: props.max_items,
            min_properties: props.min_properties,
            max_properties: props.max_properties,
            properties,
            required: props.required.clone().unwrap_or_default(),
            items,
            additional,
            preserve_unknown: props.x_kubernetes_preserve_unknown_fields == Some(true),
            int_or_string: props.x_kubernetes_int_or_string == Some(true),
            embedded_resource: props.x_kubernetes_embedded_resource == Some(true),
            list_type,
            all_of,
            any_of,
            one_of,
            not,
        })
    }

    fn regex(&mut self, pattern: &str, path: &str) -> Result<Regex, SchemaError> {
        if let Some(re) = self.patterns.get(pattern) {
            return Ok(re.clone());
        }
        // Kubernetes uses Go's RE2, unanchored like `is_match`; the regex crate has the same
        // syntax and guarantees for everything CRD patterns use.
        let re = Regex::new(pattern).map_err(|source| SchemaError::Pattern {
            path: path.to_string(),
            pattern: pattern.to_string(),
            source,
        })?;
        self.patterns.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

/// Whether unknown fields are reported: yes in the structural schema, no inside `allOf`, `anyOf`,
/// `oneOf` and `not`, whose branches only add value constraints and never declare fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Structural,
    ValueOnly,
}

/// Fields every object of a resource carries whether or not its schema lists them.
const RESOURCE_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// What server-side apply needs to know of a node: its list type, whether it is a map, and
/// whether its values are certain to be stored as written (the engine's no-op proof).
impl Schema {
    /// The schema of field `name` of this object node (a declared property, or the value
    /// schema of a map).
    pub fn field(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name).or(match &self.additional {
            Additional::Schema(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    /// The schema of this list node's items.
    pub fn item(&self) -> Option<&Schema> {
        self.items.as_deref()
    }

    /// How server-side apply merges this list node.
    pub fn list_type(&self) -> &ListType {
        &self.list_type
    }

    /// Whether this node is a map (`additionalProperties` with a schema) rather than a struct.
    pub fn is_map(&self) -> bool {
        matches!(self.additional, Additional::Schema(_))
    }

    /// Whether this node takes an integer or a string (`x-kubernetes-int-or-string`).
    pub fn is_int_or_string(&self) -> bool {
        self.int_or_string
    }

    /// Whether this node keeps fields its schema does not declare.
    pub fn preserves_unknown(&self) -> bool {
        self.preserve_unknown
    }

    /// Whether this node has a `default` the server fills in when it is missing.
    pub fn has_default(&self) -> bool {
        self.has_default
    }
}

impl Schema {
    /// Checks a whole custom resource. apiVersion and kind have already selected this schema,
    /// and metadata is checked only for being an object: the API server validates it as
    /// ObjectMeta, whatever the CRD says.
    pub fn check_resource(&self, obj: &Value, out: &mut Vec<Problem>) {
        let Some(map) = obj.as_object() else {
            out.push(Problem::new("", format!("must be an object, got {}", describe(obj))));
            return;
        };
        self.check_object(map, "", Mode::Structural, true, out);
    }

    fn check(&self, value: &Value, path: &str, mode: Mode, out: &mut Vec<Problem>) {
        if value.is_null() {
            if !self.nullable {
                out.push(Problem::new(path, format!("must be {}, got null", self.expected())));
            }
            return;
        }
        let type_ok = match self.ty {
            Some(ty) => ty.matches(value) || (self.int_or_string && (is_integer(value) || value.is_string())),
            None => !self.int_or_string || is_integer(value) || value.is_string(),
        };
        if !type_ok {
            out.push(Problem::new(path, format!("must be {}, got {}", self.expected(), describe(value))));
            return;
        }
        if !self.enum_values.is_empty() && !self.enum_values.iter().any(|e| json_equal(e, value)) {
            let allowed: Vec<String> = self.enum_values.iter().map(Value::to_string).collect();
            out.push(Problem::new(
                path,
                format!("unsupported value {value}; supported values: {}", allowed.join(", ")),
            ));
        }
        match value {
            Value::String(s) => self.check_string(s, path, out),
            Value::Number(_) => self.check_number(value, path, out),
            Value::Array(items) => self.check_array(items, path, mode, out),
            Value::Object(map) => self.check_object(map, path, mode, false, out),
            Value::Bool(_) | Value::Null => {}
        }
        self.check_junctions(value, path, out);
    }

    /// Whether the server drops `value` (or replaces it by the default) before validating it:
    /// true for a null where this schema is not nullable.
    fn prunes(&self, value: &Value) -> bool {
        value.is_null() && !self.nullable
    }

    fn expected(&self) -> String {
        match (self.ty, self.int_or_string) {
            (_, true) => "an integer or a string".to_string(),
            (Some(ty), false) => format!("of type {}", ty.name()),
            (None, false) => "a value".to_string(),
        }
    }

    fn check_string(&self, s: &str, path: &str, out: &mut Vec<Problem>) {
        // Go's validator counts runes, not bytes.
        let len = s.chars().count() as i64;
        if let Some(min) = self.min_length.filter(|&min| len < min) {
            out.push(Problem::new(path, format!("must be at least {min} characters long, got {len}")));
        }
        if let Some(max) = self.max_length.filter(|&max| len > max) {
            out.push(Problem::new(path, format!("must be at most {max} characters long, got {len}")));
        }
        if let Some(re) = self.pattern.as_ref().filter(|re| !re.is_match(s)) {
            out.push(Problem::new(path, format!("{s:?} does not match pattern {:?}", re.as_str())));
        }
        if let Some(Format::DateTime) = self.format {
            if !date_time().is_match(s) {
                out.push(Problem::new(
                    path,
                    format!("{s:?} is not an RFC 3339 date-time like 2025-01-31T12:00:00Z"),
                ));
            }
        }
    }

    fn check_number(&self, value: &Value, path: &str, out: &mut Vec<Problem>) {
        let Some(x) = value.as_f64() else { return };
        if let Some(b) = &self.minimum {
            if x < b.value || (b.exclusive && x == b.value) {
                let op = if b.exclusive { "greater than" } else { "greater than or equal to" };
                out.push(Problem::new(path, format!("must be {op} {}, got {value}", b.value)));
            }
        }
        if let Some(b) = &self.maximum {
            if x > b.value || (b.exclusive && x == b.value) {
                let op = if b.exclusive { "less than" } else { "less than or equal to" };
                out.push(Problem::new(path, format!("must be {op} {}, got {value}", b.value)));
            }
        }
        if let Some(m) = self.multiple_of.filter(|&m| m != 0.0 && (x / m).fract() != 0.0) {
            out.push(Problem::new(path, format!("must be a multiple of {m}, got {value}")));
        }
        let range = match self.format {
            Some(Format::Int32) => Some((i32::MIN as f64, i32::MAX as f64, "int32")),
            Some(Format::Int64) => Some((i64::MIN as f64, i64::MAX as f64, "int64")),
            _ => None,
        };
        let fits = |lo: f64, hi: f64| match value.as_i64() {
            Some(i) => (lo..=hi).contains(&(i as f64)),
            // Above i64::MAX as u64, or a float.
            None => value.as_u64().is_none() && (lo..=hi).contains(&x),
        };
        if let Some((lo, hi, name)) = range.filter(|&(lo, hi, _)| !fits(lo, hi)) {
            out.push(Problem::new(path, format!("{value} does not fit in {name} ({lo}..={hi})")));
        }
    }

    fn check_array(&self, items: &[Value], path: &str, mode: Mode, out: &mut Vec<Problem>) {
        let len = items.len() as i64;
        if let Some(min) = self.min_items.filter(|&min| len < min) {
            out.push(Problem::new(path, format!("must have at least {min} items, got {len}")));
        }
        if let Some(max) = self.max_items.filter(|&max| len > max) {
            out.push(Problem::new(path, format!("must have at most {max} items, got {len}")));
        }
        if let Some(item_schema) = &self.items {
            for (i, item) in items.iter().enumerate() {
                item_schema.check(item, &child_index(path, i), mode, out);
            }
        }
        // The API server rejects duplicates in set and map lists ("Duplicate value"); server-side
        // apply depends on it. Lists are short, so pairwise comparison is fine.
        match &self.list_type {
            ListType::Atomic => {}
            ListType::Set => {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].iter().any(|earlier| json_equal(earlier, item)) {
                        out.push(Problem::new(&child_index(path, i), format!("duplicate value {item}")));
                    }
                }
            }
            ListType::Map(keys) => {
                let key_of = |item: &Value| -> Vec<Value> {
                    keys.iter().map(|k| item.get(k).cloned().unwrap_or(Value::Null)).collect()
                };
                for (i, item) in items.iter().enumerate() {
                    let key = key_of(item);
                    if items[..i].iter().any(|earlier| key_of(earlier) == key) {
                        let shown: Vec<String> =
                            keys.iter().zip(&key).map(|(k, v)| format!("{k}={v}")).collect();
                        out.push(Problem::new(
                            &child_index(path, i),
                            format!("duplicate entry with key {}", shown.join(", ")),
                        ));
                    }
                }
            }
        }
    }

    fn check_object(
        &self,
        map: &Map<String, Value>,
        path: &str,
        mode: Mode,
        is_resource: bool,
        out: &mut Vec<Problem>,
    ) {
        let len = map.len() as i64;
        if let Some(min) = self.min_properties.filter(|&min| len < min) {
            out.push(Problem::new(path, format!("must have at least {min} fields, got {len}")));
        }
        if let Some(max) = self.max_properties.filter(|&max| len > max) {
            out.push(Problem::new(path, format!("must have at most {max} fields, got {len}")));
        }
        for name in &self.required {
            let present = match (map.get(name), self.properties.get(name)) {
                // The server defaults a missing field before validating it.
                (_, Some(prop)) if prop.has_default => true,
                (None, _) => false,
                // A null in a non-nullable field is pruned, so it is missing.
                (Some(Value::Null), Some(prop)) => prop.nullable,
                (Some(_), _) => true,
            };
            if !present {
                out.push(Problem::new(path, format!("missing required field {name:?}")));
            }
        }
        let implicit_resource_fields = is_resource || self.embedded_resource;
        for (key, value) in map {
            let child = child_key(path, key);
            if is_resource && key == "metadata" {
                if !value.is_object() {
                    out.push(Problem::new(
                        &child,
                        format!("must be of type object, got {}", describe(value)),
                    ));
                }
                continue;
            }
            if let Some(prop) = self.properties.get(key) {
                if !prop.prunes(value) {
                    prop.check(value, &child, mode, out);
                }
                continue;
            }
            if implicit_resource_fields && RESOURCE_FIELDS.contains(&key.as_str()) {
                let ok = if key == "metadata" { value.is_object() } else { value.is_string() };
                if !ok {
                    let ty = if key == "metadata" { "object" } else { "string" };
                    out.push(Problem::new(&child, format!("must be of type {ty}, got {}", describe(value))));
                }
                continue;
            }
            match &self.additional {
                Additional::Schema(schema) => {
                    if !schema.prunes(value) {
                        schema.check(value, &child, mode, out);
                    }
                }
                Additional::Any => {}
                // The server keeps unknown fields here and does not look inside them.
                _ if self.preserve_unknown => {}
                _ if mode == Mode::ValueOnly => {}
                Additional::Pruned | Additional::Forbidden => {
                    out.push(Problem::new(&child, format!("unknown field {key:?}")));
                }
            }
        }
    }

    fn check_junctions(&self, value: &Value, path: &str, out: &mut Vec<Problem>) {
        let run = |schema: &Schema| {
            let mut found = Vec::new();
            schema.check(value, path, Mode::ValueOnly, &mut found);
            found
        };
        for schema in &self.all_of {
            out.extend(run(schema));
        }
        if !self.any_of.is_empty() {
            let failures: Vec<Vec<Problem>> = self.any_of.iter().map(run).collect();
            if failures.iter().all(|f| !f.is_empty()) {
                let reasons: Vec<String> = failures.iter().map(|f| f[0].message.clone()).collect();
                out.push(Problem::new(
                    path,
                    format!("must match one of the anyOf schemas: {}", reasons.join("; or ")),
                ));
            }
        }
        if !self.one_of.is_empty() {
            let matching = self.one_of.iter().filter(|s| run(s).is_empty()).count();
            if matching != 1 {
                out.push(Problem::new(
                    path,
                    format!("must match exactly one of the oneOf schemas, matches {matching}"),
                ));
            }
        }
        if let Some(schema) = &self.not {
            if run(schema).is_empty() {
                out.push(Problem::new(path, "must not match the schema under \"not\""));
            }
        }
    }
}

/// JSON equality where `1` and `1.0` are the same number, as they are once the API server has
/// decoded them.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// RFC 3339, loosely: the shape is checked, not whether the day exists.
fn date_time() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
            .expect("a valid literal regex")
    })
}
