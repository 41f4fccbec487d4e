//! API access logs: one CloudWatch Logs group per API (the REST API's and the edge's), and the
//! account setting REST APIs need to write logs at all (API Gateway's CloudWatch role). The
//! stages' access log settings are planned with their APIs (rest_api.rs, edge.rs).

use aws_sdk_apigateway::types::{Op as PatchOp, PatchOperation};
use aws_sdk_cloudwatchlogs::Client;
use serde_json::{Value, json};

use std::collections::BTreeMap;

use crate::names::{LogGroup, Role};
use crate::tags::{self, Tags};
use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, iam};

/// How long access logs are kept.
pub const RETENTION_DAYS: i32 = 30;

/// One access log line of the REST API, as JSON: who, what, the answer, and why a body was
/// refused (the model's errors). No claims: they identify players.
pub const REST_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","resourcePath":"$context.resourcePath","status":"$context.status","responseLength":"$context.responseLength","integrationStatus":"$context.integration.status","error":"$context.error.message","validationErrors":"$context.error.validationErrorString"}"#;

/// One access log line of the edge (HTTP API), as JSON, with why the authorizer refused.
pub const EDGE_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength","integrationStatus":"$context.integrationStatus","authorizerError":"$context.authorizer.error"}"#;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// The log groups of the contract's APIs that exist.
    pub groups: Vec<String>,
    /// Group name → its tags, for the groups that exist.
    pub tags: BTreeMap<String, Tags>,
    /// API Gateway's CloudWatch role of the account (region), if one is set.
    pub account_role: Option<String>,
    /// Whether the role deploy would set exists.
    pub logs_role: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateLogGroup {
        name: String,
        tags: Vec<(String, String)>,
    },
    TagLogGroup {
        arn: String,
        change: tags::Change,
    },
    /// API Gateway's CloudWatch role: the role (created when missing), then the account setting.
    SetAccountRole {
        name: String,
        arn: String,
        create: bool,
        policy: Value,
    },
}

pub async fn read(
    clients: &crate::Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    let mut groups = Vec::new();
    let mut tags = BTreeMap::new();
    // Every group is read, used by the door or not, so a destroy finds each one.
    for group in [LogGroup::RestApi, LogGroup::HttpApi, LogGroup::Function] {
        let name = desired.log_group(config, group);
        let listed = clients
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&name)
            .send()
            .await
            .map_err(aws("logs:DescribeLogGroups"))?;
        if listed
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(name.as_str()))
        {
            let arn = desired.log_group_arn(config, group);
            let listed = clients
                .logs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(aws("logs:ListTagsForResource"))?;
            tags.insert(name.clone(), tags::from_map(listed.tags()));
            groups.push(name);
        }
    }
    let account = clients
        .apigateway
        .get_account()
        .send()
        .await
        .map_err(aws("apigateway:GetAccount"))?;
    let got = clients
        .iam
        .get_role()
        .role_name(config.logs_role_name())
        .send()
        .await;
    let logs_role = found("iam:GetRole", got, |e| e.is_no_such_entity_exception())?.is_some();
    Ok(Current {
        groups,
        tags,
        account_role: account
            .cloudwatch_role_arn()
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        logs_role,
    })
}

/// The log groups the stack writes to: the door's, and the front door's when there is one.
fn used(config: &DeployConfig, desired: &Desired) -> Vec<LogGroup> {
    let mut groups = vec![match config.door {
        crate::Door::Function(_) => LogGroup::Function,
        crate::Door::Rest => LogGroup::RestApi,
    }];
    if desired.edge_issuer(config).is_some() {
        groups.push(LogGroup::HttpApi);
    }
    groups
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    for group in used(config, desired) {
        let name = desired.log_group(config, group);
        if !current.groups.contains(&name) {
            steps.push(Step {
                resource: format!("cloudwatch log group {name} ({RETENTION_DAYS} days)"),
                action: Action::Create,
                op: crate::Op::Logs(Op::CreateLogGroup {
                    name,
                    tags: desired.tags(config),
                }),
            });
            continue;
        }
        let have = current.tags.get(&name).cloned().unwrap_or_default();
        if let Some(change) = tags::change(&desired.tags(config), &have) {
            steps.push(Step {
                resource: format!("cloudwatch log group {name}"),
                action: Action::Update(vec![change.describe()]),
                op: crate::Op::Logs(Op::TagLogGroup {
                    arn: desired.log_group_arn(config, group),
                    change,
                }),
            });
        }
    }
    // An account that has a role keeps it: it is shared by every REST API of the account.
    // (HTTP APIs and Lambda functions log without it.)
    if current.account_role.is_none() && config.function().is_none() {
        let name = config.logs_role_name();
        let arn = config.role_arn_of(&name);
        steps.push(Step {
            resource: format!("api gateway account cloudwatch role {arn}"),
            action: Action::Create,
            op: crate::Op::Logs(Op::SetAccountRole {
                name,
                arn,
                create: !current.logs_role,
                policy: logs_policy(config),
            }),
        });
    }
}

/// What API Gateway may do with the account role: write to API Gateway's log groups.
pub fn logs_policy(config: &DeployConfig) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents",
                "logs:FilterLogEvents",
            ],
            "Resource": format!(
                "arn:aws:logs:{}:{}:log-group:*",
                config.region, config.account_id
            ),
        }],
    })
}

pub async fn apply(clients: &crate::Clients, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateLogGroup { name, tags } => create_group(&clients.logs, name, tags).await?,
        Op::TagLogGroup { arn, change } => {
            if !change.set.is_empty() {
                clients
                    .logs
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(change.set.iter().cloned().collect()))
                    .send()
                    .await
                    .map_err(aws("logs:TagResource"))?;
            }
            if !change.remove.is_empty() {
                clients
                    .logs
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(change.remove.clone()))
                    .send()
                    .await
                    .map_err(aws("logs:UntagResource"))?;
            }
        }
        Op::SetAccountRole {
            name,
            arn,
            create,
            policy,
        } => {
            if *create {
                iam::apply(
                    &clients.iam,
                    &iam::Op::CreateRole {
                        name: name.clone(),
                        trust: iam::trust_policy(Role::ApiGateway),
                        tags: Vec::new(),
                    },
                )
                .await?;
            }
            iam::apply(
                &clients.iam,
                &iam::Op::PutPolicy {
                    name: name.clone(),
                    policy: policy.clone(),
                },
            )
            .await?;
            let patch = PatchOperation::builder()
                .op(PatchOp::Replace)
                .path("/cloudwatchRoleArn")
                .value(arn)
                .build();
            clients
                .apigateway
                .update_account()
                .patch_operations(patch)
                .send()
                .await
                .map_err(aws("apigateway:UpdateAccount"))?;
        }
    }
    Ok(())
}

async fn create_group(
    client: &Client,
    name: &str,
    tags: &[(String, String)],
) -> Result<(), DeployError> {
    client
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(aws("logs:CreateLogGroup"))?;
    client
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(RETENTION_DAYS)
        .send()
        .await
        .map_err(aws("logs:PutRetentionPolicy"))?;
    Ok(())
}
