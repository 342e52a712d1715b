//! Command implementations: each turns settings into work on the pure core and adapters.

pub mod addons;
pub mod cluster;
pub mod hpo;
pub mod infra;
pub mod kind;
pub mod lifecycle;
pub mod render;
pub mod secrets;
pub mod smoke;
pub mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::addons::{AddonLoader, Lock};
use crate::env::terraform::Fetched;
use crate::env::{self, Layered, LoadedEnv};
use crate::hpo::Batch;
use crate::jobs::{self, Job};
use crate::manifest::Manifest;
use crate::render::Templates;
use crate::settings::{AddonSettings, LoadSettings, PrepareSettings, Settings};
use crate::targets::terraform;
use crate::Error;

/// Runs one command.
pub async fn run(settings: Settings) -> Result<ExitCode, Error> {
    match settings {
        Settings::Render(s) => render::run(&s).await,
        Settings::Diff(s) => cluster::diff(&s).await,
        Settings::Apply(s) => cluster::apply(&s).await,
        Settings::Delete(s) => cluster::delete(&s).await,
        Settings::Status(s) => cluster::status(&s).await,
        Settings::Smoke(s) => smoke::run(&s).await,
        Settings::Cluster(s) => kind::run(&s).await,
        Settings::Validate(s) => validate::run(&s).await,
        Settings::AddonsLock(s) => addons::lock(&s).await,
        Settings::Infra(s) => infra::run(&s).await,
        Settings::Up(s) => lifecycle::up(&s).await,
        Settings::Down(s) => lifecycle::down(&s).await,
        Settings::HpoRun(s) => hpo::run(&s).await,
        Settings::HpoStatus(s) => hpo::status(&s).await,
        Settings::Completions(script) => {
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
    /// Trial batch specs.
    pub batches: Vec<Batch>,
    /// The ordered manifest set.
    pub set: Vec<Manifest>,
}

/// Loads and checks all inputs, then renders. Nothing is rendered while any input is invalid.
pub async fn prepare(settings: &PrepareSettings) -> Result<Prepared, Error> {
    // Environment, job spec and trial batch problems are reported together.
    let (layered, outputs) = read(&settings.load).await?;
    let (loaded, jobs, batches) = jobs::load_with_env(layered, outputs)?;
    render_with(loaded, jobs, batches, settings).await
}

/// Loads the environment alone, for commands that need no job specs, templates or add-ons.
pub(crate) async fn load(settings: &LoadSettings) -> Result<LoadedEnv, Error> {
    let (layered, outputs) = read(settings).await?;
    Ok(layered.load(outputs)?)
}

/// Reads the environment files, and the Terraform outputs they reference (only when they
/// reference one) through the one terraform runner.
async fn read(settings: &LoadSettings) -> Result<(Layered, Option<Fetched>), Error> {
    let layered = env::read(&settings.files, &settings.options())?;
    let outputs = match layered.outputs_source() {
        Some(source) => Some(terraform::fetch_outputs(source).await),
        None => None,
    };
    Ok((layered, outputs))
}

/// Renders an environment loaded earlier (`up` and `down` load it before their first step).
pub(crate) async fn render_loaded(loaded: LoadedEnv, settings: &PrepareSettings) -> Result<Prepared, Error> {
    let jobs = jobs::load(&loaded)?;
    let batches = crate::hpo::load(&loaded)?;
    render_with(loaded, jobs, batches, settings).await
}

async fn render_with(
    loaded: LoadedEnv,
    jobs: Vec<Job>,
    batches: Vec<Batch>,
    settings: &PrepareSettings,
) -> Result<Prepared, Error> {
    let templates = Templates::load(settings.templates.as_deref())?;
    let addon_objects = load_addons(&loaded, &settings.addons, &settings.load.files).await?;
    let specs = crate::render::Specs { jobs: &jobs, batches: &batches };
    let set = crate::render::render(&loaded, specs, &templates, addon_objects)?;
    Ok(Prepared { loaded, jobs, batches, set })
}

/// Loads every enabled add-on, concurrently (downloads and kustomize runs are slow). The lock
/// files of the environment files declaring kustomize add-ons are read and checked first, so a
/// broken lock or an add-on it does not pin is reported like any input error, before anything is
/// built or downloaded.
async fn load_addons(
    loaded: &LoadedEnv,
    args: &AddonSettings,
    env_files: &[PathBuf],
) -> Result<Vec<(String, Vec<serde_json::Value>)>, Error> {
    if args.skip {
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
