//! The integration-test binary: every test drives the real `trainstack` executable or library.

mod harness;
mod support;

mod addons;
mod apiserver_double;
mod applyset_safety;
mod architecture;
mod aws;
mod bad_inputs;
mod cli;
mod connection;
mod engine;
mod environment;
mod fast_path;
mod hpo_batch;
// Trial pods run as child processes of the API double.
#[cfg(unix)]
mod hpo_cli;
// The HPO runner tests start Optuna servers and trial processes and send SIGTERM.
#[cfg(unix)]
mod hpo_runner;
mod hpo_workspace;
#[cfg(unix)]
mod kind;
mod layering;
#[cfg(unix)]
mod lifecycle;
// Servers started from the test virtualenv, killed by process group.
#[cfg(unix)]
mod pyservers;
// `#[ignore = "needs cluster"]`: run by `just test-cluster`.
#[cfg(unix)]
mod real_cluster;
mod render;
mod secrets;
mod server_messages;
// The smoke tests start MLflow and Ray as child processes and send SIGINT.
#[cfg(unix)]
mod smoke;
#[cfg(unix)]
mod smoke_http;
mod tenant_policy;
mod validate;
mod waits;
