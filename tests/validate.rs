//! `validate`: every shipped environment passes the Kubernetes API types and the upstream CRD
//! schemas of its pinned versions; mistakes in rendered objects are reported with their path.

use crate::harness::{Test, MINIMAL_ENV};

const TF_OUTPUTS: &str = "terraform/envs/eks-dev/outputs.example.json";

fn upstream(dir: &str) -> String {
    format!("{}/../shared/upstream/{dir}", env!("CARGO_MANIFEST_DIR"))
}

/// The `validate` run of the files against the CRD directories, for expectations.
fn validate(files: &[&str], crds: &[&str]) -> Test {
    let mut args: Vec<String> =
        vec!["validate".into(), "--no-addons".into(), "--terraform-outputs".into(), TF_OUTPUTS.into()];
    for f in files {
        args.extend(["-e".to_string(), f.to_string()]);
    }
    for c in crds {
        args.extend(["--crds".to_string(), upstream(c)]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Test::in_repo().args(&refs)
}

const V23: &[&str] = &["kubeflow-trainer-v2.3.0", "jobset-v0.12.0", "kuberay-v1.7.0", "karpenter-v1.14.1"];

#[test]
fn shipped_environments_pass_types_and_upstream_crds() {
    for env in ["kind", "eks-dev", "eks-prod"] {
        let out =
            validate(&["environments/base.yaml", &format!("environments/{env}.yaml")], V23).status(0).run();
        let last = out.stdout.lines().last().unwrap();
        assert!(last.starts_with("valid: ") && last.ends_with(", 0 not checked"), "{env}: {last}");
    }
}

#[test]
fn trainer_v2_1_shape_passes_v2_1_crds_and_fails_v2_3_crds() {
    let files = ["environments/base.yaml", "environments/eks-dev.yaml", "tests/fixtures/trainer-v2.1.yaml"];
    validate(&files, &["kubeflow-trainer-v2.1.0", "kuberay-v1.7.0"]).status(0).run();
    let bad = validate(&files, &["kubeflow-trainer-v2.3.0", "kuberay-v1.7.0"]).status(1).run();
    assert!(
        bad.stdout.contains(
            "error: templates/trainer/trainjobs.yaml: TrainJob/team-vision/resnet-ddp: .spec.podTemplateOverrides: unknown field \"podTemplateOverrides\""
        ),
        "{}",
        bad.stdout
    );
}

#[test]
fn custom_resources_without_schemas_are_reported_not_checked() {
    let out = validate(&["environments/base.yaml", "environments/kind.yaml"], &[]).status(0).run();
    assert!(out.stdout.contains(
        "warning: ClusterTrainingRuntime/pytorch-simple (trainer.kubeflow.org/v1alpha1 ClusterTrainingRuntime): no schema to check it against: no add-on in the set brings its CRD (left out by --no-addons?); pass --crds DIR with the CRDs of the pinned version"
    ), "{}", out.stdout);
}

#[test]
fn external_secrets_kinds_are_reported_unchecked_as_a_prerequisite_not_a_missing_addon() {
    let files =
        ["environments/base.yaml", "environments/eks-dev.yaml", "tests/fixtures/external-secrets.yaml"];
    let out = validate(&files, V23).status(0).run();
    assert!(out.stdout.contains(
        "warning: ExternalSecret/trainstack-system/mlflow-backend-store (external-secrets.io/v1 ExternalSecret): no schema to check it against: the External Secrets Operator (components.secrets.mode: external-secrets) is a prerequisite trainstack does not install, so its CRDs are not in the set; pass --crds DIR with the CRDs of the version installed in the cluster"
    ), "{}", out.stdout);
    assert!(out.stdout.lines().last().unwrap().ends_with(", 2 not checked"), "{}", out.stdout);
}

#[test]
fn a_typo_in_a_template_override_is_found_at_its_path() {
    let tpl =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ platform_namespace }}\n  lables: {a: b}\n";
    let out = Test::new()
        .file("env.yaml", MINIMAL_ENV)
        .file("tpl/platform/namespace.yaml", tpl)
        .args(&["validate", "-e", "env.yaml", "--templates", "tpl"])
        .status(1)
        .run();
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "error: tpl/platform/namespace.yaml: Namespace/trainstack-system: .metadata.lables: unknown field \"lables\""
    );
}

#[test]
fn json_report() {
    let out = Test::new()
        .file("env.yaml", MINIMAL_ENV)
        .args(&["validate", "-e", "env.yaml", "-o", "json"])
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert!(v["core_checked"].as_u64().unwrap() > 0);
}

#[test]
fn json_report_of_an_invalid_environment_lists_its_problems_and_exits_1() {
    let env = format!("{MINIMAL_ENV}components:\n  tenants:\n    list:\n      - name: Team_A\n");
    for format in ["json", "yaml"] {
        let out = Test::new()
            .file("env.yaml", &env)
            .args(&["validate", "-e", "env.yaml", "-o", format])
            .status(1)
            .run();
        let v: serde_json::Value = if format == "json" {
            serde_json::from_str(&out.stdout).expect("stdout is the JSON report")
        } else {
            serde_yaml::from_str(&out.stdout).expect("stdout is the YAML report")
        };
        assert_eq!(v["valid"], false);
        assert_eq!(v["objects"], 0);
        let problem = &v["problems"][0];
        assert_eq!(problem["file"], "env.yaml");
        assert_eq!((problem["line"].as_u64(), problem["column"].as_u64()), (Some(8), Some(15)));
        assert_eq!(problem["field"], "components.tenants.list[0].name");
        assert!(problem["message"].as_str().unwrap().contains("not a valid DNS-1123 label"), "{problem}");
    }
    // A template override that does not parse stops the render too: it is a problem at its line.
    let out = Test::new()
        .file("env.yaml", MINIMAL_ENV)
        .file("tpl/platform/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ x }\n")
        .args(&["validate", "-e", "env.yaml", "--templates", "tpl", "-o", "json"])
        .status(1)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is the JSON report");
    let problem = &v["problems"][0];
    assert_eq!(
        (problem["file"].as_str(), problem["line"].as_u64()),
        (Some("tpl/platform/namespace.yaml"), Some(4))
    );
    assert!(problem["message"].as_str().unwrap().starts_with("syntax error"), "{problem}");
}

#[test]
fn custom_resources_are_checked_against_the_crds_the_addons_bring_without_flags() {
    // The add-ons of the set (here the upstream CRD files of the pinned versions) provide the
    // schemas: no --crds is needed.
    let out = Test::new()
        .file("crds.yaml", &crate::harness::crd_addons_overlay())
        .args(&[
            "validate",
            "--terraform-outputs",
            &crate::harness::repo().join(TF_OUTPUTS).display().to_string(),
        ])
        .args(&["-e", &crate::harness::repo().join("environments/base.yaml").display().to_string()])
        .args(&["-e", &crate::harness::repo().join("environments/kind.yaml").display().to_string()])
        .args(&["-e", "crds.yaml", "-o", "json"])
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["crd_checked"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["unchecked"], serde_json::json!([]));
}
