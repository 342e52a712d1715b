//! The engine: make a cluster match a rendered manifest set (diff, apply, prune, wait).

pub mod normalize;
pub mod ready;
