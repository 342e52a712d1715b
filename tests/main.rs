//! The integration-test binary: every test drives the real `trainstack` executable or library.

mod harness;
mod support;

mod addons;
mod apiserver_double;
mod bad_inputs;
mod engine;
#[cfg(unix)]
mod kind;
mod render;
mod validate;
