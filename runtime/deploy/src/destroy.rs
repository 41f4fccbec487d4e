//! `deploy --destroy`: the stack taken down, planned from the same read as a deploy. The
//! bucket goes last, after every contract's resources, and only when it holds no table data or
//! `--force-delete-data` says so; a refused bucket refuses the whole plan before anything is
//! deleted.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::names::Role;
use crate::{Action, Clients, Current, DeployConfig, DeployError, Desired, Plan, Step, aws, iam};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DeleteHttpApi {
        api_id: String,
    },
    DeleteRestApi {
        api_id: String,
    },
    DeleteFunction {
        name: String,
    },
    DeleteJob {
        name: String,
    },
    DeleteTable {
        database: String,
        name: String,
    },
    DeleteStream {
        name: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    DeleteLogGroup {
        name: String,
    },
    DeleteRole {
        name: String,
        with_policy: bool,
    },
    /// Every object version and delete marker, then the bucket.
    EmptyAndDeleteBucket {
        bucket: String,
    },
    /// The key document of `pii: hash` fields, at once (no recovery window: a torn-down
    /// deployment's hashed values need no key any more, and a new one gets its own).
    DeleteSecret {
        name: String,
    },
    DeleteTrigger {
        name: String,
    },
    /// An Athena workgroup and its named queries.
    DeleteWorkGroup {
        name: String,
    },
}

/// What the bucket holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketContents {
    pub objects: usize,
    /// Data files of Iceberg tables (`warehouse/…/data/…`): rows that would be lost.
    pub table_data: usize,
}

fn step(resource: String, op: Op) -> Step {
    Step {
        resource,
        action: Action::Delete,
        op: crate::Op::Destroy(op),
    }
}

/// The deletions of one contract's resources, in dependency order (the door first, so no
/// event is accepted into a stream about to go; roles last, after what runs as them). The
/// Glue database is kept: other contracts' or anyone's tables may live in it.
pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current) -> Plan {
    let mut plan = Plan::default();
    let steps = &mut plan.steps;
    plan_doors(config, desired, current, steps);
    // What watches the stack goes before it: no alarm fires on a stack being taken down.
    crate::alarms::plan_destroy(config, desired, &current.alarms, steps);
    if current.queries.workgroup {
        let name = desired.workgroup(config);
        steps.push(step(
            format!("athena workgroup {name} and its named queries"),
            Op::DeleteWorkGroup { name },
        ));
    }
    plan_jobs(config, desired, current, steps);
    let database = &desired.manifest.table.database;
    for name in current.glue.tables.keys() {
        steps.push(step(
            format!("glue table {database}.{name}"),
            Op::DeleteTable {
                database: database.clone(),
                name: name.clone(),
            },
        ));
    }
    if current.kinesis.stream {
        let name = desired.stream(config);
        steps.push(step(
            format!("kinesis stream {name}"),
            Op::DeleteStream { name },
        ));
    }
    let scripts = [
        (&current.s3.script, desired.script_key(config)),
        (
            &current.s3.erasure_script,
            desired.erasure_script_key(config),
        ),
        (
            &current.s3.maintenance_script,
            desired.maintenance_script_key(config),
        ),
    ];
    for (_, key) in scripts.into_iter().filter(|(have, _)| have.is_some()) {
        let bucket = config.bucket();
        steps.push(step(
            format!("s3 object s3://{bucket}/{key}"),
            Op::DeleteObject { bucket, key },
        ));
    }
    // API Gateway's account logging role stays: every REST API of the account uses it.
    for name in &current.logs.groups {
        steps.push(step(
            format!("cloudwatch log group {name}"),
            Op::DeleteLogGroup { name: name.clone() },
        ));
    }
    for (kind, role) in [
        (Role::Glue, &current.iam.glue),
        (Role::ApiGateway, &current.iam.api),
        (Role::Edge, &current.iam.edge),
    ] {
        if let Some(role) = role {
            let name = desired.role_name(config, kind);
            steps.push(step(
                format!("iam role {name}"),
                Op::DeleteRole {
                    name,
                    with_policy: role.policy.is_some(),
                },
            ));
        }
    }
    if !plan.steps.is_empty() {
        plan.notes.push(format!(
            "glue database {database} is kept (it may hold other tables)"
        ));
    }
    plan
}

/// The maintenance job's schedule, then the jobs.
fn plan_jobs(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    if current.schedule.trigger.is_some() {
        let name = desired.maintenance_trigger(config);
        steps.push(step(
            format!("glue trigger {name}"),
            Op::DeleteTrigger { name },
        ));
    }
    let jobs = [
        (&current.glue.job, desired.job(config)),
        (&current.glue.erasure_job, desired.erasure_job(config)),
        (
            &current.glue.maintenance_job,
            desired.maintenance_job(config),
        ),
    ];
    for (_, name) in jobs.into_iter().filter(|(have, _)| have.is_some()) {
        steps.push(step(format!("glue job {name}"), Op::DeleteJob { name }));
    }
}

/// The doors: the front door first (so no event is accepted into a stream about to go), then
/// what it routes to.
fn plan_doors(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    if let Some(edge) = &current.edge {
        steps.push(step(
            format!("api gateway http api {}", desired.edge_api(config)),
            Op::DeleteHttpApi {
                api_id: edge.api_id.clone(),
            },
        ));
    }
    if let Some(api) = &current.rest_api {
        steps.push(step(
            format!("api gateway rest api {}", desired.api(config)),
            Op::DeleteRestApi {
                api_id: api.id.clone(),
            },
        ));
    }
    if current.function.is_some() {
        let name = desired.function(config);
        steps.push(step(
            format!("lambda function {name}"),
            Op::DeleteFunction { name },
        ));
    }
}

/// The key document's deletion, when it exists: shared by the prefix's contracts, so it goes
/// with the bucket, after them.
pub fn plan_secret(config: &DeployConfig, current: &crate::secrets::Current) -> Option<Step> {
    current.exists.then(|| {
        let name = config.pii_secret();
        step(crate::secrets::resource(&name), Op::DeleteSecret { name })
    })
}

/// The bucket's deletion, or why it is refused (`contents` is `None` when it does not exist).
pub fn plan_bucket(
    config: &DeployConfig,
    contents: Option<&BucketContents>,
    force_delete_data: bool,
) -> Result<Option<Step>, DeployError> {
    let Some(contents) = contents else {
        return Ok(None);
    };
    let bucket = config.bucket();
    if contents.table_data > 0 && !force_delete_data {
        return Err(DeployError::Invalid(format!(
            "refusing to delete s3 bucket {bucket}: it holds {} table data file(s) under warehouse/; \
             copy what you need, then pass --force-delete-data (nothing was deleted)",
            contents.table_data
        )));
    }
    Ok(Some(step(
        format!(
            "s3 bucket {bucket} with its {} object(s), every version ({} table data file(s))",
            contents.objects, contents.table_data
        ),
        Op::EmptyAndDeleteBucket { bucket },
    )))
}

/// Counts what the bucket holds (`None`: no such bucket).
pub async fn read_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<BucketContents>, DeployError> {
    let head = client.head_bucket().bucket(bucket).send().await;
    if crate::found("s3:HeadBucket", head, |e| e.is_not_found())?.is_none() {
        return Ok(None);
    }
    let mut contents = BucketContents::default();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(aws("s3:ListObjectsV2"))?;
        for object in page.contents() {
            contents.objects += 1;
            let key = object.key().unwrap_or_default();
            if key.starts_with("warehouse/") && key.contains("/data/") {
                contents.table_data += 1;
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok(Some(contents));
        }
    }
}

pub async fn apply(clients: &Clients, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::DeleteHttpApi { api_id } => delete_http_api(&clients.apigatewayv2, api_id).await,
        Op::DeleteRestApi { api_id } => delete_rest_api(&clients.apigateway, api_id).await,
        Op::DeleteJob { name } => delete_job(&clients.glue, name).await,
        Op::DeleteTable { database, name } => delete_table(&clients.glue, database, name).await,
        Op::DeleteStream { name } => delete_stream(&clients.kinesis, name).await,
        Op::DeleteObject { bucket, key } => delete_object(&clients.s3, bucket, key).await,
        Op::DeleteLogGroup { name } => delete_log_group(&clients.logs, name).await,
        Op::DeleteFunction { name } => {
            clients
                .lambda
                .delete_function()
                .function_name(name)
                .send()
                .await
                .map_err(aws("lambda:DeleteFunction"))?;
            Ok(())
        }
        Op::DeleteRole { name, with_policy } => delete_role(&clients.iam, name, *with_policy).await,
        Op::EmptyAndDeleteBucket { bucket } => empty_and_delete(&clients.s3, bucket).await,
        Op::DeleteTrigger { name } => crate::schedule::delete(&clients.glue, name).await,
        Op::DeleteWorkGroup { name } => {
            crate::queries::delete_workgroup(&clients.athena, name).await
        }
        Op::DeleteSecret { name } => {
            clients
                .secrets
                .delete_secret()
                .secret_id(name)
                .force_delete_without_recovery(true)
                .send()
                .await
                .map_err(aws("secretsmanager:DeleteSecret"))?;
            Ok(())
        }
    }
}

async fn delete_http_api(
    client: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> Result<(), DeployError> {
    client
        .delete_api()
        .api_id(api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:DeleteApi"))?;
    Ok(())
}

async fn delete_rest_api(
    client: &aws_sdk_apigateway::Client,
    api_id: &str,
) -> Result<(), DeployError> {
    client
        .delete_rest_api()
        .rest_api_id(api_id)
        .send()
        .await
        .map_err(aws("apigateway:DeleteRestApi"))?;
    Ok(())
}

async fn delete_job(client: &aws_sdk_glue::Client, name: &str) -> Result<(), DeployError> {
    client
        .delete_job()
        .job_name(name)
        .send()
        .await
        .map_err(aws("glue:DeleteJob"))?;
    Ok(())
}

async fn delete_table(
    client: &aws_sdk_glue::Client,
    database: &str,
    name: &str,
) -> Result<(), DeployError> {
    client
        .delete_table()
        .database_name(database)
        .name(name)
        .send()
        .await
        .map_err(aws("glue:DeleteTable"))?;
    Ok(())
}

async fn delete_stream(client: &aws_sdk_kinesis::Client, name: &str) -> Result<(), DeployError> {
    client
        .delete_stream()
        .stream_name(name)
        .send()
        .await
        .map_err(aws("kinesis:DeleteStream"))?;
    Ok(())
}

async fn delete_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(), DeployError> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(aws("s3:DeleteObject"))?;
    Ok(())
}

async fn delete_log_group(
    client: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<(), DeployError> {
    client
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .map_err(aws("logs:DeleteLogGroup"))?;
    Ok(())
}

/// Deletes the role, after its inline policy (IAM refuses to delete a role that has one).
async fn delete_role(
    client: &aws_sdk_iam::Client,
    name: &str,
    with_policy: bool,
) -> Result<(), DeployError> {
    if with_policy {
        client
            .delete_role_policy()
            .role_name(name)
            .policy_name(iam::POLICY_NAME)
            .send()
            .await
            .map_err(aws("iam:DeleteRolePolicy"))?;
    }
    client
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws("iam:DeleteRole"))?;
    Ok(())
}

/// Deletes every version and delete marker (a versioned bucket keeps them all), then the
/// bucket, in pages of at most 1000 keys (DeleteObjects' limit).
async fn empty_and_delete(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), DeployError> {
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await
            .map_err(aws("s3:ListObjectVersions"))?;
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        let identifiers = versions
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if identifiers.is_empty() {
            break;
        }
        let delete = Delete::builder()
            .set_objects(Some(identifiers))
            .quiet(true)
            .build()
            .map_err(crate::invalid)?;
        let deleted = client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(aws("s3:DeleteObjects"))?;
        if let Some(error) = deleted.errors().first() {
            return Err(DeployError::Aws {
                call: "s3:DeleteObjects",
                message: format!(
                    "{}: {}: {}; run --destroy again",
                    error.key().unwrap_or_default(),
                    error.code().unwrap_or_default(),
                    error.message().unwrap_or_default()
                ),
            });
        }
    }
    client
        .delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(aws("s3:DeleteBucket"))?;
    Ok(())
}
