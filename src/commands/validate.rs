//! `trainstack validate`: inputs, then every rendered object against the Kubernetes API types
//! (built-in kinds) or CRD schemas (custom resources).

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::manifest::{Manifest, Origin};
use crate::render::{RenderError, TemplateError};
use crate::settings::{Format, ValidateSettings};
use crate::validate::{check_core, CrdSchemas};
use crate::Error;

/// One problem in one rendered object.
#[derive(Debug, Serialize)]
struct ObjectProblem {
    object: String,
    origin: String,
    path: String,
    message: String,
}

/// One problem in an environment file or job spec: nothing was rendered.
#[derive(Debug, Serialize)]
struct InputProblem {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    field: String,
    message: String,
    /// `file:line:column: field: message`, as the text report shows it.
    #[serde(skip)]
    shown: String,
}

impl From<&Diagnostic> for InputProblem {
    fn from(d: &Diagnostic) -> Self {
        InputProblem {
            shown: d.to_string(),
            file: d.file.clone(),
            line: d.pos.map(|p| p.line),
            column: d.pos.map(|p| p.column),
            field: d.field.clone(),
            message: d.message.clone(),
        }
    }
}

/// A problem in the inputs or in a rendered object (told apart by their fields).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Problem {
    Input(InputProblem),
    Object(ObjectProblem),
}

/// The outcome.
#[derive(Debug, Serialize, Default)]
struct Outcome {
    valid: bool,
    objects: usize,
    core_checked: usize,
    crd_checked: usize,
    problems: Vec<Problem>,
    /// Custom resources with no schema to check them against.
    unchecked: Vec<String>,
}

fn origin(m: &Manifest, templates_dir: Option<&std::path::Path>) -> String {
    match &m.origin {
        Origin::Template { template, .. } => match templates_dir {
            Some(dir) if dir.join(template).exists() => dir.join(template).display().to_string(),
            _ => format!("templates/{template}"),
        },
        Origin::Addon { name } => format!("add-on {name}"),
    }
}

/// Exit 0 when everything is valid, 1 otherwise.
pub async fn run(args: &ValidateSettings) -> Result<ExitCode, Error> {
    let mut crds = CrdSchemas::new();
    for dir in &args.crds {
        let loaded = CrdSchemas::load_dir(dir).map_err(anyhow::Error::from)?;
        if loaded.is_empty() {
            return Err(
                anyhow::anyhow!("--crds {}: no CustomResourceDefinition found in it", dir.display()).into()
            );
        }
        crds.extend(loaded);
    }
    let prepared = match super::prepare(&args.prepare).await {
        Ok(prepared) => prepared,
        // A CI job reading `-o json` gets the problems there too; the text report stays the
        // compiler-style error on stderr.
        Err(Error::Input(diagnostics)) if args.format != Format::Text => {
            let problems = diagnostics.0.iter().map(|d| Problem::Input(d.into())).collect();
            return nothing_rendered(args.format, problems);
        }
        Err(Error::Render(e)) if args.format != Format::Text => {
            return nothing_rendered(args.format, vec![Problem::Input(render_problem(&e))]);
        }
        Err(e) => return Err(e),
    };
    // CRDs rendered in the set (from add-ons) are what the cluster will serve: they win.
    for m in prepared.set.iter().filter(|m| m.kind() == "CustomResourceDefinition") {
        crds.add_crd(&m.obj).map_err(anyhow::Error::from)?;
    }
    let mut out = Outcome {
        valid: true,
        objects: prepared.set.len(),
        core_checked: 0,
        crd_checked: 0,
        problems: Vec::new(),
        unchecked: Vec::new(),
    };
    for m in &prepared.set {
        let problems = if let Some(p) = check_core(&m.obj) {
            out.core_checked += 1;
            p
        } else if let Some(p) = crds.validate(&m.obj) {
            out.crd_checked += 1;
            p
        } else {
            out.unchecked.push(format!("{} ({} {})", m.id(), m.api_version(), m.kind()));
            continue;
        };
        for p in problems {
            out.problems.push(Problem::Object(ObjectProblem {
                object: m.id(),
                origin: origin(m, args.prepare.templates.as_deref()),
                path: p.path,
                message: p.message,
            }));
        }
    }
    out.valid = out.problems.is_empty();
    print(args.format, &out)?;
    Ok(if out.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Why an object (`id (apiVersion kind)`) has no schema. The External Secrets Operator is a
/// prerequisite trainstack does not install, so no add-on could have brought its CRDs.
fn why_unchecked(unchecked: &str) -> &'static str {
    if unchecked.contains("(external-secrets.io/") {
        "the External Secrets Operator (components.secrets.mode: external-secrets) is a prerequisite trainstack does not install, so its CRDs are not in the set; pass --crds DIR with the CRDs of the version installed in the cluster"
    } else {
        "no add-on in the set brings its CRD (left out by --no-addons?); pass --crds DIR with the CRDs of the pinned version"
    }
}

/// The report when the inputs stopped the render: the problems, nothing checked; exit 1.
fn nothing_rendered(format: Format, problems: Vec<Problem>) -> Result<ExitCode, Error> {
    print(format, &Outcome { problems, ..Outcome::default() })?;
    Ok(ExitCode::from(1))
}

/// A template (or template override) that did not render, at its file and line when known.
fn render_problem(e: &RenderError) -> InputProblem {
    let (file, line, message) = match e {
        RenderError::Template(TemplateError::Template { file, line, message }) => {
            (file.clone(), *line, message.clone())
        }
        RenderError::Template(TemplateError::UnknownOverride { file, .. })
        | RenderError::Yaml { file, .. }
        | RenderError::NotAnObject { file, .. } => (file.clone(), None, e.to_string()),
        _ => (String::new(), None, e.to_string()),
    };
    InputProblem { file, line, column: None, field: String::new(), message, shown: e.to_string() }
}

fn print(format: Format, out: &Outcome) -> Result<(), Error> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(out).map_err(anyhow::Error::from)? + "\n",
        Format::Yaml => crate::yaml::to_string(out),
        Format::Text => {
            let mut t = String::new();
            for p in &out.problems {
                match p {
                    Problem::Object(p) => {
                        t.push_str(&format!("error: {}: {}: {}: {}\n", p.origin, p.object, p.path, p.message))
                    }
                    Problem::Input(p) => t.push_str(&format!("error: {}\n", p.shown)),
                }
            }
            for u in &out.unchecked {
                t.push_str(&format!("warning: {u}: no schema to check it against: {}\n", why_unchecked(u)));
            }
            t.push_str(&format!(
                "{}: {} objects: {} built-in kinds checked against the Kubernetes API types, {} custom resources against CRD schemas, {} not checked\n",
                if out.valid { "valid" } else { "invalid" },
                out.objects,
                out.core_checked,
                out.crd_checked,
                out.unchecked.len()
            ));
            t
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(())
}
