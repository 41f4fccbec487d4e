//! `contract-runtime`: a thin CLI over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use contract_runtime::server::{ServeConfig, serve};

#[derive(Parser)]
#[command(
    name = "contract-runtime",
    version,
    about = "Run the stack compiled by contractc"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every contract's ingest routes, the dev identity provider, and write Iceberg tables
    #[command(
        long_about = "Start the local stack: one HTTP server with each contract's ingest \
routes (single and batch), the development identity provider (/prod/login-as-guest, \
/.well-known/jwks.json), /healthz and /metrics. Events are validated by the generated validators, \
logged to a write-ahead log (fsynced before the answer), and committed to Iceberg tables in \
DATA_DIR/warehouse with a SQLite catalog at DATA_DIR/catalog.db (catalog name `contractc`)."
    )]
    Serve {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the write-ahead log, keys, catalog and warehouse live
        #[arg(long, default_value = ".data")]
        data_dir: PathBuf,
        /// Commit buffered events at least this often (milliseconds)
        #[arg(long, default_value_t = 2000)]
        commit_interval_ms: u64,
        /// Commit early once this many events are buffered for one contract
        #[arg(long, default_value_t = 100_000)]
        commit_rows: usize,
        /// Public base URL of this server, used as the dev issuer (default http://LISTEN)
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Synthetic telemetry from the contracts (not implemented yet)
    Synth,
    /// Deploy the generated stack to AWS (not implemented yet)
    Deploy,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,iceberg=warn,sqlx=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            listen,
            data_dir,
            commit_interval_ms,
            commit_rows,
            public_url,
        } => {
            let config = ServeConfig {
                listen,
                data_dir,
                commit_interval: Duration::from_millis(commit_interval_ms),
                commit_rows,
                public_url,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: cannot start the async runtime: {error}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(async {
                // Install the handlers before anything else, so a signal during startup still
                // ends in a graceful shutdown (flush) rather than the default kill.
                let shutdown = shutdown_signal()?;
                serve(config, shutdown).await.map_err(|e| e.to_string())
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Synth => not_yet("synth"),
        Command::Deploy => not_yet("deploy"),
    }
}

fn not_yet(name: &str) -> ExitCode {
    eprintln!("error: `contract-runtime {name}` is not implemented yet");
    ExitCode::from(2)
}

/// Resolves on Ctrl-C or SIGTERM; the handlers are registered when this is called.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
