//! Waiting for readiness during `apply`, and the readiness lines `status` and smoke show, with
//! the events that say why an object is not ready.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::engine::cluster::{self, Catalog};
use crate::engine::ready::{readiness, Readiness};
use crate::engine::report::RunError;
use crate::engine::resolve::{in_order, Desired, Engine};
use crate::manifest::{Manifest, Phase};

impl Engine {
    /// Polls objects until ready, failed or timed out; returns the ones not ready with reasons.
    pub(super) async fn wait_ready(&self, targets: &[&Desired], phase: Phase) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + self.opts.timeout;
        self.progress.phase(&format!("wait {phase}"), targets.len());
        let results: Vec<Option<String>> = in_order(
            self.opts.concurrency,
            stream::iter(targets.iter().copied()).map(|d| async move {
                let r = self.wait_one(d, deadline).await;
                self.progress.inc(&d.id());
                r
            }),
        )
        .await;
        self.progress.finish();
        results.into_iter().flatten().collect()
    }

    async fn wait_one(&self, d: &Desired, deadline: tokio::time::Instant) -> Option<String> {
        let r = d.resolved.as_ref()?;
        let api = cluster::api_for(&self.client, r, d.namespace());
        let mut last;
        loop {
            match cluster::get(&api, d.name(), &d.id()).await {
                Ok(Some(live)) => match readiness(&live, self.facts, self.opts.wait_complete) {
                    Readiness::Ready => return None,
                    Readiness::Failed(why) => {
                        return Some(format!("{}: {why}{}", d.id(), self.events(d).await))
                    }
                    Readiness::Pending(why) => last = why,
                },
                Ok(None) => last = "not found".into(),
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                return Some(format!(
                    "{}: not ready after {:?}: {last}{}",
                    d.id(),
                    self.opts.timeout,
                    self.events(d).await
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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
