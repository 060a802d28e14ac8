//! The `migrate-coord` binary: parses arguments, sets up logging, runs the command, and turns the
//! outcome into an exit code (0 verified, 1 failure, 2 bad input, 3 mismatches).

use clap::Parser;
use migrate_coord::cli::{Cli, Command, ExecutorArg, LogFormat};
use migrate_coord::commands;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // On a terminal the plan, the bars and the summary speak; the log joins them with -v.
    let json = cli.log_format == LogFormat::Json;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let level = match cli.verbose {
        0 if terminal && !json => "warn",
        0 | 1 => "info",
        _ => "debug",
    };
    hubmigrate_common::init_logging_at("HUBMIGRATE_LOG", json, level);
    hubmigrate_hub::quota::set_max_wait(cli.max_wait);
    let env = match migrate_coord::env::Env::load(cli.env_file.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}", e.chain());
            std::process::exit(e.exit_code());
        }
    };
    let log_format = match cli.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    let code = match cli.command {
        Command::Run(args) if args.executor == ExecutorArg::Kubernetes => {
            migrate_coord::k8s::submit::submit(&args, &env).await
        }
        Command::Run(args) => commands::run::run(&args, &env, log_format).await.code(),
        Command::Plan(mut args) => {
            args.dry_run = true;
            commands::run::run(&args, &env, log_format).await.code()
        }
        Command::ValidateTokens(args) => commands::tokens::validate(&args, &env).await,
        Command::Batch(args) => commands::batch::batch(&args, &env, log_format).await,
        Command::Verify(args) => commands::verify::verify_command(&args.pair.run_args(), args.content, &env).await,
        Command::Cleanup(args) => commands::verify::cleanup_command(&args, &env).await,
        Command::Controller(args) => match migrate_coord::k8s::controller::run(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {}", e.chain());
                e.exit_code()
            }
        },
        Command::Crd => {
            print!("{}", migrate_coord::k8s::crd::crd_yaml());
            0
        }
        Command::Inventory(args) => commands::inventory::inventory(&args, &env).await,
    };
    std::process::exit(code);
}
