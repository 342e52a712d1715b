//! trainstack: render, validate, diff and apply an ML training platform on Kubernetes.

pub mod addons;
pub mod env;
pub mod jobs;
pub mod yaml;
