//! `contract-runtime`: a thin CLI over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use contract_serve::server::{ServeConfig, serve};

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
/.well-known/jwks.json), /healthz, /metrics and the quality console (/console/). Events are \
validated by the generated validators, logged to a write-ahead log (fsynced before the answer), \
and committed to Iceberg tables in DATA_DIR/warehouse with a SQLite catalog at \
DATA_DIR/catalog.db (catalog name `contractc`). Between commits the tables are maintained \
(compaction, snapshot expiry, unreferenced files; see docs/operations.md)."
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
        /// Also accept tokens whose `iss` is ISSUER (the game's own identity provider),
        /// verified by its JWKS (default ISSUER/.well-known/jwks.json; plain http only to this
        /// machine) with each contract's audience and scopes; repeatable. Tokens of the dev
        /// issuer and of each contract's own issuer are still accepted
        #[arg(long = "trust-issuer", value_name = "ISSUER[=JWKS_URL]")]
        trust_issuers: Vec<contract_serve::identity::ExternalIssuer>,
        /// File holding the token that opens the quality console (/console/); also read from
        /// CONTRACTC_CONSOLE_TOKEN. Default: a token made at first start, kept in
        /// DATA_DIR/console-token
        #[arg(long, value_name = "FILE")]
        console_token_file: Option<PathBuf>,
        /// Development: open the console without its token to requests straight from this
        /// machine (never to requests relayed by a proxy); loopback listen addresses only
        #[arg(long)]
        console_open: bool,
        /// Removed: a token on the command line is visible to every user in `ps`
        #[arg(long, hide = true)]
        console_token: Option<String>,
        /// Store every event, retries included, whatever the contracts' `ingest.dedup` says:
        /// for measuring what deduplication costs (benches/load.sh), not for production
        #[arg(long)]
        no_dedup: bool,
        #[command(flatten)]
        pii: PiiKeyArgs,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        maintenance: MaintenanceArgs,
        #[command(flatten)]
        alerts: AlertArgs,
    },
    /// Synthetic telemetry from a contract: valid events, and labelled invalid ones
    #[command(
        long_about = "Generate events from a contract and send them through the guest login, \
as the reference's test script does (its flags work too). Valid events are random but valid by \
construction; with --invalid-ratio, invalid ones are mixed in, each labelled with the violation \
codes it must produce, and the summary counts the server's answers that disagree with a label. \
A pool of players (--players) sends them: each signs in once as a guest and renews its token \
with its refresh token (or logs in again as the same guest), so a run creates no more guests than \
it has players. Also the load tool of the runtime's benchmark (--rate, --concurrency, --batch)."
    )]
    Synth(SynthArgs),
    /// Compact, expire snapshots and delete unreferenced files now (serve does it on its own)
    #[command(
        long_about = "One maintenance run over every contract's tables under DATA_DIR, the same \
run `serve` makes every --maintenance-interval-s: compact small data files per partition, merge \
manifests, expire old snapshots, delete files nothing references. Safe beside a running `serve` \
(a run that loses a race with a commit is skipped). Prints each table's figures before and after."
    )]
    Maintain {
        /// Where `serve` keeps its catalog and warehouse
        #[arg(long, default_value = ".data")]
        data_dir: PathBuf,
        #[command(flatten)]
        maintenance: MaintenanceArgs,
    },
    /// Move quarantined events that this build's contract accepts into the events table
    #[command(
        long_about = "After a fix to a too-strict rule: re-judge the contract's quarantined and \
refused events (their stored raw payloads) with the validator built into this binary, move those \
that pass into the events table exactly once (a ledger in DATA_DIR/catalog.db marks them), and \
report what still fails, by violation code and path. Safe next to a running `serve` on the same \
data directory; running it again moves nothing more."
    )]
    Replay(ReplayArgs),
    /// Erase data subjects from the tables, the write-ahead log and the guest store
    #[command(
        long_about = "Erase data subjects (GDPR Art. 17): every row of the events and \
quarantine tables whose subject column holds one of the ids (as stored: as sent, or hashed under \
every key of the key document) is removed by rewriting its data files; the snapshots that still \
reference the old files are expired and every file no snapshot references is deleted at once; the \
subjects' records leave the write-ahead log and the guest store. Writes a receipt (JSON, no ids in \
it). Runs while serve is stopped (they share DATA_DIR/serve.lock). See docs/privacy.md."
    )]
    Forget(ForgetArgs),
    /// Moved to `contract-deploy deploy` (kept so the old command says where it went)
    #[command(hide = true, disable_help_flag = true)]
    Deploy {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Moved to `contract-deploy status`
    #[command(hide = true, disable_help_flag = true)]
    Status {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,iceberg=warn,sqlx=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted())
        .init();
    match Cli::parse().command {
        Command::Serve {
            listen,
            data_dir,
            commit_interval_ms,
            commit_rows,
            public_url,
            trust_issuers,
            console_token_file,
            console_open,
            console_token,
            no_dedup,
            pii,
            limits,
            maintenance,
            alerts,
        } => {
            if let Err(code) = check_fresh() {
                return code;
            }
            if console_token.is_some() {
                eprintln!(
                    "error: --console-token is gone: a token on the command line is visible to \
                     every user in `ps`. Put it in a file (--console-token-file FILE) or in \
                     CONTRACTC_CONSOLE_TOKEN, or let serve keep one in DATA_DIR/console-token"
                );
                return ExitCode::from(2);
            }
            let console_token = match console_token_from(console_token_file.as_deref()) {
                Ok(token) => token,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            };
            let pii_keys = match pii.document() {
                Ok(keys) => keys,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            };
            let mut config = ServeConfig::new(listen, data_dir);
            config.pii_keys = pii_keys;
            config.commit_interval = Duration::from_millis(commit_interval_ms);
            config.commit_rows = commit_rows;
            config.public_url = public_url;
            config.trusted_issuers = trust_issuers;
            config.console_token = console_token;
            config.console_open = console_open;
            config.dedup = !no_dedup;
            limits.apply(&mut config);
            config.maintenance = maintenance.schedule();
            config.alerts = alerts.settings();
            match block_on(async {
                // Install the handlers before anything else, so a signal during startup still
                // ends in a graceful shutdown (flush) rather than the default kill.
                let shutdown = shutdown_signal()?;
                serve(config, contract_validators::ALL, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            }) {
                Err(code) => code,
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(error)) => {
                    eprintln!("error: {error}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Synth(args) => synth(args),
        Command::Maintain {
            data_dir,
            maintenance,
        } => maintain(&data_dir, maintenance),
        Command::Replay(args) => replay(args),
        Command::Forget(args) => forget(args),
        Command::Deploy { .. } => moved("deploy"),
        Command::Status { .. } => moved("status"),
    }
}

#[derive(clap::Args)]
struct ForgetArgs {
    /// The data directory serve used
    #[arg(long, default_value = ".data")]
    data_dir: PathBuf,
    /// A data subject to erase (the token's subject, or the contract's `privacy.subject`);
    /// repeatable
    #[arg(long = "subject", value_name = "ID")]
    subjects: Vec<String>,
    /// A file of data subjects, one per line (`#` comments and blank lines skipped)
    #[arg(long, value_name = "FILE")]
    subjects_file: Option<PathBuf>,
    /// Where to write the receipt (default DATA_DIR/erasures/TIME.json)
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// Ask the serve running at this URL to erase (between its commits) instead of erasing
    /// from a stopped serve's data directory; authenticated with the console's token
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// With --server: the file holding the console's token; also read from
    /// CONTRACTC_CONSOLE_TOKEN. Default: DATA_DIR/console-token
    #[arg(long, value_name = "FILE")]
    console_token_file: Option<PathBuf>,
    #[command(flatten)]
    pii: PiiKeyArgs,
}

fn forget(args: ForgetArgs) -> ExitCode {
    use contract_serve::forget;
    let given = contract_support::manifest::privacy::gather_subjects(
        &args.subjects,
        args.subjects_file.as_deref(),
    );
    let subjects = match given {
        Ok(subjects) => subjects,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(server) = &args.server {
        return forget_online(server, &args, &subjects);
    }
    let keys = args.pii.document().and_then(|given| {
        contract_serve::privacy::load_keys(given.as_deref(), &args.data_dir, false)
    });
    let keys = match keys {
        Ok(keys) => keys,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    contract_serve::data_dir::owner_only_files();
    let erased = block_on(forget::forget(
        &args.data_dir,
        contract_validators::ALL,
        keys.as_deref(),
        &subjects,
    ));
    let receipt = match erased {
        Err(code) => return code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
        Ok(Ok(receipt)) => receipt,
    };
    let path = args
        .receipt
        .clone()
        .unwrap_or_else(|| forget::default_receipt_path(&args.data_dir, &receipt));
    let json = serde_json::to_string_pretty(&receipt).unwrap_or_default();
    report_erasure(&receipt, &json, &path)
}

/// Writes the receipt and says what was erased.
fn report_erasure(
    receipt: &contract_serve::forget::Receipt,
    json: &str,
    path: &std::path::Path,
) -> ExitCode {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, format!("{json}\n")));
    if let Err(error) = written {
        eprintln!(
            "error: erased, but cannot write the receipt {}: {error}\n{json}",
            path.display()
        );
        return ExitCode::from(1);
    }
    let rows: usize = receipt.tables.iter().map(|t| t.rows_removed).sum();
    println!(
        "forgot {} subject(s): {rows} row(s), {} log record(s), {} guest(s); receipt {}",
        receipt.subjects,
        receipt.log_records_removed,
        receipt.guests_removed,
        path.display()
    );
    ExitCode::SUCCESS
}

/// `forget --server`: the running serve erases between its commits and answers the receipt.
fn forget_online(server: &str, args: &ForgetArgs, subjects: &[String]) -> ExitCode {
    let token = match console_token_from(args.console_token_file.as_deref()) {
        Ok(Some(token)) => token,
        Ok(None) => {
            let kept = args
                .data_dir
                .join(contract_serve::server::CONSOLE_TOKEN_FILE);
            match std::fs::read_to_string(&kept) {
                Ok(token) => token.trim().to_string(),
                Err(error) => {
                    eprintln!(
                        "error: --server needs the console's token: --console-token-file FILE, \
                         CONTRACTC_CONSOLE_TOKEN, or {} ({error})",
                        kept.display()
                    );
                    return ExitCode::from(2);
                }
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let url = format!("{}/admin/forget", server.trim_end_matches('/'));
    let body = serde_json::json!({ "subjects": subjects });
    let answer = block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    });
    let (status, text) = match answer {
        Err(code) => return code,
        Ok(Err(error)) => {
            eprintln!("error: cannot ask {url}: {error}");
            return ExitCode::from(1);
        }
        Ok(Ok(answer)) => answer,
    };
    if !status.is_success() {
        eprintln!("error: {url} answered {status}: {}", text.trim());
        return ExitCode::from(1);
    }
    let receipt: contract_serve::forget::Receipt = match serde_json::from_str(&text) {
        Ok(receipt) => receipt,
        Err(error) => {
            eprintln!("error: {url} answered no receipt ({error}): {text}");
            return ExitCode::from(1);
        }
    };
    let path = args
        .receipt
        .clone()
        .unwrap_or_else(|| contract_serve::forget::default_receipt_path(&args.data_dir, &receipt));
    report_erasure(&receipt, &text, &path)
}

/// Where the hashing keys of `pii: hash` fields come from (docs/privacy.md).
#[derive(clap::Args)]
struct PiiKeyArgs {
    /// File holding the key document for `pii: hash` fields ({"current": ID, "keys": {ID:
    /// HEX}}); also read from CONTRACTC_PII_KEYS. Default: a key made at first start, kept in
    /// DATA_DIR/pii-keys.json
    #[arg(long, value_name = "FILE")]
    pii_keys_file: Option<PathBuf>,
}

impl PiiKeyArgs {
    /// The key document given, if any (None: the data directory's).
    fn document(&self) -> Result<Option<String>, String> {
        if let Some(file) = &self.pii_keys_file {
            return std::fs::read_to_string(file)
                .map(Some)
                .map_err(|e| format!("cannot read --pii-keys-file {}: {e}", file.display()));
        }
        Ok(std::env::var("CONTRACTC_PII_KEYS")
            .ok()
            .filter(|text| !text.trim().is_empty()))
    }
}

/// The console token from `--console-token-file` or `CONTRACTC_CONSOLE_TOKEN` (None: serve
/// keeps its own in the data directory).
fn console_token_from(file: Option<&std::path::Path>) -> Result<Option<String>, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--console-token-file {}: {e}", file.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "--console-token-file {}: the file is empty",
                file.display()
            ));
        }
        return Ok(Some(token.to_string()));
    }
    Ok(std::env::var("CONTRACTC_CONSOLE_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Colour in the log only for a person at a terminal: not in files or pipes, nor with
/// `NO_COLOR` set (https://no-color.org).
fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Quality alerts (docs/alerts.md): how serve evaluates the contracts' `quality.alerts`.
#[derive(clap::Args)]
struct AlertArgs {
    /// Seconds between evaluations of the contracts' quality.alerts
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    alert_interval_s: u64,
    /// POST each alert's state change (firing, resolved) here as JSON (docs/alerts.md)
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
}

impl AlertArgs {
    fn settings(&self) -> contract_serve::alerts::AlertSettings {
        contract_serve::alerts::AlertSettings {
            interval: Duration::from_secs(self.alert_interval_s),
            webhook: self.alert_webhook.clone(),
        }
    }
}

/// Table maintenance (docs/operations.md); what it may do per table is in the table's
/// properties (`history.expire.*`, `write.target-file-size-bytes`).
#[derive(clap::Args)]
struct MaintenanceArgs {
    /// Seconds between maintenance runs in `serve` (0: never)
    #[arg(long, default_value_t = 60)]
    maintenance_interval_s: u64,
    /// Seconds an unreferenced file must have existed before it is deleted
    #[arg(long, default_value_t = 300)]
    orphan_grace_s: u64,
    /// Expire snapshots older than this many seconds in every table (overrides the tables'
    /// history.expire.max-snapshot-age-ms; default 10 minutes)
    #[arg(long)]
    max_snapshot_age_s: Option<u64>,
}

impl MaintenanceArgs {
    fn schedule(&self) -> contract_serve::maintenance::Schedule {
        contract_serve::maintenance::Schedule {
            every: Duration::from_secs(self.maintenance_interval_s),
            orphan_grace: Duration::from_secs(self.orphan_grace_s),
            max_snapshot_age: self.max_snapshot_age_s.map(Duration::from_secs),
        }
    }
}

fn maintain(data_dir: &std::path::Path, args: MaintenanceArgs) -> ExitCode {
    let schedule = args.schedule();
    let runs = match block_on(contract_serve::maintenance::maintain_once(
        data_dir,
        &schedule,
        contract_validators::ALL,
    )) {
        Err(code) => return code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
        Ok(Ok(runs)) => runs,
    };
    let mut failed = false;
    for run in runs {
        let (b, a) = (&run.before, &run.after);
        match &run.outcome {
            Ok(report) => println!(
                "{}: compacted {} files into {}, expired {} snapshots, deleted {} files ({} bytes); \
                 data files {} -> {}, snapshots {} -> {}, rows {} -> {}, metadata {} -> {} bytes",
                run.table,
                report.compacted_files,
                report.written_files,
                report.expired_snapshots,
                report.deleted_orphans,
                report.deleted_bytes,
                b.data_files,
                a.data_files,
                b.snapshots,
                a.snapshots,
                b.rows,
                a.rows,
                b.metadata_bytes,
                a.metadata_bytes
            ),
            Err(error) => {
                failed = true;
                eprintln!("error: {}: {error}", run.table);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What `serve` bounds, so one client cannot take it down (docs/security.md).
#[derive(clap::Args)]
struct LimitArgs {
    /// Connections served at once; more are closed on accept
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a connection may take to send a request's headers (also closes idle ones)
    #[arg(long, default_value_t = 30)]
    header_timeout_s: u64,
    /// Seconds a request body may take to arrive
    #[arg(long, default_value_t = 30)]
    body_timeout_s: u64,
    /// Batch requests judged at once
    #[arg(long, default_value_t = 4)]
    concurrent_batches: usize,
    /// An origin allowed to send credentialed browser requests (repeatable)
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// New guests one client address may create per minute (0: no limit)
    #[arg(long, default_value_t = 1200)]
    guests_per_minute: u32,
    /// New guests one client address may create at once
    #[arg(long, default_value_t = 100)]
    guest_burst: u32,
    /// Days an unused guest is remembered
    #[arg(long, default_value_t = 30)]
    guest_ttl_days: u64,
    /// Token refreshes and returning-guest logins one client address may make per minute
    /// (0: no limit); a player makes one per session and one per 15 minutes of play
    #[arg(long, default_value_t = 1200)]
    renewals_per_minute: u32,
    /// Token refreshes and returning-guest logins one client address may make at once
    #[arg(long, default_value_t = 200)]
    renewal_burst: u32,
    /// Development only (loopback): let `login-as-guest?scope=authenticated` mint that scope
    #[arg(long)]
    dev_mint_scopes: bool,
}

impl LimitArgs {
    fn apply(self, config: &mut ServeConfig) {
        config.connections.max_connections = self.max_connections;
        config.connections.header_timeout = Duration::from_secs(self.header_timeout_s);
        config.body_timeout = Duration::from_secs(self.body_timeout_s);
        config.concurrent_batches = self.concurrent_batches;
        config.cors.allowed_origins = self.cors_origins;
        config.guests.new_per_minute = self.guests_per_minute;
        config.guests.burst = self.guest_burst;
        config.guests.ttl = Duration::from_secs(self.guest_ttl_days * 24 * 3600);
        config.guests.renewals_per_minute = self.renewals_per_minute;
        config.guests.renewal_burst = self.renewal_burst;
        config.dev_mint_scopes = self.dev_mint_scopes;
    }
}

#[derive(clap::Args)]
struct SynthArgs {
    /// The contract to generate from: its name, or the path of its file (built into this binary)
    #[arg(long, default_value = "game_events")]
    contract: String,
    /// Base URL of the guest login, ending in `/` (`login-as-guest` and
    /// `refresh-access-token` are appended)
    #[arg(long, default_value = "http://127.0.0.1:8080/prod/")]
    login_endpoint: String,
    /// Full URL of the single-event route (default: the contract's route on 127.0.0.1:8080)
    #[arg(long)]
    backend_endpoint: Option<String>,
    /// How many events to generate (default 100, or no limit with --duration)
    #[arg(long)]
    max_count: Option<u64>,
    /// Send for this long, e.g. 10m or 30s (with --max-count: whichever comes first)
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Print the events instead of sending them
    #[arg(long)]
    dry_run: bool,
    /// Print each event as it is sent
    #[arg(long)]
    console: bool,
    /// Events per second (default: as fast as possible)
    #[arg(long)]
    rate: Option<f64>,
    /// Concurrent senders
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Send N events per request to the contract's batch route
    #[arg(long)]
    batch: Option<usize>,
    /// Players sending the events in turn, each a guest signing in once (the default stays
    /// within a default serve's burst of new guests per address, twice over)
    #[arg(long, default_value_t = contract_synth::DEFAULT_PLAYERS,
          value_parser = clap::value_parser!(u32).range(1..))]
    players: u32,
    /// One player for the whole run (the same as --players 1)
    #[arg(long, conflicts_with = "players")]
    reuse_token: bool,
    /// Share of invalid events (0 to 1), each breaking one rule
    #[arg(long, default_value_t = 0.0)]
    invalid_ratio: f64,
    /// Times a request is sent again after a network error, a timeout or a 5xx, with the same
    /// events and ids (the server stores a retried event once)
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// How long a request may take before it counts as failed (and, with --retries, is sent
    /// again)
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Random seed (same seed, same events; with `ingest.dedup`, each run's events get new ids)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make times valid for this ingest time (seconds since the epoch; default: this hour)
    #[arg(long)]
    now: Option<i64>,
    /// Also write the events as NDJSON ({"body", "expect", "label", "version"}) to this file
    #[arg(long)]
    out: Option<PathBuf>,
    /// Mixed-version traffic, as a live game's builds send it: VERSION=SHARE,... e.g.
    /// `1.2.0=30%,2.0.0=70%` (the current version and the contract's supported releases). Each
    /// event is made for its version and declares it (X-Contract-Version). Default: the
    /// current version only
    #[arg(long)]
    versions: Option<String>,
}

fn synth(args: SynthArgs) -> ExitCode {
    use contract_synth::{Generator, SendOptions, Source, send};

    if let Err(code) = check_fresh() {
        return code;
    }
    let Some(spec) = find_contract(&args.contract) else {
        let names: Vec<&str> = contract_validators::CONTRACTS.to_vec();
        eprintln!(
            "error: no contract {:?} in this build (built: {})",
            args.contract,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let contract = spec.manifest();
    let now = args.now.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // This hour: the same seed gives the same events all hour long.
        secs - secs.rem_euclid(3600)
    });
    let count = match (args.max_count, args.duration) {
        (None, None) => Some(100),
        (count, _) => count,
    };
    let batched = args.batch.is_some();
    // Events are drawn as they are sent: memory stays flat whatever the count or duration.
    let events: Box<dyn Iterator<Item = contract_synth::SynthEvent> + Send> = match &args.versions {
        None => Box::new(Generator::new(contract, args.seed, args.invalid_ratio, now)),
        Some(versions) => {
            let mixed = version_shares(spec, versions).and_then(|shares| {
                contract_synth::Mixed::new(&shares, args.seed, args.invalid_ratio, now)
                    .ok_or_else(|| "name at least one version with a share above 0".to_string())
            });
            match mixed {
                Ok(mixed) => Box::new(mixed),
                Err(message) => {
                    eprintln!("error: --versions {versions:?}: {message}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    // A blank body has no NDJSON line to travel in.
    let events = events.filter(move |e| !batched || !e.body.trim().is_empty());
    let out = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("error: cannot write {}: {error}", path.display());
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let mut source = Source::new(events, count, args.duration, out);
    if args.dry_run {
        return print_events(&mut source);
    }
    let backend = args
        .backend_endpoint
        .unwrap_or_else(|| format!("http://127.0.0.1:8080{}", contract.ingest.route));
    let batch_endpoint = contract.ingest.batch_route.as_ref().and_then(|batch| {
        backend
            .strip_suffix(contract.ingest.route.as_str())
            .map(|base| format!("{base}{batch}"))
    });
    if args.batch.is_some() && batch_endpoint.is_none() {
        eprintln!(
            "error: --batch needs the contract's batch route and a backend endpoint ending in {}",
            contract.ingest.route
        );
        return ExitCode::from(2);
    }
    let scope = contract.default_scope().to_string();
    let options = SendOptions {
        login_endpoint: args.login_endpoint,
        scope,
        backend_endpoint: backend,
        batch_endpoint,
        rate: args.rate,
        concurrency: args.concurrency,
        batch: args.batch,
        players: if args.reuse_token {
            1
        } else {
            args.players as usize
        },
        console: args.console,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr())
            && count.is_none_or(|n| n >= 1000),
        retries: args.retries,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let summary = match block_on(send(source, options, count)) {
        Ok(summary) => summary,
        Err(code) => return code,
    };
    eprint!("{}", summary.render());
    if summary.mismatch_count == 0 && summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Where `serve` keeps its catalog and warehouse
    #[arg(long, default_value = ".data")]
    data_dir: PathBuf,
    /// The contract whose quarantine to replay (one built into this binary)
    #[arg(long)]
    contract: String,
    /// Only events received since then: an RFC 3339 time (2024-05-01T00:00:00Z) or a
    /// duration ago (24h, 7d)
    #[arg(long, value_parser = since_micros)]
    since: Option<i64>,
    /// Only events stored with this violation code (e.g. pattern, not_before)
    #[arg(long, value_parser = violation_code)]
    code: Option<contract_support::Code>,
    /// Judge and report only: nothing is written
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

fn replay(args: ReplayArgs) -> ExitCode {
    use contract_serve::replay::{Filter, ReplayOptions};

    if let Err(code) = check_fresh() {
        return code;
    }
    let options = ReplayOptions {
        contract: args.contract,
        filter: Filter {
            since_micros: args.since,
            code: args.code,
        },
        dry_run: args.dry_run,
    };
    let report = match block_on(contract_serve::replay::replay(
        &args.data_dir,
        &options,
        contract_validators::ALL,
    )) {
        Err(code) => return code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
        Ok(Ok(report)) => report,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.render());
    }
    ExitCode::SUCCESS
}

/// `--since`: an RFC 3339 time, or a duration before now; as microseconds since the epoch.
fn since_micros(text: &str) -> Result<i64, String> {
    let time = match humantime::parse_duration(text) {
        Ok(ago) => std::time::SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| format!("{text} ago is before the epoch"))?,
        Err(_) => humantime::parse_rfc3339_weak(text)
            .map_err(|e| format!("{text:?} is neither an RFC 3339 time nor a duration ({e})"))?,
    };
    let micros = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{text} is before the epoch"))?
        .as_micros();
    i64::try_from(micros).map_err(|_| format!("{text} is too far in the future"))
}

fn violation_code(text: &str) -> Result<contract_support::Code, String> {
    contract_support::Code::parse(text).ok_or_else(|| format!("no violation code {text:?}"))
}

/// `--dry-run`: prints the events as they are made, and how fast they were made.
fn print_events(source: &mut contract_synth::Source) -> ExitCode {
    use std::io::Write;
    let started = std::time::Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut made = 0u64;
    loop {
        let (_, events) = source.take(1024);
        if events.is_empty() {
            break;
        }
        for e in &events {
            if writeln!(out, "{}", e.body).is_err() {
                return ExitCode::SUCCESS; // the reader went away (a pipe into `head`)
            }
        }
        made += events.len() as u64;
    }
    let _ = out.flush();
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "generated {made} events in {seconds:.2} s: {:.0} events/s",
        made as f64 / seconds
    );
    ExitCode::SUCCESS
}

/// The built contract named `wanted`, or built from the file `wanted`.
/// `1.2.0=30%,2.0.0=70%` → each version's manifest (the current one or a release's) and share.
fn version_shares(
    current: &'static dyn contract_support::AnyContract,
    spec: &str,
) -> Result<Vec<(&'static contract_support::Manifest, f64)>, String> {
    let manifests: Vec<&'static contract_support::Manifest> = std::iter::once(current.manifest())
        .chain(current.releases().iter().map(|r| r.manifest()))
        .collect();
    let mut shares = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((version, share)) = part.split_once('=') else {
            return Err(format!("{part:?} is not VERSION=SHARE"));
        };
        let share = match share.trim().strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => share.trim().parse::<f64>(),
        };
        let share = share
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| format!("{part:?}: the share is not a number ≥ 0 (e.g. 30% or 0.3)"))?;
        let Some(manifest) = manifests.iter().find(|m| m.version == version.trim()) else {
            let known: Vec<&str> = manifests.iter().map(|m| m.version.as_str()).collect();
            return Err(format!(
                "{} is not a version this build judges (it has {})",
                version.trim(),
                known.join(", ")
            ));
        };
        shares.push((*manifest, share));
    }
    Ok(shares)
}

/// The contract built into this binary named `wanted`, or compiled from the file `wanted`.
fn find_contract(wanted: &str) -> Option<&'static dyn contract_support::AnyContract> {
    let wanted_path = std::path::Path::new(wanted);
    contract_validators::ALL.iter().copied().find(|c| {
        let m = c.manifest();
        m.name == wanted || std::path::Path::new(&m.source.path) == wanted_path
    })
}

/// Refuses to run when `contracts/` (in the working directory) differs from the build.
fn check_fresh() -> Result<(), ExitCode> {
    let manifests: Vec<&contract_support::Manifest> = contract_validators::ALL
        .iter()
        .map(|c| c.manifest())
        .collect();
    contract_support::manifest::freshness::check(std::path::Path::new("."), &manifests).map_err(
        |stale| {
            eprintln!("error: {stale}");
            ExitCode::from(1)
        },
    )
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, ExitCode> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok(runtime.block_on(future)),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            Err(ExitCode::from(1))
        }
    }
}

/// `deploy` and `status` live in their own binary, so serving never compiles the AWS SDK.
fn moved(command: &str) -> ExitCode {
    eprintln!(
        "error: `contract-runtime {command}` moved to its own binary: run \
         `cargo run --release -p contract-deploy -- {command} ...` (same flags)"
    );
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
