//! Removing members: prune of what the set no longer declares, and `delete` of the whole set,
//! both scoped by the ApplySet parent and keeping what is not this set's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::engine::applyset;
use crate::engine::cluster::{self, Catalog, ClusterError, Resolved};
use crate::engine::normalize;
use crate::engine::plan::{self, Action, ObjectChange};
use crate::engine::report::{Report, RunError};
use crate::engine::resolve::{in_order, is_parent, key_of, with_type, Desired, Engine, Seen};
use crate::manifest::{Manifest, Origin, Phase};

impl Engine {
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

    /// Rewrites the parent once prune succeeded: the current members' inventory plus that of
    /// the members prune kept (they still carry the set's label), so the parent never lists
    /// less than what is live.
    pub(super) async fn shrink_parent(&self, desired: &[Desired], kept: &[Kept]) {
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
        // The run read the parent before its first write; what it wrote since (the union
        // inventory) only adds this set's own kinds and namespaces, added below anyway.
        let read = match desired.iter().find(|d| is_parent(d)).map(|d| &d.seen) {
            Some(Seen::Live(p)) => Some(p.clone()),
            Some(Seen::Absent) => None,
            _ => cluster::get(&parent_api, &self.parent.name, "ApplySet parent").await?,
        };
        let (mut gks, namespaces) = match read {
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
                // This run listed the types it declares already. What it wrote since is all
                // declared, so those lists still hold every member prune could delete.
                let listed = match self.listed(&r, ns) {
                    Some(listed) => listed,
                    None => {
                        let api = cluster::api_for(&self.client, &r, ns);
                        let what = format!("list {gk}{}", ns.map(|n| format!(" in {n}")).unwrap_or_default());
                        cluster::list(&api, &selector, &what).await?
                    }
                };
                for obj in listed {
                    out.push((with_type(obj, &r), r.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Members the set no longer declares, to delete; and, as kept lines, members that are not
    /// this set's to delete (controller-owned, namespaces it did not create) or that need
    /// `--prune-namespaces` / `--prune-crds`.
    pub(super) async fn prune_candidates(
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
    pub(super) async fn delete_all(&self, targets: Vec<PruneTarget>) -> Vec<ObjectChange> {
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
}

/// A live object prune or delete found and left in place, with why.
pub(super) struct Kept {
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

    pub(super) fn lines(kept: Vec<Kept>) -> Vec<String> {
        kept.into_iter().map(|k| k.line).collect()
    }
}

/// A live object to delete.
pub(super) struct PruneTarget {
    pub(super) change: ObjectChange,
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
