//! The top-level error: every module's error, reported once at the edge.

use crate::diag::Diagnostics;

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's environment files, job specs or flags.
    #[error("{0}")]
    Input(#[from] Diagnostics),
    /// Rendering failed (template or its output).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// An add-on could not be loaded.
    #[error(transparent)]
    Addon(#[from] crate::addons::AddonError),
    /// No client could be built for the cluster (kubeconfig, EKS connection).
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),
    /// A call to the cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::engine::cluster::ClusterError),
    /// An AWS call failed outside any single resource (credentials, missing cluster).
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// A Secret of `aws.secrets` could not be built from Secrets Manager.
    #[error(transparent)]
    Secret(#[from] crate::aws::secrets::SecretError),
    /// A diff, apply or delete stopped.
    #[error(transparent)]
    Run(#[from] crate::engine::run::RunError),
    /// A kind cluster could not be created or deleted.
    #[error(transparent)]
    Kind(#[from] crate::targets::kind::KindError),
    /// Terraform could not be run or failed.
    #[error(transparent)]
    Terraform(#[from] crate::targets::terraform::TerraformError),
    /// Writing rendered files failed.
    #[error(transparent)]
    Output(#[from] crate::manifest::OutError),
    /// Anything else, with context.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::render::BatchError> for Error {
    fn from(e: crate::render::BatchError) -> Self {
        match e {
            crate::render::BatchError::Invalid(d) => Error::Input(d),
            crate::render::BatchError::Render(r) => Error::Render(r),
        }
    }
}

impl Error {
    /// Whether writing to stdout failed because its reader closed the pipe.
    pub fn is_broken_pipe(&self) -> bool {
        let broken = |e: &(dyn std::error::Error + 'static)| {
            e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        };
        match self {
            Error::Other(e) => e.chain().any(broken),
            other => std::iter::successors(Some(other as &(dyn std::error::Error + 'static)), |e| e.source())
                .any(broken),
        }
    }

    /// The EKS cluster this error says does not exist (connecting to it, or reconciling its
    /// node groups).
    pub fn missing_eks_cluster(&self) -> Option<&str> {
        use crate::aws::AwsError;
        use crate::connect::ConnectError;
        match self {
            Error::Aws(AwsError::ClusterNotFound { cluster, .. })
            | Error::Connect(ConnectError::Eks(AwsError::ClusterNotFound { cluster, .. })) => Some(cluster),
            _ => None,
        }
    }

    /// The text shown to the user: diagnostics already carry `error:` per line.
    pub fn report(&self) -> String {
        match self {
            Error::Input(d) => {
                let n = d.0.len();
                format!(
                    "{d}\n{n} problem{} found; nothing was rendered or applied",
                    if n == 1 { "" } else { "s" }
                )
            }
            Error::Other(e) => format!("error: {e:#}"),
            other => format!("error: {other}"),
        }
    }
}

impl From<crate::render::TemplateError> for Error {
    fn from(e: crate::render::TemplateError) -> Self {
        Error::Render(e.into())
    }
}
