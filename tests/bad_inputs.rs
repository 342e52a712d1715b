//! The corpus of bad inputs: each must fail before anything is rendered, with an error that
//! names the file, line, column and field. The exact text is pinned in tests/snapshots/.

use crate::harness::{Test, MINIMAL_ENV};

/// Runs `render` on the files and returns stderr, asserting the run failed and printed no YAML.
fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    let mut t = Test::new();
    for (path, content) in files {
        t = t.file(path, content);
    }
    let out = t.args(args).status(1).run();
    assert!(out.stdout.is_empty(), "nothing may be rendered on error, got:\n{}", out.stdout);
    out.stderr
}

/// One environment file `env.yaml` = the minimal environment + `extra`.
fn env_fails(extra: &str) -> String {
    fails(&[("env.yaml", &format!("{MINIMAL_ENV}{extra}"))], &["render", "-e", "env.yaml"])
}

/// An environment with tenant `alice` and a jobs directory holding `job.yaml`.
fn job_fails(job: &str) -> String {
    job_fails_with(job, "")
}

fn job_fails_with(job: &str, env_extra: &str) -> String {
    let env = format!(
        "{MINIMAL_ENV}components:\n  tenants:\n    list:\n      - name: alice\n  trainer:\n    jobs_dir: jobs\n{env_extra}"
    );
    fails(&[("env.yaml", &env), ("jobs/job.yaml", job)], &["render", "-e", "env.yaml"])
}

/// Like `job_fails`, with `components.tenants` given (it must declare tenant `alice`).
fn job_fails_with_tenants(job: &str, tenants: &str) -> String {
    let env = format!("{MINIMAL_ENV}components:\n  tenants:\n{tenants}  trainer:\n    jobs_dir: jobs\n");
    fails(&[("env.yaml", &env), ("jobs/job.yaml", job)], &["render", "-e", "env.yaml"])
}

/// `JOB` with the command a TrainJob needs, for cases about something else.
const RUNNABLE: &str = "command: [python, /workspace/scripts/train.py]\n";

const JOB: &str = "name: j1\ntenant: alice\nframework: pytorch\nresources:\n  cpu: {request: \"1\", limit: \"2\"}\n  memory: {request: 1Gi, limit: 2Gi}\n";

macro_rules! snap {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), $body);
        }
    };
}

// ---- environment files
snap!(env_unknown_top_level_key, env_fails("nmae: typo\n"));
snap!(
    env_unknown_nested_key,
    env_fails("components:\n  tenants:\n    list:\n      - name: alice\n        qouta: {}\n")
);
snap!(
    env_wrong_type,
    env_fails("components:\n  tenants:\n    defaults:\n      quota:\n        pods: many\n")
);
snap!(env_invalid_tenant_name, env_fails("components:\n  tenants:\n    list:\n      - name: Team_A\n"));
snap!(env_invalid_quantity, env_fails("components:\n  tenants:\n    list:\n      - name: alice\n        quota: {cpu: \"4\", memory: 8Gb, gpu: 0, pods: 10}\n"));
snap!(env_pool_min_above_max, env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        min_size: 3\n        desired_size: 3\n        max_size: 2\n"));
snap!(env_pool_max_zero, env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        max_size: 0\n"));
snap!(env_pool_above_maximum, env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        max_size: 500\n"));
snap!(env_pool_desired_outside_range, env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        min_size: 1\n        desired_size: 0\n        max_size: 2\n"));
snap!(env_pool_bad_capacity_type, env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        capacity_type: spot\n"));
snap!(
    env_gpu_enabled_without_pools,
    env_fails("components:\n  gpu:\n    enabled: true\n    provider: kind\n")
);
snap!(env_hpa_above_maximum, env_fails("components:\n  mlflow:\n    enabled: true\n    autoscaling:\n      min_replicas: 2\n      max_replicas: 50\n"));
snap!(
    env_hpa_min_zero,
    env_fails("components:\n  mlflow:\n    enabled: true\n    autoscaling:\n      min_replicas: 0\n")
);
snap!(
    env_eks_without_region,
    fails(
        &[("env.yaml", "name: prod\ntarget:\n  kind: eks\n  cluster_name: prod\n")],
        &["render", "-e", "env.yaml"]
    )
);
snap!(env_kind_with_managed_node_groups, env_fails("components:\n  gpu:\n    enabled: true\n    provider: managed_node_groups\n    pools:\n      - name: gpu\n"));
snap!(env_unsupported_trainer_version, env_fails("components:\n  trainer:\n    version: v2.0.0\n"));
snap!(
    env_ray_unknown_pool,
    env_fails("components:\n  ray:\n    enabled: true\n    gpu_workers:\n      pool: gpu-a100\n")
);
snap!(env_yaml_syntax_error, env_fails("components:\n  tenants: [alice\n"));
snap!(env_duplicate_key, env_fails("name: again\n"));
snap!(
    env_duplicate_tenant,
    env_fails("components:\n  tenants:\n    list:\n      - name: alice\n      - name: alice\n")
);
snap!(env_reserved_tenant, env_fails("components:\n  tenants:\n    list:\n      - name: kube-system\n"));
snap!(env_limit_range_request_above_limit, env_fails("components:\n  tenants:\n    defaults:\n      limit_range:\n        default:\n          cpu: {request: \"2\", limit: 500m}\n          memory: {request: 1Gi, limit: 2Gi}\n"));
snap!(
    env_unsupported_kubernetes_version,
    fails(
        &[(
            "env.yaml",
            "name: test\ntarget:\n  kind: kind\n  cluster_name: test\n  kubernetes_version: \"1.20\"\n"
        )],
        &["render", "-e", "env.yaml"]
    )
);
snap!(
    env_ingress_without_host,
    env_fails("components:\n  mlflow:\n    enabled: true\n    ingress:\n      enabled: true\n")
);
snap!(
    env_mlflow_allowed_hosts_invalid,
    env_fails("components:\n  mlflow:\n    enabled: true\n    allowed_hosts: [\"*\", \"a.example.com,b.example.com\", \"\"]\n")
);
snap!(env_not_a_mapping, fails(&[("env.yaml", "- name: test\n")], &["render", "-e", "env.yaml"]));
snap!(env_missing_file, fails(&[], &["render", "-e", "missing.yaml"]));
snap!(env_no_file_given, fails(&[], &["render"]));
snap!(
    env_invalid_environment_name,
    fails(
        &[("env.yaml", "name: Prod_1\ntarget:\n  kind: kind\n  cluster_name: test\n")],
        &["render", "-e", "env.yaml"]
    )
);
snap!(
    env_addon_unpinned_version,
    env_fails("addons:\n  - name: kuberay\n    version: latest\n    source: {file: kuberay.yaml}\n")
);

// ---- kind cluster settings of the target
snap!(
    env_kind_settings_on_eks,
    fails(
        &[(
            "env.yaml",
            "name: prod\ntarget:\n  kind: eks\n  cluster_name: prod\n  region: us-east-1\n  node_image: kindest/node:v1.33.1\n  workers: 2\n"
        )],
        &["render", "-e", "env.yaml"]
    )
);
snap!(env_kind_ingress_ports_equal, env_fails("  ingress_ports: {http: 8080, https: 8080}\n"));
snap!(env_kind_ingress_ports_out_of_range, env_fails("  ingress_ports: {http: 0, https: 70000}\n"));
snap!(env_kind_no_node_image_for_version, env_fails("  kubernetes_version: \"1.35\"\n"));
snap!(env_kind_bad_load_images, env_fails("  load_images: [trainer:dev, \"--privileged\", trainer:dev]\n"));
snap!(env_kind_no_general_worker_with_tainted_pools, env_fails("  workers: 0\ncomponents:\n  gpu:\n    enabled: true\n    provider: kind\n    pools: [{name: gpu}]\n"));

// ---- AWS resources of eks targets
const EKS_ENV: &str = "name: prod\ntarget:\n  kind: eks\n  cluster_name: prod\n  region: us-east-1\n";

fn eks_fails(extra: &str) -> String {
    fails(&[("env.yaml", &format!("{EKS_ENV}{extra}"))], &["render", "-e", "env.yaml"])
}

// Rendering needs no placement; diff and apply do, and say so before connecting anywhere.
snap!(
    env_eks_node_groups_missing_placement,
    fails(
        &[(
            "env.yaml",
            &format!("{EKS_ENV}components:\n  gpu:\n    enabled: true\n    pools: [{{name: gpu}}]\n")
        )],
        &["diff", "-e", "env.yaml"]
    )
);
snap!(
    env_eks_node_groups_bad_placement,
    eks_fails("components:\n  gpu:\n    enabled: true\n    pools: [{name: gpu}]\n    node_groups:\n      node_role_arn: arn:aws:iam::123:user/me\n      subnet_ids: [subnet-0abc, vpc-123]\n")
);
snap!(
    env_eks_bad_buckets,
    eks_fails("aws:\n  buckets:\n    - name: My_Bucket\n    - name: tf-owned\n      managed_by: terraform\n      lifecycle: []\n    - name: scratch\n      versioning: false\n      kms_key_id: alias/x\n      lifecycle:\n        - id: old\n          noncurrent_expire_days: 0\n        - id: old\n    - name: scratch\n")
);
snap!(
    env_ray_gpus_in_cpu_group,
    env_fails("components:\n  ray:\n    enabled: true\n    cpu_workers:\n      gpus: 1\n")
);
snap!(env_aws_on_kind, env_fails("aws:\n  buckets: [{name: scratch}]\n"));
snap!(
    env_pod_identity_on_kind,
    env_fails("aws:\n  pod_identity:\n    role_arn: arn:aws:iam::123456789012:role/tenant-trainer\n")
);
snap!(env_pod_identity_role_not_an_arn, eks_fails("aws:\n  pod_identity:\n    role_arn: tenant-trainer\n"));
snap!(
    env_pod_identity_with_a_tenant_irsa_role,
    eks_fails("components:\n  tenants:\n    list:\n      - name: alice\n      - name: bob\n        irsa_role_arn: arn:aws:iam::123456789012:role/bob\naws:\n  pod_identity:\n    role_arn: arn:aws:iam::123456789012:role/tenant-trainer\n")
);
snap!(
    env_pod_identity_without_tenants,
    eks_fails("components:\n  tenants:\n    enabled: false\naws:\n  pod_identity:\n    role_arn: arn:aws:iam::123456789012:role/tenant-trainer\n")
);
// Outputs of the Terraform from before tenant identities: the old output name is listed.
snap!(
    terraform_missing_tenant_role_output,
    fails(
        &[
            (
                "env.yaml",
                &format!("{EKS_ENV}aws:\n  pod_identity:\n    role_arn: ${{terraform.tenant_role_arn}}\n")
            ),
            (
                "outputs.json",
                r#"{"trainer_role_arn": {"sensitive": false, "type": "string", "value": "arn:aws:iam::123456789012:role/trainstack-dev-trainer"}}"#
            ),
        ],
        &["render", "-e", "env.yaml", "--terraform-outputs", "outputs.json"],
    )
);

// ---- Secrets Manager secrets (aws.secrets, components.secrets) and MLflow exposure
snap!(
    env_secret_arn_of_another_service,
    eks_fails("aws:\n  secrets:\n    - name: db\n      from: arn:aws:ssm:us-east-1:123456789012:parameter/db\n      data: {password: \"{{ password }}\"}\n")
);
snap!(
    env_secret_in_another_region,
    eks_fails("aws:\n  secrets:\n    - name: db\n      from: arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-Ab12Cd\n      data: {password: \"{{ password }}\"}\n")
);
snap!(
    env_secret_bad_templates_keys_and_duplicates,
    eks_fails("aws:\n  secrets:\n    - name: db\n      from: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-Ab12Cd\n      data:\n        uri: \"postgresql://{{ username }}:{{ password | upper }}@db/x\"\n        pass word: \"{{ password\"\n    - name: db\n      from: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-Ab12Cd\n      data: {}\n")
);
snap!(env_secrets_both_modes, eks_fails("components:\n  secrets:\n    mode: [apply, external-secrets]\n"));
snap!(
    env_external_secrets_without_role,
    eks_fails("components:\n  secrets:\n    mode: external-secrets\n    external_secrets:\n      refresh_interval: hourly\naws:\n  secrets:\n    - name: db\n      from: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-Ab12Cd\n      data: {password: \"{{ password }}\"}\n")
);
snap!(
    env_secret_from_missing_terraform_output,
    fails(
        &[
            ("env.yaml", &format!("{EKS_ENV}aws:\n  secrets:\n    - name: mlflow-backend-store\n      from: ${{terraform.rds_secret}}\n      data: {{uri: \"{{{{ password }}}}\"}}\n")),
            ("outputs.json", r#"{"rds_secret_arn": {"sensitive": false, "type": "string", "value": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-Ab12Cd"}}"#),
        ],
        &["render", "-e", "env.yaml", "--terraform-outputs", "outputs.json"],
    )
);
const PUBLIC_MLFLOW: &str = "components:\n  mlflow:\n    enabled: true\n    ingress:\n      enabled: true\n      host: mlflow.example.com\n      class_name: alb\n      scheme: internet-facing\n";
snap!(env_mlflow_internet_facing_without_auth, eks_fails(PUBLIC_MLFLOW));
snap!(
    env_mlflow_public_opt_in_names_another_environment,
    eks_fails(&format!("{PUBLIC_MLFLOW}      allow_public_without_auth: dev\n"))
);
snap!(
    env_mlflow_bad_ingress_scheme,
    eks_fails("components:\n  mlflow:\n    enabled: true\n    ingress:\n      enabled: true\n      host: mlflow.example.com\n      class_name: alb\n      scheme: public\n")
);

// ---- layering: the error points at the overlay that set the bad value
snap!(layer_error_in_overlay, fails(
    &[("base.yaml", MINIMAL_ENV), ("overlay.yaml", "components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: gpu\n        min_size: 4\n        max_size: 2\n")],
    &["render", "-e", "base.yaml", "-e", "overlay.yaml"],
));
snap!(
    layer_null_removes_required_field,
    fails(
        &[("base.yaml", MINIMAL_ENV), ("overlay.yaml", "target: null\n")],
        &["render", "-e", "base.yaml", "-e", "overlay.yaml"],
    )
);

// ---- Terraform references
snap!(
    terraform_reference_without_outputs,
    env_fails("components:\n  mlflow:\n    enabled: true\n    irsa_role_arn: ${terraform.mlflow_role_arn}\n")
);
// Checked before terraform runs: each file the environment hands terraform must exist.
snap!(
    terraform_var_files_and_backend_config_that_are_not_files,
    fails(
        &[
            ("env.yaml", &format!("{EKS_ENV}terraform:\n  dir: tf\n  var_files: [tf/dev.tfvars, tf]\n  backend_config: tf/dev.tfbackend\n")),
            ("tf/main.tf", ""),
            ("tf/dev.tfvars", "environment = \"dev\"\n"),
        ],
        &["infra", "plan", "-e", "env.yaml"],
    )
);
snap!(terraform_missing_output, fails(
    &[
        ("env.yaml", &format!("{MINIMAL_ENV}components:\n  mlflow:\n    enabled: true\n    irsa_role_arn: ${{terraform.mlflow_role}}\n")),
        ("outputs.json", r#"{"mlflow_role_arn": {"sensitive": false, "type": "string", "value": "arn:aws:iam::1:role/m"}}"#),
    ],
    &["render", "-e", "env.yaml", "--terraform-outputs", "outputs.json"],
));

// ---- job specs
snap!(
    job_gpu_request_differs_from_limit,
    job_fails_with(
        &format!("{JOB}  gpu: {{request: 1, limit: 2}}\n"),
        "  gpu:\n    enabled: true\n    provider: kind\n    pools: [{name: gpu}]\n"
    )
);
snap!(job_unknown_tenant, job_fails(&JOB.replace("tenant: alice", "tenant: bob")));
snap!(job_zero_nodes, job_fails(&format!("{JOB}num_nodes: 0\n")));
snap!(job_too_many_nodes, job_fails(&format!("{JOB}num_nodes: 65\n")));
snap!(job_unknown_field, job_fails(&format!("{JOB}gpus: 1\n")));
snap!(job_invalid_memory, job_fails(&JOB.replace("limit: 2Gi", "limit: 8Gb")));
snap!(job_request_above_limit, job_fails(&JOB.replace("request: 1Gi", "request: 4Gi")));
snap!(job_invalid_env_name, job_fails(&format!("{JOB}env:\n  1BAD: x\n")));
snap!(job_missing_script_file, job_fails(&format!("{JOB}scripts:\n  train.py: {{file: train.py}}\n")));
snap!(
    job_custom_without_contract,
    job_fails(&JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1"))
);
snap!(
    job_custom_multi_node,
    job_fails(&format!(
        "{}num_nodes: 2\ncustom:\n  job_id: \"1\"\n  model_name: m\n  dataset_s3_uri: s3://d/x\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_custom_dataset_not_s3,
    job_fails(&format!(
        "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset_s3_uri: /data/x\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_custom_dataset_outside_the_tenant_prefix,
    job_fails(&format!(
        "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset_s3_uri: s3://training-datasets/bob/coco128\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_custom_dataset_path_leaving_the_tenant_prefix,
    job_fails(&format!(
        "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset: ../bob/coco128\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_custom_dataset_twice,
    job_fails(&format!(
        "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset: coco128\n  dataset_s3_uri: s3://training-datasets/alice/coco128\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_custom_dataset_in_another_bucket_with_pod_identity,
    fails(
        &[
            (
                "env.yaml",
                &format!("{EKS_ENV}components:\n  tenants:\n    list:\n      - name: alice\n  trainer:\n    jobs_dir: jobs\naws:\n  pod_identity:\n    role_arn: arn:aws:iam::123456789012:role/tenant-trainer\n"),
            ),
            (
                "jobs/job.yaml",
                &format!(
                    "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset_s3_uri: s3://public-datasets/alice/coco128\n",
                    JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
                ),
            ),
        ],
        &["render", "-e", "env.yaml"],
    )
);
snap!(job_gpu_without_gpu_pool, job_fails(&format!("{JOB}  gpu: {{request: 1, limit: 1}}\n")));
snap!(job_bad_framework, job_fails(&JOB.replace("framework: pytorch", "framework: jax")));

// ---- template overrides
snap!(
    template_override_unknown_name,
    fails(
        &[("env.yaml", MINIMAL_ENV), ("tpl/platform/namspace.yaml", "x: 1\n")],
        &["render", "-e", "env.yaml", "--templates", "tpl"],
    )
);
snap!(
    template_override_undefined_value,
    fails(
        &[
            ("env.yaml", MINIMAL_ENV),
            (
                "tpl/platform/namespace.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ env.namespace }}\n"
            )
        ],
        &["render", "-e", "env.yaml", "--templates", "tpl"],
    )
);
snap!(
    template_override_syntax_error,
    fails(
        &[
            ("env.yaml", MINIMAL_ENV),
            (
                "tpl/platform/namespace.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ platform_namespace }\n"
            )
        ],
        &["render", "-e", "env.yaml", "--templates", "tpl"],
    )
);
snap!(template_override_invalid_yaml, fails(
    &[("env.yaml", MINIMAL_ENV), ("tpl/platform/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ platform_namespace }}\n   labels: x\n")],
    &["render", "-e", "env.yaml", "--templates", "tpl"],
));
snap!(
    template_override_not_an_object,
    fails(
        &[
            ("env.yaml", MINIMAL_ENV),
            ("tpl/platform/namespace.yaml", "apiVersion: v1\nmetadata:\n  name: {{ platform_namespace }}\n")
        ],
        &["render", "-e", "env.yaml", "--templates", "tpl"],
    )
);

// ---- command-line flags: usage errors, exit 1, saying what would be valid
fn flag_fails(args: &[&str]) -> String {
    fails(&[("env.yaml", MINIMAL_ENV)], &[args, &["-e", "env.yaml"]].concat())
}

snap!(flag_duration_without_unit, flag_fails(&["apply", "--timeout", "5"]));
snap!(flag_duration_zero, flag_fails(&["smoke", "--timeout", "0s"]));
snap!(flag_duration_overflow, flag_fails(&["delete", "--timeout", "9999999999999999999h"]));
snap!(flag_duration_above_a_year, flag_fails(&["apply", "--node-group-timeout", "400d"]));
snap!(flag_duration_unknown_unit, flag_fails(&["up", "--smoke-timeout", "5 minutes later"]));
snap!(
    flag_kubeconfig_on_a_command_that_reaches_no_cluster,
    flag_fails(&["render", "--kubeconfig", "kc.yaml"])
);
snap!(flag_timeout_on_diff_which_does_not_wait, flag_fails(&["diff", "--timeout", "5m"]));

// ---- add-ons
snap!(addon_url_without_checksum, env_fails("addons:\n  - name: kuberay\n    version: v1.7.0\n    source: {url: \"https://example.com/kuberay.yaml\"}\n"));
snap!(
    addon_two_sources,
    env_fails(
        "addons:\n  - name: kuberay\n    version: v1.7.0\n    source: {file: a.yaml, dir: manifests}\n"
    )
);
snap!(
    addon_missing_file,
    env_fails("addons:\n  - name: kuberay\n    version: v1.7.0\n    source: {file: kuberay.yaml}\n")
);

// ---- kustomize add-ons: pinned revisions and the lock file beside the environment file
const TRAINER_TARGET: &str = "https://github.com/kubeflow/trainer.git/manifests/overlays/manager";

/// The `addons` list of one kustomize add-on.
fn kustomize_addons(target: &str) -> String {
    format!(
        "addons:\n  - name: kubeflow-trainer\n    version: v2.3.0\n    source:\n      kustomize: {target}\n"
    )
}

fn kustomize_env(target: &str) -> String {
    format!("{MINIMAL_ENV}{}", kustomize_addons(target))
}

/// `render` of `kustomize_env(target)` with `env.yaml.lock` holding `lock`.
fn lock_fails(target: &str, lock: &str) -> String {
    fails(&[("env.yaml", &kustomize_env(target)), ("env.yaml.lock", lock)], &["render", "-e", "env.yaml"])
}

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

snap!(addon_kustomize_without_ref, env_fails(&kustomize_addons(TRAINER_TARGET)));
snap!(addon_kustomize_branch_ref, env_fails(&kustomize_addons(&format!("{TRAINER_TARGET}?ref=main"))));
snap!(
    addon_kustomize_not_locked,
    fails(
        &[("env.yaml", &kustomize_env(&format!("{TRAINER_TARGET}?ref=v2.3.0")))],
        &["render", "-e", "env.yaml"]
    )
);
snap!(
    addon_kustomize_locked_for_another_ref,
    lock_fails(
        &format!("{TRAINER_TARGET}?ref=v2.3.0"),
        &format!(
            "addons:\n  kubeflow-trainer:\n    kustomize: {TRAINER_TARGET}?ref=v2.2.0\n    sha256: {SHA}\n"
        )
    )
);
snap!(
    addon_lock_bad_sha256,
    lock_fails(
        &format!("{TRAINER_TARGET}?ref=v2.3.0"),
        &format!(
            "addons:\n  kubeflow-trainer:\n    kustomize: {TRAINER_TARGET}?ref=v2.3.0\n    sha256: abc123\n"
        )
    )
);
snap!(
    addon_lock_unknown_key,
    lock_fails(
        &format!("{TRAINER_TARGET}?ref=v2.3.0"),
        &format!(
            "addons:\n  kubeflow-trainer:\n    target: {TRAINER_TARGET}?ref=v2.3.0\n    sha256: {SHA}\n"
        )
    )
);

// ---- kubeconfigs: a broken reference is reported at its line before any request
/// `diff` of the minimal environment through kubeconfig file(s); returns stderr.
fn kubeconfig_fails(files: &[(&str, &str)], extra: &[&str], envs: &[(&str, &str)]) -> String {
    let mut t = Test::new().file("env.yaml", MINIMAL_ENV);
    for (path, content) in files {
        t = t.file(path, content);
    }
    for (k, v) in envs {
        t = t.env(k, v);
    }
    let mut args = vec!["diff", "-e", "env.yaml", "--no-addons"];
    args.extend(extra);
    let out = t.args(&args).status(1).run();
    assert!(out.stdout.is_empty(), "no diff on a broken kubeconfig, got:\n{}", out.stdout);
    out.stderr
}

const KC_HEAD: &str = "apiVersion: v1\nkind: Config\n";
const KC_CLUSTER: &str = "clusters:\n  - name: kind-test\n    cluster:\n      server: https://127.0.0.1:1\n";
const KC_USER: &str = "users:\n  - name: kind-test\n    user: {token: abc}\n";

snap!(
    kubeconfig_context_names_an_undefined_cluster,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}{KC_USER}contexts:\n  - name: kind-test\n    context:\n      cluster: kind-tset\n      user: kind-test\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(
    kubeconfig_context_names_an_undefined_user,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}{KC_USER}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: admin}}\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(
    kubeconfig_cluster_without_server,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}clusters:\n  - name: kind-test\n    cluster:\n      insecure-skip-tls-verify: true\n{KC_USER}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: kind-test}}\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(
    kubeconfig_unknown_context,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}{KC_USER}contexts:\n  - name: kind-other\n    context: {{cluster: kind-test, user: kind-test}}\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(
    kubeconfig_syntax_error,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}  bad: [\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
// A certificate-authority-data that is no CA would fail every TLS handshake and read as a
// connection error; it is reported at its line before any request.
snap!(
    kubeconfig_ca_data_not_base64,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}      certificate-authority-data: not*base64\n{KC_USER}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: kind-test}}\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(
    kubeconfig_ca_data_not_pem,
    kubeconfig_fails(
        &[("kc.yaml", &format!("{KC_HEAD}{KC_CLUSTER}      certificate-authority-data: aGVsbG8gd29ybGQK\n{KC_USER}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: kind-test}}\n"))],
        &["--kubeconfig", "kc.yaml"],
        &[]
    )
);
snap!(kubeconfig_missing_file, kubeconfig_fails(&[], &["--kubeconfig", "missing.yaml"], &[]));
// kubectl skips entries of $KUBECONFIG that do not exist: the run goes on with the others (here
// to the broken context in b.yaml) instead of stopping at the missing first entry.
#[test]
fn kubeconfig_list_skips_missing_entries() {
    let stderr = kubeconfig_fails(
        &[("b.yaml", &format!("{KC_HEAD}{KC_CLUSTER}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: nobody}}\n"))],
        &[],
        &[("KUBECONFIG", "missing.yaml:b.yaml")],
    );
    assert!(!stderr.contains("no such file"), "{stderr}");
    assert!(stderr.contains("b.yaml") && stderr.contains("nobody"), "{stderr}");
}
// $KUBECONFIG is a path list, merged as kubectl does; the error names the file that holds the
// broken context.
snap!(
    kubeconfig_path_list_names_the_file_with_the_broken_context,
    kubeconfig_fails(
        &[
            ("a.yaml", &format!("{KC_HEAD}{KC_CLUSTER}{KC_USER}")),
            ("b.yaml", &format!("{KC_HEAD}contexts:\n  - name: kind-test\n    context: {{cluster: kind-test, user: nobody}}\n")),
        ],
        &[],
        &[("KUBECONFIG", "a.yaml:b.yaml")]
    )
);

// ---- every problem of a run at once
// One wrong type used to stop serde and hide everything after it.
snap!(
    env_wrong_type_unknown_key_and_bad_quantity_are_reported_together,
    env_fails("components:\n  tenants:\n    defaults:\n      quota:\n        pods: many\n        cpu: 4 cores\n    lsit: []\n")
);
snap!(
    layer_wrong_type_in_base_does_not_hide_the_overlay,
    fails(
        &[
            ("base.yaml", &format!("{MINIMAL_ENV}components:\n  mlflow:\n    enabled: maybe\n")),
            (
                "overlay.yaml",
                "components:\n  ray:\n    enabeld: true\n  postgres:\n    enabled: true\n    storage: 2GB\n"
            ),
        ],
        &["render", "-e", "base.yaml", "-e", "overlay.yaml"],
    )
);
snap!(
    layer_syntax_error_does_not_hide_the_next_file,
    fails(
        &[
            ("base.yaml", &format!("{MINIMAL_ENV}components: [\n")),
            ("overlay.yaml", "componets:\n  ray: {}\n")
        ],
        &["render", "-e", "base.yaml", "-e", "overlay.yaml"],
    )
);
snap!(
    job_wrong_type_does_not_hide_other_problems,
    job_fails(&format!("{}num_nodes: many\ngpus: 1\n", JOB.replace("limit: 2Gi", "limit: 2GB")))
);
// Job specs are checked against an environment with problems too...
snap!(
    env_problems_do_not_hide_job_problems,
    job_fails_with(
        &format!("{JOB}{RUNNABLE}").replace("limit: 2Gi", "limit: 2GB"),
        "  mlflow:\n    enabeld: true\n"
    )
);
// ...unless what they are checked against could not be read: "tenant not declared" would be a
// guess.
snap!(
    job_checks_wait_for_a_readable_tenant_list,
    job_fails_with_tenants(&format!("{JOB}{RUNNABLE}"), "    list: alice\n")
);

// ---- an empty or comment-only overlay is an overlay that changes nothing
snap!(
    layer_comment_only_overlay_keeps_the_environment,
    fails(
        &[
            (
                "base.yaml",
                &format!("{MINIMAL_ENV}components:\n  tenants:\n    list:\n      - name: Team_A\n")
            ),
            ("kind.yaml", "# nothing differs yet\n"),
            ("empty.yaml", ""),
        ],
        &["render", "-e", "base.yaml", "-e", "kind.yaml", "-e", "empty.yaml"],
    )
);

// ---- YAML mistakes named as such
snap!(
    env_yaml_unclosed_quote,
    env_fails("platform_namespace: \"ml-system\ncomponents:\n  ray: {enabled: true}\n")
);
snap!(env_yaml_unclosed_brace, env_fails("components: {ray: {enabled: true}\n"));
snap!(env_yaml_unknown_escape, env_fails("components:\n  trainer:\n    jobs_dir: \"C:\\jobs\"\n"));
snap!(env_yaml_key_under_a_scalar, env_fails("platform_namespace: ml\n  components: {}\n"));
snap!(env_yaml_tab_indentation, env_fails("components:\n  ray:\n\tenabled: true\n"));
snap!(env_yaml_merge_key_of_a_scalar, env_fails("components:\n  ray:\n    <<: 5\n"));
snap!(
    env_huge_number,
    env_fails(
        "components:\n  tenants:\n    defaults:\n      quota:\n        pods: 99999999999999999999999\n"
    )
);
snap!(
    env_number_too_large_for_the_field,
    env_fails("components:\n  tenants:\n    defaults:\n      quota:\n        pods: 5000000000\n")
);
snap!(
    env_negative_number,
    env_fails("components:\n  tenants:\n    defaults:\n      quota:\n        gpu: -1\n")
);

// ---- look-alike Terraform references would be rendered literally
snap!(
    env_terraform_reference_misspelled,
    env_fails("components:\n  tenants:\n    backend:\n      irsa_role_arn: ${terrafrom.backend_role_arn}\n")
);
snap!(
    env_terraform_reference_with_spaces,
    env_fails(
        "components:\n  tenants:\n    backend:\n      irsa_role_arn: ${ terraform.backend_role_arn }\n"
    )
);
snap!(
    env_terraform_reference_without_braces,
    env_fails("components:\n  tenants:\n    backend:\n      irsa_role_arn: $terraform.backend_role_arn\n")
);
snap!(
    env_terraform_reference_unclosed,
    env_fails("components:\n  mlflow:\n    enabled: true\n    artifacts:\n      bucket: ${terraform.artifacts_bucket\n")
);
// Before `infra apply` the state has no outputs: one line saying so, not one per reference.
snap!(
    terraform_state_without_outputs,
    fails(
        &[
            (
                "env.yaml",
                "name: prod\ntarget:\n  kind: eks\n  cluster_name: ${terraform.cluster_name}\n  region: ${terraform.region}\ncomponents:\n  tenants:\n    backend:\n      irsa_role_arn: ${terraform.backend_role_arn}\n",
            ),
            ("outputs.json", "{}"),
        ],
        &["render", "-e", "env.yaml", "--terraform-outputs", "outputs.json"],
    )
);

// Loading reads the outputs through the one terraform runner: a failing `terraform output` is
// reported at terraform.dir with its command line and the end of its stderr, and exits 1.
#[cfg(unix)]
snap!(terraform_output_that_fails_is_reported_at_terraform_dir_with_its_stderr, {
    let t = Test::new()
        .file("env.yaml", "name: prod\ntarget:\n  kind: eks\n  cluster_name: ${terraform.cluster_name}\n  region: eu-west-1\nterraform:\n  dir: tf\n")
        .file("tf/main.tf", "")
        .executable("bin/terraform", "#!/bin/sh\necho 'Error: No valid credential sources found' >&2\nexit 1\n");
    // On PATH, so the command line in the message is the one the user could run.
    let bin = t.path().join("bin").display().to_string();
    let out = t.env("PATH", &bin).args(&["render", "-e", "env.yaml"]).status(1).run();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    out.stderr
});

// ---- values with a well-known shape
snap!(
    env_backend_irsa_role_not_an_arn,
    env_fails("components:\n  tenants:\n    backend:\n      irsa_role_arn: arn:aws:iam::123456789012:user/backend\n")
);
snap!(
    env_tenant_irsa_role_not_an_arn,
    env_fails("components:\n  tenants:\n    list:\n      - name: alice\n        irsa_role_arn: alice-role\n")
);
snap!(
    env_mlflow_and_ray_role_arns_invalid,
    env_fails("components:\n  mlflow:\n    enabled: true\n    irsa_role_arn: arn:aws:iam::12345:role/mlflow\n  ray:\n    enabled: true\n    irsa_role_arn: arn:aws:s3:::ray\n")
);
snap!(
    env_artifacts_bucket_invalid,
    env_fails("components:\n  mlflow:\n    enabled: true\n    artifacts:\n      bucket: MLflow_Artifacts\n")
);
snap!(
    env_storage_buckets_invalid,
    env_fails("components:\n  custom_jobs:\n    storage:\n      datasets_bucket: Datasets\n      checkpoints_bucket: ck\n")
);
snap!(
    env_minio_bucket_invalid,
    env_fails("components:\n  minio:\n    enabled: true\n    buckets: [mlflow-artifacts, my..bucket]\n")
);
snap!(
    env_callback_url_without_scheme,
    env_fails("components:\n  custom_jobs:\n    callback_url: trainstack-backend:8000/api/v1/callbacks\n")
);
snap!(
    env_storage_endpoints_without_scheme,
    env_fails("components:\n  custom_jobs:\n    storage:\n      external_endpoint: minio:9000\n      internal_endpoint: s3.amazonaws.com\n")
);
snap!(
    env_artifacts_endpoint_not_http,
    env_fails("components:\n  mlflow:\n    enabled: true\n    artifacts:\n      endpoint: ftp://minio.trainstack-system.svc\n")
);

// ---- tenants
snap!(
    env_tenant_kube_prefix_reserved,
    env_fails("components:\n  tenants:\n    list:\n      - name: kube-team\n")
);
// A partial quota keeps the other keys of defaults.quota; only the keys it sets are checked
// against it.
snap!(
    env_partial_quota_checks_only_its_own_keys,
    env_fails("components:\n  tenants:\n    defaults:\n      quota: {cpu: \"8\"}\n    list:\n      - name: alice\n        quota: {pods: 0}\n")
);
snap!(
    env_ray_gpu_workers_enabled_without_gpu,
    env_fails("components:\n  ray:\n    enabled: true\n    gpu_workers:\n      enabled: true\n")
);

// ---- job specs against the tenant's quota
snap!(
    job_cpu_above_tenant_quota,
    job_fails_with_tenants(
        &format!(
            "{RUNNABLE}{}num_nodes: 4\n",
            JOB.replace("cpu: {request: \"1\", limit: \"2\"}", "cpu: {request: \"2\", limit: \"2\"}")
        ),
        "    list:\n      - name: alice\n        quota: {cpu: \"4\"}\n"
    )
);
snap!(
    job_memory_limit_above_tenant_quota,
    job_fails(&format!("{RUNNABLE}{}num_nodes: 8\n", JOB.replace("limit: 2Gi", "limit: 16Gi")))
);
// The partial quota {gpu: 2} keeps cpu "2" from defaults.quota (not the built-in 16).
snap!(
    job_cpu_above_quota_inherited_from_defaults,
    job_fails_with_tenants(
        &format!(
            "{RUNNABLE}{}num_nodes: 2\n",
            JOB.replace("cpu: {request: \"1\", limit: \"2\"}", "cpu: {request: \"2\", limit: \"2\"}")
        ),
        "    defaults:\n      quota: {cpu: \"2\"}\n    list:\n      - name: alice\n        quota: {gpu: 2}\n"
    )
);
snap!(
    job_custom_callback_url_without_scheme,
    job_fails(&format!(
        "{}custom:\n  job_id: \"1\"\n  model_name: m\n  dataset_s3_uri: s3://d/x\n  callback_url: backend/api/v1/callbacks\n",
        JOB.replace("framework: pytorch", "framework: custom\nimage: trainer:1")
    ))
);
snap!(
    job_duplicate_name_names_the_first_file,
    fails(
        &[
            (
                "env.yaml",
                &format!("{MINIMAL_ENV}components:\n  tenants:\n    list:\n      - name: alice\n  trainer:\n    jobs_dir: jobs\n"),
            ),
            ("jobs/a.yaml", &format!("{JOB}{RUNNABLE}")),
            ("jobs/b.yaml", &format!("# the same job again\n{JOB}{RUNNABLE}")),
        ],
        &["render", "-e", "env.yaml"],
    )
);
// The first render of an EKS environment before `infra apply`: Terraform has no state yet, so
// `terraform output -json` prints `{}`; one line says so instead of one per reference.
#[cfg(unix)]
snap!(terraform_dir_before_infra_apply_says_what_to_run, {
    let t = Test::new()
        .file("env.yaml", &format!("{}terraform:\n  dir: tf\n", "name: prod\ntarget:\n  kind: eks\n  cluster_name: ${terraform.cluster_name}\n  region: ${terraform.region}\ncomponents:\n  tenants:\n    backend:\n      irsa_role_arn: ${terraform.backend_role_arn}\n  mlflow:\n    enabled: true\n    irsa_role_arn: ${terraform.mlflow_role_arn}\n"))
        .file("tf/main.tf", "")
        .executable("bin/terraform", "#!/bin/sh\necho '{}'\n");
    let fake = t.path().join("bin/terraform").display().to_string();
    let out = t.env("TRAINSTACK_TERRAFORM", &fake).args(&["render", "-e", "env.yaml"]).status(1).run();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    out.stderr
});

// ---- HPO workspaces (components.hpo, components.tenants.list[].hpo)

/// The minimal environment with `components.hpo.enabled` and tenant alice's `hpo` block
/// (enabled) + `tenant_hpo` (indented as keys of that block).
fn hpo_tenant_fails(tenant_hpo: &str) -> String {
    env_fails(&format!(
        "components:\n  hpo:\n    enabled: true\n  tenants:\n    list:\n      - name: alice\n        hpo:\n          enabled: true\n{tenant_hpo}"
    ))
}

/// The minimal environment with alice's workspace enabled and `components.hpo` + `hpo`.
fn hpo_fails(hpo: &str) -> String {
    env_fails(&format!(
        "components:\n  tenants:\n    list:\n      - name: alice\n        hpo: {{enabled: true}}\n  hpo:\n    enabled: true\n{hpo}"
    ))
}

/// An eks environment with alice's workspace enabled and `components.hpo` + `hpo`.
fn hpo_eks_fails(hpo: &str) -> String {
    fails(
        &[(
            "env.yaml",
            &format!("name: dev\ntarget:\n  kind: eks\n  cluster_name: dev\n  region: us-east-1\ncomponents:\n  tenants:\n    list:\n      - name: alice\n        hpo: {{enabled: true}}\n  hpo:\n    enabled: true\n{hpo}"),
        )],
        &["render", "-e", "env.yaml"],
    )
}

snap!(env_hpo_journal_size_above_maximum, hpo_tenant_fails("          journal_size: 11Gi\n"));
snap!(env_hpo_journal_size_below_minimum, hpo_tenant_fails("          journal_size: 100Mi\n"));
snap!(env_hpo_artifact_size_above_maximum, hpo_tenant_fails("          artifact_size: 200Gi\n"));
snap!(env_hpo_artifact_size_below_minimum, hpo_tenant_fails("          artifact_size: 1Gi\n"));
snap!(env_hpo_shared_cache_size_above_maximum, hpo_tenant_fails("          shared_cache_size: 8Gi\n"));
snap!(env_hpo_shared_cache_size_below_minimum, hpo_tenant_fails("          shared_cache_size: 100Mi\n"));
snap!(env_hpo_size_not_a_quantity, hpo_tenant_fails("          artifact_size: 5GB\n"));
snap!(env_hpo_shared_cache_dir_relative, hpo_tenant_fails("          shared_cache_dir: mnt/cache\n"));
snap!(
    env_hpo_shared_cache_dir_not_normalised,
    hpo_tenant_fails("          shared_cache_dir: /mnt/cache/../x\n")
);
snap!(
    env_hpo_shared_cache_dir_inside_artifacts,
    hpo_tenant_fails("          shared_cache_dir: /artifacts/cache\n")
);
snap!(
    env_hpo_shared_cache_dir_is_tmp_cache,
    hpo_tenant_fails("          shared_cache_dir: /mnt/tmp-cache\n")
);
snap!(env_hpo_shared_cache_dir_is_dev_shm, hpo_tenant_fails("          shared_cache_dir: /dev/shm\n"));
snap!(env_hpo_shared_cache_dir_above_etc_trainstack, hpo_tenant_fails("          shared_cache_dir: /etc\n"));
snap!(
    env_hpo_tenant_enabled_while_component_disabled,
    env_fails(
        "components:\n  tenants:\n    list:\n      - name: alice\n        hpo:\n          enabled: true\n"
    )
);
snap!(env_hpo_optuna_5_1_0_server_refused, hpo_fails("    optuna_version: \"5.1.0\"\n"));
snap!(env_hpo_unknown_optuna_version, hpo_fails("    optuna_version: \"3.6.1\"\n"));
snap!(env_hpo_unknown_dashboard_version, hpo_fails("    dashboard_version: \"0.13.0\"\n"));
snap!(env_hpo_python_3_8_image, hpo_fails("    image: python:3.8-slim\n"));
snap!(env_hpo_index_url_without_scheme, hpo_fails("    index_url: pypi.internal/simple\n"));
snap!(
    env_hpo_kind_read_write_many_without_class,
    hpo_fails("    storage:\n      access_mode: ReadWriteMany\n")
);
snap!(env_hpo_unknown_access_mode, hpo_fails("    storage:\n      access_mode: ReadWriteOncePod\n"));
snap!(
    env_hpo_efs_on_kind,
    hpo_fails("    storage:\n      class_name: efs-hpo\n      efs_file_system_id: fs-0123abcd\n")
);
snap!(env_hpo_ingress_without_host, hpo_fails("    dashboard:\n      ingress:\n        enabled: true\n"));
snap!(env_hpo_eks_without_storage_class, hpo_eks_fails(""));
snap!(
    env_hpo_eks_read_write_once,
    hpo_eks_fails("    storage:\n      class_name: gp3\n      access_mode: ReadWriteOnce\n")
);
snap!(env_hpo_eks_bad_efs_id_and_no_class, hpo_eks_fails("    storage:\n      efs_file_system_id: efs-1\n"));

// ---- trial batch specs (docs/hpo.md, "Trial batch spec")

/// Tenant alice with a workspace, bob without; one GPU pool; the server pin `server`.
fn batch_env(server: &str) -> String {
    format!(
        "{MINIMAL_ENV}components:\n  tenants:\n    list:\n      - name: alice\n        quota: {{gpu: 8}}\n        hpo: {{enabled: true}}\n      - name: bob\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: a100\n  hpo:\n    enabled: true\n    optuna_version: \"{server}\"\n    batches_dir: batches\n"
    )
}

const OBJECTIVE: &str = "def objective(trial):\n    return trial.suggest_float(\"x\", 0, 1)\n";

/// A valid batch; cases append or replace a key.
const BATCH: &str = "tenant: alice\nstudy: s1\nobjective_file: objective.py\n";

/// Renders an environment whose batches directory holds `b.yaml` = `batch` and `objective.py`.
fn batch_fails(batch: &str) -> String {
    batch_fails_in(&batch_env("5.0.0"), batch, &[])
}

fn batch_fails_in(env: &str, batch: &str, files: &[(&str, &str)]) -> String {
    let mut all = vec![("env.yaml", env), ("batches/b.yaml", batch), ("batches/objective.py", OBJECTIVE)];
    all.extend_from_slice(files);
    fails(&all, &["render", "-e", "env.yaml"])
}

const GPU_BATCH: &str = "tenant: alice\nstudy: s1\nobjective_file: objective.py\nuse_gpu: true\n";

snap!(
    batch_direction_and_directions,
    batch_fails(&format!("{BATCH}direction: minimize\ndirections: [minimize, maximize]\n"))
);
snap!(
    batch_requirements_list_and_file,
    batch_fails_in(
        &batch_env("5.0.0"),
        &format!("{BATCH}requirements_list: [numpy]\nrequirements_file: requirements.txt\n"),
        &[("batches/requirements.txt", "numpy\n")]
    )
);
snap!(
    batch_two_pull_secret_forms,
    batch_fails(&format!(
        "{BATCH}image_pull:\n  registry: r.example.com\n  username: u\n  password_env: TOKEN\n  docker_config_json:\n    auths:\n      ghcr.io: {{username: u, password_env: TOKEN}}\n"
    ))
);
// The value is never printed, only that a literal was refused.
snap!(
    batch_literal_password,
    batch_fails(&format!(
        "{BATCH}image_pull: {{registry: r.example.com, username: u, password: glpat-SECRET}}\n"
    ))
);
snap!(
    batch_literal_password_in_docker_config,
    batch_fails(&format!(
        "{BATCH}image_pull:\n  docker_config_json:\n    auths:\n      ghcr.io: {{username: u, password: ghp-SECRET}}\n"
    ))
);
snap!(
    batch_password_variable_not_set,
    batch_fails(&format!(
        "{BATCH}image_pull: {{registry: r.example.com, username: u, password_env: TRAINSTACK_TEST_UNSET_TOKEN}}\n"
    ))
);
snap!(
    batch_gpus_above_four,
    batch_fails(&format!("{GPU_BATCH}resources:\n  gpu: {{request: 5, limit: 5}}\n"))
);
snap!(
    batch_gpu_request_differs_from_limit,
    batch_fails(&format!("{GPU_BATCH}resources:\n  gpu: {{request: 1, limit: 2}}\n"))
);
snap!(batch_gpus_without_use_gpu, batch_fails(&format!("{BATCH}resources:\n  gpu: {{request: 1}}\n")));
snap!(batch_dev_shm_on_cpu, batch_fails(&format!("{BATCH}dev_shm_size: 1Gi\n")));
snap!(
    batch_dev_shm_above_4gi,
    batch_fails(&format!("{GPU_BATCH}dev_shm_size: 5Gi\nresources:\n  memory: {{request: 8Gi}}\n"))
);
snap!(batch_dev_shm_below_500mi, batch_fails(&format!("{GPU_BATCH}dev_shm_size: 100Mi\n")));
snap!(batch_tmp_cache_above_4gi, batch_fails(&format!("{BATCH}tmp_cache_size: 8Gi\n")));
snap!(batch_tmp_cache_below_500mi, batch_fails(&format!("{BATCH}tmp_cache_size: 200Mi\n")));
snap!(
    batch_tmp_cache_in_memory_above_the_memory_limit,
    batch_fails(&format!("{BATCH}use_tmp_cache_mem: true\ntmp_cache_size: 2Gi\n"))
);
snap!(
    batch_tmp_cache_dir_over_the_artifacts,
    batch_fails(&format!("{BATCH}tmp_cache_dir: /artifacts/tmp\n"))
);
snap!(batch_top_n_artifacts_zero, batch_fails(&format!("{BATCH}top_n_artifacts: 0\n")));
snap!(batch_parallelism_above_n_trials, batch_fails(&format!("{BATCH}n_trials: 3\nparallelism: 4\n")));
snap!(
    batch_gpu_model_map_above_n_trials,
    batch_fails(&format!("{GPU_BATCH}n_trials: 4\ngpu_model: {{a100: 5}}\n"))
);
snap!(batch_gpu_model_unknown_pool, batch_fails(&format!("{GPU_BATCH}gpu_model: h100\n")));
snap!(batch_gpu_model_without_use_gpu, batch_fails(&format!("{BATCH}gpu_model: a100\n")));
snap!(batch_study_too_long, batch_fails(&BATCH.replace("study: s1", &format!("study: {}", "s".repeat(64)))));
snap!(batch_study_not_a_label, batch_fails(&BATCH.replace("study: s1", "study: My_Study")));
snap!(
    batch_name_from_an_invalid_file_name,
    fails(
        &[
            ("env.yaml", &batch_env("5.0.0")),
            ("batches/My_Batch.yaml", BATCH),
            ("batches/objective.py", OBJECTIVE)
        ],
        &["render", "-e", "env.yaml"]
    )
);
snap!(batch_name_too_long_for_trial_hostnames, batch_fails(&format!("name: {}\n{BATCH}", "b".repeat(58))));
snap!(batch_missing_objective_file, batch_fails(&BATCH.replace("objective.py", "missing.py")));
snap!(
    batch_objective_without_def,
    batch_fails_in(
        &batch_env("5.0.0"),
        &BATCH.replace("objective.py", "train.py"),
        &[("batches/train.py", "class Model:\n    def objective(trial):\n        return 1\n")]
    )
);
snap!(
    batch_configmap_above_1mib,
    batch_fails_in(
        &batch_env("5.0.0"),
        &BATCH.replace("objective.py", "big.py"),
        &[("batches/big.py", &format!("{OBJECTIVE}DATA = \"{}\"\n", "x".repeat(1024 * 1024)))]
    )
);
snap!(batch_unknown_tenant, batch_fails(&BATCH.replace("tenant: alice", "tenant: carol")));
snap!(batch_tenant_without_workspace, batch_fails(&BATCH.replace("tenant: alice", "tenant: bob")));
snap!(batch_unknown_sampler, batch_fails(&format!("{BATCH}sampler: {{name: TpeSampler}}\n")));
snap!(batch_unknown_key, batch_fails(&format!("{BATCH}n_trails: 5\n")));
// Versions: what cannot talk to the workspace's storage server.
snap!(batch_python_3_8_image_with_a_5_1_server, batch_fails_in(&batch_env("5.1.0"), BATCH, &[]));
snap!(
    batch_client_pin_the_5_1_server_rejects,
    batch_fails_in(
        &batch_env("5.1.0"),
        &format!("{BATCH}runtime_image: python:3.12-slim\noptuna_version: 5.0.0\n"),
        &[]
    )
);
snap!(batch_client_pin_python_3_8_cannot_install, batch_fails(&format!("{BATCH}optuna_version: 5.0.0\n")));
snap!(batch_client_pin_not_a_version, batch_fails(&format!("{BATCH}optuna_version: latest\n")));
snap!(
    batch_duplicate_name_names_the_first_file,
    batch_fails_in(
        &batch_env("5.0.0"),
        &format!("name: dup\n{BATCH}"),
        &[("batches/c.yaml", &format!("name: dup\n{BATCH}"))]
    )
);
