//! Version tables of the pinned upstreams: which Kubernetes versions are supported, which
//! kindest/node image runs each, and which TrainJob shape a Kubeflow Trainer version takes. Validation checks an environment
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
}
