//! The API Gateway REST API: the request model, a body validator, the route's resources, the
//! POST method, its Kinesis integration, and a deployment to the route's stage.

use std::collections::HashMap;

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::IntegrationType;
use serde_json::Value;

use crate::{
    Action, Created, DeployConfig, DeployError, Desired, Step, aws, found, resolve, resource_path,
};

/// The name of the request validator that checks the body only.
const VALIDATOR: &str = "body-only";

/// What exists of the contract's REST API (read only when the API itself exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub id: String,
    /// The schema of the contract's model, when the model exists.
    pub model_schema: Option<String>,
    pub validator_id: Option<String>,
    /// Resource path → id, for every resource of the API.
    pub resources: HashMap<String, String>,
    /// The POST method on the route's resource.
    pub method: Option<MethodState>,
    pub integration: Option<IntegrationState>,
    pub has_deployment: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodState {
    /// The model of `application/json` bodies.
    pub model: Option<String>,
    pub validator_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationState {
    pub uri: String,
    /// The `application/json` request template.
    pub template: Option<String>,
}

/// One call (or delete-and-create pair) on the REST API. `api_id` and the other ids are `None`
/// when an earlier step of the plan creates what they refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateApi {
        name: String,
        description: String,
    },
    PutModel {
        api_id: Option<String>,
        name: String,
        schema: String,
        /// Delete the existing model first (models cannot be updated in place).
        replace: bool,
    },
    CreateValidator {
        api_id: Option<String>,
    },
    CreateResource {
        api_id: Option<String>,
        parent_id: Option<String>,
        parent_path: String,
        path_part: String,
        path: String,
    },
    PutMethod {
        api_id: Option<String>,
        resource_id: Option<String>,
        resource_path: String,
        validator_id: Option<String>,
        model_name: String,
        replace: bool,
    },
    PutIntegration {
        api_id: Option<String>,
        resource_id: Option<String>,
        resource_path: String,
        uri: String,
        credentials: String,
        template: String,
    },
    CreateDeployment {
        api_id: Option<String>,
        stage: String,
    },
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Option<Current>, DeployError> {
    let name = desired.api(config);
    let apis = client
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetRestApis"))?;
    let Some(id) = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name.as_str()))
        .and_then(|a| a.id().map(str::to_string))
    else {
        return Ok(None);
    };
    let model_name = desired.model_name();
    let models = client
        .get_models()
        .rest_api_id(&id)
        .send()
        .await
        .map_err(aws("apigateway:GetModels"))?;
    let model_schema = models
        .items()
        .iter()
        .find(|m| m.name() == Some(model_name.as_str()))
        .and_then(|m| m.schema().map(str::to_string));
    let validators = client
        .get_request_validators()
        .rest_api_id(&id)
        .send()
        .await
        .map_err(aws("apigateway:GetRequestValidators"))?;
    let validator_id = validators
        .items()
        .iter()
        .find(|v| v.name() == Some(VALIDATOR))
        .and_then(|v| v.id().map(str::to_string));
    let listed = client
        .get_resources()
        .rest_api_id(&id)
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetResources"))?;
    let resources: HashMap<String, String> = listed
        .items()
        .iter()
        .filter_map(|r| Some((r.path()?.to_string(), r.id()?.to_string())))
        .collect();
    let (_, path) = resource_path(&desired.manifest.ingest.route);
    let (method, integration) = match resources.get(&path) {
        Some(resource_id) => read_method(client, &id, resource_id).await?,
        None => (None, None),
    };
    let deployments = client
        .get_deployments()
        .rest_api_id(&id)
        .send()
        .await
        .map_err(aws("apigateway:GetDeployments"))?;
    Ok(Some(Current {
        id,
        model_schema,
        validator_id,
        resources,
        method,
        integration,
        has_deployment: !deployments.items().is_empty(),
    }))
}

/// The POST method of a resource and its integration.
async fn read_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
) -> Result<(Option<MethodState>, Option<IntegrationState>), DeployError> {
    let got = client
        .get_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method("POST")
        .send()
        .await;
    let Some(method) = found("apigateway:GetMethod", got, |e| e.is_not_found_exception())? else {
        return Ok((None, None));
    };
    let method = MethodState {
        model: method
            .request_models()
            .and_then(|r| r.get("application/json"))
            .cloned(),
        validator_id: method.request_validator_id().map(str::to_string),
    };
    let got = client
        .get_integration()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method("POST")
        .send()
        .await;
    let integration = found("apigateway:GetIntegration", got, |e| {
        e.is_not_found_exception()
    })?
    // An integration without a URI is no integration (a fresh method answers with an empty one).
    .and_then(|i| {
        let uri = i.uri().filter(|u| !u.is_empty())?.to_string();
        Some(IntegrationState {
            uri,
            template: i
                .request_templates()
                .and_then(|t| t.get("application/json"))
                .cloned(),
        })
    });
    Ok((Some(method), integration))
}

/// Plans the REST API; returns its id when it exists already (`None`: the plan creates it).
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&Current>,
    steps: &mut Vec<Step>,
) -> Option<String> {
    let name = desired.api(config);
    let mut push = |resource: String, action: Action, op: Op| {
        steps.push(Step {
            resource,
            action,
            op: crate::Op::RestApi(op),
        })
    };
    if current.is_none() {
        push(
            format!("api gateway rest api {name}"),
            Action::Create,
            Op::CreateApi {
                name: name.clone(),
                description: format!("contractc: {}", desired.manifest.name),
            },
        );
    }
    // Plan against an empty API when it does not exist: everything in it gets created.
    let empty = Current::default();
    let have = current.unwrap_or(&empty);
    let api_id = current.map(|c| c.id.clone());
    // Anything changed needs a new deployment to take effect.
    let mut changed = current.is_none();

    let model_name = desired.model_name();
    let same_model = have
        .model_schema
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        == Some(desired.model_json());
    if !same_model {
        changed = true;
        let replace = have.model_schema.is_some();
        push(
            format!("api gateway model {model_name}"),
            Action::for_existing(replace, "model schema"),
            Op::PutModel {
                api_id: api_id.clone(),
                name: model_name.clone(),
                schema: desired.model.clone(),
                replace,
            },
        );
    }

    if have.validator_id.is_none() {
        changed = true;
        push(
            format!("api gateway request validator {name}/{VALIDATOR}"),
            Action::Create,
            Op::CreateValidator {
                api_id: api_id.clone(),
            },
        );
    }

    let (stage, path) = resource_path(&desired.manifest.ingest.route);
    // The root resource comes with the API.
    let mut parent_id = have.resources.get("/").cloned();
    let mut parent_path = "/".to_string();
    let mut walked = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        walked = format!("{walked}/{segment}");
        let existing = have.resources.get(&walked).cloned();
        if existing.is_none() {
            changed = true;
            push(
                format!("api gateway resource {name}{walked}"),
                Action::Create,
                Op::CreateResource {
                    api_id: api_id.clone(),
                    parent_id: parent_id.clone(),
                    parent_path: parent_path.clone(),
                    path_part: segment.to_string(),
                    path: walked.clone(),
                },
            );
        }
        parent_id = existing;
        parent_path = walked.clone();
    }
    let resource_id = parent_id;

    let method_ok = have.method.as_ref().is_some_and(|m| {
        m.model.as_deref() == Some(model_name.as_str())
            && m.validator_id.is_some()
            && m.validator_id == have.validator_id
    });
    // Replacing the method drops its integration.
    let mut integration = have.integration.as_ref();
    if !method_ok {
        changed = true;
        let replace = have.method.is_some();
        integration = None;
        push(
            format!("api gateway method POST {name}{path}"),
            Action::for_existing(replace, "method model or validator"),
            Op::PutMethod {
                api_id: api_id.clone(),
                resource_id: resource_id.clone(),
                resource_path: path.clone(),
                validator_id: have.validator_id.clone(),
                model_name,
                replace,
            },
        );
    }

    let template = desired
        .request_template()
        .replace("${stream_name}", &desired.stream(config));
    let uri = format!(
        "arn:aws:apigateway:{}:kinesis:action/PutRecord",
        config.region
    );
    let integration_ok = integration
        .is_some_and(|i| i.uri == uri && i.template.as_deref() == Some(template.as_str()));
    if !integration_ok {
        changed = true;
        push(
            format!("api gateway kinesis integration {name}{path}"),
            Action::for_existing(integration.is_some(), "integration"),
            Op::PutIntegration {
                api_id: api_id.clone(),
                resource_id,
                resource_path: path,
                uri,
                credentials: config.api_role(),
                template,
            },
        );
    }

    if changed || !have.has_deployment {
        push(
            format!("api gateway deployment {name} stage {stage}"),
            Action::Create,
            Op::CreateDeployment {
                api_id: api_id.clone(),
                stage,
            },
        );
    }
    api_id
}

pub(crate) async fn apply(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.rest_api, "rest api");
    match op {
        Op::CreateApi { name, description } => {
            let api = client
                .create_rest_api()
                .name(name)
                .description(description)
                .send()
                .await
                .map_err(aws("apigateway:CreateRestApi"))?;
            created.rest_api = api.id().map(str::to_string);
            if let Some(root) = api.root_resource_id() {
                created.resources.insert("/".into(), root.to_string());
            }
        }
        Op::PutModel {
            api_id,
            name,
            schema,
            replace,
        } => {
            let api_id = api(api_id)?;
            if *replace {
                client
                    .delete_model()
                    .rest_api_id(&api_id)
                    .model_name(name)
                    .send()
                    .await
                    .map_err(aws("apigateway:DeleteModel"))?;
            }
            client
                .create_model()
                .rest_api_id(&api_id)
                .name(name)
                .content_type("application/json")
                .schema(schema)
                .send()
                .await
                .map_err(aws("apigateway:CreateModel"))?;
        }
        Op::CreateValidator { api_id } => {
            let validator = client
                .create_request_validator()
                .rest_api_id(api(api_id)?)
                .name(VALIDATOR)
                .validate_request_body(true)
                .validate_request_parameters(false)
                .send()
                .await
                .map_err(aws("apigateway:CreateRequestValidator"))?;
            created.validator = validator.id().map(str::to_string);
        }
        Op::CreateResource {
            api_id,
            parent_id,
            parent_path,
            path_part,
            path,
        } => {
            let api_id = api(api_id)?;
            let parent = resolve(
                parent_id,
                &created.resources.get(parent_path).cloned(),
                "parent resource",
            )?;
            let resource = client
                .create_resource()
                .rest_api_id(api_id)
                .parent_id(parent)
                .path_part(path_part)
                .send()
                .await
                .map_err(aws("apigateway:CreateResource"))?;
            if let Some(id) = resource.id() {
                created.resources.insert(path.clone(), id.to_string());
            }
        }
        Op::PutMethod {
            api_id,
            resource_id,
            resource_path,
            validator_id,
            model_name,
            replace,
        } => {
            let api_id = api(api_id)?;
            let resource_id = resolve(
                resource_id,
                &created.resources.get(resource_path).cloned(),
                "resource",
            )?;
            let validator_id = resolve(validator_id, &created.validator, "request validator")?;
            if *replace {
                client
                    .delete_method()
                    .rest_api_id(&api_id)
                    .resource_id(&resource_id)
                    .http_method("POST")
                    .send()
                    .await
                    .map_err(aws("apigateway:DeleteMethod"))?;
            }
            client
                .put_method()
                .rest_api_id(&api_id)
                .resource_id(&resource_id)
                .http_method("POST")
                // The JWT is checked by the authorizer of the HTTP API in front (edge.rs); the
                // REST method itself takes the request as it comes.
                .authorization_type("NONE")
                .request_validator_id(validator_id)
                .request_models("application/json", model_name)
                .send()
                .await
                .map_err(aws("apigateway:PutMethod"))?;
        }
        Op::PutIntegration {
            api_id,
            resource_id,
            resource_path,
            uri,
            credentials,
            template,
        } => {
            let api_id = api(api_id)?;
            let resource_id = resolve(
                resource_id,
                &created.resources.get(resource_path).cloned(),
                "resource",
            )?;
            client
                .put_integration()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method("POST")
                .r#type(IntegrationType::Aws)
                .integration_http_method("POST")
                .uri(uri)
                .credentials(credentials)
                .request_templates("application/json", template)
                .send()
                .await
                .map_err(aws("apigateway:PutIntegration"))?;
        }
        Op::CreateDeployment { api_id, stage } => {
            client
                .create_deployment()
                .rest_api_id(api(api_id)?)
                .stage_name(stage)
                .send()
                .await
                .map_err(aws("apigateway:CreateDeployment"))?;
        }
    }
    Ok(())
}
