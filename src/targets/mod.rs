//! Cluster targets: making and removing the clusters environments deploy to.
//!
//! Each target has a pure part (what the cluster should look like, derived from the
//! environment) and a thin adapter that drives the target's own tooling.

pub mod kind;
pub mod process;
pub mod terraform;
