//! The MLflow and Ray smoke checks against real servers (`mlflow server`, `ray start --head`)
//! reached through the API server double's service proxy, and the proxy's own behaviour.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use trainstack::smoke::mlflow::{self, BasicAuth, MlflowTarget};
use trainstack::smoke::proxy::HttpCheckError;
use trainstack::smoke::ray::{self, RayTarget};

use crate::support::apiserver::{ApiServer, Fault, FaultRule};
use crate::support::pyservers::{self, free_port, PyServer, MLFLOW_ADMIN};

const NS: &str = "trainstack-system";

/// A double holding the platform namespace and Services named like the rendered ones, with
/// no routes yet: the Services have no endpoints.
async fn platform() -> ApiServer {
    let server = ApiServer::start().await;
    server.seed("kubectl", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    for (name, ports) in [
        ("mlflow", json!([{"name": "http", "port": 5000, "targetPort": "http"}])),
        (
            "ray-dashboard",
            json!([{"name": "dashboard", "port": 8265, "targetPort": 8265}, {"name": "client", "port": 10001}]),
        ),
    ] {
        server.seed(
            "kubectl",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"ports": ports, "selector": {"app.kubernetes.io/name": name}},
            }),
        );
    }
    server
}

/// [`platform`] with the Ray dashboard Service routed to the run's shared Ray head.
async fn platform_with_ray() -> (ApiServer, &'static PyServer) {
    let head = pyservers::shared_ray().await;
    let server = platform().await;
    server.route_service(NS, "ray-dashboard", 8265, &head.address());
    (server, head)
}

/// A client as trainstack builds it (429s retried after Retry-After plus jitter).
fn production_client(server: &ApiServer) -> kube::Client {
    trainstack::connect::client_from(server.config(), 8).expect("client")
}

/// A client that retries nothing, for asserting single answers.
fn plain_client(server: &ApiServer) -> kube::Client {
    let mut config = server.config();
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn mlflow_target(basic_auth: Option<(&str, &str)>) -> MlflowTarget {
    MlflowTarget {
        namespace: NS.into(),
        service: "mlflow".into(),
        port: 5000,
        url: None,
        basic_auth: basic_auth.map(|(user, password)| BasicAuth {
            user: user.into(),
            password: password.into(),
            secret: format!("{NS}/mlflow-admin"),
        }),
    }
}

fn ray_target() -> RayTarget {
    RayTarget { namespace: NS.into(), service: "ray-dashboard".into(), port: 8265 }
}

/// `GET` straight to a server (not through the proxy), for checking what the checks left.
async fn direct_json(address: &str, path: &str) -> (u16, Value) {
    let response =
        reqwest::Client::new().get(format!("http://{address}{path}")).send().await.expect("direct GET");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn proxied(service: &str, port: u16, path: &str) -> String {
    format!("/api/v1/namespaces/{NS}/services/{service}:{port}/proxy{path}")
}

fn expect_failure<T: std::fmt::Debug>(result: Result<T, HttpCheckError>) -> HttpCheckError {
    match result {
        Ok(report) => panic!("expected the check to fail, it passed: {report:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_round_trip_passes_through_the_service_proxy_and_cleans_up() {
    let mlflow_server = pyservers::shared_mlflow().await;
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &mlflow_server.address());

    let report = mlflow::check(&production_client(&server), &mlflow_target(None), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| {
            panic!("{e}\nhint: {}\nlogs:\n{}\nserver:\n{}", e.hint, e.logs, mlflow_server.log_tail())
        });

    let steps = report.steps.join("\n");
    for expected in [
        "GET /health answered OK",
        "created experiment trainstack-smoke-",
        "logged parameter",
        "logged metric",
        "uploaded artifact",
        "parameter and metric match",
        "bytes match",
        "deleted artifact",
        "deleted run",
        "deleted experiment",
    ] {
        assert!(steps.contains(expected), "no step {expected:?} in:\n{steps}");
    }
    // Every call went through the service proxy and succeeded there.
    let proxied_calls: Vec<_> =
        server.requests().into_iter().filter(|r| r.path.contains("/services/mlflow:5000/proxy/")).collect();
    for path in ["/health", "/api/2.0/mlflow/runs/log-metric", "/api/2.0/mlflow-artifacts/artifacts/"] {
        assert!(
            proxied_calls.iter().any(|r| r.path.contains(path) && r.status == 200),
            "no successful proxied call to {path}: {proxied_calls:?}"
        );
    }
    assert!(report.logs.contains("PUT /api/2.0/mlflow-artifacts/artifacts/"), "{}", report.logs);

    // Cleanup really happened on the server: experiment and run deleted, artifact gone.
    let name = report.steps[1].split_whitespace().nth(2).expect("experiment name").to_string();
    let (status, doc) = direct_json(
        &mlflow_server.address(),
        &format!("/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["experiment"]["lifecycle_stage"], "deleted", "{doc}");
    let run_id = report.steps[2].strip_prefix("created run ").expect("run step");
    let (_, run) =
        direct_json(&mlflow_server.address(), &format!("/api/2.0/mlflow/runs/get?run_id={run_id}")).await;
    assert_eq!(run["run"]["info"]["lifecycle_stage"], "deleted", "{run}");
    let leftovers: Vec<_> = walk(&mlflow_server.dir().join("artifacts"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(run_id))
        .filter(|p| p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "artifacts left behind: {leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_down_fails_at_health_with_the_connection_error_and_where_to_look() {
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &format!("127.0.0.1:{}", free_port()));

    let started = Instant::now();
    let e = expect_failure(
        mlflow::check(&production_client(&server), &mlflow_target(None), Duration::from_secs(60)).await,
    );
    eprintln!("MLflow down reported after {:?}", started.elapsed());
    assert_eq!(e.step, "health", "{e:?}");
    assert!(e.reason.contains("HTTP 503"), "{}", e.reason);
    assert!(e.reason.contains("error trying to reach service"), "{}", e.reason);
    assert!(e.reason.contains("connection refused"), "{}", e.reason);
    assert!(e.hint.contains("kubectl -n trainstack-system logs deploy/mlflow"), "{}", e.hint);
    assert!(e.logs.contains("GET /health -> 503"), "{}", e.logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_check_names_a_missing_service_or_missing_endpoints() {
    let server = platform().await;
    let client = plain_client(&server);

    let e = expect_failure(mlflow::check(&client, &mlflow_target(None), Duration::from_secs(10)).await);
    assert_eq!(e.step, "health");
    assert!(e.reason.contains("no endpoints available for service \"mlflow\""), "{}", e.reason);
    assert!(e.hint.contains("get endpointslices -l kubernetes.io/service-name=mlflow"), "{}", e.hint);

    let missing = MlflowTarget { service: "mlflow-typo".into(), ..mlflow_target(None) };
    let e = expect_failure(mlflow::check(&client, &missing, Duration::from_secs(10)).await);
    assert_eq!(e.step, "health");
    assert!(
        e.reason.contains("HTTP 404") && e.reason.contains("services \"mlflow-typo\" not found"),
        "{}",
        e.reason
    );
    assert!(e.hint.contains("kubectl -n trainstack-system get service mlflow-typo"), "{}", e.hint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_fails_at_once_naming_a_service_without_ready_endpoints() {
    let server = platform().await;
    let started = Instant::now();
    let e = expect_failure(
        mlflow::check(&production_client(&server), &mlflow_target(None), Duration::from_secs(60)).await,
    );
    let elapsed = started.elapsed();
    assert_eq!(e.step, "health", "{e:?}");
    assert!(e.reason.contains("no ready endpoints for service trainstack-system/mlflow"), "{}", e.reason);
    assert!(e.hint.contains("get endpointslices -l kubernetes.io/service-name=mlflow"), "{}", e.hint);
    // The 503 carries no Retry-After: it is not throttling, and is asked once (kube's retry
    // policy asked 11 times over 13 seconds).
    let proxied = server.requests().iter().filter(|r| r.path.contains("/proxy")).count();
    assert_eq!(proxied, 1, "{:?}", server.requests());
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_proxy_requests_throttled_with_retry_after_are_retried() {
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &echo_upstream().await);
    server.add_fault(
        FaultRule::new(Fault::TooManyRequests { retry_after_secs: 1 })
            .path_prefix(&proxied("mlflow", 5000, ""))
            .once(),
    );
    let started = Instant::now();
    let (status, headers, _) =
        raw(&production_client(&server), "POST", &proxied("mlflow", 5000, "/api"), &[], "{}").await;
    assert_eq!((status, headers.get("X-Upstream").map(|v| v.to_str().unwrap())), (200, Some("echo")));
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");
    let statuses: Vec<u16> =
        server.requests().iter().filter(|r| r.path.contains("/proxy")).map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_proxy_retries_a_dropped_get_but_never_a_dropped_post() {
    let mlflow_server = pyservers::shared_mlflow().await;
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &mlflow_server.address());
    let statuses = |server: &ApiServer, path: &str| -> Vec<u16> {
        server.requests().iter().filter(|r| r.path.ends_with(path)).map(|r| r.status).collect()
    };

    // A GET may run twice: the check goes on as if nothing happened.
    server.add_fault(
        FaultRule::new(Fault::DropConnection)
            .method("GET")
            .path_prefix(&proxied("mlflow", 5000, "/health"))
            .once(),
    );
    let report = mlflow::check(&production_client(&server), &mlflow_target(None), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", e.logs));
    assert!(report.steps.iter().any(|s| s == "GET /health answered OK"), "{:?}", report.steps);
    assert_eq!(statuses(&server, "/proxy/health"), [0, 200]);

    // A POST may have landed before the connection went: it is reported, not repeated.
    server.clear_requests();
    let create = proxied("mlflow", 5000, "/api/2.0/mlflow/experiments/create");
    server.add_fault(FaultRule::new(Fault::DropConnection).method("POST").path_prefix(&create).once());
    let e = expect_failure(
        mlflow::check(&production_client(&server), &mlflow_target(None), Duration::from_secs(60)).await,
    );
    assert_eq!(e.step, "create experiment", "{e:?}");
    assert!(e.reason.contains("could not be reached"), "{}", e.reason);
    assert_eq!(statuses(&server, "/experiments/create"), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_basic_auth_does_not_survive_the_service_proxy() {
    let auth_server = pyservers::shared_mlflow_with_basic_auth().await;
    // The server itself enforces basic auth with the admin credentials...
    let direct = |user: &str, password: &str| {
        reqwest::Client::new()
            .post(format!("http://{}/api/2.0/mlflow/experiments/search", auth_server.address()))
            .basic_auth(user, Some(password))
            .header("Content-Type", "application/json")
            .body(r#"{"max_results": 1}"#)
            .send()
    };
    assert_eq!(direct(MLFLOW_ADMIN.0, MLFLOW_ADMIN.1).await.expect("direct call").status().as_u16(), 200);
    assert_eq!(direct(MLFLOW_ADMIN.0, "wrong").await.expect("direct call").status().as_u16(), 401);

    // ...but kube-apiserver drops the Authorization header of proxied requests, so right and
    // wrong credentials alike fail at the first authenticated step, and the hint says why.
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &auth_server.address());
    let client = plain_client(&server);
    for credentials in [MLFLOW_ADMIN, (MLFLOW_ADMIN.0, "wrong")] {
        let e = expect_failure(
            mlflow::check(&client, &mlflow_target(Some(credentials)), Duration::from_secs(30)).await,
        );
        assert_eq!(e.step, "create experiment", "{e:?}");
        assert!(e.reason.contains("HTTP 401"), "{}", e.reason);
        assert!(e.hint.contains("removes the Authorization header"), "{}", e.hint);
        assert!(e.logs.contains("GET /health -> 200"), "{}", e.logs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_job_succeeds_and_its_logs_show_the_cluster_resources() {
    let (server, head) = platform_with_ray().await;

    let report = ray::check(&production_client(&server), &ray_target(), Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| {
            head.assert_running();
            panic!("{e}\nhint: {}\nlogs:\n{}\nhead:\n{}", e.hint, e.logs, head.log_tail())
        });

    assert!(report.steps[0].starts_with("dashboard answers (Ray 2."), "{:?}", report.steps);
    assert!(report.steps.iter().any(|s| s.contains("SUCCEEDED")), "{:?}", report.steps);
    assert!(report.logs.contains("'CPU': 1.0"), "cluster resources missing from the logs:\n{}", report.logs);
    let id = report.steps[1].split_whitespace().nth(2).expect("job id").trim_end_matches(':').to_string();
    assert!(report.steps.iter().any(|s| s == &format!("deleted job {id}")), "{:?}", report.steps);
    let (status, _) = direct_json(&head.address(), &format!("/api/jobs/{id}")).await;
    assert_eq!(status, 404, "the smoke job was not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_job_that_exits_1_fails_with_its_status_message_and_logs() {
    let (server, head) = platform_with_ray().await;

    let entrypoint = r#"python -c "import sys; print('smoke job output before failing'); sys.exit(1)""#;
    let e = expect_failure(
        ray::run_job(&production_client(&server), &ray_target(), entrypoint, Duration::from_secs(120)).await,
    );
    head.assert_running();
    assert_eq!(e.step, "wait for job", "{e:?}");
    assert!(e.reason.contains("ended FAILED"), "{}", e.reason);
    assert!(e.reason.contains("exit code 1") || e.reason.contains("failed"), "{}", e.reason);
    assert!(e.logs.contains("smoke job output before failing"), "{}", e.logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_job_that_outlives_the_timeout_names_its_state_and_is_stopped() {
    let (server, head) = platform_with_ray().await;

    let marker = format!("sleep 600 # {}", free_port());
    let e = expect_failure(
        ray::run_job(&production_client(&server), &ray_target(), &marker, Duration::from_secs(8)).await,
    );
    head.assert_running();
    assert_eq!(e.step, "wait for job", "{e:?}");
    assert!(
        e.reason.contains("still PENDING after 8s") || e.reason.contains("still RUNNING after 8s"),
        "{}",
        e.reason
    );
    assert!(e.reason.contains("it was stopped"), "{}", e.reason);
    assert!(e.hint.contains("ray status"), "{}", e.hint);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, jobs) = direct_json(&head.address(), "/api/jobs/").await;
        let job = jobs.as_array().into_iter().flatten().find(|j| j["entrypoint"] == marker.as_str()).cloned();
        let status = job.as_ref().and_then(|j| j["status"].as_str()).unwrap_or("missing").to_string();
        if status == "STOPPED" {
            break;
        }
        assert!(Instant::now() < deadline, "the timed-out job was not stopped: {status} {job:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_dashboard_down_fails_at_the_dashboard_step() {
    let server = platform().await;
    server.route_service(NS, "ray-dashboard", 8265, &format!("127.0.0.1:{}", free_port()));
    let e = expect_failure(ray::check(&plain_client(&server), &ray_target(), Duration::from_secs(10)).await);
    assert_eq!(e.step, "dashboard", "{e:?}");
    assert!(e.reason.contains("connection refused"), "{}", e.reason);
    assert!(e.hint.contains("ray.io/node-type=head"), "{}", e.hint);
}

/// An upstream that answers every request with what it received.
async fn echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let method = req.method().to_string();
                        let uri = req.uri().to_string();
                        let headers: serde_json::Map<String, Value> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                            .collect();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let doc = json!({
                            "method": method, "uri": uri, "headers": headers,
                            "body": String::from_utf8_lossy(&body),
                        });
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(if method == "DELETE" { 202 } else { 200 })
                                .header("Content-Type", "application/json")
                                .header("X-Upstream", "echo")
                                .body(Full::new(bytes::Bytes::from(doc.to_string())))
                                .expect("response"),
                        )
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Value) {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(kube::client::Body::from(body.as_bytes().to_vec())).expect("request");
    let response = client.send(request).await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect_bytes().await.expect("body");
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_proxy_forwards_method_path_query_body_and_headers_but_not_authorization() {
    let server = platform().await;
    server.route_service(NS, "mlflow", 5000, &echo_upstream().await);
    let client = plain_client(&server);

    for (method, expected_status) in
        [("GET", 200), ("POST", 200), ("PUT", 200), ("PATCH", 200), ("DELETE", 202)]
    {
        let (status, headers, echo) = raw(
            &client,
            method,
            &proxied("mlflow", 5000, "/api/2.0/mlflow/runs/get?run_id=abc&x=a%20b"),
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Basic c2Vjb25kOmNyZWRz"),
                ("X-Smoke", "yes"),
            ],
            r#"{"k": 1}"#,
        )
        .await;
        assert_eq!(status, expected_status, "{method}: {echo}");
        assert_eq!(headers.get("x-upstream").map(|v| v.to_str().unwrap()), Some("echo"));
        assert_eq!(echo["method"], method);
        assert_eq!(echo["uri"], "/api/2.0/mlflow/runs/get?run_id=abc&x=a%20b");
        assert_eq!(echo["body"], r#"{"k": 1}"#);
        assert_eq!(echo["headers"]["content-type"], "application/json");
        assert_eq!(echo["headers"]["x-smoke"], "yes");
        assert_eq!(echo["headers"]["authorization"], Value::Null, "kube-apiserver drops Authorization");
        assert_eq!(
            echo["headers"]["host"],
            server.url().trim_start_matches("http://"),
            "Host is the API server's"
        );
    }
    // A port given by name, and the bare proxy root.
    let (status, _, echo) =
        raw(&client, "GET", &format!("/api/v1/namespaces/{NS}/services/mlflow:http/proxy"), &[], "").await;
    assert_eq!((status, echo["uri"].as_str()), (200, Some("/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_proxy_answers_like_kube_apiserver_without_service_port_or_endpoints() {
    let server = platform().await;
    let client = plain_client(&server);

    let (status, _, body) = raw(&client, "GET", &proxied("nope", 80, "/"), &[], "").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["message"], "services \"nope\" not found");
    assert_eq!(body["details"]["kind"], "services");

    let (status, _, body) = raw(&client, "POST", &proxied("mlflow", 5000, "/health"), &[], "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert_eq!(body["message"], "no endpoints available for service \"mlflow\"");

    server.route_service(NS, "mlflow", 5000, &echo_upstream().await);
    let (status, _, body) = raw(&client, "GET", &proxied("mlflow", 5001, "/"), &[], "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["message"], "no service port 5001 found for service \"mlflow\"");

    server.unroute_service(NS, "mlflow", 5000);
    let (status, _, body) = raw(&client, "GET", &proxied("mlflow", 5000, "/"), &[], "").await;
    assert_eq!((status, body["reason"].as_str()), (503, Some("ServiceUnavailable")));

    let recorded: Vec<u16> =
        server.requests().iter().filter(|r| r.path.contains("/proxy")).map(|r| r.status).collect();
    assert_eq!(recorded, vec![404, 503, 503, 503]);
}

/// `MLFLOW_SERVER_ALLOWED_HOSTS` of the MLflow Deployment the shipped EKS dev environment renders.
fn rendered_eks_allowed_hosts() -> String {
    let out = crate::harness::Test::in_repo()
        .args(&[
            "render",
            "--no-addons",
            "--terraform-outputs",
            "terraform/envs/eks-dev/outputs.example.json",
            "-e",
            "environments/base.yaml",
            "-e",
            "environments/eks-dev.yaml",
        ])
        .status(0)
        .run();
    let docs: Vec<Value> = trainstack::yaml::parse_stream_as(&out.stdout).unwrap();
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "mlflow")
        .expect("an MLflow Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let var = env.iter().find(|e| e["name"] == "MLFLOW_SERVER_ALLOWED_HOSTS").expect("the variable");
    var["value"].as_str().unwrap().to_string()
}

/// The status of `POST /api/2.0/mlflow/experiments/search` sent with `Host: host`.
async fn search_status(server: &PyServer, host: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{}/api/2.0/mlflow/experiments/search", server.address()))
        .header("Host", host)
        .header("Content-Type", "application/json")
        .body(r#"{"max_results": 1}"#)
        .send()
        .await
        .expect("MLflow answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_on_eks_answers_the_api_server_host_the_service_proxy_forwards() {
    let allowed = rendered_eks_allowed_hosts();
    let server = pyservers::mlflow_allowing_hosts(&allowed).await;
    // What kube-apiserver's service proxy sends as Host on EKS: the API endpoint's name, with
    // or without the port.
    for host in [
        "0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com",
        "0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com:443",
        "mlflow.dev.example.com",
        "mlflow.trainstack-system.svc:5000",
    ] {
        assert_eq!(
            search_status(&server, host).await,
            200,
            "Host {host} (allowed: {allowed})\n{}",
            server.log_tail()
        );
    }
    // The guard still stands for every other name.
    for host in ["evil.example.com", "eks.amazonaws.com.evil.example.com"] {
        assert_eq!(search_status(&server, host).await, 403, "Host {host} (allowed: {allowed})");
    }
}
