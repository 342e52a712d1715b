//! Optuna trial batches: spec files loaded from the environment's `components.hpo.batches_dir`
//! (or named by `hpo run`), checked against the environment and resolved into what the batch
//! templates render: ConfigMap data, pull Secret and one Indexed Job per GPU placement.

pub mod compat;
pub mod spec;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Serialize, Serializer};

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::check::Checker;
use crate::env::model::{Environment, Taint};
use crate::env::{names, quantity, LoadedEnv};
use crate::yaml::Pos;
use spec::{Amount, BatchSpec, Direction, GpuModel, ImagePull};

/// The trial runner every trial pod starts, shipped in the batch's ConfigMap.
pub const RUNNER: &str = include_str!("../../hpo/runner.py");

/// Where the batch's ConfigMap is mounted in trial pods.
pub const CONFIG_DIR: &str = "/etc/trainstack/hpo";
/// Where the workspace's artifact store is mounted in trial pods.
pub const ARTIFACTS_DIR: &str = "/artifacts";
/// The seed's default image of CPU trials.
pub const DEFAULT_CPU_IMAGE: &str = "ghcr.io/astral-sh/uv:python3.8-bookworm-slim";
/// The seed's default image of GPU trials.
pub const DEFAULT_GPU_IMAGE: &str = "pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime";
/// GPUs one trial may ask for.
pub const MAX_GPUS: u32 = 4;
/// Trials in one batch: Kubernetes caps an Indexed Job with `backoffLimitPerIndex` at 100000
/// completions.
pub const MAX_TRIALS: u32 = 100_000;
/// What a ConfigMap may hold (the API server refuses larger objects).
pub const CONFIGMAP_MAX_BYTES: usize = 1024 * 1024;
/// Bounds of `dev_shm_size` and `tmp_cache_size`, as the seed sets them.
const SCRATCH_MIN: &str = "500Mi";
const SCRATCH_MAX: &str = "4Gi";

/// Optuna samplers and pruners the runner can build by name.
const SAMPLERS: &[&str] = &[
    "TPESampler",
    "RandomSampler",
    "CmaEsSampler",
    "GPSampler",
    "NSGAIISampler",
    "NSGAIIISampler",
    "QMCSampler",
    "GridSampler",
    "BruteForceSampler",
];
const PRUNERS: &[&str] = &[
    "MedianPruner",
    "NopPruner",
    "PercentilePruner",
    "SuccessiveHalvingPruner",
    "HyperbandPruner",
    "ThresholdPruner",
    "PatientPruner",
    "WilcoxonPruner",
];

/// A trial batch, checked and with every default filled in: what the templates render.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    /// Batch name: `hpo-<name>` names its objects.
    pub name: String,
    /// Tenant, and so the namespace.
    pub tenant: String,
    /// Optuna study name.
    pub study: String,
    /// Trial image.
    pub image: String,
    /// Whether trials run on GPU nodes.
    pub use_gpu: bool,
    /// Resources of each trial pod.
    pub resources: TrialResources,
    /// One Indexed Job per GPU placement.
    pub jobs: Vec<TrialJob>,
    /// ConfigMap `hpo-<name>` data: `objective.py`, `requirements.txt`, `runner.py`, `batch.json`.
    pub config: BTreeMap<String, String>,
    /// The `kubernetes.io/dockerconfigjson` Secret `hpo-<name>-pull`, when rendered.
    pub pull_secret: Option<PullSecret>,
    /// The Secret trial pods pull with (rendered or existing).
    pub image_pull_secret: Option<String>,
    /// `/dev/shm` size (GPU trials).
    pub dev_shm_size: Option<String>,
    /// The scratch emptyDir.
    pub tmp_cache: TmpCache,
    /// Mount path of the workspace's shared cache.
    pub shared_cache_dir: String,
    /// `TRAINSTACK_HPO_STORAGE`: host:port of the workspace's gRPC storage server.
    pub storage: String,
    /// File the spec came from.
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    name_pos: Option<Pos>,
}

/// Resources of one trial pod.
#[derive(Debug, Clone, Serialize)]
pub struct TrialResources {
    /// CPU request.
    pub cpu_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// GPUs (request = limit); 0 for CPU trials.
    pub gpus: u32,
}

/// One Indexed Job of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrialJob {
    /// Job name.
    pub name: String,
    /// Trials (indexes) of this Job.
    pub completions: u32,
    /// Its share of the batch's parallelism.
    pub parallelism: u32,
    /// The GPU pool its trials are pinned to; None: any GPU node (or a CPU node).
    pub gpu_model: Option<String>,
    /// Taints of that pool besides the standard GPU taint, tolerated by its pods.
    pub tolerations: Vec<Taint>,
}

/// The scratch emptyDir of each trial pod.
#[derive(Debug, Clone, Serialize)]
pub struct TmpCache {
    /// Mount path.
    pub dir: String,
    /// Size limit.
    pub size: String,
    /// tmpfs instead of node disk.
    pub memory: bool,
}

/// A rendered pull Secret; its value never reaches `Debug` output.
#[derive(Clone, Serialize)]
pub struct PullSecret {
    /// Secret name.
    pub name: String,
    /// Base64 of the docker config JSON (the Secret's `.dockerconfigjson`).
    #[serde(serialize_with = "plain")]
    pub data: Hidden,
}

/// A credential: serialised for the template, shown nowhere else.
#[derive(Clone)]
pub struct Hidden(String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullSecret").field("name", &self.name).field("data", &self.data).finish()
    }
}

fn plain<S: Serializer>(h: &Hidden, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.0)
}

/// `batch.json`, the runner's input (the trial pod contract).
#[derive(Serialize)]
struct BatchJson<'a> {
    batch: &'a str,
    study: &'a str,
    directions: Vec<Direction>,
    sampler: &'a spec::Algorithm,
    pruner: &'a spec::Algorithm,
    top_n_artifacts: u32,
    objective: &'static str,
    requirements: &'static str,
    optuna_version: &'a str,
    /// Where the Job mounts the writable scratch volume; the runner installs packages there.
    tmp_cache_dir: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_flush_lines: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_flush_seconds: Option<u32>,
}

/// The directory the environment's batch specs live in, if any.
pub fn batches_dir(loaded: &LoadedEnv) -> Option<PathBuf> {
    let dir = loaded.env.components.hpo.batches_dir.as_ref()?;
    Some(loaded.sources.base_dir("components.hpo.batches_dir").join(dir))
}

/// Loads and checks every `*.yaml`/`*.yml` in the batches directory, in file name order.
pub fn load(loaded: &LoadedEnv) -> Result<Vec<Batch>, Diagnostics> {
    let Some(dir) = batches_dir(loaded) else { return Ok(Vec::new()) };
    let files = crate::env::spec_files(&loaded.sources, "components.hpo.batches_dir", &dir, "trial batch")?;
    load_files(loaded, &files)
}

/// Loads and checks the given batch spec files.
pub fn load_files(loaded: &LoadedEnv, files: &[PathBuf]) -> Result<Vec<Batch>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut batches = Vec::new();
    for file in files {
        if let Some(b) = load_one(loaded, file, &mut diags) {
            batches.push(b);
        }
    }
    check_across(&batches, &mut diags);
    diags.into_result()?;
    Ok(batches)
}

fn load_one(loaded: &LoadedEnv, file: &Path, diags: &mut Diagnostics) -> Option<Batch> {
    let f = crate::env::read_spec::<BatchSpec>(file, diags)?;
    let mut c = Checker::new(&f.sources, &f.dropped);
    let batch = resolve(&loaded.env, &f.spec, file, &mut c);
    diags.0.extend(c.finish().0);
    let name_pos = f.name_pos;
    Some(Batch { name_pos, ..batch })
}

/// Checks one spec against the environment and fills in its defaults. Every problem is
/// reported; the result is only used when there were none.
fn resolve(env: &Environment, s: &BatchSpec, file: &Path, c: &mut Checker) -> Batch {
    let base = file.parent().unwrap_or(Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let name = s.name.clone().unwrap_or_else(|| stem.to_string());
    if let Err(m) = names::check_label(&name) {
        let from = if s.name.is_none() { " (the name defaults to the file name; set name:)" } else { "" };
        c.err("name", format!("{m}{from}"));
    }
    c.label("study", &s.study);
    let tenant = check_tenant(env, s, c);

    let directions = match (&s.direction, &s.directions) {
        (Some(_), Some(_)) => {
            c.err("directions", "give direction (one objective) or directions (several), not both");
            Vec::new()
        }
        (Some(d), None) => vec![*d],
        (None, Some(ds)) if ds.is_empty() => {
            c.err("directions", "must name at least one direction (minimize or maximize)");
            Vec::new()
        }
        (None, Some(ds)) => ds.clone(),
        (None, None) => vec![Direction::Minimize],
    };
    for (field, algo, known) in [("sampler", &s.sampler, SAMPLERS), ("pruner", &s.pruner, PRUNERS)] {
        if !known.contains(&algo.name.as_str()) {
            c.err(
                &format!("{field}.name"),
                format!(
                    "{:?} is not an Optuna {field} the runner builds; use one of {}",
                    algo.name,
                    known.join(", ")
                ),
            );
        }
    }

    if s.n_trials < 1 {
        c.err("n_trials", "0 is below the minimum of 1");
    }
    c.at_most("n_trials", s.n_trials, MAX_TRIALS);
    if s.parallelism < 1 {
        c.err("parallelism", "0 is below the minimum of 1");
    } else if s.parallelism > s.n_trials && s.n_trials >= 1 {
        c.err(
            "parallelism",
            format!(
                "{} is more than n_trials {}; at most n_trials trials can run at once",
                s.parallelism, s.n_trials
            ),
        );
    }
    if s.top_n_artifacts < 1 {
        c.err("top_n_artifacts", "0 is below the minimum of 1 (the best trial's artifacts are always kept)");
    }

    let image = s
        .runtime_image
        .clone()
        .unwrap_or_else(|| if s.use_gpu { DEFAULT_GPU_IMAGE } else { DEFAULT_CPU_IMAGE }.to_string());
    let client = check_versions(env, s, &image, c);
    let resources = check_resources(env, s, c);
    let jobs = place_trials(env, s, &name, c);
    let (pull_secret, image_pull_secret) = match &s.image_pull {
        Some(p) => pull_secret(p, &name, c),
        None => (None, None),
    };

    let dev_shm_size = match (&s.dev_shm_size, s.use_gpu) {
        (Some(_), false) => {
            c.err(
                "dev_shm_size",
                "applies to GPU trials only (use_gpu: true); CPU trials get no /dev/shm volume",
            );
            None
        }
        (Some(q), true) => Some(q.as_str().to_string()),
        (None, true) => Some(SCRATCH_MIN.to_string()),
        (None, false) => None,
    };
    if let Some(q) = &dev_shm_size {
        scratch_size(c, "dev_shm_size", q);
    }
    scratch_size(c, "tmp_cache_size", s.tmp_cache_size.as_str());
    let shared_cache_dir = tenant.map(|t| t.hpo.shared_cache_dir.clone()).unwrap_or_default();
    check_tmp_cache_dir(s, &shared_cache_dir, c);
    if s.use_tmp_cache_mem {
        fits_memory(c, "tmp_cache_size", s.tmp_cache_size.as_str(), &resources.memory_limit);
    }
    if let Some(q) = &s.dev_shm_size {
        if s.use_gpu {
            fits_memory(c, "dev_shm_size", q.as_str(), &resources.memory_limit);
        }
    }

    let objective = read_objective(s, base, c);
    let requirements = read_requirements(s, base, c);
    let batch_json = BatchJson {
        batch: &name,
        study: &s.study,
        directions,
        sampler: &s.sampler,
        pruner: &s.pruner,
        top_n_artifacts: s.top_n_artifacts,
        objective: "objective.py",
        requirements: "requirements.txt",
        optuna_version: &client,
        tmp_cache_dir: &s.tmp_cache_dir,
        log_flush_lines: s.log_flush_lines,
        log_flush_seconds: s.log_flush_seconds,
    };
    let batch_json = serde_json::to_string_pretty(&batch_json).expect("batch.json serialises") + "\n";
    let config = BTreeMap::from([
        ("batch.json".to_string(), batch_json),
        ("objective.py".to_string(), objective),
        ("requirements.txt".to_string(), requirements),
        ("runner.py".to_string(), RUNNER.to_string()),
    ]);
    let bytes: usize = config.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > CONFIGMAP_MAX_BYTES {
        c.err(
            "objective_file",
            format!(
                "ConfigMap hpo-{name} would hold {bytes} bytes (objective.py {}, requirements.txt {}, runner.py {}), above the {CONFIGMAP_MAX_BYTES}-byte (1 MiB) limit of a ConfigMap; keep data out of the objective (download it in the trial into the shared cache)",
                config["objective.py"].len(),
                config["requirements.txt"].len(),
                RUNNER.len()
            ),
        );
    }

    Batch {
        storage: format!("hpo-storage.{}.svc:13000", s.tenant),
        name,
        tenant: s.tenant.clone(),
        study: s.study.clone(),
        image,
        use_gpu: s.use_gpu,
        resources,
        jobs,
        config,
        pull_secret,
        image_pull_secret,
        dev_shm_size,
        tmp_cache: TmpCache {
            dir: s.tmp_cache_dir.clone(),
            size: s.tmp_cache_size.as_str().to_string(),
            memory: s.use_tmp_cache_mem,
        },
        shared_cache_dir,
        file: file.to_path_buf(),
        name_pos: None,
    }
}

fn check_tenant<'e>(
    env: &'e Environment,
    s: &BatchSpec,
    c: &mut Checker,
) -> Option<&'e crate::env::model::Tenant> {
    if !env.components.hpo.enabled {
        c.err("tenant", "Optuna HPO is disabled in this environment (components.hpo.enabled)");
    }
    let list = &env.components.tenants.list;
    match list.iter().find(|t| t.name == s.tenant) {
        None => {
            let known: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
            c.err(
                "tenant",
                format!(
                    "tenant {:?} is not declared in the environment (components.tenants.list: {})",
                    s.tenant,
                    known.join(", ")
                ),
            );
            None
        }
        Some(t) => {
            if !t.hpo.enabled {
                c.err(
                    "tenant",
                    format!(
                        "tenant {:?} has no Optuna workspace; set hpo: {{enabled: true}} on it in components.tenants.list",
                        s.tenant
                    ),
                );
            }
            Some(t)
        }
    }
}

/// The client pin, checked against the workspace's server and the image's Python.
fn check_versions(env: &Environment, s: &BatchSpec, image: &str, c: &mut Checker) -> String {
    let server_text = &env.components.hpo.optuna_version;
    let client_text = s.optuna_version.clone().unwrap_or_else(|| compat::default_client(server_text, image));
    let Some(client) = compat::parse(&client_text) else {
        c.err("optuna_version", format!("{client_text:?} is not a version; write it like \"5.0.0\""));
        return client_text;
    };
    // A server pin that does not parse is the environment's problem, reported there.
    let Some(server) = compat::parse(server_text) else { return client_text };
    // Blame the key the user wrote: the pin if they gave one, else the image that chose it.
    let field = if s.optuna_version.is_some() { "optuna_version" } else { "runtime_image" };
    if let Some(why) = compat::image_refuses(image, client) {
        c.err(
            field,
            format!(
                "{why}; pick an image with a newer Python or pin optuna_version to {}",
                compat::PYTHON_3_8_NEWEST
            ),
        );
    } else if !compat::serves(server, client) {
        let chosen = if s.optuna_version.is_some() {
            format!("optuna_version {client_text}")
        } else {
            format!("the optuna {client_text} client this image's Python installs at newest")
        };
        c.err(
            field,
            format!(
                "{chosen} cannot talk to the workspace's optuna {server_text} gRPC storage server (components.hpo.optuna_version), which accepts {}",
                compat::accepted(server)
            ),
        );
    }
    client_text
}

fn check_resources(env: &Environment, s: &BatchSpec, c: &mut Checker) -> TrialResources {
    let (cpu, memory) = if s.use_gpu { ("2", "4Gi") } else { ("1", "1Gi") };
    let amount = |a: &Option<Amount>, default: &str| match a {
        Some(a) => {
            let request = a.request.as_str().to_string();
            let limit = a.limit.as_ref().map(|l| l.as_str().to_string()).unwrap_or_else(|| request.clone());
            (request, limit)
        }
        None => (default.to_string(), default.to_string()),
    };
    let (cpu_request, cpu_limit) = amount(&s.resources.cpu, cpu);
    let (memory_request, memory_limit) = amount(&s.resources.memory, memory);
    for (name, request, limit) in
        [("cpu", &cpu_request, &cpu_limit), ("memory", &memory_request, &memory_limit)]
    {
        let req = c.quantity(&format!("resources.{name}.request"), request);
        let lim = c.quantity(&format!("resources.{name}.limit"), limit);
        if let (Some(r), Some(l)) = (req, lim) {
            if r > l {
                c.err(
                    &format!("resources.{name}.request"),
                    format!(
                        "request {request} is more than limit {limit}; the request must not exceed the limit"
                    ),
                );
            }
        }
    }
    let gpus = match (&s.resources.gpu, s.use_gpu) {
        (Some(_), false) => {
            c.err("resources.gpu", "GPUs need use_gpu: true");
            0
        }
        (None, true) => 1,
        (None, false) => 0,
        (Some(g), true) => {
            let limit = g.limit.unwrap_or(g.request);
            if g.request != limit {
                c.err(
                    "resources.gpu.request",
                    format!(
                        "GPU request {} differs from limit {limit}; Kubernetes requires GPU requests to equal limits",
                        g.request
                    ),
                );
            }
            if g.request < 1 {
                c.err("resources.gpu.request", "0 is below the minimum of 1 for a GPU trial (use_gpu: true)");
            }
            c.at_most("resources.gpu.request", g.request, MAX_GPUS);
            g.request
        }
    };
    if s.use_gpu && !env.components.gpu.enabled {
        c.err(
            "use_gpu",
            "the batch asks for GPUs but the environment has no GPU pool (components.gpu.enabled is false)",
        );
    }
    if let Some(t) = env.components.tenants.list.iter().find(|t| t.name == s.tenant) {
        let quota = env.components.tenants.quota_of(t);
        if gpus > quota.gpu {
            c.err(
                if s.resources.gpu.is_some() { "resources.gpu.request" } else { "use_gpu" },
                format!("a trial needs {gpus} GPU(s) but tenant {:?} has a GPU quota of {}; no trial pod would start", s.tenant, quota.gpu),
            );
        }
        for (name, each, max) in [("cpu", &cpu_limit, &quota.cpu), ("memory", &memory_limit, &quota.memory)] {
            if let (Ok(e), Ok(m)) = (quantity::parse(each), quantity::parse(max.as_str())) {
                if e > m * (1.0 + 1e-9) {
                    c.err(
                        &format!("resources.{name}"),
                        format!("a trial's {name} limit {each} is more than tenant {:?}'s quota.{name} of {max}; no trial pod would start", s.tenant),
                    );
                }
            }
        }
    }
    TrialResources { cpu_request, cpu_limit, memory_request, memory_limit, gpus }
}

/// The Indexed Jobs of a batch: one per `gpu_model` map entry, then one for the trials left.
fn place_trials(env: &Environment, s: &BatchSpec, name: &str, c: &mut Checker) -> Vec<TrialJob> {
    let pools = &env.components.gpu.pools;
    let check_pool = |c: &mut Checker, field: &str, pool: &str| -> Vec<Taint> {
        match pools.iter().find(|p| p.name == pool) {
            Some(p) => p
                .taints
                .iter()
                .filter(|t| {
                    !(t.key == "nvidia.com/gpu" && t.effect == crate::env::model::TaintEffect::NoSchedule)
                })
                .cloned()
                .collect(),
            None => {
                let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                c.err(
                    field,
                    format!(
                        "{pool:?} is not a GPU pool of this environment (components.gpu.pools: {})",
                        known.join(", ")
                    ),
                );
                Vec::new()
            }
        }
    };
    let job = format!("hpo-{name}");
    let mut placed: Vec<(String, u32, Option<String>, Vec<Taint>)> = Vec::new();
    match &s.gpu_model {
        Some(_) if !s.use_gpu => {
            c.err("gpu_model", "picks GPU pools, so it needs use_gpu: true");
        }
        None => placed.push((job.clone(), s.n_trials, None, Vec::new())),
        Some(GpuModel::One(pool)) => {
            let tolerations = check_pool(c, "gpu_model", pool);
            placed.push((job.clone(), s.n_trials, Some(pool.clone()), tolerations));
        }
        Some(GpuModel::Counts(counts)) => {
            if counts.is_empty() {
                c.err(
                    "gpu_model",
                    "an empty map places no trial; omit gpu_model to place them all automatically",
                );
            }
            for (pool, &n) in counts {
                let field = format!("gpu_model.{pool}");
                let tolerations = check_pool(c, &field, pool);
                if n < 1 {
                    c.err(&field, "0 is below the minimum of 1 trial");
                    continue;
                }
                placed.push((format!("{job}-{pool}"), n, Some(pool.clone()), tolerations));
            }
            let sum: u64 = counts.values().map(|&n| u64::from(n)).sum();
            if sum > u64::from(s.n_trials) {
                c.err(
                    "gpu_model",
                    format!("places {sum} trials in total, more than n_trials {}; lower the counts or raise n_trials", s.n_trials),
                );
                return Vec::new();
            }
            let rest = s.n_trials - u32::try_from(sum).expect("at most n_trials");
            if rest > 0 {
                placed.push((job.clone(), rest, None, Vec::new()));
            }
        }
    }
    if placed.len() > 1 && (s.parallelism as usize) < placed.len() {
        c.err(
            "parallelism",
            format!(
                "{} is below the {} Jobs the gpu_model map makes (one per pool, one for the trials left); each Job runs at least one trial at a time",
                s.parallelism,
                placed.len()
            ),
        );
    }
    let completions: Vec<u32> = placed.iter().map(|p| p.1).collect();
    let shares = share_parallelism(s.parallelism, &completions);
    let mut jobs = Vec::new();
    for ((job_name, n, pool, tolerations), parallelism) in placed.into_iter().zip(shares) {
        // Indexed Job pods get the hostname `<job>-<index>`, a DNS-1123 label.
        let longest = job_name.len() + 1 + (n.max(1) - 1).to_string().len();
        if longest > 63 {
            c.err(
                "name",
                format!(
                    "Job {job_name:?} is too long: its trial pods' hostnames ({job_name}-{}) would have {longest} characters, and at most 63 are allowed; shorten the batch name",
                    n - 1
                ),
            );
        }
        jobs.push(TrialJob { name: job_name, completions: n, parallelism, gpu_model: pool, tolerations });
    }
    jobs
}

/// Splits a batch's parallelism over its Jobs: one each, then one more at a time to the Job
/// with the most trials not yet running, so the batch never runs more than `parallelism`
/// trials at once (when there are at least as many as Jobs) and no slot sits idle.
fn share_parallelism(parallelism: u32, completions: &[u32]) -> Vec<u32> {
    let mut shares: Vec<u32> = completions.iter().map(|&n| n.min(1)).collect();
    let mut left = parallelism.saturating_sub(shares.iter().sum());
    while left > 0 {
        let next = (0..completions.len())
            .filter(|&i| shares[i] < completions[i])
            .max_by_key(|&i| (completions[i] - shares[i], std::cmp::Reverse(i)));
        let Some(i) = next else { break };
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// The pull Secret to render (registry or docker config form) and the Secret name pods use.
fn pull_secret(p: &ImagePull, batch: &str, c: &mut Checker) -> (Option<PullSecret>, Option<String>) {
    let literal = "a password is never written in a batch spec (spec files are shared and committed)";
    if p.password.is_some() {
        c.err(
            "image_pull.password",
            format!("{literal}; name the environment variable holding it: password_env: REGISTRY_PASSWORD"),
        );
    }
    let registry_form =
        p.registry.is_some() || p.username.is_some() || p.password_env.is_some() || p.password.is_some();
    let forms = [registry_form, p.docker_config_json.is_some(), p.secret.is_some()];
    if forms.iter().filter(|f| **f).count() != 1 {
        c.err(
            "image_pull",
            "give exactly one of: registry + username + password_env (one registry), docker_config_json (several registries), or secret (an existing kubernetes.io/dockerconfigjson Secret in the tenant's namespace)",
        );
        return (None, None);
    }
    if let Some(name) = &p.secret {
        c.subdomain("image_pull.secret", name);
        return (None, Some(name.clone()));
    }
    let mut auths = serde_json::Map::new();
    let mut add = |c: &mut Checker, field: &str, host: &str, user: &str, env_var: &Option<String>| {
        let Some(var) = env_var else {
            c.err(
                field,
                "name the environment variable holding the password: password_env: REGISTRY_PASSWORD",
            );
            return;
        };
        let field = format!("{field}.password_env");
        if let Err(m) = names::check_env_var(var) {
            c.err(&field, m);
            return;
        }
        match std::env::var(var) {
            Ok(password) if !password.is_empty() => {
                let auth = BASE64.encode(format!("{user}:{password}"));
                auths.insert(
                    host.to_string(),
                    serde_json::json!({"username": user, "password": password, "auth": auth}),
                );
            }
            _ => c.err(
                &field,
                format!("environment variable {var} is not set (or empty); export it before running trainstack, which reads the password from it at render time"),
            ),
        }
    };
    if let Some(dc) = &p.docker_config_json {
        if dc.auths.is_empty() {
            c.err("image_pull.docker_config_json.auths", "names no registry");
        }
        for (host, a) in &dc.auths {
            let field = format!("image_pull.docker_config_json.auths.{host}");
            if a.password.is_some() {
                c.err(&format!("{field}.password"), format!("{literal}; name the environment variable holding it: password_env: REGISTRY_PASSWORD"));
                continue;
            }
            add(c, &field, host, &a.username, &a.password_env);
        }
    } else {
        match (&p.registry, &p.username) {
            (Some(host), Some(user)) => add(c, "image_pull", host, user, &p.password_env),
            _ => c.err("image_pull", "the registry form needs registry, username and password_env"),
        }
    }
    if auths.is_empty() {
        return (None, None);
    }
    let json = serde_json::json!({ "auths": auths }).to_string();
    let name = format!("hpo-{batch}-pull");
    (Some(PullSecret { name: name.clone(), data: Hidden(BASE64.encode(json)) }), Some(name))
}

fn scratch_size(c: &mut Checker, field: &str, q: &str) {
    let Some(v) = c.quantity(field, q) else { return };
    let (min, max) =
        (quantity::parse(SCRATCH_MIN).expect("valid"), quantity::parse(SCRATCH_MAX).expect("valid"));
    if v < min {
        c.err(field, format!("{q} is below the minimum of {SCRATCH_MIN}"));
    } else if v > max {
        c.err(field, format!("{q} is above the maximum of {SCRATCH_MAX}"));
    }
}

/// A memory-backed volume counts against the container's memory limit: one larger than the
/// limit would get the trial OOM-killed once it fills.
fn fits_memory(c: &mut Checker, field: &str, size: &str, limit: &str) {
    if let (Ok(s), Ok(l)) = (quantity::parse(size), quantity::parse(limit)) {
        if s > l {
            c.err(
                field,
                format!("{size} of memory-backed volume is more than the trial's memory limit {limit}, which it counts against; raise resources.memory or lower {field}"),
            );
        }
    }
}

fn check_tmp_cache_dir(s: &BatchSpec, shared_cache_dir: &str, c: &mut Checker) {
    let dir = s.tmp_cache_dir.trim_end_matches('/');
    if !s.tmp_cache_dir.starts_with('/') || dir.is_empty() {
        c.err(
            "tmp_cache_dir",
            format!("{:?} is not an absolute directory path like /mnt/tmp-cache", s.tmp_cache_dir),
        );
        return;
    }
    let overlaps = |other: &str| {
        let other = other.trim_end_matches('/');
        dir == other || dir.starts_with(&format!("{other}/")) || other.starts_with(&format!("{dir}/"))
    };
    for (other, what) in [
        (CONFIG_DIR, "the batch's ConfigMap"),
        (ARTIFACTS_DIR, "the artifact store"),
        ("/dev/shm", "/dev/shm"),
        (shared_cache_dir, "the workspace's shared cache (the tenant's hpo.shared_cache_dir)"),
    ] {
        if !other.is_empty() && overlaps(other) {
            c.err(
                "tmp_cache_dir",
                format!("{dir} overlaps {other}, where trial pods mount {what}; pick another path"),
            );
        }
    }
}

/// The objective file's text: it must define `objective(trial)` at the top level. The full
/// syntax-tree check (the seed's 4-9 rules) is the runner's, in the pod, before import.
fn read_objective(s: &BatchSpec, base: &Path, c: &mut Checker) -> String {
    let path = base.join(&s.objective_file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            c.err("objective_file", format!("cannot read {}: {e}", path.display()));
            return String::new();
        }
    };
    if !defines_objective(&text) {
        c.err(
            "objective_file",
            format!(
                "{} does not define `def objective(trial):` at the top level of the file; the runner calls objective(trial) once per trial",
                path.display()
            ),
        );
    }
    text
}

/// Whether a top-level line (no indentation) starts `def objective(trial` followed by `)`, `,`,
/// `:` (an annotation) or `=`.
fn defines_objective(text: &str) -> bool {
    text.lines().any(|line| {
        let Some(rest) = line.strip_prefix("def ") else { return false };
        let Some(rest) = rest.trim_start().strip_prefix("objective") else { return false };
        let Some(rest) = rest.trim_start().strip_prefix('(') else { return false };
        let Some(rest) = rest.trim_start().strip_prefix("trial") else { return false };
        matches!(rest.trim_start().chars().next(), Some(')' | ',' | ':' | '='))
    })
}

fn read_requirements(s: &BatchSpec, base: &Path, c: &mut Checker) -> String {
    match (&s.requirements_list, &s.requirements_file) {
        (Some(_), Some(_)) => {
            c.err("requirements_file", "give requirements_list or requirements_file, not both");
            String::new()
        }
        (Some(list), None) => {
            for (i, r) in list.iter().enumerate() {
                let r = r.trim();
                if r.is_empty() || r.contains('\n') || r.starts_with('-') {
                    c.err(
                        &format!("requirements_list[{i}]"),
                        format!("{r:?} is not one requirement; write one package per entry, like \"numpy==2.1.3\" (pip options belong in a requirements_file)"),
                    );
                }
            }
            list.iter().map(|r| format!("{}\n", r.trim())).collect()
        }
        (None, Some(f)) => {
            let path = base.join(f);
            std::fs::read_to_string(&path).unwrap_or_else(|e| {
                c.err("requirements_file", format!("cannot read {}: {e}", path.display()));
                String::new()
            })
        }
        (None, None) => String::new(),
    }
}

/// Checks that need all batches: one batch of a name per tenant (its objects are `hpo-<name>`).
fn check_across(batches: &[Batch], diags: &mut Diagnostics) {
    let mut names: BTreeMap<(&str, &str), &Batch> = BTreeMap::new();
    for b in batches {
        match names.entry((b.tenant.as_str(), b.name.as_str())) {
            Entry::Occupied(first) => {
                let first = first.get();
                let at = first.name_pos.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default();
                diags.push(Diagnostic {
                    file: b.file.display().to_string(),
                    pos: b.name_pos,
                    field: "name".into(),
                    message: format!(
                        "trial batch {:?} is declared twice for tenant {:?}: first in {}{at}; rename one of them",
                        b.name,
                        b.tenant,
                        first.file.display()
                    ),
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallelism_is_shared_by_trials_left_and_never_exceeded() {
        assert_eq!(share_parallelism(2, &[10]), [2]);
        assert_eq!(share_parallelism(5, &[3]), [3]);
        assert_eq!(share_parallelism(4, &[3, 4, 3]), [1, 2, 1]);
        assert_eq!(share_parallelism(10, &[3, 4, 3]), [3, 4, 3]);
        assert_eq!(share_parallelism(3, &[1, 1, 8]), [1, 1, 1]);
    }

    #[test]
    fn the_objective_must_be_defined_at_the_top_level() {
        assert!(defines_objective("import optuna\n\ndef objective(trial):\n    return 1\n"));
        assert!(defines_objective("def objective( trial: optuna.Trial) -> float:\n"));
        assert!(!defines_objective("class A:\n    def objective(trial):\n        pass\n"));
        assert!(!defines_objective("def objective_fn(trial):\n"));
        assert!(!defines_objective("def objective(trials):\n"));
        assert!(!defines_objective("# def objective(trial):\n"));
    }
}
