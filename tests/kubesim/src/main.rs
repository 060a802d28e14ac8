//! The `kubesim` binary: parses arguments, sets up logging and hands over to the library.

use clap::Parser;
use kubesim::cli::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            hubmigrate_common::init_logging("KUBESIM_LOG", args.log_format == LogFormat::Json);
            kubesim::serve::run(args).await
        }
    };
    if let Err(e) = result {
        eprintln!("kubesim: {e:#}");
        std::process::exit(1);
    }
}
