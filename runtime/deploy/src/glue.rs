//! The Glue Data Catalog (database, Iceberg events and quarantine tables, the stream table) and
//! the Glue streaming job.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::Client;
use aws_sdk_glue::types::{
    Column, DatabaseInput, ExecutionProperty, JobCommand, JobUpdate, StorageDescriptor, Table,
    TableInput, WorkerType,
};
use aws_sdk_s3::primitives::ByteStream;
use contract_support::manifest::{Origin, TableDef};
use serde_json::Value;

use crate::names::Role;
use crate::tags::{self, Tags};
use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid, short_hash};

const GLUE_VERSION: &str = "5.0";

/// What exists in the catalog and the job, as far as the plan compares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub database: bool,
    /// Table name → table, for the tables that exist.
    pub tables: BTreeMap<String, TableState>,
    pub job: Option<JobState>,
    /// The erasure job (#23).
    pub erasure_job: Option<JobState>,
    /// The maintenance job (#24).
    pub maintenance_job: Option<JobState>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableState {
    pub parameters: HashMap<String, String>,
    /// (name, type), in order.
    pub columns: Vec<(String, String)>,
    /// The Iceberg metadata the entry's `metadata_location` points to, read back from S3;
    /// `None` when the entry has no such parameter or the file is gone.
    pub metadata: Option<Value>,
}

impl TableState {
    fn metadata_location(&self) -> Option<&str> {
        self.parameters.get(METADATA_LOCATION).map(String::as_str)
    }
}

/// The Glue table parameter Iceberg's catalogs (Java, pyiceberg) load a table from.
pub const METADATA_LOCATION: &str = "metadata_location";
/// The one before it, set on every commit.
pub const PREVIOUS_METADATA_LOCATION: &str = "previous_metadata_location";

/// What a create or update of an Iceberg table's catalog entry does with its metadata file.
#[derive(Debug, Clone, PartialEq)]
pub enum Metadata {
    /// The entry's metadata is current: keep pointing at it (an update of the entry must not
    /// drop the parameters Iceberg loads the table from).
    Keep {
        location: String,
        previous: Option<String>,
    },
    /// Write the metadata of a new, empty table under `location` (the table's directory).
    New { table: TableDef, location: String },
    /// Write the next metadata file: `previous` evolved to `table`.
    Evolve {
        table: TableDef,
        previous: Box<Value>,
        previous_location: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    pub script_location: Option<String>,
    pub glue_version: Option<String>,
    pub role: Option<String>,
    pub arguments: BTreeMap<String, String>,
    pub size: JobSize,
    pub tags: Tags,
}

/// How big a job runs, how long, how often it is retried, how many runs at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSize {
    pub worker_type: String,
    pub workers: i32,
    /// Minutes; `None`: Glue's default (a streaming job is restarted after 7 days).
    pub timeout_minutes: Option<i32>,
    pub max_retries: i32,
    pub max_concurrent_runs: i32,
}

impl Default for JobSize {
    /// The reference stack's: two G.1X workers, one run at a time (a second run of a
    /// streaming job would read the stream twice), one retry.
    fn default() -> JobSize {
        JobSize {
            worker_type: "G.1X".into(),
            workers: 2,
            timeout_minutes: None,
            max_retries: 1,
            max_concurrent_runs: 1,
        }
    }
}

/// What a job runs as: Glue's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The streaming job (`gluestreaming`), reading the contract's stream.
    Streaming,
    /// The erasure job (`glueetl`), started by `contract-deploy forget` (#23).
    Erasure,
    /// The maintenance job (`glueetl`), started on a schedule (#24, schedule.rs).
    Maintenance,
}

impl JobKind {
    fn command(self) -> &'static str {
        match self {
            JobKind::Streaming => "gluestreaming",
            JobKind::Erasure | JobKind::Maintenance => "glueetl",
        }
    }
}

/// The job as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub kind: JobKind,
    pub name: String,
    pub role: String,
    pub script_location: String,
    pub arguments: BTreeMap<String, String>,
    pub size: JobSize,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateDatabase {
        name: String,
    },
    // Boxed: a table input is far larger than the other steps.
    CreateTable {
        database: String,
        input: Box<TableInput>,
        /// For Iceberg tables: the metadata the entry points to.
        iceberg: Option<Metadata>,
    },
    UpdateTable {
        database: String,
        input: Box<TableInput>,
        iceberg: Option<Metadata>,
    },
    CreateJob(JobSpec),
    UpdateJob(JobSpec),
    TagJob {
        arn: String,
        change: tags::Change,
    },
}

pub async fn read(
    client: &Client,
    s3: &aws_sdk_s3::Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    let database = desired.manifest.table.database.as_str();
    let got = client.get_database().name(database).send().await;
    let present = found("glue:GetDatabase", got, |e| {
        e.is_entity_not_found_exception()
    })?;
    let mut tables = BTreeMap::new();
    // Without the database there are no tables to read.
    if present.is_some() {
        for name in desired.table_names() {
            let got = client
                .get_table()
                .database_name(database)
                .name(&name)
                .send()
                .await;
            let table = found("glue:GetTable", got, |e| e.is_entity_not_found_exception())?;
            if let Some(table) = table.and_then(|t| t.table) {
                let mut state = table_state(&table);
                if let Some(location) = state.metadata_location() {
                    state.metadata = read_metadata(s3, location).await?;
                }
                tables.insert(name, state);
            }
        }
    }
    Ok(Current {
        database: present.is_some(),
        tables,
        job: read_job(client, &desired.job(config), &desired.job_arn(config)).await?,
        erasure_job: read_job(
            client,
            &desired.erasure_job(config),
            &desired.erasure_job_arn(config),
        )
        .await?,
        maintenance_job: read_job(
            client,
            &desired.maintenance_job(config),
            &desired.maintenance_job_arn(config),
        )
        .await?,
    })
}

async fn read_job(client: &Client, name: &str, arn: &str) -> Result<Option<JobState>, DeployError> {
    let got = client.get_job().job_name(name).send().await;
    match found("glue:GetJob", got, |e| e.is_entity_not_found_exception())?.and_then(|j| j.job) {
        Some(job) => Ok(Some(job_state(&job, read_tags(client, arn).await?))),
        None => Ok(None),
    }
}

async fn read_tags(client: &Client, arn: &str) -> Result<Tags, DeployError> {
    let got = client
        .get_tags()
        .resource_arn(arn)
        .send()
        .await
        .map_err(aws("glue:GetTags"))?;
    Ok(tags::from_map(got.tags()))
}

fn job_state(job: &aws_sdk_glue::types::Job, tags: Tags) -> JobState {
    JobState {
        script_location: job
            .command()
            .and_then(|c| c.script_location())
            .map(str::to_string),
        glue_version: job.glue_version().map(str::to_string),
        role: job.role().map(str::to_string),
        arguments: job
            .default_arguments()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        size: JobSize {
            worker_type: job
                .worker_type()
                .map(|w| w.as_str().to_string())
                .unwrap_or_default(),
            workers: job.number_of_workers().unwrap_or_default(),
            timeout_minutes: job.timeout(),
            max_retries: job.max_retries(),
            max_concurrent_runs: job
                .execution_property()
                .map(|e| e.max_concurrent_runs())
                .unwrap_or_default(),
        },
        tags,
    }
}

fn table_state(table: &Table) -> TableState {
    TableState {
        parameters: table.parameters().cloned().unwrap_or_default(),
        columns: columns(table.storage_descriptor()),
        metadata: None,
    }
}

/// `s3://bucket/key` → (bucket, key).
pub fn split_s3_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("s3://")?.split_once('/')
}

/// The Iceberg metadata file at `location`; `None` when the object does not exist.
async fn read_metadata(
    s3: &aws_sdk_s3::Client,
    location: &str,
) -> Result<Option<Value>, DeployError> {
    let Some((bucket, key)) = split_s3_url(location) else {
        return Err(DeployError::Invalid(format!(
            "glue table parameter {METADATA_LOCATION} = {location}: not an s3:// URL; fix or drop the parameter"
        )));
    };
    let got = s3.get_object().bucket(bucket).key(key).send().await;
    let Some(object) = found("s3:GetObject", got, |e| e.is_no_such_key())? else {
        return Ok(None);
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| DeployError::Aws {
            call: "s3:GetObject",
            message: format!("{location}: {e}"),
        })?
        .into_bytes();
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DeployError::Invalid(format!("{location}: not Iceberg metadata JSON: {e}")))
}

fn columns(descriptor: Option<&StorageDescriptor>) -> Vec<(String, String)> {
    descriptor
        .map(|s| {
            s.columns()
                .iter()
                .map(|c| {
                    (
                        c.name().to_string(),
                        c.r#type().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    current: &Current,
    steps: &mut Vec<Step>,
) -> Result<(), DeployError> {
    let database = desired.manifest.table.database.clone();
    if !current.database {
        steps.push(Step {
            resource: format!("glue database {database}"),
            action: Action::Create,
            op: crate::Op::Glue(Op::CreateDatabase {
                name: database.clone(),
            }),
        });
    }
    let events = desired.manifest.events_table();
    let quarantine = desired.manifest.quarantine_table();
    let inputs = [
        (desired.iceberg_table_input(config, &events)?, Some(events)),
        (
            desired.iceberg_table_input(config, &quarantine)?,
            Some(quarantine),
        ),
        (desired.stream_table_input(config)?, None),
    ];
    for (input, definition) in inputs {
        let name = input.name().to_string();
        let location = input
            .storage_descriptor()
            .and_then(|s| s.location())
            .unwrap_or_default()
            .to_string();
        let (action, op) = match current.tables.get(&name) {
            None => (
                Action::Create,
                Op::CreateTable {
                    database: database.clone(),
                    input: Box::new(input),
                    iceberg: definition.map(|table| Metadata::New { table, location }),
                },
            ),
            Some(table) => {
                let mut differs = table_differences(&input, table);
                let iceberg = match definition {
                    Some(definition) => Some(plan_metadata(
                        &format!("{database}.{name}"),
                        definition,
                        location,
                        table,
                        &mut differs,
                    )?),
                    None => None,
                };
                if differs.is_empty() {
                    continue;
                }
                (
                    Action::Update(differs),
                    Op::UpdateTable {
                        database: database.clone(),
                        input: Box::new(input),
                        iceberg,
                    },
                )
            }
        };
        steps.push(Step {
            resource: format!("glue table {database}.{name}"),
            action,
            op: crate::Op::Glue(op),
        });
    }
    plan_jobs(config, desired, current, steps);
    Ok(())
}

/// The streaming and maintenance jobs, and the erasure job when the contract names its data
/// subject.
fn plan_jobs(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let streaming = desired.streaming_job_spec(config);
    plan_job(
        streaming,
        &desired.job_arn(config),
        current.job.as_ref(),
        steps,
    );
    if desired.erasure_script.is_some() {
        let erasure = desired.erasure_job_spec(config);
        let arn = desired.erasure_job_arn(config);
        plan_job(erasure, &arn, current.erasure_job.as_ref(), steps);
    }
    let maintenance = desired.maintenance_job_spec(config);
    let arn = desired.maintenance_job_arn(config);
    plan_job(maintenance, &arn, current.maintenance_job.as_ref(), steps);
}

/// What becomes of an existing Iceberg table's metadata: kept when it matches the definition,
/// evolved when the contract changed compatibly (what changes is added to `differs`), written
/// anew when the entry has none (a catalog entry without metadata is no Iceberg table).
fn plan_metadata(
    table_name: &str,
    definition: TableDef,
    location: String,
    table: &TableState,
    differs: &mut Vec<String>,
) -> Result<Metadata, DeployError> {
    let (Some(metadata), Some(current)) = (&table.metadata, table.metadata_location()) else {
        differs.push("iceberg metadata missing".into());
        return Ok(Metadata::New {
            table: definition,
            location,
        });
    };
    let changes = definition.metadata_changes(metadata).map_err(|reason| {
        DeployError::Invalid(format!(
            "glue table {table_name}: the contract change cannot be applied to the Iceberg table: {reason}"
        ))
    })?;
    if changes.is_empty() {
        return Ok(Metadata::Keep {
            location: current.to_string(),
            previous: table.parameters.get(PREVIOUS_METADATA_LOCATION).cloned(),
        });
    }
    differs.extend(changes.into_iter().map(|c| format!("iceberg {c}")));
    Ok(Metadata::Evolve {
        table: definition,
        previous: Box::new(metadata.clone()),
        previous_location: current.to_string(),
    })
}

/// What differs between a table and its input: parameters it lacks or has other values of
/// (parameters Glue or Athena add are left alone), and the columns.
fn table_differences(input: &TableInput, table: &TableState) -> Vec<String> {
    let mut differs: Vec<String> = input
        .parameters()
        .map(|want| {
            let mut keys: Vec<&String> = want
                .iter()
                .filter(|(k, v)| table.parameters.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .collect();
            // HashMap order is random; the plan is not.
            keys.sort();
            keys.into_iter().map(|k| format!("parameter {k}")).collect()
        })
        .unwrap_or_default();
    if columns(input.storage_descriptor()) != table.columns {
        differs.push("columns".into());
    }
    differs
}

fn plan_job(spec: JobSpec, arn: &str, current: Option<&JobState>, steps: &mut Vec<Step>) {
    let resource = format!("glue job {}", spec.name);
    let Some(job) = current else {
        steps.push(Step {
            resource,
            action: Action::Create,
            op: crate::Op::Glue(Op::CreateJob(spec)),
        });
        return;
    };
    let mut differs = Vec::new();
    if job.script_location.as_deref() != Some(spec.script_location.as_str()) {
        differs.push("script location".to_string());
    }
    if job.glue_version.as_deref() != Some(GLUE_VERSION) {
        differs.push("glue version".into());
    }
    if job.role.as_deref() != Some(spec.role.as_str()) {
        differs.push("role".into());
    }
    if job.arguments != spec.arguments {
        differs.push("arguments".into());
    }
    // A job without a timeout reads back as Glue's default: only a set timeout is compared.
    let size_differs = JobSize {
        timeout_minutes: spec.size.timeout_minutes.or(job.size.timeout_minutes),
        ..spec.size.clone()
    } != job.size;
    if size_differs {
        differs.push("size, timeout, retries or concurrency".into());
    }
    // Tags are their own calls: `UpdateJob` takes none.
    if let Some(change) = tags::change(&spec.tags, &job.tags) {
        steps.push(Step {
            resource: resource.clone(),
            action: Action::Update(vec![change.describe()]),
            op: crate::Op::Glue(Op::TagJob {
                arn: arn.to_string(),
                change,
            }),
        });
    }
    if !differs.is_empty() {
        steps.push(Step {
            resource,
            action: Action::Update(differs),
            op: crate::Op::Glue(Op::UpdateJob(spec)),
        });
    }
}

pub async fn apply(client: &Client, s3: &aws_sdk_s3::Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateDatabase { name } => create_database(client, name).await,
        Op::CreateTable {
            database,
            input,
            iceberg,
        } => {
            let input = with_metadata(s3, input, iceberg.as_ref()).await?;
            create_table(client, database, input).await
        }
        Op::UpdateTable {
            database,
            input,
            iceberg,
        } => {
            let input = with_metadata(s3, input, iceberg.as_ref()).await?;
            update_table(client, database, input).await
        }
        Op::CreateJob(spec) => create_job(client, spec).await,
        Op::UpdateJob(spec) => update_job(client, spec).await,
        Op::TagJob { arn, change } => tag_job(client, arn, change).await,
    }
}

async fn create_database(client: &Client, name: &str) -> Result<(), DeployError> {
    let input = DatabaseInput::builder()
        .name(name)
        .build()
        .map_err(invalid)?;
    client
        .create_database()
        .database_input(input)
        .send()
        .await
        .map_err(aws("glue:CreateDatabase"))?;
    Ok(())
}

async fn create_table(
    client: &Client,
    database: &str,
    input: TableInput,
) -> Result<(), DeployError> {
    client
        .create_table()
        .database_name(database)
        .table_input(input)
        .send()
        .await
        .map_err(aws("glue:CreateTable"))?;
    Ok(())
}

async fn update_table(
    client: &Client,
    database: &str,
    input: TableInput,
) -> Result<(), DeployError> {
    client
        .update_table()
        .database_name(database)
        .table_input(input)
        .send()
        .await
        .map_err(aws("glue:UpdateTable"))?;
    Ok(())
}

async fn create_job(client: &Client, spec: &JobSpec) -> Result<(), DeployError> {
    client
        .create_job()
        .name(&spec.name)
        .role(&spec.role)
        .command(command(spec))
        .glue_version(GLUE_VERSION)
        .set_default_arguments(Some(arguments(spec)))
        .worker_type(WorkerType::from(spec.size.worker_type.as_str()))
        .number_of_workers(spec.size.workers)
        .set_timeout(spec.size.timeout_minutes)
        .max_retries(spec.size.max_retries)
        .execution_property(execution(spec))
        .set_tags(Some(spec.tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(aws("glue:CreateJob"))?;
    Ok(())
}

/// Sets everything of the job but its tags (`UpdateJob` takes none: see `tag_job`).
async fn update_job(client: &Client, spec: &JobSpec) -> Result<(), DeployError> {
    let update = JobUpdate::builder()
        .role(&spec.role)
        .command(command(spec))
        .glue_version(GLUE_VERSION)
        .set_default_arguments(Some(arguments(spec)))
        .worker_type(WorkerType::from(spec.size.worker_type.as_str()))
        .number_of_workers(spec.size.workers)
        .set_timeout(spec.size.timeout_minutes)
        .max_retries(spec.size.max_retries)
        .execution_property(execution(spec))
        .build();
    client
        .update_job()
        .job_name(&spec.name)
        .job_update(update)
        .send()
        .await
        .map_err(aws("glue:UpdateJob"))?;
    Ok(())
}

/// Brings the job's tags to the wanted ones.
async fn tag_job(client: &Client, arn: &str, change: &tags::Change) -> Result<(), DeployError> {
    if !change.set.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags_to_add(Some(change.set.iter().cloned().collect()))
            .send()
            .await
            .map_err(aws("glue:TagResource"))?;
    }
    if !change.remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tags_to_remove(Some(change.remove.clone()))
            .send()
            .await
            .map_err(aws("glue:UntagResource"))?;
    }
    Ok(())
}

/// Writes the metadata file a step needs (if any) and returns the table input pointing at it.
async fn with_metadata(
    s3: &aws_sdk_s3::Client,
    input: &TableInput,
    iceberg: Option<&Metadata>,
) -> Result<TableInput, DeployError> {
    let Some(iceberg) = iceberg else {
        return Ok(input.clone());
    };
    let (location, previous) = match iceberg {
        Metadata::Keep { location, previous } => (location.clone(), previous.clone()),
        Metadata::New { table, location } => {
            let uuid = uuid::Uuid::new_v4();
            let metadata = table.initial_metadata(location, &uuid.to_string(), now_ms());
            let file = format!("{location}/metadata/00000-{uuid}.metadata.json");
            put_metadata(s3, &file, &metadata).await?;
            (file, None)
        }
        Metadata::Evolve {
            table,
            previous,
            previous_location,
        } => {
            let metadata = table
                .evolved_metadata(previous, previous_location, now_ms())
                .map_err(DeployError::Invalid)?;
            let file = next_metadata_file(previous_location, &uuid::Uuid::new_v4().to_string())
                .ok_or_else(|| {
                    DeployError::Invalid(format!(
                        "{previous_location}: not an Iceberg metadata file name (NNNNN-uuid.metadata.json)"
                    ))
                })?;
            put_metadata(s3, &file, &metadata).await?;
            (file, Some(previous_location.clone()))
        }
    };
    let mut parameters = input.parameters().cloned().unwrap_or_default();
    parameters.insert(METADATA_LOCATION.to_string(), location);
    if let Some(previous) = previous {
        parameters.insert(PREVIOUS_METADATA_LOCATION.to_string(), previous);
    }
    let mut input = input.clone();
    input.parameters = Some(parameters);
    Ok(input)
}

async fn put_metadata(
    s3: &aws_sdk_s3::Client,
    file: &str,
    metadata: &Value,
) -> Result<(), DeployError> {
    let (bucket, key) = split_s3_url(file)
        .ok_or_else(|| DeployError::Invalid(format!("{file}: not an s3:// URL")))?;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(metadata.to_string().into_bytes()))
        .send()
        .await
        .map_err(aws("s3:PutObject"))?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The file after `…/metadata/00003-<uuid>.metadata.json`: `…/metadata/00004-<new>.metadata.json`
/// (Iceberg's own numbering, so readers and tools order the files as they expect).
pub fn next_metadata_file(previous: &str, uuid: &str) -> Option<String> {
    let (dir, name) = previous.rsplit_once('/')?;
    let (version, _) = name.split_once('-')?;
    let version: u64 = version.parse().ok()?;
    Some(format!("{dir}/{:05}-{uuid}.metadata.json", version + 1))
}

fn command(spec: &JobSpec) -> JobCommand {
    JobCommand::builder()
        .name(spec.kind.command())
        .script_location(&spec.script_location)
        .python_version("3")
        .build()
}

fn execution(spec: &JobSpec) -> ExecutionProperty {
    ExecutionProperty::builder()
        .max_concurrent_runs(spec.size.max_concurrent_runs)
        .build()
}

fn arguments(spec: &JobSpec) -> HashMap<String, String> {
    spec.arguments.clone().into_iter().collect()
}

/// The Iceberg catalog settings as Glue takes them: one `--conf` whose value chains the
/// others with " --conf ".
fn catalog_conf(warehouse: &str) -> String {
    contract_support::manifest::glue_catalog_settings("glue_catalog", warehouse)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" --conf ")
}

impl JobSize {
    /// A batch job over the contract's tables (erasure, maintenance): small, two hours at
    /// most, one run at a time, no retry (it is started again by hand, or by its schedule).
    fn batch() -> JobSize {
        JobSize {
            worker_type: "G.1X".into(),
            workers: 2,
            timeout_minutes: Some(120),
            max_retries: 0,
            max_concurrent_runs: 1,
        }
    }
}

impl Desired {
    /// `--pii_secret`, for a contract storing hashed values: the jobs read the key from it.
    fn pii_arguments(&self, c: &DeployConfig) -> Option<(String, String)> {
        self.needs_pii_keys()
            .then(|| ("--pii_secret".to_string(), c.pii_secret()))
    }

    /// The streaming job, sized as deploy was told.
    pub(crate) fn streaming_job_spec(&self, c: &DeployConfig) -> JobSpec {
        JobSpec {
            kind: JobKind::Streaming,
            name: self.job(c),
            role: self.role_arn(c, Role::Glue),
            script_location: format!("s3://{}/{}", c.bucket(), self.script_key(c)),
            arguments: self.job_arguments(c).into_iter().collect(),
            size: c.job_size.clone(),
            tags: self.tags(c),
        }
    }

    /// The erasure job: a batch job over the contract's tables, as the streaming job's role
    /// (which may read, write and delete the tables' files), one run at a time, no retry (a
    /// failed erasure is started again by hand, after reading why).
    pub(crate) fn erasure_job_spec(&self, c: &DeployConfig) -> JobSpec {
        let arguments = self.shared_arguments(c).into_iter().collect();
        JobSpec {
            kind: JobKind::Erasure,
            name: self.erasure_job(c),
            role: self.role_arn(c, Role::Glue),
            script_location: format!("s3://{}/{}", c.bucket(), self.erasure_script_key(c)),
            arguments,
            size: JobSize::batch(),
            tags: self.tags(c),
        }
    }

    /// The maintenance job (generated `maintenance_job.py`): both tables rewritten, expired and
    /// cleaned as their properties say, as the streaming job's role (scoped to the contract's
    /// tables); one run at a time, no retry (the next scheduled run is the retry). It keeps
    /// this stream's restart point (`--stream_arn`) and removes orphans older than a day.
    pub(crate) fn maintenance_job_spec(&self, c: &DeployConfig) -> JobSpec {
        let mut arguments = self.shared_arguments(c);
        // It rewrites files, never values: no key needed.
        arguments.remove("--pii_secret");
        arguments.insert("--stream_arn".to_string(), self.stream_arn(c));
        arguments.insert("--orphan_grace_hours".to_string(), "24".to_string());
        JobSpec {
            kind: JobKind::Maintenance,
            name: self.maintenance_job(c),
            role: self.role_arn(c, Role::Glue),
            script_location: format!("s3://{}/{}", c.bucket(), self.maintenance_script_key(c)),
            arguments: arguments.into_iter().collect(),
            size: JobSize::batch(),
            tags: self.tags(c),
        }
    }

    pub(crate) fn job_arguments(&self, c: &DeployConfig) -> HashMap<String, String> {
        let bucket = c.bucket();
        let mut arguments = HashMap::from([
            ("--stream_arn".to_string(), self.stream_arn(c)),
            (
                "--checkpoint_location".to_string(),
                format!(
                    "s3://{bucket}/{}/{}/checkpoints/",
                    c.prefix, self.manifest.name
                ),
            ),
            ("--window_seconds".to_string(), "100".to_string()),
            // Operations: the Spark UI's event logs.
            ("--enable-spark-ui".to_string(), "true".to_string()),
            (
                "--spark-event-logs-path".to_string(),
                format!(
                    "s3://{bucket}/{}/{}/spark-events/",
                    c.prefix, self.manifest.name
                ),
            ),
        ]);
        arguments.extend(self.shared_arguments(c));
        arguments
    }

    /// What both jobs take: Iceberg and the Glue catalog, the fingerprint, metrics and logs
    /// while they run, and the key document for a contract storing hashed values.
    fn shared_arguments(&self, c: &DeployConfig) -> HashMap<String, String> {
        let warehouse = format!("s3://{}/warehouse", c.bucket());
        let mut arguments = HashMap::from([
            ("--datalake-formats".to_string(), "iceberg".to_string()),
            ("--catalog".to_string(), "glue_catalog".to_string()),
            ("--conf".to_string(), catalog_conf(&warehouse)),
            (
                "--contractc-fingerprint".to_string(),
                self.manifest.source.fingerprint.clone(),
            ),
            ("--enable-metrics".to_string(), "true".to_string()),
            (
                "--enable-continuous-cloudwatch-log".to_string(),
                "true".to_string(),
            ),
        ]);
        arguments.extend(self.pii_arguments(c));
        arguments
    }

    /// A Glue table for an Iceberg definition (columns for Athena/Glue, the definition's
    /// properties as parameters).
    pub(crate) fn iceberg_table_input(
        &self,
        c: &DeployConfig,
        definition: &TableDef,
    ) -> Result<TableInput, DeployError> {
        let name = definition.name.clone();
        let columns = definition
            .columns
            .iter()
            .map(|col| {
                Column::builder()
                    .name(&col.name)
                    .r#type(col.ty.hive())
                    .set_comment(col.doc.clone())
                    .build()
                    .map_err(invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let location = format!(
            "s3://{}/warehouse/{}.db/{name}",
            c.bucket(),
            definition.database
        );
        let mut parameters: HashMap<String, String> = HashMap::from([
            ("table_type".to_string(), "ICEBERG".to_string()),
            (
                "contractc.definition-sha".to_string(),
                short_hash(&definition.create_request().to_string()),
            ),
        ]);
        for (k, v) in &definition.properties {
            parameters.insert(k.clone(), v.clone());
        }
        TableInput::builder()
            .name(name)
            .table_type("EXTERNAL_TABLE")
            .set_parameters(Some(parameters))
            .storage_descriptor(
                StorageDescriptor::builder()
                    .set_columns(Some(columns))
                    .location(location)
                    .build(),
            )
            .build()
            .map_err(invalid)
    }

    /// The Glue table describing the Kinesis stream (what Glue's streaming sources read).
    pub(crate) fn stream_table_input(&self, c: &DeployConfig) -> Result<TableInput, DeployError> {
        // The stream carries what the client sent: payload columns only, never enrichments.
        let columns = self
            .manifest
            .events_table()
            .columns
            .iter()
            .filter(|col| col.origin == Origin::Payload)
            .map(|col| {
                Column::builder()
                    .name(&col.name)
                    .r#type(col.ty.hive())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let parameters = HashMap::from([
            ("classification".to_string(), "json".to_string()),
            ("typeOfData".to_string(), "kinesis".to_string()),
            ("streamARN".to_string(), self.stream_arn(c)),
            (
                "contractc.fingerprint".to_string(),
                self.manifest.source.fingerprint.clone(),
            ),
        ]);
        TableInput::builder()
            .name(self.stream_table())
            .table_type("EXTERNAL_TABLE")
            .set_parameters(Some(parameters.clone()))
            .storage_descriptor(
                StorageDescriptor::builder()
                    .set_columns(Some(columns))
                    .set_parameters(Some(parameters))
                    .build(),
            )
            .build()
            .map_err(invalid)
    }
}
