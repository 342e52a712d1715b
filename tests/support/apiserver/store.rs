//! Object storage: every object keyed by group, resource, namespace and name, a global
//! resourceVersion counter, and the event history that watches replay and follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Where an object lives. Objects are stored once per group/resource regardless of the API
/// version they were written through, as etcd does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjKey {
    pub group: String,
    pub resource: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it. `old` lets a filtered watch turn a change that moves an
/// object out of its selector into DELETED, as the real watch cache does.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: ObjKey,
    pub object: Value,
    pub old: Option<Value>,
}

/// Watches that fall this far behind are closed (clients re-list), like a slow watcher on a
/// real server.
const EVENT_BUFFER: usize = 1 << 16;

pub(crate) struct Store {
    objects: BTreeMap<ObjKey, Value>,
    rv: u64,
    history: Vec<Arc<Event>>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Bumped on every CRD write, so what is servable can be cached between them.
    crd_epoch: u64,
    /// History at or below this resourceVersion is gone, as after an etcd compaction: a
    /// watch from an older one gets `410 Gone`.
    compacted: u64,
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        // A fresh real cluster is already far past resourceVersion 1; starting higher keeps
        // clients from relying on small numbers.
        Self { objects: BTreeMap::new(), rv: 1000, history: Vec::new(), tx, crd_epoch: 0, compacted: 0 }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or all of them, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        let start = ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group && k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Every object in a namespace, whatever its resource.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<ObjKey> {
        self.objects.keys().filter(|k| k.namespace == namespace).cloned().collect()
    }

    /// Stores `obj` under a new resourceVersion and announces it.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let old = self.objects.insert(key.clone(), obj.clone());
        let kind = if old.is_some() { EventType::Modified } else { EventType::Added };
        self.emit(kind, key, obj.clone(), old);
        obj
    }

    /// Removes an object; the DELETED event carries it at a new resourceVersion.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(EventType::Deleted, key.clone(), obj.clone(), None);
        Some(obj)
    }

    pub fn crd_epoch(&self) -> u64 {
        self.crd_epoch
    }

    fn emit(&mut self, kind: EventType, key: ObjKey, object: Value, old: Option<Value>) {
        if key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions" {
            self.crd_epoch += 1;
        }
        let event = Arc::new(Event { rv: self.rv, kind, key, object, old });
        self.history.push(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// Events after `rv` plus a receiver for everything later, taken atomically so a watch
    /// neither misses nor repeats an event; `Err(oldest)` when the history after `rv` has been
    /// compacted away (`oldest` is the oldest resourceVersion still served).
    #[allow(clippy::type_complexity)]
    pub fn subscribe_since(
        &self,
        rv: u64,
    ) -> Result<(Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>), u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok((self.history[start..].to_vec(), self.tx.subscribe()))
    }

    /// Forgets the history up to now, as etcd's periodic compaction does.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
