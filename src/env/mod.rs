//! Environment files: loading, layering, Terraform references and validation.

pub mod addon_source;
pub mod check;
pub mod layers;
pub mod merge;
pub mod model;
pub mod names;
pub mod quantity;
pub mod secret_template;
pub mod sources;
pub mod terraform;
pub mod validate;
pub mod versions;

use std::path::PathBuf;

use crate::diag::Diagnostics;
use crate::yaml;

use layers::{failed, merge_all};
pub use layers::{merge_files, Merged};
pub(crate) use layers::{read_spec, spec_files, SpecFile};
pub use model::Environment;
pub use sources::{within, Layer, Sources};

/// Options that change how an environment is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A `terraform output -json` file that overrides the environment's `terraform` setting.
    pub terraform_outputs: Option<PathBuf>,
}

/// A loaded, merged, resolved and validated environment.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    /// The typed environment.
    pub env: Environment,
    /// Where each setting came from.
    pub sources: Sources,
}

/// Environment files read and layered, before their `${terraform.NAME}` references are filled:
/// the caller reads the outputs from [`Layered::outputs_source`] (a file, or `terraform output`,
/// which loading never runs) and hands them to [`Layered::load`].
#[derive(Debug)]
pub struct Layered {
    merged: Merged,
    problems: Diagnostics,
    outputs: Option<terraform::OutputsSource>,
}

/// Reads and layers environment files, and finds where the outputs they reference come from.
pub fn read(files: &[PathBuf], opts: &LoadOptions) -> Result<Layered, Diagnostics> {
    let (merged, problems) = merge_all(files)?;
    if !problems.is_empty() && merged.value.is_null() {
        return Err(failed(problems));
    }
    // References are resolved only in a complete environment: a file that could not be read
    // may set where the outputs are.
    let outputs = if problems.is_empty() {
        terraform::outputs_source(&merged.value, &merged.sources, opts.terraform_outputs.as_deref())
    } else {
        None
    };
    Ok(Layered { merged, problems, outputs })
}

impl Layered {
    /// Where the outputs the files reference are read from; `None` when nothing needs them.
    pub fn outputs_source(&self) -> Option<&terraform::OutputsSource> {
        self.outputs.as_ref()
    }

    /// Resolves Terraform references with `outputs` (read from [`Layered::outputs_source`],
    /// `None` when it names none), deserialises and validates. Every problem found is returned
    /// at once; an environment with any problem is never returned.
    pub fn load(self, outputs: Option<terraform::Fetched>) -> Result<LoadedEnv, Diagnostics> {
        let Partial { loaded, problems, .. } = self.load_partial(outputs)?;
        problems.into_result()?;
        Ok(loaded.expect("an environment that does not type has a problem recorded"))
    }

    /// [`Layered::load`], returning what typed beside the problems.
    pub fn load_partial(self, outputs: Option<terraform::Fetched>) -> Result<Partial, Diagnostics> {
        let Layered { merged: Merged { mut value, sources }, problems: mut diags, outputs: source } = self;
        let unreadable_file = !diags.is_empty();
        let unresolved = if unreadable_file {
            Vec::new()
        } else {
            terraform::resolve(&mut value, &sources, source.as_ref(), outputs, &mut diags)
        };
        let typed = yaml::from_value_all::<Environment>(value, unresolved);
        for e in &typed.errors {
            // A file that could not be read may well hold the missing field.
            if !(unreadable_file && e.message.starts_with("missing field")) {
                diags.push(check::type_diagnostic(e, &sources));
            }
        }
        let env = match typed.value {
            // Checks of an environment without one of its files would report what that file fixes.
            Some(env) if !unreadable_file => env,
            _ => return Err(failed(diags)),
        };
        let mut env = env;
        env.derive_defaults();
        diags.0.extend(validate::check(&env, &sources, &typed.dropped).0);
        Ok(Partial { loaded: Some(LoadedEnv { env, sources }), problems: diags, unreadable: typed.dropped })
    }
}

/// An environment read as far as it goes, so that inputs checked against it (job specs) are
/// still checked when it has problems.
#[derive(Debug)]
pub struct Partial {
    /// The environment, when it typed. With problems it is only fit to check other inputs
    /// against, never to render.
    pub loaded: Option<LoadedEnv>,
    /// Every problem found.
    pub problems: Diagnostics,
    /// Fields that could not be read (wrong type, unresolvable reference): defaults stand in
    /// for them in `loaded`.
    pub unreadable: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Top-level modules the pure core (`env/`, `jobs/`) may use: anything else is an adapter
    /// (`targets/`, `aws/`, `addons/`, `engine/`, ...) or sits above the core (`render/`,
    /// `commands/`), and importing it would close a cycle back into `env/`.
    const CORE: &[&str] = &["env", "jobs", "hpo", "diag", "yaml", "manifest"];

    /// The top-level modules a file names through `crate::module` or `crate::{module, ...}`.
    fn crate_modules(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let name: String =
                    name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push(name);
            }
        }
        found
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn env_and_jobs_import_no_adapter_and_not_render() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src/env"), &mut files);
        rust_files(&root.join("src/jobs"), &mut files);
        rust_files(&root.join("src/hpo"), &mut files);
        let mut outside = Vec::new();
        for file in &files {
            let shown = file.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(file).unwrap();
            // Unit tests may reach further than the code they test; comments are not imports.
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for module in crate_modules(&code) {
                if !CORE.contains(&module.as_str()) {
                    outside.push(format!("{shown}: crate::{module}"));
                }
            }
        }
        assert!(outside.is_empty(), "the pure core imports from outside it:\n{}", outside.join("\n"));
    }

    #[test]
    fn loading_takes_the_terraform_outputs_as_input_from_the_source_the_files_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env.yaml");
        let env = "name: prod\ntarget:\n  kind: eks\n  cluster_name: ${terraform.cluster_name}\n  region: eu-west-1\nterraform:\n  dir: tf\n  backend_config: tf/prod.tfbackend\n";
        std::fs::write(&file, env).unwrap();
        let layered = super::read(std::slice::from_ref(&file), &super::LoadOptions::default()).unwrap();
        assert_eq!(
            layered.outputs_source(),
            Some(&super::terraform::OutputsSource::Dir {
                dir: dir.path().join("tf"),
                environment: "prod".into(),
                shared_root: true,
            })
        );
        let outputs = super::terraform::parse_outputs(r#"{"cluster_name":{"value":"c-1"}}"#).unwrap();
        let loaded = layered.load(Some(Ok(outputs))).unwrap();
        assert_eq!(loaded.env.target.cluster_name, "c-1");

        let given = super::LoadOptions { terraform_outputs: Some("out.json".into()) };
        let layered = super::read(std::slice::from_ref(&file), &given).unwrap();
        assert_eq!(
            layered.outputs_source(),
            Some(&super::terraform::OutputsSource::Given("out.json".into()))
        );

        std::fs::write(&file, "name: dev\ntarget:\n  kind: kind\n  cluster_name: dev\n").unwrap();
        let layered = super::read(std::slice::from_ref(&file), &given).unwrap();
        assert_eq!(layered.outputs_source(), None, "without a reference nothing is read");
        assert_eq!(layered.load(None).unwrap().env.name, "dev");
    }

    #[test]
    fn crate_paths_are_read_in_both_forms() {
        assert_eq!(
            super::tests::crate_modules(
                "use crate::aws::s3;\nuse crate::{diag, render::x};\ncrate::targets::kind"
            ),
            ["aws", "diag", "render", "targets"]
        );
    }
}
