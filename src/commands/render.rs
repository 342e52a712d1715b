//! `trainstack render`: the manifest set as one YAML stream or a GitOps directory.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{GlobalArgs, OutputFormat, RenderArgs};
use crate::manifest;
use crate::Error;

/// Renders and writes the manifest set.
pub async fn run(global: &GlobalArgs, args: &RenderArgs) -> Result<ExitCode, Error> {
    let prepared = super::prepare(global, &args.addons).await?;
    let set = &prepared.set;
    if let Some(dir) = &args.out {
        let written = manifest::write_dir(set, dir)?;
        eprintln!("wrote {} objects to {}", written.len(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = match global.output {
        OutputFormat::Text | OutputFormat::Yaml => manifest::to_stream(set),
        OutputFormat::Json => {
            let items: Vec<&serde_json::Value> = set.iter().map(|m| &m.obj).collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)? + "\n"
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(ExitCode::SUCCESS)
}
