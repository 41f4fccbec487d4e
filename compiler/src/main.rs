//! The `contractc` command line: a thin layer over the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use contractc::diagnostic::Code;
use contractc::driver;

#[derive(Parser)]
#[command(
    name = "contractc",
    version,
    about = "Compile YAML data contracts for game telemetry into validators, Iceberg tables, Glue ETL and API models",
    long_about = "contractc reads data contracts (contracts/*.yaml): event schemas with stable field ids, \
quality rules, table layout and ingest settings. `check` reports every problem with its position; \
exit status 0 means clean, 1 errors, 2 usage errors."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check contracts and report every problem (exit 1 on errors)
    #[command(
        long_about = "Parse and check contract files, reporting every error and warning with \
its code, file:line:col and the offending YAML line. Directories are searched for *.yaml/*.yml.\n\n\
Exit status: 0 when there are no errors (warnings allowed), 1 when there are, 2 on usage errors."
    )]
    Check {
        /// Contract files or directories
        #[arg(default_value = "contracts")]
        paths: Vec<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat warnings as errors
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Compile contracts into generated/ (validators, tables, ETL, API models, docs)
    #[command(
        long_about = "Check the contracts, then generate every artefact into the output \
directory: Rust validators (a crate), Iceberg table definitions, the Glue streaming ETL script, \
API Gateway models, Athena DDL, Glue Data Quality rulesets and Markdown docs. Only files whose \
bytes change are written; generated files no longer produced are removed.\n\n\
With --check nothing is written: exit 1 and list the stale files if generated/ is not what the \
contracts produce (for CI and pull requests)."
    )]
    Build {
        /// Contract files or directories
        #[arg(default_value = "contracts")]
        paths: Vec<PathBuf>,
        /// Output directory
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        /// Change nothing; exit 1 if the output directory is stale
        #[arg(long)]
        check: bool,
    },
    /// Write each contract's labelled example corpus as NDJSON (for tests and benchmarks)
    #[command(
        long_about = "Write, for each contract, `<name>.ndjson` into the output directory: \
one JSON object per line with `name`, `body` (the raw request body), `codes` (the violation codes \
it must produce; empty when valid) and `schema_expressible`. Times are judged as if received at \
2024-02-22T12:00:00Z."
    )]
    Corpus {
        /// Contract files or directories
        #[arg(default_value = "contracts")]
        paths: Vec<PathBuf>,
        /// Output directory
        #[arg(long)]
        out: PathBuf,
    },
    /// Explain a diagnostic code, or list them all
    Explain {
        /// A code such as C0012; omit to list every code
        code: Option<String>,
    },
    /// Print the contract language's JSON Schema (for editors and the YAML language server)
    Schema,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
        } => check(&paths, format, deny_warnings),
        Command::Build { paths, out, check } => build(&paths, &out, check),
        Command::Corpus { paths, out } => corpus(&paths, &out),
        Command::Explain { code } => explain(code.as_deref()),
        Command::Schema => {
            print!("{}", contractc::syntax::schema::CONTRACT_SCHEMA);
            ExitCode::SUCCESS
        }
    }
}

fn check(paths: &[PathBuf], format: Format, deny_warnings: bool) -> ExitCode {
    // A path that does not exist is a usage error (2), not a contract error (1).
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        eprintln!("error: {}: no such file or directory", missing.display());
        return ExitCode::from(2);
    }
    let outcome = driver::check_paths(paths);
    match format {
        Format::Text => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            for d in &outcome.diagnostics {
                eprintln!("{}\n", d.render(color));
            }
            let (errors, warnings) = (outcome.errors(), outcome.warnings());
            if errors == 0 && warnings == 0 {
                eprintln!("checked {} contract file(s): no problems", outcome.files);
            } else {
                eprintln!(
                    "checked {} contract file(s): {errors} error(s), {warnings} warning(s)",
                    outcome.files
                );
            }
        }
        Format::Json => {
            let json = serde_json::json!({
                "files": outcome.files,
                "errors": outcome.errors(),
                "warnings": outcome.warnings(),
                "diagnostics": outcome.diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
            });
            println!("{json:#}");
        }
    }
    let failed = outcome.errors() > 0 || (deny_warnings && outcome.warnings() > 0);
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn build(paths: &[PathBuf], out: &std::path::Path, check_only: bool) -> ExitCode {
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        eprintln!("error: {}: no such file or directory", missing.display());
        return ExitCode::from(2);
    }
    let started = std::time::Instant::now();
    let outcome = driver::check_paths(paths);
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in &outcome.diagnostics {
        eprintln!("{}\n", d.render(color));
    }
    let Some(contracts) = outcome.contracts else {
        eprintln!(
            "build failed: {} error(s) in the contracts",
            outcome.errors()
        );
        return ExitCode::from(1);
    };
    let files = contractc::backend::emit_all(&contracts, &contractc::backend::Options::default());
    let report = match driver::write_generated(out, &files, check_only) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: cannot write {}: {error}", out.display());
            return ExitCode::from(1);
        }
    };
    let elapsed = started.elapsed();
    if check_only {
        if report.is_fresh() {
            eprintln!(
                "{} is up to date ({} files)",
                out.display(),
                report.unchanged
            );
            return ExitCode::SUCCESS;
        }
        eprintln!("{} is stale: run `contractc build`", out.display());
        for path in &report.written {
            eprintln!("  stale:    {}", out.join(path).display());
        }
        for path in &report.removed {
            eprintln!("  obsolete: {}", out.join(path).display());
        }
        return ExitCode::from(1);
    }
    for path in &report.written {
        eprintln!("  wrote   {}", out.join(path).display());
    }
    for path in &report.removed {
        eprintln!("  removed {}", out.join(path).display());
    }
    eprintln!(
        "built {} contract(s) into {}: {} written, {} removed, {} unchanged ({:.0?})",
        contracts.contracts.len(),
        out.display(),
        report.written.len(),
        report.removed.len(),
        report.unchanged,
        elapsed
    );
    ExitCode::SUCCESS
}

fn corpus(paths: &[PathBuf], out: &std::path::Path) -> ExitCode {
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        eprintln!("error: {}: no such file or directory", missing.display());
        return ExitCode::from(2);
    }
    let outcome = driver::check_paths(paths);
    for d in &outcome.diagnostics {
        eprintln!("{}\n", d.render(false));
    }
    let Some(contracts) = outcome.contracts else {
        return ExitCode::from(1);
    };
    if let Err(error) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create {}: {error}", out.display());
        return ExitCode::from(1);
    }
    for contract in &contracts.contracts {
        let lines: Vec<String> = contractc::corpus::cases(contract)
            .iter()
            .map(|case| {
                serde_json::json!({
                    "name": case.name,
                    "body": case.body,
                    "codes": case.codes,
                    "schema_expressible": case.schema_expressible,
                })
                .to_string()
            })
            .collect();
        let path = out.join(format!("{}.ndjson", contract.name));
        if let Err(error) = std::fs::write(&path, lines.join("\n") + "\n") {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("wrote {} ({} cases)", path.display(), lines.len());
    }
    ExitCode::SUCCESS
}

fn explain(code: Option<&str>) -> ExitCode {
    match code {
        None => {
            for code in Code::ALL {
                println!(
                    "{code}  {:<7}  {}",
                    format!("{:?}", code.severity()).to_lowercase(),
                    code.summary()
                );
            }
            ExitCode::SUCCESS
        }
        Some(wanted) => match Code::ALL
            .iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
        {
            Some(code) => {
                println!("{code} ({:?}): {}", code.severity(), code.summary());
                println!("See docs/diagnostics.md for examples.");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: unknown diagnostic code `{wanted}`; `contractc explain` lists them"
                );
                ExitCode::from(2)
            }
        },
    }
}
