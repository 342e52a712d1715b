//! What a kube client for an EKS cluster needs from AWS: the endpoint and CA from
//! `DescribeCluster`, as a kube configuration without credentials (`connect/` adds the token
//! layer from `token.rs` and builds the client).

use base64::Engine;

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

#[cfg(test)]
mod tests {
    //! moto's DescribeCluster returns random CA data, so CA decoding is covered here with a real
    //! CA instead (tests/fixtures/aws/eks-ca.pem); `connect/client.rs` builds clients from it.
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
