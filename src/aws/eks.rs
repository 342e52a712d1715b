//! A kube client for an EKS cluster: endpoint and CA from `DescribeCluster`, bearer tokens from
//! `token.rs`, kept fresh by a client layer.

use std::sync::Arc;

use base64::Engine;

use super::token::{BearerLayer, TokenSource};
use super::{Aws, AwsError};

/// What a client needs from `DescribeCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Cluster name.
    pub name: String,
    /// API server URL (`https://<id>.<region>.eks.amazonaws.com`).
    pub endpoint: String,
    /// `certificateAuthority.data`: base64 of the PEM CA bundle.
    pub ca_data: String,
    /// `ACTIVE`, `CREATING`, ...
    pub status: String,
}

/// Looks an EKS cluster up.
pub async fn describe_cluster(aws: &Aws, cluster: &str) -> Result<ClusterInfo, AwsError> {
    let out = aws.eks().describe_cluster().name(cluster).send().await.map_err(|e| {
        let not_found = e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception());
        if not_found {
            AwsError::ClusterNotFound { cluster: cluster.into(), region: aws.region.clone() }
        } else {
            AwsError::from_sdk("eks:DescribeCluster", &format!("cluster {cluster}"), e)
        }
    })?;
    let c = out.cluster.ok_or_else(|| AwsError::Connection {
        cluster: cluster.into(),
        message: "DescribeCluster returned no cluster".into(),
    })?;
    Ok(ClusterInfo {
        name: cluster.into(),
        endpoint: c.endpoint.unwrap_or_default(),
        ca_data: c.certificate_authority.and_then(|ca| ca.data).unwrap_or_default(),
        status: c.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
    })
}

/// The DER certificates of `certificateAuthority.data` (base64 of one or more PEM blocks).
pub fn decode_ca(cluster: &str, data: &str) -> Result<Vec<Vec<u8>>, AwsError> {
    let bad = |message: String| AwsError::Connection { cluster: cluster.into(), message };
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = b64
        .decode(data.trim())
        .map_err(|e| bad(format!("certificate authority data from DescribeCluster is not base64: {e}")))?;
    let pem = String::from_utf8(pem).map_err(|_| {
        bad("certificate authority data from DescribeCluster is not a PEM certificate".into())
    })?;
    let mut certs = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (line, body.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b)) => {
                let der = b64.decode(b.as_bytes()).map_err(|e| {
                    bad(format!("certificate {} of the cluster CA is not valid base64: {e}", certs.len() + 1))
                })?;
                certs.push(der);
                body = None;
            }
            (l, Some(b)) => b.push_str(l),
            _ => {}
        }
    }
    if certs.is_empty() {
        return Err(bad("certificate authority data from DescribeCluster holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The kube configuration for a described cluster (no credentials: the token layer adds them).
pub fn kube_config(info: &ClusterInfo) -> Result<kube::Config, AwsError> {
    let bad = |message: String| AwsError::Connection { cluster: info.name.clone(), message };
    if info.status != "ACTIVE" {
        return Err(bad(format!("status is {}, not ACTIVE; wait until the cluster is ready", info.status)));
    }
    let url =
        info.endpoint.parse::<http::Uri>().ok().filter(|u| u.scheme_str() == Some("https")).ok_or_else(
            || bad(format!("DescribeCluster returned {:?}, not an https endpoint", info.endpoint)),
        )?;
    let mut config = kube::Config::new(url);
    config.root_cert = Some(decode_ca(&info.name, &info.ca_data)?);
    Ok(config)
}

/// A client for `info` whose requests carry a fresh EKS token, at most `concurrency` in flight
/// per class (see `engine::cluster::client_from`).
pub fn client(
    info: &ClusterInfo,
    tokens: Arc<TokenSource>,
    concurrency: usize,
) -> Result<kube::Client, AwsError> {
    let config = kube_config(info)?;
    let auth = Some(BearerLayer::new(tokens));
    crate::engine::cluster::client_with_auth(config, auth, concurrency).map_err(|e| AwsError::Connection {
        cluster: info.name.clone(),
        message: format!("cannot build a client: {e}"),
    })
}

/// Connects to the EKS cluster `cluster`: DescribeCluster, then a client authenticating with
/// tokens minted from the standard credential chain, at most `concurrency` requests in flight
/// per class.
pub async fn connect(aws: &Aws, cluster: &str, concurrency: usize) -> Result<kube::Client, AwsError> {
    let info = describe_cluster(aws, cluster).await?;
    let credentials = aws.config.credentials_provider().ok_or_else(|| AwsError::Credentials {
        message: "the AWS configuration has no credential provider".into(),
    })?;
    let tokens = Arc::new(TokenSource::new(credentials, &aws.region, cluster));
    // Fail here, with the credential chain's own explanation, rather than on the first request.
    tokens.header().await?;
    client(&info, tokens, concurrency)
}

#[cfg(test)]
mod tests {
    //! moto's DescribeCluster returns random CA data, so CA decoding and client construction are
    //! covered here with a focused fake instead: a real CA (tests/fixtures/aws/eks-ca.pem) and a
    //! TLS endpoint whose certificate it signed (apiserver.pem, for 127.0.0.1).
    use super::*;

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

    #[test]
    fn ca_data_decodes_to_der_certificates() {
        let certs = decode_ca("c1", &b64(CA_PEM)).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0][0], 0x30, "DER starts with a SEQUENCE");
        let two = format!("{CA_PEM}{CA_PEM}");
        assert_eq!(decode_ca("c1", &b64(&two)).unwrap().len(), 2, "a bundle keeps every certificate");
    }

    #[test]
    fn bad_ca_data_is_a_clear_error() {
        let e = decode_ca("c1", "%%%").unwrap_err().to_string();
        assert!(e.contains("cluster \"c1\"") && e.contains("not base64"), "{e}");
        // What moto returns: random letters that happen to decode to garbage.
        let e = decode_ca("c1", &b64("qwertyuiopasdfgh")).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
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
        assert!(client(&info(b64(CA_PEM)), tokens, 8).is_ok());
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
        assert!(client(&i, tokens.clone(), 8).unwrap().apiserver_version().await.is_err());
        i.ca_data = b64(CA_PEM);
        let version = client(&i, tokens, 8).unwrap().apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.33.1");
        let request = server.await.unwrap().to_lowercase();
        assert!(request.starts_with("get /version "), "{request}");
        assert!(request.contains("authorization: bearer k8s-aws-v1."), "{request}");
    }

    #[test]
    fn endpoint_and_status_are_checked() {
        let mut i = info(b64(CA_PEM));
        i.endpoint = "http://plain".into();
        assert!(kube_config(&i).unwrap_err().to_string().contains("not an https endpoint"));
        let mut i = info(b64(CA_PEM));
        i.status = "CREATING".into();
        assert!(kube_config(&i).unwrap_err().to_string().contains("status is CREATING"));
    }
}
