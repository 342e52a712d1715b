//! The integration-test binary: every test drives the real `trainstack` executable or library.

mod harness;

mod addons;
mod bad_inputs;
#[cfg(unix)]
mod kind;
mod render;
mod validate;
