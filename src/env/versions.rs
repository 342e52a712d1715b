//! Version tables of the pinned upstreams: which Kubernetes versions are supported, which
//! kindest/node image runs each, which TrainJob shape a Kubeflow Trainer version takes, and
//! which Optuna packages an HPO workspace serves. Validation checks an environment
//! against them; `targets/kind.rs` and `render/` use them to build.

/// Kubernetes 1.x minor versions an environment may target.
pub const KUBERNETES_MINORS: std::ops::RangeInclusive<u32> = 29..=37;

/// Whether `version` (`"1.33"`) is a supported Kubernetes minor version.
pub fn supported_kubernetes(version: &str) -> bool {
    version.split_once('.').is_some_and(|(major, minor)| {
        major == "1" && minor.parse().is_ok_and(|m| KUBERNETES_MINORS.contains(&m))
    })
}

/// kindest/node images per Kubernetes minor version: the images built for kind v0.29.0
/// (1.30 to 1.33) and, for 1.29, for kind v0.27.0, the last release that built one.
///
/// Tags only: the release notes also give `@sha256:` digests, but they cannot be verified
/// offline where this table is maintained, and a wrong digest would break every create. To pin
/// a digest, set `target.node_image` to the full `kindest/node:vX.Y.Z@sha256:...` reference.
const NODE_IMAGES: &[(&str, &str)] = &[
    ("1.29", "kindest/node:v1.29.14"),
    ("1.30", "kindest/node:v1.30.13"),
    ("1.31", "kindest/node:v1.31.9"),
    ("1.32", "kindest/node:v1.32.5"),
    ("1.33", "kindest/node:v1.33.1"),
];

/// The kindest/node image for a Kubernetes minor version, if the table has one.
pub fn default_node_image(kubernetes_version: &str) -> Option<&'static str> {
    NODE_IMAGES.iter().find(|(v, _)| *v == kubernetes_version).map(|(_, image)| *image)
}

/// The Kubernetes versions [`default_node_image`] knows, for error messages.
pub fn known_versions() -> String {
    let versions: Vec<&str> = NODE_IMAGES.iter().map(|(v, _)| *v).collect();
    versions.join(", ")
}

/// The Kubeflow Trainer API shape for a pinned Trainer version: v2.1 takes pod overrides in
/// `podTemplateOverrides`, v2.2 and later in `runtimePatches`. None when unsupported.
pub fn trainer_api(version: &str) -> Option<&'static str> {
    let v = version.strip_prefix('v')?;
    let mut parts = v.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    let patch_ok = parts.next().is_none_or(|p| p.split('-').next().is_some_and(|n| n.parse::<u32>().is_ok()));
    if major != "2" || !patch_ok {
        return None;
    }
    match minor.parse::<u32>().ok()? {
        1 => Some("podTemplateOverrides"),
        2 | 3 => Some("runtimePatches"),
        _ => None,
    }
}

/// An Optuna version an HPO workspace's gRPC storage server can run, with the packages it is
/// installed with and the Optuna client versions (trial pods) it serves.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct OptunaServer {
    /// The `optuna` pin.
    pub optuna: &'static str,
    /// The `grpcio` pin (the server's transport).
    pub grpcio: &'static str,
    /// The `protobuf` pin (the wire messages).
    pub protobuf: &'static str,
    /// Client versions that can talk to this server.
    pub clients: &'static [&'static str],
}

/// Optuna servers trainstack serves. 5.1.0 is not one: its gRPC server rejects 4.5.0 and 5.0.0
/// clients (the timestamp format on the wire changed), and Python 3.8 images cannot install
/// anything newer than 4.5.0, while a 5.0.0 server serves 4.5.0, 5.0.0 and 5.1.0 clients. The
/// grpcio/protobuf pair is the one the tests run the server with (tests/requirements.txt).
const OPTUNA_SERVERS: &[OptunaServer] = &[OptunaServer {
    optuna: "5.0.0",
    grpcio: "1.85.4",
    protobuf: "7.36.2",
    clients: &["4.5.0", "5.0.0", "5.1.0"],
}];

/// The server entry for an Optuna version, if trainstack serves it.
pub fn optuna_server(version: &str) -> Option<&'static OptunaServer> {
    OPTUNA_SERVERS.iter().find(|s| s.optuna == version)
}

/// The Optuna server versions [`optuna_server`] knows, for error messages.
pub fn optuna_servers() -> String {
    let versions: Vec<&str> = OPTUNA_SERVERS.iter().map(|s| s.optuna).collect();
    versions.join(", ")
}

/// optuna-dashboard versions and the oldest Python 3 minor each installs on.
const OPTUNA_DASHBOARDS: &[(&str, u32)] = &[("0.21.0", 10)];

/// The oldest Python 3 minor version an optuna-dashboard version installs on, if it is known.
pub fn dashboard_min_python(version: &str) -> Option<u32> {
    OPTUNA_DASHBOARDS.iter().find(|(v, _)| *v == version).map(|(_, py)| *py)
}

/// The optuna-dashboard versions [`dashboard_min_python`] knows, for error messages.
pub fn optuna_dashboards() -> String {
    let versions: Vec<&str> = OPTUNA_DASHBOARDS.iter().map(|(v, _)| *v).collect();
    versions.join(", ")
}

/// The Python 3 minor version of an official `python` image tag (`python:3.11-slim` -> 11),
/// or None for any other image, whose Python trainstack cannot tell from its name.
pub fn python_image_minor(image: &str) -> Option<u32> {
    let (repo, tag) = image.split('@').next()?.rsplit_once(':')?;
    if !matches!(repo, "python" | "library/python" | "docker.io/library/python" | "docker.io/python") {
        return None;
    }
    let rest = tag.strip_prefix("3.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trainer_api_follows_the_pinned_version() {
        assert_eq!(trainer_api("v2.1.0"), Some("podTemplateOverrides"));
        assert_eq!(trainer_api("v2.2.1"), Some("runtimePatches"));
        assert_eq!(trainer_api("v2.3.0"), Some("runtimePatches"));
        assert_eq!(trainer_api("v2.0.0"), None);
        assert_eq!(trainer_api("2.3.0"), None);
        assert_eq!(trainer_api("v3.0.0"), None);
    }

    #[test]
    fn supported_kubernetes_versions_are_1_29_to_1_37() {
        for ok in ["1.29", "1.33", "1.37"] {
            assert!(supported_kubernetes(ok), "{ok}");
        }
        for bad in ["1.28", "1.38", "2.33", "1", "1.x", "v1.33", ""] {
            assert!(!supported_kubernetes(bad), "{bad}");
        }
    }

    #[test]
    fn every_node_image_is_for_its_own_version() {
        for v in known_versions().split(", ") {
            let image = default_node_image(v).unwrap();
            assert!(image.starts_with(&format!("kindest/node:v{v}.")), "{v}: {image}");
        }
        assert_eq!(default_node_image("1.28"), None);
    }

    #[test]
    fn python_image_minor_reads_official_python_tags_only() {
        assert_eq!(python_image_minor("python:3.11-slim"), Some(11));
        assert_eq!(python_image_minor("docker.io/library/python:3.8"), Some(8));
        assert_eq!(python_image_minor("python:3.12.4-bookworm@sha256:abc"), Some(12));
        assert_eq!(python_image_minor("python:latest"), None);
        assert_eq!(python_image_minor("ghcr.io/acme/python:3.8"), None);
        assert_eq!(python_image_minor("python"), None);
    }

    #[test]
    fn the_optuna_server_serves_its_own_version() {
        for s in OPTUNA_SERVERS {
            assert!(s.clients.contains(&s.optuna), "{}", s.optuna);
        }
        assert!(optuna_server("5.1.0").is_none());
    }
}
