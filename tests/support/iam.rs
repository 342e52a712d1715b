//! A small IAM policy evaluator for the subset trainstack's Terraform policies use, so a test can
//! say which S3 requests a rendered policy allows: `Allow`/`Deny` statements, `Action` and
//! `Resource` with `*`/`?` wildcards, `${aws:PrincipalTag/...}` policy variables, and the
//! `StringLike`, `StringEquals` and `Null` condition operators. Anything else in a policy
//! (NotAction, NotResource, Principal, other operators) panics rather than being guessed at.
//!
//! Evaluation follows AWS's order for one identity policy: an explicit Deny wins, then any
//! Allow, else the implicit deny. A policy variable whose key the request lacks makes its
//! element match nothing, as AWS documents.

use std::collections::BTreeMap;

use serde_json::Value;

/// Renders a Terraform `templatefile` template: `${name}` from `vars`, `$${` as a literal `${`.
/// Directives (`%{`) are not supported and panic.
pub fn render_template(text: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['$', '%']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = t;
        } else if let Some(t) = tail.strip_prefix("${") {
            let end = t.find('}').expect("unclosed ${ in the template");
            let name = t[..end].trim();
            let value = vars.get(name).unwrap_or_else(|| panic!("template variable {name:?} not given"));
            out.push_str(value);
            rest = &t[end + 1..];
        } else if let Some(t) = tail.strip_prefix("%%{") {
            out.push_str("%{");
            rest = t;
        } else if tail.starts_with("%{") {
            panic!("template directives are not supported here");
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// One request: the action, the resource ARN and the request context.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `s3:GetObject`.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// Context keys (`aws:PrincipalTag/kubernetes-namespace`, `s3:prefix`).
    pub context: BTreeMap<String, String>,
}

/// The decision for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matched and no Deny did.
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// Nothing matched.
    ImplicitDeny,
}

/// Evaluates `policy` (a policy document) for `req`.
pub fn evaluate(policy: &Value, req: &Request) -> Decision {
    let statements = match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        other => panic!("Statement is {other}"),
    };
    let mut allowed = false;
    for s in &statements {
        for key in s.as_object().expect("a statement is an object").keys() {
            assert!(
                ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&key.as_str()),
                "statement key {key} is not supported by this evaluator"
            );
        }
        let matches = list(&s["Action"])
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()))
            && list(&s["Resource"])
                .iter()
                .any(|r| substitute(r, &req.context).is_some_and(|r| glob(&r, req.resource)))
            && conditions(&s["Condition"], &req.context);
        match (matches, s["Effect"].as_str()) {
            (false, _) => {}
            (true, Some("Deny")) => return Decision::ExplicitDeny,
            (true, Some("Allow")) => allowed = true,
            (true, e) => panic!("Effect {e:?}"),
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().expect("a string").to_string()).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

/// `${key}` replaced from the context; None when a key is missing (the element matches nothing).
fn substitute(pattern: &str, context: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("unclosed policy variable") + i;
        let key = &rest[i + 2..end];
        assert!(!key.contains(','), "policy variable defaults are not supported: {key}");
        out.push_str(context.get(key)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn conditions(c: &Value, context: &BTreeMap<String, String>) -> bool {
    let Some(ops) = c.as_object() else {
        assert!(c.is_null(), "Condition is {c}");
        return true;
    };
    ops.iter().all(|(op, keys)| {
        keys.as_object().expect("condition keys").iter().all(|(key, values)| {
            let have = context.get(key);
            let values = list(values);
            match op.as_str() {
                "StringLike" => have.is_some_and(|h| {
                    values.iter().any(|v| substitute(v, context).is_some_and(|v| glob(&v, h)))
                }),
                "StringEquals" => {
                    have.is_some_and(|h| values.iter().any(|v| substitute(v, context).as_deref() == Some(h)))
                }
                "Null" => values.iter().any(|v| (v == "true") == have.is_none()),
                other => panic!("condition operator {other} is not supported by this evaluator"),
            }
        })
    })
}

/// IAM wildcard match: `*` any run of characters (`/` included), `?` one character.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
