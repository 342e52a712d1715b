//! Rendering a kustomize target with `kubectl kustomize <target>`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::AddonError;

/// Lines of kubectl's stderr kept in an error: kustomize prints the reason last, after context.
const STDERR_TAIL_LINES: usize = 20;

/// Runs `program kustomize target` and returns its standard output.
pub(crate) async fn render(
    program: &Path,
    target: &str,
    timeout: Duration,
    addon: &str,
    from: &str,
) -> Result<String, AddonError> {
    let output = tokio::process::Command::new(program)
        .arg("kustomize")
        .arg(target)
        .stdin(Stdio::null())
        // On timeout the future is dropped; without this the child would keep running (and keep
        // cloning a remote repository) after trainstack gave up on it.
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(timeout, output).await {
        Err(_) => {
            return Err(AddonError::KustomizeTimeout {
                addon: addon.to_string(),
                from: from.to_string(),
                timeout,
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AddonError::KubectlMissing {
                addon: addon.to_string(),
                from: from.to_string(),
                program: program.to_path_buf(),
            })
        }
        Ok(Err(e)) => {
            return Err(AddonError::KubectlSpawn {
                addon: addon.to_string(),
                from: from.to_string(),
                program: program.to_path_buf(),
                source: e,
            })
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(AddonError::KustomizeFailed {
            addon: addon.to_string(),
            from: from.to_string(),
            code: output.status.code(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL_LINES),
        });
    }
    String::from_utf8(output.stdout).map_err(|e| AddonError::Yaml {
        addon: addon.to_string(),
        from: from.to_string(),
        file: format!("output of `kubectl kustomize {target}`"),
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
