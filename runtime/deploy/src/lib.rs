//! `contract-runtime deploy`: the generated stack on AWS (API Gateway → Kinesis → Glue Spark
//! streaming → Iceberg tables in S3 registered in the Glue Data Catalog).
//!
//! Each resource is read back, compared with what the generated artefacts say it should be,
//! and planned as create, update or nothing (like a terraform plan); `apply` carries the plan
//! out. Applying twice changes nothing the second time, and a resource changed outside shows
//! up as an update (drift). The artefacts come from `generated/`, so what is deployed is
//! byte for byte what `contractc build` produced.
//!
//! Three stages, so a plan can be built and tested without AWS: [`read`] turns what exists
//! into plain data ([`Current`], one part per resource kind), [`plan`] compares it with
//! [`Desired`] without any call, and [`apply`] makes the calls each [`Step`] carries. One
//! module per resource kind holds its read, its part of the plan and its apply; what the
//! resources are called (names, ARNs, tags) is in [`names`], so no resource module needs
//! another one for a name.

pub mod alarms;
mod desired;
pub mod destroy;
pub mod edge;
pub mod function;
pub mod glue;
pub mod iam;
pub mod kinesis;
pub mod logs;
pub mod names;
pub mod queries;
pub mod rest_api;
pub mod s3;
pub mod schedule;
pub mod secrets;
pub mod tags;

pub use desired::Desired;

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use names::Role;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{call}: {message}")]
    Aws { call: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Turns a failed SDK call into a one-line error: the call, the AWS error code and message.
fn aws<E>(call: &'static str) -> impl Fn(SdkError<E>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    move |error| DeployError::Aws {
        call,
        message: describe(call, &error),
    }
}

fn describe<E>(call: &'static str, error: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().unwrap_or_default();
    let message = error.message().unwrap_or_default();
    let status = error.raw_response().map(|r| r.status().as_u16());
    // Emulators answer unimplemented calls with an HTML 500 or a NotImplemented code.
    let body = error
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).to_lowercase())
        .unwrap_or_default();
    if code == "NotImplemented"
        || message.contains("not yet implemented")
        || body.contains("<!doctype html")
    {
        format!("not supported by this endpoint (the call {call} is not implemented)")
    } else if code.contains("AccessDenied") || (code.is_empty() && status == Some(403)) {
        // S3 answers a denied HEAD with a bare 403: no body, so no code.
        format!("access denied: the credentials lack the permission for {call}")
    } else if !code.is_empty() || !message.is_empty() {
        [code, message]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(": ")
    } else if let Some(status) = status {
        // A service answer without a code (a HEAD's error has no body): the status is all.
        format!("HTTP {status} without an error code")
    } else {
        // No service error (timeout, connection refused, …): the error chain says what failed.
        DisplayErrorContext(error).to_string()
    }
}

/// The result of a read whose not-found error means "absent": `Ok(None)` for that error only,
/// any other failure is an error naming the call.
fn found<T, E>(
    call: &'static str,
    result: Result<T, SdkError<E>>,
    not_found: impl Fn(&E) -> bool,
) -> Result<Option<T>, DeployError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.as_service_error().is_some_and(&not_found) => Ok(None),
        Err(error) => Err(aws(call)(error)),
    }
}

fn invalid(error: impl std::fmt::Display) -> DeployError {
    DeployError::Invalid(error.to_string())
}

/// Settings of `deploy` and `status`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub prefix: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub bucket: Option<String>,
    pub glue_role_arn: Option<String>,
    pub api_role_arn: Option<String>,
    pub account_id: String,
    /// Where `contractc build` wrote the artefacts.
    pub generated: PathBuf,
    /// Fixed credentials (access key id, secret) instead of the standard chain: for emulators.
    pub static_credentials: Option<(String, String)>,
    /// The issuer the JWT authorizer trusts for contracts using the dev identity provider
    /// (which does not run on AWS); without it their authorizer is left out, with a note.
    pub dev_issuer: Option<String>,
    /// Glue job size, timeout, retries and concurrency.
    pub job_size: glue::JobSize,
    /// What the front door's routes go to.
    pub door: Door,
    /// The SNS topic told when a quality alarm fires and clears (`--alarm-topic`).
    pub alarm_topic: Option<String>,
    /// When the maintenance job runs: a Glue cron expression (`--maintenance-schedule`).
    pub maintenance_schedule: String,
}

/// The door events enter by, behind the JWT front door.
#[derive(Debug, Clone, PartialEq)]
pub enum Door {
    /// The edge function: serve's judge, every rule of the contract, serve's answers.
    Function(function::Settings),
    /// The REST API: its draft-04 request model and a mapping template to Kinesis. Rules the
    /// model cannot express are judged only by the Glue job (docs/conformance.md).
    Rest,
}

impl DeployConfig {
    /// The edge function's settings, with the Lambda door.
    pub fn function(&self) -> Option<&function::Settings> {
        match &self.door {
            Door::Function(settings) => Some(settings),
            Door::Rest => None,
        }
    }
}

/// The AWS clients, one configuration for all (endpoint, region, credentials chain).
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub glue: aws_sdk_glue::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub apigatewayv2: aws_sdk_apigatewayv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub athena: aws_sdk_athena::Client,
}

impl Clients {
    pub async fn new(config: &DeployConfig) -> Clients {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            // Emulators answer unimplemented calls with 500s: no point in retrying them.
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(if config.endpoint_url.is_some() { 1 } else { 3 }),
            );
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((id, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id, secret, None, None, "static",
            ));
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.endpoint_url.is_some())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            kinesis: aws_sdk_kinesis::Client::new(&shared),
            glue: aws_sdk_glue::Client::new(&shared),
            apigateway: aws_sdk_apigateway::Client::new(&shared),
            apigatewayv2: aws_sdk_apigatewayv2::Client::new(&shared),
            iam: aws_sdk_iam::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            lambda: aws_sdk_lambda::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            athena: aws_sdk_athena::Client::new(&shared),
        }
    }
}

/// What a plan does to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// The resource exists but differs (drift, or a changed contract): what differs.
    Update(Vec<String>),
    /// `deploy --destroy`.
    Delete,
}

impl Action {
    /// `Update(what)` for a resource that exists, else `Create`.
    fn for_existing(exists: bool, what: &str) -> Action {
        if exists {
            Action::Update(vec![what.to_string()])
        } else {
            Action::Create
        }
    }
}

/// One change of a plan: what it is shown as, and what `apply` does to make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// e.g. `glue job contractc-game_events`.
    pub resource: String,
    pub action: Action,
    pub op: Op,
}

/// The calls one step makes, with everything they need (ids of resources that exist already;
/// `None` where an earlier step of the same plan creates the resource).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Iam(iam::Op),
    Logs(logs::Op),
    S3(s3::Op),
    Kinesis(kinesis::Op),
    Glue(glue::Op),
    Secrets(secrets::Op),
    Alarms(alarms::Op),
    Schedule(schedule::Op),
    Queries(queries::Op),
    RestApi(rest_api::Op),
    Edge(edge::Op),
    Function(function::Op),
    Destroy(destroy::Op),
}

/// What `apply` would do for one contract, in order, and notes on what it leaves out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

/// What exists on AWS for one contract, as plain data (read by [`read`], planned by [`plan`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub iam: iam::Current,
    pub logs: logs::Current,
    pub s3: s3::Current,
    pub kinesis: kinesis::Current,
    pub glue: glue::Current,
    /// The key document's secret (shared by the prefix's contracts).
    pub secret: secrets::Current,
    pub rest_api: Option<rest_api::Current>,
    /// `None` when the contract gets no edge (no issuer to trust) or it does not exist.
    pub edge: Option<edge::Current>,
    /// The edge function (`None`: it does not exist).
    pub function: Option<function::Current>,
    /// The quality alarms and the dashboard.
    pub alarms: alarms::Current,
    /// The maintenance job's trigger.
    pub schedule: schedule::Current,
    /// The Athena workgroup and its named queries.
    pub queries: queries::Current,
}

/// Ids of resources created by earlier steps of the apply, for the steps that refer to them.
#[derive(Debug, Default)]
struct Created {
    rest_api: Option<String>,
    validator: Option<String>,
    /// Resource path → id.
    resources: HashMap<String, String>,
    edge_api: Option<String>,
    authorizer: Option<String>,
    /// The contract's route → the edge integration created for it.
    integrations: HashMap<String, String>,
    /// The front door's secret, when this apply generated it.
    edge_secret: Option<String>,
}

/// Picks the id known when planning, else the one an earlier step created.
fn resolve(
    known: &Option<String>,
    created: &Option<String>,
    what: &str,
) -> Result<String, DeployError> {
    known.clone().or_else(|| created.clone()).ok_or_else(|| {
        DeployError::Invalid(format!(
            "no id for the {what}: the step creating it did not run"
        ))
    })
}

/// Reads what exists on AWS for one contract.
pub async fn read(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    Ok(Current {
        iam: iam::read(&clients.iam, config, desired).await?,
        logs: logs::read(clients, config, desired).await?,
        s3: s3::read(
            &clients.s3,
            &config.bucket(),
            [
                &desired.script_key(config),
                &desired.erasure_script_key(config),
                &desired.maintenance_script_key(config),
            ],
        )
        .await?,
        kinesis: kinesis::read(&clients.kinesis, &desired.stream(config)).await?,
        glue: glue::read(&clients.glue, &clients.s3, config, desired).await?,
        secret: secrets::read(&clients.secrets, &config.pii_secret()).await?,
        rest_api: rest_api::read(&clients.apigateway, config, desired).await?,
        edge: match desired.edge_issuer(config) {
            Some(_) => edge::read(&clients.apigatewayv2, config, desired).await?,
            None => None,
        },
        function: function::read(&clients.lambda, config, desired).await?,
        alarms: alarms::read(&clients.cloudwatch, config, desired).await?,
        schedule: schedule::read(&clients.glue, config, desired).await?,
        queries: queries::read(&clients.athena, config, desired).await?,
    })
}

/// The steps that turn `current` into what `desired` says (no AWS calls).
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    current: &Current,
) -> Result<Plan, DeployError> {
    let mut plan = Plan::default();
    // Roles first: the job and the integration name them.
    iam::plan(config, desired, &current.iam, &mut plan.steps);
    // Log groups and the account's logging role before the stages that log to them.
    logs::plan(config, desired, &current.logs, &mut plan.steps);
    s3::plan(config, desired, &current.s3, &mut plan.steps);
    kinesis::plan(config, desired, &current.kinesis, &mut plan.steps);
    // The key before the jobs reading it.
    secrets::plan(config, desired, &current.secret, &mut plan.steps);
    glue::plan(config, desired, &current.glue, &mut plan.steps)?;
    // After the job it starts.
    schedule::plan(config, desired, &current.schedule, &mut plan.steps);
    // After the job publishing what they watch.
    alarms::plan(config, desired, &current.alarms, &mut plan.steps);
    queries::plan(config, desired, &current.queries, &mut plan.steps);
    plan.notes.extend(size_note(desired));
    plan_door(config, desired, current, &mut plan)?;
    Ok(plan)
}

/// The note for a contract whose events may weigh more than the AWS path carries.
fn size_note(desired: &Desired) -> Option<String> {
    let manifest = desired.manifest;
    (manifest.aws_event_limit() < manifest.ingest.max_body_bytes).then(|| {
        format!(
            "{}: events over {} bytes are refused on AWS (a Kinesis record carries 1 MiB, the \
             event base64-encoded in it); serve takes up to ingest.max_body_bytes = {}",
            manifest.name,
            manifest.aws_event_limit(),
            manifest.ingest.max_body_bytes
        )
    })
}

/// The door, and the JWT front door in front of it.
fn plan_door(
    config: &DeployConfig,
    desired: &Desired,
    current: &Current,
    plan: &mut Plan,
) -> Result<(), DeployError> {
    // The front door: an HTTP API whose JWT authorizer checks the token, in front of the door.
    match &config.door {
        Door::Function(settings) => {
            let function = current.function.as_ref();
            function::plan(config, desired, settings, function, plan)?;
            let target = edge::Target::Function(desired.function_arn(config));
            let api_id = edge::plan(config, desired, target, current.edge.as_ref(), plan);
            if desired.edge_issuer(config).is_some() {
                function::plan_permission(config, desired, function, api_id.as_deref(), plan);
            }
            if current.rest_api.is_some() {
                plan.notes.push(format!(
                    "{}: the REST door's API is still there, unused by the front door: delete \
                     it by hand when no client calls it (`--destroy` takes down the whole stack)",
                    desired.api(config)
                ));
            }
        }
        Door::Rest => {
            // The REST API validates the body with its model and puts the record on the
            // stream; the front door forwards to it (REST APIs have no JWT authorizer type).
            let rest_api =
                rest_api::plan(config, desired, current.rest_api.as_ref(), &mut plan.steps);
            let target = edge::Target::RestApi(rest_api);
            edge::plan(config, desired, target, current.edge.as_ref(), plan);
        }
    }
    Ok(())
}

/// Reads one contract's resources and plans their deployment.
pub async fn plan_contract(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Plan, DeployError> {
    let current = read(clients, config, desired).await?;
    plan(config, desired, &current)
}

/// Carries out a plan, step by step, stopping at the first failure.
pub async fn apply(clients: &Clients, plan: &Plan) -> Result<(), DeployError> {
    let mut created = Created::default();
    for step in &plan.steps {
        match &step.op {
            Op::Iam(op) => iam::apply(&clients.iam, op).await?,
            Op::Logs(op) => logs::apply(clients, op).await?,
            Op::S3(op) => s3::apply(&clients.s3, op).await?,
            Op::Kinesis(op) => kinesis::apply(&clients.kinesis, op).await?,
            Op::Glue(op) => glue::apply(&clients.glue, &clients.s3, op).await?,
            Op::Secrets(op) => secrets::apply(&clients.secrets, op).await?,
            Op::Alarms(op) => alarms::apply(&clients.cloudwatch, op).await?,
            Op::Schedule(op) => schedule::apply(&clients.glue, op).await?,
            Op::Queries(op) => queries::apply(&clients.athena, op).await?,
            Op::RestApi(op) => rest_api::apply(&clients.apigateway, op, &mut created).await?,
            Op::Edge(op) => edge::apply(&clients.apigatewayv2, op, &mut created).await?,
            Op::Function(op) => function::apply(&clients.lambda, op, &created).await?,
            Op::Destroy(op) => destroy::apply(clients, op).await?,
        }
    }
    Ok(())
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The account the credentials belong to (STS GetCallerIdentity): ARNs are built with it.
pub async fn account_id(clients: &Clients) -> Result<String, DeployError> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(aws("sts:GetCallerIdentity"))?;
    identity.account().map(str::to_string).ok_or_else(|| {
        DeployError::Invalid("sts:GetCallerIdentity named no account: pass --account-id".into())
    })
}

/// Starts the contract's Glue job; returns the run id.
pub async fn start_job(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<String, DeployError> {
    let run = clients
        .glue
        .start_job_run()
        .job_name(desired.job(config))
        .send()
        .await
        .map_err(aws("glue:StartJobRun"))?;
    Ok(run.job_run_id().unwrap_or_default().to_string())
}

/// One erasure started: which job run forgets the subjects from which contract's tables, and
/// where it writes its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub contract: String,
    pub job: String,
    pub run_id: String,
    pub receipt: String,
}

/// Starts the contract's erasure job for `subjects` (#23): the ids go to an S3 object of the
/// contract's prefix (the job deletes it once it erased them: Glue keeps a run's arguments in
/// its history), the run gets that object's and its receipt's locations. `erasure` names this
/// erasure's objects.
pub async fn forget(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
    subjects: &[String],
    erasure: &str,
) -> Result<Erasure, DeployError> {
    let job = desired.erasure_job(config);
    let got = clients.glue.get_job().job_name(&job).send().await;
    if found("glue:GetJob", got, |e| e.is_entity_not_found_exception())?.is_none() {
        return Err(DeployError::Invalid(format!(
            "{}: no erasure job {job}: deploy first (contract-deploy deploy --apply)",
            desired.manifest.name
        )));
    }
    let bucket = config.bucket();
    let key = desired.erasure_subjects_key(config, erasure);
    let receipt = format!(
        "s3://{bucket}/{}",
        desired.erasure_receipt_key(config, erasure)
    );
    let body: String = subjects.iter().map(|s| format!("{s}\n")).collect();
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.into_bytes()))
        .send()
        .await
        .map_err(aws("s3:PutObject"))?;
    let run = clients
        .glue
        .start_job_run()
        .job_name(&job)
        .arguments("--subjects_file", format!("s3://{bucket}/{key}"))
        .arguments("--receipt_location", &receipt)
        .send()
        .await
        .map_err(aws("glue:StartJobRun"))?;
    Ok(Erasure {
        contract: desired.manifest.name.clone(),
        job,
        run_id: run.job_run_id().unwrap_or_default().to_string(),
        receipt,
    })
}

/// The URLs clients and operators use: the public front door (when the contract has one) and
/// the REST API behind it.
pub fn endpoints(config: &DeployConfig, desired: &Desired, current: &Current) -> Vec<String> {
    let route = &desired.manifest.ingest.route;
    let region = &config.region;
    let mut lines = Vec::new();
    if let Some(edge) = &current.edge {
        lines.push(format!(
            "endpoint (public, JWT): POST https://{}.execute-api.{region}.amazonaws.com{route}",
            edge.api_id
        ));
    }
    if let Some(api) = &current.rest_api {
        lines.push(format!(
            "endpoint (validating, front door only): POST {}",
            names::invoke_url(&api.id, region, route)
        ));
    }
    lines
}

/// One line per resource, the last job run and the endpoints. Reads as `deploy` does, so a
/// read that fails (denied, throttled) is an error naming the call, never "missing".
pub async fn status(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Vec<String>, DeployError> {
    let current = read(clients, config, desired).await?;
    let mut lines = role_lines(config, desired, &current.iam);
    lines.push(bucket_line(config, &current.s3));
    lines.push(stream_line(config, desired, &current.kinesis));
    lines.extend(table_lines(desired, &current.glue));
    let job = desired.job(config);
    let last_run = last_job_run(&clients.glue, &job).await?;
    lines.push(format!(
        "glue job {job}: {}, last run {}",
        present(current.glue.job.is_some()),
        last_run.unwrap_or_else(|| "none".into())
    ));
    lines.push(format!(
        "glue job {}: {}, trigger {}",
        desired.maintenance_job(config),
        present(current.glue.maintenance_job.is_some()),
        current
            .schedule
            .trigger
            .as_ref()
            .map_or("missing".to_string(), |t| t.schedule.clone())
    ));
    lines.extend(api_lines(config, desired, &current));
    lines.extend(alarm_lines(config, desired, &current.alarms));
    lines.push(format!(
        "athena workgroup {}: {}, {} named queries of {}",
        desired.workgroup(config),
        present(current.queries.workgroup),
        current.queries.queries.len(),
        queries::desired_queries(desired).len()
    ));
    lines.extend(endpoints(config, desired, &current));
    Ok(lines)
}

/// Each alert's alarm and the dashboard.
fn alarm_lines(config: &DeployConfig, desired: &Desired, current: &alarms::Current) -> Vec<String> {
    let mut lines: Vec<String> = desired
        .manifest
        .alerts
        .iter()
        .map(|alert| {
            let name = desired.alarm(config, alert);
            format!(
                "cloudwatch alarm {name}: {}",
                present(current.alarms.contains_key(&name))
            )
        })
        .collect();
    lines.push(format!(
        "cloudwatch dashboard {}: {}",
        desired.dashboard(config),
        present(current.dashboard.is_some())
    ));
    lines
}

/// How `status` shows whether a resource exists.
fn present(exists: bool) -> &'static str {
    if exists { "present" } else { "missing" }
}

/// Each role the stack runs as, and whether deploy manages it.
fn role_lines(config: &DeployConfig, desired: &Desired, current: &iam::Current) -> Vec<String> {
    [
        (Role::Glue, &current.glue),
        (Role::ApiGateway, &current.api),
        (Role::Edge, &current.edge),
    ]
    .into_iter()
    .filter(|(kind, role)| iam::used(config, *kind) || role.is_some())
    .map(|(kind, role)| {
        let arn = desired.role_arn(config, kind);
        let state = match (role, iam::managed(config, kind)) {
            (_, false) => "given, not managed",
            (Some(_), true) => "present",
            (None, true) => "missing",
        };
        format!("iam role {arn}: {state}")
    })
    .collect()
}

fn bucket_line(config: &DeployConfig, current: &s3::Current) -> String {
    let settings = &current.settings;
    let shown = if current.bucket {
        format!(
            " (versioned: {}, public access blocked: {}, encrypted: {})",
            settings.versioned, settings.public_access_blocked, settings.encrypted
        )
    } else {
        String::new()
    };
    format!(
        "s3 bucket {}: {}{shown}",
        config.bucket(),
        present(current.bucket)
    )
}

fn stream_line(config: &DeployConfig, desired: &Desired, current: &kinesis::Current) -> String {
    let state = if current.stream {
        current.status.as_str()
    } else {
        "missing"
    };
    let encrypted = if current.encrypted {
        ", KMS-encrypted"
    } else {
        ""
    };
    format!(
        "kinesis stream {}: {state}{encrypted}",
        desired.stream(config)
    )
}

/// Each of the contract's tables, with the Iceberg metadata file it points to.
fn table_lines(desired: &Desired, current: &glue::Current) -> Vec<String> {
    let database = &desired.manifest.table.database;
    desired
        .table_names()
        .into_iter()
        .map(|name| {
            let table = current.tables.get(&name);
            let metadata = table
                .and_then(|t| t.parameters.get(glue::METADATA_LOCATION))
                .map(|m| format!(", iceberg metadata {m}"))
                .unwrap_or_default();
            format!(
                "glue table {database}.{name}: {}{metadata}",
                present(table.is_some())
            )
        })
        .collect()
}

/// The job's last run, as `id STATE` (`None`: no run, or no job).
async fn last_job_run(
    client: &aws_sdk_glue::Client,
    job: &str,
) -> Result<Option<String>, DeployError> {
    let runs = client
        .get_job_runs()
        .job_name(job)
        .max_results(1)
        .send()
        .await;
    let runs = found("glue:GetJobRuns", runs, |e| {
        e.is_entity_not_found_exception()
    })?;
    Ok(runs.and_then(|runs| {
        runs.job_runs().first().map(|run| {
            format!(
                "{} {}",
                run.id().unwrap_or_default(),
                run.job_run_state().map(|s| s.as_str()).unwrap_or("?")
            )
        })
    }))
}

/// The door (the edge function, or the REST API), and the HTTP API in front when the
/// contract gets one.
fn api_lines(config: &DeployConfig, desired: &Desired, current: &Current) -> Vec<String> {
    // Each door that is chosen or still there: a stack moving between doors shows both.
    let mut lines = Vec::new();
    if config.function().is_some() || current.function.is_some() {
        lines.push(format!(
            "lambda function {}: {}",
            desired.function(config),
            present(current.function.is_some())
        ));
    }
    if config.function().is_none() || current.rest_api.is_some() {
        lines.push(format!(
            "api gateway rest api {}: {}",
            desired.api(config),
            present(current.rest_api.is_some())
        ));
    }
    if desired.edge_issuer(config).is_some() {
        lines.push(format!(
            "api gateway http api {}: {}",
            desired.edge_api(config),
            present(current.edge.is_some())
        ));
    }
    lines
}

#[cfg(test)]
mod tests;
