//! The `rbac` check: a SubjectAccessReview matrix derived from the environment, asked of the
//! live API server, so the RBAC that was actually applied is what gets tested.
//!
//! Rows (see docs/smoke.md): the backend ServiceAccount may create, watch and delete
//! `trainjobs`, create, update and delete `configmaps` and get `pods/log` in every tenant
//! namespace, and list `clustertrainingruntimes`; it may not get or list Secrets in any tenant
//! namespace, nor create TrainJobs or ConfigMaps in the platform namespace, `default`,
//! `kube-system` or cluster-wide. Each tenant's `trainer` ServiceAccount may read the
//! TrainingRuntimes of its own namespace and may not create TrainJobs or read Pods, ConfigMaps
//! or Secrets in any other tenant's namespace (every ordered pair of tenants up to
//! [`ALL_PAIRS_MAX_TENANTS`] tenants; beyond that each tenant against its successor in the
//! list, so every tenant still appears once as subject and once as target).

use futures::stream::{self, StreamExt};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::env::model::Environment;
use crate::manifest::Manifest;

use super::{Context, Outcome, Record};

/// Reviews asked at once.
const CONCURRENCY: usize = 8;

/// A ServiceAccount as an authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Subject {
    /// `system:serviceaccount:<ns>:<name>`.
    pub fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// The groups the API server puts a ServiceAccount's token in.
    pub fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".into(),
        ]
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceAccount {}/{}", self.namespace, self.name)
    }
}

/// One row of the matrix: may `subject` `verb` `resource` in `namespace`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Who.
    pub subject: Subject,
    /// Verb (`create`, `get`, ...).
    pub verb: &'static str,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, with the subresource after a slash (`pods/log`).
    pub resource: &'static str,
    /// Namespace; empty for cluster-wide (or cluster-scoped) access.
    pub namespace: String,
    /// Whether access is expected.
    pub allowed: bool,
}

impl Row {
    /// `ServiceAccount a/b may create trainjobs.trainer.kubeflow.org in namespace alice`.
    pub fn describe(&self) -> String {
        let resource = if self.group.is_empty() {
            self.resource.to_string()
        } else {
            let (res, sub) =
                self.resource.split_once('/').map_or((self.resource, None), |(r, s)| (r, Some(s)));
            match sub {
                Some(s) => format!("{res}.{}/{s}", self.group),
                None => format!("{res}.{}", self.group),
            }
        };
        let scope = if self.namespace.is_empty() {
            "cluster-wide".to_string()
        } else {
            format!("in namespace {}", self.namespace)
        };
        format!(
            "{} {} {} {resource} {scope}",
            self.subject,
            if self.allowed { "may" } else { "may not" },
            self.verb
        )
    }
}

const TRAINER: &str = "trainer.kubeflow.org";

/// The matrix for an environment.
pub fn matrix(env: &Environment) -> Vec<Row> {
    let tenants: Vec<&str> = env.components.tenants.list.iter().map(|t| t.name.as_str()).collect();
    let backend = Subject {
        namespace: env.platform_namespace.clone(),
        name: env.components.tenants.backend.service_account.clone(),
    };
    let row = |subject: &Subject, verb, group, resource, namespace: &str, allowed| Row {
        subject: subject.clone(),
        verb,
        group,
        resource,
        namespace: namespace.to_string(),
        allowed,
    };
    let mut rows = Vec::new();
    for t in &tenants {
        for verb in ["create", "watch", "delete"] {
            rows.push(row(&backend, verb, TRAINER, "trainjobs", t, true));
        }
        for verb in ["create", "update", "delete"] {
            rows.push(row(&backend, verb, "", "configmaps", t, true));
        }
        rows.push(row(&backend, "get", "", "pods/log", t, true));
        for verb in ["get", "list"] {
            rows.push(row(&backend, verb, "", "secrets", t, false));
        }
    }
    rows.push(row(&backend, "list", TRAINER, "clustertrainingruntimes", "", true));
    let mut outside: Vec<&str> = vec![env.platform_namespace.as_str(), "default", "kube-system"];
    outside.retain(|ns| !tenants.contains(ns));
    outside.dedup();
    for ns in outside.iter().copied().chain([""]) {
        rows.push(row(&backend, "create", TRAINER, "trainjobs", ns, false));
        rows.push(row(&backend, "create", "", "configmaps", ns, false));
    }
    rows.push(row(&backend, "list", "", "secrets", "", false));
    let all_pairs = tenants.len() <= ALL_PAIRS_MAX_TENANTS;
    for (i, t) in tenants.iter().enumerate() {
        let sa = Subject { namespace: t.to_string(), name: "trainer".into() };
        rows.push(row(&sa, "list", TRAINER, "trainingruntimes", t, true));
        let others: Vec<&str> = if all_pairs {
            tenants.iter().copied().filter(|o| o != t).collect()
        } else {
            vec![tenants[(i + 1) % tenants.len()]]
        };
        for other in others {
            rows.push(row(&sa, "create", TRAINER, "trainjobs", other, false));
            rows.push(row(&sa, "get", "", "pods", other, false));
            rows.push(row(&sa, "get", "", "configmaps", other, false));
            rows.push(row(&sa, "get", "", "secrets", other, false));
        }
    }
    rows
}

/// Up to this many tenants every tenant is checked against every other one (4 reviews per
/// ordered pair: 1520 at 20 tenants); beyond it against its successor in the list only.
const ALL_PAIRS_MAX_TENANTS: usize = 20;

/// The bindings of the rendered set meant to grant `row`: bindings (RoleBindings in the row's
/// namespace, ClusterRoleBindings) naming its ServiceAccount whose role has a rule covering the
/// row's group, resource and verb. Named in a failure so the user knows what to inspect.
pub fn granting_bindings(set: &[Manifest], row: &Row) -> Vec<String> {
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
    };
    let covers = |rules: &Value| {
        rules.as_array().into_iter().flatten().any(|r| {
            let any = |list: Vec<String>, want: &str| list.iter().any(|x| x == want || x == "*");
            any(str_list(&r["apiGroups"]), row.group)
                && any(str_list(&r["resources"]), row.resource)
                && any(str_list(&r["verbs"]), row.verb)
        })
    };
    let role_rules = |kind: &str, name: &str, ns: Option<&str>| {
        set.iter()
            .find(|m| m.kind() == kind && m.name() == name && (kind == "ClusterRole" || m.namespace() == ns))
            .map(|m| m.obj["rules"].clone())
            .unwrap_or(Value::Null)
    };
    set.iter()
        .filter(|m| {
            (m.kind() == "RoleBinding"
                && !row.namespace.is_empty()
                && m.namespace() == Some(row.namespace.as_str()))
                || m.kind() == "ClusterRoleBinding"
        })
        .filter(|m| {
            m.obj["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == row.subject.name.as_str()
                    && s["namespace"] == row.subject.namespace.as_str()
            })
        })
        .filter(|m| {
            let role_kind = m.obj["roleRef"]["kind"].as_str().unwrap_or_default();
            let role_name = m.obj["roleRef"]["name"].as_str().unwrap_or_default();
            covers(&role_rules(role_kind, role_name, m.namespace()))
        })
        .map(|m| match m.namespace() {
            Some(ns) => format!(
                "RoleBinding {ns}/{} (roleRef {})",
                m.name(),
                m.obj["roleRef"]["name"].as_str().unwrap_or_default()
            ),
            None => format!(
                "ClusterRoleBinding {} (roleRef {})",
                m.name(),
                m.obj["roleRef"]["name"].as_str().unwrap_or_default()
            ),
        })
        .collect()
}

/// What the server said about one row.
struct Answer {
    allowed: bool,
    reason: String,
}

async fn review(api: &Api<SubjectAccessReview>, row: &Row) -> Result<Answer, String> {
    let (resource, subresource) =
        row.resource.split_once('/').map_or((row.resource, None), |(r, s)| (r, Some(s.to_string())));
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(row.subject.user()),
            groups: Some(row.subject.groups()),
            resource_attributes: Some(ResourceAttributes {
                namespace: (!row.namespace.is_empty()).then(|| row.namespace.clone()),
                verb: Some(row.verb.to_string()),
                group: Some(row.group.to_string()),
                resource: Some(resource.to_string()),
                subresource,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let pp = PostParams::default();
    let out = crate::engine::cluster::retry("create SubjectAccessReview", || api.create(&pp, &sar))
        .await
        .map_err(|e| e.to_string())?;
    let status = out.status.unwrap_or_default();
    let mut reason = status.reason.unwrap_or_default();
    if let Some(e) = status.evaluation_error.filter(|e| !e.is_empty()) {
        reason = format!("{reason} (evaluation error: {e})").trim().to_string();
    }
    Ok(Answer { allowed: status.allowed, reason })
}

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> Outcome {
    let rows = matrix(&ctx.env);
    let api: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    let answers: Vec<Result<Answer, String>> =
        stream::iter(rows.iter()).map(|row| review(&api, row)).buffered(CONCURRENCY).collect().await;
    let mut failures = Vec::new();
    let mut culprits: Vec<String> = Vec::new();
    let mut matrix_log = String::new();
    for (row, answer) in rows.iter().zip(answers) {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                return Outcome::failed(
                    format!("the SubjectAccessReview for \"{}\" failed: {e}", row.describe()),
                    "the user running smoke needs create on subjectaccessreviews.authorization.k8s.io",
                )
            }
        };
        let failure = if answer.allowed == row.allowed {
            None
        } else if row.allowed {
            let grants = granting_bindings(&ctx.set, row);
            let from = if grants.is_empty() {
                "no rendered binding grants it".to_string()
            } else {
                format!("the environment grants it through {}", grants.join(", "))
            };
            culprits.extend(grants);
            Some(format!("{}: denied; {from}", row.describe()))
        } else {
            let by = if answer.reason.is_empty() {
                "the server gave no reason".to_string()
            } else {
                answer.reason
            };
            culprits.push(by.clone());
            Some(format!("{}: allowed ({by})", row.describe()))
        };
        matrix_log.push_str(&format!(
            "{}  {}\n",
            if failure.is_some() { "FAIL" } else { "ok  " },
            row.describe()
        ));
        if let Some(f) = failure {
            rec.step(f.clone());
            failures.push(f);
        }
    }
    // The whole matrix goes to the captured output (JUnit system-out, -v); steps hold the failures.
    rec.log("access reviews", &matrix_log);
    if failures.is_empty() {
        return Outcome::passed(format!("{} access reviews as expected", rows.len()));
    }
    culprits.sort();
    culprits.dedup();
    let more = match failures.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more in the steps)"),
    };
    Outcome::failed(
        format!(
            "{} of {} access reviews differ from the environment: {}{more}; look at {}",
            failures.len(),
            rows.len(),
            failures[0],
            if culprits.is_empty() { "the bindings of the named namespaces".to_string() } else { culprits.join(", ") }
        ),
        "compare the named bindings with the live ones (kubectl -n NS get rolebinding NAME -o yaml) and re-run trainstack apply; kubectl auth can-i --as system:serviceaccount:NS:NAME reproduces a row",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        let yaml = "name: t\ntarget: {kind: kind, cluster_name: t}\ncomponents:\n  tenants:\n    list: [{name: alice}, {name: bob}]\n";
        let value: serde_json::Value = crate::yaml::from_str(yaml).unwrap();
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn matrix_covers_every_tenant_and_the_namespaces_outside_them() {
        let rows = matrix(&env());
        let backend = |verb: &str, res: &str, ns: &str| {
            rows.iter().find(|r| {
                r.subject.name == "trainjob-backend"
                    && r.verb == verb
                    && r.resource == res
                    && r.namespace == ns
            })
        };
        for t in ["alice", "bob"] {
            assert!(backend("create", "trainjobs", t).unwrap().allowed);
            assert!(backend("get", "pods/log", t).unwrap().allowed);
            assert!(!backend("get", "secrets", t).unwrap().allowed);
        }
        assert!(!backend("create", "trainjobs", "default").unwrap().allowed);
        assert!(!backend("create", "trainjobs", "").unwrap().allowed);
        let alice = rows.iter().find(|r| r.subject.namespace == "alice" && r.verb == "create").unwrap();
        assert_eq!(alice.namespace, "bob");
        assert!(!alice.allowed);
        assert_eq!(
            alice.describe(),
            "ServiceAccount alice/trainer may not create trainjobs.trainer.kubeflow.org in namespace bob"
        );
    }
}
