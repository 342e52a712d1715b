//! Smoke results for people and machines: a table, JSON (the report serialized), and JUnit
//! XML for CI.

use crate::smoke::report::RunReport;
use crate::smoke::Outcome;

/// Total wall time of the checks.
fn time(r: &RunReport) -> f64 {
    r.checks.iter().map(|c| c.duration.as_secs_f64()).sum()
}

/// The table: one row per check, the reason and hint under failures, their steps; with
/// `verbose` every check's steps and logs.
pub fn table(r: &RunReport, verbose: bool) -> String {
    let mut t = format!("{:<8}  {:<7}  {:>6}  DETAILS\n", "CHECK", "RESULT", "TIME");
    let indent = " ".repeat(8 + 2 + 7 + 2 + 6 + 2);
    for c in &r.checks {
        let time =
            if c.duration.is_zero() { "-".to_string() } else { format!("{:.1}s", c.duration.as_secs_f64()) };
        let details = match &c.outcome {
            Outcome::Passed { summary } => summary.clone(),
            Outcome::Failed { reason, .. } => reason.clone(),
            Outcome::Skipped { why } => why.clone(),
        };
        t.push_str(&format!("{:<8}  {:<7}  {:>6}  {details}\n", c.check.name(), c.outcome.label(), time));
        let failed = matches!(c.outcome, Outcome::Failed { .. });
        if let Outcome::Failed { hint, .. } = &c.outcome {
            t.push_str(&format!("{indent}look at: {hint}\n"));
        }
        if failed || verbose {
            for s in &c.steps {
                for (i, line) in s.lines().enumerate() {
                    t.push_str(&format!("{indent}{}{line}\n", if i == 0 { "- " } else { "  " }));
                }
            }
        }
        if verbose && !c.logs.is_empty() {
            for line in c.logs.lines() {
                t.push_str(&format!("{indent}| {line}\n"));
            }
        }
    }
    let s = &r.summary;
    t.push_str(&format!(
        "smoke: {} passed, {} failed, {} skipped (run {})\n",
        s.passed, s.failed, s.skipped, r.run_id
    ));
    for c in &r.cleanup {
        t.push_str(&format!("  {c}\n"));
    }
    t
}

/// JUnit XML: one testsuite, one testcase per check; failures and skips carry their reason
/// in `message`, steps and logs go to `system-out`.
pub fn junit(r: &RunReport) -> String {
    let s = &r.summary;
    let total = r.checks.len();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite = format!("trainstack smoke {}", r.environment);
    let counts = format!(
        "name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        attr(&suite),
        s.failed,
        s.skipped,
        time(r)
    );
    x.push_str(&format!("<testsuites {counts}>\n  <testsuite {counts}>\n"));
    x.push_str(&format!(
        "    <properties>\n      <property name=\"run_id\" value=\"{}\"/>\n      <property name=\"environment\" value=\"{}\"/>\n    </properties>\n",
        attr(&r.run_id),
        attr(&r.environment)
    ));
    for c in &r.checks {
        x.push_str(&format!(
            "    <testcase classname=\"trainstack.smoke\" name=\"{}\" time=\"{:.3}\">\n",
            c.check.name(),
            c.duration.as_secs_f64()
        ));
        match &c.outcome {
            Outcome::Passed { .. } => {}
            Outcome::Failed { reason, hint } => x.push_str(&format!(
                "      <failure message=\"{}\" type=\"SmokeCheckFailed\">{}</failure>\n",
                attr(reason),
                text(&format!("{reason}\nlook at: {hint}"))
            )),
            Outcome::Skipped { why } => x.push_str(&format!("      <skipped message=\"{}\"/>\n", attr(why))),
        }
        let mut out = String::new();
        if let Outcome::Passed { summary } = &c.outcome {
            out.push_str(summary);
            out.push('\n');
        }
        for step in &c.steps {
            out.push_str(&format!("- {step}\n"));
        }
        if !c.logs.is_empty() {
            out.push('\n');
            out.push_str(&c.logs);
        }
        if !out.is_empty() {
            x.push_str(&format!("      <system-out>{}</system-out>\n", text(&out)));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Characters XML 1.0 cannot carry at all (most C0 controls, e.g. the escape of terminal
/// colours in logs) become U+FFFD.
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
        c => c,
    }
}

/// Escapes element text.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value; line breaks and tabs are kept as character references, which
/// attribute normalisation would otherwise turn into spaces.
pub fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(xml_char) {
        let reference = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' if attribute => "&quot;",
            '\'' if attribute => "&apos;",
            '\n' if attribute => "&#10;",
            '\r' if attribute => "&#13;",
            '\t' if attribute => "&#9;",
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(reference);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::smoke::{Check, CheckResult};

    #[test]
    fn xml_escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(attr("say \"hi\"\n'x'"), "say &quot;hi&quot;&#10;&apos;x&apos;");
        assert_eq!(text("\u{1b}[31mred\u{0}"), "\u{FFFD}[31mred\u{FFFD}");
        assert_eq!(text("]]>"), "]]&gt;");
    }

    #[test]
    fn junit_counts_and_marks_each_outcome() {
        let r = |check, outcome| CheckResult {
            check,
            outcome,
            duration: Duration::from_millis(1500),
            steps: vec!["a <step>".into()],
            logs: String::new(),
        };
        let report = RunReport::new(
            "s1-0001",
            "dev",
            vec![
                r(Check::Cluster, Outcome::passed("ok")),
                r(Check::Rbac, Outcome::failed("denied \"x\"", "look")),
                r(Check::Gpu, Outcome::skipped("kind")),
            ],
            Vec::new(),
        );
        let x = junit(&report);
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), "{x}");
        assert!(x.contains("<failure message=\"denied &quot;x&quot;\""), "{x}");
        assert!(x.contains("<skipped message=\"kind\"/>"), "{x}");
        assert!(x.contains("- a &lt;step&gt;"), "{x}");
        assert!(x.contains("name=\"cluster\" time=\"1.500\""), "{x}");
    }
}
