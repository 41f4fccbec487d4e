//! `contract-runtime`: runs what `contractc build` generates.
//!
//! The subcommands arrive with their issues (serve, synth, deploy); until then each says so
//! plainly instead of pretending to work.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Local ingest server with validation and Iceberg tables (not implemented yet)
    Serve,
    /// Synthetic telemetry from the contracts (not implemented yet)
    Synth,
    /// Deploy the generated stack to AWS (not implemented yet)
    Deploy,
}

fn main() -> ExitCode {
    let name = match Cli::parse().command {
        Command::Serve => "serve",
        Command::Synth => "synth",
        Command::Deploy => "deploy",
    };
    eprintln!("error: `contract-runtime {name}` is not implemented yet");
    ExitCode::from(2)
}
