//! Cluster connection failures name the server, the kubeconfig context and the cause: refused
//! connections, TLS verdicts (unknown authority, certificate name mismatch) and refused or
//! forbidden credentials with the kubeconfig user.

use std::sync::Arc;

use base64::Engine as _;

use crate::engine::Scenario;
use crate::support::apiserver::ApiServer;

const CA: &str = include_str!("fixtures/aws/eks-ca.pem");
const OTHER_CA: &str = include_str!("fixtures/aws/other-ca.pem");

/// A kubeconfig whose context `kind-trainstack` (the scenario's default) reaches `server` as
/// user `ci-bot` with `token`, trusting `ca` when given.
fn kubeconfig(server: &str, ca: Option<&str>, token: &str) -> String {
    let ca = ca
        .map(|pem| {
            format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dev\n  cluster:\n    server: {server}{ca}\ncontexts:\n- name: kind-trainstack\n  context: {{cluster: dev, user: ci-bot}}\ncurrent-context: kind-trainstack\nusers:\n- name: ci-bot\n  user: {{token: {token}}}\n"
    )
}

/// A TLS endpoint on 127.0.0.1 with the fixture certificate (signed by eks-ca.pem, valid for
/// the IP 127.0.0.1 only) that completes handshakes and answers nothing else; returns its port.
async fn tls_endpoint() -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::pem_slice_iter(include_bytes!("fixtures/aws/apiserver.pem"))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/aws/apiserver.key")).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    port
}

async fn diff_fails(s: &Scenario, kubeconfig: &str) -> String {
    std::fs::write(s.path("kubeconfig"), kubeconfig).unwrap();
    let out = s.test(&["diff"]).status(1).run_async().await;
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    out.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_server_is_named_with_its_context_and_the_cause() {
    let s = Scenario::start().await;
    let dead = ApiServer::start().await;
    let url = dead.url();
    drop(dead);
    let stderr = diff_fails(&s, &kubeconfig(&url, None, "t")).await;
    assert!(
        stderr.contains(&format!("cannot reach the API server {url}/ (context \"kind-trainstack\"): ")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_from_an_unknown_authority_is_worded_as_such() {
    let s = Scenario::start().await;
    let port = tls_endpoint().await;
    let server = format!("https://127.0.0.1:{port}");
    let stderr = diff_fails(&s, &kubeconfig(&server, Some(OTHER_CA), "t")).await;
    assert!(
        stderr.contains(&format!(
            "TLS: the API server {server}/ (context \"kind-trainstack\") presented a certificate signed by an unknown authority"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot reach"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_for_another_name_is_worded_as_a_name_mismatch() {
    let s = Scenario::start().await;
    let port = tls_endpoint().await;
    // The certificate names 127.0.0.1 only; the same endpoint by another name fails
    // verification after the CA check passed.
    let server = format!("https://localhost:{port}");
    let stderr = diff_fails(&s, &kubeconfig(&server, Some(CA), "t")).await;
    assert!(
        stderr.contains(&format!(
            "TLS: the API server {server}/ (context \"kind-trainstack\") presented a certificate that is not valid for its address (certificate name mismatch"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_credentials_name_the_kubeconfig_user() {
    let server = ApiServer::builder().users(&[("good-token", "alice", true)]).start().await;
    let url = server.url();
    let s = Scenario::with(server);
    let stderr = diff_fails(&s, &kubeconfig(&url, None, "expired-token")).await;
    assert!(
        stderr.contains(&format!(
            "the API server {url}/ refused the credentials of kubeconfig user \"ci-bot\" of context \"kind-trainstack\" (401 Unauthorized: Unauthorized)"
        )),
        "{stderr}"
    );

    // The right token works.
    std::fs::write(s.path("kubeconfig"), kubeconfig(&url, None, "good-token")).unwrap();
    s.test(&["diff"]).status(2).run_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_user_is_named() {
    let server = ApiServer::builder().users(&[("bob-token", "bob", false)]).start().await;
    let url = server.url();
    let s = Scenario::with(server);
    let stderr = diff_fails(&s, &kubeconfig(&url, None, "bob-token")).await;
    assert!(stderr.contains("forbidden: User \"bob\" cannot get path \"/api"), "{stderr}");
    assert!(
        stderr.contains(
            "(kubeconfig user \"ci-bot\" of context \"kind-trainstack\" is authenticated, but the cluster's authorization forbids this)"
        ),
        "{stderr}"
    );
}
