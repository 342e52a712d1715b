//! trainstack: render, validate, diff and apply an ML training platform on Kubernetes.

pub mod addons;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod diag;
pub mod engine;
pub mod env;
pub mod error;
pub mod error_chain;
pub mod hpo;
pub mod jobs;
pub mod manifest;
pub mod output;
pub mod progress;
pub mod render;
pub mod service_http;
pub mod settings;
pub mod smoke;
pub mod tally;
pub mod targets;
pub mod trials;
pub mod validate;
pub mod yaml;

use std::process::ExitCode;

pub use error::Error;

/// Runs a parsed command line and maps the outcome to the process exit code.
pub fn main_with(cli: cli::Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(settings::Settings::from(&cli))) {
        Ok(code) => code,
        // The reader went away (`trainstack render | head`): stop quietly, with the status a
        // process killed by SIGPIPE has, instead of reporting it as an error.
        Err(e) if e.is_broken_pipe() => ExitCode::from(141),
        Err(e) => {
            eprintln!("{}", e.report());
            ExitCode::from(1)
        }
    }
}
