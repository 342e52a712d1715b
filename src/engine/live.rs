//! Live state by LIST: one paginated LIST per resource type, selecting the ApplySet's members
//! by their `part-of` label, instead of a GET per object. Objects the LIST does not return
//! (not labelled yet: first adoption, an older trainstack, a fresh cluster) are read by GET
//! when planned.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::engine::applyset;
use crate::engine::cluster::{self, ClusterError, Resolved};
use crate::engine::resolve::{in_order, is_parent, lookup, with_type, Desired, Engine, Seen};

/// One resource type's listed members, by namespace and name.
type Members = HashMap<(String, String), Value>;

impl Engine {
    /// Fills in the live state of every resolved member the ApplySet's LISTs return. A
    /// namespaced type is listed cluster-wide when the credentials allow it, else in each of
    /// the ApplySet's namespaces; either way only members in those namespaces count, since
    /// KEP-3659 scopes the set to them. A type that cannot be listed at all leaves its
    /// objects to the GET of their plan.
    pub(super) async fn list_live(&self, desired: &mut [Desired], namespaces: &BTreeSet<String>) {
        let mut types: BTreeMap<String, Resolved> = BTreeMap::new();
        for d in desired.iter().filter(|d| !is_parent(d)) {
            if let Some(r) = &d.resolved {
                types.entry(type_key(r)).or_insert_with(|| r.clone());
            }
        }
        let listed: Vec<(String, Option<Members>)> = in_order(
            self.opts.concurrency,
            stream::iter(types).map(|(key, r)| async move {
                let members = self.list_type(&r, namespaces).await;
                (key, members)
            }),
        )
        .await;
        let mut listed: HashMap<String, Members> =
            listed.into_iter().filter_map(|(k, m)| m.map(|m| (k, m))).collect();
        for d in desired.iter_mut().filter(|d| !is_parent(d)) {
            let Some(r) = &d.resolved else { continue };
            let Some(members) = listed.get_mut(&type_key(r)) else { continue };
            let key = (d.namespace().unwrap_or_default().to_string(), d.name().to_string());
            if let Some(live) = members.remove(&key) {
                d.seen = Seen::Live(live);
            }
        }
        // Prune deletes only members the set no longer declares: the ones no desired object
        // took above are all it needs from these lists.
        if let Ok(mut cache) = self.listed.lock() {
            cache.extend(listed.into_iter().map(|(k, m)| (k, m.into_values().collect())));
        }
    }

    /// The members of one type, or `None` when it cannot be listed (each object is then read
    /// by GET, which reports its own error).
    async fn list_type(&self, r: &Resolved, namespaces: &BTreeSet<String>) -> Option<Members> {
        let selector = format!("{}={}", applyset::PART_OF, self.parent.id());
        let kind = &r.resource.kind;
        let api = cluster::api_for(&self.client, r, None);
        let items = match cluster::list(&api, &selector, &format!("list {kind}")).await {
            Ok(items) => items,
            // Namespace-scoped credentials: list where the set lives instead.
            Err(ClusterError::Api { code: 403, .. }) if r.namespaced => {
                let mut items = Vec::new();
                for ns in namespaces {
                    let api = cluster::api_for(&self.client, r, Some(ns));
                    items.extend(cluster::list(&api, &selector, &format!("list {kind} in {ns}")).await.ok()?);
                }
                items
            }
            Err(_) => return None,
        };
        let members = items
            .into_iter()
            .map(|o| with_type(o, r))
            .filter_map(|o| {
                let ns =
                    lookup(&o, "/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
                if r.namespaced && !namespaces.contains(&ns) {
                    return None;
                }
                let name = lookup(&o, "/metadata/name").and_then(Value::as_str)?.to_string();
                Some(((ns, name), o))
            })
            .collect();
        Some(members)
    }

    /// The members a LIST of this run returned for a type in `namespace` (`None` for
    /// cluster-scoped) that no desired object matched, or `None` when the type was not
    /// listed: prune reuses them instead of listing again.
    pub(super) fn listed(&self, r: &Resolved, namespace: Option<&str>) -> Option<Vec<Value>> {
        let cache = self.listed.lock().ok()?;
        let all = cache.get(&type_key(r))?;
        Some(
            all.iter()
                .filter(|o| lookup(o, "/metadata/namespace").and_then(Value::as_str) == namespace)
                .cloned()
                .collect(),
        )
    }
}

/// The resource's URL path, which names a type uniquely.
fn type_key(r: &Resolved) -> String {
    format!("{}/{}", r.resource.api_version, r.resource.plural)
}
