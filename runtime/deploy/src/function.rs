//! The Lambda door: the edge function (runtime/edge, built as a `provided.al2023` zip) that
//! judges every event with serve's code and puts it on the contract's stream, invoked by the
//! JWT front door's routes. Its code, settings and reserved concurrency are planned like every
//! resource (create, update what differs, nothing when equal), and so is the one permission
//! that lets the front door invoke it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use sha2::{Digest, Sha256};

use crate::names::Role;
use crate::tags::{self, Tags};
use crate::{Action, Created, DeployConfig, DeployError, Desired, Plan, Step, aws, found};

/// The statement of the function's resource policy that lets the front door invoke it.
pub const PERMISSION_ID: &str = "contractc-front-door";
/// The executable the runtime starts, at the zip's root.
const HANDLER: &str = "bootstrap";

/// The function's zip, with the digest Lambda reports for it (`CodeSha256`: base64 SHA-256).
#[derive(Clone)]
pub struct Code {
    pub zip: Arc<Vec<u8>>,
    pub sha256: String,
}

impl Code {
    pub fn new(zip: Vec<u8>) -> Code {
        use base64::Engine;
        let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
        Code {
            zip: Arc::new(zip),
            sha256,
        }
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({} bytes, sha256 {})", self.zip.len(), self.sha256)
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Code) -> bool {
        self.sha256 == other.sha256
    }
}

/// How the function is deployed (`deploy --door lambda` and its flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The zip (`None`: not built; `status` and `--destroy` need none).
    pub code: Option<Code>,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    /// Reserved concurrency: at most this many events judged at once (`None`: the account's).
    pub reserved_concurrency: Option<i32>,
}

/// What the function's configuration is, as compared with the wanted one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    pub runtime: String,
    pub handler: String,
    pub architecture: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub role: String,
    pub environment: BTreeMap<String, String>,
}

/// What exists of the function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub code_sha256: String,
    pub configuration: Configuration,
    pub reserved_concurrency: Option<i32>,
    /// The source ARN of the front door's permission, when it is there.
    pub permission: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Create {
        name: String,
        configuration: Configuration,
        code: Code,
        tags: Vec<(String, String)>,
    },
    /// The zip, and the architecture it is built for (set with the code, not the settings).
    UpdateCode {
        name: String,
        code: Code,
        architecture: String,
    },
    UpdateConfiguration {
        name: String,
        configuration: Configuration,
    },
    SetConcurrency {
        name: String,
        reserved: Option<i32>,
    },
    Tag {
        arn: String,
        change: tags::Change,
    },
    /// Lets the front door (`api_id`, `None`: created by this apply) invoke the function.
    Permit {
        name: String,
        /// The statement to remove first (another API's).
        replace: bool,
        api_id: Option<String>,
        region: String,
        account: String,
    },
}

/// The configuration the contract's function should have.
pub fn configuration(
    config: &DeployConfig,
    desired: &Desired,
    settings: &Settings,
) -> Configuration {
    Configuration {
        runtime: Runtime::Providedal2023.as_str().to_string(),
        handler: HANDLER.to_string(),
        architecture: Architecture::X8664.as_str().to_string(),
        memory_mb: settings.memory_mb,
        timeout_seconds: settings.timeout_seconds,
        role: desired.role_arn(config, Role::Edge),
        environment: BTreeMap::from([
            (
                "CONTRACTC_CONTRACT".to_string(),
                desired.manifest.name.clone(),
            ),
            ("CONTRACTC_STREAM".to_string(), desired.stream(config)),
        ]),
    }
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Option<Current>, DeployError> {
    let name = desired.function(config);
    let got = client.get_function().function_name(&name).send().await;
    let Some(function) = found("lambda:GetFunction", got, |e| {
        e.is_resource_not_found_exception()
    })?
    else {
        return Ok(None);
    };
    let Some(c) = function.configuration() else {
        return Ok(None);
    };
    let configuration = Configuration {
        runtime: c
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: c.handler().unwrap_or_default().to_string(),
        architecture: (c.architectures().first())
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| Architecture::X8664.as_str().to_string()),
        memory_mb: c.memory_size().unwrap_or_default(),
        timeout_seconds: c.timeout().unwrap_or_default(),
        role: c.role().unwrap_or_default().to_string(),
        environment: (c.environment().and_then(|e| e.variables()))
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    };
    let reserved_concurrency = function
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    Ok(Some(Current {
        code_sha256: c.code_sha256().unwrap_or_default().to_string(),
        configuration,
        reserved_concurrency,
        permission: read_permission(client, &name).await?,
        tags: tags::from_map(function.tags()),
    }))
}

/// The source ARN of the front door's statement in the function's resource policy.
async fn read_permission(client: &Client, name: &str) -> Result<Option<String>, DeployError> {
    let got = client.get_policy().function_name(name).send().await;
    let Some(policy) = found("lambda:GetPolicy", got, |e| {
        e.is_resource_not_found_exception()
    })?
    else {
        return Ok(None);
    };
    let document: serde_json::Value =
        serde_json::from_str(policy.policy().unwrap_or("{}")).map_err(crate::invalid)?;
    let statements = document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(statements
        .iter()
        .find(|s| s["Sid"] == PERMISSION_ID)
        .and_then(|s| s["Condition"]["ArnLike"]["AWS:SourceArn"].as_str())
        .map(str::to_string))
}

fn step(resource: String, action: Action, op: Op) -> Step {
    Step {
        resource,
        action,
        op: crate::Op::Function(op),
    }
}

/// Plans the function: created, or its code, configuration and concurrency brought to what
/// `settings` say.
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    settings: &Settings,
    current: Option<&Current>,
    plan: &mut Plan,
) -> Result<(), DeployError> {
    let name = desired.function(config);
    let Some(code) = &settings.code else {
        return Err(DeployError::Invalid(format!(
            "{name}: the edge function's zip is missing: build it with `cargo lambda build \
             --release --x86-64 --output-format zip -p contract-edge` (cargo-lambda and ziglang \
             are on PyPI), or pass --edge-zip"
        )));
    };
    let wanted = configuration(config, desired, settings);
    let Some(have) = current else {
        plan.steps.push(step(
            format!(
                "lambda function {name} ({} MB, {} s, {} bytes of code)",
                settings.memory_mb,
                settings.timeout_seconds,
                code.zip.len()
            ),
            Action::Create,
            Op::Create {
                name: name.clone(),
                configuration: wanted,
                code: code.clone(),
                tags: desired.tags(config),
            },
        ));
        if settings.reserved_concurrency.is_some() {
            plan_concurrency(&name, settings, None, plan);
        }
        return Ok(());
    };
    if have.code_sha256 != code.sha256 || have.configuration.architecture != wanted.architecture {
        plan.steps.push(step(
            format!("lambda function {name} code (sha256 {})", code.sha256),
            Action::Update(vec!["code".into()]),
            Op::UpdateCode {
                name: name.clone(),
                code: code.clone(),
                architecture: wanted.architecture.clone(),
            },
        ));
    }
    if settings_differ(&have.configuration, &wanted) {
        plan.steps.push(step(
            format!("lambda function {name} configuration"),
            Action::Update(differences(&have.configuration, &wanted)),
            Op::UpdateConfiguration {
                name: name.clone(),
                configuration: wanted,
            },
        ));
    }
    if have.reserved_concurrency != settings.reserved_concurrency {
        plan_concurrency(&name, settings, Some(have), plan);
    }
    if let Some(change) = tags::change(&desired.tags(config), &have.tags) {
        plan.steps.push(step(
            format!("lambda function {name}"),
            Action::Update(vec![change.describe()]),
            Op::Tag {
                arn: desired.function_arn(config),
                change,
            },
        ));
    }
    Ok(())
}

fn plan_concurrency(name: &str, settings: &Settings, have: Option<&Current>, plan: &mut Plan) {
    let shown = match settings.reserved_concurrency {
        Some(n) => format!("reserved concurrency {n}"),
        None => "no reserved concurrency".into(),
    };
    plan.steps.push(step(
        format!("lambda function {name} {shown}"),
        Action::for_existing(have.is_some(), "reserved concurrency"),
        Op::SetConcurrency {
            name: name.to_string(),
            reserved: settings.reserved_concurrency,
        },
    ));
}

/// Whether the settings UpdateFunctionConfiguration sets differ (the architecture goes with
/// the code).
fn settings_differ(have: &Configuration, wanted: &Configuration) -> bool {
    !differences(have, wanted).is_empty()
}

/// What differs between two configurations, by setting (the architecture aside).
fn differences(have: &Configuration, wanted: &Configuration) -> Vec<String> {
    let mut what = Vec::new();
    let mut differs = |name: &str, differ: bool| {
        if differ {
            what.push(name.to_string());
        }
    };
    differs("runtime", have.runtime != wanted.runtime);
    differs("handler", have.handler != wanted.handler);
    differs("memory", have.memory_mb != wanted.memory_mb);
    differs("timeout", have.timeout_seconds != wanted.timeout_seconds);
    differs("role", have.role != wanted.role);
    differs("environment", have.environment != wanted.environment);
    what
}

/// The source ARN of the front door `api_id`'s requests: any stage, method and route of it.
pub fn source_arn(region: &str, account: &str, api_id: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/*/*")
}

/// Plans the permission of the front door `api_id` (`None`: created by this plan) to invoke
/// the function (`exists`: the function exists now).
pub fn plan_permission(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&Current>,
    api_id: Option<&str>,
    plan: &mut Plan,
) {
    let have = current.and_then(|c| c.permission.as_deref());
    let wanted = api_id.map(|id| source_arn(&config.region, &config.account_id, id));
    if have.is_some() && have == wanted.as_deref() {
        return;
    }
    let name = desired.function(config);
    plan.steps.push(step(
        format!("lambda function {name} permission for the front door"),
        Action::for_existing(have.is_some(), "front door"),
        Op::Permit {
            name,
            replace: have.is_some(),
            api_id: api_id.map(str::to_string),
            region: config.region.clone(),
            account: config.account_id.clone(),
        },
    ));
}

pub(crate) async fn apply(client: &Client, op: &Op, created: &Created) -> Result<(), DeployError> {
    match op {
        Op::Create {
            name,
            configuration,
            code,
            tags,
        } => create(client, name, configuration, code, tags).await,
        Op::UpdateCode {
            name,
            code,
            architecture,
        } => {
            client
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(code.zip.as_slice()))
                .architectures(Architecture::from(architecture.as_str()))
                .send()
                .await
                .map_err(aws("lambda:UpdateFunctionCode"))?;
            settled(client, name).await
        }
        Op::UpdateConfiguration {
            name,
            configuration,
        } => {
            client
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(configuration.runtime.as_str()))
                .handler(&configuration.handler)
                .memory_size(configuration.memory_mb)
                .timeout(configuration.timeout_seconds)
                .role(&configuration.role)
                .environment(environment(configuration))
                .send()
                .await
                .map_err(aws("lambda:UpdateFunctionConfiguration"))?;
            settled(client, name).await
        }
        Op::SetConcurrency { name, reserved } => set_concurrency(client, name, *reserved).await,
        Op::Tag { arn, change } => tag(client, arn, change).await,
        Op::Permit {
            name,
            replace,
            api_id,
            region,
            account,
        } => {
            let api_id = crate::resolve(api_id, &created.edge_api, "front door http api")?;
            permit(
                client,
                name,
                *replace,
                &source_arn(region, account, &api_id),
            )
            .await
        }
    }
}

fn environment(configuration: &Configuration) -> Environment {
    Environment::builder()
        .set_variables(Some(
            configuration.environment.clone().into_iter().collect(),
        ))
        .build()
}

/// Creates the function. A role created moments before may not be assumable yet (IAM is
/// eventually consistent): that refusal is retried for a while.
async fn create(
    client: &Client,
    name: &str,
    configuration: &Configuration,
    code: &Code,
    tags: &[(String, String)],
) -> Result<(), DeployError> {
    let mut wait = Duration::from_secs(2);
    for attempt in 1.. {
        let sent = client
            .create_function()
            .function_name(name)
            .runtime(Runtime::from(configuration.runtime.as_str()))
            .handler(&configuration.handler)
            .architectures(Architecture::from(configuration.architecture.as_str()))
            .memory_size(configuration.memory_mb)
            .timeout(configuration.timeout_seconds)
            .role(&configuration.role)
            .environment(environment(configuration))
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(code.zip.as_slice()))
                    .build(),
            )
            .set_tags(Some(tags.iter().cloned().collect()))
            .description("contractc: the contract's edge function, managed by contract-deploy")
            .send()
            .await;
        match sent {
            Ok(_) => return settled(client, name).await,
            Err(error)
                if attempt < 8
                    && error.as_service_error().is_some_and(|e| {
                        use aws_sdk_lambda::error::ProvideErrorMetadata;
                        e.is_invalid_parameter_value_exception()
                            && e.message().is_some_and(|m| m.contains("role"))
                    }) =>
            {
                tracing::info!(attempt, "the function's role is not assumable yet: waiting");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(error) => return Err(aws("lambda:CreateFunction")(error)),
        }
    }
    Ok(())
}

/// Brings the function's tags to the wanted ones (keys under `contractc:` only).
async fn tag(client: &Client, arn: &str, change: &tags::Change) -> Result<(), DeployError> {
    if !change.set.is_empty() {
        client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(change.set.iter().cloned().collect()))
            .send()
            .await
            .map_err(aws("lambda:TagResource"))?;
    }
    if !change.remove.is_empty() {
        client
            .untag_resource()
            .resource(arn)
            .set_tag_keys(Some(change.remove.clone()))
            .send()
            .await
            .map_err(aws("lambda:UntagResource"))?;
    }
    Ok(())
}

/// Waits until the function is active and its last update is done: Lambda refuses another
/// update of a function that is being created or updated (ResourceConflictException).
async fn settled(client: &Client, name: &str) -> Result<(), DeployError> {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    for _ in 0..60 {
        let got = client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(aws("lambda:GetFunctionConfiguration"))?;
        let busy = got.state() == Some(&State::Pending)
            || got.last_update_status() == Some(&LastUpdateStatus::InProgress);
        if !busy {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(DeployError::Invalid(format!(
        "lambda function {name} is still being created or updated after 2 minutes: run --apply again"
    )))
}

async fn set_concurrency(
    client: &Client,
    name: &str,
    reserved: Option<i32>,
) -> Result<(), DeployError> {
    match reserved {
        Some(n) => {
            client
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .map_err(aws("lambda:PutFunctionConcurrency"))?;
        }
        None => {
            client
                .delete_function_concurrency()
                .function_name(name)
                .send()
                .await
                .map_err(aws("lambda:DeleteFunctionConcurrency"))?;
        }
    }
    Ok(())
}

async fn permit(
    client: &Client,
    name: &str,
    replace: bool,
    source_arn: &str,
) -> Result<(), DeployError> {
    if replace {
        client
            .remove_permission()
            .function_name(name)
            .statement_id(PERMISSION_ID)
            .send()
            .await
            .map_err(aws("lambda:RemovePermission"))?;
    }
    client
        .add_permission()
        .function_name(name)
        .statement_id(PERMISSION_ID)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(source_arn)
        .send()
        .await
        .map_err(aws("lambda:AddPermission"))?;
    Ok(())
}
