//! Server-side defaulting for the kinds whose defaults show up as diff noise on a real
//! cluster (workloads, pod templates, Services, Secrets, Namespaces, ...). Values are the
//! ones a 1.33 kube-apiserver fills in.

use base64::Engine as _;
use serde_json::{json, Map, Value};

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if !obj.contains_key(key) {
        obj.insert(key.to_string(), value);
    }
}

fn object_at<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match name.split_once(':') {
            Some((_, "latest")) | None => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

fn default_ports(ports: Option<&mut Value>) {
    for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(p) = port.as_object_mut() {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// Rewrites a `resource.Quantity` the way the API server stores it: `1000m` as `1`, `1024Mi`
/// as `1Gi`, `0.5` as `500m`, `2000` as `2k`. `None` for forms this double does not model
/// (negative, exponents, sub-milli precision), which it then keeps as written.
pub(crate) fn canonical_quantity(q: &str) -> Option<String> {
    const DECIMAL: [(&str, i128); 8] = [
        ("m", 1),
        ("", 1_000),
        ("k", 1_000_000),
        ("M", 1_000_000_000),
        ("G", 1_000_000_000_000),
        ("T", 1_000_000_000_000_000),
        ("P", 1_000_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000_000),
    ];
    const BINARY: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let end = q.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(q.len());
    let (number, suffix) = q.split_at(end);
    let binary = BINARY.iter().position(|b| *b == suffix);
    let milli_per_unit = match binary {
        Some(i) => 1_000 * 1024_i128.pow(i as u32 + 1),
        None => DECIMAL.iter().find(|(s, _)| *s == suffix)?.1,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let scale = 10_i128.checked_pow(frac.len() as u32)?;
    let frac: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let scaled = frac.checked_mul(milli_per_unit)?;
    if scaled % scale != 0 {
        return None;
    }
    let milli = whole.checked_mul(milli_per_unit)? + scaled / scale;
    if milli == 0 {
        return Some("0".into());
    }
    if binary.is_some() && milli % 1000 == 0 {
        let bytes = milli / 1000;
        for (i, b) in BINARY.iter().enumerate().rev() {
            let unit = 1024_i128.pow(i as u32 + 1);
            if bytes % unit == 0 {
                return Some(format!("{}{b}", bytes / unit));
            }
        }
    }
    if milli % 1000 != 0 {
        return Some(format!("{milli}m"));
    }
    let n = milli / 1000;
    for (s, unit) in DECIMAL[2..].iter().rev() {
        let unit = unit / 1000;
        if n % unit == 0 {
            return Some(format!("{}{s}", n / unit));
        }
    }
    Some(n.to_string())
}

/// Canonicalises every quantity of a map of them (`limits`, `requests`, `hard`).
fn canonical_quantities(map: Option<&mut Value>) {
    for v in map.and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut()) {
        if let Some(c) = v.as_str().and_then(canonical_quantity) {
            *v = Value::String(c);
        }
    }
}

fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default().to_string();
    default_ports(c.get_mut("ports"));
    if let Some(r) = c.get_mut("resources") {
        canonical_quantities(r.get_mut("limits"));
        canonical_quantities(r.get_mut("requests"));
    }
    if let Some(c) = c.as_object_mut() {
        set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
        set_default(c, "terminationMessagePolicy", json!("File"));
        set_default(c, "imagePullPolicy", json!(pull_policy(&image)));
        set_default(c, "resources", json!({}));
    }
}

/// Defaults of a `PodSpec`; `restart` is the kind's default restart policy.
fn default_pod_spec(spec: &mut Value, restart: &str) {
    for list in ["containers", "initContainers"] {
        for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            default_container(c);
        }
    }
    if let Some(s) = spec.as_object_mut() {
        set_default(s, "restartPolicy", json!(restart));
        set_default(s, "terminationGracePeriodSeconds", json!(30));
        set_default(s, "dnsPolicy", json!("ClusterFirst"));
        set_default(s, "securityContext", json!({}));
        set_default(s, "schedulerName", json!("default-scheduler"));
    }
}

fn default_template(spec: &mut Value, restart: &str) {
    if let Some(pod_spec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod_spec, restart);
    }
}

/// Fills in defaults on `obj` (a full object of `kind`). Idempotent.
pub(crate) fn apply_defaults(kind: &str, obj: &mut Value, cluster_ip: impl FnOnce() -> String) {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    if kind == "ResourceQuota" {
        canonical_quantities(obj.get_mut("spec").and_then(|s| s.get_mut("hard")));
    }
    match kind {
        "Deployment" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_template(spec, "Always");
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "replicas", json!(1));
                    set_default(
                        s,
                        "strategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                    );
                    set_default(s, "revisionHistoryLimit", json!(10));
                    set_default(s, "progressDeadlineSeconds", json!(600));
                }
            }
        }
        "StatefulSet" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_template(spec, "Always");
                // The claim templates are defaulted as PersistentVolumeClaims, status included
                // (SetObjectDefaults_StatefulSet).
                let claims = spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut);
                for claim in claims.into_iter().flatten() {
                    if let Some(requests) = claim.pointer_mut("/spec/resources/requests") {
                        canonical_quantities(Some(requests));
                    }
                    if let Some(c) = claim.get_mut("spec").and_then(Value::as_object_mut) {
                        set_default(c, "volumeMode", json!("Filesystem"));
                    }
                    if let Some(c) = claim.as_object_mut() {
                        set_default(c, "status", json!({"phase": "Pending"}));
                    }
                }
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "replicas", json!(1));
                    set_default(s, "podManagementPolicy", json!("OrderedReady"));
                    set_default(
                        s,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                    );
                    set_default(s, "revisionHistoryLimit", json!(10));
                    set_default(
                        s,
                        "persistentVolumeClaimRetentionPolicy",
                        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                    );
                }
            }
        }
        "DaemonSet" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_template(spec, "Always");
                if let Some(s) = spec.as_object_mut() {
                    set_default(
                        s,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                    );
                    set_default(s, "revisionHistoryLimit", json!(10));
                }
            }
        }
        "Job" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_template(spec, "Never");
                // The Job controller's selector and template labels: the classic diff noise.
                let labels = json!({
                    "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": name,
                    "controller-uid": uid,
                    "job-name": name,
                });
                if spec.get("selector").is_none() && !uid.is_empty() {
                    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                }
                if let Some(meta) = spec.get_mut("template").and_then(|t| t.as_object_mut()) {
                    let meta = meta.entry("metadata").or_insert_with(|| json!({}));
                    if let (Some(m), false) = (meta.as_object_mut(), uid.is_empty()) {
                        let l = m.entry("labels").or_insert_with(|| json!({}));
                        for (k, v) in labels.as_object().into_iter().flatten() {
                            if let Some(l) = l.as_object_mut() {
                                set_default(l, k, v.clone());
                            }
                        }
                    }
                }
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "parallelism", json!(1));
                    set_default(s, "completions", json!(1));
                    set_default(s, "backoffLimit", json!(6));
                    set_default(s, "completionMode", json!("NonIndexed"));
                    set_default(s, "suspend", json!(false));
                    if !s.contains_key("podFailurePolicy") {
                        set_default(s, "podReplacementPolicy", json!("TerminatingOrFailed"));
                    }
                }
            }
        }
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec, "Always");
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "serviceAccountName", json!("default"));
                    set_default(s, "enableServiceLinks", json!(true));
                    set_default(s, "priority", json!(0));
                }
            }
        }
        "Service" => {
            if let Some(spec) = obj.get_mut("spec") {
                for port in spec.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
                    let number = port["port"].clone();
                    if let Some(p) = port.as_object_mut() {
                        set_default(p, "protocol", json!("TCP"));
                        set_default(p, "targetPort", number);
                    }
                }
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "type", json!("ClusterIP"));
                    if s["type"] != "ExternalName" && !s.contains_key("clusterIP") {
                        let ip = cluster_ip();
                        s.insert("clusterIP".into(), json!(ip));
                        set_default(s, "clusterIPs", json!([ip]));
                    }
                    set_default(s, "sessionAffinity", json!("None"));
                    set_default(s, "ipFamilies", json!(["IPv4"]));
                    set_default(s, "ipFamilyPolicy", json!("SingleStack"));
                    set_default(s, "internalTrafficPolicy", json!("Cluster"));
                }
            }
        }
        "Secret" => {
            if let Some(s) = obj.as_object_mut() {
                set_default(s, "type", json!("Opaque"));
                // stringData is write-only: the real server folds it into data.
                if let Some(Value::Object(string_data)) = s.remove("stringData") {
                    let data = s.entry("data").or_insert_with(|| json!({}));
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or_default();
                        data[k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                    }
                }
            }
        }
        "Namespace" => {
            let name = name.clone();
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                let labels = m.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    set_default(l, "kubernetes.io/metadata.name", json!(name));
                }
            }
            if let Some(s) = obj.as_object_mut() {
                set_default(s, "spec", json!({"finalizers": ["kubernetes"]}));
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = object_at(obj, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
        }
        "NetworkPolicy" => {
            if let Some(spec) = object_at(obj, "spec") {
                if !spec.contains_key("policyTypes") {
                    let mut types = vec![json!("Ingress")];
                    if spec.contains_key("egress") {
                        types.push(json!("Egress"));
                    }
                    spec.insert("policyTypes".into(), Value::Array(types));
                }
            }
        }
        "PriorityClass" => {
            if let Some(s) = obj.as_object_mut() {
                set_default(s, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
        }
        "StorageClass" => {
            if let Some(s) = obj.as_object_mut() {
                set_default(s, "reclaimPolicy", json!("Delete"));
                set_default(s, "volumeBindingMode", json!("Immediate"));
            }
        }
        "CustomResourceDefinition" => {
            if let Some(spec) = object_at(obj, "spec") {
                set_default(spec, "conversion", json!({"strategy": "None"}));
            }
        }
        _ => {}
    }
}

/// The status a freshly created object starts with before any controller touches it.
pub(crate) fn initial_status(kind: &str) -> Option<Value> {
    match kind {
        "Namespace" => Some(json!({"phase": "Active"})),
        "PersistentVolumeClaim" | "Pod" => Some(json!({"phase": "Pending"})),
        "Service" => Some(json!({"loadBalancer": {}})),
        "CustomResourceDefinition" => Some(json!({
            "acceptedNames": {"kind": "", "plural": ""},
            "conditions": [],
            "storedVersions": [],
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_defaults, canonical_quantity};
    use serde_json::json;

    #[test]
    fn statefulset_claim_templates_are_defaulted_as_persistent_volume_claims() {
        let mut sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"template": {"spec": {"containers": []}}, "volumeClaimTemplates": [{"metadata": {"name": "data"},
              "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}]}});
        apply_defaults("StatefulSet", &mut sts, String::new);
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0],
            json!({"metadata": {"name": "data"}, "status": {"phase": "Pending"},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                            "volumeMode": "Filesystem"}})
        );
    }

    #[test]
    fn quantities_are_stored_in_the_api_servers_canonical_form() {
        let cases = [
            ("1000m", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("2000", "2k"),
            ("1024", "1024"),
            ("32Gi", "32Gi"),
            ("0m", "0"),
        ];
        for (written, stored) in cases {
            assert_eq!(canonical_quantity(written).as_deref(), Some(stored), "{written}");
        }
        assert_eq!(canonical_quantity("1e3"), None);
        assert_eq!(canonical_quantity("-1"), None);
    }
}
