//! Tests against the real CRDs of the pinned upstream releases, in `shared/upstream` beside the
//! repository (never copied into it). Each release is loaded once for the whole test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::{CrdError, CrdSchemas};
use crate::yaml;

fn upstream(release: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/upstream")).join(release)
}

fn trainer_v2_1() -> &'static CrdSchemas {
    static S: OnceLock<CrdSchemas> = OnceLock::new();
    S.get_or_init(|| CrdSchemas::load_dir(&upstream("kubeflow-trainer-v2.1.0")).unwrap())
}

fn trainer_v2_3() -> &'static CrdSchemas {
    static S: OnceLock<CrdSchemas> = OnceLock::new();
    S.get_or_init(|| CrdSchemas::load_dir(&upstream("kubeflow-trainer-v2.3.0")).unwrap())
}

fn kuberay() -> &'static CrdSchemas {
    static S: OnceLock<CrdSchemas> = OnceLock::new();
    S.get_or_init(|| CrdSchemas::load_dir(&upstream("kuberay-v1.7.0")).unwrap())
}

fn karpenter() -> &'static CrdSchemas {
    static S: OnceLock<CrdSchemas> = OnceLock::new();
    S.get_or_init(|| CrdSchemas::load_dir(&upstream("karpenter-v1.14.1")).unwrap())
}

fn object(text: &str) -> Value {
    let docs = yaml::parse_stream(text).expect("test YAML parses");
    serde_json::to_value(&docs[0]).expect("test YAML is JSON")
}

fn problems(schemas: &CrdSchemas, obj: &Value) -> Vec<String> {
    schemas.validate(obj).expect("the CRD is loaded").iter().map(ToString::to_string).collect()
}

const NO_PROBLEMS: [&str; 0] = [];

const TRAINJOB_V2_1: &str = r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: pytorch-gpu, namespace: team-a}
spec:
  runtimeRef: {apiGroup: trainer.kubeflow.org, kind: ClusterTrainingRuntime, name: pytorch-simple-gpu}
  trainer:
    image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
    command: [torchrun, /workspace/train.py, "--epochs=10"]
    numNodes: 2
    numProcPerNode: 1
    resourcesPerNode:
      requests: {cpu: 4, memory: 16Gi, nvidia.com/gpu: 1}
      limits: {nvidia.com/gpu: 1}
    env: [{name: EPOCHS, value: "10"}]
  podTemplateOverrides:
    - targetJobs: [{name: node}]
      metadata: {labels: {trainstack.io/tenant: team-a}}
      spec:
        serviceAccountName: trainjob-backend
        nodeSelector: {trainstack.io/pool: gpu}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        volumes: [{name: code, configMap: {name: pytorch-gpu-code}}]
        containers:
          - name: node
            volumeMounts: [{name: code, mountPath: /workspace, readOnly: true}]
"#;

const TRAINJOB_V2_3: &str = r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: pytorch-gpu, namespace: team-a}
spec:
  runtimeRef: {apiGroup: trainer.kubeflow.org, kind: ClusterTrainingRuntime, name: pytorch-simple-gpu}
  trainer:
    image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
    command: [torchrun, /workspace/train.py]
    numNodes: 2
    resourcesPerNode:
      requests: {cpu: 4, memory: 16Gi, nvidia.com/gpu: 1}
      limits: {nvidia.com/gpu: 1}
    env: [{name: EPOCHS, value: "10"}]
  runtimePatches:
    - manager: trainstack.io/renderer
      trainingRuntimeSpec:
        template:
          metadata: {labels: {trainstack.io/tenant: team-a}}
          spec:
            replicatedJobs:
              - name: node
                template:
                  spec:
                    template:
                      spec:
                        serviceAccountName: trainjob-backend
                        nodeSelector: {trainstack.io/pool: gpu}
                        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
                        volumes: [{name: code, configMap: {name: pytorch-gpu-code}}]
"#;

const CLUSTER_TRAINING_RUNTIME: &str = r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata:
  name: pytorch-simple
  labels: {trainer.kubeflow.org/framework: torch}
spec:
  mlPolicy:
    numNodes: 1
    torch: {}
  template:
    spec:
      replicatedJobs:
        - name: node
          template:
            metadata:
              labels: {trainer.kubeflow.org/trainjob-ancestor-step: trainer}
            spec:
              backoffLimit: 0
              template:
                spec:
                  securityContext:
                    runAsNonRoot: true
                    runAsUser: 1000
                    seccompProfile: {type: RuntimeDefault}
                  containers:
                    - name: node
                      image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
                      command: [torchrun, /workspace/train.py]
                      resources:
                        requests: {cpu: 2, memory: 4Gi}
                        limits: {cpu: "2", memory: 4Gi}
                      securityContext:
                        allowPrivilegeEscalation: false
                        capabilities: {drop: [ALL]}
"#;

const RAY_CLUSTER: &str = r#"
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: ray, namespace: ray}
spec:
  rayVersion: "2.41.0"
  enableInTreeAutoscaling: true
  headGroupSpec:
    rayStartParams: {dashboard-host: "0.0.0.0", num-cpus: "0"}
    template:
      spec:
        containers:
          - name: ray-head
            image: rayproject/ray:2.41.0
            ports:
              - {containerPort: 6379, name: gcs}
              - {containerPort: 8265, name: dashboard}
              - {containerPort: 10001, name: client}
            resources:
              requests: {cpu: 1, memory: 2Gi}
              limits: {cpu: 1, memory: 2Gi}
  workerGroupSpecs:
    - groupName: gpu
      replicas: 0
      minReplicas: 0
      maxReplicas: 5
      rayStartParams: {}
      template:
        spec:
          containers:
            - name: ray-worker
              image: rayproject/ray:2.41.0-gpu
              resources:
                limits: {nvidia.com/gpu: 1, cpu: 4, memory: 16Gi}
          tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
"#;

const NODE_POOL: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: gpu}
spec:
  template:
    metadata:
      labels: {trainstack.io/pool: gpu}
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: gpu}
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: In, values: [p3.2xlarge]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
      taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
      expireAfter: 720h
  limits: {cpu: 64, nvidia.com/gpu: 5}
  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 5m}
"#;

const EC2_NODE_CLASS: &str = r#"
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: gpu}
spec:
  role: KarpenterNodeRole-ml
  amiSelectorTerms: [{alias: al2023@latest}]
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: ml}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: ml}}]
  blockDeviceMappings:
    - deviceName: /dev/xvda
      ebs: {volumeSize: 200Gi, volumeType: gp3, encrypted: true, deleteOnTermination: true}
  metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 2}
"#;

#[test]
fn valid_objects_pass_against_the_crds_of_their_release() {
    let cases = [
        (trainer_v2_1(), TRAINJOB_V2_1),
        (trainer_v2_3(), TRAINJOB_V2_3),
        (trainer_v2_1(), CLUSTER_TRAINING_RUNTIME),
        (trainer_v2_3(), CLUSTER_TRAINING_RUNTIME),
        (kuberay(), RAY_CLUSTER),
        (karpenter(), NODE_POOL),
        (karpenter(), EC2_NODE_CLASS),
    ];
    for (schemas, text) in cases {
        assert_eq!(problems(schemas, &object(text)), NO_PROBLEMS, "{text}");
    }
}

#[test]
fn upstream_examples_pass_against_their_own_crds() {
    let cases = [
        (trainer_v2_3(), "kubeflow-trainer-v2.3.0/example-02-runtime-patches.yaml"),
        (trainer_v2_3(), "kubeflow-trainer-v2.3.0/runtime-torch_distributed.yaml"),
        (kuberay(), "kuberay-v1.7.0/sample-ray-cluster.autoscaler-v2.yaml"),
    ];
    for (schemas, file) in cases {
        let text = std::fs::read_to_string(upstream(file)).unwrap();
        let docs = yaml::parse_stream(&text).unwrap();
        let mut checked = 0;
        for doc in docs {
            let mut obj = serde_json::to_value(&doc).unwrap();
            // The Ray sample writes `defaultMode: 0777`, an octal int in the YAML 1.1 that kubectl
            // reads but a string for serde_yaml's YAML 1.2; give it the value kubectl would.
            if let Some(mode) =
                obj.pointer_mut("/spec/headGroupSpec/template/spec/volumes/0/configMap/defaultMode")
            {
                assert_eq!(mode, "0777");
                *mode = json!(0o777);
            }
            if let Some(found) = schemas.validate(&obj) {
                assert!(found.is_empty(), "{file}: {found:?}");
                checked += 1;
            }
        }
        assert!(checked > 0, "{file} has no custom resource");
    }
}

#[test]
fn pod_template_overrides_is_unknown_in_trainer_v2_3() {
    assert_eq!(
        problems(trainer_v2_3(), &object(TRAINJOB_V2_1)),
        [r#".spec.podTemplateOverrides: unknown field "podTemplateOverrides""#]
    );
}

#[test]
fn runtime_patches_is_unknown_in_trainer_v2_1() {
    assert_eq!(
        problems(trainer_v2_1(), &object(TRAINJOB_V2_3)),
        [r#".spec.runtimePatches: unknown field "runtimePatches""#]
    );
}

#[test]
fn num_proc_per_node_auto_is_only_valid_in_trainer_v2_1() {
    let mut job = object(TRAINJOB_V2_3);
    job["spec"]["trainer"]["numProcPerNode"] = json!("auto");
    assert_eq!(problems(trainer_v2_1(), &job).len(), 1, "only runtimePatches is unknown in v2.1");
    assert_eq!(
        problems(trainer_v2_3(), &job),
        [r#".spec.trainer.numProcPerNode: must be of type integer, got string "auto""#]
    );

    let mut runtime = object(CLUSTER_TRAINING_RUNTIME);
    runtime["spec"]["mlPolicy"]["torch"]["numProcPerNode"] = json!("auto");
    assert_eq!(problems(trainer_v2_1(), &runtime), NO_PROBLEMS);
    assert_eq!(
        problems(trainer_v2_3(), &runtime),
        [r#".spec.mlPolicy.torch.numProcPerNode: unknown field "numProcPerNode""#]
    );
}

#[test]
fn wrong_type_missing_required_and_unknown_fields_are_reported_at_their_paths() {
    let mut job = object(TRAINJOB_V2_1);
    job["spec"]["trainer"]["numNodes"] = json!("two");
    job["spec"]["runtimeRef"].as_object_mut().unwrap().remove("name");
    job["spec"]["podTemplateOverrides"][0]["spec"]["containers"][0]["volumeMount"] = json!([]);
    job["spec"]["podTemplateOverrides"][0]["targetJobs"][0]["name"] = json!("");
    assert_eq!(
        problems(trainer_v2_1(), &job),
        [
            r#".spec.runtimeRef: missing required field "name""#,
            r#".spec.trainer.numNodes: must be of type integer, got string "two""#,
            ".spec.podTemplateOverrides[0].targetJobs[0].name: must be at least 1 characters long, got 0",
            r#".spec.podTemplateOverrides[0].spec.containers[0].volumeMount: unknown field "volumeMount""#,
        ]
    );

    let mut ray = object(RAY_CLUSTER);
    let container = &mut ray["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0];
    container["imagePullPolicyy"] = json!("Always");
    container["ports"] = json!([{"containerPort": "8080"}]);
    assert_eq!(
        problems(kuberay(), &ray),
        [
            r#".spec.workerGroupSpecs[0].template.spec.containers[0].imagePullPolicyy: unknown field "imagePullPolicyy""#,
            r#".spec.workerGroupSpecs[0].template.spec.containers[0].ports[0].containerPort: must be of type integer, got string "8080""#,
        ]
    );
}

#[test]
fn enum_and_pattern_violations_in_karpenter_objects_are_reported() {
    let mut pool = object(NODE_POOL);
    pool["spec"]["template"]["spec"]["requirements"][0]["operator"] = json!("Equals");
    pool["spec"]["disruption"]["consolidateAfter"] = json!("5 minutes");
    let found = problems(karpenter(), &pool);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        r#".spec.template.spec.requirements[0].operator: unsupported value "Equals"; supported values: "Gte", "Lte", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt""#
    );
    assert!(
        found[1].starts_with(r#".spec.disruption.consolidateAfter: "5 minutes" does not match pattern"#),
        "{found:?}"
    );

    let mut class = object(EC2_NODE_CLASS);
    class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = json!("200GB");
    class["spec"]["metadataOptions"]["httpPutResponseHopLimit"] = json!(65);
    class["spec"]["amiSelectorTerms"] = json!([]);
    let found = problems(karpenter(), &class);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], ".spec.amiSelectorTerms: must have at least 1 items, got 0");
    assert!(
        found[1]
            .starts_with(r#".spec.blockDeviceMappings[0].ebs.volumeSize: "200GB" does not match pattern"#),
        "{found:?}"
    );
    assert_eq!(
        found[2],
        ".spec.metadataOptions.httpPutResponseHopLimit: must be less than or equal to 64, got 65"
    );
}

#[test]
fn ray_cluster_versions_are_both_served() {
    let mut ray = object(RAY_CLUSTER);
    ray["apiVersion"] = json!("ray.io/v1alpha1");
    assert!(kuberay().validate(&ray).is_some());
    ray["apiVersion"] = json!("ray.io/v2");
    assert_eq!(
        problems(kuberay(), &ray),
        [
            r#".apiVersion: version "v2" is not defined by CustomResourceDefinition rayclusters.ray.io (defined: v1, v1alpha1)"#
        ]
    );
}

#[test]
fn two_trainer_releases_in_one_crds_dir_are_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    for release in ["kubeflow-trainer-v2.1.0", "kubeflow-trainer-v2.3.0"] {
        let file = "trainer.kubeflow.org_trainjobs.yaml";
        std::fs::create_dir(dir.path().join(release)).unwrap();
        std::fs::copy(upstream(release).join(file), dir.path().join(release).join(file)).unwrap();
    }
    let err = CrdSchemas::load_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, CrdError::Conflict { kind, .. } if kind == "TrainJob"), "{err}");
}
