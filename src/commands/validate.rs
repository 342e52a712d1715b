//! `trainstack validate`: inputs, then every rendered object against the Kubernetes API types
//! (built-in kinds) or CRD schemas (custom resources).

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat, ValidateArgs};
use crate::manifest::{Manifest, Origin};
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

/// The outcome.
#[derive(Debug, Serialize)]
struct Outcome {
    valid: bool,
    objects: usize,
    core_checked: usize,
    crd_checked: usize,
    problems: Vec<ObjectProblem>,
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
pub async fn run(global: &GlobalArgs, args: &ValidateArgs) -> Result<ExitCode, Error> {
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
    let prepared = super::prepare(global, &args.addons).await?;
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
            out.problems.push(ObjectProblem {
                object: m.id(),
                origin: origin(m, global.templates.as_deref()),
                path: p.path,
                message: p.message,
            });
        }
    }
    out.valid = out.problems.is_empty();
    let mut w = std::io::stdout().lock();
    let text = match global.output {
        OutputFormat::Json => serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)? + "\n",
        OutputFormat::Yaml => crate::yaml::to_string(&out),
        OutputFormat::Text => {
            let mut t = String::new();
            for p in &out.problems {
                t.push_str(&format!("error: {}: {}: {}: {}\n", p.origin, p.object, p.path, p.message));
            }
            for u in &out.unchecked {
                t.push_str(&format!(
                    "warning: {u}: no schema to check it against; pass --crds DIR with the CRDs of the pinned version\n"
                ));
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
    w.write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(if out.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
