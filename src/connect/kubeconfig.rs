//! Reading kubeconfig files as kubectl does (a `$KUBECONFIG` list merged, first entry wins) and
//! checking the chosen context before any request, so a broken reference is reported with its
//! file, line and field rather than as a failed connection.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ConnectError;

/// The kube configuration of the chosen context, and what errors name it by.
pub(super) struct Chosen {
    /// For kube.
    pub config: kube::Config,
    /// The files in use, as errors show them (`a.yaml:b.yaml`).
    pub files: String,
    /// The context's name.
    pub context: String,
    /// The context's user, if it names one.
    pub user: Option<String>,
}

/// The kube configuration for `context` (else the files' current context) from the kubeconfig
/// files in use.
pub(super) async fn config(flag: Option<&Path>, context: Option<String>) -> Result<Chosen, ConnectError> {
    let paths = kubeconfig_paths(flag);
    let shown = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let (kubeconfig, files) = load_kubeconfig(paths)?;
    let (context_name, user) = check_context(&kubeconfig, &files, &shown, context.as_deref())?;
    let options = KubeConfigOptions { context, ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ConnectError::Kubeconfig { path: shown.clone(), message: format!("{e}") })?;
    Ok(Chosen { config, files: shown, context: context_name, user })
}

/// One kubeconfig file as read.
struct KubeconfigFile {
    path: PathBuf,
    config: Kubeconfig,
}

/// The kubeconfig paths in the order kubectl reads them: `--kubeconfig`, else every entry of
/// `$KUBECONFIG` (a path list), else `~/.kube/config`.
fn kubeconfig_paths(flag: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = flag {
        return vec![p.to_path_buf()];
    }
    let from_env: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    if from_env.is_empty() {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        vec![home.join(".kube/config")]
    } else {
        from_env
    }
}

/// Reads the files and merges them (the first file that names a context, cluster or user
/// wins, as in kubectl). Syntax and type errors carry kube's position. As kubectl does, entries
/// of a `$KUBECONFIG` list that do not exist are skipped; a lone path (`--kubeconfig`, a
/// one-entry list, `~/.kube/config`) or a list with no existing entry is an error.
fn load_kubeconfig(paths: Vec<PathBuf>) -> Result<(Kubeconfig, Vec<KubeconfigFile>), ConnectError> {
    let mut merged = Kubeconfig::default();
    let mut files = Vec::with_capacity(paths.len());
    let skip_missing = paths.len() > 1 && paths.iter().any(|p| p.exists());
    for path in paths {
        let shown = path.display().to_string();
        if !path.exists() && skip_missing {
            continue;
        }
        if !path.exists() {
            return Err(ConnectError::Kubeconfig {
                path: shown,
                message:
                    "no such file (pass --kubeconfig FILE or set KUBECONFIG to the cluster's kubeconfig)"
                        .into(),
            });
        }
        let config = Kubeconfig::read_from(&path)
            .map_err(|e| ConnectError::Kubeconfig { path: shown.clone(), message: format!("{e}") })?;
        merged = merged
            .merge(config.clone())
            .map_err(|e| ConnectError::Kubeconfig { path: shown, message: format!("{e}") })?;
        files.push(KubeconfigFile { path, config });
    }
    Ok((merged, files))
}

/// Checks that the context to use exists and names a cluster (with a server and, if given,
/// certificate-authority-data that holds a PEM certificate) and a user the files define,
/// before any request, naming the file, line and field of a broken reference. Returns the
/// context's name and its user's.
fn check_context(
    merged: &Kubeconfig,
    files: &[KubeconfigFile],
    all: &str,
    context: Option<&str>,
) -> Result<(String, Option<String>), ConnectError> {
    let Some(name) = context.map(str::to_string).or_else(|| merged.current_context.clone()) else {
        return Err(ConnectError::Kubeconfig {
            path: all.to_string(),
            message:
                "no context to use: current-context is not set (pass --context NAME or set target.context)"
                    .into(),
        });
    };
    if !merged.contexts.iter().any(|c| c.name == name) {
        let available: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(ConnectError::NoContext {
            path: all.to_string(),
            context: name,
            available: if available.is_empty() { "(none)".into() } else { available.join(", ") },
        });
    }
    // Where a named entry is defined: the first file that has it, and its position there (the
    // file is parsed again for positions only here, on the error path).
    let locate = |list: &str, entry: &str, field: &str| -> (String, String) {
        for f in files {
            let names: Vec<&str> = match list {
                "contexts" => f.config.contexts.iter().map(|c| c.name.as_str()).collect(),
                "clusters" => f.config.clusters.iter().map(|c| c.name.as_str()).collect(),
                _ => f.config.auth_infos.iter().map(|u| u.name.as_str()).collect(),
            };
            if let Some(i) = names.iter().position(|n| *n == entry) {
                let key = format!("{list}[{i}]{field}");
                let pos = std::fs::read_to_string(&f.path)
                    .ok()
                    .and_then(|text| crate::yaml::parse_located(&text).ok())
                    .and_then(|(_, ix)| ix.key(&key).or_else(|| ix.key(&format!("{list}[{i}]"))));
                let at = match pos {
                    Some(p) => format!("{}:{}:{}", f.path.display(), p.line, p.column),
                    None => f.path.display().to_string(),
                };
                return (at, key);
            }
        }
        (all.to_string(), format!("{list}.{entry}"))
    };
    let broken = |(path, key): (String, String), message: String| ConnectError::Kubeconfig {
        path,
        message: format!("{key}: {message}"),
    };
    let ctx = merged.contexts.iter().find(|c| c.name == name).and_then(|c| c.context.as_ref());
    let Some(ctx) = ctx else {
        return Err(broken(
            locate("contexts", &name, ""),
            format!("context {name:?} has no `context` mapping"),
        ));
    };
    let defined = |names: Vec<&str>| if names.is_empty() { "none".to_string() } else { names.join(", ") };
    match merged.clusters.iter().find(|c| c.name == ctx.cluster) {
        None => {
            let names = merged.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(broken(
                locate("contexts", &name, ".context.cluster"),
                format!(
                    "context {name:?} names cluster {:?}, which is not defined (clusters: {})",
                    ctx.cluster,
                    defined(names)
                ),
            ));
        }
        Some(c) if c.cluster.as_ref().and_then(|c| c.server.as_deref()).is_none_or(str::is_empty) => {
            return Err(broken(
                locate("clusters", &c.name, ".cluster"),
                format!("cluster {:?} has no server URL (cluster.server)", c.name),
            ));
        }
        Some(c) => {
            let data = c.cluster.as_ref().and_then(|c| c.certificate_authority_data.as_deref());
            if let Some(why) = data.and_then(ca_data_problem) {
                return Err(broken(
                    locate("clusters", &c.name, ".cluster.certificate-authority-data"),
                    format!("the CA of cluster {:?} {why}", c.name),
                ));
            }
        }
    }
    if let Some(user) = &ctx.user {
        if !merged.auth_infos.iter().any(|u| &u.name == user) {
            let names = merged.auth_infos.iter().map(|u| u.name.as_str()).collect();
            return Err(broken(
                locate("contexts", &name, ".context.user"),
                format!(
                    "context {name:?} names user {user:?}, which is not defined (users: {})",
                    defined(names)
                ),
            ));
        }
    }
    Ok((name, ctx.user.clone()))
}

/// What is wrong with a kubeconfig's `certificate-authority-data`, if anything: it must be the
/// base64 of PEM certificates, else every TLS handshake would fail and read as a connection
/// error.
fn ca_data_problem(data: &str) -> Option<String> {
    use base64::Engine;
    const VALID: &str = "it must be the base64 of the cluster's PEM CA certificate (base64 -w0 ca.crt)";
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => bytes,
        Err(e) => return Some(format!("is not base64 ({e}); {VALID}")),
    };
    match pem::parse_many(&bytes) {
        Ok(blocks) if blocks.iter().any(|b| b.tag() == "CERTIFICATE") => None,
        _ => Some(format!("decodes to no PEM certificate (no -----BEGIN CERTIFICATE----- block); {VALID}")),
    }
}
