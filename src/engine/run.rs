//! The engine's runs: diff (plan only), apply (phases, concurrency, waits, prune) and delete.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use kube::Client;
use serde::Serialize;
use serde_json::Value;

use crate::engine::applyset::{self, Parent};
use crate::engine::cluster::{self, Catalog, ClusterError, Resolved};
use crate::engine::normalize;
use crate::engine::plan::{self, Action, Conflict, ObjectChange};
use crate::engine::ready::{readiness, ClusterFacts, Readiness};
use crate::engine::warnings;
use crate::manifest::{Manifest, Origin, Phase};
use crate::progress::Progress;
use crate::tally::Tally;

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
        }
    }
}

/// Errors that stop a run before or during writes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Kinds the cluster does not serve and no CRD in the set provides.
    #[error("the cluster does not serve these kinds and no CRD in the environment provides them (nothing was written):\n{0}")]
    Unserved(String),
    /// An object of a namespaced kind without a namespace.
    #[error("{0} is namespaced but has no metadata.namespace (nothing was written)")]
    NoNamespace(String),
    /// A cluster call failed outside any single object.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Counts of what a run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Objects created.
    pub created: usize,
    /// Objects changed.
    pub configured: usize,
    /// Objects already in sync.
    pub unchanged: usize,
    /// Objects pruned.
    pub pruned: usize,
    /// Objects that failed.
    pub failed: usize,
    /// Warnings the API server sent, over all objects.
    pub warnings: usize,
}

/// The result of a diff or apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Per object, in apply order, then prunes.
    pub changes: Vec<ObjectChange>,
    /// Totals.
    pub summary: Summary,
    /// Objects not ready when a wait timed out, with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// Objects left in place that prune would delete without the safety flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

impl Report {
    /// Whether anything differs from the cluster.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.summary.failed > 0 || !self.not_ready.is_empty()
    }
}

/// One desired object, resolved.
struct Desired {
    obj: Value,
    phase: Phase,
    resolved: Option<Resolved>,
}

impl Desired {
    fn s(&self, ptr: &str) -> &str {
        self.obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
    }
    fn name(&self) -> &str {
        self.s("/metadata/name")
    }
    fn namespace(&self) -> Option<&str> {
        self.obj.pointer("/metadata/namespace").and_then(Value::as_str)
    }
    fn kind(&self) -> &str {
        self.s("/kind")
    }
    fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {}/{}", self.kind(), ns, self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }
    fn key(&self) -> (String, String, String, String) {
        key_of(&self.obj)
    }
}

fn key_of(obj: &Value) -> (String, String, String, String) {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let group = s("/apiVersion").rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
    (group, s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

/// A cluster and the environment's inventory in it.
pub struct Engine {
    client: Client,
    parent: Parent,
    facts: ClusterFacts,
    opts: Options,
    progress: Arc<dyn Progress>,
    /// What this run has written so far (`+ Kind ns/name (create)`, ...), for the summary of an
    /// interrupted run.
    written: std::sync::Mutex<Vec<String>>,
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
        }
    }

    /// The desired set with ApplySet labels, plus the parent, resolved against discovery.
    /// Fails before anything is written if a kind is not served and no CRD in the set adds it.
    async fn prepare(&self, set: &[Manifest]) -> Result<(Vec<Desired>, Catalog), RunError> {
        let (desired, catalog, unserved) = self.resolve(set).await?;
        if !unserved.is_empty() {
            return Err(RunError::Unserved(unserved.join("\n")));
        }
        Ok((desired, catalog))
    }

    /// [`Engine::prepare`] without refusing unserved kinds: they come back as lines (and their
    /// objects unresolved), for `delete`, where a kind the cluster does not serve (its CRD gone
    /// already) simply has no objects left.
    async fn resolve(&self, set: &[Manifest]) -> Result<(Vec<Desired>, Catalog, Vec<String>), RunError> {
        let catalog = Catalog::discover(&self.client).await?;
        let id = self.parent.id();
        let mut desired: Vec<Desired> = set
            .iter()
            .map(|m| {
                let mut obj = m.obj.clone();
                applyset::label_member(&mut obj, &id);
                Desired { obj, phase: m.phase(), resolved: None }
            })
            .collect();
        // The parent keeps listing what older runs applied until prune has removed it, so an
        // interrupted run still knows where old members live.
        let (mut gks, mut nss) = self.inventory(desired.iter());
        if let Some(secrets) = catalog.resolve("v1", "Secret") {
            let api = cluster::api_for(&self.client, &secrets, Some(&self.parent.namespace));
            if let Some(live) = cluster::get(&api, &self.parent.name, "ApplySet parent").await? {
                let (old_gks, old_nss) = applyset::read_parent(&live);
                gks.extend(old_gks);
                nss.extend(old_nss);
            }
        }
        desired.push(Desired { obj: self.parent.object(&gks, &nss), phase: Phase::Config, resolved: None });

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
    fn inventory<'a>(
        &self,
        desired: impl Iterator<Item = &'a Desired> + Clone,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let gks = desired.clone().map(|d| applyset::group_kind(d.s("/apiVersion"), d.kind())).collect();
        let mut nss: BTreeSet<String> = desired.filter_map(|d| d.namespace().map(str::to_string)).collect();
        nss.insert(self.parent.namespace.clone());
        (gks, nss)
    }

    /// Plans one object: GET live, server-side dry-run apply, compare. Returns the change and
    /// the object to write: the desired one, plus the creation mark on a Namespace that
    /// trainstack creates (or created before).
    async fn plan_one(&self, d: &Desired) -> (ObjectChange, Value) {
        let mut change = ObjectChange {
            kind: d.kind().to_string(),
            namespace: d.namespace().map(str::to_string),
            name: d.name().to_string(),
            phase: d.phase,
            action: Action::Create,
            diff: String::new(),
            error: None,
            conflict: None,
            warnings: Vec::new(),
        };
        let Some(r) = &d.resolved else {
            // Its CRD is part of this apply and not established yet: it can only be new.
            let (action, diff) = plan::compare(None, &d.obj, &d.obj, self.opts.show_secrets);
            change.action = action;
            change.diff = diff;
            return (change, d.obj.clone());
        };
        let api = cluster::api_for(&self.client, r, d.namespace());
        let what = d.id();
        let live = match cluster::get(&api, d.name(), &what).await {
            Ok(l) => l,
            Err(e) => {
                change.error = Some(e.to_string());
                return (change, d.obj.clone());
            }
        };
        let mut obj = d.obj.clone();
        if d.kind() == "Namespace" && self.created_here(live.as_ref()) {
            applyset::mark_created(&mut obj, &self.parent.id());
        }
        let dry = match cluster::apply(&api, d.name(), &obj, true, self.opts.force_conflicts, &what).await {
            Ok(v) => v,
            // A new object in a namespace this same apply creates cannot be dry-run yet (the
            // server answers 404 for the namespace); it can only be a create.
            Err(e) if live.is_none() && e.code() == 404 && d.namespace().is_some() => obj.clone(),
            // Drift by another field manager (`kubectl patch` of a field this environment
            // sets) is a change to show, not a failure: a forced dry-run says what taking the
            // fields back would change, and apply_one refuses it without --force-conflicts.
            Err(ClusterError::Conflict { conflict, .. }) => {
                change.conflict = Some(*conflict);
                match cluster::apply(&api, d.name(), &obj, true, true, &what).await {
                    Ok(v) => v,
                    Err(e) => {
                        change.error = Some(e.to_string());
                        return (change, obj);
                    }
                }
            }
            Err(e) => {
                change.error = Some(e.to_string());
                return (change, obj);
            }
        };
        let (action, diff) = plan::compare(live.as_ref(), &dry, &obj, self.opts.show_secrets);
        change.action = action;
        change.diff = diff;
        (change, obj)
    }

    /// Whether a Namespace (live, or `None` when missing) is one trainstack creates or created:
    /// missing now, carrying this set's creation mark, or written by no manager but trainstack
    /// (created bare for the parent, or by a run before the mark existed).
    fn created_here(&self, live: Option<&Value>) -> bool {
        live.is_none_or(|l| {
            applyset::created_by(l, &self.parent.id()) || applyset::only_managed_by(l, cluster::FIELD_MANAGER)
        })
    }

    /// Plans and, unless dry-run, applies one object, keeping the API server's warnings about
    /// it; with `warnings_as_errors` an object whose dry-run drew one is not written.
    async fn apply_one(&self, d: &Desired) -> ObjectChange {
        let ((mut change, obj), warnings) = warnings::collect(self.plan_one(d)).await;
        change.warnings = warnings;
        if self.opts.warnings_as_errors && !change.warnings.is_empty() && change.error.is_none() {
            change.error = Some(WARNED.into());
            return change;
        }
        let (mut written, more) = warnings::collect(self.write_planned(d, change, obj)).await;
        for w in more {
            if !written.warnings.contains(&w) {
                written.warnings.push(w);
            }
        }
        written
    }

    /// Writes a planned object unless the plan failed, conflicts, is a dry run or changes
    /// nothing.
    async fn write_planned(&self, d: &Desired, mut change: ObjectChange, obj: Value) -> ObjectChange {
        if let Some(c) = change.conflict.as_ref().filter(|_| change.error.is_none()) {
            change.error = Some(conflict_hint(&d.id(), c));
            return change;
        }
        if change.error.is_some() || self.opts.dry_run || change.action == Action::Unchanged {
            return change;
        }
        let Some(r) = &d.resolved else {
            change.error = Some("its kind is still not served after its CRD was established".into());
            return change;
        };
        let api = cluster::api_for(&self.client, r, d.namespace());
        match cluster::apply(&api, d.name(), &obj, false, self.opts.force_conflicts, &d.id()).await {
            Ok(_) => self.wrote(&change),
            // Another manager took a field between the dry-run and the write.
            Err(ClusterError::Conflict { conflict, .. }) => {
                change.error = Some(conflict_hint(&d.id(), &conflict));
                change.conflict = Some(*conflict);
            }
            Err(e) => change.error = Some(e.to_string()),
        }
        change
    }

    /// `--warnings-as-errors` before any write: every object the cluster can dry-run now is
    /// planned; if any draws a warning, the plan comes back with those objects failed and
    /// nothing is written.
    async fn refuse_warned(&self, desired: &[Desired]) -> Option<Report> {
        self.progress.phase("check warnings", desired.len());
        let changes: Vec<ObjectChange> = in_order(
            self.opts.concurrency,
            stream::iter(desired.iter()).map(|d| async move {
                let ((mut c, _), warnings) = warnings::collect(self.plan_one(d)).await;
                c.warnings = warnings;
                if !c.warnings.is_empty() && c.error.is_none() {
                    c.error = Some(WARNED.into());
                }
                self.progress.inc(&c.display_id());
                c
            }),
        )
        .await;
        self.progress.finish();
        changes.iter().any(|c| !c.warnings.is_empty()).then(|| self.report(changes, Vec::new(), Vec::new()))
    }

    /// Records a write that landed.
    fn wrote(&self, change: &ObjectChange) {
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

    /// Resolves the set against the cluster without writing: fails like `apply` would before its
    /// first write (unserved kinds, missing namespaces), so other writes can wait for it.
    pub async fn check(&self, set: &[Manifest]) -> Result<(), RunError> {
        self.prepare(set).await.map(|_| ())
    }

    /// `diff`: the plan for every object plus what prune would delete. Writes nothing.
    pub async fn diff(&self, set: &[Manifest]) -> Result<Report, RunError> {
        let (desired, catalog) = self.prepare(set).await?;
        self.progress.phase("diff", desired.len());
        let mut changes: Vec<ObjectChange> = in_order(
            self.opts.concurrency,
            stream::iter(desired.iter()).map(|d| async move {
                let ((mut c, _), warnings) = warnings::collect(self.plan_one(d)).await;
                c.warnings = warnings;
                self.progress.inc(&c.display_id());
                c
            }),
        )
        .await;
        self.progress.finish();
        let (prunes, kept) = self.prune_candidates(&desired, &catalog).await?;
        changes.extend(prunes.iter().map(|p| p.change.clone()));
        Ok(self.report(changes, Vec::new(), Kept::lines(kept)))
    }

    /// `apply`: phase by phase, concurrently within a phase; waits; prune after full success.
    pub async fn apply(&self, set: &[Manifest]) -> Result<Report, RunError> {
        let (mut desired, mut catalog) = self.prepare(set).await?;
        if self.opts.warnings_as_errors {
            if let Some(refused) = self.refuse_warned(&desired).await {
                return Ok(refused);
            }
        }
        let mut not_ready = Vec::new();
        // KEP-3659: the parent lists the union of old and new group-kinds and namespaces before
        // any member is written, so a run cut off anywhere leaves no member prune cannot find.
        let parent = desired.iter().position(is_parent).expect("prepare adds the parent");
        let (parent_change, created_bare) = self.write_parent_first(&desired[parent]).await;
        let failed = parent_change.error.is_some();
        let mut changes = vec![parent_change];
        if failed {
            return Ok(self.report(changes, not_ready, Vec::new()));
        }
        for phase in Phase::ALL {
            let idx: Vec<usize> =
                (0..desired.len()).filter(|&i| i != parent && desired[i].phase == phase).collect();
            if idx.is_empty() {
                continue;
            }
            // Custom resources whose CRDs were applied in this run resolve only now.
            if phase != Phase::Crds
                && idx.iter().any(|&i| desired[i].resolved.is_none())
                && !self.opts.dry_run
            {
                catalog = Catalog::discover(&self.client).await?;
                for &i in &idx {
                    if desired[i].resolved.is_none() {
                        desired[i].resolved = catalog.resolve(desired[i].s("/apiVersion"), desired[i].kind());
                    }
                }
            }
            self.progress.phase(phase.name(), idx.len());
            let results: Vec<ObjectChange> = in_order(
                self.opts.concurrency,
                stream::iter(idx.iter().map(|&i| &desired[i])).map(|d| async move {
                    let c = self.apply_one(d).await;
                    self.progress.inc(&c.display_id());
                    c
                }),
            )
            .await;
            self.progress.finish();
            let failed = results.iter().any(|c| c.error.is_some());
            changes.extend(results.into_iter().map(|mut c| {
                // The parent's namespace created bare above is, for the user, created by this run.
                if created_bare
                    && c.kind == "Namespace"
                    && c.name == self.parent.namespace
                    && c.action == Action::Update
                {
                    c.action = Action::Create;
                }
                c
            }));
            if failed {
                // Later phases depend on this one, and nothing is pruned after a failure.
                return Ok(self.report(changes, not_ready, Vec::new()));
            }
            let must_wait = phase == Phase::Crds
                || (self.opts.wait && matches!(phase, Phase::Operators | Phase::Workloads));
            if must_wait && !self.opts.dry_run {
                let targets: Vec<&Desired> = idx.iter().map(|&i| &desired[i]).collect();
                not_ready = self.wait_ready(&targets, phase).await;
                if !not_ready.is_empty() {
                    return Ok(self.report(changes, not_ready, Vec::new()));
                }
            }
        }
        let mut kept = Vec::new();
        if self.opts.prune {
            let (prunes, k) = self.prune_candidates(&desired, &catalog).await?;
            kept = k;
            changes.extend(self.delete_all(prunes).await);
            // KEP-3659: the parent shrinks only after a prune that fully succeeded.
            if !changes.iter().any(|c| c.error.is_some()) && !self.opts.dry_run {
                self.shrink_parent(&desired, &kept).await;
            }
        }
        Ok(self.report(changes, not_ready, Kept::lines(kept)))
    }

    /// Writes the parent (the union inventory) before any member. Its namespace is usually a
    /// member too, declared in the namespaces phase; when it does not exist yet it is created
    /// bare first (name and creation mark, no member label), so no member precedes the parent
    /// and the namespaces phase then applies it in full.
    /// Returns the parent's change and whether its namespace was created bare.
    async fn write_parent_first(&self, parent: &Desired) -> (ObjectChange, bool) {
        let mut created_bare = false;
        if !self.opts.dry_run {
            match self.ensure_parent_namespace().await {
                Ok(created) => created_bare = created,
                Err(e) => {
                    let (mut change, _) = self.plan_one(parent).await;
                    change.error = Some(e.to_string());
                    return (change, false);
                }
            }
        }
        (self.apply_one(parent).await, created_bare)
    }

    /// Creates the parent's namespace when missing; true when it did.
    async fn ensure_parent_namespace(&self) -> Result<bool, ClusterError> {
        let catalog_ns = Resolved {
            resource: kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
            namespaced: false,
        };
        let api = cluster::api_for(&self.client, &catalog_ns, None);
        let name = &self.parent.namespace;
        let what = format!("Namespace {name} (of the ApplySet parent)");
        if cluster::get(&api, name, &what).await?.is_some() {
            return Ok(false);
        }
        let mut bare =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        applyset::mark_created(&mut bare, &self.parent.id());
        cluster::apply(&api, name, &bare, false, false, &what).await.map(|_| true)
    }

    /// Rewrites the parent once prune succeeded: the current members' inventory plus that of
    /// the members prune kept (they still carry the set's label), so the parent never lists
    /// less than what is live.
    async fn shrink_parent(&self, desired: &[Desired], kept: &[Kept]) {
        let (mut gks, mut nss) = self.inventory(desired.iter().filter(|d| !is_parent(d)));
        for k in kept.iter().filter(|k| k.member) {
            gks.insert(k.group_kind.clone());
            nss.extend(k.namespace.clone());
        }
        if let Some(p) = desired.iter().find(|d| is_parent(d)) {
            if let Some(r) = &p.resolved {
                let api = cluster::api_for(&self.client, r, p.namespace());
                let obj = self.parent.object(&gks, &nss);
                let _ = cluster::apply(&api, p.name(), &obj, false, true, "ApplySet parent").await;
            }
        }
    }

    /// The live members of this environment's ApplySet, listed the way KEP-3659 scopes them:
    /// each group-kind of the parent (and of the set), namespaced kinds only in the parent's
    /// namespace and its `additional-namespaces`, cluster-scoped kinds cluster-wide. No parent
    /// means no members.
    async fn members(
        &self,
        desired: &[Desired],
        catalog: &Catalog,
    ) -> Result<Vec<(Value, Resolved)>, RunError> {
        let parent_res = catalog.resolve("v1", "Secret").ok_or_else(|| ClusterError::Api {
            what: "discovery".into(),
            message: "the cluster does not serve v1 Secrets".into(),
            code: 0,
        })?;
        let parent_api = cluster::api_for(&self.client, &parent_res, Some(&self.parent.namespace));
        let (mut gks, namespaces) =
            match cluster::get(&parent_api, &self.parent.name, "ApplySet parent").await? {
                Some(p) => applyset::read_parent(&p),
                None => return Ok(Vec::new()),
            };
        // Kinds declared now may have members left from older runs too.
        gks.extend(
            desired
                .iter()
                .filter(|d| !is_parent(d))
                .map(|d| applyset::group_kind(d.s("/apiVersion"), d.kind())),
        );
        let selector = format!("{}={}", applyset::PART_OF, self.parent.id());
        let mut out = Vec::new();
        for gk in gks {
            let (kind, group) = gk
                .split_once('.')
                .map(|(k, g)| (k.to_string(), g.to_string()))
                .unwrap_or((gk.clone(), String::new()));
            let Some(r) = resolve_group_kind(catalog, desired, &group, &kind) else { continue };
            let scopes: Vec<Option<&str>> = if r.namespaced {
                namespaces.iter().map(|ns| Some(ns.as_str())).collect()
            } else {
                vec![None]
            };
            for ns in scopes {
                let api = cluster::api_for(&self.client, &r, ns);
                let what = format!("list {gk}{}", ns.map(|n| format!(" in {n}")).unwrap_or_default());
                for obj in cluster::list(&api, &selector, &what).await? {
                    out.push((with_type(obj, &r), r.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Members the set no longer declares, to delete; and, as kept lines, members that are not
    /// this set's to delete (controller-owned, namespaces it did not create) or that need
    /// `--prune-namespaces` / `--prune-crds`.
    async fn prune_candidates(
        &self,
        desired: &[Desired],
        catalog: &Catalog,
    ) -> Result<(Vec<PruneTarget>, Vec<Kept>), RunError> {
        let wanted: BTreeSet<_> = desired.iter().map(Desired::key).collect();
        let id = self.parent.id();
        let mut targets = Vec::new();
        let mut kept = Vec::new();
        for (obj, r) in self.members(desired, catalog).await? {
            if wanted.contains(&key_of(&obj)) {
                continue;
            }
            let target = PruneTarget::of_live(&obj, r.clone());
            if let Some(why) = applyset::not_ours(&obj, &id) {
                let released = self.release_foreign_namespace(&obj, &r).await;
                kept.push(Kept::of(
                    &obj,
                    format!("no longer declared; {why}{released}"),
                    released.is_empty(),
                ));
                continue;
            }
            let kind = target.change.kind.as_str();
            if (kind == "Namespace" && !self.opts.prune_namespaces)
                || (kind == "CustomResourceDefinition" && !self.opts.prune_crds)
            {
                let flag = if kind == "Namespace" { "--prune-namespaces" } else { "--prune-crds" };
                kept.push(Kept::of(&obj, format!("no longer declared; prune it with {flag}"), true));
                continue;
            }
            targets.push(target);
        }
        targets.sort_by_key(|t| std::cmp::Reverse(t.change.phase));
        Ok((targets, kept))
    }

    /// A labelled Namespace this set did not create stays, but trainstack gives back what it
    /// wrote to it: an apply of nothing but its name under trainstack's field manager removes
    /// the labels and annotations trainstack owns (server-side apply drops fields a manager
    /// stops applying), so the namespace is no longer a member. Returns the note for the kept
    /// line, empty when nothing was released (another kind, a dry run, or the apply failed).
    async fn release_foreign_namespace(&self, live: &Value, r: &Resolved) -> String {
        let name = live.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let labelled = live.pointer(&format!("/metadata/labels/{}", applyset::PART_OF.replace('/', "~1")))
            == Some(&Value::String(self.parent.id()));
        if live["kind"] != "Namespace" || !labelled || self.opts.dry_run {
            return String::new();
        }
        let api = cluster::api_for(&self.client, r, None);
        let bare = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match cluster::apply(&api, name, &bare, false, false, &format!("Namespace {name}")).await {
            Ok(_) => "; trainstack's labels and annotations were removed from it".into(),
            Err(_) => String::new(),
        }
    }

    /// Deletes targets in reverse phase order. Only what a DELETE actually removed (or, on a
    /// dry run, would remove) is returned: an object already gone (404) is not reported.
    async fn delete_all(&self, targets: Vec<PruneTarget>) -> Vec<ObjectChange> {
        let mut out = Vec::new();
        let mut by_phase: BTreeMap<Phase, Vec<PruneTarget>> = BTreeMap::new();
        for t in targets {
            by_phase.entry(t.change.phase).or_default().push(t);
        }
        for (_, group) in by_phase.into_iter().rev() {
            self.progress.phase("prune", group.len());
            let done: Vec<Option<ObjectChange>> = in_order(
                self.opts.concurrency,
                stream::iter(group).map(|t| async move {
                    let mut c = t.change.clone();
                    let api = cluster::api_for(&self.client, &t.resolved, c.namespace.as_deref());
                    let deleted =
                        match cluster::delete(&api, &c.name, self.opts.dry_run, &c.display_id()).await {
                            Ok(deleted) => {
                                if deleted && !self.opts.dry_run {
                                    self.wrote(&c);
                                }
                                deleted
                            }
                            Err(e) => {
                                c.error = Some(e.to_string());
                                true
                            }
                        };
                    self.progress.inc(&c.display_id());
                    deleted.then_some(c)
                }),
            )
            .await;
            self.progress.finish();
            out.extend(done.into_iter().flatten());
        }
        out
    }

    /// Polls objects until ready, failed or timed out; returns the ones not ready with reasons.
    async fn wait_ready(&self, targets: &[&Desired], phase: Phase) -> Vec<String> {
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

    /// `delete`: every member of this environment's ApplySet, in reverse phase order, waiting
    /// until each phase is gone (finalizers included); then the parent, then the parent's
    /// namespace, so a delete cut off anywhere leaves every remaining member listed by the
    /// parent. Members are the rendered objects that exist and are this set's
    /// (`applyset::not_ours`) plus members an older or interrupted run left that the set no
    /// longer declares. Rendered objects that exist but are not this set's are kept and
    /// reported with why; a labelled namespace trainstack did not create gets its trainstack
    /// labels removed.
    pub async fn delete(&self, set: &[Manifest]) -> Result<Report, RunError> {
        // A kind the cluster no longer serves (its CRD deleted by an earlier run) has no
        // objects left to delete.
        let (desired, catalog, _unserved) = self.resolve(set).await?;
        let id = self.parent.id();
        let lives: Vec<Result<Option<Value>, ClusterError>> = in_order(
            self.opts.concurrency,
            stream::iter(desired.iter()).map(|d| async move {
                let Some(r) = &d.resolved else { return Ok(None) };
                let api = cluster::api_for(&self.client, r, d.namespace());
                cluster::get(&api, d.name(), &d.id()).await
            }),
        )
        .await;
        let mut targets = Vec::new();
        let mut parent = None;
        let mut kept = Vec::new();
        let mut seen = BTreeSet::new();
        let mut found = Vec::new();
        for (d, live) in desired.iter().zip(lives) {
            let (Some(r), Some(live)) = (&d.resolved, live?) else { continue };
            let live = with_type(live, r);
            seen.insert(key_of(&live));
            let mut target = PruneTarget::of_live(&live, r.clone());
            target.change.phase = d.phase;
            // The parent is not a member of itself; it is this set's by its name and ID label.
            if is_parent(d) {
                parent = Some(target);
            } else {
                found.push((live, target));
            }
        }
        for (live, r) in self.members(&desired, &catalog).await? {
            if seen.insert(key_of(&live)) {
                let target = PruneTarget::of_live(&live, r);
                found.push((live, target));
            }
        }
        for (live, target) in found {
            match applyset::not_ours(&live, &id) {
                Some(why) => {
                    let released = self.release_foreign_namespace(&live, &target.resolved).await;
                    kept.push(Kept::of(&live, format!("{why}{released}"), false));
                }
                None => targets.push(target),
            }
        }
        let is_parent_namespace =
            |t: &PruneTarget| t.change.kind == "Namespace" && t.change.name == self.parent.namespace;
        let parent_namespace = targets.iter().position(is_parent_namespace).map(|i| targets.remove(i));
        let mut by_phase: BTreeMap<Phase, Vec<PruneTarget>> = BTreeMap::new();
        for t in targets {
            by_phase.entry(t.change.phase).or_default().push(t);
        }
        let mut stages: Vec<Vec<PruneTarget>> = by_phase.into_values().rev().collect();
        stages.extend(parent.map(|p| vec![p]));
        stages.extend(parent_namespace.map(|n| vec![n]));

        let mut changes = Vec::new();
        let mut not_ready = Vec::new();
        for group in stages {
            let gone_check: Vec<(Resolved, Option<String>, String, String, Phase)> = group
                .iter()
                .map(|t| {
                    (
                        t.resolved.clone(),
                        t.change.namespace.clone(),
                        t.change.name.clone(),
                        t.change.display_id(),
                        t.change.phase,
                    )
                })
                .collect();
            changes.extend(self.delete_all(group).await);
            if changes.iter().any(|c| c.error.is_some()) {
                break;
            }
            // A dry run lists every stage `delete` would delete, in order; there is nothing to
            // wait for.
            if self.opts.dry_run {
                continue;
            }
            // The next stage (e.g. a namespace) waits until this one is really gone.
            let deadline = tokio::time::Instant::now() + self.opts.timeout;
            for (r, ns, name, id, phase) in gone_check {
                let api = cluster::api_for(&self.client, &r, ns.as_deref());
                loop {
                    match cluster::get(&api, &name, &id).await {
                        Ok(None) => break,
                        Ok(Some(_)) if tokio::time::Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(250)).await
                        }
                        Ok(Some(live)) => {
                            let fins = live.pointer("/metadata/finalizers").cloned().unwrap_or(Value::Null);
                            not_ready.push(format!(
                                "{id}: still present after {:?} in phase {phase} (finalizers: {fins})",
                                self.opts.timeout
                            ));
                            break;
                        }
                        Err(e) => {
                            not_ready.push(format!("{id}: {e}"));
                            break;
                        }
                    }
                }
            }
            if !not_ready.is_empty() {
                break;
            }
        }
        Ok(self.report(changes, not_ready, Kept::lines(kept)))
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
                        Ok(None) => "missing".to_string(),
                        Ok(Some(live)) => match readiness(&live, self.facts, false) {
                            // A Job counts as ready without completing, but not one whose
                            // controller has not managed to create a single pod.
                            Readiness::Ready if never_started(&live) => {
                                match self.failed_create(m.kind(), m.namespace(), m.name()).await {
                                    why if why.is_empty() => "ready".to_string(),
                                    why => format!("pending: no pod created{why}"),
                                }
                            }
                            Readiness::Ready => "ready".to_string(),
                            Readiness::Pending(w) => {
                                format!(
                                    "pending: {w}{}",
                                    self.failed_create(m.kind(), m.namespace(), m.name()).await
                                )
                            }
                            Readiness::Failed(w) => format!("failed: {w}"),
                        },
                        Err(e) => format!("error: {e}"),
                    }
                }
            }),
        )
        .await;
        Ok(out)
    }

    fn report(&self, changes: Vec<ObjectChange>, not_ready: Vec<String>, kept: Vec<String>) -> Report {
        let t = Tally::of(&changes);
        let summary = Summary {
            created: t.count(Action::Create),
            configured: t.count(Action::Update),
            unchanged: t.count(Action::Unchanged),
            pruned: t.count(Action::Prune),
            failed: t.failed,
            warnings: t.warnings,
        };
        Report { changes, summary, not_ready, kept }
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

/// Runs `work` with at most `n` futures at once and returns their outputs in input order.
/// Unlike `buffered(n)`, which starts nothing new until the oldest is done, one object waiting
/// out a throttled request's `Retry-After` does not idle the other workers.
async fn in_order<T>(n: usize, work: impl Stream<Item = impl Future<Output = T>>) -> Vec<T> {
    let mut done: Vec<(usize, T)> =
        work.enumerate().map(|(i, f)| async move { (i, f.await) }).buffer_unordered(n.max(1)).collect().await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

fn is_parent(d: &Desired) -> bool {
    d.obj.pointer("/metadata/labels/applyset.kubernetes.io~1id").is_some()
}

/// A live object prune or delete found and left in place, with why.
struct Kept {
    line: String,
    group_kind: String,
    namespace: Option<String>,
    /// Still labelled as a member of the set (the parent keeps listing where it is).
    member: bool,
}

impl Kept {
    fn of(live: &Value, why: String, member: bool) -> Self {
        let s = |p: &str| live.pointer(p).and_then(Value::as_str);
        let namespace = s("/metadata/namespace").map(str::to_string);
        let name = s("/metadata/name").unwrap_or_default();
        let kind = s("/kind").unwrap_or_default();
        let id = match &namespace {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        Kept {
            line: format!("{id} ({why})"),
            group_kind: applyset::group_kind(s("/apiVersion").unwrap_or_default(), kind),
            namespace,
            member,
        }
    }

    fn lines(kept: Vec<Kept>) -> Vec<String> {
        kept.into_iter().map(|k| k.line).collect()
    }
}

/// A live object to delete.
struct PruneTarget {
    change: ObjectChange,
    resolved: Resolved,
}

impl PruneTarget {
    /// A live object (with apiVersion and kind) as a deletion, in its apply phase.
    fn of_live(obj: &Value, resolved: Resolved) -> Self {
        let manifest = Manifest { obj: obj.clone(), origin: Origin::Addon { name: String::new() } };
        // The deleted object is shown like a diff's old side: Secret values never appear.
        let mut shown = normalize::normalize(obj);
        if normalize::is_secret(&shown) {
            normalize::redact_pair(Some(&mut shown), None);
        }
        PruneTarget {
            change: ObjectChange {
                kind: manifest.kind().to_string(),
                namespace: manifest.namespace().map(str::to_string),
                name: manifest.name().to_string(),
                phase: manifest.phase(),
                action: Action::Prune,
                diff: plan::unified(Some(&shown), None),
                error: None,
                conflict: None,
                warnings: Vec::new(),
            },
            resolved,
        }
    }
}

/// Listed objects carry no apiVersion/kind in some servers' list items; restore them.
fn with_type(mut obj: Value, r: &Resolved) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(r.resource.api_version.clone()));
        map.insert("kind".into(), Value::String(r.resource.kind.clone()));
    }
    obj
}

fn resolve_group_kind(catalog: &Catalog, desired: &[Desired], group: &str, kind: &str) -> Option<Resolved> {
    // Prefer the version the set itself uses; else any served version via the set's CRDs.
    let from_set = desired.iter().find_map(|d| {
        let api = d.s("/apiVersion");
        let g = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        (g == group && d.kind() == kind).then(|| api.to_string())
    });
    if let Some(api) = from_set {
        return catalog.resolve(&api, kind);
    }
    for version in ["v1", "v1beta1", "v1alpha1", "v2", "v1beta2"] {
        let api = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        if let Some(r) = catalog.resolve(&api, kind) {
            return Some(r);
        }
    }
    None
}

/// Why `--warnings-as-errors` failed an object (its warnings are listed with it).
const WARNED: &str = "the API server warned about it and --warnings-as-errors is set; nothing was written";

/// Why apply refuses an object whose fields other managers own, and how to resolve it.
fn conflict_hint(id: &str, c: &Conflict) -> String {
    let fields: String =
        c.fields.iter().map(|f| format!("\n    {}: owned by {:?}", f.field, f.manager)).collect();
    format!(
        "{id}: {}{fields}\n    another field manager owns these fields; change them there, or pass --force-conflicts to take them over",
        c.message
    )
}
