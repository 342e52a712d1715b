//! The command line as users and CI meet it: `--help` that shows each command's own flags with
//! examples that never wrap mid-command, and durations parsed strictly.

use clap::CommandFactory;

/// Every (sub)command with the words that name it: `["infra", "output"]`.
fn commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(path: Vec<String>, cmd: &clap::Command, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(p.clone(), sub, out);
            out.push((p, sub.clone()));
        }
    }
    let mut cmd = trainstack::cli::Cli::command();
    cmd.build();
    let mut out = vec![(Vec::new(), cmd.clone())];
    walk(Vec::new(), &cmd, &mut out);
    out
}

/// `trainstack ARGS --help` on an 80-column terminal, without the harness's cache directory
/// (clap shows the value of `TRAINSTACK_CACHE_DIR`).
fn help(args: &[&str]) -> String {
    crate::harness::Test::new()
        .args(args)
        .args(&["--help"])
        .env("COLUMNS", "80")
        .env_remove("TRAINSTACK_CACHE_DIR")
        .status(0)
        .run()
        .stdout
}

#[test]
fn help_examples_fit_80_columns_and_are_never_wrapped_mid_command() {
    for (path, cmd) in commands() {
        let Some(examples) = cmd.get_after_help().map(|h| h.to_string()) else { continue };
        for line in examples.lines() {
            assert!(
                line.chars().count() < 80,
                "trainstack {} --help: {line:?} is wider than 79",
                path.join(" ")
            );
        }
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let shown = help(&words);
        assert!(shown.contains(&examples), "trainstack {path:?} --help rewraps its examples:\n{shown}");
    }
}

#[test]
fn help_of_render_apply_diff_validate() {
    for command in ["render", "apply", "diff", "validate"] {
        insta::assert_snapshot!(format!("help_{command}"), help(&[command]));
    }
}

#[test]
fn help_of_hpo_run_and_hpo_status() {
    for command in ["run", "status"] {
        insta::assert_snapshot!(format!("help_hpo_{command}"), help(&["hpo", command]));
    }
}

/// The long flags a command takes.
fn flags(path: &[&str]) -> Vec<String> {
    let (_, cmd) = commands().into_iter().find(|(p, _)| p == path).expect("a command");
    cmd.get_arguments().filter_map(|a| a.get_long()).map(String::from).collect()
}

#[test]
fn each_command_takes_only_the_flags_it_uses() {
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        // (command, flags it takes, flags it must not show)
        (
            &["render"],
            &["env", "templates", "terraform-outputs", "output", "out"],
            &["kubeconfig", "context", "verbose", "timeout"],
        ),
        (&["validate"], &["env", "templates", "output", "crds"], &["kubeconfig", "context", "verbose"]),
        (&["diff"], &["kubeconfig", "context", "output", "verbose", "concurrency"], &["timeout"]),
        (&["status"], &["kubeconfig", "context", "output", "verbose"], &["timeout"]),
        (&["apply"], &["kubeconfig", "context", "timeout", "node-group-timeout"], &[]),
        (&["delete"], &["kubeconfig", "context", "timeout"], &[]),
        (&["smoke"], &["kubeconfig", "context", "output", "verbose", "timeout"], &["concurrency"]),
        (&["up"], &["kubeconfig", "context", "verbose", "templates", "smoke-timeout"], &["output"]),
        (&["down"], &["kubeconfig", "context", "verbose"], &["output"]),
        (
            &["cluster", "create"],
            &["env", "kubeconfig", "terraform-outputs", "timeout"],
            &["context", "templates", "output", "verbose"],
        ),
        (&["cluster", "config"], &["env", "output"], &["kubeconfig", "context", "templates", "verbose"]),
        (
            &["infra", "plan"],
            &["env"],
            &["output", "templates", "terraform-outputs", "kubeconfig", "verbose"],
        ),
        (
            &["infra", "output"],
            &["env", "output", "write"],
            &["templates", "terraform-outputs", "kubeconfig"],
        ),
        (&["completions"], &[], &["env", "output", "kubeconfig"]),
    ];
    for (path, takes, not) in cases {
        let have = flags(path);
        for f in *takes {
            assert!(have.iter().any(|h| h == f), "trainstack {path:?} lost --{f}: {have:?}");
        }
        for f in *not {
            assert!(!have.iter().any(|h| h == f), "trainstack {path:?} shows --{f}, which it ignores");
        }
    }
}

#[test]
fn durations_take_whole_units_and_combinations() {
    use std::time::Duration;
    use trainstack::cli::parse_duration;
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2h 15m"), Ok(Duration::from_secs(8100)));
    assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(365 * 86400)));
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
    assert!(parse_duration("5").unwrap_err().contains("add a unit, e.g. 5s or 5m"));
    assert!(parse_duration("0s").is_err() && parse_duration("0h0m").is_err());
    assert!(parse_duration("366d").is_err() && parse_duration("9999999999999999999h").is_err());
}
