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
    /// Say what a contract change breaks: for shipped producers and for the table
    #[command(
        long_about = "Compare two versions of the contracts and classify every change: safe, \
breaks producers (events accepted before would be refused), breaks table (Iceberg cannot evolve \
compatibly, or readers break), needs migration (the table must change first). OLD and NEW are \
files, directories or git revisions; --base REV compares the working tree's contracts with that \
revision's.\n\nExit status: 0 when the versions are consistent (a breaking change needs a major \
bump), 1 when they are not, 3 with --deny-breaking when anything breaks, 2 on usage errors."
    )]
    Diff {
        /// The old contracts: a file, a directory or a git revision
        old: Option<String>,
        /// The new contracts: a file, a directory or a git revision (default: contracts)
        new: Option<String>,
        /// Compare the working tree's contracts with this git revision's (e.g. origin/main)
        #[arg(long, conflicts_with = "old")]
        base: Option<String>,
        /// Output format (markdown suits a pull-request comment)
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        /// Exit 3 when any change breaks producers or the table
        #[arg(long)]
        deny_breaking: bool,
        /// Compare each contract with its last release (`<stem>.releases/`, see `contractc
        /// release`): what the change breaks for the builds already shipped. The one path
        /// given (default: contracts) is the new side
        #[arg(long, conflicts_with = "base")]
        last_release: bool,
    },
    /// Keep a contract's current version as a release (before a change clients must survive)
    #[command(long_about = "Check the contract, then copy it, byte for byte, to \
<stem>.releases/<version>.yaml beside it. Released versions stay accepted: `build` compiles a \
validator for each, `serve` and the Glue job judge an event by the version its client declares \
(X-Contract-Version) and upcast it with the migration steps of the later versions' `versions` \
sections; `check` refuses a change between two supported versions that no step covers. Commit \
the release file: the pull request shows it.\n\nExit status: 0 when written (or already there \
with the same bytes), 1 on contract errors or when a different release of that version exists, 2 \
on usage errors.")]
    Release {
        /// The contract file to release
        contract: PathBuf,
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
enum DiffFormat {
    Text,
    Markdown,
    Json,
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
        Command::Diff {
            old,
            new,
            base,
            format,
            deny_breaking,
            last_release,
        } => {
            let sides = match (last_release, base, old, new) {
                (true, _, old, None) => {
                    Sides::LastRelease(old.unwrap_or_else(|| "contracts".into()))
                }
                (false, Some(base), None, new) => {
                    Sides::Given(base, new.unwrap_or_else(|| "contracts".into()))
                }
                (false, None, Some(old), Some(new)) => Sides::Given(old, new),
                (false, None, Some(old), None) => Sides::Given(old, "contracts".into()),
                _ => {
                    eprintln!("error: give OLD and NEW, --base REV or --last-release");
                    return ExitCode::from(2);
                }
            };
            diff(sides, format, deny_breaking)
        }
        Command::Release { contract } => release(&contract),
        Command::Explain { code } => explain(code.as_deref()),
        Command::Schema => {
            print!("{}", contractc::syntax::schema::CONTRACT_SCHEMA);
            ExitCode::SUCCESS
        }
    }
}

fn release(path: &std::path::Path) -> ExitCode {
    if let Err(code) = require_paths(&[path.to_path_buf()]) {
        return code;
    }
    let outcome = driver::check_paths(&[path.to_path_buf()]);
    let Some(set) = outcome.contracts.as_ref().filter(|_| outcome.errors() == 0) else {
        print_diagnostics(&outcome.diagnostics);
        eprintln!(
            "error: {} has errors: fix them before releasing",
            path.display()
        );
        return ExitCode::from(1);
    };
    let Some(contract) = set.contracts.first() else {
        eprintln!("error: {} holds no contract", path.display());
        return ExitCode::from(2);
    };
    match driver::release(path, &contract.version) {
        Ok(driver::Released::Written(to)) => {
            println!(
                "released {} {} as {}",
                contract.name,
                contract.version,
                to.display()
            );
            ExitCode::SUCCESS
        }
        Ok(driver::Released::Already(to)) => {
            println!(
                "{} {} is released already ({})",
                contract.name,
                contract.version,
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(diagnostic) => {
            print_diagnostics(&[diagnostic]);
            ExitCode::from(1)
        }
    }
}

fn print_diagnostics(diagnostics: &[contractc::diagnostic::Diagnostic]) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in diagnostics {
        eprintln!("{}\n", d.render(color));
    }
}

/// A path that does not exist is a usage error (2), not a contract error (1).
fn require_paths(paths: &[PathBuf]) -> Result<(), ExitCode> {
    match driver::first_missing(paths) {
        Some(missing) => {
            eprintln!("error: {}: no such file or directory", missing.display());
            Err(ExitCode::from(2))
        }
        None => Ok(()),
    }
}

fn check(paths: &[PathBuf], format: Format, deny_warnings: bool) -> ExitCode {
    if let Err(code) = require_paths(paths) {
        return code;
    }
    let outcome = driver::check_paths(paths);
    match format {
        Format::Text => {
            print_diagnostics(&outcome.diagnostics);
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
    if let Err(code) = require_paths(paths) {
        return code;
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
    if let Err(code) = require_paths(paths) {
        return code;
    }
    let outcome = driver::check_paths(paths);
    for d in &outcome.diagnostics {
        eprintln!("{}\n", d.render(false));
    }
    let Some(contracts) = outcome.contracts else {
        return ExitCode::from(1);
    };
    let mut files = Vec::with_capacity(contracts.contracts.len());
    for contract in &contracts.contracts {
        files.push(corpus_file(&contract.name, &contract.manifest()));
        // Each supported release's corpus too (its own labels: what its validator says), for
        // mixed-version traffic.
        for release in contract.supported_releases() {
            let name = format!("{}@{}", contract.name, release.contract.version);
            files.push(corpus_file(&name, &release.contract.manifest()));
        }
    }
    let named: Vec<(String, String)> = files
        .iter()
        .map(|(name, text, _)| (name.clone(), text.clone()))
        .collect();
    match driver::write_corpus(out, &named) {
        Ok(written) => {
            for (path, (_, _, cases)) in written.iter().zip(&files) {
                eprintln!("wrote {} ({cases} cases)", path.display());
            }
            ExitCode::SUCCESS
        }
        Err((path, error)) => {
            eprintln!("error: cannot write {}: {error}", path.display());
            ExitCode::from(1)
        }
    }
}

/// `<name>.ndjson`: one labelled case per line.
fn corpus_file(name: &str, manifest: &contract_manifest::Manifest) -> (String, String, usize) {
    let lines: Vec<String> = contract_corpus::cases(manifest)
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
    (
        format!("{name}.ndjson"),
        lines.join("\n") + "\n",
        lines.len(),
    )
}

/// Loads one side of a diff: a path that exists, else a git revision of `contracts/`.
fn load_side(
    spec: &str,
    path_in_rev: &str,
) -> Result<contractc::Valid<contractc::ContractSet>, ExitCode> {
    let sources = if driver::is_on_disk(spec) {
        let files = match driver::collect_files(&[PathBuf::from(spec)]) {
            Ok(files) => files,
            Err(d) => {
                eprintln!("{}", d.render(false));
                return Err(ExitCode::from(2));
            }
        };
        let mut sources = Vec::new();
        for file in files {
            match driver::load_file(&file) {
                Ok(source) => sources.push(source),
                Err(d) => {
                    eprintln!("{}", d.render(false));
                    return Err(ExitCode::from(1));
                }
            }
        }
        sources
    } else {
        match driver::load_git(spec, path_in_rev) {
            Ok(sources) => sources,
            Err(d) => {
                eprintln!(
                    "error: {spec} is neither a path nor a git revision: {}",
                    d.message
                );
                return Err(ExitCode::from(2));
            }
        }
    };
    let outcome = driver::check_sources(&sources);
    for d in &outcome.diagnostics {
        eprintln!("{}\n", d.render(false));
    }
    outcome.contracts.ok_or_else(|| {
        eprintln!("error: the contracts of {spec} do not check");
        ExitCode::from(1)
    })
}

/// What `diff` compares.
enum Sides {
    /// OLD and NEW: files, directories or git revisions.
    Given(String, String),
    /// NEW's contracts with their last releases.
    LastRelease(String),
}

fn diff(sides: Sides, format: DiffFormat, deny_breaking: bool) -> ExitCode {
    let (old_set, new_set) = match sides {
        Sides::Given(old_spec, new_spec) => {
            // A revision holds the contracts at the same path the new side uses.
            let path_in_rev = if driver::is_on_disk(&new_spec) {
                new_spec.clone()
            } else {
                "contracts".to_string()
            };
            let old_set = match load_side(&old_spec, &path_in_rev) {
                Ok(set) => set.into_inner(),
                Err(code) => return code,
            };
            match load_side(&new_spec, &path_in_rev) {
                Ok(set) => (old_set, set.into_inner()),
                Err(code) => return code,
            }
        }
        Sides::LastRelease(new_spec) => match load_side(&new_spec, "contracts") {
            Ok(set) => {
                let mut set = set.into_inner();
                // Only contracts with a release: there is nothing shipped to compare the others with.
                set.contracts.retain(|c| c.history.is_some());
                if set.contracts.is_empty() {
                    eprintln!(
                        "no contract has a release yet (see `contractc release`): nothing to compare"
                    );
                    return ExitCode::SUCCESS;
                }
                (contractc::diff::last_releases(&set), set)
            }
            Err(code) => return code,
        },
    };
    let report = contractc::diff::diff(&old_set, &new_set);
    match format {
        DiffFormat::Text => print!("{}", contractc::diff::render_text(&report)),
        DiffFormat::Markdown => print!("{}", contractc::diff::render_markdown(&report)),
        DiffFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
    }
    if !report.version_errors.is_empty() {
        ExitCode::from(1)
    } else if deny_breaking && report.is_breaking() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
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
