//! The report of `diff`, `apply` and `delete`: the engine's per-object changes and, on eks, the
//! AWS resources beside them, as text, JSON or YAML.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::aws::change::{AwsAction, Resource};
use crate::aws::reconcile::AwsReport;
use crate::engine::plan::{self, Action};
use crate::engine::run::Report;
use crate::settings::Format as OutputFormat;
use crate::Error;

/// The JSON/YAML shape: the Kubernetes report, plus `aws` on eks targets.
#[derive(Serialize)]
struct Combined<'a> {
    #[serde(flatten)]
    kubernetes: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws: Option<&'a AwsReport>,
}

/// Writes the report to stdout in `format`; `verb` (`diff`, `apply --dry-run`, `delete`, ...)
/// names the summary lines, `verbose` lists unchanged objects too.
pub fn print(
    format: OutputFormat,
    report: &Report,
    aws: Option<&AwsReport>,
    verb: &str,
    verbose: bool,
) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let color = std::io::stdout().is_terminal();
    let combined = Combined { kubernetes: report, aws };
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(&combined).map_err(anyhow::Error::from)? + "\n",
        OutputFormat::Yaml => crate::yaml::to_string(&combined),
        OutputFormat::Text => {
            // AWS resources are listed in the order they are handled: before the Kubernetes
            // objects for diff and apply, after them for delete.
            let deleting = verb.starts_with("delete");
            let aws_lines = aws.map(|a| aws_text(a, verbose)).unwrap_or_default();
            let mut t = if deleting { String::new() } else { aws_lines.clone() };
            // The same failure on many objects (the server went away) is shown three times
            // and then counted, not repeated for every object; `-o json` keeps each one.
            let mut same_error: std::collections::BTreeMap<&str, usize> = Default::default();
            for c in &report.changes {
                if let Some(e) = &c.error {
                    let cause = e.split_once(": ").map_or(e.as_str(), |(_, cause)| cause);
                    let seen = same_error.entry(cause).or_default();
                    *seen += 1;
                    if *seen > 3 {
                        continue;
                    }
                }
                let (sign, label) = (c.action.sign(), c.action.label());
                // The server's warnings go under the object's line, as kubectl prints them.
                let warned: String = c.warnings.iter().map(|w| format!("    Warning: {w}\n")).collect();
                if let Some(e) = &c.error {
                    t.push_str(&format!("! {} failed: {e}\n{warned}", c.display_id()));
                    continue;
                }
                if c.action == Action::Unchanged {
                    if verbose || !warned.is_empty() {
                        t.push_str(&format!("{sign} {} ({label})\n{warned}", c.display_id()));
                    }
                    continue;
                }
                match &c.conflict {
                    Some(conflict) => {
                        t.push_str(&format!(
                            "{sign} {} ({label}, conflict with {})\n",
                            c.display_id(),
                            conflict.managers_list()
                        ));
                        for f in &conflict.fields {
                            t.push_str(&format!("    {}: owned by {:?}\n", f.field, f.manager));
                        }
                        t.push_str(
                            "    apply refuses this without --force-conflicts, which takes the fields over\n",
                        );
                    }
                    None => t.push_str(&format!("{sign} {} ({label})\n", c.display_id())),
                }
                t.push_str(&warned);
                if c.action != Action::Prune && !c.diff.is_empty() {
                    t.push_str(&if color { plan::colorize(&c.diff) } else { c.diff.clone() });
                }
            }
            for (cause, n) in same_error.iter().filter(|(_, n)| **n > 3) {
                t.push_str(&format!("! {} more objects failed the same way: {cause}\n", n - 3));
            }
            for k in &report.kept {
                t.push_str(&format!("  kept {k}\n"));
            }
            for n in &report.not_ready {
                t.push_str(&format!("! not ready: {n}\n"));
            }
            if deleting {
                t.push_str(&aws_lines);
            }
            if let Some(a) = aws {
                t.push_str(&aws_summary(a, verb));
            }
            let s = &report.summary;
            if verbose && !deleting {
                t.push_str(&planned_line(s));
            }
            let warnings = match s.warnings {
                0 => String::new(),
                n => format!(", {}", plural(n, "warning")),
            };
            t.push_str(&format!(
                "{verb}: {} created, {} configured, {} unchanged, {} pruned, {} failed{warnings}\n",
                s.created, s.configured, s.unchanged, s.pruned, s.failed
            ));
            t
        }
    };
    out.write_all(text.as_bytes()).map_err(anyhow::Error::from)?;
    Ok(())
}

/// `planned: 40 decided locally, 2 dry-runs (new object: 1, ...)`: why a run was fast or
/// slow, with the three most common reasons for a dry-run.
fn planned_line(s: &crate::engine::run::Summary) -> String {
    let mut reasons: Vec<(&String, &usize)> = s.dry_run_reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = reasons.iter().take(3).map(|(r, n)| format!("{r}: {n}")).collect();
    let why = if top.is_empty() { String::new() } else { format!(" ({})", top.join(", ")) };
    format!("planned: {} decided locally, {}{why}\n", s.decided_locally, plural(s.dry_runs, "dry-run"))
}

/// `1 warning`, `2 warnings`.
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The `<verb> aws:` line; `delete` lists what it deleted and the buckets it kept.
fn aws_summary(a: &AwsReport, verb: &str) -> String {
    let s = &a.summary;
    if !verb.starts_with("delete") {
        return format!(
            "{verb} aws: {} created, {} updated, {} unchanged, {} to replace, {} pruned, {} failed\n",
            s.created, s.updated, s.unchanged, s.replace, s.pruned, s.failed
        );
    }
    let mut t = String::new();
    for b in &a.kept {
        t.push_str(&format!(
            "  kept S3 bucket {b}: it holds data and is never deleted by trainstack; once it is no longer needed: aws s3 rb s3://{b} --force\n"
        ));
    }
    let deleted = if verb.ends_with("--dry-run") { "to delete" } else { "deleted" };
    let count =
        |r: Resource| a.changes.iter().filter(|c| c.resource == r && c.action == AwsAction::Delete).count();
    // Only environments with tenant identities have associations to name.
    let associations = match count(Resource::PodIdentityAssociation) {
        0 => String::new(),
        n => format!("{n} pod identity associations {deleted}, "),
    };
    t.push_str(&format!(
        "{verb} aws: {} node groups {deleted}, {associations}{} failed, {} buckets kept\n",
        count(Resource::NodeGroup),
        s.failed,
        a.kept.len()
    ));
    t
}

/// The AWS changes as text: one line per resource with its sign, then indented details.
fn aws_text(report: &AwsReport, verbose: bool) -> String {
    let mut t = String::new();
    for c in &report.changes {
        let note = c.note.as_ref().map(|n| format!(", {n}")).unwrap_or_default();
        if let Some(e) = &c.error {
            t.push_str(&format!("! {} failed: {e}\n", c.display_id()));
            for d in &c.details {
                t.push_str(&format!("    {d}\n"));
            }
            continue;
        }
        let (sign, label) = match c.action {
            AwsAction::Create => ('+', "create"),
            AwsAction::Update => ('~', "update"),
            AwsAction::Replace => ('!', "requires replacement"),
            AwsAction::Prune => ('-', "prune"),
            AwsAction::Delete => ('-', "delete"),
            AwsAction::Unchanged => ('=', "unchanged"),
        };
        // Unchanged resources are listed with -v, and always when they carry a note worth
        // reading (a node group EKS reports as DEGRADED).
        let healthy = c.note.as_deref().is_none_or(|n| !n.starts_with("status "));
        if c.action == AwsAction::Unchanged && !verbose && healthy {
            continue;
        }
        t.push_str(&format!("{sign} {} ({label}{note})\n", c.display_id()));
        for d in &c.details {
            t.push_str(&format!("    {d}\n"));
        }
    }
    t
}
