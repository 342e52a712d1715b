//! [`Progress`] on stderr: a bar per phase on a terminal, plain lines otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::progress::Progress;

/// The running phase: name, done, total, and its bar on a terminal.
type PhaseState = (String, usize, usize, Option<ProgressBar>);

/// Reports phases and per-object progress on stderr.
pub struct Bars {
    interactive: bool,
    verbose: bool,
    state: Mutex<Option<PhaseState>>,
}

impl Bars {
    /// Bars when stderr is a terminal, lines otherwise; `verbose` adds a line per object.
    pub fn new(verbose: bool) -> Self {
        Bars { interactive: std::io::stderr().is_terminal(), verbose, state: Mutex::new(None) }
    }
}

impl Progress for Bars {
    /// Starts a phase of `total` objects.
    fn phase(&self, name: &str, total: usize) {
        let bar = self.interactive.then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        if !self.interactive {
            eprintln!("{name}: {total} object{}", if total == 1 { "" } else { "s" });
        }
        if let Ok(mut s) = self.state.lock() {
            *s = Some((name.to_string(), 0, total, bar));
        }
    }

    /// One object of the phase is done.
    fn inc(&self, what: &str) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((_, done, _, bar)) = s.as_mut() {
                *done += 1;
                match bar {
                    Some(b) if self.verbose => b.println(format!("  {what}")),
                    None if self.verbose => eprintln!("  {what}"),
                    _ => {}
                }
                if let Some(b) = bar {
                    b.set_message(what.to_string());
                    b.inc(1);
                }
            }
        }
    }

    /// A status line about something that takes long (e.g. a node group still CREATING): the
    /// bar's message on a terminal, a line otherwise.
    fn note(&self, what: &str) {
        if let Ok(s) = self.state.lock() {
            match s.as_ref().and_then(|(_, _, _, bar)| bar.as_ref()) {
                Some(b) => b.set_message(what.to_string()),
                None => eprintln!("  {what}"),
            }
        }
    }

    /// Ends the phase.
    fn finish(&self) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((name, done, total, bar)) = s.take() {
                match bar {
                    Some(b) => b.finish_and_clear(),
                    None => eprintln!("{name}: {done}/{total} done"),
                }
            }
        }
    }
}
