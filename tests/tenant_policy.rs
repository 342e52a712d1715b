//! The tenant role's S3 policy (`terraform/modules/platform/tenant-data-policy.json.tftpl`),
//! rendered as Terraform renders it and evaluated for two tenants' EKS Pod Identity sessions:
//! each reaches its own dataset and checkpoint prefixes and nothing of the other's, including
//! the exact paths the shipped eks-dev environment renders into a tenant's Job.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{repo, Test};
use crate::support::iam::{evaluate, glob, render_template, Decision, Request};

const DATASETS: &str = "arn:aws:s3:::trainstack-dev-training-datasets-123456789012";
const CHECKPOINTS: &str = "arn:aws:s3:::trainstack-dev-training-checkpoints-123456789012";
const ARTIFACTS: &str = "arn:aws:s3:::trainstack-dev-mlflow-artifacts-123456789012";

fn policy() -> Value {
    let text =
        std::fs::read_to_string(repo().join("terraform/modules/platform/tenant-data-policy.json.tftpl"))
            .unwrap();
    let vars = BTreeMap::from([("datasets_bucket_arn", DATASETS), ("checkpoints_bucket_arn", CHECKPOINTS)]);
    serde_json::from_str(&render_template(&text, &vars)).expect("the rendered policy is JSON")
}

/// A request of a pod in namespace `tenant` (the session tag EKS Pod Identity attaches), or of
/// a session without it when `tenant` is None.
fn session<'a>(tenant: Option<&str>, action: &'a str, resource: &'a str) -> Request<'a> {
    let mut context = BTreeMap::new();
    if let Some(t) = tenant {
        context.insert("aws:PrincipalTag/kubernetes-namespace".to_string(), t.to_string());
    }
    Request { action, resource, context }
}

fn list<'a>(tenant: &str, bucket: &'a str, prefix: Option<&str>) -> Request<'a> {
    let mut r = session(Some(tenant), "s3:ListBucket", bucket);
    if let Some(p) = prefix {
        r.context.insert("s3:prefix".into(), p.into());
    }
    r
}

#[test]
fn the_tenant_role_policy_allows_its_own_prefixes_and_denies_another_tenants() {
    let p = policy();
    let obj = |bucket: &str, key: &str| format!("{bucket}/{key}");
    for (me, other) in [("alice", "team-vision"), ("team-vision", "alice")] {
        let mine = Some(me);
        // Datasets: read its own, never write them, never read another tenant's.
        let own_data = obj(DATASETS, &format!("{me}/coco128/images/0001.jpg"));
        let their_data = obj(DATASETS, &format!("{other}/coco128/images/0001.jpg"));
        assert_eq!(evaluate(&p, &session(mine, "s3:GetObject", &own_data)), Decision::Allow, "{me}");
        assert_eq!(evaluate(&p, &session(mine, "s3:PutObject", &own_data)), Decision::ImplicitDeny, "{me}");
        assert_eq!(evaluate(&p, &session(mine, "s3:GetObject", &their_data)), Decision::ImplicitDeny, "{me}");
        // Checkpoints: read and write its own only.
        let own_ckpt = obj(CHECKPOINTS, &format!("{me}/job_42/weights/last.pt"));
        let their_ckpt = obj(CHECKPOINTS, &format!("{other}/job_42/weights/last.pt"));
        for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"] {
            assert_eq!(evaluate(&p, &session(mine, action, &own_ckpt)), Decision::Allow, "{me} {action}");
            assert_eq!(
                evaluate(&p, &session(mine, action, &their_ckpt)),
                Decision::ImplicitDeny,
                "{me} {action}"
            );
        }
        // The old, unscoped checkpoint layout is not reachable either.
        let flat = obj(CHECKPOINTS, "job_42/weights/last.pt");
        assert_eq!(evaluate(&p, &session(mine, "s3:GetObject", &flat)), Decision::ImplicitDeny);
        // Listing: only under its own prefix.
        for bucket in [DATASETS, CHECKPOINTS] {
            assert_eq!(evaluate(&p, &list(me, bucket, Some(&format!("{me}/")))), Decision::Allow);
            assert_eq!(evaluate(&p, &list(me, bucket, Some(&format!("{me}/job_42/")))), Decision::Allow);
            assert_eq!(evaluate(&p, &list(me, bucket, Some(&format!("{other}/")))), Decision::ImplicitDeny);
            assert_eq!(evaluate(&p, &list(me, bucket, None)), Decision::ImplicitDeny, "the whole bucket");
        }
        // Other buckets: nothing.
        let artifact = obj(ARTIFACTS, &format!("{me}/1/model.pkl"));
        assert_eq!(evaluate(&p, &session(mine, "s3:GetObject", &artifact)), Decision::ImplicitDeny);
    }
    // A tenant whose name is a prefix of another's does not reach it: `ali/*` is not `alice/*`.
    let alice = obj(DATASETS, "alice/coco128/0001.jpg");
    assert_eq!(evaluate(&p, &session(Some("ali"), "s3:GetObject", &alice)), Decision::ImplicitDeny);
    assert_eq!(evaluate(&p, &list("ali", DATASETS, Some("alice/"))), Decision::ImplicitDeny);
    // A session without the namespace tag (the role assumed some other way) gets nothing.
    let own = obj(CHECKPOINTS, "alice/job_42/weights/last.pt");
    assert_eq!(evaluate(&p, &session(None, "s3:GetObject", &own)), Decision::ExplicitDeny);
}

/// `s3://bucket/key` as an object ARN.
fn object_arn(uri: &str) -> String {
    format!("arn:aws:s3:::{}", uri.strip_prefix("s3://").expect("an s3:// URI"))
}

#[test]
fn the_paths_a_tenant_job_renders_are_the_ones_its_role_reaches() {
    let out = Test::in_repo()
        .args(&[
            "render",
            "-e",
            "environments/base.yaml",
            "-e",
            "environments/eks-dev.yaml",
            "--no-addons",
            "--terraform-outputs",
            "terraform/envs/eks-dev/outputs.example.json",
            "-o",
            "json",
        ])
        .status(0)
        .run();
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let job = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Job" && o["metadata"]["name"] == "yolo-job-42")
        .expect("the custom trainer Job of the shipped jobs directory");
    let tenant = job["metadata"]["namespace"].as_str().unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let checkpoint = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--checkpoint_path="))
        .next()
        .unwrap();
    let dataset = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "DATASET_S3_URI")
        .and_then(|e| e["value"].as_str())
        .unwrap();
    assert_eq!(
        checkpoint,
        format!("s3://trainstack-dev-training-checkpoints-123456789012/{tenant}/job_42/weights/last.pt")
    );
    assert_eq!(dataset, format!("s3://trainstack-dev-training-datasets-123456789012/{tenant}/coco128"));

    let p = policy();
    let ckpt = object_arn(checkpoint);
    let data = format!("{}/images/0001.jpg", object_arn(dataset));
    assert!(glob(&format!("{DATASETS}/*"), &data), "the dataset is in Terraform's datasets bucket");
    for action in ["s3:GetObject", "s3:PutObject"] {
        assert_eq!(evaluate(&p, &session(Some(tenant), action, &ckpt)), Decision::Allow, "{action}");
        assert_eq!(evaluate(&p, &session(Some("alice"), action, &ckpt)), Decision::ImplicitDeny, "{action}");
    }
    assert_eq!(evaluate(&p, &session(Some(tenant), "s3:GetObject", &data)), Decision::Allow);
    assert_eq!(evaluate(&p, &session(Some("alice"), "s3:GetObject", &data)), Decision::ImplicitDeny);
}
