//! The integration-test binary: every test drives the real `trainstack` executable or library.

mod harness;

mod bad_inputs;
