//! Everything trainstack shows while and after it works: the reports of `diff`, `apply` and
//! `delete` (engine and AWS together), the `status` table, the smoke results, and the progress
//! bars the engine and the AWS reconciler report to through [`crate::progress::Progress`].
//! Commands hand finished reports here; nothing below `commands/` prints a report itself.

pub mod hpo;
pub mod progress;
pub mod report;
pub mod smoke;
pub mod status;
