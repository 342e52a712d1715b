//! A moto server (AWS API emulator) on a 127.0.0.1 port from `ports`, killed on drop, with its
//! request log kept so tests can count the AWS writes the binary made.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pytools;

/// Credentials moto accepts (any non-empty pair).
pub const ACCESS_KEY: &str = "testing";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
}

impl Moto {
    /// Starts moto and waits until it answers. `env` is passed to the server (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` to turn on IAM checks).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = super::ports::free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        // moto's own server, with the one response the Rust SDK cannot parse fixed (see the script).
        let launcher =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/moto_server.py");
        pytools::tool("moto_server");
        let child = Command::new(pytools::tool("python"))
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start: {}", moto.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Starts moto with its defaults (no IAM checks).
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment variables that point an AWS SDK (the binary) at this server.
    pub fn client_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // A developer's own profiles must not leak in.
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// An SDK configuration for this server (for tests to seed and inspect state).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(aws_credential_types::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "moto",
            ))
            .http_client(trainstack::aws::http_client())
            .load()
            .await
    }

    /// An EKS client.
    pub async fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.sdk_config().await)
    }

    /// An S3 client (path-style, as moto needs).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config().await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A Secrets Manager client.
    pub async fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every request moto served, in order (werkzeug's access log lines).
    pub fn requests(&self) -> Vec<Request> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                // werkzeug colours some lines (4xx in yellow): drop the escape sequences.
                let plain = strip_ansi(l);
                let quoted = plain.split('"').nth(1)?;
                let mut parts = quoted.split(' ');
                let method = parts.next()?.to_string();
                let path = parts.next()?.to_string();
                Some(Request { method, path })
            })
            .filter(|r| !r.path.starts_with("/moto-api"))
            .collect()
    }

    /// The requests that change state: anything but GET and HEAD on the REST services (S3,
    /// EKS). Secrets Manager speaks the JSON protocol, which posts every call, reads included, to
    /// `/` with the operation in a header the access log does not show; trainstack only reads
    /// it (GetSecretValue), so those requests are left out rather than counted as writes.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD" && !(r.method == "POST" && r.path == "/"))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
