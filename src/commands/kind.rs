//! `cluster create|delete|config`: the local kind cluster of a kind environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::env::model::TargetKind;
use crate::env::Environment;
use crate::settings::{ClusterAction, ClusterSettings, ConnectionSettings, Format};
use crate::targets::kind::{self, CreateOptions, Created, Kind, KindError, Programs};
use crate::Error;

/// Runs one `cluster` subcommand.
pub async fn run(settings: &ClusterSettings) -> Result<ExitCode, Error> {
    // Only the environment is needed: no job specs, templates or add-ons are read.
    let loaded = super::load(&settings.load).await?;
    let env = &loaded.env;
    if env.target.kind != TargetKind::Kind {
        return Err(KindError::NotKind {
            environment: env.name.clone(),
            kind: kind::target_kind_name(env.target.kind),
        }
        .into());
    }
    let kubeconfig = settings.kubeconfig.as_deref();
    match settings.action {
        ClusterAction::Config { format } => config(env, format),
        ClusterAction::Create { wait } => create(env, &settings.load.files, kubeconfig, wait).await,
        ClusterAction::Delete { yes } => delete(env, kubeconfig, yes).await,
    }
}

/// Prints the generated config.
fn config(env: &Environment, format: Format) -> Result<ExitCode, Error> {
    let config = kind::kind_config(env);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&config).map_err(anyhow::Error::from)? + "\n",
        Format::Text | Format::Yaml => crate::yaml::to_string(&config),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// `cluster create` (also the first step of `up` on kind): `wait` bounds the node waits, none
/// with `None`; `files` are the environment files, for the next command it suggests.
pub async fn create(
    env: &Environment,
    files: &[PathBuf],
    kubeconfig: Option<&Path>,
    wait: Option<Duration>,
) -> Result<ExitCode, Error> {
    let kind = Kind::preflight(&Programs::from_env()).await?;
    let name = &env.target.cluster_name;
    let connection = ConnectionSettings {
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        context: Some(kind::context_name(name)),
    };
    let opts = CreateOptions { wait, connection: connection.connect_options(None) };
    let created = kind.create(env, &opts).await?;
    let files: Vec<String> = files.iter().map(|f| format!("-e {}", f.display())).collect();
    eprintln!(
        "kind cluster {name:?} is {}; kubeconfig context {}. Next: trainstack apply {}",
        match created {
            Created::New => "created",
            Created::Existing => "up",
        },
        kind::context_name(name),
        files.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `cluster delete` (also the last step of `down` on kind): asks first on a terminal; refuses
/// without `--yes` elsewhere.
pub async fn delete(env: &Environment, kubeconfig: Option<&Path>, yes: bool) -> Result<ExitCode, Error> {
    let name = &env.target.cluster_name;
    if !yes
        && !super::confirm(
            &format!("delete kind cluster {name:?}"),
            &format!(
                "Delete kind cluster {name:?} and everything running in it? Type the cluster name to confirm:"
            ),
            name,
        )?
    {
        eprintln!("not confirmed; nothing was deleted");
        return Ok(ExitCode::from(1));
    }
    let kind = Kind::preflight(&Programs::from_env()).await?;
    if kind.delete(name, kubeconfig).await? {
        eprintln!("kind cluster {name:?} deleted");
    }
    Ok(ExitCode::SUCCESS)
}
