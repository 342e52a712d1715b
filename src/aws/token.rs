//! EKS bearer tokens minted the way `aws eks get-token` does, and a client layer that keeps one
//! fresh during long applies.
//!
//! A token is a presigned STS `GetCallerIdentity` URL with the cluster name signed in the
//! `x-k8s-aws-id` header, base64url-encoded without padding behind `k8s-aws-v1.`. The EKS API
//! server calls STS with it to learn who is calling, and accepts a token for 15 minutes after
//! its `X-Amz-Date` (whatever `X-Amz-Expires` says), so the layer re-mints a token once it is
//! 10 minutes old.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningParams, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use super::AwsError;

/// Prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// A token is re-minted once it is this old (EKS accepts it for 15 minutes).
pub const REFRESH_AFTER: Duration = Duration::from_secs(10 * 60);

/// The presigned STS `GetCallerIdentity` URL for `cluster`, signed with `creds` at `time`.
pub fn presigned_url(
    creds: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String, AwsError> {
    let signing_failed = |e: &dyn std::fmt::Display| AwsError::Token {
        cluster: cluster.to_string(),
        message: format!("cannot presign the STS request: {e}"),
    };
    let base = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let host = format!("sts.{region}.amazonaws.com");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let identity = creds.clone().into();
    let params: SigningParams = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_failed(&e))?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing_failed(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| signing_failed(&e))?.into_parts();
    let mut url = base;
    // The signature goes last, after the session token, as botocore and the AWS CLI write it
    // (the order does not change what is signed).
    let mut params: Vec<_> = instructions.params().iter().collect();
    params.sort_by_key(|(name, _)| *name == "X-Amz-Signature");
    for (name, value) in params {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    Ok(url)
}

/// `k8s-aws-v1.` + unpadded base64url of the presigned URL.
pub fn token_from_url(url: &str) -> String {
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

/// RFC 3986 unreserved characters stay, everything else is %XX (as SigV4 query strings want).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where tokens come from: the AWS credential chain, the region and the cluster name.
pub struct TokenSource {
    credentials: SharedCredentialsProvider,
    region: String,
    cluster: String,
    refresh_after: Duration,
    current: tokio::sync::Mutex<Option<(HeaderValue, Instant)>>,
}

impl TokenSource {
    /// A source for one cluster.
    pub fn new(credentials: SharedCredentialsProvider, region: &str, cluster: &str) -> Self {
        Self::with_refresh(credentials, region, cluster, REFRESH_AFTER)
    }

    /// A source that re-mints after `refresh_after` (tests shorten it).
    pub fn with_refresh(
        credentials: SharedCredentialsProvider,
        region: &str,
        cluster: &str,
        refresh_after: Duration,
    ) -> Self {
        TokenSource {
            credentials,
            region: region.to_string(),
            cluster: cluster.to_string(),
            refresh_after,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// A fresh token (minted now, or reused while younger than the refresh age).
    pub async fn mint(&self) -> Result<String, AwsError> {
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| AwsError::Credentials { message: super::error_chain(&e) })?;
        Ok(token_from_url(&presigned_url(&creds, &self.region, &self.cluster, SystemTime::now())?))
    }

    /// The `Authorization` header value to send now.
    pub async fn header(&self) -> Result<HeaderValue, AwsError> {
        let mut current = self.current.lock().await;
        if let Some((value, at)) = current.as_ref() {
            if at.elapsed() < self.refresh_after {
                return Ok(value.clone());
            }
        }
        let token = self.mint().await?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| AwsError::Token { cluster: self.cluster.clone(), message: e.to_string() })?;
        value.set_sensitive(true);
        *current = Some((value.clone(), Instant::now()));
        Ok(value)
    }
}

/// A tower layer that sets `Authorization: Bearer <EKS token>` on every request.
#[derive(Clone)]
pub struct BearerLayer {
    source: Arc<TokenSource>,
}

impl BearerLayer {
    /// A layer drawing tokens from `source`.
    pub fn new(source: Arc<TokenSource>) -> Self {
        BearerLayer { source }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;
    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer { inner, source: self.source.clone() }
    }
}

/// The service of [`BearerLayer`].
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    source: Arc<TokenSource>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> Service<Request<B>> for Bearer<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready clone is the one that was polled; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        Box::pin(async move {
            let value = source.header().await.map_err(|e| Box::new(e) as BoxError)?;
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
            inner.call(req).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_string),
            None,
            "test",
        )
    }

    #[test]
    fn url_carries_the_cluster_header_and_a_60_second_expiry() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let url = presigned_url(&creds(None), "eu-west-1", "c1", t).unwrap();
        assert!(url.starts_with(
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
        ));
        assert!(url.contains("X-Amz-Expires=60"), "{url}");
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"), "{url}");
        assert!(url.contains("X-Amz-Date=20260101T000000Z"), "{url}");
        // Another cluster name gives another signature: the name is signed.
        let other = presigned_url(&creds(None), "eu-west-1", "c2", t).unwrap();
        assert_ne!(url, other);
    }

    #[test]
    fn token_is_unpadded_base64url_of_the_url() {
        let token = token_from_url("https://sts.us-east-1.amazonaws.com/?a=b");
        let body = token.strip_prefix(TOKEN_PREFIX).unwrap();
        assert!(!body.contains('=') && !body.contains('+') && !body.contains('/'));
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        assert_eq!(decoded, b"https://sts.us-east-1.amazonaws.com/?a=b");
    }

    #[tokio::test]
    async fn the_layer_sets_a_bearer_token_on_every_request() {
        use tower::ServiceExt;
        let provider = SharedCredentialsProvider::new(creds(None));
        let source = Arc::new(TokenSource::new(provider, "us-east-1", "c1"));
        let echo = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, BoxError>(req.headers().get(http::header::AUTHORIZATION).cloned())
        });
        let mut svc = BearerLayer::new(source).layer(echo);
        for _ in 0..2 {
            let got = svc.ready().await.unwrap().call(Request::new(())).await.unwrap().unwrap();
            let token = got.to_str().unwrap().strip_prefix("Bearer ").unwrap();
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.strip_prefix(TOKEN_PREFIX).unwrap())
                .unwrap();
            assert!(String::from_utf8(url).unwrap().contains("Action=GetCallerIdentity"));
            assert!(got.is_sensitive(), "kept out of debug output");
        }
    }

    #[tokio::test]
    async fn header_is_reused_until_the_refresh_age_then_reminted() {
        let provider = SharedCredentialsProvider::new(creds(Some("session")));
        let fresh = TokenSource::with_refresh(provider.clone(), "us-east-1", "c1", Duration::from_secs(600));
        let a = fresh.header().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(fresh.header().await.unwrap(), a, "a young token is reused");
        let stale = TokenSource::with_refresh(provider, "us-east-1", "c1", Duration::from_millis(500));
        let b = stale.header().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // X-Amz-Date has one-second resolution, so a re-minted token differs.
        assert_ne!(stale.header().await.unwrap(), b, "an old token is re-minted");
    }
}
