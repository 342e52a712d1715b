//! Command implementations: each turns settings into work on the pure core and adapters.

pub mod addons;
pub mod cluster;
pub mod infra;
pub mod kind;
pub mod lifecycle;
pub mod render;
pub mod smoke;
pub mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::addons::{AddonLoader, Lock};
use crate::cli::{AddonArgs, Cli, Command, GlobalArgs};
use crate::env::{LoadOptions, LoadedEnv};
use crate::jobs::{self, Job};
use crate::manifest::Manifest;
use crate::render::Templates;
use crate::Error;

/// Runs one command.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let global = cli.command.settings();
    match cli.command {
        Command::Render { args, .. } => render::run(&global, &args).await,
        Command::Diff { args, .. } => cluster::diff(&global, &args).await,
        Command::Apply { args, .. } => cluster::apply(&global, &args).await,
        Command::Delete { args, .. } => cluster::delete(&global, &args).await,
        Command::Status { args, .. } => cluster::status(&global, &args).await,
        Command::Smoke { args, .. } => smoke::run(&global, &args).await,
        Command::Cluster(args) => kind::run(&global, &args.action).await,
        Command::Validate { args, .. } => validate::run(&global, &args).await,
        Command::Addons(args) => addons::run(&global, &args.action).await,
        Command::Infra(args) => infra::run(&global, &args.action).await,
        Command::Up { args, .. } => lifecycle::up(&global, &args).await,
        Command::Down { args, .. } => lifecycle::down(&global, &args).await,
        Command::Completions { shell } => {
            // Generated into memory and written with the error kept: clap_complete panics on a
            // failed write, and `trainstack completions bash | head -1` must stop quietly (141).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "trainstack", &mut script);
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, &script)
                .and_then(|()| std::io::Write::flush(&mut out))
                .map_err(|e| Error::Other(anyhow::Error::new(e).context("writing the completion script")))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The inputs of every command that renders: environment, job specs and the manifest set.
pub struct Prepared {
    /// The loaded environment.
    pub loaded: LoadedEnv,
    /// Job specs.
    pub jobs: Vec<Job>,
    /// The ordered manifest set.
    pub set: Vec<Manifest>,
}

/// Loads and checks all inputs, then renders. Nothing is rendered while any input is invalid.
pub async fn prepare(global: &GlobalArgs, addons: &AddonArgs) -> Result<Prepared, Error> {
    let (loaded, jobs) = jobs::load_with_env(
        &global.env,
        &LoadOptions { terraform_outputs: global.terraform_outputs.clone() },
    )?;
    let templates = Templates::load(global.templates.as_deref())?;
    let addon_objects = load_addons(&loaded, addons, &global.env).await?;
    let set = crate::render::render(&loaded, &jobs, &templates, addon_objects)?;
    Ok(Prepared { loaded, jobs, set })
}

/// Loads every enabled add-on, concurrently (downloads and kustomize runs are slow). The lock
/// files of the environment files declaring kustomize add-ons are read and checked first, so a
/// broken lock or an add-on it does not pin is reported like any input error, before anything is
/// built or downloaded.
async fn load_addons(
    loaded: &LoadedEnv,
    args: &AddonArgs,
    env_files: &[PathBuf],
) -> Result<Vec<(String, Vec<serde_json::Value>)>, Error> {
    if args.no_addons {
        return Ok(Vec::new());
    }
    let cache = args.cache_dir.clone().unwrap_or_else(AddonLoader::default_cache_dir);
    let loader = AddonLoader::new(cache);
    let locks = addons::read_locks(loaded, env_files)?;
    let jobs = loaded.env.addons.iter().enumerate().filter(|(_, a)| a.enabled).map(|(i, addon)| {
        let base = loaded.sources.base_dir(&format!("addons[{i}].source"));
        let lock_path = addons::lock_path(loaded, i);
        let lock = locks.get(&lock_path).cloned().unwrap_or_else(|| Lock::empty(lock_path));
        let loader = &loader;
        async move { loader.load(addon, &base, &lock).await.map(|objs| (addon.name.clone(), objs)) }
    });
    let loaded: Vec<_> = futures::future::join_all(jobs).await;
    loaded.into_iter().map(|r| r.map_err(Error::from)).collect()
}

/// Asks the user to type `expected` after `prompt`, on a terminal; elsewhere refuses with
/// "refusing to `action` without confirmation: pass --yes". Returns whether the answer matched.
pub(crate) fn confirm(action: &str, prompt: &str, expected: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(anyhow::anyhow!("refusing to {action} without confirmation: pass --yes").into());
    }
    eprint!("{prompt} ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(anyhow::Error::from)?;
    Ok(answer.trim() == expected)
}
