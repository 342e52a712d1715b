//! The client's tower stack, the same for every cluster: EKS token auth (when connecting
//! through the EKS API), the adaptive throttle, and the capture of the API server's warnings.

use std::sync::Arc;

use kube::Client;

use crate::aws::eks::{describe_cluster, kube_config, ClusterInfo};
use crate::aws::token::{BearerLayer, TokenSource};
use crate::aws::{Aws, AwsError};
use crate::engine::throttle::ThrottleLayer;
use crate::engine::warnings::CaptureLayer;

/// A client for `config` that keeps at most `concurrency` requests of a kind (reads, writes)
/// in flight, fewer while the server throttles, and retries 429s after at least their
/// `Retry-After` plus jitter (`engine::throttle`). kube's own retry policy is off: it waits
/// exactly `Retry-After`, so workers rejected together come back together, and it retries 503s
/// that mean "no endpoints" as if they were throttling. 5xx and dropped connections are retried
/// by `engine::cluster::retry`, for idempotent calls only.
pub fn client_from(config: kube::Config, concurrency: usize) -> Result<Client, kube::Error> {
    client_with_auth(config, None, concurrency)
}

/// [`client_from`] with EKS token auth between the connection and the throttle, so that every
/// retried request asks for the token again (and gets a re-minted one once it is old).
fn client_with_auth(
    mut config: kube::Config,
    auth: Option<BearerLayer>,
    concurrency: usize,
) -> Result<Client, kube::Error> {
    config.default_retry = false;
    crate::engine::cluster::name_server(config.cluster_url.to_string());
    // Retries need a cloneable inner service; a buffer makes the boxed stack one.
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::util::option_layer(auth))
        .with_layer(&ThrottleLayer::new(concurrency))
        .with_layer(&CaptureLayer)
        .build())
}

/// A client for `info` whose requests carry a fresh EKS token, at most `concurrency` in flight
/// per class (see [`client_from`]).
fn eks_client(
    info: &ClusterInfo,
    tokens: Arc<TokenSource>,
    concurrency: usize,
) -> Result<kube::Client, AwsError> {
    let config = kube_config(info)?;
    let auth = Some(BearerLayer::new(tokens));
    client_with_auth(config, auth, concurrency).map_err(|e| AwsError::Connection {
        cluster: info.name.clone(),
        message: format!("cannot build a client: {e}"),
    })
}

/// Connects to the EKS cluster `cluster`: DescribeCluster, then a client authenticating with
/// tokens minted from the standard credential chain, at most `concurrency` requests in flight
/// per class.
pub(super) async fn eks(aws: &Aws, cluster: &str, concurrency: usize) -> Result<kube::Client, AwsError> {
    let info = describe_cluster(aws, cluster).await?;
    let credentials = aws.config.credentials_provider().ok_or_else(|| AwsError::Credentials {
        message: "the AWS configuration has no credential provider".into(),
    })?;
    let tokens = Arc::new(TokenSource::new(credentials, &aws.region, cluster));
    // Fail here, with the credential chain's own explanation, rather than on the first request.
    tokens.header().await?;
    eks_client(&info, tokens, concurrency)
}

#[cfg(test)]
mod tests {
    //! moto's DescribeCluster returns random CA data, so client construction is covered here
    //! with a focused fake instead: a real CA (tests/fixtures/aws/eks-ca.pem) and a TLS endpoint
    //! whose certificate it signed (apiserver.pem, for 127.0.0.1).
    use super::*;
    use base64::Engine;

    const CA_PEM: &str = include_str!("../../tests/fixtures/aws/eks-ca.pem");

    fn info(ca_data: String) -> ClusterInfo {
        ClusterInfo {
            name: "c1".into(),
            endpoint: "https://ABCDEF.gr7.us-east-1.eks.amazonaws.com".into(),
            ca_data,
            status: "ACTIVE".into(),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[tokio::test]
    async fn a_client_is_built_from_endpoint_and_ca() {
        let creds = aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "test");
        let tokens = Arc::new(TokenSource::new(
            aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            "us-east-1",
            "c1",
        ));
        let config = kube_config(&info(b64(CA_PEM))).unwrap();
        assert!(config.cluster_url.host().is_some_and(|h| h.ends_with("eks.amazonaws.com")));
        assert!(eks_client(&info(b64(CA_PEM)), tokens, 8).is_ok());
    }

    /// A TLS endpoint with a certificate the fixture CA signed (as EKS's API server has): the
    /// client must trust it through the decoded CA alone and send a bearer token.
    #[tokio::test]
    async fn the_client_trusts_the_cluster_ca_and_sends_the_token() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let cert = CertificateDer::pem_slice_iter(include_bytes!("../../tests/fixtures/aws/apiserver.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../tests/fixtures/aws/apiserver.key")).unwrap();
        let tls =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(cert, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // A client that does not trust the certificate aborts the handshake; wait for one that does.
            let mut stream = loop {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(s) = acceptor.accept(tcp).await {
                    break s;
                }
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.1","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            String::from_utf8(request).unwrap()
        });

        let creds = aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "test");
        let tokens = Arc::new(TokenSource::new(
            aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            "us-east-1",
            "c1",
        ));
        // Another cluster's CA (same subject, other key) is not trusted.
        let mut i = info(b64(include_str!("../../tests/fixtures/aws/other-ca.pem")));
        i.endpoint = format!("https://127.0.0.1:{port}");
        assert!(eks_client(&i, tokens.clone(), 8).unwrap().apiserver_version().await.is_err());
        i.ca_data = b64(CA_PEM);
        let version = eks_client(&i, tokens, 8).unwrap().apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.33.1");
        let request = server.await.unwrap().to_lowercase();
        assert!(request.starts_with("get /version "), "{request}");
        assert!(request.contains("authorization: bearer k8s-aws-v1."), "{request}");
    }
}
