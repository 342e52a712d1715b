//! Environment files: loading, layering, Terraform references and validation.

pub mod model;
