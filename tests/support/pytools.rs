//! Where the Python tools the tests start live: the virtualenv `tests/run.sh` builds from
//! `tests/requirements.txt` (`target/pyenv`, or `$TRAINSTACK_PYENV`).

use std::path::PathBuf;

/// The virtualenv holding moto, MLflow and Ray.
pub fn pyenv() -> PathBuf {
    match std::env::var_os("TRAINSTACK_PYENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv"),
    }
}

/// A console script of the virtualenv (`moto_server`, `mlflow`, `ray`, `python`). Panics with
/// what to run when it is missing, so a test never silently skips.
pub fn tool(name: &str) -> PathBuf {
    let path = pyenv().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash tests/run.sh` (or `just pyenv`) to install the test tools from tests/requirements.txt",
        path.display()
    );
    path
}
