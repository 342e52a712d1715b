//! The AWS side of an EKS environment that is not a Kubernetes object: what the EKS connection
//! needs (`eks.rs`, `token.rs`; `connect/` builds the client from them), GPU managed node
//! groups (`nodegroups/`), S3 buckets (`s3/`) and the tenants' Pod Identity associations
//! (`podidentity/`), reconciled together by `reconcile.rs` as part of `diff` and `apply`, and the
//! Secrets Manager values of `aws.secrets` (`secrets/`), read before anything is written.
//!
//! Each resource keeps the same split as the engine: a pure plan (desired from the environment,
//! live from a small trait) and a thin SDK adapter behind that trait, so the planning and the
//! waits are unit-tested against fakes and the adapters against moto. Imports point one way:
//! `reconcile.rs` → `nodegroups/`, `s3/`, `podidentity/` → `change.rs` (the change type all three share).

pub mod change;
pub mod eks;
pub mod nodegroups;
pub mod podidentity;
pub mod reconcile;
pub mod s3;
pub mod secrets;
pub mod token;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Tag (and label) naming the environment that created an AWS resource.
pub const ENVIRONMENT_TAG: &str = "trainstack.io/environment";

/// Errors from AWS calls and from building the EKS connection.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No usable credentials in the standard chain.
    #[error("no AWS credentials: {message}\n    configure a profile (AWS_PROFILE, aws sso login), environment variables (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or IRSA")]
    Credentials {
        /// Why the chain found none.
        message: String,
    },
    /// The caller may not make the call.
    #[error("{call} {resource}: access denied: {message}\n    the AWS identity in use lacks the permission; check AWS_PROFILE or the role's IAM policy")]
    AccessDenied {
        /// The API call, e.g. `eks:DescribeCluster`.
        call: String,
        /// What it was about.
        resource: String,
        /// AWS's message.
        message: String,
    },
    /// The EKS cluster does not exist in the region.
    #[error("EKS cluster {cluster:?} does not exist in {region} (target.cluster_name, target.region); create it with Terraform first")]
    ClusterNotFound {
        /// Cluster name.
        cluster: String,
        /// Region asked.
        region: String,
    },
    /// Any other failed call.
    #[error("{call} {resource}: {message}")]
    Api {
        /// The API call.
        call: String,
        /// What it was about.
        resource: String,
        /// AWS's error code and message, or the connection problem.
        message: String,
    },
    /// A token could not be minted.
    #[error("EKS token for cluster {cluster:?}: {message}")]
    Token {
        /// Cluster name.
        cluster: String,
        /// What went wrong.
        message: String,
    },
    /// The cluster's endpoint or CA from DescribeCluster is unusable.
    #[error("EKS cluster {cluster:?}: {message}")]
    Connection {
        /// Cluster name.
        cluster: String,
        /// What is wrong.
        message: String,
    },
}

impl AwsError {
    /// Classifies a failed SDK call. `call` is the IAM action (`eks:CreateNodegroup`), `resource`
    /// names the object (`node group gpu-p3`).
    pub fn from_sdk<E>(
        call: &str,
        resource: &str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        let code = err.code().unwrap_or("").to_string();
        let message = err.message().map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        // The service's own words: `ExpiredToken: The security token included in the request is
        // expired` (the code is what AWS documentation and support search by).
        let said = match message {
            Some(m) if !code.is_empty() => format!("{code}: {m}"),
            Some(m) => m,
            None if !code.is_empty() => code.clone(),
            None => error_chain(&err),
        };
        match &err {
            // A refusal whose body the SDK could not read (an emulator, a proxy): the status says
            // enough.
            SdkError::ServiceError(_) if code.is_empty() && status == Some(403) => AwsError::AccessDenied {
                call: call.into(),
                resource: resource.into(),
                message: "HTTP 403: the request was refused (invalid, expired or unauthorised credentials)"
                    .into(),
            },
            SdkError::ServiceError(_) if is_access_denied(&code) => {
                AwsError::AccessDenied { call: call.into(), resource: resource.into(), message: said }
            }
            SdkError::ServiceError(_) => {
                AwsError::Api { call: call.into(), resource: resource.into(), message: said }
            }
            _ => {
                let chain = error_chain(&err);
                if chain.contains("credentials") {
                    AwsError::Credentials { message: chain }
                } else {
                    AwsError::Api { call: call.into(), resource: resource.into(), message: chain }
                }
            }
        }
    }
}

fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidClientTokenId"
    )
}

/// An error and its causes on one line (the SDK's own Display is only the outermost):
/// `dispatch failure: io error: client error (Connect): tcp connect error: Connection refused`.
/// Not aws-smithy's `DisplayErrorContext`, which ends its text with the error's Debug dump
/// (`(DispatchFailure(DispatchFailure { source: ...`), unreadable to the user.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error_chain::error_chain(e)
}

/// The HTTPS client of every AWS SDK client: rustls with ring (the crypto kube already uses), so
/// the build needs no aws-lc toolchain.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The AWS configuration of one EKS environment: the standard credential chain (environment,
/// profiles, SSO, IRSA web identity, IMDS), the environment's region, and `AWS_ENDPOINT_URL`
/// when set (moto, LocalStack).
#[derive(Clone, Debug)]
pub struct Aws {
    /// The SDK configuration every client is built from.
    pub config: SdkConfig,
    /// The environment's region.
    pub region: String,
}

impl Aws {
    /// Loads the configuration for `region`. No call is made yet: credentials are resolved on
    /// first use.
    pub async fn load(region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .http_client(http_client())
            .load()
            .await;
        Aws { config, region: region.to_string() }
    }

    /// An EKS client.
    pub fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.config)
    }

    /// An S3 client; path-style addressing when a custom endpoint is set (moto, MinIO), since
    /// `<bucket>.<host>` names do not resolve there.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.config.endpoint_url().is_some())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::AwsError;

    fn service_error(status: u16, code: &str, message: &str) -> SdkError<DescribeClusterError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(DescribeClusterError::generic(meta), raw)
    }

    #[test]
    fn a_service_error_reads_as_its_code_and_message() {
        let expired =
            service_error(403, "ExpiredToken", "The security token included in the request is expired");
        let e = AwsError::from_sdk("eks:DescribeCluster", "cluster c1", expired).to_string();
        assert!(
            e.starts_with("eks:DescribeCluster cluster c1: access denied: ExpiredToken: The security token included in the request is expired\n"),
            "{e}"
        );
        let throttled = service_error(400, "ThrottlingException", "Rate exceeded");
        let e = AwsError::from_sdk("eks:DescribeCluster", "cluster c1", throttled).to_string();
        assert_eq!(e, "eks:DescribeCluster cluster c1: ThrottlingException: Rate exceeded");
    }
}
