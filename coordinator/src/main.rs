//! The `migrate-coord` binary: parses arguments, sets up logging, runs the command, and turns the
//! outcome into an exit code (0 verified, 1 failure, 2 bad input, 3 mismatches).

use clap::Parser;
use migrate_coord::cli::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    hubmigrate_common::init_logging("HUBMIGRATE_LOG", cli.log_format == LogFormat::Json);
    let env = match migrate_coord::envfile::Env::load(cli.env_file.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let log_format = match cli.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    let code = match cli.command {
        Command::Run(args) if args.executor == migrate_coord::cli::ExecutorArg::Kubernetes => {
            migrate_coord::k8s::submit::submit(&args, &env).await
        }
        Command::Run(args) => {
            let dry = args.dry_run;
            migrate_coord::run::run(args, env, dry, log_format).await.code
        }
        Command::Plan(args) => migrate_coord::run::run(args, env, true, log_format).await.code,
        Command::ValidateTokens(args) => migrate_coord::tokens::validate(&args, &env).await,
        Command::Batch(args) => migrate_coord::batch::batch(&args, &env, log_format).await,
        Command::Verify(args) => migrate_coord::verify::verify_command(&args.run_args(), &env).await,
        Command::Cleanup(args) => migrate_coord::verify::cleanup_command(&args, &env).await,
        Command::Controller(args) => match migrate_coord::k8s::controller::run(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        },
        Command::Crd => {
            print!("{}", migrate_coord::crd::crd_yaml());
            0
        }
        Command::Inventory(args) => migrate_coord::inventory::inventory(&args, &env).await,
    };
    std::process::exit(code);
}
