//! The one position-checker for the files a user writes, environment layers and job specs
//! alike: every problem becomes a diagnostic at the file, line and column that set the field.

use crate::diag::{Diagnostic, Diagnostics};
use crate::env::model::{RequestLimit, Resources};
use crate::env::sources::{within, Sources};
use crate::env::{names, quantity};
use crate::yaml;

/// Collects the problems found in one set of sources (an environment's layers or one job file).
pub(crate) struct Checker<'a> {
    /// Where each field was written; also where relative paths in a field resolve.
    pub sources: &'a Sources,
    /// Fields already reported as mistyped and left to their defaults: a check of the default
    /// standing in for them would only repeat that problem.
    dropped: &'a [String],
    diags: Diagnostics,
}

impl<'a> Checker<'a> {
    /// A checker that reports nothing inside the `dropped` fields.
    pub fn new(sources: &'a Sources, dropped: &'a [String]) -> Self {
        Checker { sources, dropped, diags: Diagnostics::default() }
    }

    /// The problems found.
    pub fn finish(self) -> Diagnostics {
        self.diags
    }

    /// Reports `msg` at the value of `field`.
    pub fn err(&mut self, field: &str, msg: impl Into<String>) {
        if !self.dropped.iter().any(|d| within(field, d)) {
            self.diags.push(self.sources.error(field, msg));
        }
    }

    /// A DNS-1123 label.
    pub fn label(&mut self, field: &str, name: &str) {
        if let Err(m) = names::check_label(name) {
            self.err(field, m);
        }
    }

    /// A DNS-1123 subdomain.
    pub fn subdomain(&mut self, field: &str, name: &str) {
        if let Err(m) = names::check_subdomain(name) {
            self.err(field, m);
        }
    }

    /// Parses a quantity, reporting it when invalid.
    pub fn quantity(&mut self, field: &str, q: &str) -> Option<f64> {
        quantity::parse(q).map_err(|m| self.err(field, m)).ok()
    }

    /// Both quantities valid, and the request not above the limit.
    pub fn request_limit(&mut self, field: &str, rl: &RequestLimit) {
        let req = self.quantity(&format!("{field}.request"), rl.request.as_str());
        let lim = self.quantity(&format!("{field}.limit"), rl.limit.as_str());
        if let (Some(r), Some(l)) = (req, lim) {
            if r > l {
                self.err(
                    &format!("{field}.request"),
                    format!(
                        "request {} is more than limit {}; the request must not exceed the limit",
                        rl.request, rl.limit
                    ),
                );
            }
        }
    }

    /// CPU and memory request/limit pairs.
    pub fn resources(&mut self, field: &str, r: &Resources) {
        self.request_limit(&format!("{field}.cpu"), &r.cpu);
        self.request_limit(&format!("{field}.memory"), &r.memory);
    }

    /// `value` not above a documented maximum.
    pub fn at_most(&mut self, field: &str, value: u32, max: u32) {
        if value > max {
            self.err(field, format!("{value} is above the maximum of {max}"));
        }
    }

    /// min ≤ max, and max ≥ 1.
    pub fn range(&mut self, min_field: &str, min: u32, max_field: &str, max: u32) {
        if max < 1 {
            self.err(max_field, format!("{max} is below the minimum of 1"));
        } else if min > max {
            self.err(min_field, format!("{min} is more than the maximum {max} ({max_field})"));
        }
    }

    /// An http:// or https:// URL with a host: endpoints and callbacks are dialled as given.
    pub fn http_url(&mut self, field: &str, value: &str, example: &str) {
        if let Err(why) = http_url(value) {
            self.err(field, format!("{value:?} {why}; write it like {example}"));
        }
    }
}

/// Why `value` is not an http(s) URL with a host.
fn http_url(value: &str) -> Result<(), &'static str> {
    match url::Url::parse(value) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Err("is not a URL with an http:// or https:// scheme")
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err("has no host"),
        Ok(_) => Ok(()),
        Err(_) => Err("is not a URL with an http:// or https:// scheme"),
    }
}

/// A type error as a diagnostic where the field was written: at the key for an unknown key, at
/// the value otherwise.
pub(crate) fn type_diagnostic(e: &yaml::TypeError, sources: &Sources) -> Diagnostic {
    let message = explain_serde(&e.message);
    if e.is_unknown_key() {
        sources.key_error(&e.path, message)
    } else {
        sources.error(&e.path, message)
    }
}

/// serde's messages name Rust types (`u32`, `a string`); say it in the user's terms.
fn explain_serde(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid value: integer `") {
        if let Some((number, ty)) = rest.split_once("`, expected ") {
            let max = match ty {
                "u32" => Some(u64::from(u32::MAX)),
                "u64" => Some(u64::MAX),
                _ => None,
            };
            if let Some(max) = max {
                return if number.starts_with('-') {
                    format!("{number} is negative; expected a whole number from 0 to {max}")
                } else {
                    format!("{number} is too large; expected a whole number from 0 to {max}")
                };
            }
        }
    }
    message
        .replace("expected u32", "expected a whole number ≥ 0")
        .replace("expected u64", "expected a whole number ≥ 0")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace("expected struct ", "expected a mapping: ")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a mapping")
        // A list or mapping where one choice of an enum belongs (`mode: [apply, none]`).
        .replace("expected a Value::Tagged enum", "expected one of the choices as a single string")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::env::model::Quantity;

    fn job_file(text: &str) -> Sources {
        let (_, index) = yaml::parse_located(text).unwrap();
        Sources::single(PathBuf::from("jobs/a.yaml"), index)
    }

    fn shown(d: Diagnostics) -> Vec<String> {
        d.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn request_above_limit_is_reported_at_the_request() {
        let sources = job_file("resources:\n  cpu:\n    request: 4\n    limit: 2\n");
        let mut c = Checker::new(&sources, &[]);
        let rl = RequestLimit { request: Quantity::from("4"), limit: Quantity::from("2") };
        c.request_limit("resources.cpu", &rl);
        assert_eq!(
            shown(c.finish()),
            ["jobs/a.yaml:3:14: resources.cpu.request: request 4 is more than limit 2; the request must not exceed the limit"]
        );
    }

    #[test]
    fn nothing_is_reported_inside_a_dropped_field() {
        let sources = job_file("resources:\n  cpu: many\nnum_nodes: 99\n");
        let dropped = ["resources.cpu".to_string()];
        let mut c = Checker::new(&sources, &dropped);
        c.quantity("resources.cpu.request", "x");
        c.at_most("num_nodes", 99, 64);
        assert_eq!(shown(c.finish()), ["jobs/a.yaml:3:12: num_nodes: 99 is above the maximum of 64"]);
    }

    #[test]
    fn a_job_field_written_nowhere_is_named_without_a_line() {
        let sources = job_file("name: a\n");
        let mut c = Checker::new(&sources, &[]);
        c.err("command", "a TrainJob needs a command");
        assert_eq!(shown(c.finish()), ["jobs/a.yaml: command: a TrainJob needs a command"]);
    }
}
