//! Built-in kinds: parse into the k8s-openapi type and report every field the type dropped.
//!
//! k8s-openapi's deserialisers silently ignore fields they do not know, and so does the API
//! server (it prunes them, at most warning). A typo such as `imagePullPolicyy` or a key indented
//! one level too deep therefore vanishes without an error. Serialising the typed value back and
//! comparing it with the original finds exactly those fields.

use k8s_openapi::api::{
    admissionregistration::v1 as admissionregistration, apps::v1 as apps, autoscaling::v1 as autoscaling_v1,
    autoscaling::v2 as autoscaling_v2, batch::v1 as batch, coordination::v1 as coordination,
    core::v1 as core_v1, discovery::v1 as discovery, networking::v1 as networking, node::v1 as node,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{child_index, child_key, serde_path, Problem};

/// One built-in kind and the check that parses it into its k8s-openapi type.
struct CoreKind {
    api_version: &'static str,
    kind: &'static str,
    check: fn(&Value) -> Vec<Problem>,
}

const fn core_kind<T: Resource + DeserializeOwned + Serialize>() -> CoreKind {
    CoreKind { api_version: T::API_VERSION, kind: T::KIND, check: round_trip::<T> }
}

/// Every built-in kind a platform renders, plus the ones that cost nothing to add. apiVersion
/// and kind come from k8s-openapi itself, so the table cannot drift from the types.
static CORE_KINDS: &[CoreKind] = &[
    core_kind::<core_v1::Namespace>(),
    core_kind::<core_v1::ServiceAccount>(),
    core_kind::<core_v1::ConfigMap>(),
    core_kind::<core_v1::Secret>(),
    core_kind::<core_v1::Service>(),
    core_kind::<core_v1::Endpoints>(),
    core_kind::<core_v1::Pod>(),
    core_kind::<core_v1::PodTemplate>(),
    core_kind::<core_v1::ReplicationController>(),
    core_kind::<core_v1::PersistentVolume>(),
    core_kind::<core_v1::PersistentVolumeClaim>(),
    core_kind::<core_v1::ResourceQuota>(),
    core_kind::<core_v1::LimitRange>(),
    core_kind::<apps::Deployment>(),
    core_kind::<apps::StatefulSet>(),
    core_kind::<apps::DaemonSet>(),
    core_kind::<apps::ReplicaSet>(),
    core_kind::<batch::Job>(),
    core_kind::<batch::CronJob>(),
    core_kind::<rbac::Role>(),
    core_kind::<rbac::RoleBinding>(),
    core_kind::<rbac::ClusterRole>(),
    core_kind::<rbac::ClusterRoleBinding>(),
    core_kind::<networking::NetworkPolicy>(),
    core_kind::<networking::Ingress>(),
    core_kind::<networking::IngressClass>(),
    core_kind::<discovery::EndpointSlice>(),
    core_kind::<policy::PodDisruptionBudget>(),
    core_kind::<autoscaling_v1::HorizontalPodAutoscaler>(),
    core_kind::<autoscaling_v2::HorizontalPodAutoscaler>(),
    core_kind::<apiextensions::CustomResourceDefinition>(),
    core_kind::<apiregistration::APIService>(),
    core_kind::<scheduling::PriorityClass>(),
    core_kind::<storage::StorageClass>(),
    core_kind::<storage::CSIDriver>(),
    core_kind::<admissionregistration::ValidatingWebhookConfiguration>(),
    core_kind::<admissionregistration::MutatingWebhookConfiguration>(),
    core_kind::<admissionregistration::ValidatingAdmissionPolicy>(),
    core_kind::<admissionregistration::ValidatingAdmissionPolicyBinding>(),
    core_kind::<coordination::Lease>(),
    core_kind::<node::RuntimeClass>(),
];

/// Checks a built-in object: `Some(problems)` if its apiVersion/kind is a built-in type that
/// k8s-openapi knows, `None` otherwise (a custom resource, or a version Kubernetes 1.33 no longer
/// serves, such as `policy/v1beta1`).
///
/// Reports the first type error (deserialisation stops there), or else every field of the
/// original that the typed value does not carry, as `unknown field "name"` at the field's path,
/// and every required field that is missing or null, at the path of the object lacking it.
/// Value constraints that only the API server knows (enumerations, name formats, immutable
/// fields) are not checked.
pub fn check_core(obj: &Value) -> Option<Vec<Problem>> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    CORE_KINDS.iter().find(|k| k.api_version == api_version && k.kind == kind).map(|k| (k.check)(obj))
}

/// Whether an apiVersion/kind is a built-in type k8s-openapi knows (what [`check_core`]
/// checks).
pub fn is_core_kind(api_version: &str, kind: &str) -> bool {
    CORE_KINDS.iter().any(|k| k.api_version == api_version && k.kind == kind)
}

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Vec<Problem> {
    let typed: T = match serde_path_to_error::deserialize(obj) {
        Ok(typed) => typed,
        Err(e) => {
            let path = serde_path(e.path());
            return vec![Problem::new(&path, type_error_message(&e.into_inner().to_string()))];
        }
    };
    let back = serde_json::to_value(&typed).expect("k8s-openapi types serialise to JSON");
    let mut problems = Vec::new();
    dropped_fields(obj, &back, "", &mut problems);
    problems
}

/// Reports the keys of `original` that `round_trip` lacks, and the required keys it added.
///
/// Only absence matters, not differing values: k8s-openapi legitimately rewrites values
/// (`cpu: 2` becomes the Quantity `"2"`, a Secret's base64 is re-encoded). A `null` in the
/// original becomes `None` and is omitted, which the API server treats the same way, so it is
/// not a drop either (`metadata.creationTimestamp: null` from `kubectl create --dry-run`).
/// Empty maps and lists need no exception: k8s-openapi keeps `Some(empty)` and writes it back.
fn dropped_fields(original: &Value, round_trip: &Value, path: &str, out: &mut Vec<Problem>) {
    match (original, round_trip) {
        (Value::Object(orig), Value::Object(back)) => {
            for (key, value) in orig {
                let child = child_key(path, key);
                match back.get(key) {
                    Some(back_value) => dropped_fields(value, back_value, &child, out),
                    None if value.is_null() => {}
                    None => out.push(Problem::new(&child, format!("unknown field {key:?}"))),
                }
            }
            // k8s-openapi fills a missing required field with its default instead of failing,
            // so a key that appears only in the round trip is a required field the original
            // lacks (every optional field is omitted when absent).
            for key in back.keys() {
                // Embedded resources (a StatefulSet's volumeClaimTemplates) are written back
                // with their type, which the API server never requires below the top level.
                let embedded_type = !path.is_empty() && path != "." && (key == "apiVersion" || key == "kind");
                if !embedded_type && orig.get(key).is_none_or(Value::is_null) {
                    out.push(Problem::new(path, format!("missing required field {key:?}")));
                }
            }
        }
        (Value::Array(orig), Value::Array(back)) => {
            for (i, (value, back_value)) in orig.iter().zip(back).enumerate() {
                dropped_fields(value, back_value, &child_index(path, i), out);
            }
        }
        _ => {}
    }
}

/// serde says "missing field `x`"; the CRD validator says `missing required field "x"`, and the
/// two should read alike in one report.
fn type_error_message(serde_message: &str) -> String {
    match serde_message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        Some(field) => format!("missing required field {field:?}"),
        None => serde_message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(obj: Value) -> Vec<String> {
        check_core(&obj).expect("a built-in kind").iter().map(ToString::to_string).collect()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "mlflow",
                "namespace": "mlflow",
                "labels": {"app.kubernetes.io/name": "mlflow"},
                "annotations": {},
                "creationTimestamp": null
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "mlflow"}},
                    "spec": {
                        "serviceAccountName": "mlflow",
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "mlflow",
                            "image": "ghcr.io/mlflow/mlflow:v2.20.0",
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["server", "--host", "0.0.0.0"],
                            "env": [{"name": "PORT", "value": "5000"}],
                            "envFrom": [],
                            "ports": [{"containerPort": 5000, "name": "http"}],
                            "resources": {
                                "requests": {"cpu": 2, "memory": "4Gi"},
                                "limits": {"cpu": 2.5, "memory": "4Gi", "nvidia.com/gpu": 1}
                            },
                            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                            "livenessProbe": {"tcpSocket": {"port": 5000}},
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "capabilities": {"drop": ["ALL"]}
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
                        }],
                        "volumes": [{"name": "tmp", "emptyDir": {}}]
                    }
                }
            }
        })
    }

    #[test]
    fn valid_deployment_with_numeric_quantities_and_empty_values_has_no_problems() {
        assert_eq!(problems(deployment()), Vec::<String>::new());
    }

    #[test]
    fn typo_in_container_field_is_reported_at_its_path() {
        let mut d = deployment();
        let container = &mut d["spec"]["template"]["spec"]["containers"][0];
        let policy = container.as_object_mut().unwrap().remove("imagePullPolicy").unwrap();
        container["imagePullPolicyy"] = policy;
        assert_eq!(
            problems(d),
            [r#".spec.template.spec.containers[0].imagePullPolicyy: unknown field "imagePullPolicyy""#]
        );
    }

    #[test]
    fn misplaced_keys_are_reported_even_with_empty_values() {
        let mut d = deployment();
        // `emptydir: {}` is an easy typo whose value is empty; it must not pass as "k8s-openapi
        // omitted an empty map".
        d["spec"]["template"]["spec"]["volumes"][0] = json!({"name": "tmp", "emptydir": {}});
        // A container key written one level too high, in the pod spec.
        d["spec"]["template"]["spec"]["image"] = json!("busybox");
        assert_eq!(
            problems(d),
            [
                r#".spec.template.spec.volumes[0].emptydir: unknown field "emptydir""#,
                r#".spec.template.spec.image: unknown field "image""#,
            ]
        );
    }

    #[test]
    fn wrong_type_is_reported_at_its_path() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!(5000);
        let found = problems(d);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .starts_with(".spec.template.spec.containers[0].env[0].value: invalid type: integer `5000`"),
            "{found:?}"
        );
    }

    #[test]
    fn missing_required_fields_are_reported_on_their_parent() {
        let mut d = deployment();
        d["spec"]["template"]["spec"].as_object_mut().unwrap().remove("containers");
        d["spec"]["template"]["spec"]["volumes"][0]["name"] = Value::Null;
        assert_eq!(
            problems(d),
            [
                r#".spec.template.spec.volumes[0]: missing required field "name""#,
                r#".spec.template.spec: missing required field "containers""#,
            ]
        );
    }

    #[test]
    fn valid_service_job_network_policy_and_hpa_have_no_problems() {
        let objects = [
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "mlflow", "namespace": "mlflow"},
                "spec": {
                    "type": "ClusterIP",
                    "selector": {"app.kubernetes.io/name": "mlflow"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
                }
            }),
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "train", "namespace": "team-a"},
                "spec": {
                    "backoffLimit": 3,
                    "activeDeadlineSeconds": 86400,
                    "podFailurePolicy": {"rules": [{
                        "action": "Ignore",
                        "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [2]}
                    }]},
                    "template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "trainer", "image": "python:3.12", "command": ["python", "train.py", "--resume"],
                            "resources": {"requests": {"cpu": "500m", "memory": 1073741824}}
                        }]
                    }}
                }
            }),
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": "team-a"},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "egress": [{
                        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}]
                    }]
                }
            }),
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "mlflow", "namespace": "mlflow"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mlflow"},
                    "minReplicas": 2, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
                }
            }),
        ];
        for obj in objects {
            assert_eq!(problems(obj.clone()), Vec::<String>::new(), "{obj}");
        }
    }

    #[test]
    fn unknown_field_in_metadata_and_at_top_level_is_reported() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "code", "namepsace": "team-a"},
            "data": {"train.py": "print(1)"},
            "spec": {}
        });
        assert_eq!(
            problems(obj),
            [r#".metadata.namepsace: unknown field "namepsace""#, r#".spec: unknown field "spec""#]
        );
    }

    #[test]
    fn custom_resources_and_retired_versions_are_not_core() {
        let trainjob = json!({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob"});
        let old_pdb = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget"});
        assert!(check_core(&trainjob).is_none());
        assert!(check_core(&old_pdb).is_none());
        assert!(check_core(&json!({"kind": "Pod"})).is_none());
    }

    #[test]
    fn every_kind_a_platform_renders_is_in_the_table() {
        let kinds = [
            ("v1", "Namespace"),
            ("v1", "ServiceAccount"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Service"),
            ("v1", "Pod"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("batch/v1", "Job"),
            ("batch/v1", "CronJob"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("networking.k8s.io/v1", "Ingress"),
            ("networking.k8s.io/v1", "IngressClass"),
            ("policy/v1", "PodDisruptionBudget"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("scheduling.k8s.io/v1", "PriorityClass"),
            ("storage.k8s.io/v1", "StorageClass"),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
            ("coordination.k8s.io/v1", "Lease"),
        ];
        for (api_version, kind) in kinds {
            assert!(
                CORE_KINDS.iter().any(|k| k.api_version == api_version && k.kind == kind),
                "{api_version} {kind} missing"
            );
        }
    }
}
