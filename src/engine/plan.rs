//! Per-object planning: what a server-side apply would change, as a redacted unified diff.

use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::engine::normalize::{always_redacted, is_secret, normalize, redact_pair};
use crate::manifest::Phase;
use crate::yaml;

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Does not exist yet.
    Create,
    /// Exists and differs.
    Update,
    /// Exists and matches.
    Unchanged,
    /// Applied by this environment before, no longer declared: deleted with `--prune`.
    Prune,
}

impl Action {
    /// The sign reports put before the object: `+`, `~`, `=`, `-`.
    pub fn sign(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Unchanged => '=',
            Action::Prune => '-',
        }
    }

    /// The word reports put after the object.
    pub fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Prune => "prune",
        }
    }
}

/// The plan (and, after apply, the outcome) for one object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    /// Kind.
    pub kind: String,
    /// Namespace, if namespaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Apply phase.
    pub phase: Phase,
    /// What happens.
    pub action: Action,
    /// Unified diff (secrets redacted unless asked otherwise).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// Why the object failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fields another field manager owns with another value (drift by e.g. `kubectl patch`):
    /// the diff shows what taking them over would change; apply refuses it without
    /// `--force-conflicts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
    /// What the API server warned about while planning or writing it (a PodSecurity level its
    /// pods would violate, a deprecated API version), each once.
    pub warnings: Vec<String>,
}

impl crate::tally::Counted for ObjectChange {
    type Action = Action;
    fn action(&self) -> Action {
        self.action
    }
    fn failed(&self) -> bool {
        self.error.is_some()
    }
    fn warnings(&self) -> usize {
        self.warnings.len()
    }
}

/// The 409 a server-side apply met: which managers own which of the object's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The other field managers, each once, in the order the server named them.
    pub managers: Vec<String>,
    /// Each conflicting field and its owner.
    pub fields: Vec<FieldConflict>,
    /// The server's message.
    pub message: String,
}

impl Conflict {
    /// The conflict of a 409 answer, from its `FieldManagerConflict` causes; `None` when the
    /// 409 is of another kind (e.g. a stale resourceVersion).
    pub fn from_causes<'a>(
        message: &str,
        causes: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Option<Self> {
        let fields: Vec<FieldConflict> = causes
            .into_iter()
            .filter(|(reason, _, _)| *reason == "FieldManagerConflict")
            .map(|(_, cause, field)| FieldConflict { manager: manager_of(cause), field: field.to_string() })
            .collect();
        if fields.is_empty() {
            return None;
        }
        let mut managers: Vec<String> = Vec::new();
        for f in &fields {
            if !managers.contains(&f.manager) {
                managers.push(f.manager.clone());
            }
        }
        Some(Conflict { managers, fields, message: message.to_string() })
    }

    /// `kubectl-patch` or `kubectl-patch, helm`.
    pub fn managers_list(&self) -> String {
        self.managers.join(", ")
    }
}

/// One field another manager owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldConflict {
    /// The field manager that owns it (`kubectl-patch`).
    pub manager: String,
    /// The field path as the server names it (`.spec.hard.pods`).
    pub field: String,
}

/// The manager a conflict cause names: the API server words it `conflict with "NAME"`, followed
/// by ` using v1` for managers that wrote with an update rather than an apply. The name is a
/// quoted Go string; anything else is kept whole.
fn manager_of(cause: &str) -> String {
    let rest = cause.strip_prefix("conflict with ").unwrap_or(cause);
    serde_json::Deserializer::from_str(rest)
        .into_iter::<String>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| rest.to_string())
}

impl ObjectChange {
    /// `Kind namespace/name` or `Kind name`.
    pub fn display_id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// Compares live state with the server's dry-run result of applying the desired object.
/// Both come from the server, so defaulted fields appear on both sides and cancel out.
pub fn compare(
    live: Option<&Value>,
    dry_run: &Value,
    desired: &Value,
    show_secrets: bool,
) -> (Action, String) {
    let redact = is_secret(desired) && (!show_secrets || always_redacted(desired));
    match live {
        None => {
            // A new object is shown as declared, without server defaults.
            let mut shown = desired.clone();
            if redact {
                redact_pair(None, Some(&mut shown));
            }
            (Action::Create, unified(None, Some(&shown)))
        }
        Some(live) => {
            let mut before = normalize(live);
            let mut after = normalize(dry_run);
            if before == after {
                return (Action::Unchanged, String::new());
            }
            // Servers and clients order keys differently (a LIST item keeps the stored order,
            // a typed round trip sorts labels); a diff must show values, not orderings.
            align_keys(&mut before, &after);
            if redact {
                redact_pair(Some(&mut before), Some(&mut after));
            }
            (Action::Update, unified(Some(&before), Some(&after)))
        }
    }
}

/// Reorders `before`'s map keys, at every depth, to follow `after`'s order; keys only
/// `before` has keep their place after those.
fn align_keys(before: &mut Value, after: &Value) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut rest = std::mem::take(b);
            for (k, av) in a {
                if let Some(mut bv) = rest.shift_remove(k) {
                    align_keys(&mut bv, av);
                    b.insert(k.clone(), bv);
                }
            }
            b.extend(rest);
        }
        (Value::Array(b), Value::Array(a)) => {
            for (bv, av) in b.iter_mut().zip(a) {
                align_keys(bv, av);
            }
        }
        _ => {}
    }
}

/// A unified diff of two objects' YAML, three lines of context.
pub fn unified(before: Option<&Value>, after: Option<&Value>) -> String {
    let a = before.map(yaml::to_string).unwrap_or_default();
    let b = after.map(yaml::to_string).unwrap_or_default();
    TextDiff::from_lines(&a, &b).unified_diff().context_radius(3).header("live", "desired").to_string()
}

/// Colours a unified diff for a terminal.
pub fn colorize(diff: &str) -> String {
    diff.lines()
        .map(|l| {
            if l.starts_with("+++") || l.starts_with("---") {
                format!("\x1b[1m{l}\x1b[0m")
            } else if l.starts_with('+') {
                format!("\x1b[32m{l}\x1b[0m")
            } else if l.starts_with('-') {
                format!("\x1b[31m{l}\x1b[0m")
            } else if l.starts_with("@@") {
                format!("\x1b[36m{l}\x1b[0m")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_in_another_order_on_the_live_side_show_no_diff_lines() {
        let live = json!({"metadata": {"namespace": "a", "name": "q", "labels": {"z": "1", "a": "2"}},
            "spec": {"hard": {"pods": "50", "cpu": "8"}}});
        let dry = json!({"metadata": {"name": "q", "namespace": "a", "labels": {"a": "2", "z": "1"}},
            "spec": {"hard": {"cpu": "8", "pods": "60"}}});
        let (_, diff) = compare(Some(&live), &dry, &dry, false);
        let changed: Vec<&str> = diff
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
            })
            .collect();
        assert_eq!(changed, vec!["-    pods: '50'", "+    pods: '60'"], "{diff}");
    }

    #[test]
    fn one_changed_field_is_one_changed_line() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3"}, "data": {"x": "1", "z": "2"}});
        let dry = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3"}, "data": {"x": "1", "z": "3"}});
        let (action, diff) = compare(Some(&live), &dry, &dry, false);
        assert_eq!(action, Action::Update);
        let changed: Vec<&str> = diff
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
            })
            .collect();
        assert_eq!(changed, vec!["-  z: '2'", "+  z: '3'"]);
    }

    #[test]
    fn a_conflict_names_each_manager_once_from_the_servers_causes() {
        let causes = [
            ("FieldManagerConflict", "conflict with \"kubectl-patch\" using v1", ".spec.hard.pods"),
            ("FieldManagerConflict", "conflict with \"kubectl-patch\" using v1", ".spec.hard.cpu"),
            ("FieldManagerConflict", "conflict with \"helm\"", ".metadata.labels.team"),
        ];
        let c = Conflict::from_causes("Apply failed with 3 conflicts: ...", causes).unwrap();
        assert_eq!(c.managers, vec!["kubectl-patch", "helm"]);
        assert_eq!(
            c.fields[1],
            FieldConflict { manager: "kubectl-patch".into(), field: ".spec.hard.cpu".into() }
        );
        assert_eq!(c.managers_list(), "kubectl-patch, helm");
        assert_eq!(Conflict::from_causes("the object has been modified", [("", "", "")]), None);
    }

    #[test]
    fn new_secret_is_shown_redacted() {
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        let (action, diff) = compare(None, &s, &s, false);
        assert_eq!(action, Action::Create);
        assert!(!diff.contains("hunter2") && diff.contains("<redacted"), "{diff}");
        let (_, shown) = compare(None, &s, &s, true);
        assert!(shown.contains("hunter2"));
    }

    #[test]
    fn a_secret_from_secrets_manager_stays_redacted_with_show_secrets() {
        let annotations =
            json!({"trainstack.io/secrets-manager-arn": "arn:aws:secretsmanager:us-east-1:1:secret:s"});
        let old = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": annotations}, "data": {"uri": "b2xk"}});
        let new = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": annotations}, "data": {"uri": "bmV3"}});
        let (_, created) = compare(None, &new, &new, true);
        assert!(!created.contains("bmV3") && created.contains("uri: '<redacted"), "{created}");
        let (action, changed) = compare(Some(&old), &new, &new, true);
        assert_eq!(action, Action::Update);
        assert!(!changed.contains("b2xk") && !changed.contains("bmV3"), "{changed}");
        assert!(changed.contains("<redacted: before>") && changed.contains("<redacted: after>"), "{changed}");
    }
}
