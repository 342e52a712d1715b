//! Pod Security admission as kube-apiserver's built-in plugin applies it from namespace labels
//! (`pod-security.kubernetes.io/{enforce,warn}`), and the API deprecation warnings: what reaches
//! clients as `Warning: 299 - "..."` response headers or as a 403.
//!
//! Modelled on the real plugin: a Pod violating the namespace's `enforce` level is refused; a
//! Pod allowed by `enforce` but violating `warn` gets a warning; a pod controller (Deployment,
//! StatefulSet, DaemonSet, Job, CronJob, ReplicaSet) is never refused, and is warned about
//! when its pod template violates the `warn` level. A subset of the checks is modelled: the
//! baseline ones trainstack's templates could trip (privileged, host namespaces, hostPath) and
//! the four restricted ones every unhardened container trips.

use serde_json::Value;

use super::discovery::ResourceDef;
use super::status::ApiError;
use super::store::ObjKey;
use super::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The level and version a namespace sets for one mode; unlabelled means privileged.
fn policy(labels: &Value, mode: &str) -> (Level, String) {
    let label = |suffix: &str| labels[format!("pod-security.kubernetes.io/{mode}{suffix}")].as_str();
    let level = label("").and_then(Level::parse).unwrap_or(Level::Privileged);
    (level, label("-version").unwrap_or("latest").to_string())
}

/// The pod spec an object carries: its own for a Pod, its template's for a controller.
fn pod_spec<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    let spec = match kind {
        "Pod" => &obj["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => &obj["spec"]["template"]["spec"],
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    spec.is_object().then_some(spec)
}

/// `container "a"` or `containers "a", "b"`, as the real checks name them.
fn containers(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("container{plural} {}", quoted.join(", "))
}

/// The checks of `level` the pod spec fails, as `reason (detail)`.
fn violations(spec: &Value, level: Level) -> Vec<String> {
    let all: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let named = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter().filter(|c| pred(c)).filter_map(|c| c["name"].as_str().map(str::to_string)).collect()
    };
    let mut out = Vec::new();
    if level >= Level::Baseline {
        let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
            .iter()
            .filter(|k| spec[**k].as_bool() == Some(true))
            .map(|k| format!("{k}=true"))
            .collect();
        if !hosts.is_empty() {
            out.push(("hostNamespaces", format!("host namespaces ({})", hosts.join(", "))));
        }
        let privileged = named(&|c| c["securityContext"]["privileged"].as_bool() == Some(true));
        if !privileged.is_empty() {
            out.push((
                "privileged",
                format!(
                    "privileged ({} must not set securityContext.privileged=true)",
                    containers(&privileged)
                ),
            ));
        }
        let host_paths: Vec<String> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v.get("hostPath").is_some())
            .filter_map(|v| v["name"].as_str().map(|n| format!("{n:?}")))
            .collect();
        if !host_paths.is_empty() {
            let plural = if host_paths.len() == 1 { "" } else { "s" };
            out.push((
                "hostPathVolumes",
                format!("hostPath volumes (volume{plural} {})", host_paths.join(", ")),
            ));
        }
    }
    if level >= Level::Restricted {
        let escalating =
            named(&|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false));
        if !escalating.is_empty() {
            out.push(("allowPrivilegeEscalation", format!(
                "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
                containers(&escalating)
            )));
        }
        let drops_all = |c: &Value| {
            c["securityContext"]["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        };
        let capable = named(&|c| !drops_all(c));
        if !capable.is_empty() {
            out.push((
                "capabilities",
                format!(
                    "unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])",
                    containers(&capable)
                ),
            ));
        }
        let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
        let root = named(&|c| match c["securityContext"]["runAsNonRoot"].as_bool() {
            Some(v) => !v,
            None => !pod_non_root,
        });
        if !root.is_empty() {
            out.push((
                "runAsNonRoot",
                format!(
                    "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                    containers(&root)
                ),
            ));
        }
        let confined = |sc: &Value| {
            matches!(sc["seccompProfile"]["type"].as_str(), Some("RuntimeDefault" | "Localhost"))
        };
        let pod_confined = confined(&spec["securityContext"]);
        let unconfined = named(&|c| !pod_confined && !confined(&c["securityContext"]));
        if !unconfined.is_empty() {
            out.push(("seccompProfile", format!(
                "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
                containers(&unconfined)
            )));
        }
    }
    // The real plugin reports failed checks in the order of their IDs.
    out.sort_by_key(|(id, _)| *id);
    out.into_iter().map(|(_, text)| text).collect()
}

/// `"restricted:latest": reason (detail), ...` for a failed evaluation.
fn verdict(level: Level, version: &str, failed: &[String]) -> String {
    format!("PodSecurity \"{}:{version}\": {}", level.name(), failed.join(", "))
}

/// Runs Pod Security admission for a create or update of the main resource: Ok with the
/// warnings to send, or the 403 the real plugin answers for a Pod violating `enforce`.
pub(crate) fn pod_security(
    st: &State,
    def: &ResourceDef,
    ns: Option<&str>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    let (Some(ns), Some(spec)) = (ns, pod_spec(&def.kind, obj)) else { return Ok(Vec::new()) };
    if !def.group.is_empty() && !matches!(def.group.as_str(), "apps" | "batch") {
        return Ok(Vec::new());
    }
    let key = ObjKey {
        group: String::new(),
        resource: "namespaces".into(),
        namespace: String::new(),
        name: ns.to_string(),
    };
    let labels = st.store.get(&key).map(|n| n["metadata"]["labels"].clone()).unwrap_or_default();
    if def.kind == "Pod" {
        let (level, version) = policy(&labels, "enforce");
        let failed = violations(spec, level);
        if !failed.is_empty() {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::forbidden(
                def,
                name,
                &format!("violates {}", verdict(level, &version, &failed)),
            ));
        }
    }
    let (level, version) = policy(&labels, "warn");
    let failed = violations(spec, level);
    Ok(if failed.is_empty() {
        Vec::new()
    } else {
        vec![format!("would violate {}", verdict(level, &version, &failed))]
    })
}

/// What a pod controller's pods would be refused for in `ns` (the reason a real controller
/// records in its `FailedCreate` event), if anything.
pub(crate) fn pod_refusal(st: &State, ns: &str, kind: &str, obj: &Value, pod_name: &str) -> Option<String> {
    let spec = pod_spec(kind, obj)?;
    let key = ObjKey {
        group: String::new(),
        resource: "namespaces".into(),
        namespace: String::new(),
        name: ns.to_string(),
    };
    let labels = st.store.get(&key).map(|n| n["metadata"]["labels"].clone()).unwrap_or_default();
    let (level, version) = policy(&labels, "enforce");
    let failed = violations(spec, level);
    (!failed.is_empty())
        .then(|| format!("pods \"{pod_name}\" is forbidden: violates {}", verdict(level, &version, &failed)))
}

/// One `Warning` header value as kube-apiserver writes it (RFC 7234 warn-code 299, agent `-`,
/// the text quoted with `"` and `\` escaped).
pub(crate) fn warning_header(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("299 - \"{escaped}\"")
}
