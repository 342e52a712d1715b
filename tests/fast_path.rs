//! The engine's fast path against the full dry-run: for a corpus of live-state mutations on
//! the API double, `diff` decided by the no-op proof must give exactly the verdicts and diffs
//! of `diff --server-dry-run-all`, and it must decide the provable no-ops without a dry-run.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::harness::{crd_addons_overlay, ClusterScenario as Scenario};
use crate::support::apiserver::ApiServer;

const NS: &str = "fastpath";

/// What the corpus declares: `later` adds the objects and desired-side changes made after
/// the first apply.
fn corpus(later: bool) -> Vec<Value> {
    let cm = |name: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": NS, "labels": {"tier": "corpus"},
                            "annotations": {"owner": "trainstack"}},
               "data": data})
    };
    let deployment = |name: &str, resources: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                   "containers": [{"name": "app", "image": "busybox:1.36", "args": ["sleep", "3600"],
                     "ports": [{"containerPort": 8080}], "resources": resources,
                     "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                   "volumes": [{"name": "scratch", "emptyDir": {}}]}}}})
    };
    let service = |name: &str, target: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
               "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": target}]}})
    };
    let widget = |name: &str, spec: Value| {
        json!({"apiVersion": "fastpath.example/v1", "kind": "Widget",
               "metadata": {"name": name, "namespace": NS}, "spec": spec})
    };
    let surge = |name: &str, max_surge: Value, max_unavailable: Value| {
        let mut d = deployment(name, json!({"limits": {"cpu": "500m"}}));
        d["spec"]["strategy"] = json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}});
        d
    };
    let workers = json!({"workers": [{"name": "a", "n": 1}], "tags": ["x"]});
    let canonical = json!({"limits": {"cpu": "500m", "memory": "1Gi"}});
    let secret = |name: &str, field: &str, values: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
               "type": "Opaque", field: values})
    };
    let mut objs = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        widget_crd(),
        cm("cm-same", json!({"k": "v"})),
        cm("cm-drift", json!({"k": "v"})),
        cm("cm-removed", if later { json!({"k": "v"}) } else { json!({"k": "v", "gone": "soon"}) }),
        cm("cm-label", json!({"k": "v"})),
        cm("cm-annotation", json!({"k": "v"})),
        cm("cm-our-annotation", json!({"k": "v"})),
        cm("cm-shared", json!({"k": "v"})),
        cm("cm-taken", json!({"k": "v"})),
        cm("cm-our-label-removed", json!({"k": "v"})),
        cm("cm-finalizer", json!({"k": "v"})),
        cm("cm-desired-changed", json!({"k": if later { "new" } else { "old" }})),
        cm("cm-status-like", json!({"k": "v"})),
        secret("secret-string-data", "stringData", json!({"password": "hunter2"})),
        secret("secret-same", "data", json!({"password": "aHVudGVyMg=="})),
        secret("secret-drift", "data", json!({"password": "aHVudGVyMg=="})),
        deployment("dep-same", canonical.clone()),
        deployment("dep-quantity", json!({"limits": {"cpu": "1000m", "memory": "1024Mi"}})),
        deployment("dep-status", canonical.clone()),
        deployment("dep-replicas", canonical.clone()),
        deployment("dep-args", canonical.clone()),
        deployment("dep-env-added", canonical.clone()),
        deployment("dep-other-field", canonical.clone()),
        service("svc-same", json!(8080)),
        service("svc-named-port", json!("http")),
        service("svc-string-number", json!("8080")),
        service("svc-int-made-string", json!(8080)),
        service("svc-string-made-int", json!("8080")),
        surge("dep-surge", json!("25%"), json!(0)),
        surge("dep-surge-set", json!("25%"), json!(0)),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "pdb-percent", "namespace": NS},
               "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "pdb-percent"}}}}),
        widget("w-same", workers.clone()),
        widget("w-item-added", workers.clone()),
        widget("w-tag-added", workers.clone()),
        widget("w-drift", workers.clone()),
        widget("w-size", json!({"workers": [{"name": "a", "n": 1}], "size": "10Gi"})),
        widget("w-size-int", json!({"workers": [{"name": "a", "n": 1}], "size": 10})),
        widget("w-free", json!({"workers": [{"name": "a", "n": 1}], "free": {"list": [1, 2]}})),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa-same", "namespace": NS}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "role-same", "namespace": NS},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
    ];
    let mut labelled = cm("cm-desired-label", json!({"k": "v"}));
    if later {
        labelled["metadata"]["labels"]["extra"] = json!("yes");
        objs.push(cm("cm-new", json!({"k": "v"})));
        objs.push(cm("cm-adopted", json!({"k": "v"})));
    }
    objs.push(labelled);
    objs
}

/// A CRD with one list of each kind, an int-or-string field and a free-form field.
fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "widgets.fastpath.example"},
      "spec": {"group": "fastpath.example", "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
          "type": "object", "properties": {"spec": {"type": "object", "properties": {
            "workers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "size": {"x-kubernetes-int-or-string": true},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}})
}

fn write_corpus(s: &Scenario, later: bool) {
    let stream: Vec<String> = corpus(later).iter().map(Value::to_string).collect();
    std::fs::write(s.path("corpus.yaml"), stream.join("\n---\n")).unwrap();
}

async fn scenario() -> Scenario {
    let s = Scenario::start().await;
    write_corpus(&s, false);
    s.overlay(&format!(
        "{}  - name: fastpath-corpus\n    version: v1\n    source: {{file: {}}}\n",
        crd_addons_overlay(),
        s.path("corpus.yaml").display()
    ));
    s
}

fn cm_patch(name: &str, patch: Value) -> Value {
    let mut obj =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}});
    merge(&mut obj, patch);
    obj
}

fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn typed(api_version: &str, kind: &str, name: &str, rest: Value) -> Value {
    let mut obj =
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": NS}});
    merge(&mut obj, rest);
    obj
}

/// Live-state changes by others, one object each.
fn mutate(s: &Scenario) {
    let srv = &s.server;
    srv.seed("kubectl-edit", cm_patch("cm-drift", json!({"data": {"k": "drifted"}})));
    srv.seed("kubectl-label", cm_patch("cm-label", json!({"metadata": {"labels": {"team": "ml"}}})));
    srv.seed(
        "kubectl-annotate",
        cm_patch("cm-annotation", json!({"metadata": {"annotations": {"note": "x"}}})),
    );
    srv.seed(
        "kubectl-annotate",
        cm_patch("cm-our-annotation", json!({"metadata": {"annotations": {"owner": "someone"}}})),
    );
    srv.seed_apply("kubectl", cm_patch("cm-shared", json!({"data": {"k": "v"}})));
    srv.seed_apply("helm", cm_patch("cm-taken", json!({"data": {"k": "helm's"}})));
    srv.seed(
        "kubectl-label",
        cm_patch("cm-our-label-removed", json!({"metadata": {"labels": {"tier": null}}})),
    );
    srv.seed(
        "kubectl-edit",
        cm_patch("cm-finalizer", json!({"metadata": {"finalizers": ["example.com/keep"]}})),
    );
    srv.seed("kubectl-edit", cm_patch("cm-status-like", json!({"metadata": {"labels": {"checked": "yes"}}})));
    srv.seed("kubectl-create", cm_patch("cm-adopted", json!({"data": {"k": "v"}})));
    srv.seed(
        "kubectl-edit",
        typed("v1", "Secret", "secret-drift", json!({"data": {"password": "b3RoZXI="}})),
    );
    srv.mark_deployment_available(NS, "dep-status");
    srv.seed(
        "kubectl-scale",
        typed("apps/v1", "Deployment", "dep-replicas", json!({"spec": {"replicas": 3}})),
    );
    let container = |c: Value| json!({"spec": {"template": {"spec": {"containers": [c]}}}});
    srv.seed_apply(
        "kubectl",
        typed("apps/v1", "Deployment", "dep-args", container(json!({"name": "app", "args": ["sleep", "1"]}))),
    );
    srv.seed_apply(
        "istio",
        typed(
            "apps/v1",
            "Deployment",
            "dep-env-added",
            container(json!({"name": "app", "env": [{"name": "EXTRA", "value": "1"}]})),
        ),
    );
    srv.seed(
        "kubectl-edit",
        typed("apps/v1", "Deployment", "dep-other-field", json!({"spec": {"minReadySeconds": 5}})),
    );
    // int-or-string values are stored as sent: the same number as the other JSON type is a
    // different value, and so is a percentage written as a plain number.
    let port =
        |target: Value| json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": target}]}});
    srv.seed("kubectl-edit", typed("v1", "Service", "svc-int-made-string", port(json!("8080"))));
    srv.seed("kubectl-edit", typed("v1", "Service", "svc-string-made-int", port(json!(8080))));
    srv.seed(
        "kubectl-set",
        typed(
            "apps/v1",
            "Deployment",
            "dep-surge-set",
            json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "0%"}}}}),
        ),
    );
    let widget =
        |name: &str, spec: Value| typed("fastpath.example/v1", "Widget", name, json!({"spec": spec}));
    srv.seed("kubectl-edit", widget("w-size-int", json!({"size": "10"})));
    srv.seed_apply("operator", widget("w-item-added", json!({"workers": [{"name": "b", "n": 2}]})));
    srv.seed_apply("operator", widget("w-tag-added", json!({"tags": ["z"]})));
    srv.seed_apply("kubectl", widget("w-drift", json!({"workers": [{"name": "a", "n": 9}]})));
}

/// Each corpus object's verdict after the mutations, as the full dry-run decides it.
const EXPECTED: &[(&str, &str)] = &[
    ("cm-same", "unchanged"),
    ("cm-drift", "update"),
    ("cm-removed", "update"),
    ("cm-label", "unchanged"),
    ("cm-annotation", "unchanged"),
    ("cm-our-annotation", "update"),
    ("cm-shared", "unchanged"),
    ("cm-taken", "update"),
    ("cm-our-label-removed", "update"),
    ("cm-finalizer", "unchanged"),
    ("cm-desired-changed", "update"),
    ("cm-status-like", "unchanged"),
    ("cm-desired-label", "update"),
    ("cm-new", "create"),
    ("cm-adopted", "update"),
    ("secret-string-data", "unchanged"),
    ("secret-same", "unchanged"),
    ("secret-drift", "update"),
    ("dep-same", "unchanged"),
    ("dep-quantity", "unchanged"),
    ("dep-status", "unchanged"),
    ("dep-replicas", "update"),
    ("dep-args", "update"),
    ("dep-env-added", "unchanged"),
    ("dep-other-field", "unchanged"),
    ("svc-same", "unchanged"),
    ("svc-named-port", "unchanged"),
    ("svc-string-number", "unchanged"),
    ("svc-int-made-string", "update"),
    ("svc-string-made-int", "update"),
    ("dep-surge", "unchanged"),
    ("dep-surge-set", "update"),
    ("pdb-percent", "unchanged"),
    ("w-same", "unchanged"),
    ("w-item-added", "unchanged"),
    ("w-tag-added", "unchanged"),
    ("w-drift", "update"),
    ("w-size", "unchanged"),
    ("w-size-int", "update"),
    ("w-free", "unchanged"),
    ("sa-same", "unchanged"),
    ("role-same", "unchanged"),
];

/// In-sync corpus objects the proof decides without a dry-run: int-or-string values equal in
/// JSON type and value (named, numeric-string and percentage), a CRD quantity, atomic and
/// free-form lists, and changes by others beside trainstack's fields.
const PROVEN_LOCALLY: &[&str] = &[
    "cm-same",
    "cm-label",
    "cm-annotation",
    "cm-finalizer",
    "svc-same",
    "svc-named-port",
    "svc-string-number",
    "dep-surge",
    "pdb-percent",
    "dep-other-field",
    "w-same",
    "w-size",
    "w-free",
    "role-same",
];

/// Every object's (action, diff, conflicting managers), by `Kind namespace/name`.
fn verdicts(report: &Value) -> BTreeMap<String, (String, String, Value)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = format!(
                "{} {}/{}",
                c["kind"].as_str().unwrap(),
                c["namespace"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap()
            );
            let action = c["action"].as_str().unwrap().to_string();
            let diff = c["diff"].as_str().unwrap_or("").to_string();
            (id, (action, diff, c["conflict"]["managers"].clone()))
        })
        .collect()
}

async fn diff_json(s: &Scenario, extra: &[&str], status: i32) -> Value {
    let mut args = vec!["diff", "-o", "json"];
    args.extend(extra);
    let out = s.test(&args).status(status).run_async().await;
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_path_verdicts_equal_the_full_dry_run_for_every_mutation_in_the_corpus() {
    let s = scenario().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // In sync: what the proof cannot decide even then (the uncertain cases of the corpus and
    // of the shipped environment) is the baseline of dry-runs.
    let baseline = diff_json(&s, &[], 0).await;
    let baseline_dry_runs = baseline["summary"]["dry_runs"].as_u64().unwrap();
    // Only the corpus's two truly uncertain objects and PostgreSQL's StatefulSet, whose claim
    // templates (an atomic list) the server fills with defaults: the rest of the shipped
    // environment (int-or-string ports, quantities in CRDs, atomic lists, its Secrets) is
    // decided locally.
    assert_eq!(
        baseline["summary"]["dry_run_reasons"],
        json!({"Secret stringData": 1, "quantity not in canonical form": 1,
               "server-defaulted or changed value inside a desired field": 1}),
        "{}",
        baseline["summary"]
    );

    write_corpus(&s, true);
    mutate(&s);

    s.server.clear_requests();
    let fast = diff_json(&s, &[], 2).await;
    let fast_requests = s.server.requests();
    let fast_dry_runs = fast_requests.iter().filter(|r| r.is_dry_run()).count();
    // What the proof decides in sync, it must decide without the server even among mutations.
    for name in PROVEN_LOCALLY {
        let dry_run = fast_requests.iter().find(|r| r.is_dry_run() && r.path.ends_with(&format!("/{name}")));
        assert!(dry_run.is_none(), "{name} was dry-run: {dry_run:?}");
    }
    let full = diff_json(&s, &["--server-dry-run-all"], 2).await;

    let (fast_v, full_v) = (verdicts(&fast), verdicts(&full));
    assert_eq!(fast_v.keys().collect::<Vec<_>>(), full_v.keys().collect::<Vec<_>>());
    for (id, full_verdict) in &full_v {
        assert_eq!(&fast_v[id], full_verdict, "{id}: the fast path disagrees with the dry-run");
    }
    for (name, action) in EXPECTED {
        let id = full_v
            .keys()
            .find(|id| id.ends_with(&format!(" {NS}/{name}")))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(full_v[id].0, *action, "{id}");
    }
    assert!(full_v.iter().any(|(id, v)| id.contains("cm-taken") && v.2 == json!(["helm"])), "{full_v:?}");

    // The full path dry-runs every existing object; the fast path only those the proof could
    // not decide: the changed ones and the uncertain corpus cases (quantity, stringData,
    // shared field, list item of another manager's apply).
    assert_eq!(full["summary"]["decided_locally"], 0);
    let locally = fast["summary"]["decided_locally"].as_u64().unwrap();
    let dry_runs = fast["summary"]["dry_runs"].as_u64().unwrap();
    assert_eq!(locally + dry_runs, full["summary"]["dry_runs"].as_u64().unwrap());
    let reasons = &fast["summary"]["dry_run_reasons"];
    eprintln!("fast path: {locally} decided locally, {dry_runs} dry-runs: {reasons}");
    // Beyond the baseline: every changed or new corpus object, and the two whose mutation
    // makes a field shared (cm-shared, and dep-env-added's container key).
    let changed = EXPECTED.iter().filter(|(_, a)| *a != "unchanged").count() as u64;
    assert_eq!(dry_runs, baseline_dry_runs + changed + 2, "{reasons}");
    // One dry-run per object, plus the forced one of each conflicting object.
    let conflicts = fast_v.values().filter(|v| !v.2.is_null()).count() as u64;
    assert_eq!(fast_dry_runs as u64, dry_runs + conflicts);
}

/// `v1/configmaps` for `/api/v1/namespaces/a/configmaps/b`; `None` for discovery.
fn resource_type(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (gv, rest) = match segs.first() {
        Some(&"api") if segs.len() > 2 => (segs[1].to_string(), &segs[2..]),
        Some(&"apis") if segs.len() > 3 => (format!("{}/{}", segs[1], segs[2]), &segs[3..]),
        _ => return None,
    };
    let resource = match rest {
        ["namespaces", _, resource, ..] => resource,
        [resource, ..] => resource,
        [] => return None,
    };
    Some(format!("{gv}/{resource}"))
}

/// Tenants of the scaled environment: enough that a type (NetworkPolicies, six per tenant)
/// spans two LIST pages of 500, as in the bench.
const SCALED_TENANTS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_noop_diff_and_apply_of_a_multi_tenant_environment_make_at_most_two_requests_per_type() {
    let s = Scenario::start().await;
    // The bench's scaling: alice keeps her HPO workspace (the shipped trial batch runs in it).
    let mut tenants = String::from(
        "components:\n  tenants:\n    list:\n      - name: alice\n        hpo: {enabled: true}\n",
    );
    for t in 0..SCALED_TENANTS {
        tenants.push_str(&format!("      - name: tenant-{t}\n"));
    }
    s.overlay(&tenants);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let runs: [&[&str]; 2] = [&["diff", "-o", "json"], &["apply", "--no-wait", "-o", "json"]];
    for args in runs {
        s.server.clear_requests();
        let out = s.test(args).status(0).run_async().await;
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        let requests = s.server.requests();
        let objects = report["changes"].as_array().unwrap().len();
        assert!(objects > 1_000, "{args:?}: only {objects} objects");
        // The shipped templates hold one object the proof cannot decide: PostgreSQL's
        // StatefulSet, whose claim templates (an atomic list) the server fills with defaults.
        let dry_runs: Vec<&str> =
            requests.iter().filter(|r| r.is_dry_run()).map(|r| r.path.as_str()).collect();
        assert_eq!(
            dry_runs,
            ["/apis/apps/v1/namespaces/trainstack-system/statefulsets/postgres"],
            "{args:?}"
        );
        assert_eq!(
            report["summary"]["dry_run_reasons"],
            json!({"server-defaulted or changed value inside a desired field": 1}),
            "{args:?}"
        );
        let dry_runs = dry_runs.len();
        let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
        let mut discovery = 0;
        for r in &requests {
            match resource_type(&r.path) {
                Some(t) => *per_type.entry(t).or_default() += 1,
                None => discovery += 1,
            }
        }
        let over: Vec<_> = per_type.iter().filter(|(_, n)| **n > 2).collect();
        assert!(over.is_empty(), "{args:?}: more than 2 requests for {over:?}");
        // One LIST page per type (two for NetworkPolicies), the parent's GET, apply's read of
        // the CRDs it waits for, and aggregated discovery: `/api` and `/apis`, once per run.
        assert_eq!(discovery, 2, "{args:?}");
        assert!(requests.len() < 100, "{args:?}: {} requests: {per_type:?}", requests.len());
        eprintln!(
            "{args:?}: {objects} objects, {} requests ({} types, {discovery} discovery, {dry_runs} dry-runs)",
            requests.len(),
            per_type.len(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discovery_without_the_aggregated_api_falls_back_to_one_request_per_group_version() {
    // A server before Kubernetes 1.30 answers `/api` and `/apis` in the legacy format only.
    let s = Scenario::with(ApiServer::builder().aggregated_discovery(false).start().await);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    s.server.clear_requests();
    s.test(&["diff"]).status(0).run_async().await;
    let discovery: Vec<String> = s
        .server
        .requests()
        .iter()
        .filter(|r| resource_type(&r.path).is_none())
        .map(|r| r.path.clone())
        .collect();
    // The aggregated attempt (`/apis`, `/api`), then `/apis`, `/api` and every group version.
    assert!(discovery.len() > 4, "{discovery:?}");
    assert_eq!(discovery.iter().filter(|p| *p == "/api").count(), 2, "{discovery:?}");
    assert!(discovery.iter().any(|p| p == "/apis/apps/v1"), "{discovery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_run_on_one_engine_reports_only_its_own_plan_counts() {
    use std::sync::Arc;
    use trainstack::engine::ready::ClusterFacts;
    use trainstack::engine::run::{Engine, Options};
    use trainstack::settings::{AddonSettings, LoadSettings, PrepareSettings};

    let dir = tempfile::tempdir().unwrap();
    let crds = dir.path().join("crds.yaml");
    std::fs::write(&crds, crd_addons_overlay()).unwrap();
    let repo = crate::harness::repo();
    let settings = PrepareSettings {
        load: LoadSettings {
            files: vec![repo.join("environments/base.yaml"), repo.join("environments/kind.yaml"), crds],
            terraform_outputs: None,
        },
        templates: None,
        addons: AddonSettings { skip: false, cache_dir: Some(dir.path().join("cache")) },
    };
    let set = trainstack::commands::prepare(&settings).await.unwrap().set;
    let server = ApiServer::start().await;
    let client = trainstack::connect::client_from(server.config(), 8).unwrap();
    let engine = Engine::new(
        client,
        "kind-dev",
        "trainstack-system",
        ClusterFacts::default(),
        Options { wait: false, ..Options::default() },
        Arc::new(trainstack::output::progress::Bars::new(false)),
    );
    let first = engine.apply(&set).await.unwrap();
    assert_eq!(first.summary.failed, 0);
    let diff = engine.diff(&set).await.unwrap();
    assert!(!diff.has_changes());
    // Every object (and the parent) planned once by this diff, none of them new.
    let planned = diff.summary.decided_locally + diff.summary.dry_runs;
    assert_eq!(planned, set.len() + 1, "{:?}", diff.summary);
    assert!(!diff.summary.dry_run_reasons.contains_key("new object"), "{:?}", diff.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_resource_whose_crd_another_tool_installed_is_decided_by_the_clusters_crd() {
    let s = Scenario::start().await;
    // Another tool (Helm, say) installed the CRD; the environment applies only a resource of it.
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("gadgets.fastpath.example");
    crd["spec"]["names"] =
        json!({"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"});
    s.server.seed_apply("helm", crd);
    s.server.establish_crd("gadgets.fastpath.example");
    let gadget = json!({"apiVersion": "fastpath.example/v1", "kind": "Gadget",
        "metadata": {"name": "g", "namespace": "default"},
        "spec": {"workers": [{"name": "a", "n": 1}], "tags": ["x"], "size": "10Gi", "free": {"list": [1]}}});
    std::fs::write(s.path("gadget.yaml"), gadget.to_string()).unwrap();
    s.overlay(&format!(
        "{}  - name: gadget\n    version: v1\n    source: {{file: {}}}\n",
        crd_addons_overlay(),
        s.path("gadget.yaml").display()
    ));
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;

    s.server.clear_requests();
    let in_sync = diff_json(&s, &[], 0).await;
    let requests = s.server.requests();
    let crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.fastpath.example";
    assert_eq!(requests.iter().filter(|r| r.path == crd_path).count(), 1, "{requests:#?}");
    let gadget_dry_runs = |requests: &[crate::support::apiserver::RequestRecord]| {
        requests.iter().filter(|r| r.is_dry_run() && r.path.ends_with("/gadgets/g")).count()
    };
    assert_eq!(gadget_dry_runs(&requests), 0, "{}", in_sync["summary"]);

    // Drift in a keyed list item: the proof falls back, and agrees with the full dry-run.
    s.server.seed_apply(
        "kubectl",
        typed(
            "fastpath.example/v1",
            "Gadget",
            "g",
            json!({"metadata": {"namespace": "default"},
            "spec": {"workers": [{"name": "a", "n": 9}]}}),
        ),
    );
    s.server.clear_requests();
    let fast = diff_json(&s, &[], 2).await;
    assert_eq!(gadget_dry_runs(&s.server.requests()), 2, "a dry-run, and the forced one of the conflict");
    let full = diff_json(&s, &["--server-dry-run-all"], 2).await;
    assert_eq!(verdicts(&fast), verdicts(&full));
}
