//! `contract-deploy`: a thin CLI over the deploy library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "contract-deploy",
    version,
    about = "Deploy the stack compiled by contractc to AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy the generated stack to AWS: plan, apply, start the Glue job
    #[command(
        long_about = "Deploy every contract's generated stack to AWS: least-privilege IAM roles, \
an S3 bucket (versioned, private, encrypted) with the Glue script, a KMS-encrypted Kinesis stream \
(on demand), the Glue database, the Iceberg events and quarantine tables (metadata in S3, \
registered in Glue, evolved with the contract) and the stream table, the Glue 5.0 streaming job, \
the door (--door lambda, the default: the edge function, judging every event as serve does, with \
its role, log group and concurrency; --door rest: an API Gateway REST API with the request \
model, a body validator, the Kinesis integration and its responses, and a shared secret), the \
JWT front door (HTTP API) routing to it, and access logs. --plan \
prints what would change and changes nothing; --apply makes it so; both are idempotent. \
--destroy plans or applies the tear-down.\n\nWith --plan --detailed-exitcode: \
exit 0 when there is nothing to change, 2 when there is, 1 on error. Credentials come from the \
standard AWS chain; nothing secret is printed."
    )]
    Deploy(DeployArgs),
    /// Show each deployed resource and the last Glue job run
    Status(AwsArgs),
    /// Start each contract's erasure job to forget data subjects (docs/privacy.md)
    #[command(
        long_about = "Erase data subjects (GDPR Art. 17) on AWS: for each contract naming a data \
subject, write the ids to an S3 object under the contract's prefix and start its erasure job \
(deployed by `deploy --apply`), which deletes their rows from the events and quarantine tables, \
rewrites the manifests, expires the older snapshots (deleting the files only they referenced), \
deletes the ids' object and writes a receipt. Prints each run id and receipt location. Deleted \
objects stay as noncurrent versions until the bucket's lifecycle rule expires them (a day)."
    )]
    Forget(ForgetArgs),
}

#[derive(clap::Args)]
struct ForgetArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// A data subject to erase (the token's subject, or the contract's `privacy.subject`);
    /// repeatable
    #[arg(long = "subject", value_name = "ID")]
    subjects: Vec<String>,
    /// A file of data subjects, one per line (`#` comments and blank lines skipped)
    #[arg(long, value_name = "FILE")]
    subjects_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let manifests: Vec<&contract_support::Manifest> = contract_validators::ALL
        .iter()
        .map(|c| c.manifest())
        .collect();
    if let Err(stale) =
        contract_support::manifest::freshness::check(std::path::Path::new("."), &manifests)
    {
        eprintln!("error: {stale}");
        return ExitCode::from(1);
    }
    match cli.command {
        Command::Deploy(args) => deploy(args),
        Command::Status(args) => status(args),
        Command::Forget(args) => forget(args),
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
    /// IAM role the Glue job runs as (default: the role PREFIX-<contract>-glue, created and
    /// kept least-privilege by deploy)
    #[arg(long)]
    glue_role_arn: Option<String>,
    /// IAM role API Gateway uses to write to Kinesis (default: the role
    /// PREFIX-<contract>-apigateway, created and kept least-privilege by deploy)
    #[arg(long)]
    api_role_arn: Option<String>,
    /// Account id for role, stream and catalog ARNs (default: AWS_ACCOUNT_ID, else the
    /// credentials' account from STS GetCallerIdentity)
    #[arg(long)]
    account_id: Option<String>,
    /// Where `contractc build` wrote the artefacts
    #[arg(long, default_value = "generated")]
    generated: PathBuf,
    /// Issuer URL the JWT authorizer trusts for contracts using the dev identity provider
    #[arg(long)]
    issuer_url: Option<String>,
    /// Glue worker type of each job
    #[arg(long, default_value = "G.1X")]
    glue_worker_type: String,
    /// Glue workers of each job
    #[arg(long, default_value_t = 2)]
    glue_workers: i32,
    /// Glue job timeout in minutes (default: Glue's; a streaming job restarts after 7 days)
    #[arg(long)]
    glue_timeout_minutes: Option<i32>,
    /// Glue job retries after a failed run
    #[arg(long, default_value_t = 1)]
    glue_max_retries: i32,
    /// The door behind the JWT front door: `lambda`, the edge function (serve's judge: every
    /// rule of the contract, serve's answers), or `rest`, the REST API (its draft-04 model and
    /// a mapping template; other rules are judged only by the Glue job)
    #[arg(long, value_enum, default_value = "lambda")]
    door: DoorKind,
    /// The edge function's zip (`cargo lambda build --release --x86-64 --output-format zip -p
    /// contract-edge` writes it to the default)
    #[arg(long, default_value = "target/lambda/contract-edge/bootstrap.zip")]
    edge_zip: PathBuf,
    /// The edge function's memory (MB; Lambda gives CPU in proportion)
    #[arg(long, default_value_t = 256)]
    edge_memory_mb: i32,
    /// The edge function's timeout (seconds)
    #[arg(long, default_value_t = 10)]
    edge_timeout_seconds: i32,
    /// The edge function's reserved concurrency: at most this many requests judged at once,
    /// the rest throttled by Lambda (default: the account's unreserved pool)
    #[arg(long)]
    edge_reserved_concurrency: Option<i32>,
    /// The SNS topic (ARN) the quality alarms (the contracts' `quality.alerts`) notify when
    /// they fire and when they clear (default: no notification; the dashboard shows them)
    #[arg(long, value_name = "ARN")]
    alarm_topic: Option<String>,
    /// When each contract's maintenance job runs (compaction, manifests, snapshot expiry,
    /// orphan files): a Glue cron expression, UTC
    #[arg(long, default_value = contract_deploy::schedule::DEFAULT_SCHEDULE)]
    maintenance_schedule: String,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum DoorKind {
    Lambda,
    Rest,
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
    /// With --plan: print what would be deleted; with --apply: delete it (every contract's
    /// resources, then the bucket)
    #[arg(long)]
    destroy: bool,
    /// With --destroy: delete the bucket even when it holds table data
    #[arg(long, requires = "destroy")]
    force_delete_data: bool,
    /// Write the IAM policy the deploying identity needs to FILE (with --plan/--apply: and
    /// go on; alone: only that)
    #[arg(long, value_name = "FILE")]
    policy_out: Option<PathBuf>,
}

fn deploy_config(args: &AwsArgs) -> contract_deploy::DeployConfig {
    contract_deploy::DeployConfig {
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
        // Empty: asked from STS once the clients exist (`with_account`).
        account_id: args
            .account_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCOUNT_ID").ok())
            .unwrap_or_default(),
        generated: args.generated.clone(),
        static_credentials: None,
        dev_issuer: args.issuer_url.clone(),
        job_size: contract_deploy::glue::JobSize {
            worker_type: args.glue_worker_type.clone(),
            workers: args.glue_workers,
            timeout_minutes: args.glue_timeout_minutes,
            max_retries: args.glue_max_retries,
            // One run at a time: two runs of a streaming job would read the stream twice.
            max_concurrent_runs: 1,
        },
        door: door(args),
        alarm_topic: args.alarm_topic.clone(),
        maintenance_schedule: args.maintenance_schedule.clone(),
    }
}

/// The door the flags choose; the edge function's zip is read when it exists (`deploy` without
/// it stops at the plan, naming the build command).
fn door(args: &AwsArgs) -> contract_deploy::Door {
    match args.door {
        DoorKind::Rest => contract_deploy::Door::Rest,
        DoorKind::Lambda => {
            let code = std::fs::read(&args.edge_zip)
                .ok()
                .map(contract_deploy::function::Code::new);
            contract_deploy::Door::Function(contract_deploy::function::Settings {
                code,
                memory_mb: args.edge_memory_mb,
                timeout_seconds: args.edge_timeout_seconds,
                reserved_concurrency: args.edge_reserved_concurrency,
            })
        }
    }
}

/// The clients, and the config with its account id (from STS when none was given).
async fn with_account(
    mut config: contract_deploy::DeployConfig,
) -> Result<(contract_deploy::Clients, contract_deploy::DeployConfig), String> {
    let clients = contract_deploy::Clients::new(&config).await;
    if config.account_id.is_empty() {
        config.account_id = contract_deploy::account_id(&clients)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok((clients, config))
}

fn deploy(args: DeployArgs) -> ExitCode {
    if !args.plan && !args.apply && args.policy_out.is_none() {
        eprintln!("error: give --plan, --apply or --policy-out FILE");
        return ExitCode::from(2);
    }
    match block_on(run_deploy(&args)) {
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

fn forget(args: ForgetArgs) -> ExitCode {
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
    match block_on(run_forget(&args.aws, &subjects)) {
        Err(code) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
    }
}

/// Starts every subject-naming contract's erasure job; prints each run.
async fn run_forget(aws: &AwsArgs, subjects: &[String]) -> Result<(), String> {
    let (clients, config) = with_account(deploy_config(aws)).await?;
    let erasure = uuid::Uuid::now_v7().to_string();
    for contract in contract_validators::ALL {
        let manifest = contract.manifest();
        if manifest.subject.is_none() {
            println!("{}: names no data subject; nothing to erase", manifest.name);
            continue;
        }
        let desired = contract_deploy::Desired::load(manifest, &config.generated)
            .map_err(|e| e.to_string())?;
        let started = contract_deploy::forget(&clients, &config, &desired, subjects, &erasure)
            .await
            .map_err(|e| format!("{}: {e}", manifest.name))?;
        println!(
            "{}: erasure job {} run {} started for {} subject(s); receipt {}",
            started.contract,
            started.job,
            started.run_id,
            subjects.len(),
            started.receipt
        );
    }
    Ok(())
}

/// `deploy`: writes the policy file when asked, then plans (and applies) every contract's
/// stack, or its tear-down; returns the number of changes.
async fn run_deploy(args: &DeployArgs) -> Result<usize, String> {
    let (clients, config) = with_account(deploy_config(&args.aws)).await?;
    if let Some(path) = &args.policy_out {
        write_deployer_policy(&config, path)?;
        if !args.plan && !args.apply {
            return Ok(0);
        }
    }
    if args.destroy {
        return destroy(&clients, &config, args).await;
    }
    let mut changes = 0;
    for contract in contract_validators::ALL {
        changes += deploy_contract(&clients, &config, args, contract.manifest()).await?;
    }
    Ok(changes)
}

/// `--policy-out`: the policy the deploying identity needs, as JSON.
fn write_deployer_policy(
    config: &contract_deploy::DeployConfig,
    path: &std::path::Path,
) -> Result<(), String> {
    let policy = contract_deploy::iam::deployer_policy(config);
    let text = serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "wrote the deploying identity's IAM policy to {}",
        path.display()
    );
    Ok(())
}

/// Plans one contract's stack and prints the plan; with `--apply` applies it, prints the
/// endpoints and (with `--start-job`) starts the job. Returns the number of steps.
async fn deploy_contract(
    clients: &contract_deploy::Clients,
    config: &contract_deploy::DeployConfig,
    args: &DeployArgs,
    manifest: &'static contract_support::Manifest,
) -> Result<usize, String> {
    use contract_deploy::{Desired, apply, endpoints, plan_contract, read, start_job};
    let desired = Desired::load(manifest, &config.generated).map_err(|e| e.to_string())?;
    let name = &manifest.name;
    let plan = plan_contract(clients, config, &desired)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if args.apply {
        apply(clients, &plan)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
    }
    print_plan(&plan);
    if args.apply {
        // Read again: the ids of what this apply created.
        let current = read(clients, config, &desired)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        for line in endpoints(config, &desired, &current) {
            println!("{name}: {line}");
        }
        if args.start_job {
            let run = start_job(clients, config, &desired)
                .await
                .map_err(|e| e.to_string())?;
            println!("started glue job run {run} for {name}");
        }
    }
    Ok(plan.steps.len())
}

/// A plan's notes, then its steps, one line each.
fn print_plan(plan: &contract_deploy::Plan) {
    use contract_deploy::Action;
    for note in &plan.notes {
        println!("note: {note}");
    }
    for step in &plan.steps {
        match &step.action {
            Action::Create => println!("+ create {}", step.resource),
            Action::Update(what) => {
                println!("~ update {} ({})", step.resource, what.join(", "))
            }
            Action::Delete => println!("- delete {}", step.resource),
        }
    }
}

/// `--destroy`: plans every contract's deletions and the bucket's, prints them, and (with
/// `--apply`) deletes. A refused bucket stops it before anything is deleted.
async fn destroy(
    clients: &contract_deploy::Clients,
    config: &contract_deploy::DeployConfig,
    args: &DeployArgs,
) -> Result<usize, String> {
    use contract_deploy::{Desired, destroy, read};
    let mut plans = Vec::new();
    for contract in contract_validators::ALL {
        let name = &contract.manifest().name;
        let desired =
            Desired::load(contract.manifest(), &config.generated).map_err(|e| e.to_string())?;
        let current = read(clients, config, &desired)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        plans.push(destroy::plan(config, &desired, &current));
    }
    let contents = destroy::read_bucket(&clients.s3, &config.bucket_name())
        .await
        .map_err(|e| e.to_string())?;
    let bucket = destroy::plan_bucket(config, contents.as_ref(), args.force_delete_data)
        .map_err(|e| e.to_string())?;
    let secret = contract_deploy::secrets::read(&clients.secrets, &config.pii_secret())
        .await
        .map_err(|e| e.to_string())?;
    let mut plan = contract_deploy::Plan::default();
    for part in plans {
        plan.steps.extend(part.steps);
        plan.notes.extend(part.notes);
    }
    plan.steps.extend(destroy::plan_secret(config, &secret));
    plan.steps.extend(bucket);
    print_plan(&plan);
    if args.apply {
        contract_deploy::apply(clients, &plan)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(plan.steps.len())
}

fn status(args: AwsArgs) -> ExitCode {
    use contract_deploy::{Desired, status};
    let result = block_on(async {
        let (clients, config) = with_account(deploy_config(&args)).await?;
        for contract in contract_validators::ALL {
            let desired =
                Desired::load(contract.manifest(), &config.generated).map_err(|e| e.to_string())?;
            println!("{}:", contract.manifest().name);
            let lines = status(&clients, &config, &desired)
                .await
                .map_err(|e| format!("{}: {e}", contract.manifest().name))?;
            for line in lines {
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
