//! `trainstack render`: the manifest set as one YAML stream or a GitOps directory.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::manifest;
use crate::settings::{Format, RenderSettings};
use crate::Error;

/// Renders and writes the manifest set.
pub async fn run(args: &RenderSettings) -> Result<ExitCode, Error> {
    let prepared = super::prepare(&args.prepare).await?;
    let set = &prepared.set;
    let text = if let Some(dir) = &args.out {
        let written = manifest::write_dir(set, dir)?;
        eprintln!("wrote {} objects to {}", written.len(), dir.display());
        // A CI job that commits the tree, or checks it, reads what was written from stdout.
        let files: Vec<WrittenFile> = set
            .iter()
            .zip(&written)
            .map(|(m, path)| WrittenFile {
                path: path.display().to_string(),
                kind: m.kind(),
                namespace: m.namespace(),
                name: m.name(),
            })
            .collect();
        let listing = Written { dir: dir.display().to_string(), files };
        match args.format {
            Format::Text => return Ok(ExitCode::SUCCESS),
            Format::Json => serde_json::to_string_pretty(&listing).map_err(anyhow::Error::from)? + "\n",
            Format::Yaml => crate::yaml::to_string(&listing),
        }
    } else {
        stream(set, args.format)?
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}

/// What `render --out DIR -o json|yaml` prints.
#[derive(Serialize)]
struct Written<'a> {
    dir: String,
    files: Vec<WrittenFile<'a>>,
}

/// One file of the tree and the object in it.
#[derive(Serialize)]
struct WrittenFile<'a> {
    path: String,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

/// The set as one YAML stream or a JSON `List`.
fn stream(set: &[manifest::Manifest], format: Format) -> Result<String, Error> {
    Ok(match format {
        Format::Text | Format::Yaml => manifest::to_stream(set),
        Format::Json => {
            let items: Vec<&serde_json::Value> = set.iter().map(|m| &m.obj).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)? + "\n"
        }
    })
}
