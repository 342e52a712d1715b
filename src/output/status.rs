//! The `status` table: one row per object and AWS resource, as text, JSON or YAML.

use std::io::Write;

use serde::Serialize;

use crate::settings::Format as OutputFormat;
use crate::Error;

/// One row of `status`.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The component (template component, `addon:NAME`, `gpu`, `s3`).
    pub component: String,
    /// `Kind namespace/name`, `EKS node group NAME`, `S3 bucket NAME`.
    pub object: String,
    /// `in sync`, `missing`, `drifted`, `replace`, `undeclared` or `error`.
    pub state: &'static str,
    /// `ready`, or what is not.
    pub ready: String,
    /// Drift and health lines (AWS resources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// Writes the rows to stdout in `format`.
pub fn print(format: OutputFormat, rows: &[Row]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?)
        }
        OutputFormat::Yaml => write!(out, "{}", crate::yaml::to_string(&rows)),
        OutputFormat::Text => {
            let w = rows.iter().map(|r| r.object.len()).max().unwrap_or(6).max(6);
            let cw = rows.iter().map(|r| r.component.len()).max().unwrap_or(9).max(9);
            let mut res = writeln!(out, "{:cw$}  {:w$}  {:10}  READY", "COMPONENT", "OBJECT", "STATE");
            for r in rows {
                res = res.and(writeln!(
                    out,
                    "{:cw$}  {:w$}  {:10}  {}",
                    r.component, r.object, r.state, r.ready
                ));
                for d in &r.details {
                    res = res.and(writeln!(out, "{:cw$}    {d}", ""));
                }
            }
            res
        }
    }
    .map_err(anyhow::Error::from)?;
    Ok(())
}
