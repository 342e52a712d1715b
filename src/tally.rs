//! Counting a report's changes, once for every report: the engine's and the AWS reconciler's
//! summaries are this count read out under their own names.

/// A change a report counts.
pub trait Counted {
    /// What was (or would be) done; failed changes are counted apart from it.
    type Action: PartialEq + Copy;
    /// The change's action.
    fn action(&self) -> Self::Action;
    /// Whether the change failed.
    fn failed(&self) -> bool;
    /// Warnings the change drew.
    fn warnings(&self) -> usize {
        0
    }
}

/// Changes counted: failed ones apart, every other one under its action.
#[derive(Debug)]
pub struct Tally<A> {
    succeeded: Vec<A>,
    /// Changes that failed, whatever their action.
    pub failed: usize,
    /// Warnings over all changes, failed or not.
    pub warnings: usize,
}

impl<A: PartialEq + Copy> Tally<A> {
    /// Counts `changes`.
    pub fn of<C: Counted<Action = A>>(changes: &[C]) -> Self {
        let mut t = Tally { succeeded: Vec::with_capacity(changes.len()), failed: 0, warnings: 0 };
        for c in changes {
            t.warnings += c.warnings();
            if c.failed() {
                t.failed += 1;
            } else {
                t.succeeded.push(c.action());
            }
        }
        t
    }

    /// Changes that did not fail and have action `a`.
    pub fn count(&self, a: A) -> usize {
        self.succeeded.iter().filter(|s| **s == a).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Change(char, bool, usize);

    impl Counted for Change {
        type Action = char;
        fn action(&self) -> char {
            self.0
        }
        fn failed(&self) -> bool {
            self.1
        }
        fn warnings(&self) -> usize {
            self.2
        }
    }

    #[test]
    fn a_failed_change_counts_as_failed_only_and_its_warnings_still_count() {
        let t = Tally::of(&[Change('+', false, 1), Change('+', true, 2), Change('~', false, 0)]);
        assert_eq!((t.count('+'), t.count('~'), t.count('-')), (1, 1, 0));
        assert_eq!((t.failed, t.warnings), (1, 3));
    }
}
