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
    /// Synthetic telemetry from a contract: valid events, and labelled invalid ones
    #[command(
        long_about = "Generate events from a contract and send them through the guest login, \
as the reference's test script does (its flags work too). Valid events are random but valid by \
construction; with --invalid-ratio, invalid ones are mixed in, each labelled with the violation \
codes it must produce, and the summary counts the server's answers that disagree with a label. \
Also the load tool of the runtime's benchmark (--rate, --concurrency, --batch, --reuse-token)."
    )]
    Synth(SynthArgs),
    /// Deploy the generated stack to AWS: plan, apply, start the Glue job
    #[command(
        long_about = "Deploy every contract's generated stack to AWS: an S3 bucket with the \
Glue script, a Kinesis stream (on demand), the Glue database, the Iceberg events and quarantine \
tables and the stream table, the Glue 5.0 streaming job, and an API Gateway REST API with the \
request model, a body validator and the Kinesis integration. --plan prints what would change and \
changes nothing; --apply makes it so; both are idempotent.\n\nWith --plan --detailed-exitcode: \
exit 0 when there is nothing to change, 2 when there is, 1 on error. Credentials come from the \
standard AWS chain; nothing secret is printed."
    )]
    Deploy(DeployArgs),
    /// Show each deployed resource and the last Glue job run
    Status(AwsArgs),
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
            match block_on(async {
                // Install the handlers before anything else, so a signal during startup still
                // ends in a graceful shutdown (flush) rather than the default kill.
                let shutdown = shutdown_signal()?;
                serve(config, shutdown).await.map_err(|e| e.to_string())
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
        Command::Deploy(args) => deploy(args),
        Command::Status(args) => status(args),
    }
}

#[derive(clap::Args)]
struct SynthArgs {
    /// The contract to generate from
    #[arg(long, default_value = "contracts/game_events.yaml")]
    contract: PathBuf,
    /// Base URL of the guest login, ending in `/` (`login-as-guest` is appended)
    #[arg(long, default_value = "http://127.0.0.1:8080/prod/")]
    login_endpoint: String,
    /// Full URL of the single-event route (default: the contract's route on 127.0.0.1:8080)
    #[arg(long)]
    backend_endpoint: Option<String>,
    /// How many events to generate
    #[arg(long, default_value_t = 100)]
    max_count: usize,
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
    /// One guest login per sender instead of one per request
    #[arg(long)]
    reuse_token: bool,
    /// Share of invalid events (0 to 1), each breaking one rule
    #[arg(long, default_value_t = 0.0)]
    invalid_ratio: f64,
    /// Random seed (same seed, same events)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make times valid for this ingest time (seconds since the epoch; default: this hour)
    #[arg(long)]
    now: Option<i64>,
    /// Also write the events as NDJSON ({"body", "expect", "label"}) to this file
    #[arg(long)]
    out: Option<PathBuf>,
}

fn synth(args: SynthArgs) -> ExitCode {
    use contract_runtime::synth::{Generator, SendOptions, send};

    let outcome = contractc::driver::check_paths(std::slice::from_ref(&args.contract));
    for d in &outcome.diagnostics {
        eprintln!("{}\n", d.render(false));
    }
    let Some(set) = outcome.contracts else {
        eprintln!("error: {} does not check", args.contract.display());
        return ExitCode::from(1);
    };
    let Some(contract) = set.contracts.first() else {
        eprintln!("error: no contract in {}", args.contract.display());
        return ExitCode::from(2);
    };
    let now = args.now.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // This hour: the same seed gives the same events all hour long.
        secs - secs.rem_euclid(3600)
    });
    let mut generator = Generator::new(contract, args.seed, args.invalid_ratio, now);
    let mut events: Vec<_> = (0..args.max_count)
        .map(|_| generator.next_event())
        .collect();
    if args.batch.is_some() {
        // A blank body has no NDJSON line to travel in.
        events.retain(|e| !e.body.trim().is_empty());
    }
    if let Some(path) = &args.out {
        let lines: String = events
            .iter()
            .map(|e| {
                serde_json::json!({ "body": e.body, "expect": e.expect, "label": e.label })
                    .to_string()
                    + "\n"
            })
            .collect();
        if let Err(error) = std::fs::write(path, lines) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
    }
    if args.dry_run {
        for e in &events {
            println!("{}", e.body);
        }
        return ExitCode::SUCCESS;
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
    let scopes = &contract.ingest.auth.scopes;
    let scope = if scopes.iter().any(|s| s == "guest") {
        "guest".to_string()
    } else {
        scopes[0].clone()
    };
    let options = SendOptions {
        login_endpoint: args.login_endpoint,
        scope,
        backend_endpoint: backend,
        batch_endpoint,
        rate: args.rate,
        concurrency: args.concurrency,
        batch: args.batch,
        reuse_token: args.reuse_token,
        console: args.console,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()) && args.max_count >= 1000,
    };
    let summary = match block_on(send(events, options)) {
        Ok(summary) => summary,
        Err(code) => return code,
    };
    eprint!("{}", summary.render());
    if summary.mismatches.is_empty() && summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[derive(clap::Args, Clone)]
struct AwsArgs {
    /// AWS region (default: AWS_REGION, else us-east-1)
    #[arg(long)]
    region: Option<String>,
    /// AWS profile of the standard credential chain
    #[arg(long)]
    profile: Option<String>,
    /// Endpoint of an emulator such as moto (e.g. http://127.0.0.1:5000)
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Prefix of every resource name
    #[arg(long, default_value = "contractc")]
    prefix: String,
    /// S3 bucket for scripts, checkpoints and the warehouse (default: PREFIX-artifacts)
    #[arg(long)]
    bucket: Option<String>,
    /// IAM role the Glue job runs as (default: arn:aws:iam::ACCOUNT:role/PREFIX-glue)
    #[arg(long)]
    glue_role_arn: Option<String>,
    /// IAM role API Gateway uses to write to Kinesis (default: arn:aws:iam::ACCOUNT:role/PREFIX-apigateway)
    #[arg(long)]
    api_role_arn: Option<String>,
    /// Account id for the default role and stream ARNs (default: AWS_ACCOUNT_ID, else 123456789012)
    #[arg(long)]
    account_id: Option<String>,
    /// Where `contractc build` wrote the artefacts
    #[arg(long, default_value = "generated")]
    generated: PathBuf,
    /// Issuer URL the JWT authorizer trusts for contracts using the dev identity provider
    #[arg(long)]
    issuer_url: Option<String>,
}

#[derive(clap::Args)]
struct DeployArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// Print what would be created or changed; change nothing
    #[arg(long, conflicts_with = "apply")]
    plan: bool,
    /// Create or update what the plan says
    #[arg(long)]
    apply: bool,
    /// With --plan: exit 2 when there are changes, 0 when there are none
    #[arg(long)]
    detailed_exitcode: bool,
    /// Start each contract's Glue job run after applying
    #[arg(long)]
    start_job: bool,
}

fn deploy_config(args: &AwsArgs) -> contract_runtime::deploy::DeployConfig {
    contract_runtime::deploy::DeployConfig {
        prefix: args.prefix.clone(),
        region: args
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into()),
        endpoint_url: args.endpoint_url.clone(),
        profile: args.profile.clone(),
        bucket: args.bucket.clone(),
        glue_role_arn: args.glue_role_arn.clone(),
        api_role_arn: args.api_role_arn.clone(),
        account_id: args
            .account_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCOUNT_ID").ok())
            .unwrap_or_else(|| "123456789012".into()),
        generated: args.generated.clone(),
        static_credentials: None,
        dev_issuer: args.issuer_url.clone(),
    }
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

fn deploy(args: DeployArgs) -> ExitCode {
    use contract_runtime::deploy::{Action, Clients, Desired, deploy_contract, start_job};
    if !args.plan && !args.apply {
        eprintln!("error: give --plan or --apply");
        return ExitCode::from(2);
    }
    let config = deploy_config(&args.aws);
    let result = block_on(async {
        let clients = Clients::new(&config).await;
        let mut changes = 0;
        for contract in contract_runtime::contract_validators::ALL.iter().copied() {
            let desired = Desired::load(contract, &config.generated).map_err(|e| e.to_string())?;
            let steps = deploy_contract(&clients, &config, &desired, args.apply)
                .await
                .map_err(|e| format!("{}: {e}", contract.name()))?;
            for step in &steps {
                match &step.action {
                    Action::Create => println!("+ create {}", step.resource),
                    Action::Update(what) => {
                        println!("~ update {} ({})", step.resource, what.join(", "))
                    }
                }
            }
            changes += steps.len();
            if args.apply && args.start_job {
                let run = start_job(&clients, &config, &desired)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("started glue job run {run} for {}", contract.name());
            }
        }
        Ok::<usize, String>(changes)
    });
    match result {
        Err(code) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
        Ok(Ok(changes)) => {
            let verb = if args.apply { "applied" } else { "to apply" };
            println!("{changes} change(s) {verb}");
            if args.plan && args.detailed_exitcode && changes > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn status(args: AwsArgs) -> ExitCode {
    use contract_runtime::deploy::{Clients, Desired, status};
    let config = deploy_config(&args);
    let result = block_on(async {
        let clients = Clients::new(&config).await;
        for contract in contract_runtime::contract_validators::ALL.iter().copied() {
            let desired = Desired::load(contract, &config.generated).map_err(|e| e.to_string())?;
            println!("{}:", contract.name());
            for line in status(&clients, &config, &desired).await {
                println!("  {line}");
            }
        }
        Ok::<(), String>(())
    });
    match result {
        Err(code) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
    }
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
