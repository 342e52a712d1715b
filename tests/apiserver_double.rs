//! Drives the in-process API server double through a real kube-rs client and checks that it
//! behaves like kube-apiserver where trainstack depends on it.

use std::time::{Duration, Instant};

use crate::support::apiserver::{ApiServer, Fault, FaultRule, MaxInFlight};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use kube::discovery::{Discovery, Scope};
use serde_json::{json, Value};

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
        },
    })
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "trainjobs.trainer.kubeflow.org"},
        "spec": {
            "group": "trainer.kubeflow.org",
            "scope": "Namespaced",
            "names": {"kind": "TrainJob", "plural": "trainjobs", "singular": "trainjob", "listKind": "TrainJobList"},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    })
}

fn trainjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"),
        "trainjobs",
    )
}

fn apply_params() -> PatchParams {
    PatchParams::apply("trainstack")
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn discovery_lists_core_kinds_in_legacy_and_aggregated_form() {
    let server = ApiServer::start().await;
    let client = server.client();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "33"));

    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone()).run_aggregated().await.unwrap(),
    ] {
        for (group, version, kind, namespaced) in [
            ("", "v1", "ConfigMap", true),
            ("", "v1", "Namespace", false),
            ("apps", "v1", "Deployment", true),
            ("batch", "v1", "Job", true),
            ("rbac.authorization.k8s.io", "v1", "ClusterRole", false),
            ("networking.k8s.io", "v1", "NetworkPolicy", true),
            ("policy", "v1", "PodDisruptionBudget", true),
            ("autoscaling", "v2", "HorizontalPodAutoscaler", true),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", false),
            ("scheduling.k8s.io", "v1", "PriorityClass", false),
            ("storage.k8s.io", "v1", "StorageClass", false),
        ] {
            let (ar, caps) = discovery
                .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
                .unwrap_or_else(|| panic!("{kind} missing from discovery"));
            assert_eq!(caps.scope == Scope::Namespaced, namespaced, "{kind} scope");
            assert!(caps.supports_operation("patch"), "{kind} verbs");
            assert_eq!(
                ar.plural,
                format!("{}s", kind.to_lowercase())
                    .replace("policys", "policies")
                    .replace("classs", "classes")
            );
        }
        let (_, pod_caps) = discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod")).unwrap();
        let subresources: Vec<&str> =
            pod_caps.subresources.iter().map(|(ar, _)| ar.plural.as_str()).collect();
        assert!(subresources.contains(&"log") && subresources.contains(&"status"), "{subresources:?}");
    }

    let legacy_only = ApiServer::builder().aggregated_discovery(false).start().await;
    let raw = legacy_only.client().list_api_groups().await.unwrap();
    assert!(raw.groups.iter().any(|g| g.name == "apps"));
}

#[tokio::test]
async fn crd_resources_are_served_only_once_established_and_go_away_with_it() {
    let server = ApiServer::builder().crd_establish_delay(None).start().await;
    let client = server.client();
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.patch("trainjobs.trainer.kubeflow.org", &apply_params(), &Patch::Apply(crd())).await.unwrap();

    let jobs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &trainjob_resource());
    let before = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!before.has_group("trainer.kubeflow.org"));
    assert_eq!(api_error(jobs.list(&ListParams::default()).await.unwrap_err()).code, 404);

    assert!(server.establish_crd("trainjobs.trainer.kubeflow.org"));
    let after = Discovery::new(client.clone()).run().await.unwrap();
    let (_, caps) = after
        .resolve_gvk(&GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"))
        .expect("TrainJob served after Established");
    assert_eq!(caps.scope, Scope::Namespaced);
    let job = json!({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "t1"}, "spec": {"numNodes": 1}});
    jobs.patch("t1", &apply_params(), &Patch::Apply(job)).await.unwrap();
    assert_eq!(jobs.list(&ListParams::default()).await.unwrap().items.len(), 1);

    crds.delete("trainjobs.trainer.kubeflow.org", &DeleteParams::default()).await.unwrap();
    eventually("CRD removal", || async {
        server
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "trainjobs.trainer.kubeflow.org",
            )
            .is_none()
    })
    .await;
    assert!(!Discovery::new(client.clone()).run().await.unwrap().has_group("trainer.kubeflow.org"));
    // The instances went with it: a recreated CRD starts empty.
    crds.patch("trainjobs.trainer.kubeflow.org", &apply_params(), &Patch::Apply(crd())).await.unwrap();
    server.establish_crd("trainjobs.trainer.kubeflow.org");
    assert!(jobs.list(&ListParams::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn crds_become_established_by_themselves_after_the_delay() {
    let server = ApiServer::start().await;
    let crds: Api<DynamicObject> = Api::all_with(
        server.client(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let created =
        crds.patch("trainjobs.trainer.kubeflow.org", &apply_params(), &Patch::Apply(crd())).await.unwrap();
    assert_eq!(created.data["status"]["conditions"], json!([]));
    eventually("Established", || async {
        let crd = crds.get("trainjobs.trainer.kubeflow.org").await.unwrap();
        crd.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_tracks_ownership_conflicts_and_no_ops() {
    let server = ApiServer::builder().workload_ready_delay(None).start().await;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");

    let created = deployments
        .patch("web", &apply_params(), &Patch::Apply(deployment("web", 2, "nginx:1.27")))
        .await
        .unwrap();
    assert_eq!(server.writes().patch, 1);
    let managed = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(
        (managed[0].manager.as_deref(), managed[0].operation.as_deref()),
        (Some("trainstack"), Some("Apply"))
    );
    let fields = serde_json::to_value(&managed[0].fields_v1).unwrap();
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"],
        json!({})
    );
    // Defaulted fields belong to nobody but are present.
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );

    // Re-applying identical content writes nothing.
    let again = deployments
        .patch("web", &apply_params(), &Patch::Apply(deployment("web", 2, "nginx:1.27")))
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, created.metadata.resource_version);
    assert_eq!(again.metadata.managed_fields, created.metadata.managed_fields);
    assert_eq!(server.writes().patch, 1);

    // Another manager takes replicas with a plain update.
    server.seed(
        "kubectl-client-side-apply",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 5},
        }),
    );
    let err = api_error(
        deployments
            .patch("web", &apply_params(), &Patch::Apply(deployment("web", 3, "nginx:1.27")))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    let causes = err.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].message, "conflict with \"kubectl-client-side-apply\" using apps/v1");
    assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas");
    assert_eq!(server.get("apps/v1", "Deployment", Some("default"), "web").unwrap()["spec"]["replicas"], 5);

    // Forcing takes ownership.
    let forced = deployments
        .patch("web", &apply_params().force(), &Patch::Apply(deployment("web", 3, "nginx:1.27")))
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(3));
    let owners: Vec<(String, Value)> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), serde_json::to_value(m.fields_v1).unwrap()))
        .collect();
    assert!(owners.iter().any(|(m, f)| m == "trainstack" && f["f:spec"].get("f:replicas").is_some()));
    assert!(owners.iter().all(|(m, f)| m == "trainstack" || f["f:spec"].get("f:replicas").is_none()));

    // A label no longer applied is removed; one owned by someone else stays.
    let mut with_label = deployment("web", 3, "nginx:1.27");
    with_label["metadata"]["labels"]["tier"] = json!("front");
    deployments.patch("web", &apply_params(), &Patch::Apply(with_label)).await.unwrap();
    server.seed(
        "ops",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"oncall": "team-a"}},
        }),
    );
    let trimmed = deployments
        .patch("web", &apply_params(), &Patch::Apply(deployment("web", 3, "nginx:1.27")))
        .await
        .unwrap();
    let labels = trimmed.metadata.labels.unwrap();
    assert!(!labels.contains_key("tier"), "{labels:?}");
    assert_eq!(labels.get("oncall").map(String::as_str), Some("team-a"));
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
}

#[tokio::test]
async fn generation_moves_with_spec_only_and_status_goes_through_its_subresource() {
    let server = ApiServer::builder().workload_ready_delay(None).start().await;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let mut manifest = deployment("web", 1, "nginx:1.27");
    manifest["status"] = json!({"replicas": 9});
    let created = deployments.patch("web", &apply_params(), &Patch::Apply(manifest)).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.is_none_or(|s| s.replicas.is_none()),
        "status in a main-resource apply is ignored"
    );

    let mut labelled = deployment("web", 1, "nginx:1.27");
    labelled["metadata"]["annotations"] = json!({"note": "x"});
    let relabelled = deployments.patch("web", &apply_params(), &Patch::Apply(labelled)).await.unwrap();
    assert_eq!(relabelled.metadata.generation, Some(1));

    let status = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"readyReplicas": 1}})))
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().ready_replicas, Some(1));
    assert_eq!(status.metadata.generation, Some(1));

    // Status applied through the subresource is owned under `subresource: status`.
    let status_apply = json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": {"replicas": 1}});
    let applied = deployments
        .patch_status("web", &PatchParams::apply("rollout-controller"), &Patch::Apply(status_apply))
        .await
        .unwrap();
    let entry = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("rollout-controller"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(applied.status.unwrap().ready_replicas, Some(1), "other status fields are kept");

    let bumped = deployments
        .patch("web", &apply_params(), &Patch::Apply(deployment("web", 1, "nginx:1.28")))
        .await
        .unwrap();
    assert_eq!(bumped.metadata.generation, Some(2));

    server.mark_deployment_available("default", "web");
    let available = deployments.get_status("web").await.unwrap().status.unwrap();
    assert_eq!(available.observed_generation, Some(2));
    assert!(available.conditions.unwrap().iter().any(|c| c.type_ == "Available" && c.status == "True"));
}

#[tokio::test]
async fn workloads_report_ready_by_default() {
    let server = ApiServer::start().await;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    deployments
        .patch("web", &apply_params(), &Patch::Apply(deployment("web", 2, "nginx:1.27")))
        .await
        .unwrap();
    eventually("rollout", || async {
        let d = deployments.get("web").await.unwrap();
        d.status.is_some_and(|s| s.available_replicas == Some(2) && s.observed_generation == Some(1))
    })
    .await;
}

#[tokio::test]
async fn defaults_fill_in_server_side_noise() {
    let server = ApiServer::start().await;
    let client = server.client();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services
        .patch(
            "web",
            &apply_params(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            })),
        )
        .await
        .unwrap()
        .spec
        .unwrap();
    assert!(svc.cluster_ip.unwrap().starts_with("10.96."));
    assert_eq!(svc.session_affinity.as_deref(), Some("None"));
    assert_eq!(svc.ports.unwrap()[0].protocol.as_deref(), Some("TCP"));

    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let secret = secrets
        .patch("creds", &apply_params(), &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"key": "s3cr3t"},
        })))
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert!(secret.string_data.is_none());
    assert_eq!(secret.data.unwrap()["key"].0, b"s3cr3t");
}

#[tokio::test]
async fn dry_run_returns_the_result_and_persists_nothing() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let rv = server.resource_version();

    let preview = cms.patch("c", &apply_params().dry_run(), &Patch::Apply(cm.clone())).await.unwrap();
    assert_eq!(preview.data.unwrap()["a"], "1");
    assert!(server.get("v1", "ConfigMap", Some("default"), "c").is_none());

    let created = cms.patch("c", &apply_params(), &Patch::Apply(cm)).await.unwrap();
    let after_create = server.resource_version();
    let changed =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
    let preview = cms.patch("c", &apply_params().dry_run(), &Patch::Apply(changed)).await.unwrap();
    assert_eq!(preview.data.unwrap()["a"], "2");
    cms.create(
        &PostParams { dry_run: true, ..Default::default() },
        &serde_json::from_value(json!({"metadata": {"name": "d"}})).unwrap(),
    )
    .await
    .unwrap();
    cms.delete("c", &DeleteParams::default().dry_run()).await.unwrap();

    let stored = server.get("v1", "ConfigMap", Some("default"), "c").unwrap();
    assert_eq!(stored["data"]["a"], "1");
    assert_eq!(stored["metadata"]["resourceVersion"], json!(created.metadata.resource_version.unwrap()));
    assert!(server.get("v1", "ConfigMap", Some("default"), "d").is_none());
    assert_eq!(server.resource_version(), after_create);
    assert_eq!(after_create, rv + 1);
    assert_eq!(server.writes().total(), 1);
    assert!(server.requests().iter().filter(|r| r.is_dry_run()).count() >= 3);
}

#[tokio::test]
async fn crud_errors_are_real_status_bodies() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "nowhere");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let err = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "namespaces \"nowhere\" not found")
    );

    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let err = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let mut stale = created.clone();
    stale.metadata.resource_version = Some("1".into());
    let err = api_error(cms.replace("c", &PostParams::default(), &stale).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    let mut fresh = created;
    fresh.data = Some([("k".to_string(), "v".to_string())].into());
    let replaced = cms.replace("c", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "v");
    assert_eq!(server.writes().update, 1);

    let err = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((err.code, err.message.as_str()), (404, "configmaps \"missing\" not found"));
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back", "env": "prod"})),
        ("c", json!({"app": "db"})),
    ] {
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}});
        cms.patch(name, &apply_params(), &Patch::Apply(cm)).await.unwrap();
    }
    let names = |lp: ListParams| {
        let cms = cms.clone();
        async move {
            let mut n: Vec<String> =
                cms.list(&lp).await.unwrap().items.into_iter().map(|c| c.metadata.name.unwrap()).collect();
            n.sort();
            n
        }
    };
    assert_eq!(names(ListParams::default().labels("app=web")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("app=web,env!=prod")).await, ["a"]);
    assert_eq!(names(ListParams::default().labels("tier in (front,back)")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("app notin (web)")).await, ["c"]);
    assert_eq!(names(ListParams::default().labels("!tier")).await, ["c"]);
    assert_eq!(names(ListParams::default().labels("env")).await, ["b"]);
    assert_eq!(names(ListParams::default().fields("metadata.name=c")).await, ["c"]);
    let all: Api<ConfigMap> = Api::all(server.client());
    assert_eq!(all.list(&ListParams::default().labels("app")).await.unwrap().items.len(), 3);
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_and_serve_metadata_only() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..5 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}});
        cms.patch(&format!("cm-{i}"), &apply_params(), &Patch::Apply(cm)).await.unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    let metas = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(metas.items.len(), 5);
    assert_eq!(metas.items[0].types.as_ref().unwrap().kind, "PartialObjectMetadata");
}

#[tokio::test]
async fn conflicts_between_appliers_name_the_other_applier() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.seed_apply(
        "helm",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared", "namespace": "default"}, "data": {"mode": "a", "owner": "helm"},
        }),
    );
    let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"mode": "b", "owner": "helm"}});
    let err = api_error(cms.patch("shared", &apply_params(), &Patch::Apply(mine)).await.unwrap_err());
    let causes = err.details.unwrap().causes;
    assert_eq!(causes.len(), 1, "agreeing on data.owner is shared ownership, not a conflict");
    assert_eq!(
        (causes[0].field.as_str(), causes[0].message.as_str()),
        (".data.mode", "conflict with \"helm\"")
    );
    assert_eq!(server.writes().total(), 0);
}

#[tokio::test]
async fn delete_waits_for_finalizers() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    cms.patch("held", &apply_params(), &Patch::Apply(cm)).await.unwrap();

    let pending =
        cms.delete("held", &DeleteParams::default()).await.unwrap().left().expect("object still present");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get("held").await.unwrap().metadata.deletion_timestamp.is_some());

    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("held").await.unwrap_err()).code, 404);

    let plain = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}});
    cms.patch("plain", &apply_params(), &Patch::Apply(plain)).await.unwrap();
    let status =
        cms.delete("plain", &DeleteParams::default()).await.unwrap().right().expect("deleted at once");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
}

#[tokio::test]
async fn namespace_deletion_terminates_then_removes_its_content() {
    let server = ApiServer::builder().cleanup_delay(Duration::from_millis(100)).start().await;
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "team-a",
            &apply_params(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    for (name, finalizers) in [("plain", json!([])), ("held", json!(["example.com/hold"]))] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "finalizers": finalizers}});
        cms.patch(name, &apply_params(), &Patch::Apply(cm)).await.unwrap();
    }

    let terminating = namespaces.delete("team-a", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
    let err = api_error(cms.patch("late", &apply_params(), &Patch::Apply(cm)).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));

    eventually("content removal", || async {
        server.get("v1", "ConfigMap", Some("team-a"), "plain").is_none()
    })
    .await;
    let held = server.get("v1", "ConfigMap", Some("team-a"), "held").unwrap();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert!(namespaces.get("team-a").await.is_ok(), "namespace waits for finalizers on its content");

    server.remove_finalizers("v1", "ConfigMap", Some("team-a"), "held");
    eventually("namespace removal", || async { server.get("v1", "Namespace", None, "team-a").is_none() })
        .await;
    assert_eq!(api_error(namespaces.get("team-a").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn watch_streams_changes_from_a_resource_version() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}, "data": {"a": "1"}});
    cms.patch("w1", &apply_params(), &Patch::Apply(first)).await.unwrap();
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();

    let stream = cms.watch(&WatchParams::default().timeout(10), &rv).await.unwrap().boxed();
    let changed =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}, "data": {"a": "2"}});
    cms.patch("w1", &apply_params(), &Patch::Apply(changed)).await.unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w2"}});
    cms.patch("w2", &apply_params(), &Patch::Apply(second)).await.unwrap();
    cms.delete("w1", &DeleteParams::default()).await.unwrap();

    let events: Vec<WatchEvent<ConfigMap>> =
        tokio::time::timeout(Duration::from_secs(5), stream.take(3).try_collect()).await.unwrap().unwrap();
    let seen: Vec<(&str, String)> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap()),
            WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap()),
            WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(seen, [("MODIFIED", "w1".into()), ("ADDED", "w2".into()), ("DELETED", "w1".into())]);

    // From "0" a watch starts with the current state.
    let initial = cms.watch(&WatchParams::default().timeout(10), "0").await.unwrap().boxed();
    let events: Vec<WatchEvent<ConfigMap>> =
        tokio::time::timeout(Duration::from_secs(5), initial.take(1).try_collect()).await.unwrap().unwrap();
    assert!(matches!(&events[0], WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("w2")));
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_410_expired() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let old = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}});
    cms.patch("w1", &apply_params(), &Patch::Apply(cm)).await.unwrap();
    server.compact();
    // As kube-apiserver: the watch itself is answered 200, its one event is the error.
    let events: Vec<WatchEvent<ConfigMap>> =
        cms.watch(&WatchParams::default().timeout(10), &old).await.unwrap().try_collect().await.unwrap();
    match events.as_slice() {
        [WatchEvent::Error(e)] => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(e.message, format!("too old resource version: {old} ({})", server.resource_version()));
        }
        other => panic!("expected one 410 error event, got {other:?}"),
    }
    // From the current resourceVersion the watch is served.
    let now = server.resource_version().to_string();
    let mut live = cms.watch(&WatchParams::default().timeout(10), &now).await.unwrap().boxed();
    cms.delete("w1", &DeleteParams::default()).await.unwrap();
    let deleted = tokio::time::timeout(Duration::from_secs(5), live.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(deleted, WatchEvent::Deleted(_)), "{deleted:?}");
}

#[tokio::test]
async fn bookmarks_carry_the_resource_version_the_watch_has_seen() {
    let server = ApiServer::builder().bookmark_interval(Duration::from_millis(100)).start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10).fields("metadata.name=mine"), &rv)
        .await
        .unwrap()
        .boxed();
    // A change this watch does not show still moves its resourceVersion.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}});
    cms.patch("other", &apply_params(), &Patch::Apply(other)).await.unwrap();
    let after = server.resource_version().to_string();
    let caught_up = async {
        loop {
            match stream.next().await.unwrap().unwrap() {
                WatchEvent::Bookmark(b) if b.metadata.resource_version == after => break,
                WatchEvent::Bookmark(_) => {}
                other => panic!("expected only bookmarks, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), caught_up).await.expect("a bookmark at the latest change");
    // Without allowWatchBookmarks, none comes.
    let plain = cms.watch(&WatchParams::default().timeout(1).disable_bookmarks(), &after).await.unwrap();
    let events: Vec<WatchEvent<ConfigMap>> = plain.try_collect().await.unwrap();
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch_stream() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let started = Instant::now();
    let stream = cms.watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0").await.unwrap();
    let events: Vec<WatchEvent<ConfigMap>> =
        tokio::time::timeout(Duration::from_secs(5), stream.try_collect()).await.unwrap().unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_cut_watch_ends_in_an_error_after_the_events_it_sent() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["a", "b", "c"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        cms.patch(name, &apply_params(), &Patch::Apply(cm)).await.unwrap();
    }
    server.add_fault(FaultRule::new(Fault::DropWatchAfter(2)).once());
    // Other requests are not watches and go through.
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 3);
    // hyper may not have flushed the response head before the cut: then the watch itself fails.
    match cms.watch(&WatchParams::default().timeout(10), "0").await {
        Err(e) => assert!(
            e.to_string().contains("IncompleteMessage") || format!("{e:?}").contains("IncompleteMessage"),
            "{e:?}"
        ),
        Ok(stream) => {
            let events: Vec<_> = stream.collect().await;
            assert!(
                events.last().is_some_and(|e| e.is_err()),
                "the connection was cut mid-stream: {events:?}"
            );
        }
    }
}

#[tokio::test]
async fn throttling_with_retry_after_reaches_the_client() {
    let server = ApiServer::start().await;
    server.add_fault(
        FaultRule::new(Fault::TooManyRequests { retry_after_secs: 1 })
            .method("GET")
            .path_prefix("/api/v1/namespaces/default/configmaps")
            .once(),
    );
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let started = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "kube's retry honours Retry-After");
    let statuses: Vec<u16> =
        server.requests().iter().filter(|r| r.path.ends_with("/configmaps")).map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);

    let mut config = server.config();
    config.default_retry = false;
    let raw: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    server.add_fault(FaultRule::new(Fault::TooManyRequests { retry_after_secs: 3 }).once());
    let err = api_error(raw.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(err.details.unwrap().retry_after_seconds, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_rejects_what_exceeds_a_pool_at_once_like_kube_apiserver() {
    let server = ApiServer::builder().max_in_flight(MaxInFlight { read: 2, mutating: 1 }).start().await;
    // Handling takes 300 ms, so requests sent together overlap.
    server.set_latency(Duration::from_millis(300));
    let mut config = server.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let send = |method: &'static str, path: &'static str| {
        let client = client.clone();
        async move {
            let request = http::Request::builder().method(method).uri(path);
            let request = match method {
                "PATCH" => request.header("Content-Type", "application/apply-patch+yaml"),
                _ => request,
            };
            let body = match method {
                "PATCH" => r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
                _ => "",
            };
            let started = Instant::now();
            let response =
                client.send(request.body(kube::client::Body::from(body.as_bytes().to_vec())).unwrap());
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().get("Retry-After").map(|v| v.to_str().unwrap().to_string());
            let content_type =
                response.headers().get("Content-Type").map(|v| v.to_str().unwrap().to_string());
            let body = response.into_body().collect_bytes().await.unwrap();
            (status, retry_after, content_type, String::from_utf8(body.to_vec()).unwrap(), started.elapsed())
        }
    };
    let apply = "/api/v1/namespaces/default/configmaps/x?fieldManager=t&dryRun=All";
    let list = "/api/v1/namespaces/default/configmaps";
    let watch = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1";
    let (writes, reads) = tokio::join!(
        futures::future::join_all([send("PATCH", apply), send("PATCH", apply)]),
        futures::future::join_all([
            send("GET", list),
            send("GET", list),
            send("GET", list),
            send("GET", watch)
        ]),
    );
    let mut codes: Vec<u16> = writes.iter().map(|w| w.0).collect();
    codes.sort();
    assert_eq!(codes, [201, 429], "one write in flight at a time, dry-runs included");
    let mut codes: Vec<u16> = reads.iter().take(3).map(|r| r.0).collect();
    codes.sort();
    assert_eq!(codes, [200, 200, 429], "two reads in flight at a time");
    assert_eq!(reads[3].0, 200, "a watch is long-running and not limited");
    let rejected = writes.iter().chain(&reads).find(|r| r.0 == 429).unwrap();
    assert_eq!(rejected.1.as_deref(), Some("1"));
    // Go's http.Error: plain text, not a Status.
    assert_eq!(rejected.2.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(rejected.3, "Too many requests, please try again later.\n");
    assert!(rejected.4 < Duration::from_millis(300), "rejected before handling: {:?}", rejected.4);
    assert_eq!(server.rejected_in_flight(), 2);
    // Places are given back once answered.
    let (status, ..) = send("GET", list).await;
    assert_eq!(status, 200);
    // kube-rs reads the plain-text body as a 429 Status of its own.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let dp = DeleteParams::default();
    let (a, b) = tokio::join!(cms.delete("nope", &dp), cms.delete("nope", &dp));
    let codes: Vec<u16> = [a.unwrap_err(), b.unwrap_err()].into_iter().map(|e| api_error(e).code).collect();
    assert!(codes.contains(&429) && codes.contains(&404), "{codes:?}");
}

#[tokio::test]
async fn server_errors_dropped_connections_and_latency() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");

    server.add_fault(FaultRule::new(Fault::ServerError(500)).once());
    assert_eq!(api_error(cms.list(&ListParams::default()).await.unwrap_err()).code, 500);

    server.add_fault(FaultRule::new(Fault::DropConnection).method("GET").once());
    let err = cms.list(&ListParams::default()).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "a dropped connection is a transport error: {err:?}");

    // The write lands although the client never hears back.
    server.add_fault(FaultRule::nth_write(Fault::DropAfterProcessing, 1));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lost"}});
    assert!(cms.patch("lost", &apply_params(), &Patch::Apply(cm.clone())).await.is_err());
    assert!(server.get("v1", "ConfigMap", Some("default"), "lost").is_some());
    cms.patch("lost", &apply_params(), &Patch::Apply(cm)).await.unwrap();
    assert_eq!(server.writes().patch, 1, "the re-run converges without another write");

    server.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    cms.get("lost").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    server.clear_faults();
    let faults: Vec<u16> = server.requests().iter().filter(|r| r.fault.is_some()).map(|r| r.status).collect();
    assert_eq!(faults, [500, 0, 0]);
}

#[tokio::test]
async fn kubeconfig_points_a_client_at_the_server() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "kind-dev").unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let options = kube::config::KubeConfigOptions { context: Some("kind-dev".into()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()) && names.contains(&"kube-system".to_string()));
}

/// POSTs `obj` to `path` (dry-run or not) and returns the status and the `Warning` header values.
async fn post_raw(client: &kube::Client, path: &str, obj: &Value) -> (u16, Vec<String>, Value) {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(obj).unwrap()))
        .unwrap();
    let res = client.send(req).await.expect("an HTTP answer");
    let status = res.status().as_u16();
    let warnings = res.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let body = res.into_body().collect_bytes().await.unwrap();
    (status, warnings, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn pod_security_refuses_or_warns_like_the_admission_plugin_in_299_headers() {
    let server = ApiServer::start().await;
    server.seed(
        "kubectl",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "locked", "labels": {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
        }}}),
    );
    let client = server.client();
    let pod = |privileged: bool| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "locked"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": privileged}}]}})
    };
    let restricted = "would violate PodSecurity \\\"restricted:latest\\\": allowPrivilegeEscalation != false (container \\\"c\\\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \\\"c\\\" must set securityContext.capabilities.drop=[\\\"ALL\\\"]), runAsNonRoot != true (pod or container \\\"c\\\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \\\"c\\\" must set securityContext.seccompProfile.type to \\\"RuntimeDefault\\\" or \\\"Localhost\\\")";

    // Violating `enforce`: refused, no warning added to the refusal.
    let (code, warnings, body) =
        post_raw(&client, "/api/v1/namespaces/locked/pods?dryRun=All", &pod(true)).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    assert!(warnings.is_empty(), "{warnings:?}");

    // Allowed by `enforce`, violating `warn`: created with one warning, dry-run or not.
    for path in ["/api/v1/namespaces/locked/pods?dryRun=All", "/api/v1/namespaces/locked/pods"] {
        let (code, warnings, body) = post_raw(&client, path, &pod(false)).await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(warnings, vec![format!("299 - \"{restricted}\"")]);
    }

    // A pod controller is never refused; its template is held to `warn`.
    let mut d = deployment("web", 1, "busybox");
    d["metadata"]["namespace"] = json!("locked");
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let (code, warnings, _) = post_raw(&client, "/apis/apps/v1/namespaces/locked/deployments", &d).await;
    assert_eq!(code, 201);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("299 - \"would violate PodSecurity \\\"restricted:latest\\\": allowPrivilegeEscalation != false (container \\\"app\\\""),
        "{warnings:?}"
    );
    assert!(warnings[0]
        .contains("privileged (container \\\"app\\\" must not set securityContext.privileged=true)"));
}

#[tokio::test]
async fn a_deprecated_crd_version_warns_on_every_request() {
    let server = ApiServer::builder().crd_establish_delay(None).start().await;
    let mut crd = crd();
    crd["spec"]["versions"][0]["deprecated"] = json!(true);
    server.seed("kubectl", crd);
    assert!(server.establish_crd("trainjobs.trainer.kubeflow.org"));
    let client = server.client();
    let job = json!({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": "j", "namespace": "default"}});
    let (code, warnings, _) =
        post_raw(&client, "/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/trainjobs", &job).await;
    assert_eq!(code, 201);
    assert_eq!(warnings, vec!["299 - \"trainer.kubeflow.org/v1alpha1 TrainJob is deprecated\"".to_string()]);
    let req = http::Request::get("/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/trainjobs/j")
        .body(kube::client::Body::empty())
        .unwrap();
    let res = client.send(req).await.unwrap();
    assert_eq!(res.headers().get_all("warning").iter().count(), 1);
}

#[tokio::test]
async fn routed_services_publish_a_ready_endpoint_slice_and_unrouting_empties_it() {
    let server = ApiServer::start().await;
    // Routed before its namespace and Service exist, as a test may do before `apply`.
    server.route_service("alice", "hpo-storage", 13000, "127.0.0.1:1");
    let slices = |server: &ApiServer| -> Vec<Value> {
        server
            .list("discovery.k8s.io/v1", "EndpointSlice")
            .into_iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "hpo-storage")
            .collect()
    };
    assert!(slices(&server).is_empty(), "no slice in a namespace that does not exist");
    server.seed("kubectl", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alice"}}));
    server.seed(
        "kubectl",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hpo-storage", "namespace": "alice"},
               "spec": {"ports": [{"name": "grpc", "port": 13000}]}}),
    );
    eventually("the Service's EndpointSlice", || {
        let found = slices(&server);
        async move { found.len() == 1 && found[0]["endpoints"][0]["conditions"]["ready"] == true }
    })
    .await;
    let slice = &slices(&server)[0];
    assert!(slice["metadata"]["name"].as_str().unwrap().starts_with("hpo-storage-"), "{slice:#}");
    assert_eq!(slice["ports"], json!([{"port": 13000, "protocol": "TCP"}]));

    // Read as a client does: by the service-name label, through the API.
    let api: Api<k8s_openapi::api::discovery::v1::EndpointSlice> = Api::namespaced(server.client(), "alice");
    let listed =
        api.list(&ListParams::default().labels("kubernetes.io/service-name=hpo-storage")).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    server.unroute_service("alice", "hpo-storage", 13000);
    let after = slices(&server);
    assert_eq!(after.len(), 1, "the controller keeps the slice");
    assert_eq!(after[0]["endpoints"], json!([]), "and empties it: {:#}", after[0]);
}
