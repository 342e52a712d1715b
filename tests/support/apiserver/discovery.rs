//! The resource catalogue (built-in kinds plus established CRDs) and the discovery documents
//! built from it, in both the legacy per-group format and aggregated discovery v2.

use std::sync::Arc;

use serde_json::{json, Value};

/// Verbs the real server lists for an ordinary namespaced or cluster-scoped collection.
const STANDARD_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Namespaces cannot be deleted as a collection on a real server.
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];

/// One servable resource: where it lives in the URL space and what discovery says about it.
#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Whether `<plural>/status` exists; when it does, writes to the main resource keep the
    /// stored status and writes to `/status` keep everything else.
    pub status_subresource: bool,
    /// `pods/log` is the only non-status subresource the double serves.
    pub log_subresource: bool,
    /// The CRD's `openAPIV3Schema` for custom resources, consulted for list types during
    /// server-side apply. Shared because Trainer's CRD schemas approach a megabyte.
    pub schema: Option<Arc<Value>>,
    /// The warning every request to a deprecated version gets (a CRD version marked
    /// `deprecated: true`).
    pub deprecation: Option<String>,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The `resource.group` spelling used in real error messages (`deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn is_custom(&self) -> bool {
        self.schema.is_some() || !is_builtin_group(&self.group)
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all_category: bool,
}

// A table-row constructor: one positional argument per column keeps the table readable.
#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all_category: bool,
) -> Builtin {
    Builtin { group, version, kind, plural, namespaced, short, status, all_category }
}

/// The built-in kinds a trainstack environment touches, with the short names, scopes and status
/// subresources a 1.33 kube-apiserver reports.
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false, &["ns"], true, false),
    b("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false, false),
    b("", "v1", "ConfigMap", "configmaps", true, &["cm"], false, false),
    b("", "v1", "Secret", "secrets", true, &[], false, false),
    b("", "v1", "Service", "services", true, &["svc"], true, true),
    b("", "v1", "Pod", "pods", true, &["po"], true, true),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], true, false),
    b("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"], true, false),
    b("", "v1", "LimitRange", "limitranges", true, &["limits"], false, false),
    b("", "v1", "Event", "events", true, &["ev"], false, false),
    b("", "v1", "Node", "nodes", false, &["no"], true, false),
    b("apps", "v1", "Deployment", "deployments", true, &["deploy"], true, true),
    b("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true, true),
    b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true, true),
    b("batch", "v1", "Job", "jobs", true, &[], true, true),
    b("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], false, false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], false, false),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
        false,
    ),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], false, false),
    b("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], true, false),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], true, false),
    b("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], true, true),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
        false,
    ),
    b("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &["pc"], false, false),
    b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], false, false),
];

fn is_builtin_group(group: &str) -> bool {
    BUILTINS.iter().any(|b| b.group == group)
}

pub(crate) fn builtins() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| ResourceDef {
            group: b.group.into(),
            version: b.version.into(),
            kind: b.kind.into(),
            plural: b.plural.into(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: if b.all_category { vec!["all".into()] } else { vec![] },
            verbs: if b.plural == "namespaces" { NAMESPACE_VERBS } else { STANDARD_VERBS }
                .iter()
                .map(|s| s.to_string())
                .collect(),
            status_subresource: b.status,
            log_subresource: b.plural == "pods",
            schema: None,
            deprecation: None,
        })
        .collect()
}

/// The resources an established CRD serves: one per served version.
pub(crate) fn from_crd(crd: &Value) -> Vec<ResourceDef> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let singular = names["singular"].as_str().map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceDef {
            group: spec["group"].as_str().unwrap_or_default().to_string(),
            version: v["name"].as_str().unwrap_or_default().to_string(),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            verbs: STANDARD_VERBS.iter().map(|s| s.to_string()).collect(),
            status_subresource: v["subresources"].get("status").is_some(),
            log_subresource: false,
            schema: Some(Arc::new(v["schema"]["openAPIV3Schema"].clone())),
            deprecation: (v["deprecated"].as_bool() == Some(true)).then(|| {
                v["deprecationWarning"].as_str().map(str::to_string).unwrap_or_else(|| {
                    format!(
                        "{}/{} {kind} is deprecated",
                        spec["group"].as_str().unwrap_or_default(),
                        v["name"].as_str().unwrap_or_default()
                    )
                })
            }),
        })
        .collect()
}

/// A CRD is servable once its `Established` condition is true, like the real
/// apiextensions-apiserver which 404s custom resources until then.
pub(crate) fn crd_established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

/// `/version`, shaped like a kind v1.33 node's answer.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.1",
        "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T08:19:08Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// Groups in first-seen order, each with its versions in first-seen order. The first version
/// is reported as preferred, as the real server does for CRDs (versions are listed by priority).
fn groups(defs: &[ResourceDef]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, versions)) if !versions.contains(&d.version) => versions.push(d.version.clone()),
            Some(_) => {}
            None => out.push((d.group.clone(), vec![d.version.clone()])),
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

pub(crate) fn group_list(defs: &[ResourceDef]) -> Value {
    let groups: Vec<Value> = groups(defs).iter().map(|(g, v)| group_json(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(defs: &[ResourceDef], name: &str) -> Option<Value> {
    let (g, versions) = groups(defs).into_iter().find(|(g, _)| g == name)?;
    let mut doc = group_json(&g, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The legacy `APIResourceList` for one group version, or `None` when nothing is served there.
pub(crate) fn resource_list(defs: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for d in defs.iter().filter(|d| d.group == group && d.version == version) {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": d.verbs,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        if d.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if d.log_subresource {
            resources.push(json!({
                "name": format!("{}/log", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// Content type of an aggregated discovery answer, as the real server labels it.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client asked for aggregated discovery (kube-rs `Discovery::run_aggregated`).
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|m| m.contains("as=APIGroupDiscoveryList") && m.contains("v=v2"))
}

/// The aggregated `APIGroupDiscoveryList` for `/api` (`core == true`) or `/apis`.
pub(crate) fn aggregated(defs: &[ResourceDef], core: bool) -> Value {
    let gvk = |d: &ResourceDef| json!({"group": d.group, "version": d.version, "kind": d.kind});
    let group_names: Vec<(String, Vec<String>)> =
        if core { vec![(String::new(), vec!["v1".to_string()])] } else { groups(defs) };
    let items: Vec<Value> = group_names
        .iter()
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = defs
                        .iter()
                        .filter(|d| d.group == *g && d.version == *v)
                        .map(|d| {
                            let mut subresources = Vec::new();
                            if d.status_subresource {
                                subresources.push(json!({
                                    "subresource": "status",
                                    "responseKind": gvk(d),
                                    "verbs": ["get", "patch", "update"],
                                }));
                            }
                            if d.log_subresource {
                                subresources.push(json!({
                                    "subresource": "log",
                                    "responseKind": {"group": "", "version": "", "kind": "string"},
                                    "verbs": ["get"],
                                }));
                            }
                            json!({
                                "resource": d.plural,
                                "responseKind": gvk(d),
                                "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular,
                                "verbs": d.verbs,
                                "shortNames": d.short_names,
                                "categories": d.categories,
                                "subresources": subresources,
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
