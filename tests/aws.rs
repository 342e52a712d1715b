//! The AWS side of eks environments: the real binary against `moto_server` (EKS node groups, S3)
//! with the Kubernetes side on the API server double, and the EKS token against botocore.
//!
//! moto gaps covered elsewhere with focused fakes: DescribeUpdate and node group health
//! (`src/aws/nodegroups.rs` tests), valid cluster CA data (`src/aws/eks.rs` tests). moto has no
//! EKS Pod Identity associations: the launcher `tests/fixtures/aws/moto_server.py` adds a fake
//! of those calls to moto's own EKS routes, so the tenant identity tests run against moto too.

use std::process::Command;

use serde_json::Value;

use crate::harness::{repo, ClusterScenario, Output};
use crate::support::apiserver::ApiServer;
use crate::support::moto::Moto;
use crate::support::pytools;

const CONTEXT: &str = "eks-test";
const CLUSTER: &str = "trainstack-dev";
const TF_OUTPUTS: &str = "terraform/envs/eks-dev/outputs.example.json";
const SCRATCH: &str = "trainstack-dev-scratch-123456789012";
const TF_BUCKETS: [&str; 3] = [
    "trainstack-dev-mlflow-artifacts-123456789012",
    "trainstack-dev-training-datasets-123456789012",
    "trainstack-dev-training-checkpoints-123456789012",
];

/// The RDS-managed secret of the MLflow backend store as moto holds it: the password has
/// characters a URI must encode, and is what tests grep every output for.
pub(crate) const RDS_USER: &str = "mlflow";
pub(crate) const RDS_PASSWORD: &str = "Zq8sEcReT@vAlUe:4711/x";
/// `aws.secrets` of eks-dev builds the URI with this endpoint (the outputs fixture's).
pub(crate) const RDS_ENDPOINT: &str = "trainstack-dev-mlflow.c9x8y7z6w5v4.us-east-1.rds.amazonaws.com:5432";

/// moto for AWS, the API double for Kubernetes, and base + eks-dev + CRD add-ons + an overlay
/// with the Terraform outputs fixture, its `rds_secret_arn` replaced by a secret moto holds.
pub(crate) struct Scenario {
    pub(crate) cluster: ClusterScenario,
    pub(crate) moto: Moto,
    /// ARN of the RDS secret in moto (the fixture's when moto refused to create it).
    pub(crate) rds_secret_arn: String,
}

impl Scenario {
    /// moto with the EKS cluster and the Terraform-owned buckets already there.
    pub(crate) async fn start() -> Self {
        let s = Self::bare().await;
        s.create_cluster().await;
        let s3 = s.moto.s3().await;
        for b in TF_BUCKETS {
            s3.create_bucket().bucket(b).send().await.unwrap();
        }
        s
    }

    /// moto with nothing in it.
    async fn bare() -> Self {
        Self::with_moto(Moto::start()).await
    }

    async fn with_moto(moto: Moto) -> Self {
        let cluster = ClusterScenario::new(
            ApiServer::start().await,
            &["environments/base.yaml", "environments/eks-dev.yaml"],
            CONTEXT,
        );
        let mut outputs: Value =
            serde_json::from_str(&std::fs::read_to_string(repo().join(TF_OUTPUTS)).unwrap()).unwrap();
        // moto picks the ARN's random suffix; a moto enforcing IAM refuses the create, and the
        // fixture's ARN stays (those runs fail before reading it).
        let secret = serde_json::json!({"username": RDS_USER, "password": RDS_PASSWORD}).to_string();
        let created = moto
            .secretsmanager()
            .await
            .create_secret()
            .name("rds!db-test")
            .secret_string(secret)
            .send()
            .await;
        if let Ok(arn) = created.map(|c| c.arn.unwrap()) {
            outputs["rds_secret_arn"]["value"] = Value::String(arn);
        }
        let rds_secret_arn = outputs["rds_secret_arn"]["value"].as_str().unwrap().to_string();
        let tf_outputs = cluster.path("tf-outputs.json");
        std::fs::write(&tf_outputs, outputs.to_string()).unwrap();
        let mut cluster = cluster.always(&["--terraform-outputs", &tf_outputs.display().to_string()]);
        for (k, v) in moto.client_env() {
            cluster = cluster.var(&k, &v);
        }
        Scenario { cluster, moto, rds_secret_arn }
    }

    async fn create_cluster(&self) {
        let vpc =
            aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids("subnet-0a1b2c3d4e5f60001").build();
        self.moto
            .eks()
            .await
            .create_cluster()
            .name(CLUSTER)
            .role_arn("arn:aws:iam::123456789012:role/trainstack-dev-cluster")
            .resources_vpc_config(vpc)
            .send()
            .await
            .unwrap();
    }

    pub(crate) fn overlay(&self, yaml: &str) {
        // `pool_overlay`'s empty trial batch directory.
        std::fs::create_dir_all(self.cluster.path("no-batches")).unwrap();
        self.cluster.overlay(yaml);
    }

    /// Kubernetes on the double (`--kubeconfig`, `--context`), AWS on moto.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        self.test(args).run_async().await
    }

    /// The run of `args` against the EKS context, for expectations.
    pub(crate) fn test(&self, args: &[&str]) -> crate::harness::Test {
        let mut all = args.to_vec();
        all.extend(["--context", CONTEXT]);
        self.cluster.test(&all)
    }

    async fn node_group(&self, name: &str) -> Option<aws_sdk_eks::types::Nodegroup> {
        let eks = self.moto.eks().await;
        eks.describe_nodegroup().cluster_name(CLUSTER).nodegroup_name(name).send().await.ok()?.nodegroup
    }

    /// Every pod identity association of the cluster as `namespace/sa role [environment tag]`,
    /// sorted (moto has none: the fake in tests/fixtures/aws/moto_server.py answers).
    async fn associations(&self) -> Vec<String> {
        let eks = self.moto.eks().await;
        let list = eks.list_pod_identity_associations().cluster_name(CLUSTER).send().await.unwrap();
        let mut out = Vec::new();
        for a in list.associations() {
            let d = eks
                .describe_pod_identity_association()
                .cluster_name(CLUSTER)
                .association_id(a.association_id().unwrap())
                .send()
                .await
                .unwrap()
                .association
                .unwrap();
            let tag = d.tags().and_then(|t| t.get("trainstack.io/environment")).cloned().unwrap_or_default();
            out.push(format!(
                "{}/{} {} [{tag}]",
                d.namespace().unwrap(),
                d.service_account().unwrap(),
                d.role_arn().unwrap()
            ));
        }
        out.sort();
        out
    }

    /// An association made outside this environment (eksctl, another environment).
    async fn foreign_association(&self, namespace: &str, sa: &str, role: &str, tags: &[(&str, &str)]) {
        self.moto
            .eks()
            .await
            .create_pod_identity_association()
            .cluster_name(CLUSTER)
            .namespace(namespace)
            .service_account(sa)
            .role_arn(role)
            .set_tags(Some(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .send()
            .await
            .unwrap();
    }

    async fn node_group_names(&self) -> Vec<String> {
        let eks = self.moto.eks().await;
        let mut names =
            eks.list_nodegroups().cluster_name(CLUSTER).send().await.unwrap().nodegroups.unwrap_or_default();
        names.sort();
        names
    }
}

fn line<'a>(out: &'a Output, prefix: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{}\n{}", out.stdout, out.stderr))
}

/// The pool of eks-dev with some fields changed, as a whole-list overlay.
fn pool_overlay(name: &str, instance_type: &str, max_size: u32) -> String {
    // The shipped GPU trial batch pins gpu-p3; without that pool, its directory is swapped for
    // an empty one (`no-batches`, which the test creates).
    let hpo = if name == "gpu-p3" { "" } else { "  hpo:\n    batches_dir: no-batches\n" };
    format!(
        "components:\n{hpo}  gpu:\n    pools:\n      - name: {name}\n        instance_types: [{instance_type}]\n        capacity_type: SPOT\n        min_size: 0\n        desired_size: 0\n        max_size: {max_size}\n  ray:\n    gpu_workers:\n      pool: {name}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_creates_node_groups_and_buckets_and_a_rerun_writes_nothing() {
    let s = Scenario::start().await;
    let before = s.moto.writes().len();
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(out.stdout.contains("+ EKS node group gpu-p3 (create)"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("+ S3 bucket {SCRATCH} (create)")), "{}", out.stdout);
    assert_eq!(
        line(&out, "apply aws:"),
        "apply aws: 4 created, 0 updated, 3 unchanged, 0 to replace, 0 pruned, 0 failed",
        "the node group, the scratch bucket and the two tenants' pod identity associations"
    );
    assert!(line(&out, "apply:").ends_with(" 0 failed"), "the Kubernetes side applied too");
    assert!(s
        .cluster
        .server
        .get("apps/v1", "DaemonSet", Some("kube-system"), "nvidia-device-plugin")
        .is_some());

    // The node group as the spec wants it.
    let g = s.node_group("gpu-p3").await.expect("node group created");
    assert_eq!(g.instance_types(), ["p3.2xlarge"]);
    assert_eq!(g.ami_type().unwrap().as_str(), "AL2023_x86_64_NVIDIA");
    assert_eq!(g.capacity_type().unwrap().as_str(), "SPOT");
    assert_eq!(g.disk_size(), Some(100));
    let sc = g.scaling_config().unwrap();
    assert_eq!((sc.min_size(), sc.desired_size(), sc.max_size()), (Some(0), Some(0), Some(5)));
    let labels = g.labels().unwrap();
    assert_eq!(labels["nvidia.com/gpu.present"], "true");
    assert_eq!(labels["trainstack.io/pool"], "gpu-p3");
    let taints: Vec<String> = g
        .taints()
        .iter()
        .map(|t| format!("{}={}:{}", t.key().unwrap(), t.value().unwrap(), t.effect().unwrap().as_str()))
        .collect();
    assert_eq!(taints, ["nvidia.com/gpu=true:NO_SCHEDULE"]);
    assert_eq!(g.tags().unwrap()["trainstack.io/environment"], "eks-dev");
    assert_eq!(g.node_role(), Some("arn:aws:iam::123456789012:role/trainstack-dev-gpu-nodes"));
    assert_eq!(g.subnets().len(), 3, "the Terraform private subnets");

    // The scratch bucket as declared: unversioned, SSE-S3, private, two lifecycle rules.
    let s3 = s.moto.s3().await;
    let v = s3.get_bucket_versioning().bucket(SCRATCH).send().await.unwrap();
    assert!(v.status().is_none(), "versioning never enabled: {v:?}");
    let enc = s3.get_bucket_encryption().bucket(SCRATCH).send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(), "AES256");
    let pab = s3.get_public_access_block().bucket(SCRATCH).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    let tags = s3.get_bucket_tagging().bucket(SCRATCH).send().await.unwrap();
    assert!(
        tags.tag_set().iter().any(|t| t.key() == "trainstack.io/environment" && t.value() == "eks-dev"),
        "{tags:?}"
    );
    let lc = s3.get_bucket_lifecycle_configuration().bucket(SCRATCH).send().await.unwrap();
    let mut ids: Vec<&str> = lc.rules().iter().filter_map(|r| r.id()).collect();
    ids.sort();
    assert_eq!(ids, ["abort-uploads", "expire-scratch"]);
    // Terraform's buckets were only looked at.
    let tf_writes: Vec<_> = s
        .moto
        .writes()
        .into_iter()
        .skip(before)
        .filter(|r| TF_BUCKETS.iter().any(|b| r.path.contains(b)))
        .collect();
    assert!(tf_writes.is_empty(), "Terraform-owned buckets are never written: {tf_writes:?}");

    // A second run changes nothing, on either side.
    let writes = s.moto.writes().len();
    s.cluster.server.reset_writes();
    let again = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(s.moto.writes()[writes..], [], "a no-op apply makes no AWS write");
    assert_eq!(s.cluster.server.writes().total(), 0, "nor a Kubernetes write");
    assert_eq!(
        line(&again, "apply aws:"),
        "apply aws: 0 created, 0 updated, 7 unchanged, 0 to replace, 0 pruned, 0 failed"
    );
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_size_updates_in_place_and_instance_type_needs_replacement() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let created_at = s.node_group("gpu-p3").await.unwrap().created_at().cloned();

    s.overlay(&pool_overlay("gpu-p3", "p3.2xlarge", 8));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains("~ EKS node group gpu-p3 (update)\n    max_size: 5 -> 8\n"),
        "{}",
        diff.stdout
    );
    let json = s.test(&["diff", "-o", "json"]).status(2).run_async().await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let aws: Vec<&Value> =
        v["aws"]["changes"].as_array().unwrap().iter().filter(|c| c["action"] != "unchanged").collect();
    assert_eq!(aws.len(), 1, "{aws:?}");
    assert_eq!((aws[0]["resource"].as_str(), aws[0]["name"].as_str()), (Some("NodeGroup"), Some("gpu-p3")));
    assert_eq!(aws[0]["action"], "update");
    assert_eq!(v["aws"]["summary"]["updated"], 1);
    assert!(v["changes"].is_array(), "the Kubernetes objects sit alongside");

    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let g = s.node_group("gpu-p3").await.unwrap();
    assert_eq!(g.scaling_config().unwrap().max_size(), Some(8));
    assert_eq!(g.created_at().cloned(), created_at, "updated in place, not recreated");
    assert!(line(&out, "apply aws:").starts_with("apply aws: 0 created, 1 updated, "), "{}", out.stdout);

    s.overlay(&pool_overlay("gpu-p3", "g5.xlarge", 8));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains(
            "! EKS node group gpu-p3 (requires replacement)\n    instance_types: p3.2xlarge -> g5.xlarge\n"
        ),
        "{}",
        diff.stdout
    );
    let writes = s.moto.writes().len();
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert!(out.stdout.contains("! EKS node group gpu-p3 failed: requires replacement"), "{}", out.stdout);
    assert_eq!(s.moto.writes()[writes..], [], "nothing was changed");
    assert_eq!(s.node_group("gpu-p3").await.unwrap().instance_types(), ["p3.2xlarge"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_deletes_only_node_groups_this_environment_created() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // One node group from Terraform (untagged) and one from another environment.
    foreign_node_group(&s, "cpu", &[]).await;
    foreign_node_group(&s, "team-b", &[("trainstack.io/environment", "eks-b")]).await;
    s.overlay(&pool_overlay("gpu-g5", "g5.xlarge", 5));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(diff.stdout.contains("+ EKS node group gpu-g5 (create)"), "{}", diff.stdout);
    assert!(diff.stdout.contains("- EKS node group gpu-p3 (prune)"), "{}", diff.stdout);
    assert!(!diff.stdout.contains("node group cpu") && !diff.stdout.contains("team-b"), "{}", diff.stdout);

    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(s.node_group_names().await, ["cpu", "gpu-g5", "gpu-p3", "team-b"], "no prune without --prune");

    let writes = s.moto.writes().len();
    let dry = s.test(&["apply", "--no-wait", "--prune", "--dry-run"]).status(0).run_async().await;
    assert!(dry.stdout.contains("- EKS node group gpu-p3 (prune)"), "{}", dry.stdout);
    assert_eq!(s.moto.writes()[writes..], [], "--dry-run writes nothing");

    let out = s.test(&["apply", "--no-wait", "--prune"]).status(0).run_async().await;
    assert!(out.stdout.contains("- EKS node group gpu-p3 (prune)"), "{}", out.stdout);
    assert!(line(&out, "apply aws:").contains(" 1 pruned, 0 failed"), "{}", out.stdout);
    assert_eq!(s.node_group_names().await, ["cpu", "gpu-g5", "team-b"]);
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_drift_shows_in_diff_and_apply_restores_the_declared_settings() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let s3 = s.moto.s3().await;
    // Someone switches to KMS, opens public access and drops the lifecycle rules. (Versioning
    // drift is covered by the unit tests of `s3::drift`: moto 5.2 answers GetBucketVersioning of
    // a versioned bucket with an XML root the Rust SDK rejects.)
    let kms = aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
        .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .build()
        .unwrap();
    let kms = aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
        .rules(
            aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(kms)
                .build(),
        )
        .build()
        .unwrap();
    s3.put_bucket_encryption()
        .bucket(SCRATCH)
        .server_side_encryption_configuration(kms)
        .send()
        .await
        .unwrap();
    s3.delete_public_access_block().bucket(SCRATCH).send().await.unwrap();
    s3.delete_bucket_lifecycle().bucket(SCRATCH).send().await.unwrap();

    let diff = s.test(&["diff"]).status(2).run_async().await;
    let expected = format!(
        "~ S3 bucket {SCRATCH} (update)\n    encryption: sse-kms (aws/s3 key) -> sse-s3\n    public access block: not blocked -> all public access blocked\n    lifecycle: none -> abort-uploads (abort uploads after 1d); expire-scratch (expire after 14d)\n"
    );
    assert!(diff.stdout.contains(&expected), "{}", diff.stdout);
    let json = s.run(&["diff", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let bucket = v["aws"]["changes"].as_array().unwrap().iter().find(|c| c["name"] == SCRATCH).unwrap();
    assert_eq!(bucket["action"], "update");
    assert_eq!(bucket["details"].as_array().unwrap().len(), 3);

    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let pab = s3.get_public_access_block().bucket(SCRATCH).send().await.unwrap();
    assert_eq!(pab.public_access_block_configuration().unwrap().block_public_policy(), Some(true));
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_problems_are_reported_clearly() {
    // No cluster in the account.
    let s = Scenario::bare().await;
    let out = s.test(&["diff"]).status(1).run_async().await;
    assert!(
        out.stderr.contains("EKS cluster \"trainstack-dev\" does not exist in us-east-1"),
        "{}",
        out.stderr
    );
    // The cluster, but not the buckets Terraform should have made.
    s.create_cluster().await;
    let out = s.test(&["diff"]).status(1).run_async().await;
    assert!(
        out.stdout.contains(&format!(
            "! S3 bucket {} failed: bucket \"{}\" does not exist; it is managed_by terraform",
            TF_BUCKETS[0], TF_BUCKETS[0]
        )),
        "{}",
        out.stdout
    );
    let writes = s.moto.writes().len();
    s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert_eq!(s.moto.writes()[writes..], [], "nothing is written while a Terraform bucket is missing");
    assert_eq!(s.cluster.server.writes().total(), 0);

    // A node group of the same name that this environment did not create is left alone.
    foreign_node_group(&s, "gpu-p3", &[]).await;
    let out = s.run(&["diff"]).await;
    assert!(
        out.stdout.contains("! EKS node group gpu-p3 failed: a node group of this name exists in the cluster, created by something other than trainstack"),
        "{}",
        out.stdout
    );

    // Without --kubeconfig/--context an eks environment connects through DescribeCluster; moto's
    // CA data is random, which must be reported as such (a real CA is covered in src/aws/eks.rs).
    let out = s.cluster.test_without_kubeconfig(&["diff"]).status(1).run_async().await;
    assert!(
        out.stderr
            .contains("EKS cluster \"trainstack-dev\": certificate authority data from DescribeCluster"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_denied_names_the_call_and_what_to_check() {
    // moto enforces IAM once INITIAL_NO_AUTH_ACTION_COUNT requests have passed: with 0, the test
    // credentials (no such IAM user) are refused from the first call.
    let s = Scenario::with_moto(Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])).await;
    let out = s.test(&["diff"]).status(1).run_async().await;
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("access denied"), "{all}");
    assert!(all.contains("check AWS_PROFILE or the role's IAM policy"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_aws_endpoint_reads_as_its_cause_without_a_debug_dump() {
    // A port nothing listens on: every AWS call fails before a response (a dispatch failure).
    let port = crate::support::ports::free_port();
    let tf_outputs = repo().join(TF_OUTPUTS).display().to_string();
    let mut cluster = ClusterScenario::new(
        ApiServer::start().await,
        &["environments/base.yaml", "environments/eks-dev.yaml"],
        CONTEXT,
    )
    .always(&["--terraform-outputs", &tf_outputs]);
    let endpoint = format!("http://127.0.0.1:{port}");
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"),
    ] {
        cluster = cluster.var(k, v);
    }
    let out = cluster.test(&["diff", "--context", CONTEXT]).status(1).run_async().await;
    let all = format!("{}{}", out.stdout, out.stderr);
    // The first AWS call with --context: reading the Secrets Manager secret of aws.secrets.
    assert!(all.contains("secretsmanager:GetSecretValue"), "names the call: {all}");
    assert!(all.contains("dispatch failure") && all.contains("Connection refused"), "says why: {all}");
    assert!(!all.contains("DispatchFailure(") && !all.contains("source:"), "no Debug dump: {all}");
}

/// The token's presigned URL equals the one botocore computes, the way `aws eks get-token`
/// does, for the same credentials and time.
#[test]
fn eks_token_matches_the_botocore_reference() {
    use trainstack::aws::token::{presigned_url, token_from_url};
    let script = repo().join("tests/fixtures/aws/eks_token_reference.py");
    let epoch = 1_767_225_600u64; // 2026-01-01T00:00:00Z
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    for (region, cluster, session) in [
        ("us-east-1", "trainstack-dev", ""),
        ("eu-central-1", "prod.cluster_1", "FwoGZXIvYXdzEXAMPLE/token+with=chars"),
    ] {
        let out = Command::new(pytools::tool("python"))
            .arg(&script)
            .args([region, cluster, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session])
            .arg(epoch.to_string())
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .expect("run python");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reference = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            (!session.is_empty()).then(|| session.to_string()),
            None,
            "test",
        );
        let ours = presigned_url(&creds, region, cluster, time).unwrap();
        assert_eq!(ours, reference, "presigned URL for {cluster} in {region}");
        assert!(reference.contains("X-Amz-Expires=60") && reference.contains("x-k8s-aws-id"));
        let token = token_from_url(&ours);
        use base64::Engine;
        let body = token.strip_prefix("k8s-aws-v1.").unwrap();
        assert!(!body.ends_with('='), "unpadded");
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), reference);
    }
}

/// Creates a node group directly in moto, tagged as `tags` say (Terraform's, another
/// environment's, or one this environment created and no longer declares).
async fn foreign_node_group(s: &Scenario, name: &str, tags: &[(&str, &str)]) {
    s.moto
        .eks()
        .await
        .create_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name(name)
        .node_role("arn:aws:iam::123456789012:role/other")
        .subnets("subnet-0a1b2c3d4e5f60001")
        .set_tags(Some(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_removes_the_node_groups_this_environment_created_and_keeps_buckets() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    foreign_node_group(&s, "cpu", &[]).await;
    foreign_node_group(&s, "team-b", &[("trainstack.io/environment", "eks-b")]).await;
    // Created by this environment under a pool name it no longer declares.
    foreign_node_group(&s, "gpu-old", &[("trainstack.io/environment", "eks-dev")]).await;

    let writes = s.moto.writes().len();
    let dry = s.test(&["delete", "--dry-run"]).status(0).run_async().await;
    assert!(dry.stdout.contains("- EKS node group gpu-old (delete)"), "{}", dry.stdout);
    assert!(dry.stdout.contains("- EKS node group gpu-p3 (delete)\n    created by this environment (p3.2xlarge x SPOT, 0 of 0..5 nodes)\n"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("node group cpu") && !dry.stdout.contains("team-b"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(&format!("  kept S3 bucket {SCRATCH}: it holds data and is never deleted by trainstack; once it is no longer needed: aws s3 rb s3://{SCRATCH} --force\n")),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains("kept S3 bucket trainstack-dev-mlflow"),
        "Terraform's buckets are Terraform's to remove"
    );
    let (first_group, first_object) = (
        dry.stdout.find("- EKS node group").unwrap(),
        dry.stdout.find("- DaemonSet kube-system/nvidia-device-plugin (prune)").unwrap(),
    );
    assert!(first_object < first_group, "listed in the order delete goes: {}", dry.stdout);
    assert_eq!(
        line(&dry, "delete --dry-run aws:"),
        "delete --dry-run aws: 2 node groups to delete, 2 pod identity associations to delete, 0 failed, 1 buckets kept"
    );
    let json = s.run(&["delete", "--dry-run", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["aws"]["kept"], serde_json::json!([SCRATCH]));
    let names: Vec<&str> =
        v["aws"]["changes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gpu-old", "gpu-p3", "alice/trainer", "team-vision/trainer"]);
    assert!(v["aws"]["changes"].as_array().unwrap().iter().all(|c| c["action"] == "delete"));
    assert_eq!(s.moto.writes()[writes..], [], "--dry-run writes nothing to AWS");
    assert_eq!(s.node_group_names().await, ["cpu", "gpu-old", "gpu-p3", "team-b"]);

    // Off a terminal, without --yes: refused before anything is deleted.
    let refused = s.test(&["delete"]).status(1).run_async().await;
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    assert_eq!(s.node_group_names().await, ["cpu", "gpu-old", "gpu-p3", "team-b"]);

    let out = s.test(&["delete", "--yes"]).status(0).run_async().await;
    assert!(out.stderr.contains("delete node groups: 2 objects"), "progress: {}", out.stderr);
    assert_eq!(
        line(&out, "delete aws:"),
        "delete aws: 2 node groups deleted, 2 pod identity associations deleted, 0 failed, 1 buckets kept"
    );
    assert_eq!(s.node_group_names().await, ["cpu", "team-b"], "only the groups this environment created");
    assert!(
        s.cluster.server.get("apps/v1", "DaemonSet", Some("kube-system"), "nvidia-device-plugin").is_none(),
        "the Kubernetes objects went first"
    );
    let s3 = s.moto.s3().await;
    s3.head_bucket().bucket(SCRATCH).send().await.expect("the scratch bucket is kept");

    // A rerun finds nothing left of this environment.
    let again = s.test(&["delete", "--yes"]).status(0).run_async().await;
    assert_eq!(line(&again, "delete aws:"), "delete aws: 0 node groups deleted, 0 failed, 1 buckets kept");
}

/// A fake `terraform` for `down`: `destroy` prints the cluster's node groups as moto has them
/// at that moment (through boto3; `no cluster` without one), so the test sees what was left
/// when destroy started.
const FAKE_TERRAFORM: &str = r#"#!/bin/sh
echo "terraform $*" >> "$FAKE_DIR/log.txt"
case "$1" in -chdir=*) shift ;; esac
case "$1" in
  output) cat "$FAKE_DIR/outputs.json" ;;
  destroy)
    "$FAKE_PYTHON" -c "import boto3; c = boto3.client('eks', region_name='us-east-1'); print('node groups at destroy:', sorted(c.list_nodegroups(clusterName='trainstack-dev')['nodegroups']) if 'trainstack-dev' in c.list_clusters()['clusters'] else 'no cluster')" >&2 || exit 1
    echo "Destroy complete! Resources: 3 destroyed." ;;
esac
exit 0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_on_eks_deletes_the_node_groups_before_terraform_destroy() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    foreign_node_group(&s, "cpu", &[]).await;
    let (out, dir) = down_with_fake_terraform(&s, 0).await;
    assert!(
        out.stderr.contains("node groups at destroy: ['cpu']"),
        "gpu-p3 was gone when terraform destroy started: {}",
        out.stderr
    );
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
    assert!(log.lines().last().unwrap().contains(" destroy "), "{log}");
    assert_eq!(s.node_group_names().await, ["cpu"]);
    assert!(
        line(&out, "delete aws:")
            .starts_with("delete aws: 1 node groups deleted, 2 pod identity associations deleted, 0 failed"),
        "{}",
        out.stdout
    );
}

/// `down --yes` with a fake terraform on PATH (its calls go to log.txt); returns the output
/// and the scenario directory.
async fn down_with_fake_terraform(s: &Scenario, status: i32) -> (Output, std::path::PathBuf) {
    let dir = s.cluster.path("");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("tf/.terraform")).unwrap();
    std::fs::write(dir.join("tf/.terraform/terraform.tfstate"), "{}").unwrap();
    std::fs::copy(repo().join(TF_OUTPUTS), dir.join("outputs.json")).unwrap();
    let fake = dir.join("bin/terraform");
    std::fs::write(&fake, FAKE_TERRAFORM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.overlay("terraform:\n  dir: tf\n");
    let path = format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = s
        .cluster
        .test(&["down", "--yes", "--context", CONTEXT])
        .env("PATH", &path)
        .env("FAKE_DIR", &dir.display().to_string())
        .env("FAKE_PYTHON", &pytools::tool("python").display().to_string())
        .status(status)
        .run_async()
        .await;
    (out, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_resumes_after_the_eks_cluster_is_gone_and_finishes_the_destroy() {
    // A `down` cut off after Terraform had removed the cluster: moto has no cluster now.
    let s = Scenario::bare().await;
    let (out, dir) = down_with_fake_terraform(&s, 0).await;
    assert!(
        out.stderr.contains(&format!(
            "EKS cluster {CLUSTER:?} does not exist (any more); no objects or node groups to delete"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("node groups at destroy: no cluster"), "{}", out.stderr);
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
    assert!(log.lines().last().unwrap().contains(" destroy "), "terraform destroy ran: {log}");
}

/// The `status -o json` row of `object`.
async fn status_row(s: &Scenario, object: &str) -> Value {
    let out = s.test(&["status", "-o", "json"]).status(2).run_async().await;
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    rows.into_iter()
        .find(|r| r["object"] == object)
        .unwrap_or_else(|| panic!("no row {object}: {}", out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_node_group_and_bucket_drift() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let group = status_row(&s, "EKS node group gpu-p3").await;
    assert_eq!(group["component"], "gpu");
    assert_eq!((group["state"].as_str(), group["ready"].as_str()), (Some("in sync"), Some("ready")));
    assert_eq!(group["details"], serde_json::json!(["scaling: 0 nodes desired (min 0, max 5)"]));
    let bucket = status_row(&s, &format!("S3 bucket {SCRATCH}")).await;
    assert_eq!((bucket["component"].as_str(), bucket["state"].as_str()), (Some("s3"), Some("in sync")));
    let tf = status_row(&s, &format!("S3 bucket {}", TF_BUCKETS[0])).await;
    assert_eq!((tf["state"].as_str(), tf["ready"].as_str()), (Some("in sync"), Some("ready")));

    // Someone scales the group by hand, opens the bucket, and a group of this environment is
    // left from a pool it no longer declares.
    let scaling =
        aws_sdk_eks::types::NodegroupScalingConfig::builder().min_size(0).desired_size(2).max_size(5).build();
    s.moto
        .eks()
        .await
        .update_nodegroup_config()
        .cluster_name(CLUSTER)
        .nodegroup_name("gpu-p3")
        .scaling_config(scaling)
        .send()
        .await
        .unwrap();
    s.moto.s3().await.delete_public_access_block().bucket(SCRATCH).send().await.unwrap();
    foreign_node_group(&s, "gpu-old", &[("trainstack.io/environment", "eks-dev")]).await;
    foreign_node_group(&s, "cpu", &[]).await;

    let writes = s.moto.writes().len();
    let text = s.test(&["status"]).status(2).run_async().await;
    let row = text.stdout.lines().find(|l| l.contains("EKS node group gpu-p3")).unwrap();
    assert!(row.starts_with("gpu ") && row.contains(" drifted ") && row.ends_with(" ready"), "{row}");
    assert!(text.stdout.contains("    desired_size: 2 -> 0\n"), "{}", text.stdout);
    assert!(text.stdout.contains("    scaling: 2 nodes desired (min 0, max 5)\n"), "{}", text.stdout);
    assert!(
        !text.stdout.contains("node group cpu"),
        "foreign groups are not this environment's: {}",
        text.stdout
    );
    assert_eq!(s.moto.writes()[writes..], [], "status writes nothing");

    let group = status_row(&s, "EKS node group gpu-p3").await;
    assert_eq!(group["state"], "drifted");
    assert_eq!(group["details"][0], "desired_size: 2 -> 0");
    let old = status_row(&s, "EKS node group gpu-old").await;
    assert_eq!(old["state"], "undeclared");
    assert!(
        old["details"].as_array().unwrap().iter().any(|d| d == "apply --prune or delete removes it"),
        "{old}"
    );
    let bucket = status_row(&s, &format!("S3 bucket {SCRATCH}")).await;
    assert_eq!(bucket["state"], "drifted");
    assert_eq!(
        bucket["details"],
        serde_json::json!(["public access block: not blocked -> all public access blocked"])
    );

    // A declared setting EKS cannot change in place: pending replacement.
    s.overlay(&pool_overlay("gpu-p3", "g5.xlarge", 5));
    let group = status_row(&s, "EKS node group gpu-p3").await;
    assert_eq!(group["state"], "replace");
    assert_eq!(group["details"][0], "instance_types: p3.2xlarge -> g5.xlarge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_keeps_the_node_groups_while_a_kubernetes_object_is_left() {
    use crate::support::apiserver::{Fault, FaultRule};
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    // The device plugin's DaemonSet cannot be deleted: its pods may still run on the GPU nodes.
    s.cluster.server.add_fault(
        FaultRule::new(Fault::ServerError(500))
            .method("DELETE")
            .path_prefix("/apis/apps/v1/namespaces/kube-system/daemonsets"),
    );
    let writes = s.moto.writes().len();
    let out = s.test(&["delete", "--yes"]).status(1).run_async().await;
    assert!(
        out.stderr.contains(
            "EKS node groups gpu-p3 were not deleted: some Kubernetes objects could not be deleted"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(s.node_group_names().await, ["gpu-p3"]);
    assert_eq!(s.moto.writes()[writes..], [], "no AWS write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_on_eks_discovers_and_reads_the_applyset_parent_once() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let server = &s.cluster.server;
    let parent = crate::engine::parent_secret_path(server);
    server.clear_requests();
    // On eks apply resolves the set before the AWS side and applies what it resolved: nothing
    // changed, so one discovery, and the parent read once: resolving it reads the live state
    // the plan then decides on.
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(crate::engine::gets_of(server, "/api"), 1, "discovery of the core group");
    assert_eq!(crate::engine::gets_of(server, "/apis"), 1, "discovery of the API groups");
    assert_eq!(
        crate::engine::gets_of(server, &parent),
        1,
        "the parent: read once for resolving and planning"
    );
}

const TENANT_ROLE: &str = "arn:aws:iam::123456789012:role/trainstack-dev-tenant-trainer";

/// The tenants of base.yaml plus `extra`, as a whole-list overlay (team-vision keeps the GPU
/// quota its custom Job needs).
fn tenants_overlay(names: &[&str]) -> String {
    let mut t = String::from("components:\n  tenants:\n    list:\n");
    for n in names {
        t.push_str(&format!("      - name: {n}\n"));
        if *n == "team-vision" {
            // and its HPO workspace, which the shipped GPU trial batch runs in
            t.push_str("        quota: {cpu: \"32\", memory: 128Gi, gpu: 4, pods: 100}\n        hpo: {enabled: true}\n");
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_tenant_gets_its_identity_on_apply_and_loses_it_only_on_apply_prune_after_removal() {
    let s = Scenario::start().await;
    // Someone else's associations: never touched.
    s.foreign_association("research", "trainer", "arn:aws:iam::123456789012:role/research", &[]).await;
    s.foreign_association("team-b", "trainer", TENANT_ROLE, &[("trainstack.io/environment", "eks-b")]).await;
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains(&format!(
            "+ EKS pod identity association alice/trainer (create)\n    role_arn: {TENANT_ROLE}\n"
        )),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("+ EKS pod identity association team-vision/trainer (create)"),
        "{}",
        diff.stdout
    );
    assert!(!diff.stdout.contains("research") && !diff.stdout.contains("team-b"), "{}", diff.stdout);

    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(
        s.associations().await,
        [
            format!("alice/trainer {TENANT_ROLE} [eks-dev]"),
            "research/trainer arn:aws:iam::123456789012:role/research []".to_string(),
            format!("team-b/trainer {TENANT_ROLE} [eks-b]"),
            format!("team-vision/trainer {TENANT_ROLE} [eks-dev]"),
        ]
    );
    let writes = s.moto.writes().len();
    let again = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(s.moto.writes()[writes..], [], "a re-apply writes nothing");
    assert!(line(&again, "apply aws:").starts_with("apply aws: 0 created, 0 updated, "), "{}", again.stdout);
    s.test(&["diff"]).status(0).run_async().await;

    // A new tenant: its identity comes with the next apply, no Terraform change.
    s.overlay(&tenants_overlay(&["alice", "team-vision", "team-nlp"]));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains("+ EKS pod identity association team-nlp/trainer (create)"),
        "{}",
        diff.stdout
    );
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(line(&out, "apply aws:").starts_with("apply aws: 1 created, 0 updated, "), "{}", out.stdout);
    assert!(s.associations().await.contains(&format!("team-nlp/trainer {TENANT_ROLE} [eks-dev]")));
    let status = status_row(&s, "EKS pod identity association team-nlp/trainer").await;
    assert_eq!((status["state"].as_str(), status["ready"].as_str()), (Some("in sync"), Some("ready")));

    // alice leaves: planned as a prune, kept by a plain apply, deleted by apply --prune.
    s.overlay(&tenants_overlay(&["team-vision", "team-nlp"]));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains(&format!(
            "- EKS pod identity association alice/trainer (prune)\n    created by this environment, no longer declared (role {TENANT_ROLE})\n"
        )),
        "{}",
        diff.stdout
    );
    let status = status_row(&s, "EKS pod identity association alice/trainer").await;
    assert_eq!(status["state"], "undeclared");
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(
        s.associations().await.contains(&format!("alice/trainer {TENANT_ROLE} [eks-dev]")),
        "no prune without --prune"
    );
    let out = s.test(&["apply", "--no-wait", "--prune"]).status(0).run_async().await;
    assert!(line(&out, "apply aws:").contains(" 1 pruned, 0 failed"), "{}", out.stdout);
    assert_eq!(
        s.associations().await,
        [
            "research/trainer arn:aws:iam::123456789012:role/research []".to_string(),
            format!("team-b/trainer {TENANT_ROLE} [eks-b]"),
            format!("team-nlp/trainer {TENANT_ROLE} [eks-dev]"),
            format!("team-vision/trainer {TENANT_ROLE} [eks-dev]"),
        ]
    );

    // delete removes this environment's associations and nothing else.
    let out = s.test(&["delete", "--yes"]).status(0).run_async().await;
    assert!(
        line(&out, "delete aws:").contains(" 2 pod identity associations deleted, 0 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        s.associations().await,
        [
            "research/trainer arn:aws:iam::123456789012:role/research []".to_string(),
            format!("team-b/trainer {TENANT_ROLE} [eks-b]"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_association_trainstack_did_not_create_is_never_changed_or_deleted() {
    let s = Scenario::start().await;
    // eksctl gave alice's trainer another role before trainstack managed tenant identities.
    s.foreign_association("alice", "trainer", "arn:aws:iam::123456789012:role/alice-by-hand", &[]).await;
    // The same role by hand on team-vision is simply in sync.
    s.foreign_association("team-vision", "trainer", TENANT_ROLE, &[]).await;
    let diff = s.test(&["diff", "-v"]).status(1).run_async().await;
    assert!(
        diff.stdout.contains("! EKS pod identity association alice/trainer failed: an association of this ServiceAccount exists, created by something other than trainstack (eksctl, Terraform, the console), with role arn:aws:iam::123456789012:role/alice-by-hand; trainstack leaves it alone: delete it or set aws.pod_identity.role_arn to that role"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("= EKS pod identity association team-vision/trainer (unchanged, created by something other than trainstack (eksctl, Terraform, the console))\n"),
        "{}",
        diff.stdout
    );
    let writes = s.moto.writes().len();
    s.test(&["apply", "--no-wait", "--prune"]).status(1).run_async().await;
    assert_eq!(s.moto.writes()[writes..], [], "nothing is written while an association cannot be planned");
    s.test(&["delete", "--yes"]).status(0).run_async().await;
    assert_eq!(
        s.associations().await,
        [
            "alice/trainer arn:aws:iam::123456789012:role/alice-by-hand []".to_string(),
            format!("team-vision/trainer {TENANT_ROLE} []"),
        ],
        "delete removes only what this environment created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_tenant_role_updates_this_environments_associations_in_place() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let other = "arn:aws:iam::123456789012:role/trainstack-dev-tenant-trainer-v2";
    s.overlay(&format!("aws:\n  pod_identity:\n    role_arn: {other}\n"));
    let diff = s.test(&["diff"]).status(2).run_async().await;
    assert!(
        diff.stdout.contains(&format!(
            "~ EKS pod identity association alice/trainer (update)\n    role_arn: {TENANT_ROLE} -> {other}\n"
        )),
        "{}",
        diff.stdout
    );
    let status = status_row(&s, "EKS pod identity association alice/trainer").await;
    assert_eq!(status["state"], "drifted");
    let out = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(line(&out, "apply aws:").starts_with("apply aws: 0 created, 2 updated, "), "{}", out.stdout);
    assert_eq!(
        s.associations().await,
        [format!("alice/trainer {other} [eks-dev]"), format!("team-vision/trainer {other} [eks-dev]")]
    );
    let writes = s.moto.writes().len();
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(s.moto.writes()[writes..], [], "a re-apply writes nothing");
}
