//! The `mlflow` and `ray` checks as the smoke run sees them: where their Services are (from
//! the rendered set, so a template override that renames a port is followed), the MLflow admin
//! credentials from the environment's Secret, and their HTTP reports as outcomes.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::engine::cluster::retry;

use crate::env::model::Environment;

use super::mlflow::{self, BasicAuth, MlflowTarget};
use super::proxy::{HttpCheckError, HttpReport};
use super::ray::{self, RayTarget};
use super::{Context, Outcome, Record};

/// The port of rendered Service `namespace/name` called `port_name` (else its first port).
fn service_port(ctx: &Context, namespace: &str, name: &str, port_name: &str) -> Result<u16, Outcome> {
    let svc = ctx
        .set
        .iter()
        .find(|m| m.kind() == "Service" && m.name() == name && m.namespace() == Some(namespace))
        .ok_or_else(|| {
            Outcome::failed(
                format!("the environment renders no Service {namespace}/{name}"),
                "the check reaches the component through that Service; check a --templates override",
            )
        })?;
    let ports = svc.obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
    ports
        .iter()
        .find(|p| p["name"] == port_name)
        .or_else(|| ports.first())
        .and_then(|p| p["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            Outcome::failed(
                format!("Service {namespace}/{name} renders no port"),
                "check a --templates override",
            )
        })
}

/// How the mlflow check reaches the tracking server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MlflowRoute {
    /// Through the API server's service proxy (no credentials can pass it).
    ServiceProxy,
    /// Straight to this URL; `signed_in` when the admin credentials go with every request.
    Url { url: String, signed_in: bool },
}

/// Where the mlflow check sends its requests, or why it cannot run. With basic auth the
/// service proxy is no way in (kube-apiserver drops the `Authorization` header), so the check
/// goes to `--mlflow-url`, else to the HTTPS ingress host, and is skipped without either.
/// Without auth the service proxy is the default and `--mlflow-url` wins when given.
pub fn mlflow_route(env: &Environment, url: Option<&str>) -> Result<MlflowRoute, String> {
    let m = &env.components.mlflow;
    let ingress = m.ingress.host.as_deref().filter(|_| m.ingress.enabled);
    match (m.auth.enabled, url, ingress) {
        (false, None, _) => Ok(MlflowRoute::ServiceProxy),
        (signed_in, Some(url), _) => Ok(MlflowRoute::Url { url: url.to_string(), signed_in }),
        (true, None, Some(host)) => Ok(MlflowRoute::Url { url: format!("https://{host}"), signed_in: true }),
        (true, None, None) => Err(format!(
            "components.mlflow.auth is enabled, and kube-apiserver removes the Authorization header from service-proxy requests (kubernetes/kubernetes#38775), so the check cannot sign in through the service proxy; the environment has no MLflow URL either (components.mlflow.ingress is {}): pass --mlflow-url URL, e.g. http://127.0.0.1:5000 with kubectl -n {} port-forward svc/mlflow 5000",
            if m.ingress.enabled { "enabled without a host" } else { "disabled" },
            env.platform_namespace
        )),
    }
}

/// MLflow's admin user and password from `components.mlflow.auth.admin_secret`.
async fn admin_credentials(ctx: &Context) -> Result<BasicAuth, Outcome> {
    let ns = &ctx.env.platform_namespace;
    let name = &ctx.env.components.mlflow.auth.admin_secret;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let hint = format!("components.mlflow.auth is enabled, so the check signs in as the admin of Secret {ns}/{name} (keys username and password, beside flask_secret_key); on EKS that Secret is synced from AWS Secrets Manager");
    let secret = match retry("get MLflow admin Secret", || api.get_opt(name)).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Outcome::failed(format!("Secret {ns}/{name} does not exist"), hint)),
        Err(e) => return Err(Outcome::failed(format!("cannot read Secret {ns}/{name}: {e}"), hint)),
    };
    let key = |k: &str| {
        let data =
            secret.data.as_ref().and_then(|d| d.get(k)).map(|b| String::from_utf8_lossy(&b.0).into_owned());
        data.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k)).cloned())
    };
    if key("flask_secret_key").is_none() {
        return Err(Outcome::failed(
            format!("Secret {ns}/{name} lacks the flask_secret_key key"),
            format!("the MLflow pods read MLFLOW_FLASK_SERVER_SECRET_KEY from it, and basic auth does not start without it: add a random value (the same for every replica), e.g. kubectl -n {ns} patch secret {name} -p '{{\"stringData\":{{\"flask_secret_key\":\"'$(openssl rand -hex 32)'\"}}}}'"),
        ));
    }
    match (key("username"), key("password")) {
        (Some(user), Some(password)) => Ok(BasicAuth { user, password, secret: format!("{ns}/{name}") }),
        _ => Err(Outcome::failed(format!("Secret {ns}/{name} lacks the username or password key"), hint)),
    }
}

/// Records an HTTP check's report and turns it into an outcome.
fn outcome(
    rec: &Record,
    result: Result<HttpReport, HttpCheckError>,
    passed: impl FnOnce(&HttpReport) -> String,
) -> Outcome {
    match result {
        Ok(report) => {
            for s in &report.steps {
                rec.step(s.clone());
            }
            if !report.logs.is_empty() {
                rec.log("requests and logs", &report.logs);
            }
            Outcome::passed(passed(&report))
        }
        Err(e) => {
            rec.step(format!("failed at: {}", e.step));
            if !e.logs.is_empty() {
                rec.log("requests and logs", &e.logs);
            }
            Outcome::failed(format!("{}: {}", e.step, e.reason), e.hint)
        }
    }
}

/// The `mlflow` check: `/health` and a full experiment/run/parameter/metric/artifact round trip
/// through the tracking server's Service, or at its URL when it needs the admin's credentials.
pub async fn run_mlflow(ctx: &Context, rec: &Record) -> Outcome {
    let ns = ctx.env.platform_namespace.clone();
    let port = match service_port(ctx, &ns, "mlflow", "http") {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (url, signed_in) = match mlflow_route(&ctx.env, ctx.mlflow_url.as_deref()) {
        Ok(MlflowRoute::ServiceProxy) => (None, false),
        Ok(MlflowRoute::Url { url, signed_in }) => (Some(url), signed_in),
        Err(why) => return Outcome::skipped(why),
    };
    let basic_auth = if signed_in {
        match admin_credentials(ctx).await {
            Ok(c) => Some(c),
            Err(o) => return o,
        }
    } else {
        None
    };
    let via = match (&url, &basic_auth) {
        (Some(url), Some(auth)) => format!("at {url} as user {}", auth.user),
        (Some(url), None) => format!("at {url}"),
        (None, _) => format!("through Service {ns}/mlflow:{port}"),
    };
    rec.step(format!("MLflow reached {via}"));
    let target = MlflowTarget { namespace: ns, service: "mlflow".into(), port, url, basic_auth };
    let result = mlflow::check(&ctx.client, &target, ctx.timeout).await;
    outcome(rec, result, |_| format!("health and an experiment/run/param/metric/artifact round trip {via}"))
}

/// The `ray` check: the dashboard answers and a tiny job through the Ray Jobs API succeeds.
pub async fn run_ray(ctx: &Context, rec: &Record) -> Outcome {
    let ns = ctx.env.platform_namespace.clone();
    let service = format!("{}-dashboard", ctx.env.components.ray.name);
    let port = match service_port(ctx, &ns, &service, "dashboard") {
        Ok(p) => p,
        Err(o) => return o,
    };
    let target = RayTarget { namespace: ns, service, port };
    let result = ray::check(&ctx.client, &target, ctx.timeout).await;
    outcome(rec, result, |_| {
        format!(
            "dashboard answers and a job through the Jobs API SUCCEEDED (Service {}/{}:{port})",
            target.namespace, target.service
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(yaml: &str) -> Environment {
        crate::yaml::from_str(&format!("name: t\ntarget: {{kind: eks, cluster_name: c}}\n{yaml}")).unwrap()
    }

    #[test]
    fn mlflow_route_follows_auth_ingress_and_the_flag() {
        let plain = env("components: {mlflow: {enabled: true}}\n");
        assert_eq!(mlflow_route(&plain, None), Ok(MlflowRoute::ServiceProxy));
        assert_eq!(
            mlflow_route(&plain, Some("http://127.0.0.1:5000")),
            Ok(MlflowRoute::Url { url: "http://127.0.0.1:5000".into(), signed_in: false })
        );
        let ingress = "ingress: {enabled: true, host: mlflow.example.com}";
        let auth =
            env(&format!("components: {{mlflow: {{enabled: true, auth: {{enabled: true}}, {ingress}}}}}\n"));
        assert_eq!(
            mlflow_route(&auth, None),
            Ok(MlflowRoute::Url { url: "https://mlflow.example.com".into(), signed_in: true })
        );
        assert_eq!(
            mlflow_route(&auth, Some("http://127.0.0.1:5000")),
            Ok(MlflowRoute::Url { url: "http://127.0.0.1:5000".into(), signed_in: true })
        );
        let no_ingress = env("components: {mlflow: {enabled: true, auth: {enabled: true}}}\n");
        let why = mlflow_route(&no_ingress, None).unwrap_err();
        assert!(why.contains("Authorization header") && why.contains("pass --mlflow-url URL"), "{why}");
        assert!(why.contains("components.mlflow.ingress is disabled"), "{why}");
        let hostless =
            env("components: {mlflow: {enabled: true, auth: {enabled: true}, ingress: {enabled: true}}}\n");
        assert!(mlflow_route(&hostless, None).unwrap_err().contains("enabled without a host"));
    }
}
