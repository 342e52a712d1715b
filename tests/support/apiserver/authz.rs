//! SubjectAccessReviews, evaluated against the Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings the double holds, by the rules of the real RBAC authorizer: verbs,
//! API groups, resources with subresources (`pods/log`, `*/log`), resourceNames, `*`
//! wildcards, User, Group and ServiceAccount subjects (a ServiceAccount subject without a
//! namespace means the binding's). Simplification: aggregated ClusterRoles count only the rules
//! they spell out, since no aggregation controller fills them in.

use serde_json::{json, Value};

use super::handlers::{ApiRequest, Reply};
use super::status::ApiError;
use super::State;

const RBAC: &str = "rbac.authorization.k8s.io";

/// What is asked: who, and which resource access.
struct Ask<'a> {
    user: &'a str,
    groups: Vec<&'a str>,
    namespace: &'a str,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn rule_allows(rule: &Value, ask: &Ask) -> bool {
    let has = |field: &str, want: &str| strs(&rule[field]).iter().any(|x| *x == "*" || *x == want);
    let combined = if ask.subresource.is_empty() {
        ask.resource.to_string()
    } else {
        format!("{}/{}", ask.resource, ask.subresource)
    };
    let resource_ok = strs(&rule["resources"]).iter().any(|r| {
        *r == "*" || *r == combined || (!ask.subresource.is_empty() && *r == format!("*/{}", ask.subresource))
    });
    let names = strs(&rule["resourceNames"]);
    has("verbs", ask.verb)
        && has("apiGroups", ask.group)
        && resource_ok
        && (names.is_empty() || (!ask.name.is_empty() && names.contains(&ask.name)))
}

/// `ServiceAccount "name/ns"`, `User "x"`, `Group "y"`, as the real authorizer names subjects.
fn matching_subject(binding: &Value, ask: &Ask) -> Option<String> {
    let binding_ns = binding["metadata"]["namespace"].as_str().unwrap_or_default();
    binding["subjects"].as_array().into_iter().flatten().find_map(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str().unwrap_or_default() {
            "User" if name == ask.user => Some(format!("User {name:?}")),
            "Group" if ask.groups.contains(&name) => Some(format!("Group {name:?}")),
            "ServiceAccount" => {
                let ns = s["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(binding_ns);
                (format!("system:serviceaccount:{ns}:{name}") == ask.user)
                    .then(|| format!("ServiceAccount {:?}", format!("{name}/{ns}")))
            }
            _ => None,
        }
    })
}

fn role_rules(st: &State, kind: &str, name: &str, namespace: &str) -> Vec<Value> {
    let (plural, ns) = if kind == "Role" { ("roles", Some(namespace)) } else { ("clusterroles", None) };
    st.store
        .list(RBAC, plural, ns)
        .find(|(k, _)| k.name == name)
        .map(|(_, r)| r["rules"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// The first binding that allows the request, described like the real authorizer's reason.
fn allowed_by(st: &State, ask: &Ask) -> Option<String> {
    let mut bindings: Vec<(&str, Value)> = st
        .store
        .list(RBAC, "clusterrolebindings", None)
        .map(|(_, b)| ("ClusterRoleBinding", b.clone()))
        .collect();
    if !ask.namespace.is_empty() {
        bindings.extend(
            st.store.list(RBAC, "rolebindings", Some(ask.namespace)).map(|(_, b)| ("RoleBinding", b.clone())),
        );
    }
    bindings.into_iter().find_map(|(kind, b)| {
        let subject = matching_subject(&b, ask)?;
        let role_kind = b["roleRef"]["kind"].as_str().unwrap_or_default();
        let role_name = b["roleRef"]["name"].as_str().unwrap_or_default();
        let rules = role_rules(st, role_kind, role_name, ask.namespace);
        if !rules.iter().any(|r| rule_allows(r, ask)) {
            return None;
        }
        let name = b["metadata"]["name"].as_str().unwrap_or_default();
        let shown =
            if kind == "RoleBinding" { format!("{name}/{}", ask.namespace) } else { name.to_string() };
        Some(format!("RBAC: allowed by {kind} {shown:?} of {role_kind} {role_name:?} to {subject}"))
    })
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`.
pub(crate) fn subject_access_review(st: &State, req: &ApiRequest) -> Result<Reply, ApiError> {
    if req.method != "POST" {
        return Err(ApiError::method_not_allowed(&req.method));
    }
    let mut review: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding SubjectAccessReview: {e}")))?;
    let spec = &review["spec"];
    let attrs = &spec["resourceAttributes"];
    if !attrs.is_object() {
        return Err(ApiError::bad_request(
            "spec.resourceAttributes: Required value (the double evaluates resource requests only)",
        ));
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (user, namespace, verb, group, resource, subresource, name) = (
        s(&spec["user"]),
        s(&attrs["namespace"]),
        s(&attrs["verb"]),
        s(&attrs["group"]),
        s(&attrs["resource"]),
        s(&attrs["subresource"]),
        s(&attrs["name"]),
    );
    let ask = Ask {
        user: &user,
        groups: strs(&spec["groups"]),
        namespace: &namespace,
        verb: &verb,
        group: &group,
        resource: &resource,
        subresource: &subresource,
        name: &name,
    };
    let status = match allowed_by(st, &ask) {
        Some(reason) => json!({"allowed": true, "reason": reason}),
        None => json!({"allowed": false}),
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SubjectAccessReview");
    review["status"] = status;
    Ok(Reply::Json { code: 201, body: review, content_type: "application/json" })
}
