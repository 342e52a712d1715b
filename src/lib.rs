//! trainstack: render, validate, diff and apply an ML training platform on Kubernetes.

pub mod env;
pub mod jobs;
pub mod validate;
pub mod yaml;
