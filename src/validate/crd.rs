//! CustomResourceDefinitions loaded from files or from the rendered set, indexed by group and
//! kind, and the validation of custom resources against their schemas.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::schema::{Compiler, Schema, SchemaError};
use super::Problem;
use crate::yaml;

/// A CRD file or definition that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A file or directory under `--crds` cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{}: invalid YAML", located(path, source.pos))]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The syntax error, with its position.
        #[source]
        source: yaml::SyntaxError,
    },
    /// A CustomResourceDefinition does not have the shape of `apiextensions.k8s.io/v1`.
    #[error("{}CustomResourceDefinition {crd:?}: {at}: {message}", origin(file))]
    Malformed {
        /// The file it came from; `None` for one of the rendered set.
        file: Option<PathBuf>,
        /// `metadata.name`, or empty when that is what is missing.
        crd: String,
        /// Path of the offending field, like `.spec.versions[0].served`.
        at: String,
        /// What is wrong there.
        message: String,
    },
    /// A CRD of an apiextensions version the server no longer serves.
    #[error(
        "{}CustomResourceDefinition {crd:?} is {api_version}, which Kubernetes no longer serves; \
         use the apiextensions.k8s.io/v1 CRD of the pinned release",
        origin(file)
    )]
    UnsupportedApiVersion {
        /// The file it came from; `None` for one of the rendered set.
        file: Option<PathBuf>,
        /// `metadata.name`.
        crd: String,
        /// The apiVersion as written.
        api_version: String,
    },
    /// A version without `schema.openAPIV3Schema`, which `apiextensions.k8s.io/v1` requires.
    #[error(
        "{}CustomResourceDefinition {crd:?}: version {version:?} has no schema.openAPIV3Schema",
        origin(file)
    )]
    MissingSchema {
        /// The file it came from; `None` for one of the rendered set.
        file: Option<PathBuf>,
        /// `metadata.name`.
        crd: String,
        /// The version's name.
        version: String,
    },
    /// A schema that cannot be compiled (an invalid pattern, an unknown type).
    #[error("{}CustomResourceDefinition {crd:?}, version {version:?}: invalid schema", origin(file))]
    Schema {
        /// The file it came from; `None` for one of the rendered set.
        file: Option<PathBuf>,
        /// `metadata.name`.
        crd: String,
        /// The version's name.
        version: String,
        /// What is wrong, at which schema path.
        #[source]
        source: Box<SchemaError>,
    },
    /// Two files define the same group and kind differently, typically two releases of one
    /// add-on in the same directory; picking one would validate against the wrong release.
    #[error(
        "{kind}.{group} is defined differently in {} and {}; give --crds only the CRDs of the pinned versions",
        first.display(),
        second.display()
    )]
    Conflict {
        /// The API group.
        group: String,
        /// The kind.
        kind: String,
        /// The file loaded first.
        first: PathBuf,
        /// The file that disagrees with it.
        second: PathBuf,
    },
}

fn origin(file: &Option<PathBuf>) -> String {
    file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default()
}

fn located(path: &Path, pos: Option<yaml::Pos>) -> String {
    match pos {
        Some(p) => format!("{}:{}:{}", path.display(), p.line, p.column),
        None => path.display().to_string(),
    }
}

/// CRD schemas indexed by (group, version, kind).
#[derive(Debug, Default)]
pub struct CrdSchemas {
    by_group_kind: HashMap<(String, String), Crd>,
}

#[derive(Debug)]
struct Crd {
    name: String,
    file: Option<PathBuf>,
    /// Hash of the CRD's `spec`, to tell a harmless duplicate from a conflicting one without
    /// keeping megabytes of JSON around.
    fingerprint: u64,
    versions: Vec<Version>,
}

#[derive(Debug)]
struct Version {
    name: String,
    served: bool,
    schema: Schema,
}

impl CrdSchemas {
    /// An empty set: every custom resource is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every CRD in every `*.yaml`/`*.yml` file of `dir` (recursively); non-CRD documents
    /// (kustomizations, examples, RBAC) are ignored. Files are read in path order, and two files
    /// defining the same group and kind differently are an error.
    pub fn load_dir(dir: &Path) -> Result<Self, CrdError> {
        let mut files = Vec::new();
        collect_yaml_files(dir, &mut files)?;
        files.sort();
        let mut schemas = Self::new();
        let mut compiler = Compiler::default();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|source| CrdError::Read { path: file.clone(), source })?;
            let docs =
                yaml::parse_stream(&text).map_err(|source| CrdError::Yaml { path: file.clone(), source })?;
            for doc in &docs {
                for crd in crd_documents(doc) {
                    // Only YAML without a JSON equivalent fails here (non-string keys, tags).
                    let crd = serde_json::to_value(crd).map_err(|e| CrdError::Malformed {
                        file: Some(file.clone()),
                        crd: String::new(),
                        at: ".".to_string(),
                        message: e.to_string(),
                    })?;
                    schemas.insert(&crd, Some(&file), &mut compiler)?;
                }
            }
        }
        Ok(schemas)
    }

    /// Adds a CRD that is part of the rendered set itself (add-ons bring their own CRDs). It
    /// replaces any loaded definition of the same group and kind, because it is the one the
    /// cluster will have.
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), CrdError> {
        let (key, entry) = compile_crd(crd, None, &mut Compiler::default())?;
        self.by_group_kind.insert(key, entry);
        Ok(())
    }

    /// Adds the CRDs of another set (from another `--crds` directory); later ones win.
    pub fn extend(&mut self, other: CrdSchemas) {
        self.by_group_kind.extend(other.by_group_kind);
    }

    /// Whether a CRD for this apiVersion's group and this kind is loaded, that is whether
    /// [`CrdSchemas::validate`] returns `Some`.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.lookup(api_version, kind).is_some()
    }

    /// Number of loaded CRDs.
    pub fn len(&self) -> usize {
        self.by_group_kind.len()
    }

    /// Whether no CRD is loaded.
    pub fn is_empty(&self) -> bool {
        self.by_group_kind.is_empty()
    }

    /// Validates a custom resource: `Some(problems)` if a CRD for its apiVersion's group and its
    /// kind is known, `None` otherwise. A version the CRD does not define or does not serve is a
    /// problem at `.apiVersion`.
    pub fn validate(&self, obj: &Value) -> Option<Vec<Problem>> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let (crd, version) = self.lookup(api_version, kind)?;
        let Some(v) = crd.versions.iter().find(|v| v.name == version) else {
            let defined: Vec<&str> = crd.versions.iter().map(|v| v.name.as_str()).collect();
            return Some(vec![Problem::new(
                ".apiVersion",
                format!(
                    "version {version:?} is not defined by CustomResourceDefinition {} (defined: {})",
                    crd.name,
                    defined.join(", ")
                ),
            )]);
        };
        if !v.served {
            return Some(vec![Problem::new(
                ".apiVersion",
                format!("version {version:?} of CustomResourceDefinition {} is not served", crd.name),
            )]);
        }
        let mut problems = Vec::new();
        v.schema.check_resource(obj, &mut problems);
        Some(problems)
    }

    /// The structural schema of a custom resource's apiVersion and kind, when its CRD is
    /// loaded and serves that version.
    pub fn schema(&self, api_version: &str, kind: &str) -> Option<&Schema> {
        let (crd, version) = self.lookup(api_version, kind)?;
        crd.versions.iter().find(|v| v.name == version && v.served).map(|v| &v.schema)
    }

    fn lookup<'a>(&self, api_version: &'a str, kind: &str) -> Option<(&Crd, &'a str)> {
        // Custom resources always have a group; a bare `v1` is the core API.
        let (group, version) = api_version.split_once('/')?;
        let crd = self.by_group_kind.get(&(group.to_string(), kind.to_string()))?;
        Some((crd, version))
    }

    fn insert(&mut self, crd: &Value, file: Option<&Path>, compiler: &mut Compiler) -> Result<(), CrdError> {
        let (key, entry) = compile_crd(crd, file, compiler)?;
        match self.by_group_kind.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(entry);
            }
            Entry::Occupied(existing) if existing.get().fingerprint == entry.fingerprint => {}
            Entry::Occupied(existing) => {
                let ((group, kind), first) = (existing.key().clone(), existing.get().file.clone());
                return Err(CrdError::Conflict {
                    group,
                    kind,
                    first: first.unwrap_or_default(),
                    second: file.map(Path::to_path_buf).unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CrdError> {
    let read_err = |source| CrdError::Read { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The CRDs among one YAML document: itself, or the items of a `kind: List` (as `kubectl get -o
/// yaml` writes them). Other documents yield nothing.
fn crd_documents(doc: &yaml::Value) -> Vec<&yaml::Value> {
    match doc.get("kind").and_then(yaml::Value::as_str) {
        Some("CustomResourceDefinition") => vec![doc],
        Some("List") => doc
            .get("items")
            .and_then(yaml::Value::as_sequence)
            .into_iter()
            .flatten()
            .flat_map(crd_documents)
            .collect(),
        _ => Vec::new(),
    }
}

fn compile_crd(
    crd: &Value,
    file: Option<&Path>,
    compiler: &mut Compiler,
) -> Result<((String, String), Crd), CrdError> {
    let file_buf = file.map(Path::to_path_buf);
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = crd.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if api_version != "apiextensions.k8s.io/v1" {
        return Err(CrdError::UnsupportedApiVersion {
            file: file_buf,
            crd: name,
            api_version: api_version.to_string(),
        });
    }
    let parsed: CustomResourceDefinition =
        serde_path_to_error::deserialize(crd).map_err(|e| CrdError::Malformed {
            file: file_buf.clone(),
            crd: name.clone(),
            at: super::serde_path(e.path()),
            message: e.into_inner().to_string(),
        })?;
    let spec = &parsed.spec;
    let mut versions = Vec::new();
    for (i, v) in spec.versions.iter().enumerate() {
        let Some(props) = v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else {
            return Err(CrdError::MissingSchema { file: file_buf, crd: name, version: v.name.clone() });
        };
        let schema = compiler
            .compile(props, &format!(".spec.versions[{i}].schema.openAPIV3Schema"))
            .map_err(|source| CrdError::Schema {
                file: file_buf.clone(),
                crd: name.clone(),
                version: v.name.clone(),
                source: Box::new(source),
            })?;
        versions.push(Version { name: v.name.clone(), served: v.served, schema });
    }
    let mut hasher = DefaultHasher::new();
    crd.get("spec").map(Value::to_string).hash(&mut hasher);
    let entry = Crd { name, file: file_buf, fingerprint: hasher.finish(), versions };
    Ok(((spec.group.clone(), spec.names.kind.clone()), entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1beta1
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [size, mode]
              x-kubernetes-validations:
                - rule: self.size > 100
                  message: never evaluated here
              properties:
                size: {type: integer, format: int32, minimum: 1, maximum: 10}
                ratio: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 1}
                mode: {type: string, enum: [Fast, Slow]}
                name: {type: string, pattern: '^[a-z][a-z0-9-]*$', minLength: 2, maxLength: 8}
                port:
                  x-kubernetes-int-or-string: true
                  anyOf: [{type: integer}, {type: string}]
                tags:
                  type: array
                  maxItems: 3
                  items: {type: string}
                  x-kubernetes-list-type: set
                ports:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: {type: string}
                      port: {type: integer}
                labels:
                  type: object
                  maxProperties: 2
                  additionalProperties: {type: string}
                config: {type: object, x-kubernetes-preserve-unknown-fields: true}
                template:
                  type: object
                  x-kubernetes-embedded-resource: true
                  properties:
                    spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
                note: {type: string, nullable: true}
                replicas: {type: integer, default: 1}
                since: {type: string, format: date-time}
                source:
                  type: object
                  properties:
                    git: {type: string}
                    s3: {type: string}
                  oneOf:
                    - required: [git]
                    - required: [s3]
            status:
              type: object
              properties:
                ready: {type: boolean}
"#;

    fn json(text: &str) -> Value {
        let docs = yaml::parse_stream(text).expect("test YAML parses");
        serde_json::to_value(&docs[0]).expect("test YAML is JSON")
    }

    fn widgets() -> CrdSchemas {
        let mut schemas = CrdSchemas::new();
        schemas.add_crd(&json(WIDGET_CRD)).expect("the test CRD is valid");
        schemas
    }

    fn valid_widget() -> Value {
        json(
            r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: team-a, labels: {a: b}}
spec:
  size: 3
  ratio: 0.5
  mode: Fast
  name: gpu-a
  port: http
  tags: [a, b]
  ports: [{name: http, port: 80}, {name: grpc, port: 9000}]
  labels: {team: ml}
  config: {anything: {goes: [1, 2]}}
  template:
    apiVersion: v1
    kind: Pod
    metadata: {name: x}
    spec: {containers: []}
  note: null
  replicas: null
  since: "2025-01-31T12:00:00Z"
  source: {git: https://example.com/repo.git}
status: {ready: true}
"#,
        )
    }

    fn problems(schemas: &CrdSchemas, obj: &Value) -> Vec<String> {
        schemas.validate(obj).expect("a known kind").iter().map(ToString::to_string).collect()
    }

    fn with_spec(field: &str, value: Value) -> Value {
        let mut obj = valid_widget();
        obj["spec"][field] = value;
        obj
    }

    #[test]
    fn valid_object_has_no_problems_and_cel_rules_are_not_evaluated() {
        // The CEL rule `self.size > 100` would reject size 3; it is skipped, not evaluated.
        assert_eq!(problems(&widgets(), &valid_widget()), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_are_reported_where_the_server_would_prune_them() {
        let mut obj = with_spec("sizee", serde_json::json!(3));
        obj["spec"]["ports"][0]["protocol"] = serde_json::json!("TCP");
        obj["spec"]["template"]["extra"] = serde_json::json!(1);
        obj["spec"]["config"]["free"] = serde_json::json!(1);
        obj["spec"]["template"]["spec"]["free"] = serde_json::json!(1);
        obj["metadata"]["whatever"] = serde_json::json!(1);
        obj["extra"] = serde_json::json!({});
        assert_eq!(
            problems(&widgets(), &obj),
            [
                r#".spec.ports[0].protocol: unknown field "protocol""#,
                r#".spec.template.extra: unknown field "extra""#,
                r#".spec.sizee: unknown field "sizee""#,
                r#".extra: unknown field "extra""#,
            ]
        );
    }

    #[test]
    fn types_are_checked() {
        let s = widgets();
        assert_eq!(
            problems(&s, &with_spec("size", serde_json::json!("3"))),
            [r#".spec.size: must be of type integer, got string "3""#]
        );
        assert_eq!(
            problems(&s, &with_spec("size", serde_json::json!(2.5))),
            [".spec.size: must be of type integer, got number 2.5"]
        );
        assert_eq!(problems(&s, &with_spec("size", serde_json::json!(2.0))), Vec::<String>::new());
        assert_eq!(
            problems(&s, &with_spec("port", serde_json::json!(true))),
            [".spec.port: must be an integer or a string, got boolean true"]
        );
        assert_eq!(problems(&s, &with_spec("port", serde_json::json!(8080))), Vec::<String>::new());
        assert_eq!(
            problems(&s, &with_spec("labels", serde_json::json!({"team": 1}))),
            [".spec.labels.team: must be of type string, got number 1"]
        );
        assert_eq!(
            problems(&s, &with_spec("tags", serde_json::json!("a"))),
            [r#".spec.tags: must be of type array, got string "a""#]
        );
        let mut obj = valid_widget();
        obj["metadata"] = serde_json::json!("w");
        assert_eq!(problems(&s, &obj), [r#".metadata: must be of type object, got string "w""#]);
        let mut obj = valid_widget();
        obj["spec"]["template"]["kind"] = serde_json::json!(1);
        assert_eq!(problems(&s, &obj), [".spec.template.kind: must be of type string, got number 1"]);
    }

    #[test]
    fn required_fields_honour_nullable_and_defaults() {
        let s = widgets();
        let mut obj = valid_widget();
        obj["spec"].as_object_mut().unwrap().remove("size");
        obj["spec"]["mode"] = Value::Null;
        assert_eq!(
            problems(&s, &obj),
            [r#".spec: missing required field "size""#, r#".spec: missing required field "mode""#]
        );
        let mut obj = valid_widget();
        obj["spec"]["ports"][1].as_object_mut().unwrap().remove("name");
        assert_eq!(problems(&s, &obj), [r#".spec.ports[1]: missing required field "name""#]);
        assert_eq!(
            problems(&s, &with_spec("tags", serde_json::json!(["a", null]))),
            [".spec.tags[1]: must be of type string, got null"]
        );
    }

    #[test]
    fn value_constraints_are_checked() {
        let s = widgets();
        let cases = [
            (
                "mode",
                serde_json::json!("Medium"),
                r#".spec.mode: unsupported value "Medium"; supported values: "Fast", "Slow""#,
            ),
            ("size", serde_json::json!(0), ".spec.size: must be greater than or equal to 1, got 0"),
            ("size", serde_json::json!(11), ".spec.size: must be less than or equal to 10, got 11"),
            ("ratio", serde_json::json!(0), ".spec.ratio: must be greater than 0, got 0"),
            (
                "name",
                serde_json::json!("Gpu"),
                r#".spec.name: "Gpu" does not match pattern "^[a-z][a-z0-9-]*$""#,
            ),
            ("name", serde_json::json!("g"), ".spec.name: must be at least 2 characters long, got 1"),
            (
                "name",
                serde_json::json!("gpu-nodes-a"),
                ".spec.name: must be at most 8 characters long, got 11",
            ),
            ("tags", serde_json::json!(["a", "b", "c", "d"]), ".spec.tags: must have at most 3 items, got 4"),
            ("tags", serde_json::json!(["a", "a"]), r#".spec.tags[1]: duplicate value "a""#),
            (
                "ports",
                serde_json::json!([{"name": "a"}, {"name": "a", "port": 1}]),
                r#".spec.ports[1]: duplicate entry with key name="a""#,
            ),
            (
                "labels",
                serde_json::json!({"a": "1", "b": "2", "c": "3"}),
                ".spec.labels: must have at most 2 fields, got 3",
            ),
            (
                "since",
                serde_json::json!("yesterday"),
                r#".spec.since: "yesterday" is not an RFC 3339 date-time like 2025-01-31T12:00:00Z"#,
            ),
            (
                "source",
                serde_json::json!({"git": "g", "s3": "s"}),
                ".spec.source: must match exactly one of the oneOf schemas, matches 2",
            ),
            (
                "source",
                serde_json::json!({}),
                ".spec.source: must match exactly one of the oneOf schemas, matches 0",
            ),
        ];
        for (field, value, expected) in cases {
            assert_eq!(problems(&s, &with_spec(field, value)), [expected]);
        }
    }

    #[test]
    fn int32_format_bounds_integers() {
        let mut crd = json(WIDGET_CRD);
        // Lift the maximum so only the format can object.
        crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]
            .as_object_mut()
            .unwrap()
            .remove("maximum");
        let mut s = CrdSchemas::new();
        s.add_crd(&crd).unwrap();
        assert_eq!(
            problems(&s, &with_spec("size", serde_json::json!(3_000_000_000u64))),
            [".spec.size: 3000000000 does not fit in int32 (-2147483648..=2147483647)"]
        );
    }

    #[test]
    fn versions_are_matched_to_the_api_version() {
        let s = widgets();
        assert!(s.knows("example.com/v1", "Widget"));
        assert!(!s.knows("example.com/v1", "Gadget"));
        assert!(!s.knows("v1", "Widget"));
        let mut obj = valid_widget();
        obj["apiVersion"] = serde_json::json!("example.com/v1beta1");
        assert_eq!(
            problems(&s, &obj),
            [
                r#".apiVersion: version "v1beta1" of CustomResourceDefinition widgets.example.com is not served"#
            ]
        );
        obj["apiVersion"] = serde_json::json!("example.com/v2");
        assert_eq!(
            problems(&s, &obj),
            [
                r#".apiVersion: version "v2" is not defined by CustomResourceDefinition widgets.example.com (defined: v1beta1, v1)"#
            ]
        );
        assert!(s.validate(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_none());
    }

    #[test]
    fn broken_crds_are_errors_that_name_the_place() {
        let mut crd = json(WIDGET_CRD);
        crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["name"]
            ["pattern"] = serde_json::json!("([a-z]");
        let err = CrdSchemas::new().add_crd(&crd).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"CustomResourceDefinition "widgets.example.com", version "v1": invalid schema"#
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.starts_with(r#"at .spec.versions[1].schema.openAPIV3Schema.properties.spec.properties.name: invalid pattern "([a-z]""#),
            "{source}"
        );

        let mut crd = json(WIDGET_CRD);
        crd["spec"]["versions"][0]["served"] = serde_json::json!("yes");
        let err = CrdSchemas::new().add_crd(&crd).unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"CustomResourceDefinition "widgets.example.com": .spec.versions[0].served: invalid type"#
            ),
            "{err}"
        );

        let mut crd = json(WIDGET_CRD);
        crd["apiVersion"] = serde_json::json!("apiextensions.k8s.io/v1beta1");
        assert!(matches!(CrdSchemas::new().add_crd(&crd), Err(CrdError::UnsupportedApiVersion { .. })));
    }

    #[test]
    fn load_dir_reads_nested_files_ignores_other_documents_and_rejects_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("addon")).unwrap();
        let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        std::fs::write(dir.path().join("addon/crds.yaml"), format!("{other}---\n{WIDGET_CRD}")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let loaded = CrdSchemas::load_dir(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert!(loaded.knows("example.com/v1", "Widget"));

        // The same definition twice is harmless; a different one is a conflict.
        std::fs::write(dir.path().join("same.yml"), WIDGET_CRD).unwrap();
        assert_eq!(CrdSchemas::load_dir(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join("zz-other.yaml"), WIDGET_CRD.replace("maxItems: 3", "maxItems: 4"))
            .unwrap();
        let err = CrdSchemas::load_dir(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Widget.example.com is defined differently in {} and {}; give --crds only the CRDs of the pinned versions",
                dir.path().join("addon/crds.yaml").display(),
                dir.path().join("zz-other.yaml").display()
            )
        );
    }

    #[test]
    fn load_dir_reports_yaml_errors_with_position_and_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, "kind: CustomResourceDefinition\nspec: [1, 2\n").unwrap();
        let err = CrdSchemas::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, CrdError::Yaml { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("{}:", file.display())), "{err}");
        assert!(err.to_string().ends_with(": invalid YAML"), "{err}");

        let missing = dir.path().join("nope");
        let err = CrdSchemas::load_dir(&missing).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read {}", missing.display()));
    }
}
