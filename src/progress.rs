//! What a long run tells its user while it works, as a trait: the engine and the AWS reconciler
//! report through it and never draw anything themselves (the terminal bars and CI lines are
//! `output/progress.rs`).

/// Progress of a run made of phases, each a known number of objects.
pub trait Progress: Send + Sync {
    /// Starts a phase of `total` objects.
    fn phase(&self, name: &str, total: usize);
    /// One object of the phase is done.
    fn inc(&self, what: &str);
    /// A status line about something that takes long (a node group still CREATING).
    fn note(&self, what: &str);
    /// Ends the phase.
    fn finish(&self);
}

/// Progress nobody watches (tests, library callers that print their own).
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str, _: usize) {}
    fn inc(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}
