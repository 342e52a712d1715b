//! Job spec files: TrainJobs and resumable custom trainer Jobs.

pub mod spec;
