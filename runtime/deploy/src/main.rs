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

fn deploy(args: DeployArgs) -> ExitCode {
    use contract_deploy::{Action, Clients, Desired, apply, plan_contract, start_job};
    if !args.plan && !args.apply {
        eprintln!("error: give --plan or --apply");
        return ExitCode::from(2);
    }
    let config = deploy_config(&args.aws);
    let result = block_on(async {
        let clients = Clients::new(&config).await;
        let mut changes = 0;
        for contract in contract_validators::ALL {
            let desired =
                Desired::load(contract.manifest(), &config.generated).map_err(|e| e.to_string())?;
            let name = &contract.manifest().name;
            let plan = plan_contract(&clients, &config, &desired)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            if args.apply {
                apply(&clients, &plan)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            for note in &plan.notes {
                println!("note: {note}");
            }
            for step in &plan.steps {
                match &step.action {
                    Action::Create => println!("+ create {}", step.resource),
                    Action::Update(what) => {
                        println!("~ update {} ({})", step.resource, what.join(", "))
                    }
                }
            }
            changes += plan.steps.len();
            if args.apply && args.start_job {
                let run = start_job(&clients, &config, &desired)
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "started glue job run {run} for {}",
                    contract.manifest().name
                );
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
    use contract_deploy::{Clients, Desired, status};
    let config = deploy_config(&args);
    let result = block_on(async {
        let clients = Clients::new(&config).await;
        for contract in contract_validators::ALL {
            let desired =
                Desired::load(contract.manifest(), &config.generated).map_err(|e| e.to_string())?;
            println!("{}:", contract.manifest().name);
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
