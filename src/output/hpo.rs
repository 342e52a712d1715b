//! The `hpo run` and `hpo status` result: one block per trial batch, or JSON / YAML.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::settings::Format;
use crate::trials::status::BatchStatus;
use crate::Error;

/// Prints the batches found in `namespaces`.
pub fn print(format: Format, batches: &[BatchStatus], namespaces: &[String]) -> Result<(), Error> {
    let text = match format {
        Format::Text => text(batches, namespaces),
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({ "batches": batches }))
                .map_err(anyhow::Error::from)?
                + "\n"
        }
        Format::Yaml => crate::yaml::to_string(&serde_json::json!({ "batches": batches })),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(())
}

/// The text form.
pub fn text(batches: &[BatchStatus], namespaces: &[String]) -> String {
    if batches.is_empty() {
        return format!(
            "no trial batches in namespace{} {}\n",
            if namespaces.len() == 1 { "" } else { "s" },
            namespaces.join(", ")
        );
    }
    let mut out = String::new();
    for (i, b) in batches.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "batch {}/{} (study {}): {}", b.namespace, b.batch, b.study, b.state);
        if let Some(f) = &b.failure {
            let _ = writeln!(out, "  failure:   {f}");
        }
        let p = &b.pods;
        let _ = writeln!(
            out,
            "  pods:      {} trials, {} running, {} succeeded, {} failed ({})",
            p.trials,
            p.active,
            p.succeeded,
            p.failed,
            b.jobs.join(", ")
        );
        match (&b.trials, &b.error) {
            (Some(t), _) => {
                let _ = writeln!(
                    out,
                    "  trials:    {} complete, {} failed, {} pruned, {} running, {} waiting",
                    t.complete, t.failed, t.pruned, t.running, t.waiting
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "  trials:    unknown: the dashboard could not be read: {e}");
            }
            (None, None) => {}
        }
        if b.best.is_empty() {
            let _ = writeln!(out, "  best:      none yet (no complete trial)");
        }
        for best in &b.best {
            let values: Vec<String> = best.values.iter().map(f64::to_string).collect();
            let params: Vec<String> = best.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "  best:      trial {} value {} ({})",
                best.number,
                values.join(", "),
                params.join(", ")
            );
        }
        let _ = writeln!(out, "  dashboard: {}", b.dashboard);
    }
    let _ = writeln!(
        out,
        "\nOpen a dashboard path through the API server: kubectl proxy, then http://127.0.0.1:8001<path>"
    );
    out
}
