//! Test support shared by the integration tests.

// Each test binary uses a different slice of the support code.
#[allow(dead_code)]
pub mod apiserver;
