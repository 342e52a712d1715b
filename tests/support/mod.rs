//! Test support shared by the integration tests.

// The benchmarks include this module too and use only part of it.
#[allow(dead_code)]
pub mod apiserver;
#[allow(dead_code)]
pub mod iam;
#[allow(dead_code)]
pub mod moto;
#[allow(dead_code)]
pub mod ports;
#[cfg(unix)]
#[allow(dead_code)]
pub mod pyservers;
#[allow(dead_code)]
pub mod pytools;
