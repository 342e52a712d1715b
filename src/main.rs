use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = trainstack::cli::Cli::parse();
    trainstack::main_with(cli)
}
