//! Optuna HPO workspaces: the per-tenant objects are pinned as snapshots, pass Pod Security
//! `restricted` in the API double, take their package pins from the environment, and only trial
//! pods and the dashboard reach the storage port.

use serde_json::Value;

use crate::harness::{ClusterScenario, Test, MINIMAL_ENV};

/// kind: alice has a workspace with a larger artifact store and her own cache directory, bob
/// has none, and the dashboard has an nginx Ingress.
const KIND_WORKSPACE: &str = "\
components:
  tenants:
    list:
      - name: alice
        hpo:
          enabled: true
          artifact_size: 5Gi
          shared_cache_dir: /mnt/datasets
      - name: bob
  hpo:
    enabled: true
    dashboard:
      ingress:
        enabled: true
        host: hpo.localtest.me
        class_name: nginx
";

/// eks: EFS for the shared volumes, an internal ALB for the dashboard.
const EKS_WORKSPACE: &str = "\
name: dev
target:
  kind: eks
  cluster_name: dev
  region: us-east-1
components:
  tenants:
    list:
      - name: team-vision
        hpo:
          enabled: true
  hpo:
    enabled: true
    storage:
      class_name: efs-hpo
      efs_file_system_id: fs-0123456789abcdef0
      journal_class_name: gp3
    dashboard:
      ingress:
        enabled: true
        host: hpo.dev.example.com
        class_name: alb
        certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc
";

fn render(env: &str) -> String {
    Test::new().file("env.yaml", env).args(&["render", "-e", "env.yaml"]).status(0).run().stdout
}

fn objects(stream: &str) -> Vec<Value> {
    stream
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).expect("rendered YAML"))
        .collect()
}

/// The objects of the `hpo` component.
fn workspace_objects(stream: &str) -> Vec<Value> {
    objects(stream)
        .into_iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/name"] == "hpo")
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, ns: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
}

#[test]
fn kind_workspace() {
    let out = render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}"));
    let ws: Vec<String> = workspace_objects(&out).iter().map(|o| serde_yaml::to_string(o).unwrap()).collect();
    insta::assert_snapshot!("hpo_kind_workspace", ws.join("---\n"));
}

#[test]
fn eks_workspace_has_an_efs_storage_class_and_an_internal_dashboard_ingress() {
    let out = render(EKS_WORKSPACE);
    let objs = workspace_objects(&out);
    let class = objs.iter().find(|o| o["kind"] == "StorageClass").expect("the EFS StorageClass");
    assert_eq!(class["parameters"]["fileSystemId"], "fs-0123456789abcdef0");
    let ingress = find(&objs, "Ingress", "team-vision", "hpo-dashboard");
    assert_eq!(ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"], "internal");
    let ws: Vec<String> = objs.iter().map(|o| serde_yaml::to_string(o).unwrap()).collect();
    insta::assert_snapshot!("hpo_eks_workspace", ws.join("---\n"));
}

#[test]
fn workspace_is_rendered_only_for_tenants_that_enable_it() {
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    assert!(!objs.is_empty());
    assert!(objs.iter().all(|o| o["metadata"]["namespace"] == "alice"), "bob has no workspace");
    let names: Vec<String> = objs
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
        .collect();
    for expected in [
        "PersistentVolumeClaim/hpo-journal",
        "PersistentVolumeClaim/hpo-artifacts",
        "PersistentVolumeClaim/hpo-shared-cache",
        "ConfigMap/hpo-workspace",
        "Deployment/hpo-storage",
        "Service/hpo-storage",
        "Deployment/hpo-dashboard",
        "Service/hpo-dashboard",
        "NetworkPolicy/hpo-storage",
        "Ingress/hpo-dashboard",
    ] {
        assert!(names.contains(&expected.to_string()), "{expected} missing from {names:?}");
    }
    for o in &objs {
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/component"], "hpo",
            "{}",
            o["metadata"]["name"]
        );
    }
}

#[test]
fn storage_server_is_the_journals_only_writer_with_tcp_probes() {
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    let d = find(&objs, "Deployment", "alice", "hpo-storage");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["tcpSocket"]["port"], "grpc", "{probe}");
    }
    let svc = find(&objs, "Service", "alice", "hpo-storage");
    assert_eq!(svc["spec"]["ports"][0]["name"], "grpc");
    assert_eq!(svc["spec"]["ports"][0]["port"], 13000);
    let dash = find(&objs, "Service", "alice", "hpo-dashboard");
    assert_eq!(dash["spec"]["ports"][0]["name"], "http");
    assert_eq!(dash["spec"]["ports"][0]["port"], 8080);
}

#[test]
fn the_storage_script_in_the_workspace_is_the_file_the_reaper_tests_run_with_its_defaults() {
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    let scripts = find(&objs, "ConfigMap", "alice", "hpo-workspace");
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/hpo/storage.py"))
        .expect("templates/hpo/storage.py");
    assert_eq!(scripts["data"]["storage.py"].as_str(), Some(file.as_str()));
    // The reaper's intervals are the script's defaults, not the tests' shortened ones.
    let d = find(&objs, "Deployment", "alice", "hpo-storage");
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    let names: Vec<&str> = env.as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.iter().all(|n| !n.starts_with("TRAINSTACK_HPO_")), "{names:?}");
}

/// Every container of every workspace pod, init containers included.
fn containers(pod_spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod_spec[*k].as_array().into_iter().flatten())
        .collect()
}

#[test]
fn workspace_containers_are_hardened_and_set_requests_and_limits() {
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    let deployments: Vec<&Value> = objs.iter().filter(|o| o["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 2);
    for d in deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        let cs = containers(pod);
        assert_eq!(cs.len(), 2, "{name}: the install init container and the server");
        for c in cs {
            let what = format!("{name}/{}", c["name"].as_str().unwrap());
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
            assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{what}");
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(c["resources"][kind][res].is_string(), "{what}: {kind}.{res}");
                }
            }
        }
    }
}

#[test]
fn workspace_installs_the_packages_the_version_pins_name() {
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    let pod = &find(&objs, "Deployment", "alice", "hpo-storage")["spec"]["template"]["spec"];
    let args: Vec<&str> =
        pod["initContainers"][0]["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for pin in ["optuna==5.0.0", "optuna-dashboard==0.21.0", "grpcio==1.85.4", "protobuf==7.36.2"] {
        assert!(args.contains(&pin), "{pin} not in {args:?}");
    }
    // The test virtualenv runs the same server and dashboard the workspace pins.
    let requirements =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt")).unwrap();
    for pin in ["optuna==5.0.0", "optuna-dashboard==0.21.0"] {
        assert!(requirements.lines().any(|l| l == pin), "tests/requirements.txt pins {pin}");
    }

    let preinstalled = KIND_WORKSPACE.replace(
        "  hpo:\n    enabled: true\n",
        "  hpo:\n    enabled: true\n    packages_preinstalled: true\n",
    );
    let objs = workspace_objects(&render(&format!("{MINIMAL_ENV}{preinstalled}")));
    let pod = &find(&objs, "Deployment", "alice", "hpo-storage")["spec"]["template"]["spec"];
    assert!(pod["initContainers"].is_null(), "no install step for a preinstalled image");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(env.iter().all(|e| e["name"] != "PYTHONPATH"), "{env:?}");
}

/// Whether a label selector (`matchLabels`, `matchExpressions` with In/NotIn/Exists/DoesNotExist)
/// selects `labels`, as the API server evaluates it.
fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels[k].as_str();
    let by_labels =
        selector["matchLabels"].as_object().into_iter().flatten().all(|(k, v)| label(k) == v.as_str());
    let by_expressions = selector["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap();
        let values: Vec<&str> =
            e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match e["operator"].as_str().unwrap() {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            op => panic!("unknown operator {op}"),
        }
    });
    by_labels && by_expressions
}

/// Whether the namespace's NetworkPolicies let a pod (`from_ns`, `from`) open TCP `port` on a
/// pod labelled `to` in `ns`: isolated once any Ingress policy selects it, then allowed when
/// one of those policies' rules admits the source and the port (policies add up).
fn ingress_allowed(objs: &[Value], ns: &str, to: &Value, from_ns: &str, from: &Value, port: u64) -> bool {
    let policies: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["namespace"] == ns)
        .filter(|p| p["spec"]["policyTypes"].as_array().unwrap().iter().any(|t| t == "Ingress"))
        .filter(|p| selects(&p["spec"]["podSelector"], to))
        .collect();
    assert!(!policies.is_empty(), "tenant pods are isolated by default-deny-all");
    let from_ns_labels = serde_json::json!({ "kubernetes.io/metadata.name": from_ns });
    policies.iter().flat_map(|p| p["spec"]["ingress"].as_array().into_iter().flatten()).any(|rule| {
        let peer_ok = rule["from"].as_array().is_none_or(|peers| {
            peers.iter().any(|peer| match (&peer["namespaceSelector"], &peer["podSelector"]) {
                (Value::Null, Value::Null) => false,
                (Value::Null, pods) => from_ns == ns && selects(pods, from),
                (nss, Value::Null) => selects(nss, &from_ns_labels),
                (nss, pods) => selects(nss, &from_ns_labels) && selects(pods, from),
            })
        });
        let port_ok = rule["ports"].as_array().is_none_or(|ports| ports.iter().any(|p| p["port"] == port));
        peer_ok && port_ok
    })
}

#[test]
fn only_trial_pods_and_the_dashboard_reach_the_storage_port() {
    let objs = objects(&render(&format!("{MINIMAL_ENV}{KIND_WORKSPACE}")));
    let find_pod_labels = |name: &str| {
        find(&objs, "Deployment", "alice", name)["spec"]["template"]["metadata"]["labels"].clone()
    };
    let storage = find_pod_labels("hpo-storage");
    let dashboard = find_pod_labels("hpo-dashboard");
    let trial = serde_json::json!({"trainstack.io/hpo-trial": "true", "trainstack.io/hpo-batch": "b1"});
    let other = serde_json::json!({"app": "notebook"});
    assert!(ingress_allowed(&objs, "alice", &storage, "alice", &trial, 13000));
    assert!(ingress_allowed(&objs, "alice", &storage, "alice", &dashboard, 13000));
    assert!(
        !ingress_allowed(&objs, "alice", &storage, "alice", &other, 13000),
        "any other pod of the tenant"
    );
    assert!(!ingress_allowed(&objs, "alice", &storage, "trainstack-system", &other, 13000), "the platform");
    assert!(!ingress_allowed(&objs, "alice", &storage, "alice", &trial, 8080), "another port");
    // The tenant's other pods keep the tenant's rules: same namespace and platform reach them.
    assert!(ingress_allowed(&objs, "alice", &dashboard, "alice", &other, 8080));
    assert!(ingress_allowed(&objs, "alice", &trial, "trainstack-system", &other, 8000));
    assert!(ingress_allowed(&objs, "bob", &other, "bob", &other, 8000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shipped_kind_workspace_applies_under_restricted_pod_security_without_warnings() {
    let s = ClusterScenario::start().await;
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let warnings: Vec<&str> =
        out.stdout.lines().filter(|l| l.trim_start().starts_with("Warning: ")).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let ns = s.server.get("v1", "Namespace", None, "alice").expect("alice's namespace");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for name in ["hpo-storage", "hpo-dashboard"] {
        assert!(s.server.get("apps/v1", "Deployment", Some("alice"), name).is_some(), "{name} applied");
    }
    assert!(s.server.get("apps/v1", "Deployment", Some("team-vision"), "hpo-storage").is_none());
}
