//! The engine: make a cluster match a rendered manifest set (diff, apply, prune, wait).

pub mod applyset;
pub mod cluster;
mod live;
pub mod noop;
pub mod normalize;
pub mod plan;
mod prune;
pub mod ready;
pub mod report;
mod resolve;
pub mod run;
pub mod throttle;
mod wait;
pub mod warnings;
