//! `aws.secrets` with `components.secrets.mode: apply`: Secrets Manager (moto) -> Kubernetes
//! Secret (API double) through `diff`, `apply` and `status`, and never a value in any output.

use std::path::Path;

use base64::Engine as _;

use crate::aws::{Scenario, RDS_ENDPOINT, RDS_PASSWORD, RDS_USER};
use crate::harness::Output;

const SECRET: &str = "mlflow-backend-store";
const NS: &str = "trainstack-system";

/// The URI eks-dev's template builds from the moto secret.
fn expected_uri(password: &str) -> String {
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("postgresql://{RDS_USER}:{encoded}@{RDS_ENDPOINT}/mlflow?sslmode=require")
}

/// Every form a value could leak in: as written, URI-encoded, and the base64 of the Secret's
/// data (and of the password alone).
fn leak_forms(password: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let uri = expected_uri(password);
    let encoded = uri.split(':').nth(2).unwrap().split('@').next().unwrap().to_string();
    vec![password.to_string(), encoded, b64.encode(&uri), b64.encode(password)]
}

fn assert_no_leak(what: &str, text: &str, password: &str) {
    for form in leak_forms(password) {
        assert!(!text.contains(&form), "{what} contains the secret value ({form:?}):\n{text}");
    }
}

fn both(out: &Output) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

fn live_uri(s: &Scenario) -> Option<String> {
    let secret = s.cluster.server.get("v1", "Secret", Some(NS), SECRET)?;
    let data = secret.pointer("/data/uri")?.as_str()?.to_string();
    Some(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap())
}

fn resource_version(s: &Scenario) -> String {
    let secret = s.cluster.server.get("v1", "Secret", Some(NS), SECRET).unwrap();
    secret.pointer("/metadata/resourceVersion").unwrap().as_str().unwrap().to_string()
}

async fn rotate(s: &Scenario, password: &str) {
    let value = serde_json::json!({"username": RDS_USER, "password": password}).to_string();
    let sm = s.moto.secretsmanager().await;
    sm.put_secret_value().secret_id(&s.rds_secret_arn).secret_string(value).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_builds_the_secret_from_secrets_manager_and_a_reapply_leaves_it_alone() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(live_uri(&s).as_deref(), Some(expected_uri(RDS_PASSWORD).as_str()));
    let secret = s.cluster.server.get("v1", "Secret", Some(NS), SECRET).unwrap();
    assert_eq!(
        secret.pointer("/metadata/annotations/trainstack.io~1secrets-manager-arn").and_then(|v| v.as_str()),
        Some(s.rds_secret_arn.as_str())
    );
    assert!(
        secret.pointer("/metadata/labels/applyset.kubernetes.io~1part-of").is_some(),
        "an ApplySet member, pruned like any other object"
    );
    let before = resource_version(&s);
    let again = s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert!(!again.stdout.contains(&format!("Secret {NS}/{SECRET}")), "{}", again.stdout);
    assert_eq!(resource_version(&s), before, "the re-apply wrote nothing to the Secret");
    s.test(&["diff"]).status(0).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_secret_is_a_redacted_change_in_diff_and_status_until_applied() {
    let s = Scenario::start().await;
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    let rotated = "n3w-R0tated%Pass+word";
    rotate(&s, rotated).await;
    let out = s.test(&["diff"]).status(2).run_async().await;
    assert!(out.stdout.contains(&format!("~ Secret {NS}/{SECRET} (update)")), "{}", out.stdout);
    assert!(
        out.stdout.contains("-  uri: '<redacted: before>'\n+  uri: '<redacted: after>'"),
        "{}",
        out.stdout
    );
    // --show-secrets prints other Secrets, never a Secrets Manager value.
    let shown = s.test(&["diff", "--show-secrets"]).status(2).run_async().await;
    assert!(shown.stdout.contains("+  uri: '<redacted: after>'"), "{}", shown.stdout);
    for out in [&out, &shown] {
        assert_no_leak("diff", &both(out), rotated);
        assert_no_leak("diff", &both(out), RDS_PASSWORD);
    }
    let status = s.test(&["status", "-o", "json"]).status(2).run_async().await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    let row = rows.iter().find(|r| r["object"] == format!("Secret/{NS}/{SECRET}")).expect("a status row");
    assert_eq!(row["state"], "drifted", "{row}");
    assert_no_leak("status", &both(&status), rotated);
    s.test(&["apply", "--no-wait"]).status(0).run_async().await;
    assert_eq!(live_uri(&s).as_deref(), Some(expected_uri(rotated).as_str()));
    s.test(&["diff"]).status(0).run_async().await;
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secret_value_appears_in_no_output_log_or_rendered_file() {
    let s = Scenario::start().await;
    let out_dir = s.cluster.path("deploy");
    let out_arg = out_dir.display().to_string();
    let mut runs = vec![
        // render takes no cluster flags.
        s.cluster
            .test_without_kubeconfig(&["render", "--no-addons", "--out", &out_arg])
            .status(0)
            .run_async()
            .await,
        s.cluster
            .test_without_kubeconfig(&["render", "--no-addons", "-o", "json"])
            .status(0)
            .run_async()
            .await,
        s.test(&["diff", "-v"]).status(2).run_async().await,
        s.test(&["diff", "-o", "json"]).status(2).run_async().await,
        s.test(&["apply", "--no-wait", "-v"]).status(0).run_async().await,
        s.test(&["apply", "--no-wait", "-o", "json"]).status(0).run_async().await,
        s.test(&["status"]).run_async().await,
        s.test(&["status", "-o", "json", "-v"]).run_async().await,
    ];
    rotate(&s, "An0ther-S3cret=Value").await;
    runs.push(s.test(&["diff", "-v", "-o", "yaml"]).status(2).run_async().await);
    assert_eq!(
        live_uri(&s).as_deref(),
        Some(expected_uri(RDS_PASSWORD).as_str()),
        "the test grepped for the value that was applied"
    );
    for out in &runs {
        assert_no_leak("a run's output", &both(out), RDS_PASSWORD);
        assert_no_leak("a run's output", &both(out), "An0ther-S3cret=Value");
    }
    let files = files_under(&out_dir);
    let rendered =
        files.iter().find(|f| std::fs::read_to_string(f).unwrap().contains(&format!("name: {SECRET}\n")));
    let rendered = std::fs::read_to_string(rendered.expect("render --out writes the Secret")).unwrap();
    assert!(!rendered.contains("\ndata:"), "the rendered Secret carries no data:\n{rendered}");
    for f in &files {
        assert_no_leak(&f.display().to_string(), &std::fs::read_to_string(f).unwrap(), RDS_PASSWORD);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unusable_secret_names_the_arn_and_nothing_is_written() {
    let s = Scenario::start().await;
    let sm = s.moto.secretsmanager().await;
    let arn = s.rds_secret_arn.clone();
    let moto_writes = s.moto.writes().len();

    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string("{\"username\": \"mlflow\", \"pass")
        .send()
        .await
        .unwrap();
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert!(
        out.stderr.contains(&format!("aws.secrets \"{SECRET}\": Secrets Manager secret {arn} is not a JSON object (invalid JSON at line 1 column")),
        "{}",
        out.stderr
    );

    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string("{\"username\": \"mlflow\", \"pass\": \"x\"}")
        .send()
        .await
        .unwrap();
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert!(
        out.stderr.contains(&format!("aws.secrets \"{SECRET}\": data.uri reads field \"password\", but Secrets Manager secret {arn} has no such string field (it has: username, pass)")),
        "{}",
        out.stderr
    );

    sm.delete_secret().secret_id(&arn).force_delete_without_recovery(true).send().await.unwrap();
    let out = s.test(&["apply", "--no-wait"]).status(1).run_async().await;
    assert!(
        out.stderr
            .contains(&format!("aws.secrets \"{SECRET}\": Secrets Manager secret {arn} does not exist")),
        "{}",
        out.stderr
    );
    let out = s.test(&["diff"]).status(1).run_async().await;
    assert!(out.stderr.contains(&arn), "{}", out.stderr);

    assert_eq!(s.cluster.server.writes().total(), 0, "nothing was written to the cluster");
    assert_eq!(s.moto.writes()[moto_writes..], [], "no bucket or node group was written");
}
