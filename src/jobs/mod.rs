//! Job spec files: TrainJobs and resumable custom trainer Jobs, loaded from the environment's
//! `components.trainer.jobs_dir` and checked against the environment.

pub mod spec;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::check::Checker;
use crate::env::model::{Environment, Quota};
use crate::env::terraform::Fetched;
use crate::env::validate::limits;
use crate::env::{self, names, quantity, Layered, LoadedEnv};
use crate::hpo::{self, Batch};
use crate::yaml::Pos;
use spec::{Framework, JobSpec};

/// A job spec with its scripts read in, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The spec as written.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Script file name -> content, for the `<tenant>-train-script` ConfigMap.
    pub script_contents: BTreeMap<String, String>,
    /// File the spec came from.
    #[serde(skip)]
    pub file: PathBuf,
    /// Where the spec wrote its name, for problems between jobs.
    #[serde(skip)]
    name_pos: Option<Pos>,
}

/// Environment variables the custom trainer contract sets itself; a job may not override them.
const CONTRACT_ENV: &[&str] = &[
    "JOB_ID",
    "CALLBACK_URL",
    "MODEL_NAME",
    "DATASET_S3_URI",
    "CONFIG",
    "EPOCHS",
    "BATCH_SIZE",
    "LEARNING_RATE",
    "IMGSZ",
    "DEVICE",
    "EXTERNAL_STORAGE_ENDPOINT",
    "EXTERNAL_BUCKET_DATASETS",
    "INTERNAL_STORAGE_ENDPOINT",
    "INTERNAL_BUCKET_CHECKPOINTS",
];

/// The directory the environment's job specs live in, if any.
pub fn jobs_dir(loaded: &LoadedEnv) -> Option<PathBuf> {
    let dir = loaded.env.components.trainer.jobs_dir.as_ref()?;
    Some(loaded.sources.base_dir("components.trainer.jobs_dir").join(dir))
}

/// What job specs are checked against: while any of it could not be read, job problems would
/// be guesses.
const CHECKED_AGAINST: &[&str] = &[
    "components.tenants",
    "components.trainer",
    "components.custom_jobs",
    "components.gpu",
    "components.hpo",
];

/// Loads the environment, its job specs and its trial batch specs, reporting the problems of
/// all at once: the spec files are still checked when the environment has problems, unless
/// something they are checked against could not be read. `outputs` are the Terraform outputs
/// read from the environment's [`Layered::outputs_source`].
pub fn load_with_env(
    layered: Layered,
    outputs: Option<Fetched>,
) -> Result<(LoadedEnv, Vec<Job>, Vec<Batch>), Diagnostics> {
    let env::Partial { loaded, mut problems, unreadable } = layered.load_partial(outputs)?;
    let Some(loaded) = loaded else { return Err(problems) };
    let guessing =
        unreadable.iter().any(|u| CHECKED_AGAINST.iter().any(|c| env::within(u, c) || env::within(c, u)));
    if guessing {
        problems.sort();
        return Err(problems);
    }
    let jobs = load(&loaded).map_err(|d| problems.0.extend(d.0));
    let batches = hpo::load(&loaded).map_err(|d| problems.0.extend(d.0));
    problems.into_result()?;
    Ok((
        loaded,
        jobs.expect("job problems are among the problems"),
        batches.expect("trial batch problems are among the problems"),
    ))
}

/// Loads and checks every `*.yaml`/`*.yml` in the jobs directory, in file name order.
pub fn load(loaded: &LoadedEnv) -> Result<Vec<Job>, Diagnostics> {
    let Some(dir) = jobs_dir(loaded) else { return Ok(Vec::new()) };
    let files = crate::env::spec_files(&loaded.sources, "components.trainer.jobs_dir", &dir, "job")?;
    load_files(loaded, &files)
}

/// Loads and checks the given job spec files.
pub fn load_files(loaded: &LoadedEnv, files: &[PathBuf]) -> Result<Vec<Job>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut jobs = Vec::new();
    for file in files {
        if let Some(job) = load_one(loaded, file, &mut diags) {
            jobs.push(job);
        }
    }
    check_across(&jobs, &mut diags);
    diags.into_result()?;
    Ok(jobs)
}

fn load_one(loaded: &LoadedEnv, file: &Path, diags: &mut Diagnostics) -> Option<Job> {
    let env::SpecFile { spec, sources, dropped, name_pos } = env::read_spec::<JobSpec>(file, diags)?;
    let mut c = Checker::new(&sources, &dropped);
    check_spec(loaded, &spec, &mut c);
    let script_contents = read_scripts(&spec, file, &mut c);
    diags.0.extend(c.finish().0);
    Some(Job { spec, script_contents, file: file.to_path_buf(), name_pos })
}

fn check_spec(loaded: &LoadedEnv, s: &JobSpec, jf: &mut Checker) {
    let env = &loaded.env;
    if let Err(m) = names::check_label(&s.name) {
        jf.err("name", m);
    } else if s.framework != Framework::Custom {
        // JobSet names pods `<name>-node-0-<index>-<5 chars>`, which must fit in 63 characters.
        if !s.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            jf.err("name", format!("{:?} must start with a letter (Kubeflow TrainJob names do)", s.name));
        } else if s.name.len() > limits::TRAINJOB_MAX_NAME {
            jf.err(
                "name",
                format!(
                    "{:?} is {} characters long; TrainJob names have at most {} so pod names fit in 63",
                    s.name,
                    s.name.len(),
                    limits::TRAINJOB_MAX_NAME
                ),
            );
        }
        if s.command.is_empty() {
            jf.err("command", "a TrainJob needs a command (e.g. [python, /workspace/scripts/train.py])");
        }
    }
    if !env.components.tenants.list.iter().any(|t| t.name == s.tenant) {
        let known: Vec<&str> = env.components.tenants.list.iter().map(|t| t.name.as_str()).collect();
        jf.err(
            "tenant",
            format!(
                "tenant {:?} is not declared in the environment (components.tenants.list: {})",
                s.tenant,
                known.join(", ")
            ),
        );
    }
    if s.num_nodes < 1 {
        jf.err("num_nodes", "0 is below the minimum of 1");
    } else if s.num_nodes > limits::JOB_MAX_NODES {
        jf.err("num_nodes", format!("{} is above the maximum of {}", s.num_nodes, limits::JOB_MAX_NODES));
    }
    for (name, rl) in [("cpu", &s.resources.cpu), ("memory", &s.resources.memory)] {
        jf.request_limit(&format!("resources.{name}"), rl);
    }
    let tenants = &env.components.tenants;
    let quota = tenants.list.iter().find(|t| t.name == s.tenant).map(|t| tenants.quota_of(t));
    // Totals of a node count already reported as out of range would only repeat that problem.
    if let Some(q) = quota.as_ref().filter(|_| (1..=limits::JOB_MAX_NODES).contains(&s.num_nodes)) {
        fits_quota(s, q, jf);
    }
    if let Some(g) = &s.resources.gpu {
        if g.request != g.limit {
            jf.err(
                "resources.gpu.request",
                format!(
                    "GPU request {} differs from limit {}; Kubernetes requires GPU requests to equal limits",
                    g.request, g.limit
                ),
            );
        }
        if g.limit > limits::GPUS_PER_NODE {
            jf.err(
                "resources.gpu.limit",
                format!("{} is above the maximum of {} GPUs per node", g.limit, limits::GPUS_PER_NODE),
            );
        }
        if g.limit > 0 && !env.components.gpu.enabled {
            jf.err(
                "resources.gpu",
                "the job asks for GPUs but the environment has no GPU pool (components.gpu.enabled is false)",
            );
        } else if g.limit > 0 && s.framework != Framework::Custom && !env.components.trainer.gpu_runtimes {
            jf.err("resources.gpu", "the job asks for GPUs but components.trainer.gpu_runtimes is false, so no runtime tolerates the GPU nodes");
        }
        if let Some(q) = quota.as_ref().map(|q| q.gpu) {
            if g.limit * s.num_nodes > q {
                jf.err(
                    "resources.gpu",
                    format!(
                        "the job needs {} GPUs in total but tenant {:?} has a GPU quota of {q}",
                        g.limit * s.num_nodes,
                        s.tenant
                    ),
                );
            }
        }
    }
    for key in s.env.keys() {
        if let Err(m) = names::check_env_var(key) {
            jf.err(&format!("env.{key}"), m);
        }
    }
    for (field, pvc) in
        [("volumes.dataset_pvc", &s.volumes.dataset_pvc), ("volumes.models_pvc", &s.volumes.models_pvc)]
    {
        if let Some(p) = pvc {
            if let Err(m) = names::check_subdomain(p) {
                jf.err(field, m);
            }
        }
    }
    match (s.framework, &s.custom) {
        (Framework::Custom, None) => {
            jf.err("framework", "framework custom needs a custom: block (job_id, model_name, dataset_s3_uri)")
        }
        (Framework::Custom, Some(c)) => {
            if s.image.is_none() {
                jf.err("image", "framework custom needs the trainer image");
            }
            if s.num_nodes != 1 {
                jf.err("num_nodes", "custom trainer Jobs run on exactly one node; use framework pytorch or tensorflow for multi-node");
            }
            if let Some(url) = &c.callback_url {
                jf.http_url(
                    "custom.callback_url",
                    url,
                    "http://trainstack-backend.trainstack-system.svc:8000/api/v1/callbacks",
                );
            }
            match (&c.dataset, &c.dataset_s3_uri) {
                (None, None) => jf.err(
                    "custom",
                    "the job needs its dataset: dataset (a path under the tenant's prefix of the datasets bucket) or dataset_s3_uri",
                ),
                (Some(_), Some(_)) => {
                    jf.err("custom.dataset", "set dataset or dataset_s3_uri, not both")
                }
                (Some(d), None) => {
                    if d.is_empty() || d.starts_with('/') || d.starts_with("s3://") || d.split('/').any(|p| p == "..") {
                        jf.err(
                            "custom.dataset",
                            format!("{d:?} is not a path under the tenant's dataset prefix (e.g. coco128)"),
                        );
                    }
                }
                (None, Some(uri)) if !uri.starts_with("s3://") => {
                    jf.err("custom.dataset_s3_uri", format!("{uri:?} is not an s3:// URI"))
                }
                (None, Some(uri)) => {
                    if let Err(m) = tenant_dataset(&loaded.env, &s.tenant, uri) {
                        jf.err("custom.dataset_s3_uri", m);
                    }
                }
            }
            if c.job_id.is_empty()
                || !c.job_id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                jf.err(
                    "custom.job_id",
                    format!(
                        "{:?} must be letters, digits, '-' or '_' (it names the checkpoint path)",
                        c.job_id
                    ),
                );
            }
            if c.config.as_ref().is_some_and(|v| !v.is_object()) {
                jf.err(
                    "custom.config",
                    "CONFIG must be a mapping (it is passed to the trainer as a JSON object)",
                );
            }
            if c.active_deadline_seconds == Some(0) {
                jf.err("custom.active_deadline_seconds", "0 is below the minimum of 1");
            }
            for key in s.env.keys() {
                if CONTRACT_ENV.contains(&key.as_str()) {
                    jf.err(
                        &format!("env.{key}"),
                        format!("{key} is set by the trainer contract; use the custom: block instead"),
                    );
                }
            }
            if !env.components.custom_jobs.enabled {
                jf.err(
                    "framework",
                    "custom trainer Jobs are disabled in this environment (components.custom_jobs.enabled)",
                );
            }
        }
        (_, Some(_)) => jf.err("custom", "only framework custom takes a custom: block"),
        (_, None) => {
            if !env.components.trainer.enabled {
                jf.err(
                    "framework",
                    "Kubeflow Trainer is disabled in this environment (components.trainer.enabled)",
                );
            }
        }
    }
}

/// A job whose nodes together need more CPU or memory than the tenant's ResourceQuota allows
/// renders fine and then never gets all its pods admitted: refuse it here, as for GPUs. The
/// quota caps requests and limits at the same amount, so each is checked.
fn fits_quota(s: &JobSpec, quota: &Quota, jf: &mut Checker) {
    let nodes = s.num_nodes;
    for (name, rl, max) in
        [("cpu", &s.resources.cpu, &quota.cpu), ("memory", &s.resources.memory, &quota.memory)]
    {
        let Ok(max_value) = quantity::parse(max.as_str()) else { continue };
        for (which, q) in [("request", &rl.request), ("limit", &rl.limit)] {
            let Ok(each) = quantity::parse(q.as_str()) else { continue };
            // A relative margin keeps decimal suffixes (0.1 × 3) from tripping on rounding.
            if each * f64::from(nodes) > max_value * (1.0 + 1e-9) {
                jf.err(
                    &format!("resources.{name}.{which}"),
                    format!(
                        "{nodes} node(s) × {name} {which} {q} is more than tenant {:?}'s quota.{name} of {max} (ResourceQuota {which}s.{name}): the pods would never all start; lower num_nodes or the {which}, or raise the tenant's quota",
                        s.tenant
                    ),
                );
                break;
            }
        }
    }
}

fn read_scripts(s: &JobSpec, file: &Path, jf: &mut Checker) -> BTreeMap<String, String> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for (name, src) in &s.scripts {
        let field = format!("scripts.{name}");
        if let Err(m) = names::check_config_key(name) {
            jf.err(&field, m);
            continue;
        }
        let content = match (&src.file, &src.content) {
            (Some(f), None) => match std::fs::read_to_string(base.join(f)) {
                Ok(c) => c,
                Err(e) => {
                    jf.err(&format!("{field}.file"), format!("cannot read {}: {e}", base.join(f).display()));
                    continue;
                }
            },
            (None, Some(c)) => c.clone(),
            _ => {
                jf.err(&field, "give exactly one of file or content");
                continue;
            }
        };
        out.insert(name.clone(), content);
    }
    out
}

/// Checks that need all jobs: unique names per tenant and one script per ConfigMap key.
fn check_across(jobs: &[Job], diags: &mut Diagnostics) {
    let mut names: BTreeMap<(&str, &str), &Job> = BTreeMap::new();
    let mut scripts: BTreeMap<(&str, &str), (&str, &Job)> = BTreeMap::new();
    for job in jobs {
        let shown = job.file.display().to_string();
        match names.entry((job.spec.tenant.as_str(), job.spec.name.as_str())) {
            Entry::Occupied(first) => {
                let first = first.get();
                let at = first.name_pos.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default();
                diags.push(Diagnostic {
                    file: shown.clone(),
                    pos: job.name_pos,
                    field: "name".into(),
                    message: format!(
                        "job {:?} is declared twice for tenant {:?}: first in {}{at}; rename one of them",
                        job.spec.name,
                        job.spec.tenant,
                        first.file.display()
                    ),
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(job);
            }
        }
        for (key, content) in &job.script_contents {
            let k = (job.spec.tenant.as_str(), key.as_str());
            match scripts.get(&k) {
                Some((other, other_job)) if *other != content.as_str() => diags.push(Diagnostic {
                    file: shown.clone(),
                    pos: None,
                    field: format!("scripts.{key}"),
                    message: format!(
                        "script {key:?} differs from the one job {:?} puts in the same ConfigMap {}-train-script; rename one of them",
                        other_job.spec.name, job.spec.tenant
                    ),
                }),
                Some(_) => {}
                None => {
                    scripts.insert(k, (content.as_str(), job));
                }
            }
        }
    }
}

/// A tenant's datasets live under `<tenant>/` of the datasets bucket: the prefix its AWS identity
/// may read on EKS (docs/eks.md, "Tenant identity"). With `aws.pod_identity` that identity reads
/// nothing else, so another bucket is refused too.
fn tenant_dataset(env: &Environment, tenant: &str, uri: &str) -> Result<(), String> {
    let bucket = &env.components.custom_jobs.storage.datasets_bucket;
    let (in_bucket, key) = uri.trim_start_matches("s3://").split_once('/').unwrap_or((uri, ""));
    let own = format!("s3://{bucket}/{tenant}/");
    let scoped = env.aws.as_ref().is_some_and(|a| a.pod_identity.is_some());
    match (in_bucket == bucket, key.strip_prefix(tenant).is_some_and(|k| k.starts_with('/') && k.len() > 1)) {
        (true, true) => Ok(()),
        (true, false) => Err(format!(
            "{uri:?} is outside tenant {tenant:?}'s prefix of the datasets bucket; use {own}<dataset>"
        )),
        (false, _) if scoped => Err(format!(
            "{uri:?} is not in the datasets bucket, which is all tenant {tenant:?}'s AWS identity (aws.pod_identity) may read; use {own}<dataset>"
        )),
        (false, _) => Ok(()),
    }
}
