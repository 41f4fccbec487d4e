//! The IAM roles of a contract's stack, each with one least-privilege inline policy: the Glue
//! job's (read this contract's stream, its script and checkpoints, write its tables), and the
//! door's: the edge function's (put records on this contract's stream, write its own log) or,
//! with the REST door, API Gateway's (put records on this contract's stream). A role given by
//! `--glue-role-arn` or `--api-role-arn` is used as it is and not managed here.

use aws_sdk_iam::Client;
use serde_json::{Value, json};

use crate::names::Role;
use crate::tags::{self, Tags};
use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found};

/// The name of the inline policy deploy manages on each role.
pub const POLICY_NAME: &str = "contractc";

/// What exists of one managed role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleState {
    pub trust: Option<Value>,
    pub policy: Option<Value>,
    pub tags: Tags,
}

/// The managed roles that exist (`None`: absent, or not managed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub glue: Option<RoleState>,
    pub api: Option<RoleState>,
    pub edge: Option<RoleState>,
}

/// Every role a contract's stack may run as.
const ROLES: [Role; 3] = [Role::Glue, Role::ApiGateway, Role::Edge];

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateRole {
        name: String,
        trust: Value,
        tags: Vec<(String, String)>,
    },
    UpdateTrust {
        name: String,
        trust: Value,
    },
    PutPolicy {
        name: String,
        policy: Value,
    },
    Tag {
        name: String,
        change: tags::Change,
    },
}

/// Whether deploy manages the role (no ARN was given for it).
pub(crate) fn managed(config: &DeployConfig, role: Role) -> bool {
    match role {
        Role::Glue => config.glue_role_arn.is_none(),
        Role::ApiGateway => config.api_role_arn.is_none(),
        Role::Edge => true,
    }
}

/// Whether the stack runs as the role with its door (the edge function's, or API Gateway's
/// integration's).
pub(crate) fn used(config: &DeployConfig, role: Role) -> bool {
    match role {
        Role::Glue => true,
        Role::ApiGateway => config.function().is_none(),
        Role::Edge => config.function().is_some(),
    }
}

/// The one service that runs as the role.
fn service(role: Role) -> &'static str {
    match role {
        Role::Glue => "glue.amazonaws.com",
        Role::ApiGateway => "apigateway.amazonaws.com",
        Role::Edge => "lambda.amazonaws.com",
    }
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    // Every managed role is read, used by the door or not, so a destroy finds each one.
    let mut current = Current::default();
    for role in ROLES {
        if !managed(config, role) {
            continue;
        }
        let state = read_role(client, &desired.role_name(config, role)).await?;
        match role {
            Role::Glue => current.glue = state,
            Role::ApiGateway => current.api = state,
            Role::Edge => current.edge = state,
        }
    }
    Ok(current)
}

async fn read_role(client: &Client, name: &str) -> Result<Option<RoleState>, DeployError> {
    let got = client.get_role().role_name(name).send().await;
    let Some(role) = found("iam:GetRole", got, |e| e.is_no_such_entity_exception())? else {
        return Ok(None);
    };
    let trust = role
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .and_then(policy_json);
    // GetRole answers with the role's tags (at most 50, all of them).
    let tags = role
        .role()
        .map(|r| {
            r.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let got = client
        .get_role_policy()
        .role_name(name)
        .policy_name(POLICY_NAME)
        .send()
        .await;
    let policy = found("iam:GetRolePolicy", got, |e| {
        e.is_no_such_entity_exception()
    })?
    .and_then(|p| policy_json(p.policy_document()));
    Ok(Some(RoleState {
        trust,
        policy,
        tags,
    }))
}

/// A policy document as IAM returns it: URL-encoded JSON on AWS, plain JSON from some emulators.
pub fn policy_json(document: &str) -> Option<Value> {
    serde_json::from_str(document)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(document)?).ok())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    for (role, have) in [
        (Role::Glue, current.glue.as_ref()),
        (Role::ApiGateway, current.api.as_ref()),
        (Role::Edge, current.edge.as_ref()),
    ] {
        if !managed(config, role) || !used(config, role) {
            continue;
        }
        let name = desired.role_name(config, role);
        let trust = trust_policy(role);
        let policy = role_policy(config, desired, role);
        let mut push = |what: &str, action: Action, op: Op| {
            steps.push(Step {
                resource: format!("iam role {name}{what}"),
                action,
                op: crate::Op::Iam(op),
            })
        };
        match have {
            None => push(
                "",
                Action::Create,
                Op::CreateRole {
                    name: name.clone(),
                    trust,
                    tags: desired.tags(config),
                },
            ),
            Some(role) if role.trust.as_ref() != Some(&trust) => push(
                "",
                Action::Update(vec!["trust policy".into()]),
                Op::UpdateTrust {
                    name: name.clone(),
                    trust,
                },
            ),
            Some(_) => {}
        }
        if let Some(change) = have.and_then(|r| tags::change(&desired.tags(config), &r.tags)) {
            push(
                "",
                Action::Update(vec![change.describe()]),
                Op::Tag {
                    name: name.clone(),
                    change,
                },
            );
        }
        if have.and_then(|r| r.policy.as_ref()) != Some(&policy) {
            push(
                &format!(" policy {POLICY_NAME}"),
                Action::for_existing(have.is_some_and(|r| r.policy.is_some()), "permissions"),
                Op::PutPolicy {
                    name: name.clone(),
                    policy,
                },
            );
        }
    }
}

/// Who may assume the role: the one service that runs as it.
pub fn trust_policy(role: Role) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service(role)},
            "Action": "sts:AssumeRole",
        }],
    })
}

/// What the role may do, scoped to this contract's stream, bucket prefixes and tables.
pub fn role_policy(config: &DeployConfig, desired: &Desired, role: Role) -> Value {
    let stream = desired.stream_arn(config);
    match role {
        Role::ApiGateway => json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
                "Resource": stream,
            }],
        }),
        Role::Glue => glue_policy(config, desired, &stream),
        Role::Edge => {
            let log_group = desired.log_group_arn(config, crate::names::LogGroup::Function);
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PutRecords",
                        "Effect": "Allow",
                        "Action": "kinesis:PutRecords",
                        "Resource": stream,
                    },
                    {
                        "Sid": "OwnLog",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": format!("{log_group}:*"),
                    },
                ],
            })
        }
    }
}

fn glue_policy(config: &DeployConfig, desired: &Desired, stream: &str) -> Value {
    let bucket = config.bucket();
    let contract = &desired.manifest.name;
    let database = &desired.manifest.table.database;
    let own = format!("{}/{contract}/", config.prefix);
    let tables: Vec<String> = desired
        .table_names()
        .iter()
        .map(|t| format!("warehouse/{database}.db/{t}/"))
        .collect();
    let mut objects: Vec<String> = vec![format!("arn:aws:s3:::{bucket}/{own}*")];
    objects.extend(tables.iter().map(|t| format!("arn:aws:s3:::{bucket}/{t}*")));
    let mut prefixes: Vec<String> = vec![format!("{own}*")];
    prefixes.extend(tables.iter().map(|t| format!("{t}*")));
    let (region, account) = (&config.region, &config.account_id);
    let catalog = catalog_arns(config, desired);
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ScriptCheckpointsTables",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": objects,
            },
            {
                "Sid": "ListOwnPrefixes",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": format!("arn:aws:s3:::{bucket}"),
                "Condition": {"StringLike": {"s3:prefix": prefixes}},
            },
            {
                "Sid": "ReadStream",
                "Effect": "Allow",
                "Action": [
                    "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards",
                    "kinesis:SubscribeToShard",
                ],
                "Resource": stream,
            },
            {
                "Sid": "CatalogTables",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable",
                    "glue:GetPartitions",
                ],
                "Resource": catalog,
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!("arn:aws:logs:{region}:{account}:log-group:/aws-glue/*"),
            },
            {
                "Sid": "Metrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                // Glue's own job metrics, and the contract's counts (#24).
                "Condition": {"StringEquals": {"cloudwatch:namespace": ["Glue", contract_support::manifest::alerts::cloudwatch::NAMESPACE]}},
            },
        ],
    });
    // The key document, for a contract storing hashed values (#23).
    if desired.needs_pii_keys()
        && let Some(statements) = policy["Statement"].as_array_mut()
    {
        statements.push(json!({
            "Sid": "PiiKeys",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": config.pii_secret_arn_pattern(),
        }));
    }
    policy
}

/// The Glue catalog, the contract's database and its tables, as policies name them.
fn catalog_arns(config: &DeployConfig, desired: &Desired) -> Vec<String> {
    let (region, account) = (&config.region, &config.account_id);
    let database = &desired.manifest.table.database;
    let mut catalog = vec![
        format!("arn:aws:glue:{region}:{account}:catalog"),
        format!("arn:aws:glue:{region}:{account}:database/{database}"),
    ];
    catalog.extend(
        desired
            .table_names()
            .iter()
            .map(|t| format!("arn:aws:glue:{region}:{account}:table/{database}/{t}")),
    );
    catalog
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateRole { name, trust, tags } => {
            let tags = tags
                .iter()
                .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(crate::invalid)?;
            client
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .description("contractc: managed by contract-deploy")
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws("iam:CreateRole"))?;
        }
        Op::UpdateTrust { name, trust } => {
            client
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(trust.to_string())
                .send()
                .await
                .map_err(aws("iam:UpdateAssumeRolePolicy"))?;
        }
        Op::Tag { name, change } => tag(client, name, change).await?,
        Op::PutPolicy { name, policy } => {
            client
                .put_role_policy()
                .role_name(name)
                .policy_name(POLICY_NAME)
                .policy_document(policy.to_string())
                .send()
                .await
                .map_err(aws("iam:PutRolePolicy"))?;
        }
    }
    Ok(())
}

/// Brings a role's tags to the wanted ones.
async fn tag(client: &Client, name: &str, change: &tags::Change) -> Result<(), DeployError> {
    if !change.set.is_empty() {
        let set = change
            .set
            .iter()
            .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::invalid)?;
        client
            .tag_role()
            .role_name(name)
            .set_tags(Some(set))
            .send()
            .await
            .map_err(aws("iam:TagRole"))?;
    }
    if !change.remove.is_empty() {
        client
            .untag_role()
            .role_name(name)
            .set_tag_keys(Some(change.remove.clone()))
            .send()
            .await
            .map_err(aws("iam:UntagRole"))?;
    }
    Ok(())
}

/// The policy the deploying identity needs for `deploy --apply`, `status` and `--start-job`,
/// scoped to the prefix's resources where the service allows it.
pub fn deployer_policy(config: &DeployConfig) -> Value {
    let (region, account, prefix) = (&config.region, &config.account_id, &config.prefix);
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Identity", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
            bucket_statement(&config.bucket()),
            {
                "Sid": "Streams",
                "Effect": "Allow",
                "Action": [
                    "kinesis:CreateStream", "kinesis:DeleteStream", "kinesis:DescribeStreamSummary",
                    "kinesis:StartStreamEncryption", "kinesis:AddTagsToStream",
                    "kinesis:ListTagsForStream", "kinesis:RemoveTagsFromStream",
                ],
                "Resource": format!("arn:aws:kinesis:{region}:{account}:stream/{prefix}-*"),
            },
            catalog_statement(region, account),
            jobs_statement(region, account, prefix),
            {
                "Sid": "PiiKeys",
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret", "secretsmanager:CreateSecret",
                    "secretsmanager:DeleteSecret", "secretsmanager:TagResource",
                ],
                "Resource": config.pii_secret_arn_pattern(),
            },
            apis_statement(region),
            functions_statement(region, account, prefix),
            {
                "Sid": "AccessLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:DescribeLogGroups", "logs:CreateLogGroup", "logs:DeleteLogGroup",
                    "logs:PutRetentionPolicy", "logs:TagResource", "logs:UntagResource",
                    "logs:ListTagsForResource", "logs:CreateLogDelivery",
                    "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Roles",
                "Effect": "Allow",
                "Action": [
                    "iam:GetRole", "iam:CreateRole", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy",
                    "iam:TagRole", "iam:UntagRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                    "iam:PassRole",
                ],
                "Resource": format!("arn:aws:iam::{account}:role/{prefix}-*"),
            },
        ],
    });
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.extend(watch_statements(region, account, prefix));
    }
    policy
}

/// The prefix's edge functions: managed, tagged, and invokable by their front doors.
fn functions_statement(region: &str, account: &str, prefix: &str) -> Value {
    json!({
        "Sid": "Functions",
        "Effect": "Allow",
        "Action": [
            "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:CreateFunction",
            "lambda:DeleteFunction",
            "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
            "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency",
            "lambda:GetPolicy", "lambda:AddPermission", "lambda:RemovePermission",
            "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
        ],
        "Resource": format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*"),
    })
}

/// The artifacts bucket: the scripts, checkpoints and tables in it, and its settings.
fn bucket_statement(bucket: &str) -> Value {
    json!({
        "Sid": "Bucket",
        "Effect": "Allow",
        "Action": [
            "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
            "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
            "s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:PutBucketVersioning",
            "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
            "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
            "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
            "s3:GetBucketTagging", "s3:PutBucketTagging",
        ],
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
    })
}

/// The Glue Data Catalog: databases and tables of any name (a contract names its database).
fn catalog_statement(region: &str, account: &str) -> Value {
    json!({
        "Sid": "Catalog",
        "Effect": "Allow",
        "Action": [
            "glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:CreateTable",
            "glue:UpdateTable", "glue:DeleteTable",
        ],
        "Resource": [
            format!("arn:aws:glue:{region}:{account}:catalog"),
            format!("arn:aws:glue:{region}:{account}:database/*"),
            format!("arn:aws:glue:{region}:{account}:table/*/*"),
        ],
    })
}

/// The quality alarms, the dashboards and the ready queries (#24).
fn watch_statements(region: &str, account: &str, prefix: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "QualityAlarms",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms", "cloudwatch:TagResource",
            ],
            "Resource": format!("arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*"),
        }),
        json!({
            "Sid": "Dashboards",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:GetDashboard", "cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards",
            ],
            "Resource": format!("arn:aws:cloudwatch::{account}:dashboard/{prefix}-*"),
        }),
        json!({
            "Sid": "ReadyQueries",
            "Effect": "Allow",
            "Action": [
                "athena:GetWorkGroup", "athena:CreateWorkGroup", "athena:DeleteWorkGroup",
                "athena:TagResource", "athena:ListNamedQueries", "athena:GetNamedQuery",
                "athena:CreateNamedQuery", "athena:UpdateNamedQuery", "athena:DeleteNamedQuery",
            ],
            "Resource": format!("arn:aws:athena:{region}:{account}:workgroup/{prefix}-*"),
        }),
    ]
}

/// The prefix's Glue jobs and the maintenance job's trigger: managed, tagged and started.
fn jobs_statement(region: &str, account: &str, prefix: &str) -> Value {
    json!({
        "Sid": "Jobs",
        "Effect": "Allow",
        "Action": [
            "glue:GetJob", "glue:CreateJob", "glue:UpdateJob", "glue:DeleteJob",
            "glue:GetTrigger", "glue:CreateTrigger", "glue:DeleteTrigger",
            "glue:StartJobRun", "glue:GetJobRuns", "glue:TagResource",
            "glue:UntagResource", "glue:GetTags",
        ],
        "Resource": [
            format!("arn:aws:glue:{region}:{account}:job/{prefix}-*"),
            format!("arn:aws:glue:{region}:{account}:trigger/{prefix}-*"),
        ],
    })
}

/// API Gateway's REST and HTTP APIs, their tags, and the account's logging role setting.
fn apis_statement(region: &str) -> Value {
    json!({
        "Sid": "Apis",
        "Effect": "Allow",
        "Action": ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"],
        "Resource": [
            format!("arn:aws:apigateway:{region}::/restapis"),
            format!("arn:aws:apigateway:{region}::/restapis/*"),
            format!("arn:aws:apigateway:{region}::/apis"),
            format!("arn:aws:apigateway:{region}::/apis/*"),
            format!("arn:aws:apigateway:{region}::/tags/*"),
            format!("arn:aws:apigateway:{region}::/account"),
        ],
    })
}
