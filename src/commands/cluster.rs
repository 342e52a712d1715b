//! `diff`, `apply`, `delete` and `status`: the engine driven from the command line.

use std::process::ExitCode;
use std::sync::Arc;

use crate::aws::change::Resource;
use crate::aws::nodegroups::{self, Waits};
use crate::aws::podidentity;
use crate::aws::reconcile::{self, AwsOptions, AwsReport, Reconciler};
use crate::aws::{s3, Aws};
use crate::connect::{self, ConnectOptions};
use crate::engine::plan::Action;
use crate::engine::ready::ClusterFacts;
use crate::engine::run::{Engine, ObjectStatus, Options, Report};
use crate::env::model::{Environment, GpuProvider, TargetKind};
use crate::output;
use crate::output::progress::Bars;
use crate::output::report::plural;
use crate::output::status::Row;
use crate::settings::{ApplySettings, ConnectionSettings, DeleteSettings, DiffSettings, StatusSettings};
use crate::Error;

use super::Prepared;

fn options(concurrency: usize) -> Options {
    Options { concurrency, ..Options::default() }
}

async fn engine(
    connection: &ConnectionSettings,
    prepared: &Prepared,
    opts: Options,
    aws: Option<&Aws>,
    verbose: bool,
) -> Result<Engine, Error> {
    let env = &prepared.loaded.env;
    let connect =
        ConnectOptions { concurrency: opts.concurrency, ..connection.connect_options(aws.cloned()) };
    let client = crate::connect::connect(&connect, env).await?;
    let progress = Arc::new(Bars::new(verbose));
    Ok(Engine::new(client, &env.name, &env.platform_namespace, facts(env), opts, progress))
}

/// What readiness means on the environment's cluster.
pub(super) fn facts(env: &Environment) -> ClusterFacts {
    let gpu = &env.components.gpu;
    ClusterFacts {
        // kind workers only stand in for GPU pools; they never run the device plugin. Managed
        // node groups declared to scale from zero have no GPU node until something scales them.
        expects_gpu_nodes: gpu.enabled
            && env.target.kind == TargetKind::Eks
            && gpu.provider != GpuProvider::Kind
            && (gpu.provider != GpuProvider::ManagedNodeGroups
                || gpu.pools.iter().any(|p| p.min_size > 0 || p.desired_size > 0)),
    }
}

/// The AWS configuration when the environment has an AWS side (see [`reconcile::applies_to`]).
/// Managed node group pools without their placement are an input error here, before anything
/// is written: rendering does not need the placement, reconciling does.
async fn load_aws(prepared: &Prepared) -> Result<Option<Aws>, Error> {
    let env = &prepared.loaded.env;
    if reconcile::declares_node_groups(env) && env.components.gpu.node_groups.is_none() {
        let d = prepared.loaded.sources.error(
            "components.gpu.pools",
            "managed node group pools need components.gpu.node_groups.node_role_arn and subnet_ids to be created (e.g. ${terraform.node_role_arn} and ${terraform.private_subnet_ids})",
        );
        return Err(crate::diag::Diagnostics::from(d).into());
    }
    if !reconcile::applies_to(env) {
        return Ok(None);
    }
    Ok(Some(Aws::load(env.target.region.as_deref().unwrap_or_default()).await))
}

fn reconciler<'a>(
    prepared: &'a Prepared,
    aws: &Aws,
    opts: AwsOptions,
    verbose: bool,
) -> Reconciler<'a, nodegroups::Eks, s3::S3, podidentity::PodIdentity> {
    let progress = Arc::new(Bars::new(verbose));
    let env = &prepared.loaded.env;
    let identities = podidentity::PodIdentity::new(aws);
    Reconciler::new(env, nodegroups::Eks::new(aws), s3::S3::new(aws), identities, opts, progress)
}

fn aws_options(concurrency: usize, dry_run: bool, node_group_timeout: std::time::Duration) -> AwsOptions {
    AwsOptions {
        dry_run,
        waits: Waits { timeout: node_group_timeout, interval: std::time::Duration::from_secs(15) },
        concurrency,
    }
}

/// `diff`: exit 0 in sync, 2 with changes, 1 on error.
pub async fn diff(args: &DiffSettings) -> Result<ExitCode, Error> {
    let prepared = super::prepare(&args.prepare).await?;
    let opts = Options {
        show_secrets: args.show_secrets,
        force_conflicts: args.force_conflicts,
        warnings_as_errors: args.warnings_as_errors,
        server_dry_run_all: args.server_dry_run_all,
        ..options(args.concurrency)
    };
    let verbose = args.reporting.verbose;
    let aws = load_aws(&prepared).await?;
    let engine = engine(&args.connection, &prepared, opts, aws.as_ref(), args.reporting.verbose).await?;
    let set = super::secrets::with_secret_data(&prepared).await?;
    let report = engine.diff(&set).await?;
    let aws_report = match &aws {
        Some(aws) => {
            let opts = aws_options(args.concurrency, true, std::time::Duration::ZERO);
            Some(reconciler(&prepared, aws, opts, verbose).diff().await?)
        }
        None => None,
    };
    output::report::print(args.reporting.format, &report, aws_report.as_ref(), "diff", verbose)?;
    let aws_failed = aws_report.as_ref().is_some_and(AwsReport::failed);
    let aws_changes = aws_report.as_ref().is_some_and(AwsReport::has_changes);
    let refused = args.warnings_as_errors && report.summary.warnings > 0;
    if refused {
        eprintln!(
            "error: the API server sent {} (--warnings-as-errors)",
            plural(report.summary.warnings, "warning")
        );
    }
    Ok(if report.summary.failed > 0 || aws_failed || refused {
        ExitCode::from(1)
    } else if report.has_changes() || aws_changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `apply`: exit 0 when everything applied (and was ready), 1 otherwise. On eks the AWS side
/// goes first (buckets, node groups), once the Kubernetes set is known to resolve; node group
/// prune runs last, after everything else succeeded.
pub async fn apply(args: &ApplySettings) -> Result<ExitCode, Error> {
    apply_prepared(args, &super::prepare(&args.prepare).await?).await
}

/// `apply` of a rendered set (`up` hands over the one it prepared).
pub async fn apply_prepared(args: &ApplySettings, prepared: &Prepared) -> Result<ExitCode, Error> {
    let opts = Options {
        force_conflicts: args.force_conflicts,
        dry_run: args.dry_run,
        prune: args.prune,
        prune_namespaces: args.prune_namespaces,
        prune_crds: args.prune_crds,
        wait: args.wait,
        wait_complete: args.wait_jobs,
        timeout: args.timeout,
        warnings_as_errors: args.warnings_as_errors,
        server_dry_run_all: args.server_dry_run_all,
        ..options(args.concurrency)
    };
    let verb = if args.dry_run { "apply --dry-run" } else { "apply" };
    let verbose = args.reporting.verbose;
    let format = args.reporting.format;
    let aws = load_aws(prepared).await?;
    let engine = engine(&args.connection, prepared, opts, aws.as_ref(), args.reporting.verbose).await?;
    // Read before anything is written: a missing secret stops the apply here.
    let set = super::secrets::with_secret_data(prepared).await?;
    // Resolved once: the AWS side waits for it, and the apply below writes what it resolved.
    let checked = engine.check(&set).await?;
    let mut aws_report = None;
    if let Some(aws) = &aws {
        let r = reconciler(
            prepared,
            aws,
            aws_options(args.concurrency, args.dry_run, args.node_group_timeout),
            verbose,
        )
        .apply()
        .await?;
        if r.failed() {
            output::report::print(format, &Report::default(), Some(&r), verb, verbose)?;
            return Ok(ExitCode::from(1));
        }
        aws_report = Some(r);
    }
    let report = tokio::select! {
        report = engine.apply_checked(checked) => report?,
        _ = tokio::signal::ctrl_c() => return Ok(interrupted(&engine, "apply")),
    };
    if let (Some(aws), Some(r)) = (&aws, aws_report.as_mut()) {
        if args.prune && !report.failed() {
            let opts = aws_options(args.concurrency, args.dry_run, args.node_group_timeout);
            r.extend(reconciler(prepared, aws, opts, verbose).prune().await?);
        }
    }
    output::report::print(format, &report, aws_report.as_ref(), verb, verbose)?;
    let failed = report.failed() || aws_report.as_ref().is_some_and(AwsReport::failed);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Ctrl-C during `apply` or `delete`: what was written so far, and that running the same
/// command again finishes it (server-side apply and delete are idempotent, and the ApplySet
/// parent, written first, lists every member). Exit code 130, as for a process killed by SIGINT.
fn interrupted(engine: &Engine, verb: &str) -> ExitCode {
    const SHOWN: usize = 20;
    let written = engine.written_so_far();
    let mut t = format!("\ninterrupted: {verb} stopped after {} writes\n", written.len());
    for line in written.iter().take(SHOWN) {
        t.push_str(&format!("  {line}\n"));
    }
    if written.len() > SHOWN {
        t.push_str(&format!("  ... and {} more\n", written.len() - SHOWN));
    }
    t.push_str(&match verb {
        "apply" => "run the same apply again to finish it: it writes only what still differs (and the ApplySet parent lists every object written, so apply --prune with the previous environment removes them instead)\n".to_string(),
        _ => "run the same delete again to finish it\n".to_string(),
    });
    eprint!("{t}");
    ExitCode::from(130)
}

/// `delete`: asks first on a terminal; refuses without `--yes` elsewhere. On eks, once every
/// Kubernetes object is gone, the node groups this environment created are deleted too (they
/// keep the cluster and its subnets in use); buckets are never deleted, only listed.
pub async fn delete(args: &DeleteSettings) -> Result<ExitCode, Error> {
    delete_prepared(args, &super::prepare(&args.prepare).await?).await
}

/// `delete` of a rendered set (`down` hands over the one it prepared).
pub async fn delete_prepared(args: &DeleteSettings, prepared: &Prepared) -> Result<ExitCode, Error> {
    let env = &prepared.loaded.env;
    let verbose = args.reporting.verbose;
    let aws = match reconcile::applies_to(env) || reconcile::declares_node_groups(env) {
        true => Some(Aws::load(env.target.region.as_deref().unwrap_or_default()).await),
        false => None,
    };
    let aws_opts = AwsOptions {
        dry_run: args.dry_run,
        waits: Waits { timeout: args.node_group_timeout, interval: std::time::Duration::from_secs(15) },
        concurrency: args.concurrency,
    };
    let teardown = match &aws {
        Some(aws) => Some(reconciler(prepared, aws, aws_opts, verbose).teardown_plan().await?),
        None => None,
    };
    if !args.yes && !args.dry_run {
        let cluster = if connect::uses_eks_api(&args.connection.connect_options(None), env) {
            format!("EKS cluster {}", env.target.cluster_name)
        } else {
            let context = args.connection.context.clone().or_else(|| connect::default_context(env));
            format!("context {}", context.as_deref().unwrap_or("current"))
        };
        let groups: Vec<&str> =
            teardown.iter().flat_map(|t| &t.groups).map(|g| g.change.name.as_str()).collect();
        let associations = teardown.iter().map(|t| t.associations.len()).sum();
        let prompt = delete_prompt(prepared.set.len(), &env.name, &cluster, &groups, associations);
        if !super::confirm(&format!("delete environment {:?}", env.name), &prompt, &env.name)? {
            eprintln!("not confirmed; nothing was deleted");
            return Ok(ExitCode::from(1));
        }
    }
    let opts = Options { dry_run: args.dry_run, timeout: args.timeout, ..options(args.concurrency) };
    let engine = engine(&args.connection, prepared, opts, aws.as_ref(), args.reporting.verbose).await?;
    let report = tokio::select! {
        report = engine.delete(&prepared.set) => report?,
        _ = tokio::signal::ctrl_c() => return Ok(interrupted(&engine, "delete")),
    };
    let aws_report = match (&aws, teardown) {
        (Some(_), Some(t)) if args.dry_run => Some(t.report()),
        // Node groups stay while any object is left: its pods may still run on them.
        (Some(_), Some(t)) if report.failed() => {
            let left = t.groups.iter().map(|g| g.change.name.as_str()).collect::<Vec<_>>();
            if !left.is_empty() {
                eprintln!(
                    "EKS node groups {} were not deleted: some Kubernetes objects could not be deleted",
                    left.join(", ")
                );
            }
            None
        }
        (Some(aws), Some(t)) => Some(reconciler(prepared, aws, aws_opts, verbose).teardown(t).await),
        _ => None,
    };
    let verb = if args.dry_run { "delete --dry-run" } else { "delete" };
    output::report::print(args.reporting.format, &report, aws_report.as_ref(), verb, verbose)?;
    let failed = report.failed() || aws_report.as_ref().is_some_and(AwsReport::failed);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The question `delete` asks on a terminal, naming the node groups and counting the tenants'
/// pod identity associations it deletes too. `cluster` is `context NAME` or `EKS cluster NAME`.
fn delete_prompt(objects: usize, env: &str, cluster: &str, groups: &[&str], associations: usize) -> String {
    let and_groups = match groups {
        [] => String::new(),
        [one] => format!(", then the EKS node group it created ({one})"),
        _ => format!(", then the {} EKS node groups it created ({})", groups.len(), groups.join(", ")),
    };
    let and_associations = match associations {
        0 => String::new(),
        1 => ", and the tenant pod identity association it created".to_string(),
        n => format!(", and the {n} tenant pod identity associations it created"),
    };
    format!(
        "Delete all {objects} objects of environment {env:?} ({cluster}){and_groups}{and_associations}? Type the environment name to confirm:"
    )
}

/// `status`: drift and readiness per component (on eks also of the node groups and buckets);
/// exit 0 when all in sync and ready, 2 otherwise.
pub async fn status(args: &StatusSettings) -> Result<ExitCode, Error> {
    let prepared = super::prepare(&args.prepare).await?;
    let aws = load_aws(&prepared).await?;
    let opts = options(args.concurrency);
    let engine = engine(&args.connection, &prepared, opts, aws.as_ref(), args.reporting.verbose).await?;
    let set = super::secrets::with_secret_data(&prepared).await?;
    let objects = engine.status(&set).await?;
    let mut rows = Vec::new();
    if let Some(aws) = &aws {
        let opts = aws_options(args.concurrency, true, std::time::Duration::ZERO);
        for s in reconciler(&prepared, aws, opts, args.reporting.verbose).status().await? {
            let (component, object) = match s.resource {
                Resource::NodeGroup => ("gpu", format!("EKS node group {}", s.name)),
                Resource::Bucket => ("s3", format!("S3 bucket {}", s.name)),
                Resource::PodIdentityAssociation => {
                    ("tenants", format!("EKS pod identity association {}", s.name))
                }
            };
            rows.push(Row {
                component: component.into(),
                object,
                state: s.state,
                ready: s.ready,
                details: s.details,
            });
        }
    }
    for (m, ObjectStatus { change: c, ready }) in set.iter().zip(objects) {
        let state = match &c {
            c if c.error.is_some() => "error",
            c if c.action == Action::Create => "missing",
            c if c.action == Action::Update => "drifted",
            _ => "in sync",
        };
        let component = match &m.origin {
            crate::manifest::Origin::Template { component, .. } => component.clone(),
            crate::manifest::Origin::Addon { name } => format!("addon:{name}"),
        };
        // An error says why (RBAC, an unreachable server, ...); a conflict names the fields and
        // the manager that owns them; in the table and JSON.
        let conflicts = c.conflict.as_ref().map(|conflict| {
            conflict.fields.iter().map(|f| format!("{}: conflict with {}", f.field, f.manager)).collect()
        });
        let errors = c.error.as_deref().map(|e| e.lines().map(str::to_string).collect());
        let details = conflicts.or(errors).unwrap_or_default();
        rows.push(Row { component, object: m.id(), state, ready, details });
    }
    let healthy = rows.iter().all(|r| r.state == "in sync" && r.ready == "ready");
    output::status::print(args.reporting.format, &rows)?;
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// The JSON/YAML shape: the Kubernetes report, plus `aws` on eks targets.
#[cfg(test)]
mod tests {
    use super::delete_prompt;

    #[test]
    fn the_delete_prompt_names_the_node_groups_it_deletes() {
        assert_eq!(
            delete_prompt(52, "eks-dev", "context kind-dev", &[], 0),
            "Delete all 52 objects of environment \"eks-dev\" (context kind-dev)? Type the environment name to confirm:"
        );
        assert_eq!(
            delete_prompt(52, "eks-dev", "EKS cluster trainstack-dev", &["gpu-p3"], 0),
            "Delete all 52 objects of environment \"eks-dev\" (EKS cluster trainstack-dev), then the EKS node group it created (gpu-p3)? Type the environment name to confirm:"
        );
        assert!(delete_prompt(1, "e", "c", &["a", "b"], 0)
            .contains(", then the 2 EKS node groups it created (a, b)?"));
        assert!(delete_prompt(1, "e", "c", &["a"], 2).ends_with(
            ", then the EKS node group it created (a), and the 2 tenant pod identity associations it created? Type the environment name to confirm:"
        ));
    }
}
