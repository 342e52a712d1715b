//! Waiting for readiness during `apply`, by watch, and the readiness lines `status` and smoke
//! show, with the events that say why an object is not ready.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::Value;

use crate::engine::applyset;
use crate::engine::cluster::{self, Catalog};
use crate::engine::ready::{readiness, Readiness};
use crate::engine::report::RunError;
use crate::engine::resolve::{self, in_order, Desired, Engine};
use crate::manifest::{Manifest, Phase};

/// One watch's scope: apiVersion, resource plural and namespace (none: cluster-scoped).
type WatchedType<'a> = (String, String, Option<&'a str>);

impl Engine {
    /// Watches objects until ready, failed or timed out; returns the ones not ready with
    /// reasons, in `targets` order.
    pub(super) async fn wait_ready(&self, targets: &[&Desired], phase: Phase) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + self.opts.timeout;
        self.progress.phase(&format!("wait {phase}"), targets.len());
        let mut groups: BTreeMap<WatchedType<'_>, Vec<(usize, &Desired)>> = BTreeMap::new();
        for (i, d) in targets.iter().enumerate() {
            if let Some(r) = &d.resolved {
                let ty = (r.resource.api_version.clone(), r.resource.plural.clone(), d.namespace());
                groups.entry(ty).or_default().push((i, d));
            } else {
                self.progress.inc(&d.id());
            }
        }
        // Every group watches at once: a watch is long-running, exempt from the in-flight
        // limit as on the server, and there are only as many as kinds times namespaces.
        let outcomes =
            futures::future::join_all(groups.into_values().map(|g| self.wait_group(g, deadline))).await;
        self.progress.finish();
        let mut lines: Vec<(usize, String)> = outcomes.into_iter().flatten().collect();
        lines.sort_by_key(|(i, _)| *i);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// Waits for the objects of one resource type in one namespace through one watch: by name
    /// for a single object, else by the ApplySet's membership label, so a namespace full of
    /// other objects costs nothing. Returns the not-ready lines with their target index.
    async fn wait_group(
        &self,
        group: Vec<(usize, &Desired)>,
        deadline: tokio::time::Instant,
    ) -> Vec<(usize, String)> {
        let first = group[0].1;
        let Some(r) = first.resolved.as_ref() else { return Vec::new() };
        let api = cluster::api_for(&self.client, r, first.namespace());
        let config = match group.as_slice() {
            [(_, d)] => watcher::Config::default().fields(&format!("metadata.name={}", d.name())),
            _ => watcher::Config::default().labels(&format!("{}={}", applyset::PART_OF, self.parent.id())),
        };
        let mut waiting: BTreeMap<&str, Waiting> = group
            .iter()
            .map(|&(index, d)| {
                (d.name(), Waiting { index, desired: d, last: "not found".into(), seen: false })
            })
            .collect();
        let mut failed = Vec::new();
        // Whatever is still waiting when the deadline passes is not ready.
        let _ = tokio::time::timeout_at(deadline, async {
            let mut events = std::pin::pin!(watcher(api, config).default_backoff());
            let mut listed = BTreeSet::new();
            while !waiting.is_empty() {
                let live = match events.next().await {
                    Some(Ok(watcher::Event::Init)) => {
                        listed.clear();
                        continue;
                    }
                    Some(Ok(watcher::Event::InitApply(o))) => {
                        listed.insert(o.metadata.name.clone().unwrap_or_default());
                        o
                    }
                    Some(Ok(watcher::Event::Apply(o))) => o,
                    Some(Ok(watcher::Event::InitDone)) => {
                        // A relist that no longer has an object means it is gone.
                        for w in waiting.values_mut().filter(|w| !listed.contains(w.desired.name())) {
                            w.last = "not found".into();
                        }
                        continue;
                    }
                    Some(Ok(watcher::Event::Delete(o))) => {
                        if let Some(w) = waiting.get_mut(o.metadata.name.as_deref().unwrap_or_default()) {
                            w.last = "not found".into();
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        // The watcher relists or resumes by itself; until an object has been
                        // seen, the error is the best account of why it is not ready.
                        for w in waiting.values_mut().filter(|w| !w.seen) {
                            w.last = e.to_string();
                        }
                        continue;
                    }
                    None => break,
                };
                let name = live.metadata.name.clone().unwrap_or_default();
                let Some(w) = waiting.get_mut(name.as_str()) else { continue };
                w.seen = true;
                let live = resolve::with_type(serde_json::to_value(&live).unwrap_or_default(), r);
                match readiness(&live, self.facts, self.opts.wait_complete) {
                    Readiness::Ready => {}
                    Readiness::Failed(why) => failed.push((w.index, w.desired, why)),
                    Readiness::Pending(why) => {
                        w.last = why;
                        continue;
                    }
                }
                let done = waiting.remove(name.as_str()).expect("waiting on it");
                self.progress.inc(&done.desired.id());
            }
        })
        .await;
        let mut lines = Vec::new();
        for (index, d, why) in failed {
            lines.push((index, format!("{}: {why}{}", d.id(), self.events(d).await)));
        }
        for w in waiting.into_values() {
            let d = w.desired;
            let events = self.events(d).await;
            lines.push((
                w.index,
                format!("{}: not ready after {:?}: {}{events}", d.id(), self.opts.timeout, w.last),
            ));
            self.progress.inc(&d.id());
        }
        lines
    }

    /// Recent events of an object, as indented lines (empty when none or unavailable).
    async fn events(&self, d: &Desired) -> String {
        let Some(ns) = d.namespace() else { return String::new() };
        let api: kube::Api<k8s_openapi::api::core::v1::Event> =
            kube::Api::namespaced(self.client.clone(), ns);
        let lp = kube::api::ListParams::default().fields(&format!("involvedObject.name={}", d.name()));
        let Ok(list) = api.list(&lp).await else { return String::new() };
        let mut lines: Vec<String> = list
            .items
            .iter()
            .rev()
            .take(5)
            .map(|e| {
                format!(
                    "\n    event {}: {}",
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default()
                )
            })
            .collect();
        lines.reverse();
        lines.concat()
    }

    /// Why a workload's controller cannot create its pods (quota exceeded, Pod Security
    /// refusal): `; FailedCreate: ...` from the newest `FailedCreate` Warning event about it,
    /// empty when there is none. A Deployment's pods are created by its ReplicaSet, whose
    /// failure the Deployment reports as its `ReplicaFailure` condition (see `ready.rs`).
    async fn failed_create(&self, kind: &str, namespace: Option<&str>, name: &str) -> String {
        let (Some(ns), true) =
            (namespace, matches!(kind, "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet"))
        else {
            return String::new();
        };
        let api: kube::Api<k8s_openapi::api::core::v1::Event> =
            kube::Api::namespaced(self.client.clone(), ns);
        let lp = kube::api::ListParams::default().fields(&format!(
            "involvedObject.kind={kind},involvedObject.name={name},reason=FailedCreate,type=Warning"
        ));
        let Ok(list) = api.list(&lp).await else { return String::new() };
        let when = |e: &k8s_openapi::api::core::v1::Event| {
            let last = e.last_timestamp.as_ref().map(|t| t.0);
            let event = e.event_time.as_ref().map(|t| t.0);
            last.or(event)
        };
        list.items
            .iter()
            .max_by_key(|e| when(e))
            .and_then(|e| e.message.as_deref())
            .map(|m| format!("; FailedCreate: {m}"))
            .unwrap_or_default()
    }

    /// Readiness of each object of the set, in order: `ready`, `missing`, `pending: ...`,
    /// `failed: ...` (the same rules the waits use).
    pub async fn readiness(&self, set: &[Manifest]) -> Result<Vec<String>, RunError> {
        let catalog = Catalog::discover(&self.client).await?;
        let out = in_order(
            self.opts.concurrency,
            stream::iter(set.iter()).map(|m| {
                let catalog = &catalog;
                async move {
                    let Some(r) = catalog.resolve(m.api_version(), m.kind()) else {
                        return "kind not served".to_string();
                    };
                    let api = cluster::api_for(&self.client, &r, m.namespace());
                    match cluster::get(&api, m.name(), &m.id()).await {
                        Ok(live) => self.ready_line(m.kind(), m.namespace(), m.name(), live.as_ref()).await,
                        Err(e) => format!("error: {e}"),
                    }
                }
            }),
        )
        .await;
        Ok(out)
    }

    /// The readiness line of an object as a GET found it (`None`: missing).
    pub(super) async fn ready_line(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        live: Option<&Value>,
    ) -> String {
        let Some(live) = live else { return "missing".to_string() };
        match readiness(live, self.facts, false) {
            // A Job counts as ready without completing, but not one whose controller has not
            // managed to create a single pod.
            Readiness::Ready if never_started(live) => {
                match self.failed_create(kind, namespace, name).await {
                    why if why.is_empty() => "ready".to_string(),
                    why => format!("pending: no pod created{why}"),
                }
            }
            Readiness::Ready => "ready".to_string(),
            Readiness::Pending(w) => {
                format!("pending: {w}{}", self.failed_create(kind, namespace, name).await)
            }
            Readiness::Failed(w) => format!("failed: {w}"),
        }
    }
}

/// An object a watch is waiting for.
struct Waiting<'a> {
    /// Its place among the targets, for the order of the report.
    index: usize,
    desired: &'a Desired,
    /// Why it is not ready yet, as last seen.
    last: String,
    /// The watch has shown it at least once.
    seen: bool,
}

/// A Job with no pod active, ready, succeeded or failed and no finishing condition.
fn never_started(live: &Value) -> bool {
    let count = |field: &str| live.pointer(&format!("/status/{field}")).and_then(Value::as_i64).unwrap_or(0);
    let finished = live.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True")
    });
    live["kind"] == "Job"
        && !finished
        && ["active", "ready", "succeeded", "failed"].iter().all(|f| count(f) == 0)
}
