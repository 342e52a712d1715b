//! `cluster create|delete|config`: the local kind cluster of a kind environment.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{GlobalArgs, KindClusterAction, KindCreateArgs, KindDeleteArgs, OutputFormat};
use crate::env::model::TargetKind;
use crate::env::{self, Environment, LoadOptions};
use crate::targets::kind::{self, CreateOptions, Created, Kind, KindError, Programs};
use crate::Error;

/// Runs one `cluster` subcommand.
pub async fn run(global: &GlobalArgs, action: &KindClusterAction) -> Result<ExitCode, Error> {
    // Only the environment is needed: no job specs, templates or add-ons are read.
    let loaded =
        env::load(&global.env, &LoadOptions { terraform_outputs: global.terraform_outputs.clone() })?;
    let env = &loaded.env;
    if env.target.kind != TargetKind::Kind {
        return Err(KindError::NotKind {
            environment: env.name.clone(),
            kind: kind::target_kind_name(env.target.kind),
        }
        .into());
    }
    match action {
        KindClusterAction::Config { .. } => config(global, env),
        KindClusterAction::Create { args, .. } => create(global, env, args).await,
        KindClusterAction::Delete { args, .. } => delete(global, env, args).await,
    }
}

/// Prints the generated config.
fn config(global: &GlobalArgs, env: &Environment) -> Result<ExitCode, Error> {
    let config = kind::kind_config(env);
    let text = match global.output {
        OutputFormat::Json => serde_json::to_string_pretty(&config).map_err(anyhow::Error::from)? + "\n",
        OutputFormat::Text | OutputFormat::Yaml => crate::yaml::to_string(&config),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// `cluster create` (also the first step of `up` on kind).
pub async fn create(
    global: &GlobalArgs,
    env: &Environment,
    args: &KindCreateArgs,
) -> Result<ExitCode, Error> {
    let kind = Kind::preflight(&Programs::from_env()).await?;
    let opts = CreateOptions {
        wait: (!args.no_wait).then_some(args.timeout),
        kubeconfig: global.kubeconfig.clone(),
    };
    let created = kind.create(env, &opts).await?;
    let name = &env.target.cluster_name;
    let files: Vec<String> = global.env.iter().map(|f| format!("-e {}", f.display())).collect();
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
pub async fn delete(
    global: &GlobalArgs,
    env: &Environment,
    args: &KindDeleteArgs,
) -> Result<ExitCode, Error> {
    let name = &env.target.cluster_name;
    if !args.yes
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
    if kind.delete(name, global.kubeconfig.as_deref()).await? {
        eprintln!("kind cluster {name:?} deleted");
    }
    Ok(ExitCode::SUCCESS)
}
