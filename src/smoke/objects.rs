//! The `objects` check: every object of the rendered set exists, is ready by the engine's
//! readiness rules, and has not drifted from what the environment declares (the engine's
//! server-side dry-run diff, as `trainstack diff` computes it).

use crate::engine::plan::Action;

use super::{Context, Outcome, Record};

/// Problems named in the reason line; the steps list all of them.
const SHOWN: usize = 3;

/// Runs the check.
pub async fn run(ctx: &Context, rec: &Record) -> Outcome {
    let report = match ctx.engine.diff(&ctx.set).await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::failed(
                format!("cannot diff the rendered set: {e}"),
                "run trainstack diff for details",
            )
        }
    };
    let readiness = match ctx.engine.readiness(&ctx.set).await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::failed(
                format!("cannot read object readiness: {e}"),
                "run trainstack status for details",
            )
        }
    };
    let mut problems = Vec::new();
    for c in &report.changes {
        let id = c.display_id();
        let problem = match (&c.error, c.action) {
            (Some(e), _) => Some(format!("{id}: {e}")),
            (None, Action::Create) => Some(format!("{id} is missing")),
            (None, Action::Update) => Some(format!("{id} has drifted:\n{}", c.diff.trim_end())),
            (None, Action::Prune) => {
                rec.step(format!("{id} is no longer declared (apply --prune removes it)"));
                None
            }
            (None, Action::Unchanged) => None,
        };
        problems.extend(problem);
    }
    for (m, state) in ctx.set.iter().zip(&readiness) {
        // Missing objects are already reported by the diff.
        if state != "ready" && state != "missing" {
            problems.push(format!("{} is not ready: {state}", m.id()));
        }
    }
    if problems.is_empty() {
        return Outcome::passed(format!("{} objects present, ready and in sync", ctx.set.len()));
    }
    for p in &problems {
        rec.step(p.clone());
    }
    let first: Vec<String> =
        problems.iter().take(SHOWN).map(|p| p.lines().next().unwrap_or_default().to_string()).collect();
    let more = problems.len().saturating_sub(SHOWN);
    Outcome::failed(
        format!(
            "{} problem{} in the {} rendered objects: {}{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            ctx.set.len(),
            first.join("; "),
            if more > 0 { format!("; and {more} more (see the steps)") } else { String::new() }
        ),
        "trainstack status lists drift and readiness per object, trainstack diff shows the drift; trainstack apply restores missing and drifted objects",
    )
}
