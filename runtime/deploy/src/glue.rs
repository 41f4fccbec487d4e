//! The Glue Data Catalog (database, Iceberg events and quarantine tables, the stream table) and
//! the Glue streaming job.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::Client;
use aws_sdk_glue::types::{
    Column, DatabaseInput, JobCommand, JobUpdate, StorageDescriptor, Table, TableInput,
};
use contract_support::manifest::{Origin, TableDef};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid, short_hash};

const GLUE_VERSION: &str = "5.0";

/// What exists in the catalog and the job, as far as the plan compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub database: bool,
    /// Table name → table, for the tables that exist.
    pub tables: BTreeMap<String, TableState>,
    pub job: Option<JobState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    pub parameters: HashMap<String, String>,
    /// (name, type), in order.
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    pub script_location: Option<String>,
    pub glue_version: Option<String>,
    pub role: Option<String>,
    pub arguments: BTreeMap<String, String>,
}

/// The job as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub name: String,
    pub role: String,
    pub script_location: String,
    pub arguments: BTreeMap<String, String>,
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
    },
    UpdateTable {
        database: String,
        input: Box<TableInput>,
    },
    CreateJob(JobSpec),
    UpdateJob(JobSpec),
}

/// The names of the contract's tables: events, quarantine, stream.
fn table_names(desired: &Desired) -> [String; 3] {
    let manifest = desired.manifest;
    [
        manifest.table.name.clone(),
        manifest.quarantine_table_name(),
        stream_table_name(desired),
    ]
}

fn stream_table_name(desired: &Desired) -> String {
    format!("{}_stream", desired.manifest.table.name)
}

pub async fn read(
    client: &Client,
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
        for name in table_names(desired) {
            let got = client
                .get_table()
                .database_name(database)
                .name(&name)
                .send()
                .await;
            let table = found("glue:GetTable", got, |e| e.is_entity_not_found_exception())?;
            if let Some(table) = table.and_then(|t| t.table) {
                tables.insert(name, table_state(&table));
            }
        }
    }
    let got = client.get_job().job_name(desired.job(config)).send().await;
    let job = found("glue:GetJob", got, |e| e.is_entity_not_found_exception())?
        .and_then(|j| j.job)
        .map(|job| JobState {
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
        });
    Ok(Current {
        database: present.is_some(),
        tables,
        job,
    })
}

fn table_state(table: &Table) -> TableState {
    TableState {
        parameters: table.parameters().cloned().unwrap_or_default(),
        columns: columns(table.storage_descriptor()),
    }
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
    let inputs = [
        desired.iceberg_table_input(config, &desired.manifest.events_table())?,
        desired.iceberg_table_input(config, &desired.manifest.quarantine_table())?,
        desired.stream_table_input(config)?,
    ];
    for input in inputs {
        let name = input.name().to_string();
        let (action, op) = match current.tables.get(&name) {
            None => (
                Action::Create,
                Op::CreateTable {
                    database: database.clone(),
                    input: Box::new(input),
                },
            ),
            Some(table) => {
                let differs = table_differences(&input, table);
                if differs.is_empty() {
                    continue;
                }
                (
                    Action::Update(differs),
                    Op::UpdateTable {
                        database: database.clone(),
                        input: Box::new(input),
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
    plan_job(config, desired, current.job.as_ref(), steps);
    Ok(())
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

fn plan_job(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&JobState>,
    steps: &mut Vec<Step>,
) {
    let spec = JobSpec {
        name: desired.job(config),
        role: config.glue_role(),
        script_location: format!("s3://{}/{}", config.bucket(), desired.script_key(config)),
        arguments: desired.job_arguments(config).into_iter().collect(),
    };
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
    if !differs.is_empty() {
        steps.push(Step {
            resource,
            action: Action::Update(differs),
            op: crate::Op::Glue(Op::UpdateJob(spec)),
        });
    }
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateDatabase { name } => {
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
        }
        Op::CreateTable { database, input } => {
            client
                .create_table()
                .database_name(database)
                .table_input(TableInput::clone(input))
                .send()
                .await
                .map_err(aws("glue:CreateTable"))?;
        }
        Op::UpdateTable { database, input } => {
            client
                .update_table()
                .database_name(database)
                .table_input(TableInput::clone(input))
                .send()
                .await
                .map_err(aws("glue:UpdateTable"))?;
        }
        Op::CreateJob(spec) => {
            client
                .create_job()
                .name(&spec.name)
                .role(&spec.role)
                .command(command(spec))
                .glue_version(GLUE_VERSION)
                .set_default_arguments(Some(arguments(spec)))
                .send()
                .await
                .map_err(aws("glue:CreateJob"))?;
        }
        Op::UpdateJob(spec) => {
            let update = JobUpdate::builder()
                .role(&spec.role)
                .command(command(spec))
                .glue_version(GLUE_VERSION)
                .set_default_arguments(Some(arguments(spec)))
                .build();
            client
                .update_job()
                .job_name(&spec.name)
                .job_update(update)
                .send()
                .await
                .map_err(aws("glue:UpdateJob"))?;
        }
    }
    Ok(())
}

fn command(spec: &JobSpec) -> JobCommand {
    JobCommand::builder()
        .name("gluestreaming")
        .script_location(&spec.script_location)
        .python_version("3")
        .build()
}

fn arguments(spec: &JobSpec) -> HashMap<String, String> {
    spec.arguments.clone().into_iter().collect()
}

impl Desired {
    pub(crate) fn job_arguments(&self, c: &DeployConfig) -> HashMap<String, String> {
        let bucket = c.bucket();
        let warehouse = format!("s3://{bucket}/warehouse");
        HashMap::from([
            ("--datalake-formats".to_string(), "iceberg".to_string()),
            ("--stream_arn".to_string(), self.stream_arn(c)),
            (
                "--checkpoint_location".to_string(),
                format!(
                    "s3://{bucket}/{}/{}/checkpoints/",
                    c.prefix, self.manifest.name
                ),
            ),
            ("--window_seconds".to_string(), "100".to_string()),
            ("--catalog".to_string(), "glue_catalog".to_string()),
            (
                "--conf".to_string(),
                // Glue takes one --conf whose value chains the others with " --conf ".
                contract_support::manifest::glue_catalog_settings("glue_catalog", &warehouse)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" --conf "),
            ),
            (
                "--contractc-fingerprint".to_string(),
                self.manifest.source.fingerprint.clone(),
            ),
        ])
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
            .name(stream_table_name(self))
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
