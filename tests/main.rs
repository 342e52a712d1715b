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
// Trial pods run as child processes of the API double.
#[cfg(unix)]
mod hpo_cli;
#[cfg(unix)]
mod kind;
mod layering;
#[cfg(unix)]
mod lifecycle;
// `#[ignore = "needs cluster"]`: run by `just test-cluster`.
#[cfg(unix)]
mod real_cluster;
mod render;
mod server_messages;
// The smoke tests start MLflow and Ray as child processes and send SIGINT.
#[cfg(unix)]
mod smoke;
#[cfg(unix)]
mod smoke_http;
mod validate;
