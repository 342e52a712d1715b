//! The engine: make a cluster match a rendered manifest set (diff, apply, prune, wait).

pub mod applyset;
pub mod cluster;
pub mod normalize;
pub mod plan;
pub mod ready;
pub mod run;
pub mod throttle;
pub mod warnings;
