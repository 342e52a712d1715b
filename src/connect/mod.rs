//! The one place a kube client is built, above both the engine and `aws/`: from a kubeconfig
//! file and context (`kubeconfig.rs`), or through the EKS API with token auth, and always with
//! the same tower stack (`client.rs`). The engine and the smoke checks receive the `Client`.

mod client;
mod kubeconfig;

use std::path::PathBuf;

use kube::Client;

use crate::env::model::{Environment, TargetKind};

pub use client::client_from;

/// Errors building a client: the kubeconfig, or the EKS connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file cannot be read or parsed.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The requested context does not exist.
    #[error("kubeconfig {path}: context {context:?} does not exist; available contexts: {available} (pass --context NAME or set target.context)")]
    NoContext {
        /// The file.
        path: String,
        /// The context asked for.
        context: String,
        /// Contexts in the file.
        available: String,
    },
    /// The EKS connection (DescribeCluster, credentials, token) failed.
    #[error(transparent)]
    Eks(#[from] crate::aws::AwsError),
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Kubeconfig path (`--kubeconfig`, `$KUBECONFIG`); default `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Context (`--context`); default from the environment.
    pub context: Option<String>,
    /// AWS configuration to reuse for an EKS connection (loaded when absent).
    pub aws: Option<crate::aws::Aws>,
    /// Requests in flight at most per class (`--concurrency`): the ceiling of the adaptive
    /// limit (`engine::throttle`).
    pub concurrency: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            kubeconfig: None,
            context: None,
            aws: None,
            concurrency: crate::engine::throttle::DEFAULT_CONCURRENCY,
        }
    }
}

/// Whether `connect` goes through the EKS API: an eks target with no kubeconfig, no context
/// flag and no `target.context`. An explicit kubeconfig or context always wins.
pub fn uses_eks_api(opts: &ConnectOptions, env: &Environment) -> bool {
    env.target.kind == TargetKind::Eks
        && opts.kubeconfig.is_none()
        && opts.context.is_none()
        && env.target.context.is_none()
}

/// The context an environment deploys to when `--context` is not given.
pub fn default_context(env: &Environment) -> Option<String> {
    env.target.context.clone().or_else(|| match env.target.kind {
        TargetKind::Kind => Some(format!("kind-{}", env.target.cluster_name)),
        TargetKind::Eks => None,
    })
}

/// Builds the client for an environment's cluster: through the EKS API (see [`uses_eks_api`]),
/// else from a kubeconfig file and context. Errors name the cluster, or the file and context.
pub async fn connect(opts: &ConnectOptions, env: &Environment) -> Result<Client, ConnectError> {
    if uses_eks_api(opts, env) {
        let aws = match &opts.aws {
            Some(aws) => aws.clone(),
            None => crate::aws::Aws::load(env.target.region.as_deref().unwrap_or_default()).await,
        };
        return Ok(client::eks(&aws, &env.target.cluster_name, opts.concurrency).await?);
    }
    let context = opts.context.clone().or_else(|| default_context(env));
    let chosen = kubeconfig::config(opts.kubeconfig.as_deref(), context).await?;
    let client = client_from(chosen.config, opts.concurrency)
        .map_err(|e| ConnectError::Kubeconfig { path: chosen.files, message: format!("{e}") })?;
    crate::engine::cluster::name_context(chosen.context, chosen.user);
    Ok(client)
}
