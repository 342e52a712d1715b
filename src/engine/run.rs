//! The engine's runs: `check` (resolve once), `diff` (plan only), `apply` (phases,
//! concurrency, waits, then prune) and `status` (plan and readiness in one pass).

use futures::stream::{self, StreamExt};
use std::borrow::Cow;

use serde_json::Value;

use crate::engine::applyset;
use crate::engine::cluster::{self, Catalog, ClusterError, Resolved};
use crate::engine::noop::{self, Shapes, Verdict};
use crate::engine::plan::{self, Action, Conflict, ObjectChange};
use crate::engine::prune::Kept;
use crate::engine::resolve::{in_order, is_parent, Desired, Seen};
use crate::engine::warnings;
use crate::manifest::{Manifest, Phase};
use crate::validate::{is_core_kind, CrdSchemas};

pub use crate::engine::report::{ObjectStatus, Report, RunError, Summary};
pub use crate::engine::resolve::{Checked, Engine, Options};

impl Engine {
    /// Resolves the set against the cluster without writing: discovery, the ApplySet parent and
    /// every object's resource, once per run. Fails like `apply` would before its first write
    /// (unserved kinds, missing namespaces), so other writes can wait for it; what it returns
    /// is what [`Engine::apply_checked`] applies.
    pub async fn check(&self, set: &[Manifest]) -> Result<Checked, RunError> {
        let (mut desired, catalog, unserved) = self.resolve(set).await?;
        if !unserved.is_empty() {
            return Err(RunError::Unserved(unserved.join("\n")));
        }
        let mut crds = CrdSchemas::new();
        for d in desired.iter().filter(|d| d.kind() == "CustomResourceDefinition") {
            // A CRD the validator cannot compile leaves its resources to the dry-run.
            let _ = crds.add_crd(&d.obj);
        }
        for crd in self.foreign_crds(&desired, &crds, &catalog).await {
            let _ = crds.add_crd(&crd);
        }
        let _ = self.crds.set(crds);
        // The parent's namespaces: this set's and those older runs left members in, which
        // prune will look in too.
        let parent = desired.iter().find(|d| is_parent(d)).map(|p| applyset::read_parent(&p.obj));
        let namespaces = parent.map(|(_, nss)| nss).unwrap_or_default();
        self.list_live(&mut desired, &namespaces).await;
        self.prove_listed(&mut desired);
        Ok(Checked { desired, catalog })
    }

    /// Runs the no-op proof on every listed object before planning, spread over the machine's
    /// cores: it is the CPU-bound part of a plan, and the planning stream polls all its
    /// futures on one thread.
    fn prove_listed(&self, desired: &mut [Desired]) {
        if self.opts.server_dry_run_all || self.opts.warnings_as_errors {
            return;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let chunk = desired.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for part in desired.chunks_mut(chunk) {
                s.spawn(move || {
                    for d in part.iter_mut() {
                        if let Seen::Live(live) = &d.seen {
                            let obj = self.to_write(d, Some(live));
                            d.verdict =
                                Some(noop::decide(&obj, live, cluster::FIELD_MANAGER, self.shapes(&obj)));
                        }
                    }
                });
            }
        });
    }

    /// What apply writes for `d`: the desired object, plus the creation mark on a Namespace
    /// that trainstack creates or created before.
    fn to_write<'a>(&self, d: &'a Desired, live: Option<&Value>) -> Cow<'a, Value> {
        if d.kind() == "Namespace" && self.created_here(live) {
            let mut obj = d.obj.clone();
            applyset::mark_created(&mut obj, &self.parent.id());
            Cow::Owned(obj)
        } else {
            Cow::Borrowed(&d.obj)
        }
    }

    /// Plans one object: GET live, server-side dry-run apply, compare. Returns the change, the
    /// object to write (the desired one, plus the creation mark on a Namespace that trainstack
    /// creates or created before) and what the GET found, for `status` to judge readiness by
    /// (`Ok(None)` also for an object whose kind is not served yet).
    async fn plan_one<'a>(
        &self,
        d: &'a Desired,
    ) -> (ObjectChange, Cow<'a, Value>, Result<Option<Cow<'a, Value>>, String>) {
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
            return (change, Cow::Borrowed(&d.obj), Ok(None));
        };
        // Built only for a request: most objects of a no-op plan make none.
        let api = || cluster::api_for(&self.client, r, d.namespace());
        let live: Option<Cow<'a, Value>> = match &d.seen {
            Seen::Live(l) => Some(Cow::Borrowed(l)),
            Seen::Absent => None,
            Seen::Unknown => match cluster::get(&api(), d.name(), &d.id()).await {
                Ok(l) => l.map(Cow::Owned),
                Err(e) => {
                    change.error = Some(e.to_string());
                    return (change, Cow::Borrowed(&d.obj), Err(e.to_string()));
                }
            },
        };
        let obj = self.to_write(d, live.as_deref());
        let why = match &live {
            None => noop::reason::NEW,
            Some(_) if self.opts.server_dry_run_all => noop::reason::FORCED,
            Some(_) if self.opts.warnings_as_errors => noop::reason::WARNINGS,
            Some(l) => match d
                .verdict
                .clone()
                .unwrap_or_else(|| noop::decide(&obj, l, cluster::FIELD_MANAGER, self.shapes(&obj)))
            {
                Verdict::Unchanged => {
                    self.count_plan(None);
                    change.action = Action::Unchanged;
                    return (change, obj, Ok(live));
                }
                Verdict::NeedsDryRun(f) => f.reason,
            },
        };
        self.count_plan(Some(why));
        let (api, what) = (api(), d.id());
        let dry = match cluster::apply(&api, d.name(), &obj, true, self.opts.force_conflicts, &what).await {
            Ok(v) => v,
            // A new object in a namespace this same apply creates cannot be dry-run yet (the
            // server answers 404 for the namespace); it can only be a create.
            Err(e) if live.is_none() && e.code() == 404 && d.namespace().is_some() => {
                obj.clone().into_owned()
            }
            // Drift by another field manager (`kubectl patch` of a field this environment
            // sets) is a change to show, not a failure: a forced dry-run says what taking the
            // fields back would change, and apply_one refuses it without --force-conflicts.
            Err(ClusterError::Conflict { conflict, .. }) => {
                change.conflict = Some(*conflict);
                match cluster::apply(&api, d.name(), &obj, true, true, &what).await {
                    Ok(v) => v,
                    Err(e) => {
                        change.error = Some(e.to_string());
                        return (change, obj, Ok(live));
                    }
                }
            }
            Err(e) => {
                change.error = Some(e.to_string());
                return (change, obj, Ok(live));
            }
        };
        let (action, diff) = plan::compare(live.as_deref(), &dry, &obj, self.opts.show_secrets);
        change.action = action;
        change.diff = diff;
        (change, obj, Ok(live))
    }

    /// Plans and, unless dry-run, applies one object, keeping the API server's warnings about
    /// it; with `warnings_as_errors` an object whose dry-run drew one is not written.
    async fn apply_one(&self, d: &Desired) -> ObjectChange {
        let ((mut change, obj, _), warnings) = warnings::collect(self.plan_one(d)).await;
        change.warnings = warnings;
        if self.opts.warnings_as_errors && !change.warnings.is_empty() && change.error.is_none() {
            change.error = Some(WARNED.into());
            return change;
        }
        let (mut written, more) = warnings::collect(self.write_planned(d, change, &obj)).await;
        for w in more {
            if !written.warnings.contains(&w) {
                written.warnings.push(w);
            }
        }
        written
    }

    /// Writes a planned object unless the plan failed, conflicts, is a dry run or changes
    /// nothing.
    async fn write_planned(&self, d: &Desired, mut change: ObjectChange, obj: &Value) -> ObjectChange {
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
        match cluster::apply(&api, d.name(), obj, false, self.opts.force_conflicts, &d.id()).await {
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
                let ((mut c, _, _), warnings) = warnings::collect(self.plan_one(d)).await;
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

    /// `diff`: the plan for every object plus what prune would delete. Writes nothing.
    pub async fn diff(&self, set: &[Manifest]) -> Result<Report, RunError> {
        let Checked { desired, catalog } = self.check(set).await?;
        self.progress.phase("diff", desired.len());
        let mut changes: Vec<ObjectChange> = in_order(
            self.opts.concurrency,
            stream::iter(desired.iter()).map(|d| async move {
                let ((mut c, _, _), warnings) = warnings::collect(self.plan_one(d)).await;
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
        self.apply_checked(self.check(set).await?).await
    }

    /// [`Engine::apply`] of a set [`Engine::check`] resolved: `apply` on eks checks first, runs
    /// the AWS side, then applies what it checked without discovering again.
    pub async fn apply_checked(&self, checked: Checked) -> Result<Report, RunError> {
        let Checked { mut desired, mut catalog } = checked;
        if self.opts.warnings_as_errors {
            if let Some(refused) = self.refuse_warned(&desired).await {
                return Ok(refused);
            }
            // The apply below plans every object again; count that plan, not both.
            if let Ok(mut p) = self.planned.lock() {
                *p = Default::default();
            }
        }
        let mut not_ready = Vec::new();
        // KEP-3659: the parent lists the union of old and new group-kinds and namespaces before
        // any member is written, so a run cut off anywhere leaves no member prune cannot find.
        let parent = desired.iter().position(is_parent).expect("prepare adds the parent");
        let (parent_change, created_bare) = self.write_parent_first(&desired, parent).await;
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

    /// `status`: one row per object of the set, in set order, from one resolution and one
    /// GET and dry-run per object: its plan and its readiness. The parent and prune candidates
    /// are not objects of the set and are left out.
    pub async fn status(&self, set: &[Manifest]) -> Result<Vec<ObjectStatus>, RunError> {
        let Checked { desired, .. } = self.check(set).await?;
        let members: Vec<&Desired> = desired.iter().filter(|d| !is_parent(d)).collect();
        self.progress.phase("diff", members.len());
        let rows = in_order(
            self.opts.concurrency,
            stream::iter(members).map(|d| async move {
                let ((mut change, _, live), warnings) = warnings::collect(self.plan_one(d)).await;
                change.warnings = warnings;
                let ready = match (&d.resolved, live) {
                    (None, _) => "kind not served".to_string(),
                    (Some(_), Ok(live)) => {
                        self.ready_line(d.kind(), d.namespace(), d.name(), live.as_deref()).await
                    }
                    (Some(_), Err(e)) => format!("error: {e}"),
                };
                self.progress.inc(&change.display_id());
                ObjectStatus { change, ready }
            }),
        )
        .await;
        self.progress.finish();
        Ok(rows)
    }

    /// Writes the parent (the union inventory) before any member. Its namespace is usually a
    /// member too, declared in the namespaces phase; when it does not exist yet it is created
    /// bare first (name and creation mark, no member label), so no member precedes the parent
    /// and the namespaces phase then applies it in full.
    /// Returns the parent's change and whether its namespace was created bare.
    async fn write_parent_first(&self, desired: &[Desired], parent: usize) -> (ObjectChange, bool) {
        let parent = &desired[parent];
        let mut created_bare = false;
        // The set's LIST of Namespaces already found it when it is a labelled member.
        let listed = desired.iter().any(|d| {
            d.kind() == "Namespace" && d.name() == self.parent.namespace && matches!(d.seen, Seen::Live(_))
        });
        if !self.opts.dry_run && !listed {
            match self.ensure_parent_namespace().await {
                Ok(created) => created_bare = created,
                Err(e) => {
                    let (mut change, _, _) = self.plan_one(parent).await;
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
}

impl Engine {
    /// The CRDs of custom resources in the set whose CRD is not (another tool installed it),
    /// read from the cluster once per kind, so the no-op proof knows their list types too. A
    /// CRD that cannot be read leaves its resources to the dry-run.
    async fn foreign_crds(&self, desired: &[Desired], known: &CrdSchemas, catalog: &Catalog) -> Vec<Value> {
        let Some(crd_resource) = catalog.resolve("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        else {
            return Vec::new();
        };
        let names: std::collections::BTreeSet<String> = desired
            .iter()
            .filter(|d| !is_parent(d) && !is_core_kind(d.s("/apiVersion"), d.kind()))
            .filter(|d| known.schema(d.s("/apiVersion"), d.kind()).is_none())
            .filter_map(|d| d.resolved.as_ref())
            .filter(|r| !r.resource.group.is_empty())
            .map(|r| format!("{}.{}", r.resource.plural, r.resource.group))
            .collect();
        let api = cluster::api_for(&self.client, &crd_resource, None);
        let read = in_order(
            self.opts.concurrency,
            stream::iter(names).map(|name| {
                let api = api.clone();
                async move { cluster::get(&api, &name, &format!("CustomResourceDefinition {name}")).await }
            }),
        )
        .await;
        read.into_iter().filter_map(|r| r.ok().flatten()).collect()
    }

    /// Where the no-op proof finds an object's list types.
    fn shapes<'a>(&'a self, obj: &Value) -> Shapes<'a> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        if is_core_kind(api_version, kind) {
            return Shapes::Builtin;
        }
        match self.crds.get().and_then(|c| c.schema(api_version, kind)) {
            Some(schema) => Shapes::Custom(schema),
            None => Shapes::Unknown,
        }
    }
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
