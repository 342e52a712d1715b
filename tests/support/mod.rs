//! Test support shared by the integration tests.

// The benchmarks include this module too and use only part of it.
#[allow(dead_code)]
pub mod apiserver;
