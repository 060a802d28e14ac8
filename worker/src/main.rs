//! The `migrate-worker` binary: started by migrate-coord (a local process or a Kubernetes Job
//! pod), configured through its environment; exits 0 when its chunk is done.

fn init_logging(cfg: &migrate_worker::Config) -> tracing::span::EnteredSpan {
    hubmigrate_common::init_logging(
        "HUBMIGRATE_LOG",
        std::env::var("HUBMIGRATE_LOG_FORMAT").as_deref() == Ok("json"),
    );
    tracing::info_span!("worker", migration = %cfg.migration_id, chunk = cfg.chunk_id, attempt = cfg.attempt).entered()
}

#[tokio::main]
async fn main() {
    let cfg = match migrate_worker::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("migrate-worker: {e:#}");
            std::process::exit(2);
        }
    };
    let span = init_logging(&cfg);
    let result = migrate_worker::run(cfg).await;
    drop(span);
    if let Err(e) = result {
        tracing::error!("chunk failed: {e:#}");
        std::process::exit(1);
    }
}
