//! `metav1.Status` error bodies with the reasons, codes, messages and details the real
//! kube-apiserver sends, so kube-rs turns them into `kube::Error::Api` exactly as in production.

use serde_json::{json, Value};

use super::discovery::ResourceDef;

/// A failed request: an HTTP status code plus the `Status` body that goes with it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub body: Value,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Option<Value>) -> Self {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let Some(details) = details {
            body["details"] = details;
        }
        Self { code, body }
    }

    fn details(def: &ResourceDef, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": def.plural});
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        d
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", def.qualified()),
            Some(Self::details(def, name)),
        )
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        )
    }

    /// What a real server answers for a path it has no handler for (an unknown resource, or a
    /// custom resource whose CRD is not established yet).
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(
                json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}),
            ),
        )
    }

    /// What an unauthenticated request gets (no or an unknown bearer token).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// An admission refusal (`pods "x" is forbidden: violates PodSecurity ...`).
    pub fn forbidden(def: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", def.qualified()),
            Some(Self::details(def, name)),
        )
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", def.qualified()),
            Some(Self::details(def, name)),
        )
    }

    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", def.qualified()),
            Some(Self::details(def, name)),
        )
    }

    pub fn stale_resource_version(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// The server-side apply conflict: one `FieldManagerConflict` cause per field.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message, Some(json!({"causes": causes})))
    }

    pub fn invalid(def: &ResourceDef, name: &str, field: &str, detail: &str) -> Self {
        let mut details = Self::details(def, name);
        details["kind"] = json!(def.kind);
        details["causes"] = json!([{"reason": "FieldValueInvalid", "message": detail, "field": field}]);
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {detail}", def.kind),
            Some(details),
        )
    }

    /// `410 Gone` for a resourceVersion older than the server still has history for
    /// (`errors.NewResourceExpired`).
    pub fn expired(message: &str) -> Self {
        Self::new(410, "Expired", message.to_string(), None)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
            None,
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"), None)
    }

    pub fn namespace_terminating(def: &ResourceDef, name: &str, ns: &str) -> Self {
        let message =
            format!("unable to create new content in namespace {ns} because it is being terminated");
        let mut details = Self::details(def, name);
        details["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace",
        }]);
        Self::new(403, "Forbidden", message, Some(details))
    }

    /// The API Priority and Fairness rejection body; the `Retry-After` header goes with it.
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".into(),
            Some(json!({"retryAfterSeconds": retry_after})),
        )
    }

    pub fn server_error(code: u16) -> Self {
        match code {
            503 => Self::new(503, "ServiceUnavailable", "the server is currently unable to handle the request".into(), None),
            504 => Self::new(504, "Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".into(), None),
            _ => Self::new(code, "InternalError", "Internal error occurred: injected fault".into(), None),
        }
    }
}

/// The body a real server returns for a delete that removed the object at once.
pub(crate) fn deleted(def: &ResourceDef, name: &str, uid: &str) -> Value {
    let mut details = ApiError::details(def, name);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// The 403 the real authorizer answers `user`: for a resource, naming verb, resource, group and
/// scope; for discovery and other paths, the path.
pub(crate) fn forbidden_user(user: &str, method: &str, path: &str) -> ApiError {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", g, _v, rest @ ..] if !rest.is_empty() => (*g, rest),
        _ => {
            let verb = method.to_lowercase();
            return ApiError::new(
                403,
                "Forbidden",
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
                Some(json!({})),
            );
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(*ns), tail),
        _ => (None, rest),
    };
    let resource = rest[0];
    let name = rest.get(1).copied();
    let verb = match (method, name) {
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => "get",
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    let subject = match name {
        Some(n) => format!("{qualified} \"{n}\" is forbidden"),
        None => format!("{qualified} is forbidden"),
    };
    let mut details = json!({"kind": resource});
    if let Some(n) = name {
        details["name"] = json!(n);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    ApiError::new(
        403,
        "Forbidden",
        format!(
            "{subject}: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
        ),
        Some(details),
    )
}
