//! Semantic checks of a typed environment: names, quantities, ranges and cross-references.
//! Every limit enforced here is listed in docs/environment.md.

use std::collections::BTreeSet;

use crate::diag::Diagnostics;
use crate::env::addon_source::{check_kustomize_pin, check_source};
use crate::env::check::Checker;
use crate::env::model::{
    AccessMode, BucketEncryption, BucketOwner, Components, Environment, GpuProvider, IngressScheme, Quantity,
    Quota, QuotaOverride, RayWorkers, SecretsMode, TargetKind,
};
use crate::env::secret_template::ValueTemplate;
use crate::env::sources::Sources;
use crate::env::versions::{self, trainer_api};
use crate::env::{names, quantity};

/// Documented maxima.
pub mod limits {
    /// Nodes in one GPU pool.
    pub const POOL_MAX_SIZE: u32 = 100;
    /// GPUs per node.
    pub const GPUS_PER_NODE: u32 = 8;
    /// MLflow replicas.
    pub const MLFLOW_MAX_REPLICAS: u32 = 20;
    /// Ray workers in one group.
    pub const RAY_MAX_WORKERS: u32 = 100;
    /// Nodes of one training job.
    pub const JOB_MAX_NODES: u32 = 64;
    /// Pods in one tenant's quota.
    pub const TENANT_MAX_PODS: u32 = 1000;
    /// GPUs in one tenant's quota.
    pub const TENANT_MAX_GPUS: u32 = 256;
    /// Tenants in one environment.
    pub const MAX_TENANTS: usize = 1000;
    /// Length of a TrainJob name (its pods are `<name>-node-0-<index>-<suffix>`).
    pub const TRAINJOB_MAX_NAME: usize = 46;
    /// General workers of a kind cluster (each is a container on one workstation).
    pub const KIND_MAX_WORKERS: u32 = 10;
    /// An HPO workspace's journal volume (the seed's limits).
    pub const HPO_JOURNAL_SIZE: (&str, &str) = ("500Mi", "10Gi");
    /// An HPO workspace's artifact store.
    pub const HPO_ARTIFACT_SIZE: (&str, &str) = ("2Gi", "100Gi");
    /// An HPO workspace's shared cache.
    pub const HPO_SHARED_CACHE_SIZE: (&str, &str) = ("500Mi", "4Gi");
    /// Directories trial pods mount for other purposes; the shared cache may not overlap them.
    pub const HPO_RESERVED_DIRS: [&str; 4] = ["/artifacts", "/mnt/tmp-cache", "/dev/shm", "/etc/trainstack"];
}

/// The checks only an environment needs, beside the shared ones.
impl Checker<'_> {
    fn quota(&mut self, field: &str, q: &Quota) {
        let over = QuotaOverride {
            cpu: Some(q.cpu.clone()),
            memory: Some(q.memory.clone()),
            gpu: Some(q.gpu),
            pods: Some(q.pods),
        };
        self.quota_keys(field, &over);
    }

    /// The keys a quota sets (a tenant's override sets only some).
    fn quota_keys(&mut self, field: &str, q: &QuotaOverride) {
        if let Some(cpu) = &q.cpu {
            self.quantity(&format!("{field}.cpu"), cpu.as_str());
        }
        if let Some(memory) = &q.memory {
            self.quantity(&format!("{field}.memory"), memory.as_str());
        }
        if let Some(gpu) = q.gpu {
            self.at_most(&format!("{field}.gpu"), gpu, limits::TENANT_MAX_GPUS);
        }
        if let Some(pods) = q.pods {
            self.at_most(&format!("{field}.pods"), pods, limits::TENANT_MAX_PODS);
            if pods < 1 {
                self.err(&format!("{field}.pods"), "0 is below the minimum of 1");
            }
        }
    }

    /// An IAM role ARN, as IRSA annotations and node groups need.
    fn role_arn(&mut self, field: &str, arn: &str) {
        if !iam_role_arn(arn) {
            self.err(field, format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"));
        }
    }

    /// A volume size within `min..=max` (both quantities).
    fn size_between(&mut self, field: &str, size: &Quantity, (min, max): (&str, &str)) {
        let Some(v) = self.quantity(field, size.as_str()) else { return };
        let bound = |q: &str| quantity::parse(q).expect("limits are valid quantities");
        if v < bound(min) {
            self.err(field, format!("{size} is below the minimum of {min} (allowed: {min} to {max})"));
        } else if v > bound(max) {
            self.err(field, format!("{size} is above the maximum of {max} (allowed: {min} to {max})"));
        }
    }

    /// An S3 (or MinIO) bucket name.
    fn bucket(&mut self, field: &str, name: &str) {
        if let Err(m) = names::check_bucket_name(name) {
            self.err(field, m);
        }
    }
}

/// Checks everything the types cannot: names, quantities, ranges, maxima, references.
/// Nothing is reported inside the `dropped` fields: defaults stand in for values already reported.
pub fn check(env: &Environment, sources: &Sources, dropped: &[String]) -> Diagnostics {
    let mut c = Checker::new(sources, dropped);
    c.label("name", &env.name);
    c.label("platform_namespace", &env.platform_namespace);
    check_target(env, &mut c);
    check_addons(env, &mut c);
    check_tenants(env, &mut c);
    check_trainer(env, &mut c);
    check_gpu(env, &mut c);
    check_services(env, &mut c);
    check_hpo(env, &mut c);
    check_aws(env, &mut c);
    check_secrets(env, &mut c);
    c.finish()
}

fn check_target(env: &Environment, c: &mut Checker) {
    let t = &env.target;
    c.label("target.cluster_name", &t.cluster_name);
    let v = &t.kubernetes_version;
    let ok = versions::supported_kubernetes(v);
    if !ok {
        let (first, last) = (versions::KUBERNETES_MINORS.start(), versions::KUBERNETES_MINORS.end());
        c.err(
            "target.kubernetes_version",
            format!("{v:?} is not a supported Kubernetes version; use \"1.{first}\" to \"1.{last}\""),
        );
    }
    match t.kind {
        TargetKind::Kind => check_kind_target(env, ok, c),
        TargetKind::Eks => {
            let kind_only = [
                ("node_image", t.node_image.is_some()),
                ("ingress_ports", t.ingress_ports.is_some()),
                ("load_images", t.load_images.is_some()),
                ("workers", t.workers.is_some()),
            ];
            for (field, _) in kind_only.iter().filter(|(_, set)| *set) {
                c.err(
                    &format!("target.{field}"),
                    format!("{field} only applies to kind targets; remove it from this eks target"),
                );
            }
        }
    }
    match t.kind {
        TargetKind::Eks if t.region.is_none() => {
            c.err("target.region", "an eks target needs a region (e.g. us-east-1)")
        }
        TargetKind::Kind if t.region.is_some() => {
            c.err("target.region", "a kind target has no region; remove it")
        }
        _ => {}
    }
}

/// The settings of a local kind cluster; `version_ok` says whether `kubernetes_version` is valid.
fn check_kind_target(env: &Environment, version_ok: bool, c: &mut Checker) {
    let t = &env.target;
    match &t.node_image {
        Some(image) => image_ref(c, "target.node_image", image),
        None if version_ok && versions::default_node_image(&t.kubernetes_version).is_none() => c.err(
            "target.kubernetes_version",
            format!(
                "no kindest/node image is known for {:?} (known: {}); set target.node_image, e.g. kindest/node:v{}.0",
                t.kubernetes_version,
                versions::known_versions(),
                t.kubernetes_version
            ),
        ),
        None => {}
    }
    let ports = t.ingress_ports();
    for (field, port) in [("http", ports.http), ("https", ports.https)] {
        if !(1..=65535).contains(&port) {
            c.err(&format!("target.ingress_ports.{field}"), format!("{port} is outside 1..65535"));
        }
    }
    if ports.http == ports.https {
        c.err(
            "target.ingress_ports.https",
            format!("{} is also the http port; the two host ports must differ", ports.https),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, image) in t.load_images().iter().enumerate() {
        let field = format!("target.load_images[{i}]");
        image_ref(c, &field, image);
        if !seen.insert(image.as_str()) {
            c.err(&field, format!("image {image:?} is listed twice"));
        }
    }
    c.at_most("target.workers", t.workers(), limits::KIND_MAX_WORKERS);
    let gpu = &env.components.gpu;
    if t.workers() == 0 && gpu.enabled && gpu.pools.iter().any(|p| !p.taints.is_empty()) {
        // kind keeps the control-plane tainted once any worker exists, so untolerating pods
        // would have no node at all.
        c.err(
            "target.workers",
            "0 general workers leaves ordinary pods without a node: the GPU pool workers are tainted; use at least 1",
        );
    }
}

/// An image reference kind and docker will take: not empty, no spaces, not read as a flag.
fn image_ref(c: &mut Checker, field: &str, image: &str) {
    if image.is_empty()
        || image.starts_with('-')
        || image.chars().any(|ch| ch.is_whitespace() || ch.is_control())
    {
        c.err(field, format!("{image:?} is not an image reference; write it like kindest/node:v1.33.1"));
    }
}

fn check_addons(env: &Environment, c: &mut Checker) {
    let mut seen = BTreeSet::new();
    for (i, a) in env.addons.iter().enumerate() {
        let f = format!("addons[{i}]");
        c.label(&format!("{f}.name"), &a.name);
        if !seen.insert(a.name.as_str()) {
            c.err(&format!("{f}.name"), format!("add-on {:?} is declared twice", a.name));
        }
        if !a.version.starts_with('v') || a.version.len() < 2 {
            c.err(
                &format!("{f}.version"),
                format!("{:?} is not a pinned version; write it like \"v2.3.0\"", a.version),
            );
        }
        for (field, path) in [("file", &a.source.file), ("dir", &a.source.dir)] {
            let Some(path) = path else { continue };
            let field = format!("{f}.source.{field}");
            let full = c.sources.base_dir(&field).join(path);
            if a.enabled && !full.exists() {
                c.err(&field, format!("{} does not exist", full.display()));
            }
        }
        if let Some(target) = &a.source.kustomize {
            let field = format!("{f}.source.kustomize");
            if let Some(msg) = check_kustomize_pin(target, &c.sources.base_dir(&field)) {
                c.err(&field, msg);
            }
        }
        for (field, msg) in check_source(&a.source) {
            let field = if field.is_empty() { format!("{f}.source") } else { format!("{f}.source.{field}") };
            c.err(&field, msg);
        }
    }
}

fn check_tenants(env: &Environment, c: &mut Checker) {
    let t = &env.components.tenants;
    c.subdomain("components.tenants.backend.service_account", &t.backend.service_account);
    if let Some(arn) = &t.backend.irsa_role_arn {
        c.role_arn("components.tenants.backend.irsa_role_arn", arn);
    }
    c.quota("components.tenants.defaults.quota", &t.defaults.quota);
    c.resources("components.tenants.defaults.limit_range.default", &t.defaults.limit_range.default);
    for (i, ns) in t.defaults.allow_from_namespaces.iter().enumerate() {
        c.label(&format!("components.tenants.defaults.allow_from_namespaces[{i}]"), ns);
    }
    if t.list.len() > limits::MAX_TENANTS {
        c.err(
            "components.tenants.list",
            format!("{} tenants are above the maximum of {}", t.list.len(), limits::MAX_TENANTS),
        );
    }
    let reserved =
        ["default", "kube-system", "kube-public", "kube-node-lease", env.platform_namespace.as_str()];
    let mut seen = BTreeSet::new();
    for (i, tenant) in t.list.iter().enumerate() {
        let f = format!("components.tenants.list[{i}]");
        c.label(&format!("{f}.name"), &tenant.name);
        if reserved.contains(&tenant.name.as_str()) {
            c.err(
                &format!("{f}.name"),
                format!("{:?} is a reserved namespace and cannot be a tenant", tenant.name),
            );
        } else if tenant.name.starts_with("kube-") {
            c.err(
                &format!("{f}.name"),
                format!("{:?} starts with kube-, which Kubernetes reserves for its own namespaces; choose another tenant name", tenant.name),
            );
        }
        if let Some(arn) = &tenant.irsa_role_arn {
            c.role_arn(&format!("{f}.irsa_role_arn"), arn);
        }
        if !seen.insert(tenant.name.as_str()) {
            c.err(&format!("{f}.name"), format!("tenant {:?} is declared twice", tenant.name));
        }
        if let Some(q) = &tenant.quota {
            c.quota_keys(&format!("{f}.quota"), q);
        }
        if let Some(l) = &tenant.limit_range {
            c.resources(&format!("{f}.limit_range.default"), &l.default);
        }
        for (j, ns) in tenant.allow_from_namespaces.iter().flatten().enumerate() {
            c.label(&format!("{f}.allow_from_namespaces[{j}]"), ns);
        }
    }
}

fn check_trainer(env: &Environment, c: &mut Checker) {
    let tr = &env.components.trainer;
    if trainer_api(&tr.version).is_none() {
        c.err(
            "components.trainer.version",
            format!("Kubeflow Trainer {:?} is not supported; use v2.1.x, v2.2.x or v2.3.x", tr.version),
        );
    }
    let cj = &env.components.custom_jobs;
    if cj.active_deadline_seconds == 0 {
        c.err("components.custom_jobs.active_deadline_seconds", "0 is below the minimum of 1");
    }
    c.at_most("components.custom_jobs.backoff_limit", cj.backoff_limit, 20);
    c.bucket("components.custom_jobs.storage.datasets_bucket", &cj.storage.datasets_bucket);
    c.bucket("components.custom_jobs.storage.checkpoints_bucket", &cj.storage.checkpoints_bucket);
    let urls = [
        (
            "callback_url",
            &cj.callback_url,
            "http://trainstack-backend.trainstack-system.svc:8000/api/v1/callbacks",
        ),
        ("storage.external_endpoint", &cj.storage.external_endpoint, "https://s3.us-east-1.amazonaws.com"),
        ("storage.internal_endpoint", &cj.storage.internal_endpoint, "https://s3.us-east-1.amazonaws.com"),
    ];
    for (field, url, example) in urls {
        if let Some(url) = url {
            c.http_url(&format!("components.custom_jobs.{field}"), url, example);
        }
    }
    if let Some(s) = &cj.storage.credentials_secret {
        c.subdomain("components.custom_jobs.storage.credentials_secret", s);
    }
}

fn check_gpu(env: &Environment, c: &mut Checker) {
    let g = &env.components.gpu;
    if !g.enabled {
        return;
    }
    match (env.target.kind, g.provider) {
        (TargetKind::Kind, GpuProvider::Kind)
        | (TargetKind::Eks, GpuProvider::ManagedNodeGroups | GpuProvider::Karpenter) => {}
        (TargetKind::Kind, _) => {
            c.err("components.gpu.provider", "a kind target has no EC2 nodes; use provider: kind")
        }
        (TargetKind::Eks, _) => c.err(
            "components.gpu.provider",
            "provider kind only works on a kind target; use managed_node_groups or karpenter",
        ),
    }
    if g.pools.is_empty() {
        c.err(
            "components.gpu.pools",
            "GPU support is enabled but no pool is declared; add a pool or set enabled: false",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, p) in g.pools.iter().enumerate() {
        let f = format!("components.gpu.pools[{i}]");
        c.label(&format!("{f}.name"), &p.name);
        if !seen.insert(p.name.as_str()) {
            c.err(&format!("{f}.name"), format!("pool {:?} is declared twice", p.name));
        }
        c.range(&format!("{f}.min_size"), p.min_size, &format!("{f}.max_size"), p.max_size);
        c.at_most(&format!("{f}.max_size"), p.max_size, limits::POOL_MAX_SIZE);
        if p.desired_size < p.min_size || p.desired_size > p.max_size.max(p.min_size) {
            c.err(
                &format!("{f}.desired_size"),
                format!("{} is outside min_size..max_size ({}..{})", p.desired_size, p.min_size, p.max_size),
            );
        }
        if p.gpus_per_node < 1 {
            c.err(&format!("{f}.gpus_per_node"), "0 is below the minimum of 1");
        }
        c.at_most(&format!("{f}.gpus_per_node"), p.gpus_per_node, limits::GPUS_PER_NODE);
        if p.instance_types.is_empty() {
            c.err(&format!("{f}.instance_types"), "at least one instance type is needed (e.g. p3.2xlarge)");
        }
        if !(20..=16384).contains(&p.disk_size_gib) {
            c.err(&format!("{f}.disk_size_gib"), format!("{} is outside 20..16384", p.disk_size_gib));
        }
    }
}

/// A pattern of MLflow's `MLFLOW_SERVER_ALLOWED_HOSTS`: a host name, IP address or `[IPv6]`,
/// optionally `:port`, where `*` matches any characters (MLflow compares with Python's
/// `fnmatch`); the list is comma-separated, so a pattern has no comma.
fn host_pattern(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("is empty");
    }
    if p.chars().all(|ch| ch == '*') {
        return Err("matches every host, which turns off MLflow's DNS-rebinding protection; list the host names (wildcards like *.example.com are fine)");
    }
    let valid = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '*' | ':' | '[' | ']');
    if !p.chars().all(valid) {
        return Err("is not a host pattern: use letters, digits, '.', '-', ':' (port), '[' ']' (IPv6) and '*' (any characters), one host per list item");
    }
    Ok(())
}

fn check_services(env: &Environment, c: &mut Checker) {
    let comps = &env.components;
    let m = &comps.mlflow;
    if m.enabled {
        c.resources("components.mlflow.resources", &m.resources);
        let a = &m.autoscaling;
        c.range(
            "components.mlflow.autoscaling.min_replicas",
            a.min_replicas,
            "components.mlflow.autoscaling.max_replicas",
            a.max_replicas,
        );
        c.at_most("components.mlflow.autoscaling.max_replicas", a.max_replicas, limits::MLFLOW_MAX_REPLICAS);
        if a.min_replicas < 1 {
            c.err("components.mlflow.autoscaling.min_replicas", "0 is below the minimum of 1");
        }
        if !(1..=100).contains(&a.target_cpu_percent) {
            c.err(
                "components.mlflow.autoscaling.target_cpu_percent",
                format!("{} is outside 1..100", a.target_cpu_percent),
            );
        }
        c.subdomain("components.mlflow.backend_store.secret", &m.backend_store.secret);
        c.bucket("components.mlflow.artifacts.bucket", &m.artifacts.bucket);
        if let Some(endpoint) = &m.artifacts.endpoint {
            c.http_url(
                "components.mlflow.artifacts.endpoint",
                endpoint,
                "http://minio.trainstack-system.svc:9000",
            );
        }
        if let Some(arn) = &m.irsa_role_arn {
            c.role_arn("components.mlflow.irsa_role_arn", arn);
        }
        if m.auth.enabled {
            c.subdomain("components.mlflow.auth.admin_secret", &m.auth.admin_secret);
        }
        if m.ingress.enabled && m.ingress.host.is_none() {
            c.err(
                "components.mlflow.ingress.host",
                "an enabled ingress needs a host (e.g. mlflow.example.com)",
            );
        }
        for (i, pattern) in m.allowed_hosts.iter().enumerate() {
            if let Err(why) = host_pattern(pattern) {
                c.err(&format!("components.mlflow.allowed_hosts[{i}]"), format!("{pattern:?} {why}"));
            }
        }
        check_exposure(env, c);
        if m.ingress.certificate_arn.as_deref().is_some_and(|a| !a.starts_with("arn:aws:acm:")) {
            c.err(
                "components.mlflow.ingress.certificate_arn",
                "must be an ACM certificate ARN (arn:aws:acm:...)",
            );
        }
    }
    if comps.postgres.enabled {
        if let Some(v) = c.quantity("components.postgres.storage", comps.postgres.storage.as_str()) {
            if v > 1024f64.powi(4) {
                c.err(
                    "components.postgres.storage",
                    format!("{} is above the maximum of 1Ti", comps.postgres.storage),
                );
            }
        }
        c.subdomain("components.postgres.credentials_secret", &comps.postgres.credentials_secret);
    }
    if comps.minio.enabled {
        if let Some(v) = c.quantity("components.minio.storage", comps.minio.storage.as_str()) {
            if v > 1024f64.powi(4) {
                c.err(
                    "components.minio.storage",
                    format!("{} is above the maximum of 1Ti", comps.minio.storage),
                );
            }
        }
        for (i, b) in comps.minio.buckets.iter().enumerate() {
            c.bucket(&format!("components.minio.buckets[{i}]"), b);
        }
    }
    let r = &comps.ray;
    if r.enabled {
        c.label("components.ray.name", &r.name);
        c.resources("components.ray.head", &r.head);
        check_ray_group(c, "gpu_workers", &r.gpu_workers, comps);
        if r.gpu_workers.enabled == Some(true) && r.gpu_workers.gpus > 0 && !comps.gpu.enabled {
            c.err(
                "components.ray.gpu_workers.enabled",
                "Ray GPU workers need GPU nodes, but components.gpu is disabled: they would stay pending; enable components.gpu or set gpu_workers.enabled: false",
            );
        }
        if let Some(arn) = &r.irsa_role_arn {
            c.role_arn("components.ray.irsa_role_arn", arn);
        }
        if let Some(w) = &r.cpu_workers {
            check_ray_group(c, "cpu_workers", w, comps);
        }
    }
}

/// An internet-facing MLflow without a login is refused unless the environment opts in by its
/// own name, which an overlay copied to another environment does not carry along by accident.
fn check_exposure(env: &Environment, c: &mut Checker) {
    let m = &env.components.mlflow;
    let i = &m.ingress;
    let name = &env.name;
    if let Some(allowed) = &i.allow_public_without_auth {
        if allowed != name {
            c.err(
                "components.mlflow.ingress.allow_public_without_auth",
                format!("{allowed:?} is not this environment's name; the opt-in must name the environment it is for: {name:?}"),
            );
        }
    }
    let public = env.target.kind == TargetKind::Eks
        && i.enabled
        && i.class_name.as_deref() == Some("alb")
        && i.scheme == IngressScheme::InternetFacing;
    if public && !m.auth.enabled && i.allow_public_without_auth.is_none() {
        c.err(
            "components.mlflow.ingress.scheme",
            format!("internet-facing without components.mlflow.auth.enabled lets anyone on the internet read and change every experiment; use scheme: internal (the default), enable auth, or accept it with allow_public_without_auth: {name}"),
        );
    }
}

/// One Ray worker group: replica range, GPUs (none in the CPU group), resources, pool.
fn check_ray_group<const GPUS: u32>(c: &mut Checker, name: &str, w: &RayWorkers<GPUS>, comps: &Components) {
    let f = format!("components.ray.{name}");
    c.range(&format!("{f}.min_replicas"), w.min_replicas, &format!("{f}.max_replicas"), w.max_replicas);
    c.at_most(&format!("{f}.max_replicas"), w.max_replicas, limits::RAY_MAX_WORKERS);
    c.at_most(&format!("{f}.gpus"), w.gpus, limits::GPUS_PER_NODE);
    if GPUS == 0 && w.gpus != 0 {
        c.err(
            &format!("{f}.gpus"),
            format!("{} GPUs in the CPU worker group; remove gpus (it defaults to 0 here) and use gpu_workers for GPUs", w.gpus),
        );
    }
    c.resources(&format!("{f}.resources"), &w.resources);
    if let Some(p) = &w.pool {
        if !comps.gpu.enabled || !comps.gpu.pools.iter().any(|pool| &pool.name == p) {
            c.err(&format!("{f}.pool"), format!("pool {p:?} is not declared in components.gpu.pools"));
        }
    }
}

/// The HPO workspaces: versions trainstack can serve, storage that works on the target, and
/// each tenant's volume sizes and cache directory.
fn check_hpo(env: &Environment, c: &mut Checker) {
    let h = &env.components.hpo;
    let tenants = &env.components.tenants.list;
    for (i, t) in tenants.iter().enumerate() {
        let f = format!("components.tenants.list[{i}].hpo");
        if t.hpo.enabled && !h.enabled {
            c.err(
                &format!("{f}.enabled"),
                format!("tenant {:?} enables an HPO workspace, but components.hpo.enabled is false; enable components.hpo or remove the tenant's hpo block", t.name),
            );
        }
        c.size_between(&format!("{f}.journal_size"), &t.hpo.journal_size, limits::HPO_JOURNAL_SIZE);
        c.size_between(&format!("{f}.artifact_size"), &t.hpo.artifact_size, limits::HPO_ARTIFACT_SIZE);
        c.size_between(
            &format!("{f}.shared_cache_size"),
            &t.hpo.shared_cache_size,
            limits::HPO_SHARED_CACHE_SIZE,
        );
        if let Err(why) = shared_cache_dir(&t.hpo.shared_cache_dir) {
            c.err(&format!("{f}.shared_cache_dir"), format!("{:?} {why}", t.hpo.shared_cache_dir));
        }
    }
    if !h.enabled {
        return;
    }
    match versions::optuna_server(&h.optuna_version) {
        Some(_) => {}
        None if h.optuna_version == "5.1.0" => c.err(
            "components.hpo.optuna_version",
            format!("Optuna 5.1.0's gRPC server rejects 4.5.0 and 5.0.0 clients (timestamp format on the wire); use {} (it serves 4.5.0, 5.0.0 and 5.1.0 clients)", versions::optuna_servers()),
        ),
        None => c.err(
            "components.hpo.optuna_version",
            format!("Optuna {:?} is not a storage server version trainstack can serve; use one of: {}", h.optuna_version, versions::optuna_servers()),
        ),
    }
    let min_python = versions::dashboard_min_python(&h.dashboard_version);
    if min_python.is_none() {
        c.err(
            "components.hpo.dashboard_version",
            format!(
                "optuna-dashboard {:?} is not supported; use one of: {}",
                h.dashboard_version,
                versions::optuna_dashboards()
            ),
        );
    }
    if let (Some(minor), Some(min)) = (versions::python_image_minor(&h.image), min_python) {
        if minor < min {
            c.err(
                "components.hpo.image",
                format!("{:?} has Python 3.{minor}, but optuna-dashboard {} needs Python 3.{min} or newer (and Python 3.8 cannot install Optuna newer than 4.5.0); use e.g. python:3.11-slim", h.image, h.dashboard_version),
            );
        }
    }
    image_ref(c, "components.hpo.image", &h.image);
    if let Some(url) = &h.index_url {
        c.http_url("components.hpo.index_url", url, "https://pypi.example.com/simple");
    }
    for (field, class) in
        [("class_name", &h.storage.class_name), ("journal_class_name", &h.storage.journal_class_name)]
    {
        if let Some(class) = class {
            c.subdomain(&format!("components.hpo.storage.{field}"), class);
        }
    }
    if let Some(fs) = &h.storage.efs_file_system_id {
        let f = "components.hpo.storage.efs_file_system_id";
        let hex = fs.strip_prefix("fs-").unwrap_or("");
        if hex.is_empty() || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
            c.err(f, format!("{fs:?} is not an EFS file system ID (fs-0123abcd...)"));
        }
        if env.target.kind != TargetKind::Eks {
            c.err(f, "EFS only applies to eks targets; remove it");
        } else if h.storage.class_name.is_none() {
            c.err(f, "the StorageClass rendered for the file system needs a name: set components.hpo.storage.class_name (e.g. efs-hpo)");
        }
    }
    let any_workspace = tenants.iter().any(|t| t.hpo.enabled);
    let mode = h.storage.access_mode.unwrap_or(AccessMode::ReadWriteOnce);
    match env.target.kind {
        // Trial pods land on any GPU or CPU node, and EBS volumes attach to one node only.
        TargetKind::Eks if any_workspace && mode != AccessMode::ReadWriteMany => c.err(
            "components.hpo.storage.access_mode",
            "trial pods on an eks target run on many nodes and all mount the artifact store and shared cache: use ReadWriteMany (an EFS CSI StorageClass, see docs/hpo.md)",
        ),
        TargetKind::Eks if any_workspace && h.storage.class_name.is_none() => c.err(
            "components.hpo.storage.class_name",
            "an eks target needs a ReadWriteMany StorageClass for the HPO artifact store and shared cache (the default gp2/gp3 class is ReadWriteOnce); set the EFS CSI class, e.g. efs-sc (terraform/ creates it with enable_efs = true)",
        ),
        TargetKind::Kind if mode == AccessMode::ReadWriteMany && h.storage.class_name.is_none() => c.err(
            "components.hpo.storage.access_mode",
            "kind's default local-path class only provides ReadWriteOnce volumes, so a ReadWriteMany claim would stay Pending; use ReadWriteOnce (all of a workspace's pods then share one node) or name a ReadWriteMany class_name",
        ),
        _ => {}
    }
    c.resources("components.hpo.server.resources", &h.server.resources);
    c.resources("components.hpo.dashboard.resources", &h.dashboard.resources);
    let ingress = &h.dashboard.ingress;
    if ingress.enabled {
        match &ingress.host {
            None => c.err(
                "components.hpo.dashboard.ingress.host",
                "an enabled ingress needs a host (e.g. hpo.example.com; tenant alice's dashboard is then alice.hpo.example.com)",
            ),
            Some(host) => c.subdomain("components.hpo.dashboard.ingress.host", host),
        }
        if ingress.certificate_arn.as_deref().is_some_and(|a| !a.starts_with("arn:aws:acm:")) {
            c.err(
                "components.hpo.dashboard.ingress.certificate_arn",
                "must be an ACM certificate ARN (arn:aws:acm:...)",
            );
        }
    }
}

/// Why a shared-cache directory cannot be a trial pod's mount path, if it cannot.
fn shared_cache_dir(dir: &str) -> Result<(), String> {
    if !dir.starts_with('/') {
        return Err("is not an absolute path; write it like /mnt/shared-cache".into());
    }
    let parts: Vec<&str> = dir.split('/').skip(1).collect();
    if dir == "/" || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err("is not a normalised directory below / (no empty, . or .. parts, no trailing /); write it like /mnt/shared-cache".into());
    }
    if dir.contains(':') || dir.chars().any(char::is_control) {
        return Err(
            "holds a ':' or control character, which a mount path cannot; write it like /mnt/shared-cache"
                .into(),
        );
    }
    let nested = |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    match limits::HPO_RESERVED_DIRS.iter().find(|&&r| nested(r, dir) || nested(dir, r)) {
        Some(r) => Err(format!(
            "collides with {r}, which trial pods mount for something else ({}); choose another directory, e.g. /mnt/shared-cache",
            limits::HPO_RESERVED_DIRS.join(", ")
        )),
        None => Ok(()),
    }
}

/// Node group placement and S3 buckets: the AWS resources trainstack reconciles itself.
fn check_aws(env: &Environment, c: &mut Checker) {
    let g = &env.components.gpu;
    let node_groups =
        env.target.kind == TargetKind::Eks && g.enabled && g.provider == GpuProvider::ManagedNodeGroups;
    // A missing placement is reported by diff and apply (rendering does not need it).
    match (&g.node_groups, node_groups) {
        (Some(_), false) if g.provider != GpuProvider::ManagedNodeGroups => c.err(
            "components.gpu.node_groups",
            "node_groups only applies to provider managed_node_groups; remove it",
        ),
        (Some(ng), _) => {
            let f = "components.gpu.node_groups";
            c.role_arn(&format!("{f}.node_role_arn"), &ng.node_role_arn);
            if ng.subnet_ids.is_empty() {
                c.err(
                    &format!("{f}.subnet_ids"),
                    "at least one subnet is needed (e.g. ${terraform.private_subnet_ids})",
                );
            }
            for (i, id) in ng.subnet_ids.iter().enumerate() {
                let hex = id.strip_prefix("subnet-").unwrap_or("");
                if hex.is_empty() || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
                    c.err(
                        &format!("{f}.subnet_ids[{i}]"),
                        format!("{id:?} is not a subnet ID (subnet-0123abcd...)"),
                    );
                }
            }
        }
        (None, _) => {}
    }
    let Some(aws) = &env.aws else { return };
    if env.target.kind != TargetKind::Eks {
        if aws.pod_identity.is_some() {
            c.err(
                "aws.pod_identity",
                "EKS Pod Identity only exists on eks targets; on kind the trainers reach MinIO with components.custom_jobs.storage.credentials_secret; remove it",
            );
        }
        if !aws.buckets.is_empty() {
            c.err("aws", "aws resources only apply to eks targets (kind uses components.minio); remove it");
        }
        return;
    }
    if let Some(pi) = &aws.pod_identity {
        c.role_arn("aws.pod_identity.role_arn", &pi.role_arn);
        let t = &env.components.tenants;
        if !t.enabled {
            c.err(
                "aws.pod_identity",
                "components.tenants.enabled is false, so no tenant has a trainer ServiceAccount to give an identity; enable tenants or remove it",
            );
        }
        for (i, tenant) in t.list.iter().enumerate().filter(|(_, t)| t.irsa_role_arn.is_some()) {
            // The SDKs try IRSA's web identity before Pod Identity's container credentials, so the
            // annotation would silently win over the tenant-scoped role.
            c.err(
                &format!("components.tenants.list[{i}].irsa_role_arn"),
                format!(
                    "tenant {:?} has an IRSA role while aws.pod_identity gives every tenant's trainer ServiceAccount the tenant role; remove one of them",
                    tenant.name
                ),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, b) in aws.buckets.iter().enumerate() {
        let f = format!("aws.buckets[{i}]");
        if let Err(m) = names::check_bucket_name(&b.name) {
            c.err(&format!("{f}.name"), m);
        }
        if !seen.insert(b.name.as_str()) {
            c.err(&format!("{f}.name"), format!("bucket {:?} is declared twice", b.name));
        }
        if b.managed_by == BucketOwner::Terraform {
            let set = [
                ("versioning", b.versioning.is_some()),
                ("encryption", b.encryption.is_some()),
                ("kms_key_id", b.kms_key_id.is_some()),
                ("block_public_access", b.block_public_access.is_some()),
                ("lifecycle", b.lifecycle.is_some()),
            ];
            for (field, _) in set.iter().filter(|(_, s)| *s) {
                c.err(
                    &format!("{f}.{field}"),
                    format!("{field} of a bucket managed_by terraform is set in terraform/, not here; remove it (trainstack only checks that the bucket exists)"),
                );
            }
            continue;
        }
        if b.kms_key_id.is_some() && b.encryption() != BucketEncryption::SseKms {
            c.err(&format!("{f}.kms_key_id"), "kms_key_id needs encryption: sse-kms");
        }
        let mut ids = BTreeSet::new();
        for (j, r) in b.lifecycle().iter().enumerate() {
            let rf = format!("{f}.lifecycle[{j}]");
            if r.id.is_empty() || r.id.len() > 255 {
                c.err(&format!("{rf}.id"), "a rule ID is 1 to 255 characters");
            }
            if !ids.insert(r.id.as_str()) {
                c.err(&format!("{rf}.id"), format!("rule {:?} is declared twice in this bucket", r.id));
            }
            let days = [
                ("expire_days", r.expire_days),
                ("noncurrent_expire_days", r.noncurrent_expire_days),
                ("abort_incomplete_multipart_days", r.abort_incomplete_multipart_days),
            ];
            if days.iter().all(|(_, d)| d.is_none()) {
                c.err(
                    &rf,
                    "a rule needs at least one of expire_days, noncurrent_expire_days, abort_incomplete_multipart_days",
                );
            }
            for (field, d) in days {
                if d == Some(0) {
                    c.err(&format!("{rf}.{field}"), "0 is below the minimum of 1 day");
                }
            }
            if r.noncurrent_expire_days.is_some() && !b.versioning() {
                c.err(
                    &format!("{rf}.noncurrent_expire_days"),
                    "noncurrent versions exist only in a versioned bucket; set versioning: true or remove it",
                );
            }
        }
    }
}

/// `aws.secrets` and how they reach the cluster (`components.secrets`).
fn check_secrets(env: &Environment, c: &mut Checker) {
    let mut seen = BTreeSet::new();
    for (i, s) in env.managed_secrets().iter().enumerate() {
        let f = format!("aws.secrets[{i}]");
        c.subdomain(&format!("{f}.name"), &s.name);
        if !seen.insert(s.name.as_str()) {
            c.err(&format!("{f}.name"), format!("Secret {:?} is declared twice", s.name));
        }
        match (secrets_manager_region(&s.from), env.target.region.as_deref()) {
            (None, _) => c.err(
                &format!("{f}.from"),
                format!("{:?} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>, e.g. ${{terraform.rds_secret_arn}})", s.from),
            ),
            // The secret is read with the environment's regional client.
            (Some(region), Some(target)) if region != target => c.err(
                &format!("{f}.from"),
                format!("the secret is in {region}, but the environment's region (target.region) is {target}; trainstack reads secrets in the cluster's region"),
            ),
            _ => {}
        }
        if s.data.is_empty() {
            c.err(
                &format!("{f}.data"),
                "a Secret needs at least one key (e.g. password: \"{{ password }}\")",
            );
        }
        for (key, value) in &s.data {
            let kf = format!("{f}.data.{key}");
            if key.is_empty() || !key.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch)) {
                c.err(&kf, format!("{key:?} is not a Secret key (letters, digits, '-', '_', '.')"));
            }
            if let Err(why) = ValueTemplate::parse(value) {
                c.err(&kf, why);
            }
        }
    }
    let s = &env.components.secrets;
    if s.mode == SecretsMode::ExternalSecrets {
        let f = "components.secrets.external_secrets";
        c.label(&format!("{f}.service_account"), &s.external_secrets.service_account);
        match &s.external_secrets.role_arn {
            Some(arn) => c.role_arn(&format!("{f}.role_arn"), arn),
            None if !env.managed_secrets().is_empty() => c.err(
                &format!("{f}.role_arn"),
                "the SecretStore authenticates as this ServiceAccount's IAM role; set role_arn (a role that may read the secrets, e.g. ${terraform.secrets_reader_role_arn})",
            ),
            None => {}
        }
        if !go_duration(&s.external_secrets.refresh_interval) {
            c.err(
                &format!("{f}.refresh_interval"),
                format!("{:?} is not a duration (e.g. 1h, 30m, 1h30m)", s.external_secrets.refresh_interval),
            );
        }
    }
}

/// The region of `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`, `None`
/// for anything else; the name keeps the characters Secrets Manager allows (and the `!` of the
/// secrets RDS manages).
fn secrets_manager_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "secretsmanager", region, account, "secret", name]
            if partition.starts_with("aws")
                && !region.is_empty()
                && region.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
                && account.len() == 12
                && account.chars().all(|ch| ch.is_ascii_digit())
                && !name.is_empty()
                && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@!-".contains(ch)) =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// A Go `time.Duration` as the operator parses it, in the units a refresh needs.
fn go_duration(d: &str) -> bool {
    let mut rest = d;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|ch: char| ch.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = rest.len() - rest.trim_start_matches(['h', 'm', 's']).len();
        if !matches!(&rest[..unit], "h" | "m" | "s") {
            return false;
        }
        rest = &rest[unit..];
    }
    !d.is_empty()
}

fn iam_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|ch| ch.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}
