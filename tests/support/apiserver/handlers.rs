//! The API itself: routes a request path to discovery or to a resource, and implements
//! get, list, create, update, the patch types, server-side apply, delete (with finalizers,
//! namespace and CRD cleanup) and the `/status` and `/log` subresources.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::defaults::{apply_defaults, initial_status};
use super::discovery::{self, ResourceDef};
use super::patch::{json_patch, merge_patch};
use super::selectors::{FieldSelector, LabelSelector};
use super::ssa::{self, ApplyRequest, Part, Schema};
use super::status::{self, ApiError};
use super::store::ObjKey;
use super::{controllers, now, Shared, State};

/// A request as the API layer sees it: HTTP already parsed, body already read.
pub(crate) struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub accept: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Bytes,
    /// Sent by the control API or a simulated controller rather than a client: not counted
    /// as a client write.
    pub internal: bool,
    /// Warnings for the response's `Warning` headers (admission, deprecated versions).
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl ApiRequest {
    fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// The manager a non-apply write is recorded under: `fieldManager`, else the user agent's
    /// program name, as the real server derives it.
    fn update_manager(&self) -> String {
        if let Some(m) = self.param("fieldManager") {
            return m.to_string();
        }
        let ua = self.user_agent.split('/').next().unwrap_or_default();
        if ua.is_empty() {
            "unknown".into()
        } else {
            ua.to_string()
        }
    }

    fn warn(&self, text: String) {
        let mut w = self.warnings.lock().unwrap();
        if !w.contains(&text) {
            w.push(text);
        }
    }

    /// Pod Security admission for a write of the main resource, dry runs included: refuses or
    /// adds the warnings. The double's own controllers are not subject to it.
    fn admit(&self, st: &State, def: &ResourceDef, ns: Option<&str>, obj: &Value) -> Result<(), ApiError> {
        if self.internal {
            return Ok(());
        }
        for w in super::admission::pod_security(st, def, ns, obj)? {
            self.warn(w);
        }
        Ok(())
    }

    fn wants_partial_metadata(&self) -> bool {
        self.accept.contains("as=PartialObjectMetadata")
    }
}

/// What the HTTP layer should send back.
pub(crate) enum Reply {
    Json { code: u16, body: Value, content_type: &'static str },
    Text(String),
    Watch(Box<WatchSpec>),
}

fn json_reply(code: u16, body: Value) -> Reply {
    Reply::Json { code, body, content_type: "application/json" }
}

/// A watch to stream: which objects, and from where.
pub(crate) struct WatchSpec {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None` starts with synthetic ADDED events for the current state (resourceVersion
    /// unset or "0"); `Some(rv)` replays changes after `rv`.
    pub since: Option<u64>,
    pub timeout: Duration,
    pub partial_metadata: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
}

impl WatchSpec {
    fn selects(&self, key: &ObjKey, obj: &Value) -> bool {
        key.group == self.def.group
            && key.resource == self.def.plural
            && self.namespace.as_deref().is_none_or(|ns| key.namespace == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The event line for a stored change, or `None` when this watch does not see it.
    pub fn render(&self, event: &super::store::Event) -> Option<Bytes> {
        use super::store::EventType;
        let now_in = self.selects(&event.key, &event.object);
        let was_in = event.old.as_ref().is_some_and(|o| self.selects(&event.key, o));
        let kind = match (event.kind, was_in, now_in) {
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (_, _, true) => event.kind,
            _ => return None,
        };
        Some(self.line(kind.as_str(), &event.object))
    }

    /// A BOOKMARK event: an object of the watched kind carrying only the resourceVersion the
    /// watch has seen up to.
    pub fn bookmark(&self, rv: u64) -> Bytes {
        let (api_version, kind) = if self.partial_metadata {
            ("meta.k8s.io/v1".to_string(), "PartialObjectMetadata".to_string())
        } else {
            (self.def.api_version(), self.def.kind.clone())
        };
        let object = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"resourceVersion": rv.to_string()}});
        let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    pub fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let object = if self.partial_metadata { partial(obj) } else { present(&self.def, obj) };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

fn builtin_defs() -> &'static [ResourceDef] {
    static DEFS: OnceLock<Vec<ResourceDef>> = OnceLock::new();
    DEFS.get_or_init(discovery::builtins)
}

fn crd_def() -> &'static ResourceDef {
    builtin_defs().iter().find(|d| d.plural == "customresourcedefinitions").expect("CRDs are built in")
}

fn namespace_def() -> &'static ResourceDef {
    builtin_defs().iter().find(|d| d.plural == "namespaces").expect("namespaces are built in")
}

/// Everything currently servable: built-ins plus every established CRD's versions. Cached
/// until a CRD changes, since every request resolves its resource through this.
pub(crate) fn served(st: &State) -> Arc<Vec<ResourceDef>> {
    let epoch = st.store.crd_epoch();
    let mut cache = st.served_cache.lock().unwrap();
    if let Some((cached_epoch, defs)) = cache.as_ref() {
        if *cached_epoch == epoch {
            return defs.clone();
        }
    }
    let mut defs = builtin_defs().to_vec();
    for (_, crd) in st.store.list("apiextensions.k8s.io", "customresourcedefinitions", None) {
        if discovery::crd_established(crd) {
            defs.extend(discovery::from_crd(crd));
        }
    }
    let defs = Arc::new(defs);
    *cache = Some((epoch, defs.clone()));
    defs
}

/// The definition of a kind for the control API, whether or not its CRD is established.
pub(crate) fn def_for_kind(st: &State, api_version: &str, kind: &str) -> Option<ResourceDef> {
    let mut defs = builtin_defs().to_vec();
    for (_, crd) in st.store.list("apiextensions.k8s.io", "customresourcedefinitions", None) {
        defs.extend(discovery::from_crd(crd));
    }
    defs.into_iter().find(|d| d.api_version() == api_version && d.kind == kind)
}

fn present(def: &ResourceDef, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(def.api_version());
    o["kind"] = json!(def.kind);
    o
}

fn partial(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]})
}

fn object_reply(code: u16, def: &ResourceDef, obj: &Value, req: &ApiRequest) -> Reply {
    let body = if req.wants_partial_metadata() { partial(obj) } else { present(def, obj) };
    json_reply(code, body)
}

fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> ObjKey {
    ObjKey {
        group: def.group.clone(),
        resource: def.plural.clone(),
        namespace: ns.unwrap_or_default().to_string(),
        name: name.to_string(),
    }
}

fn schema_of(def: &ResourceDef) -> Schema<'_> {
    match &def.schema {
        Some(s) => Schema::Custom(s),
        None => Schema::Builtin { kind: &def.kind },
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str().filter(|s| !s.is_empty())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// Entry point: answer one request.
pub(crate) fn handle(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Reply, ApiError> {
    let mut st = shared.state.lock().unwrap();
    st.counting = !req.internal;
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let discovery_only = |reply: Option<Reply>| -> Result<Reply, ApiError> {
        if req.method != "GET" {
            return Err(ApiError::method_not_allowed(&req.method));
        }
        reply.ok_or_else(ApiError::no_route)
    };
    let aggregated = shared.options.aggregated_discovery && discovery::wants_aggregated(&req.accept);
    match segs.as_slice() {
        ["version"] => discovery_only(Some(json_reply(200, discovery::version()))),
        ["api"] if aggregated => discovery_only(Some(Reply::Json {
            code: 200,
            body: discovery::aggregated(&served(&st), true),
            content_type: discovery::AGGREGATED_CONTENT_TYPE,
        })),
        ["apis"] if aggregated => discovery_only(Some(Reply::Json {
            code: 200,
            body: discovery::aggregated(&served(&st), false),
            content_type: discovery::AGGREGATED_CONTENT_TYPE,
        })),
        ["api"] => discovery_only(Some(json_reply(200, discovery::core_versions(&shared.address)))),
        ["apis"] => discovery_only(Some(json_reply(200, discovery::group_list(&served(&st))))),
        ["api", v] => {
            discovery_only(discovery::resource_list(&served(&st), "", v).map(|d| json_reply(200, d)))
        }
        ["apis", g] => discovery_only(discovery::group(&served(&st), g).map(|d| json_reply(200, d))),
        ["apis", g, v] => {
            discovery_only(discovery::resource_list(&served(&st), g, v).map(|d| json_reply(200, d)))
        }
        ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"] => {
            super::authz::subject_access_review(&st, req)
        }
        ["api", v, rest @ ..] => resource_request(shared, &mut st, req, "", v, rest),
        ["apis", g, v, rest @ ..] => resource_request(shared, &mut st, req, g, v, rest),
        _ => Err(ApiError::no_route()),
    }
}

fn resource_request(
    shared: &Arc<Shared>,
    st: &mut State,
    req: &ApiRequest,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    // Same rule as the real RequestInfoFactory: `namespaces/<ns>/<resource>...` is namespaced,
    // except the namespace object's own `status` and `finalize` subresources.
    let (ns, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if !(tail.is_empty() && matches!(*resource, "status" | "finalize")) =>
        {
            (Some(*ns), &rest[2..])
        }
        _ => (None, rest),
    };
    let Some(plural) = rest.first() else {
        return Err(ApiError::no_route());
    };
    let def = served(st)
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == *plural)
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    if !def.namespaced && ns.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(w) = &def.deprecation {
        req.warn(w.clone());
    }
    if def.namespaced && ns.is_none() && (rest.len() > 1 || req.method != "GET") {
        return Err(ApiError::no_route());
    }
    let main = Part::Main { status_separate: def.status_subresource };
    match (req.method.as_str(), &rest[1..]) {
        ("GET", []) => {
            if matches!(req.param("watch"), Some("true" | "1")) {
                watch(&def, ns, req)
            } else {
                list(st, &def, ns, req)
            }
        }
        ("POST", []) => create(shared, st, &def, ns, req),
        ("DELETE", []) => delete_collection(shared, st, &def, ns, req),
        ("GET", [name]) => {
            let obj = st.store.get(&key(&def, ns, name)).ok_or_else(|| ApiError::not_found(&def, name))?;
            Ok(object_reply(200, &def, obj, req))
        }
        ("PUT", [name]) => update(shared, st, &def, ns, name, main, req),
        ("PATCH", [name]) => patch(shared, st, &def, ns, name, main, req),
        ("DELETE", [name]) => delete(shared, st, &def, ns, name, req),
        ("GET", [name, "status"]) if def.status_subresource => {
            let obj = st.store.get(&key(&def, ns, name)).ok_or_else(|| ApiError::not_found(&def, name))?;
            Ok(object_reply(200, &def, obj, req))
        }
        ("PUT", [name, "status"]) if def.status_subresource => {
            update(shared, st, &def, ns, name, Part::Status, req)
        }
        ("PATCH", [name, "status"]) if def.status_subresource => {
            patch(shared, st, &def, ns, name, Part::Status, req)
        }
        ("GET", [name, "log"]) if def.log_subresource => {
            if st.store.get(&key(&def, ns, name)).is_none() {
                return Err(ApiError::not_found(&def, name));
            }
            let log = st.pod_logs.get(&(ns.unwrap_or_default().to_string(), name.to_string()));
            Ok(Reply::Text(log.cloned().unwrap_or_default()))
        }
        (_, [_] | []) => Err(ApiError::method_not_allowed(&req.method)),
        (_, [_, "status"]) if def.status_subresource => Err(ApiError::method_not_allowed(&req.method)),
        _ => Err(ApiError::no_route()),
    }
}

fn selectors(def: &ResourceDef, req: &ApiRequest) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or_default(), &def.plural)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// Continue tokens look like the real server's: base64 of a small JSON document naming the
/// list's resourceVersion and the key to resume after.
fn continue_token(rv: u64, key: &ObjKey) -> String {
    use base64::Engine as _;
    let doc =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}\u{0}", key.namespace, key.name)});
    base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
}

fn parse_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine as _;
    let invalid = || ApiError::bad_request("continue key is not valid: malformed token");
    let raw = base64::engine::general_purpose::URL_SAFE.decode(token).map_err(|_| invalid())?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let start = doc["start"].as_str().ok_or_else(invalid)?.trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/').ok_or_else(invalid)?;
    Ok((ns.to_string(), name.to_string()))
}

/// A list, paged when the client sends `limit` (kube-runtime's watcher pages by 500).
/// Later pages read current state rather than the first page's snapshot; no client of the
/// double depends on snapshot pages.
fn list(st: &State, def: &ResourceDef, ns: Option<&str>, req: &ApiRequest) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(def, req)?;
    let partial_meta = req.wants_partial_metadata();
    let limit = req.param("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let after = req.param("continue").filter(|c| !c.is_empty()).map(parse_continue).transpose()?;
    let matching: Vec<(&ObjKey, &Value)> = st
        .store
        .list(&def.group, &def.plural, ns)
        .filter(|(k, _)| {
            after.as_ref().is_none_or(|(a_ns, a_name)| {
                (k.namespace.as_str(), k.name.as_str()) > (a_ns.as_str(), a_name.as_str())
            })
        })
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .collect();
    let rv = st.store.resource_version();
    let page = limit.map_or(matching.len(), |l| l.min(matching.len()));
    let items: Vec<Value> = matching[..page]
        .iter()
        .map(|(_, o)| if partial_meta { partial(o) } else { present(def, o) })
        .collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if page < matching.len() {
        metadata["continue"] = json!(continue_token(rv, matching[page - 1].0));
        metadata["remainingItemCount"] = json!(matching.len() - page);
    }
    let (api_version, kind) = if partial_meta {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        (def.api_version(), format!("{}List", def.kind))
    };
    Ok(json_reply(
        200,
        json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": items}),
    ))
}

fn watch(def: &ResourceDef, ns: Option<&str>, req: &ApiRequest) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(def, req)?;
    let since = match req.param("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    Ok(Reply::Watch(Box::new(WatchSpec {
        def: def.clone(),
        namespace: ns.map(str::to_string),
        labels,
        fields,
        since,
        timeout,
        partial_metadata: req.wants_partial_metadata(),
        bookmarks: req.param("allowWatchBookmarks") == Some("true"),
    })))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(v)
}

/// apiVersion and kind in a body must name the resource of the URL.
fn check_type(def: &ResourceDef, obj: &mut Value, required: bool) -> Result<(), ApiError> {
    match obj["apiVersion"].as_str() {
        Some(v) if v != def.api_version() => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                def.api_version()
            )))
        }
        None if required => return Err(ApiError::bad_request("apiVersion must be set")),
        _ => {}
    }
    match obj["kind"].as_str() {
        Some(k) if k != def.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )))
        }
        None if required => return Err(ApiError::bad_request("kind must be set")),
        _ => {}
    }
    obj["apiVersion"] = json!(def.api_version());
    obj["kind"] = json!(def.kind);
    Ok(())
}

fn check_name_and_namespace(obj: &Value, name: &str, ns: Option<&str>) -> Result<(), ApiError> {
    if let Some(n) = meta_str(obj, "name").filter(|n| *n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(body_ns), Some(url_ns)) = (meta_str(obj, "namespace"), ns) {
        if body_ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

/// Creating in a namespace needs the namespace to exist and not be terminating.
fn check_namespace_open(st: &State, def: &ResourceDef, ns: Option<&str>, name: &str) -> Result<(), ApiError> {
    let Some(ns) = ns else { return Ok(()) };
    let ns_obj =
        st.store.get(&key(namespace_def(), None, ns)).ok_or_else(|| ApiError::namespace_not_found(ns))?;
    if ns_obj["metadata"].get("deletionTimestamp").is_some() {
        return Err(ApiError::namespace_terminating(def, name, ns));
    }
    Ok(())
}

/// Server-owned metadata every new object gets.
fn init_new(st: &mut State, def: &ResourceDef, obj: &mut Value, ns: Option<&str>, name: &str) {
    let meta = &mut obj["metadata"];
    if let Some(m) = meta.as_object_mut() {
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            m.shift_remove(field);
        }
    }
    meta["name"] = json!(name);
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    meta["uid"] = json!(st.new_uid());
    meta["creationTimestamp"] = json!(now());
    meta["generation"] = json!(1);
    if def.status_subresource {
        match initial_status(&def.kind) {
            Some(s) => obj["status"] = s,
            None => {
                if let Some(o) = obj.as_object_mut() {
                    o.shift_remove("status");
                }
            }
        }
    }
    if def.plural == "customresourcedefinitions" {
        // Added by the apiextensions finalizer controller so instances are cleaned up first.
        obj["metadata"]["finalizers"] = json!(["customresourcecleanup.apiextensions.k8s.io"]);
    }
}

fn defaults(st: &mut State, def: &ResourceDef, obj: &mut Value) {
    if !def.is_custom() {
        apply_defaults(&def.kind, obj, || st.next_cluster_ip());
    }
}

/// Everything but the fields the server changes on every write.
fn content(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.shift_remove("resourceVersion");
        m.shift_remove("managedFields");
    }
    o
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut o = v.clone();
        if let Some(m) = o.as_object_mut() {
            m.shift_remove("metadata");
            m.shift_remove("status");
        }
        o
    };
    strip(old) != strip(new)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Verb {
    Create,
    Update,
    Patch,
    Delete,
}

/// Persists a write: no-op detection, generation, finalizer completion, dry-run, counters.
/// Returns the object as the client sees it.
#[allow(clippy::too_many_arguments)]
fn commit(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    key: ObjKey,
    old: Option<&Value>,
    mut new: Value,
    verb: Verb,
    dry_run: bool,
) -> Value {
    match old {
        Some(old) => {
            // The real server does not write an update that changes nothing: same
            // resourceVersion, same managedFields timestamps, no watch event.
            if content(old) == content(&new)
                && ssa::same_ownership(&ssa::parse_managed(old), &ssa::parse_managed(&new))
            {
                return old.clone();
            }
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] =
                json!(if spec_changed(old, &new) { generation + 1 } else { generation });
        }
        None => new["metadata"]["generation"] = json!(1),
    }
    let pending = !finalizers(&new).is_empty()
        || (def.plural == "namespaces"
            && new["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));
    let finished = new["metadata"].get("deletionTimestamp").is_some() && !pending;
    if dry_run {
        return new;
    }
    if st.counting {
        st.writes.count(verb);
    }
    let generation_changed = old.is_none_or(|o| o["metadata"]["generation"] != new["metadata"]["generation"]);
    let stored = st.store.put(key.clone(), new);
    if old.is_none() {
        super::trainjobs::on_create(shared, st, def, &stored);
        super::trial_pods::on_create(shared, &stored);
        super::proxy::on_create(shared, &stored);
    }
    if finished {
        remove_object(st, def, &key);
    } else if old.is_none() && def.plural == "customresourcedefinitions" {
        if let Some(delay) = shared.options.crd_establish_delay {
            schedule_establish(shared, key.name.clone(), delay);
        }
    } else if generation_changed
        && controllers::is_workload(&def.group, &def.kind)
        && !super::trial_pods::owns(shared, &stored)
    {
        if let Some(delay) = shared.options.workload_ready_delay {
            let path = controllers::status_path(&def.api_version(), &def.plural, &key.namespace, &key.name);
            let generation = stored["metadata"]["generation"].as_i64().unwrap_or(1);
            controllers::schedule_ready(shared, path, generation, delay);
        }
    }
    stored
}

/// Removes an object for good; a CRD takes its custom resources with it.
fn remove_object(st: &mut State, def: &ResourceDef, key: &ObjKey) {
    let Some(obj) = st.store.remove(key) else {
        return;
    };
    if def.plural == "customresourcedefinitions" {
        let group = obj["spec"]["group"].as_str().unwrap_or_default();
        let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or_default();
        let keys: Vec<ObjKey> = st.store.list(group, plural, None).map(|(k, _)| k.clone()).collect();
        for k in keys {
            st.store.remove(&k);
        }
    }
}

fn schedule_establish(shared: &Arc<Shared>, name: String, delay: Duration) {
    let weak = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(shared) = weak.upgrade() {
            let mut st = shared.state.lock().unwrap();
            establish(&mut st, &name);
        }
    });
}

/// Marks a CRD `NamesAccepted` and `Established`, as the apiextensions controllers do once
/// its names are checked; from then on its resources are in discovery and servable.
pub(crate) fn establish(st: &mut State, name: &str) -> bool {
    let key = key(crd_def(), None, name);
    let Some(crd) = st.store.get(&key) else {
        return false;
    };
    if discovery::crd_established(crd) {
        return true;
    }
    let mut crd = crd.clone();
    let ts = now();
    let storage = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .map(str::to_string);
    crd["status"] = json!({
        "acceptedNames": crd["spec"]["names"].clone(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": ts, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": ts, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": storage.into_iter().collect::<Vec<_>>(),
    });
    st.store.put(key, crd);
    true
}

fn create(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let mut obj = parse_json(&req.body)?;
    check_type(def, &mut obj, false)?;
    let name = match (meta_str(&obj, "name"), meta_str(&obj, "generateName")) {
        (Some(n), _) => n.to_string(),
        (None, Some(prefix)) => format!("{prefix}{}", st.random_suffix()),
        (None, None) => {
            return Err(ApiError::invalid(
                def,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ))
        }
    };
    check_name_and_namespace(&obj, &name, ns)?;
    check_namespace_open(st, def, ns, &name)?;
    let key = key(def, ns, &name);
    if st.store.get(&key).is_some() {
        return Err(ApiError::already_exists(def, &name));
    }
    init_new(st, def, &mut obj, ns, &name);
    defaults(st, def, &mut obj);
    let mut managers = Vec::new();
    let ts = now();
    let manager = req.update_manager();
    let part = Part::Main { status_separate: def.status_subresource };
    let ar =
        ApplyRequest { manager: &manager, api_version: &def.api_version(), part, force: false, now: &ts };
    ssa::record_update(None, &obj, &mut managers, &schema_of(def), &ar);
    obj["metadata"]["managedFields"] = ssa::render_managed(&managers);
    req.admit(st, def, ns, &obj)?;
    let stored = commit(shared, st, def, key, None, obj, Verb::Create, req.dry_run());
    Ok(object_reply(201, def, &stored, req))
}

/// Builds the object a PUT (or a patch, after patching) asks for, keeping what the client
/// cannot change through `part`.
fn updated_object(existing: &Value, mut body: Value, part: Part) -> Value {
    match part {
        Part::Status => {
            let mut new = existing.clone();
            new["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            if new["status"].is_null() {
                if let Some(o) = new.as_object_mut() {
                    o.shift_remove("status");
                }
            }
            new
        }
        Part::Main { status_separate } => {
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match existing["metadata"].get(field) {
                    Some(v) => body["metadata"][field] = v.clone(),
                    None => {
                        if let Some(m) = body["metadata"].as_object_mut() {
                            m.shift_remove(field);
                        }
                    }
                }
            }
            // Omitted or empty managedFields leave ownership as it is.
            if body["metadata"]["managedFields"].as_array().is_none_or(|a| a.is_empty()) {
                body["metadata"]["managedFields"] = existing["metadata"]["managedFields"].clone();
            }
            if status_separate {
                match existing.get("status") {
                    Some(s) => body["status"] = s.clone(),
                    None => {
                        if let Some(o) = body.as_object_mut() {
                            o.shift_remove("status");
                        }
                    }
                }
            }
            body
        }
    }
}

/// Shared tail of PUT and non-apply PATCH: preconditions, defaults, ownership, commit.
#[allow(clippy::too_many_arguments)]
fn write_update(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    key: ObjKey,
    existing: &Value,
    body: Value,
    part: Part,
    verb: Verb,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let name = key.name.clone();
    match meta_str(&body, "resourceVersion") {
        Some(rv) if Some(rv) != meta_str(existing, "resourceVersion") => {
            return Err(ApiError::stale_resource_version(def, &name));
        }
        None if matches!(verb, Verb::Update) && def.is_custom() => {
            return Err(ApiError::invalid(
                def,
                &name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
        _ => {}
    }
    let mut new = updated_object(existing, body, part);
    if matches!(part, Part::Main { .. }) {
        defaults(st, def, &mut new);
    }
    let mut managers = ssa::parse_managed(&new);
    let ts = now();
    let manager = req.update_manager();
    let ar =
        ApplyRequest { manager: &manager, api_version: &def.api_version(), part, force: false, now: &ts };
    ssa::record_update(Some(existing), &new, &mut managers, &schema_of(def), &ar);
    new["metadata"]["managedFields"] = ssa::render_managed(&managers);
    if matches!(part, Part::Main { .. }) {
        let ns = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
        req.admit(st, def, ns, &new)?;
    }
    let stored = commit(shared, st, def, key, Some(existing), new, verb, req.dry_run());
    Ok(object_reply(200, def, &stored, req))
}

fn update(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    part: Part,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let mut body = parse_json(&req.body)?;
    check_type(def, &mut body, false)?;
    check_name_and_namespace(&body, name, ns)?;
    let key = key(def, ns, name);
    let existing = st.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(def, name))?;
    write_update(shared, st, def, key, &existing, body, part, Verb::Update, req)
}

fn patch(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    part: Part,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let content_type = req.content_type.split(';').next().unwrap_or_default().trim();
    if content_type == "application/apply-patch+yaml" {
        return apply(shared, st, def, ns, name, part, req);
    }
    let key = key(def, ns, name);
    let existing = st.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(def, name))?;
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut patched = existing.clone();
    match content_type {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            merge_patch(&mut patched, &patch)
        }
        "application/json-patch+json" => {
            json_patch(&mut patched, &patch).map_err(|e| ApiError::invalid(def, name, "", &e))?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    check_type(def, &mut patched, false)?;
    check_name_and_namespace(&patched, name, ns)?;
    write_update(shared, st, def, key, &existing, patched, part, Verb::Patch, req)
}

fn apply(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    part: Part,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let Some(manager) = req.param("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            def,
            name,
            "fieldManager",
            "Required value: is required for apply patch",
        ));
    };
    let force = matches!(req.param("force"), Some("true" | "1"));
    // kube-rs sends JSON (valid YAML); parsing it as JSON first keeps megabyte CRDs fast.
    let mut applied: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !applied.is_object() {
        return Err(ApiError::bad_request("the applied configuration must be an object"));
    }
    check_type(def, &mut applied, true)?;
    check_name_and_namespace(&applied, name, ns)?;
    let key = key(def, ns, name);
    let existing = st.store.get(&key).cloned();
    if let (Some(rv), Some(existing)) = (meta_str(&applied, "resourceVersion"), &existing) {
        if Some(rv) != meta_str(existing, "resourceVersion") {
            return Err(ApiError::stale_resource_version(def, name));
        }
    }
    // Server-owned metadata in an applied configuration is ignored, and so is whatever
    // belongs to the other half of a kind with a status subresource.
    if let Some(m) = applied["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            m.shift_remove(field);
        }
    }
    applied["metadata"]["name"] = json!(name);
    if let Some(ns) = ns {
        applied["metadata"]["namespace"] = json!(ns);
    }
    match part {
        Part::Main { status_separate: true } => {
            if let Some(o) = applied.as_object_mut() {
                o.shift_remove("status");
            }
        }
        Part::Status => {
            applied = json!({
                "apiVersion": applied["apiVersion"],
                "kind": applied["kind"],
                "metadata": {"name": name},
                "status": applied.get("status").cloned().unwrap_or(json!({})),
            });
        }
        Part::Main { .. } => {}
    }

    let live = match &existing {
        Some(e) => e.clone(),
        None if part == Part::Status => return Err(ApiError::not_found(def, name)),
        None => {
            check_namespace_open(st, def, ns, name)?;
            let mut skeleton = json!({"apiVersion": def.api_version(), "kind": def.kind, "metadata": {}});
            init_new(st, def, &mut skeleton, ns, name);
            skeleton
        }
    };
    let ts = now();
    let ar = ApplyRequest { manager, api_version: &def.api_version(), part, force, now: &ts };
    let (mut merged, managers) = ssa::apply(&live, &applied, ssa::parse_managed(&live), &schema_of(def), &ar)
        .map_err(|conflicts| {
            ApiError::apply_conflict(
                ssa::conflict_message(&conflicts),
                conflicts.iter().map(|c| c.cause()).collect(),
            )
        })?;
    if part != Part::Status {
        defaults(st, def, &mut merged);
    }
    merged["metadata"]["managedFields"] = ssa::render_managed(&managers);
    if part != Part::Status {
        req.admit(st, def, ns, &merged)?;
    }
    let (verb, code) = if existing.is_some() { (Verb::Patch, 200) } else { (Verb::Patch, 201) };
    let stored = commit(shared, st, def, key, existing.as_ref(), merged, verb, req.dry_run());
    Ok(object_reply(code, def, &stored, req))
}

fn delete_options(req: &ApiRequest) -> Result<Value, ApiError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))
}

fn delete(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = delete_options(req)?;
    let dry_run = req.dry_run() || opts["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All"));
    let key = key(def, ns, name);
    let existing = st.store.get(&key).cloned().ok_or_else(|| ApiError::not_found(def, name))?;
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        if Some(uid) != meta_str(&existing, "uid") {
            return Err(ApiError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&existing, "uid").unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        if Some(rv) != meta_str(&existing, "resourceVersion") {
            return Err(ApiError::conflict(def, name, &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&existing, "resourceVersion").unwrap_or_default()
            )));
        }
    }
    Ok(delete_one(shared, st, def, key, existing, dry_run, req))
}

fn delete_one(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    key: ObjKey,
    existing: Value,
    dry_run: bool,
    req: &ApiRequest,
) -> Reply {
    let is_namespace = def.plural == "namespaces";
    let deferred = is_namespace || !finalizers(&existing).is_empty();
    if !deferred {
        let uid = meta_str(&existing, "uid").unwrap_or_default().to_string();
        if !dry_run {
            if st.counting {
                st.writes.count(Verb::Delete);
            }
            remove_object(st, def, &key);
        }
        return json_reply(200, status::deleted(def, &key.name, &uid));
    }
    if existing["metadata"].get("deletionTimestamp").is_some() {
        return object_reply(200, def, &existing, req);
    }
    let mut new = existing.clone();
    new["metadata"]["deletionTimestamp"] = json!(now());
    new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if is_namespace {
        new["status"]["phase"] = json!("Terminating");
    }
    let stored = commit(shared, st, def, key.clone(), Some(&existing), new, Verb::Delete, dry_run);
    if !dry_run && (is_namespace || def.plural == "customresourcedefinitions") {
        schedule_cleanup(shared, def.clone(), key.name);
    }
    object_reply(200, def, &stored, req)
}

fn delete_collection(
    shared: &Arc<Shared>,
    st: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(def, req)?;
    let dry_run = req.dry_run();
    let targets: Vec<(ObjKey, Value)> = st
        .store
        .list(&def.group, &def.plural, ns)
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect();
    let mut items = Vec::new();
    for (k, o) in targets {
        items.push(present(def, &o));
        delete_one(shared, st, def, k, o, dry_run, req);
    }
    Ok(json_reply(
        200,
        json!({
            "apiVersion": def.api_version(),
            "kind": format!("{}List", def.kind),
            "metadata": {"resourceVersion": st.store.resource_version().to_string()},
            "items": items,
        }),
    ))
}

/// The namespace controller and the CRD finalizer, reduced to their effect: delete what the
/// namespace (or CRD) contains, wait for finalizers on that content to be removed, then
/// drop the owner's own finalizer so it disappears.
fn schedule_cleanup(shared: &Arc<Shared>, def: ResourceDef, name: String) {
    let weak = Arc::downgrade(shared);
    let delay = shared.options.cleanup_delay;
    shared.runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        loop {
            let Some(shared) = weak.upgrade() else { return };
            {
                let mut st = shared.state.lock().unwrap();
                if cleanup_step(&mut st, &def, &name) {
                    return;
                }
            }
            drop(shared);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// One pass of cleanup; true when there is nothing left to do.
fn cleanup_step(st: &mut State, def: &ResourceDef, name: &str) -> bool {
    let owner_key = key(def, None, name);
    let Some(owner) = st.store.get(&owner_key).cloned() else {
        return true;
    };
    if owner["metadata"].get("deletionTimestamp").is_none() {
        return true;
    }
    let content: Vec<ObjKey> = if def.plural == "namespaces" {
        st.store.keys_in_namespace(name)
    } else {
        let group = owner["spec"]["group"].as_str().unwrap_or_default();
        let plural = owner["spec"]["names"]["plural"].as_str().unwrap_or_default();
        st.store.list(group, plural, None).map(|(k, _)| k.clone()).collect()
    };
    let mut remaining = 0;
    for k in content {
        let Some(obj) = st.store.get(&k).cloned() else {
            continue;
        };
        if finalizers(&obj).is_empty() {
            st.store.remove(&k);
            continue;
        }
        remaining += 1;
        if obj["metadata"].get("deletionTimestamp").is_none() {
            let mut o = obj;
            o["metadata"]["deletionTimestamp"] = json!(now());
            o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            st.store.put(k, o);
        }
    }
    if remaining > 0 {
        return false;
    }
    let mut owner = owner;
    if def.plural == "namespaces" {
        owner["spec"]["finalizers"] = json!([]);
    } else {
        let kept: Vec<String> = finalizers(&owner)
            .into_iter()
            .filter(|f| f != "customresourcecleanup.apiextensions.k8s.io")
            .collect();
        owner["metadata"]["finalizers"] = json!(kept);
    }
    let done = finalizers(&owner).is_empty();
    st.store.put(owner_key.clone(), owner);
    if done {
        st.store.remove(&owner_key);
    }
    true
}
