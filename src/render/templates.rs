//! The one minijinja environment: built-in templates embedded at build time, a user override
//! directory, strict undefined values and YAML-safe output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use include_dir::{include_dir, Dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// A template problem, pointing at the template file and line.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// minijinja could not parse or render a template.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        /// Template file (the override path when overridden).
        file: String,
        /// Line in the template.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// The override directory holds a template name trainstack does not have.
    #[error(
        "{file}: does not replace any built-in template; built-in templates of {component}/ are: {known}"
    )]
    UnknownOverride {
        /// The override file.
        file: String,
        /// Its component directory.
        component: String,
        /// What it could have been.
        known: String,
    },
    /// The override directory cannot be read.
    #[error("cannot read template directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// All templates, by name (`component/file.yaml`), with where each came from.
pub struct Templates {
    env: Environment<'static>,
    /// Template name -> file shown in errors.
    files: BTreeMap<String, String>,
}

impl Templates {
    /// Built-in templates, with any from `overrides` replacing those of the same name.
    pub fn load(overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<String, (String, String)> = BTreeMap::new();
        collect_builtin(&BUILTIN, &mut sources);
        if let Some(dir) = overrides {
            let mut found = Vec::new();
            walk(dir, dir, &mut found)?;
            for (name, path) in found {
                if !sources.contains_key(&name) {
                    let component = name.split('/').next().unwrap_or("").to_string();
                    let known: Vec<&str> = sources
                        .keys()
                        .filter(|k| k.starts_with(&format!("{component}/")))
                        .map(String::as_str)
                        .collect();
                    return Err(TemplateError::UnknownOverride {
                        file: path.display().to_string(),
                        component,
                        known: if known.is_empty() {
                            "(none: no such component)".into()
                        } else {
                            known.join(", ")
                        },
                    });
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| TemplateError::Io { dir: path.clone(), source })?;
                sources.insert(name, (path.display().to_string(), text));
            }
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        // Every `{{ value }}` in a .yaml template is written as a JSON scalar, which is also a
        // valid YAML flow scalar: a value like `yes`, `a: b` or a multi-line script cannot
        // change the document's structure.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".yaml") {
                AutoEscape::Json
            } else {
                AutoEscape::None
            }
        });
        // Secrets are rendered as `data`, not `stringData`: the API server stores only `data`,
        // so an applied `stringData` never matches the live object and every plan of it needs
        // a server dry-run (engine/noop.rs). Every shipped Secret with values uses it.
        env.add_filter("b64encode", |value: String| BASE64.encode(value));
        let mut files = BTreeMap::new();
        for (name, (file, text)) in sources {
            env.add_template_owned(name.clone(), text).map_err(|e| from_minijinja(&e, &file))?;
            files.insert(name, file);
        }
        Ok(Templates { env, files })
    }

    /// Template names under `component/`, in name order.
    pub fn component_templates(&self, component: &str) -> Vec<&str> {
        let prefix = format!("{component}/");
        self.files
            .keys()
            .filter(|k| k.starts_with(&prefix) && k.ends_with(".yaml"))
            .map(String::as_str)
            .collect()
    }

    /// Renders one template.
    pub fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, TemplateError> {
        let file = self.files.get(name).cloned().unwrap_or_else(|| name.to_string());
        let tmpl = self.env.get_template(name).map_err(|e| from_minijinja(&e, &file))?;
        tmpl.render(ctx).map_err(|e| from_minijinja(&e, &file))
    }

    /// The file a template name was loaded from (for messages).
    pub fn file_of(&self, name: &str) -> String {
        self.files.get(name).cloned().unwrap_or_else(|| name.to_string())
    }
}

fn collect_builtin(dir: &Dir<'static>, out: &mut BTreeMap<String, (String, String)>) {
    for f in dir.files() {
        let name = f.path().to_string_lossy().replace('\\', "/");
        if let Some(text) = f.contents_utf8() {
            out.insert(name.clone(), (format!("templates/{name}"), text.to_string()));
        }
    }
    for d in dir.dirs() {
        collect_builtin(d, out);
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), TemplateError> {
    let rd = std::fs::read_dir(dir).map_err(|source| TemplateError::Io { dir: dir.to_path_buf(), source })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
    Ok(())
}

fn from_minijinja(e: &minijinja::Error, file: &str) -> TemplateError {
    // Errors inside an included or imported template name that template, not the entry point.
    let file = match e.name() {
        Some(n) if !file.ends_with(n) => format!("templates/{n}"),
        _ => file.to_string(),
    };
    let mut message = e.kind().to_string();
    if let Some(d) = e.detail() {
        message.push_str(": ");
        message.push_str(d);
    }
    TemplateError::Template { file, line: e.line(), message }
}
