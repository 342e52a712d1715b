//! `addons lock`: builds every kustomize add-on once and pins its output's sha256 in the lock file
//! beside the environment file that declares it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::addons::{AddonLoader, Lock};
use crate::diag::Diagnostics;
use crate::env::LoadedEnv;
use crate::settings::AddonsLockSettings;
use crate::Error;

/// The lock file of the environment file that declared `addons[i]`'s source.
pub(crate) fn lock_path(loaded: &LoadedEnv, i: usize) -> PathBuf {
    let (layer, _) = loaded.sources.locate(&format!("addons[{i}].source"), false);
    let env_file = layer.expect("a loaded environment has at least one file").path.as_path();
    Lock::path_for(env_file)
}

/// The lock files of the environment files that declare enabled kustomize add-ons, by path,
/// once every such add-on is pinned there to its declared target; otherwise every add-on that is
/// not, as input errors (a broken lock file is one too).
pub(crate) fn read_locks(
    loaded: &LoadedEnv,
    env_files: &[PathBuf],
) -> Result<BTreeMap<PathBuf, Lock>, Error> {
    let mut locks = BTreeMap::new();
    for (i, addon) in loaded.env.addons.iter().enumerate().filter(|(_, a)| a.enabled) {
        let path = lock_path(loaded, i);
        if addon.source.kustomize.is_some() && !locks.contains_key(&path) {
            let lock = Lock::read(&path)?;
            locks.insert(path, lock);
        }
    }
    unlocked(loaded, &locks, env_files).into_result()?;
    Ok(locks)
}

/// A diagnostic at the target of every enabled kustomize add-on that its lock file (in `locks`,
/// by path) does not pin to the declared target, naming the command that pins it.
fn unlocked(loaded: &LoadedEnv, locks: &BTreeMap<PathBuf, Lock>, env_files: &[PathBuf]) -> Diagnostics {
    let files: Vec<String> = env_files.iter().map(|f| format!("-e {}", f.display())).collect();
    let command = format!("trainstack addons lock {}", files.join(" "));
    let mut problems = Diagnostics::default();
    for (i, addon) in loaded.env.addons.iter().enumerate().filter(|(_, a)| a.enabled) {
        let Some(target) = &addon.source.kustomize else { continue };
        let Some(lock) = locks.get(&lock_path(loaded, i)) else { continue };
        let field = format!("addons[{i}].source.kustomize");
        let message = match lock.addons.get(&addon.name) {
            None => format!(
                "add-on `{}` is not locked: {} records no sha256 for it; run `{command}` once where \
                 kubectl and the source are reachable and commit the lock file, or pass --no-addons",
                addon.name,
                lock.path.display()
            ),
            Some(locked) if &locked.kustomize != target => format!(
                "{} pins add-on `{}` to kustomize {}; run `{command}` to build and pin this target",
                lock.path.display(),
                addon.name,
                locked.kustomize
            ),
            Some(_) => continue,
        };
        problems.push(loaded.sources.error(&field, message));
    }
    problems
}

/// `addons lock`.
pub async fn lock(args: &AddonsLockSettings) -> Result<ExitCode, Error> {
    // Only the environment: job specs and templates do not change what an add-on builds to.
    let loaded = super::load(&args.load).await?;
    let loader = AddonLoader::new(args.cache_dir.clone().unwrap_or_else(AddonLoader::default_cache_dir));
    let jobs = loaded.env.addons.iter().enumerate().map(|(i, addon)| {
        let base = loaded.sources.base_dir(&format!("addons[{i}].source"));
        let lock_path = lock_path(&loaded, i);
        let loader = &loader;
        async move { loader.lock(addon, &base).await.map(|locked| (lock_path, addon.name.clone(), locked)) }
    });
    let mut locks: BTreeMap<PathBuf, Lock> = BTreeMap::new();
    for result in futures::future::join_all(jobs).await {
        let (path, name, locked) = result?;
        if let Some(locked) = locked {
            locks.entry(path.clone()).or_insert_with(|| Lock::empty(path)).addons.insert(name, locked);
        }
    }

    let mut report = String::new();
    if locks.is_empty() {
        report.push_str("no enabled kustomize add-ons: nothing to lock\n");
    }
    for (path, lock) in &locks {
        // A lock file that no longer parses is what this command repairs, so it only loses the
        // comparison below.
        let previous = Lock::read(path).unwrap_or_else(|_| Lock::empty(path.clone()));
        for (name, locked) in &lock.addons {
            let change = match previous.addons.get(name) {
                None => "new".to_string(),
                Some(p) if p == locked => "unchanged".to_string(),
                Some(p) if p.kustomize != locked.kustomize => format!("was kustomize {}", p.kustomize),
                Some(p) => format!("was sha256 {}", p.sha256),
            };
            report.push_str(&format!("{name}: sha256 {} ({change})\n", locked.sha256));
        }
        let text = lock.render();
        if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
            report.push_str(&format!("{} is up to date\n", path.display()));
        } else {
            write_replacing(path, &text).with_context(|| format!("writing {}", path.display()))?;
            report.push_str(&format!("wrote {}\n", path.display()));
        }
    }
    std::io::stdout().lock().write_all(report.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes beside `path` and renames over it, so a reader never sees half a lock file.
fn write_replacing(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
