//! The `cluster` check: the API answers, and its version is one the environment supports.
//!
//! The rule: with `target.kubernetes_version: "1.N"` the server may run 1.N or 1.(N+1).
//! The manifests are rendered and validated for 1.N; an older server may lack the APIs and
//! fields they use, while one minor newer is what a cluster looks like during an upgrade (the
//! control plane goes first, and Kubernetes removes no API without a deprecation release in
//! between). Anything newer means the environment file is behind the cluster.

use std::time::Instant;

use super::{Context, Outcome, Record};

/// What the check found, and whether the API answered at all (if not, the other checks are
/// skipped rather than failing one by one with the same connection error).
pub struct ClusterOutcome {
    /// Passed or failed.
    pub outcome: Outcome,
    /// The API server answered.
    pub reachable: bool,
}

/// The server minors an environment supports: `(N, N + 1)` for `"1.N"`.
pub fn supported_minors(kubernetes_version: &str) -> Option<(u32, u32)> {
    let (major, minor) = kubernetes_version.split_once('.')?;
    let minor: u32 = minor.parse().ok()?;
    (major == "1").then_some((minor, minor + 1))
}

/// The minor of a server's `/version` answer. Managed clusters report e.g. `"33+"`, so only the
/// leading digits count; `gitVersion` (`v1.33.5-eks-...`) is the fallback.
pub fn server_minor(major: &str, minor: &str, git_version: &str) -> Option<(u32, u32)> {
    let digits = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u32>().ok();
    if let (Some(ma), Some(mi)) = (digits(major), digits(minor)) {
        return Some((ma, mi));
    }
    let mut parts = git_version.trim_start_matches('v').split('.');
    Some((digits(parts.next()?)?, digits(parts.next()?)?))
}

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> ClusterOutcome {
    let start = Instant::now();
    let info = match tokio::time::timeout(ctx.timeout, ctx.client.apiserver_version()).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            return ClusterOutcome {
                outcome: Outcome::failed(
                    format!("GET /version failed: {}", crate::engine::cluster::describe(e)),
                    "check --kubeconfig and --context, that the cluster is running and that your credentials are valid (kubectl version)",
                ),
                reachable: false,
            }
        }
        Err(_) => {
            return ClusterOutcome {
                outcome: Outcome::failed(
                    format!("GET /version did not answer within {:?}", ctx.timeout),
                    "the API server is unreachable or overloaded; check the kubeconfig's server address and your network",
                ),
                reachable: false,
            }
        }
    };
    rec.step(format!("GET /version answered {} in {} ms", info.git_version, start.elapsed().as_millis()));
    let declared = &ctx.env.target.kubernetes_version;
    let outcome = match (
        supported_minors(declared),
        server_minor(&info.major, &info.minor, &info.git_version),
    ) {
        (None, _) => Outcome::failed(
            format!("target.kubernetes_version {declared:?} is not of the form 1.N"),
            "fix target.kubernetes_version in the environment file",
        ),
        (_, None) => Outcome::failed(
            format!(
                "cannot read the server version from major {:?} minor {:?} gitVersion {:?}",
                info.major, info.minor, info.git_version
            ),
            "the API server's /version answer is unusual; compare with kubectl version",
        ),
        (Some((lo, hi)), Some((major, minor))) if major == 1 && (lo..=hi).contains(&minor) => {
            Outcome::passed(format!(
                "server {} within 1.{lo}-1.{hi} (target.kubernetes_version {declared})",
                info.git_version
            ))
        }
        (Some((lo, hi)), Some((major, minor))) => {
            let hint = if major == 1 && minor < lo {
                format!("the cluster runs an older Kubernetes than the environment declares: upgrade the cluster, or set target.kubernetes_version to \"1.{minor}\" if the manifests must target it")
            } else {
                format!("the cluster is newer than the environment declares: set target.kubernetes_version to \"{major}.{minor}\" and re-run validate and apply")
            };
            Outcome::failed(
                format!("server {} is outside the supported range 1.{lo}-1.{hi} (target.kubernetes_version {declared})", info.git_version),
                hint,
            )
        }
    };
    ClusterOutcome { outcome, reachable: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_minor_and_the_next_one_are_supported() {
        assert_eq!(supported_minors("1.33"), Some((33, 34)));
        assert_eq!(supported_minors("2.1"), None);
        assert_eq!(supported_minors("1.x"), None);
    }

    #[test]
    fn managed_cluster_versions_are_read() {
        assert_eq!(server_minor("1", "33", "v1.33.1"), Some((1, 33)));
        assert_eq!(server_minor("1", "33+", "v1.33.5-eks-1234"), Some((1, 33)));
        assert_eq!(server_minor("", "", "v1.32.9-gke.100"), Some((1, 32)));
        assert_eq!(server_minor("", "", "unknown"), None);
    }
}
