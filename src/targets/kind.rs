//! Local kind clusters: the cluster config derived from an environment, and the `kind` CLI
//! driven to create, fill and delete the cluster.
//!
//! `kind_config` is pure; [`Kind`] is the adapter that runs `kind` and `docker` and waits for
//! the nodes through the Kubernetes API.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;
use serde_json::{json, Value};

use crate::connect::ConnectError;
use crate::env::model::{Environment, GpuPool, GpuProvider, Target, TargetKind};
use crate::env::versions::default_node_image;
use crate::targets::process::{self, ProcessError, Program, RunOptions, Stream};

/// Where to install kind from, shown when it is missing.
pub const KIND_INSTALL: &str = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation";
/// Where to install Docker from, shown when it is missing.
pub const DOCKER_INSTALL: &str = "https://docs.docker.com/engine/install/";

/// The node image of a kind target: `target.node_image`, else the table's image.
pub fn node_image(target: &Target) -> Option<String> {
    target.node_image.clone().or_else(|| default_node_image(&target.kubernetes_version).map(String::from))
}

/// The GPU pools that become kind workers (none unless GPU support is on with provider `kind`).
fn kind_pools(env: &Environment) -> &[GpuPool] {
    let gpu = &env.components.gpu;
    if gpu.enabled && gpu.provider == GpuProvider::Kind {
        &gpu.pools
    } else {
        &[]
    }
}

/// The kind cluster config (`kind.x-k8s.io/v1alpha4` `Cluster`) for an environment.
///
/// One control-plane carries the ingress port mappings and the `ingress-ready=true` label the
/// kind flavour of ingress-nginx selects. Then `target.workers` general workers, then per GPU
/// pool `max(desired_size, 1)` workers with the labels and taints an EKS node of that pool
/// would have, so GPU scheduling rules (selectors, tolerations) are exercised without GPUs.
///
/// Validation guarantees a node image for kind targets; without one the `image` keys are left
/// out and kind uses its built-in default.
pub fn kind_config(env: &Environment) -> Value {
    let target = &env.target;
    let image = node_image(target);
    let node = |role: &str| {
        let mut n = json!({ "role": role });
        if let Some(image) = &image {
            n["image"] = json!(image);
        }
        n
    };

    let ports = target.ingress_ports();
    let mut control_plane = node("control-plane");
    control_plane["labels"] = json!({ "ingress-ready": "true" });
    control_plane["extraPortMappings"] = json!([
        { "containerPort": 80, "hostPort": ports.http, "protocol": "TCP" },
        { "containerPort": 443, "hostPort": ports.https, "protocol": "TCP" },
    ]);

    let mut nodes = vec![control_plane];
    nodes.extend((0..target.workers()).map(|_| node("worker")));
    for pool in kind_pools(env) {
        let mut labels: BTreeMap<&str, &str> =
            pool.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // The defaults win over pool labels, as on EKS and Karpenter nodes: workloads select
        // GPU nodes by them.
        labels.insert("nvidia.com/gpu.present", "true");
        labels.insert("trainstack.io/pool", &pool.name);
        let mut worker = node("worker");
        worker["labels"] = json!(labels);
        if !pool.taints.is_empty() {
            // kind has no taint field; kubeadm registers the node with these taints on join.
            let patch = json!({
                "kind": "JoinConfiguration",
                "nodeRegistration": { "taints": pool.taints },
            });
            worker["kubeadmConfigPatches"] = json!([crate::yaml::to_string(&patch)]);
        }
        nodes.extend((0..pool.desired_size.max(1)).map(|_| worker.clone()));
    }

    json!({
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": target.cluster_name,
        "nodes": nodes,
    })
}

/// Number of nodes a generated config declares.
pub fn node_count(config: &Value) -> usize {
    config["nodes"].as_array().map_or(0, Vec::len)
}

/// The kubeconfig context kind creates for a cluster.
pub fn context_name(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// Errors creating or deleting a kind cluster.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// The environment does not describe a kind cluster.
    #[error("environment {environment:?} targets {kind}; `trainstack cluster` only manages kind clusters")]
    NotKind {
        /// Environment name.
        environment: String,
        /// Its target kind.
        kind: &'static str,
    },
    /// `docker info` failed: the client is there, the engine is not.
    #[error(
        "docker is installed but its engine is not running: start Docker (or Docker Desktop) and retry\n  `{command}` said:\n{stderr}"
    )]
    DockerNotRunning {
        /// The command that was run.
        command: String,
        /// The end of its stderr, indented.
        stderr: String,
    },
    /// `kind` or `docker` is missing, or a command failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The generated config could not be written for kind to read.
    #[error("cannot write the kind config to a temporary file: {0}")]
    WriteConfig(#[source] std::io::Error),
    /// The new cluster could not be reached to wait for its nodes.
    #[error("kind cluster {cluster:?} was created but cannot be reached: {source}")]
    Connect {
        /// Cluster name.
        cluster: String,
        /// Why.
        #[source]
        source: ConnectError,
    },
    /// Not every node became Ready in time.
    #[error(
        "nodes of kind cluster {cluster:?} not ready after {timeout}: {ready}/{total} ready{detail} \
         (inspect with `kubectl --context kind-{cluster} describe nodes`, or rerun with a longer --timeout)"
    )]
    NodesNotReady {
        /// Cluster name.
        cluster: String,
        /// The wait bound, e.g. `5m`.
        timeout: String,
        /// Ready nodes.
        ready: usize,
        /// Nodes expected.
        total: usize,
        /// Which nodes are not ready, or the last API error.
        detail: String,
    },
}

/// The programs to run, by name (looked up on PATH) or path.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The kind CLI.
    pub kind: OsString,
    /// The docker CLI.
    pub docker: OsString,
}

impl Programs {
    /// `kind` and `docker` from PATH, unless `TRAINSTACK_KIND` / `TRAINSTACK_DOCKER` name others
    /// (a wrapper script, a pinned kind release, or a fake in tests).
    pub fn from_env() -> Self {
        Programs {
            kind: process::program_from_env("TRAINSTACK_KIND", "kind"),
            docker: process::program_from_env("TRAINSTACK_DOCKER", "docker"),
        }
    }
}

/// Settings of [`Kind::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Wait this long for the control-plane (kind's `--wait`) and then for every node to be
    /// Ready; `None` returns as soon as kind does.
    pub wait: Option<Duration>,
    /// How the nodes are watched: the context kind creates, in the kubeconfig kind writes it to
    /// (default: kind's and kube's default, `$KUBECONFIG` or `~/.kube/config`).
    pub connection: crate::connect::ConnectOptions,
}

/// What [`Kind::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new cluster was created.
    New,
    /// The cluster existed already and was left as it was.
    Existing,
}

/// The kind and docker CLIs, found and checked by [`Kind::preflight`].
#[derive(Debug, Clone)]
pub struct Kind {
    kind: Program,
    docker: Program,
}

impl Kind {
    /// Finds both programs and checks that the Docker engine answers, so that a missing tool
    /// is reported with what to install before anything is attempted.
    pub async fn preflight(programs: &Programs) -> Result<Kind, KindError> {
        let kind = Program::locate(&programs.kind, "kind", KIND_INSTALL)?;
        let docker = Program::locate(&programs.docker, "docker", DOCKER_INSTALL)?;
        let this = Kind { kind, docker };
        match this.run(&this.docker, &["info"], false).await {
            Ok(_) => Ok(this),
            Err(KindError::Process(ProcessError::Failed { command, stderr, .. })) => {
                Err(KindError::DockerNotRunning { command, stderr })
            }
            Err(e) => Err(e),
        }
    }

    /// Names of the existing kind clusters.
    pub async fn clusters(&self) -> Result<Vec<String>, KindError> {
        let out = self.run(&self.kind, &["get", "clusters"], false).await?;
        Ok(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
    }

    /// Creates the environment's cluster unless it exists, waits for its nodes (when asked),
    /// and loads `target.load_images` into it. Safe to rerun.
    pub async fn create(&self, env: &Environment, opts: &CreateOptions) -> Result<Created, KindError> {
        let name = env.target.cluster_name.as_str();
        let config = kind_config(env);
        let created = if self.clusters().await?.iter().any(|c| c == name) {
            eprintln!(
                "kind cluster {name:?} already exists; leaving it as it is \
                 (delete it first to change its nodes or node image)"
            );
            Created::Existing
        } else {
            self.create_cluster(env, &config, opts).await?;
            Created::New
        };
        if let Some(timeout) = opts.wait {
            // A cluster made by an earlier run may have another layout: wait for what it has.
            let expected = if created == Created::New { node_count(&config) } else { 1 };
            wait_for_nodes(name, &opts.connection, env, expected, timeout).await?;
        }
        for image in env.target.load_images() {
            eprintln!("loading image {image} into kind cluster {name:?}");
            self.run(&self.kind, &["load", "docker-image", image, "--name", name], true).await?;
        }
        Ok(created)
    }

    async fn create_cluster(
        &self,
        env: &Environment,
        config: &Value,
        opts: &CreateOptions,
    ) -> Result<(), KindError> {
        let name = env.target.cluster_name.as_str();
        let pool_workers = node_count(config) - 1 - env.target.workers() as usize;
        eprintln!(
            "creating kind cluster {name:?}: 1 control-plane, {} general worker(s), {pool_workers} GPU pool worker(s), image {}",
            env.target.workers(),
            node_image(&env.target).unwrap_or_else(|| "kind's default".into()),
        );
        // kind reads the config from a file; it lives until kind has exited.
        let file = tempfile::Builder::new()
            .prefix("trainstack-kind-")
            .suffix(".yaml")
            .tempfile()
            .map_err(KindError::WriteConfig)?;
        std::fs::write(file.path(), crate::yaml::to_string(config)).map_err(KindError::WriteConfig)?;
        let config_path = file.path().to_string_lossy().into_owned();
        let mut args = vec!["create", "cluster", "--name", name, "--config", &config_path];
        let wait = opts.wait.map(go_duration);
        if let Some(wait) = &wait {
            args.extend(["--wait", wait]);
        }
        let kubeconfig = opts.connection.kubeconfig.as_ref().map(|p| p.to_string_lossy().into_owned());
        if let Some(k) = &kubeconfig {
            args.extend(["--kubeconfig", k]);
        }
        self.run(&self.kind, &args, true).await?;
        Ok(())
    }

    /// Deletes the cluster. Returns false when there was none, which is not an error.
    pub async fn delete(&self, name: &str, kubeconfig: Option<&Path>) -> Result<bool, KindError> {
        if !self.clusters().await?.iter().any(|c| c == name) {
            eprintln!("kind cluster {name:?} does not exist; nothing to delete");
            return Ok(false);
        }
        eprintln!("deleting kind cluster {name:?}");
        let kubeconfig = kubeconfig.map(|p| p.to_string_lossy().into_owned());
        let mut args = vec!["delete", "cluster", "--name", name];
        if let Some(k) = &kubeconfig {
            args.extend(["--kubeconfig", k]);
        }
        self.run(&self.kind, &args, true).await?;
        Ok(true)
    }

    /// Runs a program to completion and returns its stdout. With `echo`, its stderr (where
    /// kind reports progress) is passed through indented as it arrives.
    async fn run(&self, program: &Program, args: &[&str], echo: bool) -> Result<String, KindError> {
        let opts = RunOptions {
            stderr: if echo { Stream::Stderr("  ") } else { Stream::Capture },
            ..RunOptions::default()
        };
        Ok(program.run(args, &opts).await?.stdout)
    }
}

/// A duration the way kind's `--wait` (Go's `time.ParseDuration`) reads it: `5m`, `90s`, `1h`,
/// `1500ms` (a part of a second must not round to `0s`, which kind reads as "do not wait").
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis().max(1))
    } else if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Whether a node reports the `Ready` condition as `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watches the cluster's nodes through `kind-<name>` until at least `expected` exist and all
/// are Ready. API errors while the cluster starts are retried (the watcher backs off and
/// relists) until the deadline.
async fn wait_for_nodes(
    cluster: &str,
    connect: &crate::connect::ConnectOptions,
    env: &Environment,
    expected: usize,
    timeout: Duration,
) -> Result<(), KindError> {
    let client: Client = crate::connect::connect(connect, env)
        .await
        .map_err(|source| KindError::Connect { cluster: cluster.to_string(), source })?;
    let nodes: Api<Node> = Api::all(client);
    let (store, writer) = reflector::store();
    let mut changes =
        std::pin::pin!(reflector(writer, watcher(nodes, watcher::Config::default()).default_backoff()));
    let mut last_shown = None;
    let mut counts = (0, expected);
    let mut detail = String::new();
    let mut listed = false;
    let watched = tokio::time::timeout(timeout, async {
        while let Some(change) = changes.next().await {
            match change {
                // The store is complete only once the first list is in.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(e) if listed || matches!(e, watcher::Event::InitDone) => {
                    listed = true;
                    let all = store.state();
                    let mut waiting: Vec<String> = all
                        .iter()
                        .filter(|n| !node_ready(n))
                        .map(|n| n.metadata.name.clone().unwrap_or_default())
                        .collect();
                    waiting.sort();
                    let total = all.len().max(expected);
                    counts = (all.len() - waiting.len(), total);
                    if counts.0 == total {
                        return;
                    }
                    if last_shown != Some(counts) {
                        eprintln!("waiting for nodes: {}/{} Ready", counts.0, counts.1);
                        last_shown = Some(counts);
                    }
                    detail = if waiting.is_empty() {
                        format!("; {} of {expected} nodes registered", all.len())
                    } else {
                        format!("; waiting on {}", waiting.join(", "))
                    };
                }
                Ok(_) => {}
                Err(e) => detail = format!("; last API error: {e}"),
            }
        }
        // The watcher never ends by itself; only the deadline does.
        std::future::pending::<()>().await
    })
    .await;
    match watched {
        Ok(()) => {
            eprintln!("all {} nodes of kind cluster {cluster:?} are Ready", counts.1);
            Ok(())
        }
        Err(_) => Err(KindError::NodesNotReady {
            cluster: cluster.to_string(),
            timeout: go_duration(timeout),
            ready: counts.0,
            total: counts.1,
            detail,
        }),
    }
}

/// The kind of a target, for messages.
pub fn target_kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Kind => "kind",
        TargetKind::Eks => "eks",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &str) -> Environment {
        let text = format!("name: t\ntarget:\n  kind: kind\n  cluster_name: dev\n{extra}");
        crate::yaml::from_str(&text).expect("test environment parses")
    }

    const POOLS: &str = "components:\n  gpu:\n    enabled: true\n    provider: kind\n    pools:\n      - name: a100\n        desired_size: 2\n        labels: {team: vision}\n      - name: t4\n        taints: []\n";

    #[test]
    fn node_image_follows_the_kubernetes_version_unless_overridden() {
        assert_eq!(node_image(&env("").target).as_deref(), Some("kindest/node:v1.33.1"));
        let t = env("  kubernetes_version: \"1.29\"\n").target;
        assert_eq!(node_image(&t).as_deref(), Some("kindest/node:v1.29.14"));
        let t = env("  kubernetes_version: \"1.36\"\n").target;
        assert_eq!(node_image(&t), None);
        let t = env("  kubernetes_version: \"1.36\"\n  node_image: my/node:v1.36.0\n").target;
        assert_eq!(node_image(&t).as_deref(), Some("my/node:v1.36.0"));
    }

    #[test]
    fn control_plane_maps_ingress_ports_and_is_labelled_ingress_ready() {
        let c = kind_config(&env("  ingress_ports: {http: 80, https: 443}\n"));
        let cp = &c["nodes"][0];
        assert_eq!(cp["role"], "control-plane");
        assert_eq!(cp["labels"]["ingress-ready"], "true");
        assert_eq!(
            cp["extraPortMappings"][0],
            json!({"containerPort": 80, "hostPort": 80, "protocol": "TCP"})
        );
        assert_eq!(cp["extraPortMappings"][1]["hostPort"], 443);
        assert_eq!(c["name"], "dev");
    }

    #[test]
    fn gpu_pools_become_labelled_tainted_workers() {
        let c = kind_config(&env(&format!("  workers: 2\n{POOLS}")));
        // control-plane + 2 general + 2 (a100, desired 2) + 1 (t4, desired 0 -> 1)
        assert_eq!(node_count(&c), 6);
        let nodes = c["nodes"].as_array().unwrap();
        assert!(nodes[1..3].iter().all(|n| n["role"] == "worker" && n.get("labels").is_none()));
        let a100 = &nodes[3];
        assert_eq!(a100, &nodes[4]);
        assert_eq!(
            a100["labels"],
            json!({"nvidia.com/gpu.present": "true", "team": "vision", "trainstack.io/pool": "a100"})
        );
        let patch: Value = serde_yaml::from_str(a100["kubeadmConfigPatches"][0].as_str().unwrap()).unwrap();
        assert_eq!(patch["kind"], "JoinConfiguration");
        assert_eq!(
            patch["nodeRegistration"]["taints"],
            json!([{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}])
        );
        // A pool without taints gets no patch at all rather than an empty taint list.
        assert_eq!(nodes[5]["labels"]["trainstack.io/pool"], "t4");
        assert!(nodes[5].get("kubeadmConfigPatches").is_none());
        assert!(nodes.iter().all(|n| n["image"] == "kindest/node:v1.33.1"));
    }

    #[test]
    fn pools_are_left_out_when_gpu_support_is_off() {
        let c = kind_config(&env(&POOLS.replace("enabled: true", "enabled: false")));
        assert_eq!(node_count(&c), 2);
    }

    #[test]
    fn pool_labels_cannot_override_the_gpu_labels() {
        let pools =
            POOLS.replace("{team: vision}", "{trainstack.io/pool: other, nvidia.com/gpu.present: \"false\"}");
        let c = kind_config(&env(&pools));
        assert_eq!(c["nodes"][2]["labels"]["trainstack.io/pool"], "a100");
        assert_eq!(c["nodes"][2]["labels"]["nvidia.com/gpu.present"], "true");
    }

    #[test]
    fn durations_are_written_for_go() {
        assert_eq!(go_duration(Duration::from_secs(300)), "5m");
        assert_eq!(go_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(go_duration(Duration::from_secs(90)), "90s");
        assert_eq!(go_duration(Duration::from_secs(0)), "0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn readiness_needs_a_true_ready_condition() {
        let node = |status: &str| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": "n"},
                "status": {"conditions": [{"type": "Ready", "status": status}]}
            }))
            .unwrap()
        };
        assert!(node_ready(&node("True")));
        assert!(!node_ready(&node("False")));
        assert!(!node_ready(&serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap()));
    }
}
