use clap::Parser;

fn main() -> std::process::ExitCode {
    match trainstack::cli::Cli::try_parse() {
        Ok(cli) => trainstack::main_with(cli),
        // clap exits 2 on a usage error, which `diff`, `status` and `infra plan` document as
        // "changes present": a CI job would read `--concurrency 0` as drift. Every error exits 1;
        // only help and version (printed to stdout) exit 0.
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            // A closed stdout (`trainstack --help | head -1`) is not worth reporting.
            let _ = e.print();
            std::process::ExitCode::from(code)
        }
    }
}
