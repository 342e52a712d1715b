//! Building a kustomize target with `kubectl kustomize <target>`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Lines of kubectl's stderr kept in an error: kustomize prints the reason last, after context.
const STDERR_TAIL_LINES: usize = 20;

/// Why `kubectl kustomize` gave no manifests. The add-on it was building is named by the
/// [`AddonError`](super::AddonError) that carries this.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `kubectl` (or `$TRAINSTACK_KUBECTL`) is not installed.
    #[error(
        "`{}` not found: kubectl is needed to render kustomize targets; install it or set TRAINSTACK_KUBECTL",
        .program.display()
    )]
    KubectlMissing {
        /// The program that was looked for.
        program: PathBuf,
    },

    /// `kubectl` exists but could not be started (e.g. not executable).
    #[error("cannot run `{}`: {source}", .program.display())]
    KubectlSpawn {
        /// The program that failed to start.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `kubectl kustomize` exited unsuccessfully.
    #[error("`kubectl kustomize` failed ({}):\n{stderr_tail}", exit_text(*.code))]
    Failed {
        /// Exit code, `None` when killed by a signal.
        code: Option<i32>,
        /// The last lines of its standard error.
        stderr_tail: String,
    },

    /// `kubectl kustomize` did not finish in time (remote targets clone repositories).
    #[error("`kubectl kustomize` did not finish within {timeout:?}")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The output is not text, so it cannot be a manifest.
    #[error("`kubectl kustomize` printed something that is not UTF-8 text: {source}")]
    NotText {
        /// Where the first invalid byte is.
        #[source]
        source: std::string::FromUtf8Error,
    },
}

/// Runs `program kustomize target` and returns its standard output.
pub(crate) async fn build(program: &Path, target: &str, timeout: Duration) -> Result<String, BuildError> {
    let output = tokio::process::Command::new(program)
        .arg("kustomize")
        .arg(target)
        .stdin(Stdio::null())
        // On timeout the future is dropped; without this the child would keep running (and keep
        // cloning a remote repository) after trainstack gave up on it.
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(timeout, output).await {
        Err(_) => return Err(BuildError::Timeout { timeout }),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BuildError::KubectlMissing { program: program.to_path_buf() })
        }
        Ok(Err(e)) => return Err(BuildError::KubectlSpawn { program: program.to_path_buf(), source: e }),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(BuildError::Failed {
            code: output.status.code(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL_LINES),
        });
    }
    String::from_utf8(output.stdout).map_err(|source| BuildError::NotText { source })
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail("only\n", 5), "only");
        assert_eq!(tail("", 5), "");
    }
}
