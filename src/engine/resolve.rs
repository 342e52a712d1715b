//! The engine's state for a run and the set it resolves once: discovery, the ApplySet parent
//! and every object's resource, handed from `check` to `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{Stream, StreamExt};
use kube::Client;
use serde_json::Value;

use crate::engine::applyset::{self, Parent};
use crate::engine::cluster::{self, Catalog, Resolved};
use crate::engine::plan::{Action, ObjectChange};
use crate::engine::ready::ClusterFacts;
use crate::engine::report::{Report, RunError, Summary};
use crate::manifest::{Manifest, Phase};
use crate::progress::Progress;
use crate::tally::Tally;
use crate::validate::CrdSchemas;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Objects diffed/applied at once within a phase.
    pub concurrency: usize,
    /// Take ownership of fields other managers own.
    pub force_conflicts: bool,
    /// Plan only (server-side dry-run); write nothing.
    pub dry_run: bool,
    /// Delete objects this environment applied before and no longer declares.
    pub prune: bool,
    /// Allow pruning Namespaces.
    pub prune_namespaces: bool,
    /// Allow pruning CustomResourceDefinitions.
    pub prune_crds: bool,
    /// Wait for readiness after operator and workload phases.
    pub wait: bool,
    /// Wait also for Jobs and TrainJobs to complete.
    pub wait_complete: bool,
    /// Bound on each wait.
    pub timeout: Duration,
    /// Show Secret values in diffs.
    pub show_secrets: bool,
    /// Any API server warning fails the run; apply dry-runs everything first and writes
    /// nothing when one warns.
    pub warnings_as_errors: bool,
    /// Plan every object by the server's dry-run, never by the local no-op proof.
    pub server_dry_run_all: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: crate::engine::throttle::DEFAULT_CONCURRENCY,
            force_conflicts: false,
            dry_run: false,
            prune: false,
            prune_namespaces: false,
            prune_crds: false,
            wait: true,
            wait_complete: false,
            timeout: Duration::from_secs(300),
            show_secrets: false,
            warnings_as_errors: false,
            server_dry_run_all: false,
        }
    }
}

/// A cluster and the environment's inventory in it.
pub struct Engine {
    pub(super) client: Client,
    pub(super) parent: Parent,
    pub(super) facts: ClusterFacts,
    pub(super) opts: Options,
    pub(super) progress: Arc<dyn Progress>,
    /// What this run has written so far (`+ Kind ns/name (create)`, ...), for the summary of an
    /// interrupted run.
    pub(super) written: std::sync::Mutex<Vec<String>>,
    /// Each listed type's members (by resource path) that no desired object matched, for
    /// prune to reuse.
    pub(super) listed: std::sync::Mutex<HashMap<String, Vec<Value>>>,
    /// Schemas of the CRDs in the set, for the no-op proof's list types.
    pub(super) crds: std::sync::OnceLock<CrdSchemas>,
    /// How objects were planned: by the proof or by a dry-run, and why.
    pub(super) planned: std::sync::Mutex<Planned>,
}

/// How this run planned its objects.
#[derive(Debug, Default)]
pub(super) struct Planned {
    pub(super) locally: usize,
    pub(super) dry_runs: usize,
    pub(super) reasons: BTreeMap<&'static str, usize>,
}

/// The set as [`Engine::check`] resolved it (labelled members plus the parent, each with its
/// resource, and the discovery they were resolved against), for [`Engine::apply_checked`]: a
/// run discovers the cluster and reads the parent once.
pub struct Checked {
    pub(super) desired: Vec<Desired>,
    pub(super) catalog: Catalog,
}

impl Engine {
    /// An engine for one environment, reporting its phases to `progress`.
    pub fn new(
        client: Client,
        env_name: &str,
        platform_namespace: &str,
        facts: ClusterFacts,
        opts: Options,
        progress: Arc<dyn Progress>,
    ) -> Self {
        Engine {
            client,
            parent: Parent::for_env(env_name, platform_namespace),
            facts,
            progress,
            opts,
            written: Default::default(),
            listed: Default::default(),
            crds: Default::default(),
            planned: Default::default(),
        }
    }

    /// [`Engine::check`] without refusing unserved kinds: they come back as lines (and their
    /// objects unresolved), for `delete`, where a kind the cluster does not serve (its CRD gone
    /// already) simply has no objects left.
    pub(super) async fn resolve(
        &self,
        set: &[Manifest],
    ) -> Result<(Vec<Desired>, Catalog, Vec<String>), RunError> {
        // A run starts from nothing an earlier run on this engine read or counted: its lists
        // may be stale, and a report's counts are its own run's.
        if let (Ok(mut listed), Ok(mut planned)) = (self.listed.lock(), self.planned.lock()) {
            listed.clear();
            *planned = Default::default();
        }
        let catalog = Catalog::discover(&self.client).await?;
        let id = self.parent.id();
        let mut desired: Vec<Desired> = set
            .iter()
            .map(|m| {
                let mut obj = m.obj.clone();
                applyset::label_member(&mut obj, &id);
                Desired { obj, phase: m.phase(), resolved: None, seen: Seen::Unknown, verdict: None }
            })
            .collect();
        // The parent keeps listing what older runs applied until prune has removed it, so an
        // interrupted run still knows where old members live.
        let (mut gks, mut nss) = self.inventory(desired.iter());
        let mut parent_seen = Seen::Unknown;
        if let Some(secrets) = catalog.resolve("v1", "Secret") {
            let api = cluster::api_for(&self.client, &secrets, Some(&self.parent.namespace));
            match cluster::get(&api, &self.parent.name, "ApplySet parent").await? {
                Some(live) => {
                    let (old_gks, old_nss) = applyset::read_parent(&live);
                    gks.extend(old_gks);
                    nss.extend(old_nss);
                    parent_seen = Seen::Live(with_type(live, &secrets));
                }
                None => parent_seen = Seen::Absent,
            }
        }
        desired.push(Desired {
            obj: self.parent.object(&gks, &nss),
            phase: Phase::Config,
            resolved: None,
            seen: parent_seen,
            verdict: None,
        });

        let crd_kinds: BTreeSet<(String, String)> = set
            .iter()
            .filter(|m| m.kind() == "CustomResourceDefinition")
            .filter_map(|m| {
                let group = m.obj.pointer("/spec/group")?.as_str()?.to_string();
                let kind = m.obj.pointer("/spec/names/kind")?.as_str()?.to_string();
                Some((group, kind))
            })
            .collect();
        let mut unserved = Vec::new();
        for d in desired.iter_mut() {
            let api = d.s("/apiVersion").to_string();
            d.resolved = catalog.resolve(&api, d.kind());
            match &d.resolved {
                Some(r) if r.namespaced && d.namespace().is_none() => {
                    return Err(RunError::NoNamespace(d.id()))
                }
                Some(_) => {}
                None => {
                    let group = api.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
                    if !crd_kinds.contains(&(group, d.kind().to_string())) {
                        unserved.push(format!("  {} ({api})", d.id()));
                    }
                }
            }
        }
        Ok((desired, catalog, unserved))
    }

    /// Group-kinds and namespaces of the desired members.
    pub(super) fn inventory<'a>(
        &self,
        desired: impl Iterator<Item = &'a Desired> + Clone,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let gks = desired.clone().map(|d| applyset::group_kind(d.s("/apiVersion"), d.kind())).collect();
        let mut nss: BTreeSet<String> = desired.filter_map(|d| d.namespace().map(str::to_string)).collect();
        nss.insert(self.parent.namespace.clone());
        (gks, nss)
    }

    /// Whether a Namespace (live, or `None` when missing) is one trainstack creates or created:
    /// missing now, carrying this set's creation mark, or written by no manager but trainstack
    /// (created bare for the parent, or by a run before the mark existed).
    pub(super) fn created_here(&self, live: Option<&Value>) -> bool {
        live.is_none_or(|l| {
            applyset::created_by(l, &self.parent.id()) || applyset::only_managed_by(l, cluster::FIELD_MANAGER)
        })
    }

    /// Counts an object planned by the no-op proof (`None`) or by a dry-run, and why.
    pub(super) fn count_plan(&self, dry_run_reason: Option<&'static str>) {
        if let Ok(mut p) = self.planned.lock() {
            match dry_run_reason {
                None => p.locally += 1,
                Some(reason) => {
                    p.dry_runs += 1;
                    *p.reasons.entry(reason).or_default() += 1;
                }
            }
        }
    }

    /// Records a write that landed.
    pub(super) fn wrote(&self, change: &ObjectChange) {
        let line = format!("{} {} ({})", change.action.sign(), change.display_id(), change.action.label());
        if let Ok(mut w) = self.written.lock() {
            w.push(line);
        }
    }

    /// Every write this run made so far, in the order they landed: what an interrupted run
    /// reports.
    pub fn written_so_far(&self) -> Vec<String> {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    pub(super) fn report(
        &self,
        changes: Vec<ObjectChange>,
        not_ready: Vec<String>,
        kept: Vec<String>,
    ) -> Report {
        let t = Tally::of(&changes);
        let summary = Summary {
            created: t.count(Action::Create),
            configured: t.count(Action::Update),
            unchanged: t.count(Action::Unchanged),
            pruned: t.count(Action::Prune),
            failed: t.failed,
            warnings: t.warnings,
            ..Default::default()
        };
        let mut report = Report { changes, summary, not_ready, kept };
        if let Ok(p) = self.planned.lock() {
            report.summary.decided_locally = p.locally;
            report.summary.dry_runs = p.dry_runs;
            report.summary.dry_run_reasons = p.reasons.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        }
        report
    }
}

/// One desired object, resolved.
pub(super) struct Desired {
    pub(super) obj: Value,
    pub(super) phase: Phase,
    pub(super) resolved: Option<Resolved>,
    /// Its live state as far as this run has read it before planning.
    pub(super) seen: Seen,
    /// The no-op proof's verdict on the listed live state, decided for the whole set at once
    /// before planning (`None`: not decided yet, the plan decides).
    pub(super) verdict: Option<crate::engine::noop::Verdict>,
}

/// What a run knows of an object's live state before planning it.
#[derive(Debug, Clone)]
pub(super) enum Seen {
    /// Not read yet: the plan reads it by GET.
    Unknown,
    /// Read, and it does not exist.
    Absent,
    /// Read (by the ApplySet's LIST, or the parent's GET).
    Live(Value),
}

/// `Value::pointer` without its allocations: it unescapes every token with two `replace`
/// calls, and the engine looks up names, kinds and labels of every object many times a plan.
/// Pointers with escapes (`~0`, `~1`) go the long way.
pub(crate) fn lookup<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    if ptr.is_empty() || ptr.contains('~') {
        return v.pointer(ptr);
    }
    ptr.strip_prefix('/')?.split('/').try_fold(v, |at, token| match at {
        Value::Object(m) => m.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

impl Desired {
    pub(super) fn s(&self, ptr: &str) -> &str {
        lookup(&self.obj, ptr).and_then(Value::as_str).unwrap_or("")
    }
    pub(super) fn name(&self) -> &str {
        self.s("/metadata/name")
    }
    pub(super) fn namespace(&self) -> Option<&str> {
        lookup(&self.obj, "/metadata/namespace").and_then(Value::as_str)
    }
    pub(super) fn kind(&self) -> &str {
        self.s("/kind")
    }
    pub(super) fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {}/{}", self.kind(), ns, self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }
    pub(super) fn key(&self) -> (String, String, String, String) {
        key_of(&self.obj)
    }
}

pub(super) fn key_of(obj: &Value) -> (String, String, String, String) {
    let s = |p: &str| lookup(obj, p).and_then(Value::as_str).unwrap_or("").to_string();
    let group = s("/apiVersion").rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
    (group, s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

/// Runs `work` with at most `n` futures at once and returns their outputs in input order.
/// Unlike `buffered(n)`, which starts nothing new until the oldest is done, one object waiting
/// out a throttled request's `Retry-After` does not idle the other workers.
pub(super) async fn in_order<T>(n: usize, work: impl Stream<Item = impl Future<Output = T>>) -> Vec<T> {
    let mut done: Vec<(usize, T)> =
        work.enumerate().map(|(i, f)| async move { (i, f.await) }).buffer_unordered(n.max(1)).collect().await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

pub(super) fn is_parent(d: &Desired) -> bool {
    d.obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get("applyset.kubernetes.io/id"))
        .is_some()
}

/// Listed objects carry no apiVersion/kind in some servers' list items; restore them.
pub(super) fn with_type(mut obj: Value, r: &Resolved) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(r.resource.api_version.clone()));
        map.insert("kind".into(), Value::String(r.resource.kind.clone()));
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_finds_what_a_json_pointer_finds() {
        let v = json!({"metadata": {"name": "a", "labels": {"x/y": "1", "m~n": "2"}},
            "spec": {"ports": [{"port": 80}, {"port": 81}]}, "": {"empty": true}});
        for ptr in [
            "",
            "/metadata/name",
            "/metadata/namespace",
            "/metadata/labels/x~1y",
            "/metadata/labels/m~0n",
            "/spec/ports/1/port",
            "/spec/ports/2/port",
            "/spec/ports/x",
            "/metadata/name/deeper",
            "//empty",
            "no-slash",
        ] {
            assert_eq!(lookup(&v, ptr), v.pointer(ptr), "{ptr}");
        }
    }
}
