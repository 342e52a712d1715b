//! Running the CLIs trainstack drives (`kind`, `docker`, `terraform`): finding them the way a
//! shell would, passing their output through as it arrives, and failing with the command line,
//! exit status and the end of stderr.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

/// Lines of a failed command's stderr kept for the error message.
const STDERR_TAIL: usize = 15;

/// Errors finding or running a program.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program is not on PATH (or the given path is not an executable).
    #[error("{program} is not installed: see {hint} ({looked_for} was not found{on_path})")]
    NotInstalled {
        /// `kind`, `docker` or `terraform`.
        program: &'static str,
        /// The name or path looked for.
        looked_for: String,
        /// " on PATH" when a bare name was searched.
        on_path: &'static str,
        /// Installation instructions.
        hint: &'static str,
    },
    /// The program could not be started, or its output not read.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status}); the end of its output:\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// `exit code N` or `killed by a signal`.
        status: String,
        /// The end of its stderr, indented.
        stderr: String,
    },
}

/// A program: how the user named it (for messages) and where it is.
#[derive(Debug, Clone)]
pub struct Program {
    shown: String,
    path: PathBuf,
}

/// Where a stream of the child's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Kept and returned (stdout) or only kept for the error message (stderr).
    Capture,
    /// Written to our stdout line by line as it arrives, prefixed by the indent.
    Stdout(&'static str),
    /// Written to our stderr line by line as it arrives, prefixed by the indent.
    Stderr(&'static str),
}

/// How to run a program.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The child's stdout.
    pub stdout: Stream,
    /// The child's stderr (its end is always kept for the error message).
    pub stderr: Stream,
    /// Exit codes that are not a failure (`terraform plan -detailed-exitcode` exits 2 on changes).
    pub success: &'static [i32],
    /// Extra environment variables of the child.
    pub envs: Vec<(&'static str, String)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { stdout: Stream::Capture, stderr: Stream::Capture, success: &[0], envs: Vec::new() }
    }
}

/// A program that exited with one of the accepted codes.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its exit code.
    pub code: i32,
    /// Its stdout when captured, else empty.
    pub stdout: String,
}

impl Program {
    /// Resolves a program name on PATH (or checks a path), the way a shell would. `program` and
    /// `hint` name the tool and where to install it from, for the error.
    pub fn locate(name: &OsStr, program: &'static str, hint: &'static str) -> Result<Program, ProcessError> {
        let shown = name.to_string_lossy().into_owned();
        let not_installed =
            |on_path| ProcessError::NotInstalled { program, looked_for: shown.clone(), on_path, hint };
        let given = Path::new(name);
        if given.components().count() > 1 {
            return if is_executable(given) {
                Ok(Program { shown: shown.clone(), path: given.to_path_buf() })
            } else {
                Err(not_installed(""))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(given))
            .find(|p| is_executable(p))
            .map(|path| Program { shown: shown.clone(), path })
            .ok_or_else(|| not_installed(" on PATH"))
    }

    /// The command line as the user could type it.
    pub fn command_line<S: AsRef<str>>(&self, args: &[S]) -> String {
        std::iter::once(self.shown.as_str())
            .chain(args.iter().map(AsRef::as_ref))
            .map(shell_word)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the program to completion, with stdin closed. On an exit code outside
    /// `opts.success` the error carries the command line, the status and the end of stderr.
    pub async fn run<S: AsRef<OsStr> + AsRef<str>>(
        &self,
        args: &[S],
        opts: &RunOptions,
    ) -> Result<Finished, ProcessError> {
        let command = self.command_line(args);
        let mut child = Command::new(&self.path)
            .args(args.iter().map(|a| AsRef::<OsStr>::as_ref(a)))
            .envs(opts.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProcessError::Spawn { command: command.clone(), source })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read_stdout = async {
            match stdout {
                Some(out) => pump(out, opts.stdout, None).await.map(|(all, _)| all),
                None => Ok(String::new()),
            }
        };
        let read_stderr = async {
            match stderr {
                Some(err) => pump(err, opts.stderr, Some(STDERR_TAIL)).await.map(|(_, tail)| tail),
                None => Ok(VecDeque::new()),
            }
        };
        let io = |source| ProcessError::Spawn { command: command.clone(), source };
        let (out, tail) = tokio::try_join!(read_stdout, read_stderr).map_err(io)?;
        let status = child.wait().await.map_err(io)?;
        if let Some(code) = status.code().filter(|c| opts.success.contains(c)) {
            return Ok(Finished { code, stdout: out });
        }
        let stderr = if tail.iter().all(|l| l.trim().is_empty()) {
            "    (no output on stderr)".to_string()
        } else {
            tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        };
        let status = match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".into(),
        };
        Err(ProcessError::Failed { command, status, stderr })
    }
}

/// Reads a stream line by line: passes each line on as `stream` says, returns the whole text
/// when captured and the last `tail` lines.
async fn pump(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    tail: Option<usize>,
) -> std::io::Result<(String, VecDeque<String>)> {
    let mut all = String::new();
    let mut last = VecDeque::new();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).await? > 0 {
        let text = String::from_utf8_lossy(&line).into_owned();
        line.clear();
        let trimmed = text.trim_end();
        match stream {
            Stream::Capture => all.push_str(&text),
            // A closed stdout (`| head`) must not fail the command the user is running.
            Stream::Stdout(indent) => {
                let _ = writeln!(std::io::stdout().lock(), "{indent}{trimmed}");
            }
            Stream::Stderr(indent) => eprintln!("{indent}{trimmed}"),
        }
        if let Some(n) = tail {
            if last.len() == n {
                last.pop_front();
            }
            last.push_back(trimmed.to_string());
        }
    }
    Ok((all, last))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

/// A program chosen by an environment variable (a wrapper, a pinned release, or a fake in
/// tests), else the default name looked up on PATH.
pub fn program_from_env(var: &str, default: &str) -> OsString {
    std::env::var_os(var).unwrap_or_else(|| default.into())
}

/// An argument as it would be typed into a shell, for messages the user may copy.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("kindest/node:v1.33.1"), "kindest/node:v1.33.1");
        assert_eq!(shell_word("my image"), "'my image'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn a_missing_program_names_what_to_install() {
        let err =
            Program::locate(OsStr::new("/nonexistent/kind"), "kind", "https://kind.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            "kind is not installed: see https://kind.example (/nonexistent/kind was not found)"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn accepted_exit_codes_are_not_failures_and_others_show_the_stderr_tail() {
        let sh = Program::locate(OsStr::new("sh"), "sh", "-").unwrap();
        let opts = RunOptions { success: &[0, 2], ..RunOptions::default() };
        let done = sh.run(&["-c", "echo out; exit 2"], &opts).await.unwrap();
        assert_eq!((done.code, done.stdout.as_str()), (2, "out\n"));
        let err = sh.run(&["-c", "echo bad >&2; exit 3"], &opts).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo bad >&2; exit 3'` failed (exit code 3); the end of its output:\n    bad"
        );
    }
}
