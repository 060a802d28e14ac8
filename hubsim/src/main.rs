//! The `hubsim` binary: parses arguments, sets up logging and hands over to the library.

use clap::Parser;
use hubsim::cli::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            hubmigrate_common::init_logging("HUBSIM_LOG", args.log_format == LogFormat::Json);
            hubsim::serve::run(*args).await
        }
        Command::Seed(args) => {
            hubmigrate_common::init_logging("HUBSIM_LOG", false);
            hubsim::seed::run(args).await
        }
        // No logging set-up: a hook's stderr goes to the pushing client, line by line, and its
        // exit code is git's verdict.
        Command::GitHook(args) => std::process::exit(hubsim::gitlab::hooks::run(&args)),
    };
    if let Err(e) = result {
        eprintln!("hubsim: {e:#}");
        std::process::exit(1);
    }
}
