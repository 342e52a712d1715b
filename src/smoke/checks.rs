//! The checks by name, which of them apply to an environment, and the order they run in.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

use crate::env::model::{Environment, GpuProvider, TargetKind};

use super::{Context, Outcome, Record};

/// One smoke check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// API reachable, server version supported.
    Cluster,
    /// Every rendered object exists, is ready and has not drifted.
    Objects,
    /// The SubjectAccessReview matrix of the backend and tenant ServiceAccounts.
    Rbac,
    /// GPU nodes, the device plugin and an `nvidia-smi` pod (EKS).
    Gpu,
    /// ClusterTrainingRuntimes and a tiny TrainJob reaching `Complete`.
    Trainer,
    /// MLflow `/health` and a REST round trip through the service proxy.
    Mlflow,
    /// The Ray dashboard and a tiny job through the Ray Jobs API.
    Ray,
    /// A tiny Optuna study in an HPO workspace: trials, pod names, notes, an artifact.
    Hpo,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 8] = [
        Check::Cluster,
        Check::Objects,
        Check::Rbac,
        Check::Gpu,
        Check::Trainer,
        Check::Mlflow,
        Check::Ray,
        Check::Hpo,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Check::Cluster => "cluster",
            Check::Objects => "objects",
            Check::Rbac => "rbac",
            Check::Gpu => "gpu",
            Check::Trainer => "trainer",
            Check::Mlflow => "mlflow",
            Check::Ray => "ray",
            Check::Hpo => "hpo",
        }
    }

    /// Every name, for `--only`/`--skip` validation.
    pub fn names() -> Vec<&'static str> {
        Check::ALL.iter().map(|c| c.name()).collect()
    }

    /// Why the check does not apply to `env`, or `None` when it does.
    pub fn not_applicable(self, env: &Environment) -> Option<String> {
        let c = &env.components;
        match self {
            Check::Cluster | Check::Objects => None,
            Check::Rbac if !c.tenants.enabled => Some("components.tenants.enabled is false".into()),
            Check::Rbac if c.tenants.list.is_empty() => Some("the environment declares no tenants".into()),
            Check::Rbac => None,
            Check::Gpu if !c.gpu.enabled || c.gpu.pools.is_empty() => {
                Some("the environment has no GPU pools (components.gpu)".into())
            }
            Check::Gpu if env.target.kind == TargetKind::Kind || c.gpu.provider == GpuProvider::Kind => Some(
                "kind has no GPUs: its GPU pool workers only carry the labels and taints, and no device plugin runs"
                    .into(),
            ),
            Check::Gpu => None,
            Check::Trainer if !c.trainer.enabled => Some("components.trainer.enabled is false".into()),
            Check::Trainer => None,
            Check::Mlflow if !c.mlflow.enabled => Some("components.mlflow.enabled is false".into()),
            Check::Mlflow => None,
            Check::Ray if !c.ray.enabled => Some("components.ray.enabled is false".into()),
            Check::Ray => None,
            Check::Hpo => super::hpo::not_applicable(env),
        }
    }

    /// Whether the check creates objects in the smoke namespace.
    pub fn needs_namespace(self) -> bool {
        matches!(self, Check::Gpu | Check::Trainer)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Check {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Check::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown check {s:?}; the checks are {}", Check::names().join(", ")))
    }
}

/// Which checks `--only` and `--skip` leave to run: every check with `None`, or with the reason
/// it is left out.
pub fn select(only: &[Check], skip: &[Check]) -> Vec<(Check, Option<String>)> {
    Check::ALL
        .into_iter()
        .map(|c| {
            let why = if !only.is_empty() && !only.contains(&c) {
                Some("not selected by --only".to_string())
            } else if skip.contains(&c) {
                Some("left out by --skip".to_string())
            } else {
                None
            };
            (c, why)
        })
        .collect()
}

/// Runs one check.
pub async fn run(ctx: &Context, check: Check, rec: &Record) -> Outcome {
    match check {
        Check::Cluster => super::cluster::run(ctx, rec).await.outcome,
        Check::Objects => super::objects::run(ctx, rec).await,
        Check::Rbac => super::rbac::run(ctx, rec).await,
        Check::Gpu => super::gpu::run(ctx, rec).await,
        Check::Trainer => super::trainer::run(ctx, rec).await,
        Check::Mlflow => super::services::run_mlflow(ctx, rec).await,
        Check::Ray => super::services::run_ray(ctx, rec).await,
        Check::Hpo => super::hpo::run(ctx, rec).await,
    }
}

/// Runs the selected checks: `cluster` first (when it finds the API unreachable the others are
/// skipped), then the smoke namespace for the checks that need it, then the rest concurrently.
/// Progress goes to stderr, one line per finished check. Cleanup is the caller's, so that it
/// also happens when this future is dropped on an interrupt.
pub async fn run_all(ctx: &Context, selection: &[(Check, Option<String>)]) -> Vec<super::CheckResult> {
    let skipped = |check, why: String| super::CheckResult {
        check,
        outcome: Outcome::skipped(why),
        duration: Default::default(),
        steps: Vec::new(),
        logs: String::new(),
    };
    let mut results = Vec::new();
    let mut to_run = Vec::new();
    for (check, why) in selection {
        match why.clone().or_else(|| check.not_applicable(&ctx.env)) {
            Some(why) => results.push(skipped(*check, why)),
            None => to_run.push(*check),
        }
    }
    if to_run.is_empty() {
        return results;
    }
    eprintln!(
        "smoke: running {} (run {}, timeout {:?} each)",
        to_run.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
        ctx.run_id,
        ctx.timeout
    );
    let report = |r: &super::CheckResult| {
        eprintln!("smoke: {} {} ({:.1}s)", r.check, r.outcome.label(), r.duration.as_secs_f64());
    };

    if to_run.first() == Some(&Check::Cluster) {
        to_run.remove(0);
        let start = Instant::now();
        let rec = Record::default();
        let cluster = super::cluster::run(ctx, &rec).await;
        let (steps, logs) = rec.take();
        let r = super::CheckResult {
            check: Check::Cluster,
            outcome: cluster.outcome,
            duration: start.elapsed(),
            steps,
            logs,
        };
        report(&r);
        results.push(r);
        if !cluster.reachable {
            results.extend(to_run.drain(..).map(|c| skipped(c, "the cluster API is unreachable".into())));
        }
    }

    let mut namespace_error = None;
    if to_run.iter().any(|c| c.needs_namespace()) {
        if let Err(e) = super::namespace::ensure(ctx).await {
            namespace_error = Some(e.to_string());
        }
    }
    let namespace_error = &namespace_error;
    let rest = to_run.iter().map(|&check| async move {
        let r = match namespace_error {
            Some(e) if check.needs_namespace() => super::CheckResult {
                check,
                outcome: Outcome::failed(
                    format!("cannot prepare the smoke namespace: {e}"),
                    format!(
                        "the smoke run needs to create namespace {} and objects in it",
                        super::SMOKE_NAMESPACE
                    ),
                ),
                duration: Default::default(),
                steps: Vec::new(),
                logs: String::new(),
            },
            _ => super::run_check(ctx, check).await,
        };
        report(&r);
        r
    });
    // At most one future per check, so joining them all is bounded.
    results.extend(futures::future::join_all(rest).await);
    results.sort_by_key(|r| r.check);
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for c in Check::ALL {
            assert_eq!(c.name().parse::<Check>(), Ok(c));
        }
        let err = "gpus".parse::<Check>().unwrap_err();
        assert!(err.contains("unknown check \"gpus\""), "{err}");
        assert!(err.contains("cluster, objects, rbac, gpu, trainer, mlflow, ray, hpo"), "{err}");
    }

    #[test]
    fn only_and_skip_say_why_a_check_is_left_out() {
        let sel = select(&[Check::Rbac, Check::Trainer], &[]);
        let left: Vec<_> = sel.iter().filter(|(_, w)| w.is_none()).map(|(c, _)| *c).collect();
        assert_eq!(left, [Check::Rbac, Check::Trainer]);
        assert_eq!(sel[0].1.as_deref(), Some("not selected by --only"));
        let sel = select(&[], &[Check::Gpu]);
        assert_eq!(sel.iter().filter(|(_, w)| w.is_none()).count(), Check::ALL.len() - 1);
        assert_eq!(sel[3].1.as_deref(), Some("left out by --skip"));
    }
}
