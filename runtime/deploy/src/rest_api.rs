//! The API Gateway REST API: the request model, a body validator, the route's resources, the
//! POST method, its Kinesis integration, and a deployment to the route's stage.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::{
    GatewayResponseType, IntegrationType, Op as PatchOp, PatchOperation,
};
use contract_support::manifest::EDGE_SECRET_STAGE_VARIABLE;
use serde_json::Value;

use crate::tags::{self, Tags};
use crate::{
    Action, Created, DeployConfig, DeployError, Desired, Step, aws, found, resolve, resource_path,
};

/// The name of the request validator that checks the body only.
const VALIDATOR: &str = "body-only";

/// What exists of the contract's REST API (read only when the API itself exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub id: String,
    /// Model name → schema, for every model of the API.
    pub models: HashMap<String, String>,
    pub validator_id: Option<String>,
    /// Resource path → id, for every resource of the API.
    pub resources: HashMap<String, String>,
    /// Resource path → its POST method and integration, for the routes' resources that exist.
    pub routes: HashMap<String, RouteState>,
    pub has_deployment: bool,
    /// The front door's shared secret: the stage variable the request template compares the
    /// `x-contractc-edge` header with (`None`: the stage or the variable does not exist).
    pub edge_secret: Option<String>,
    /// The gateway response for bodies the model refuses (`None`: API Gateway's default).
    pub bad_request_body: Option<GatewayResponse>,
    /// The stage's access log settings: (destination ARN, format).
    pub access_log: Option<(String, String)>,
    pub tags: Tags,
}

/// The POST method of one route's resource and its integration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteState {
    pub method: Option<MethodState>,
    pub integration: Option<IntegrationState>,
}

/// One ingest route of the REST API as the generated artefacts describe it: the single-event
/// route (`PutRecord`) and, when the contract has one, the batch route (`PutRecords`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteSpec {
    /// The contract's route (`/prod/put-record`): its first segment is the stage.
    pub route: String,
    pub model_name: String,
    /// The model's schema, as generated.
    pub model: String,
    /// The Kinesis action of the integration.
    pub action: &'static str,
}

/// Method responses (status → response parameter → required) and integration responses
/// (status → response) of the POST method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Responses {
    pub method: BTreeMap<String, BTreeMap<String, bool>>,
    pub integration: BTreeMap<String, IntegrationResponse>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationResponse {
    /// `None`: the default response (any status no pattern matches).
    pub selection_pattern: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayResponse {
    pub status: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodState {
    /// The model of `application/json` bodies.
    pub model: Option<String>,
    pub validator_id: Option<String>,
    pub responses: BTreeMap<String, BTreeMap<String, bool>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationState {
    pub uri: String,
    /// The `application/json` request template.
    pub template: Option<String>,
    pub responses: BTreeMap<String, IntegrationResponse>,
}

/// One call (or delete-and-create pair) on the REST API. `api_id` and the other ids are `None`
/// when an earlier step of the plan creates what they refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateApi {
        name: String,
        description: String,
        tags: Vec<(String, String)>,
    },
    Tag {
        api_id: String,
        region: String,
        change: tags::Change,
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
    /// Method and integration responses (existing ones are deleted first: API Gateway does
    /// not replace them in place).
    PutResponses {
        api_id: Option<String>,
        resource_id: Option<String>,
        resource_path: String,
        responses: Responses,
        existing: Responses,
    },
    PutGatewayResponse {
        api_id: Option<String>,
        response: GatewayResponse,
    },
    CreateDeployment {
        api_id: Option<String>,
        stage: String,
        /// The secret the stage has: a deployment must keep its variables.
        edge_secret: Option<String>,
        /// The access log settings the stage has, set again after deploying for the same
        /// reason (`None`: a `SetAccessLog` step follows).
        access_log: Option<(String, String)>,
    },
    SetAccessLog {
        api_id: Option<String>,
        stage: String,
        destination: String,
        format: String,
    },
    /// Generates the front door's secret and sets it as the stage's variable.
    CreateEdgeSecret {
        api_id: Option<String>,
        stage: String,
    },
}

/// What the REST API's plan hands on to the edge's: the API's id and the front door's secret
/// (`None`: created by this plan's apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub api_id: Option<String>,
    pub edge_secret: Option<String>,
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
    let Some(api) = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name.as_str()))
    else {
        return Ok(None);
    };
    let id = api.id().unwrap_or_default().to_string();
    let tags = tags::from_map(api.tags());
    let listed = client
        .get_models()
        .rest_api_id(&id)
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetModels"))?;
    let models = listed
        .items()
        .iter()
        .filter_map(|m| Some((m.name()?.to_string(), m.schema()?.to_string())))
        .collect();
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
    let mut routes = HashMap::new();
    for spec in desired.rest_routes() {
        let (_, path) = resource_path(&spec.route);
        if let Some(resource_id) = resources.get(&path) {
            let (method, integration) = read_method(client, &id, resource_id).await?;
            routes.insert(
                path,
                RouteState {
                    method,
                    integration,
                },
            );
        }
    }
    let deployments = client
        .get_deployments()
        .rest_api_id(&id)
        .send()
        .await
        .map_err(aws("apigateway:GetDeployments"))?;
    let (stage, _) = resource_path(&desired.manifest.ingest.route);
    let got = client
        .get_stage()
        .rest_api_id(&id)
        .stage_name(&stage)
        .send()
        .await;
    let stage_state = found("apigateway:GetStage", got, |e| e.is_not_found_exception())?;
    let edge_secret = stage_state
        .as_ref()
        .and_then(|s| s.variables()?.get(EDGE_SECRET_STAGE_VARIABLE).cloned());
    let access_log = stage_state
        .as_ref()
        .and_then(|s| s.access_log_settings())
        .and_then(|a| Some((a.destination_arn()?.to_string(), a.format()?.to_string())));
    let got = client
        .get_gateway_response()
        .rest_api_id(&id)
        .response_type(GatewayResponseType::BadRequestBody)
        .send()
        .await;
    let bad_request_body = found("apigateway:GetGatewayResponse", got, |e| {
        e.is_not_found_exception()
    })?
    .map(|r| GatewayResponse {
        status: r.status_code().map(str::to_string),
        parameters: sorted(r.response_parameters()),
        templates: sorted(r.response_templates()),
    });
    Ok(Some(Current {
        id,
        models,
        validator_id,
        resources,
        routes,
        has_deployment: !deployments.items().is_empty(),
        edge_secret,
        bad_request_body,
        access_log,
        tags,
    }))
}

fn sorted<V: Clone>(map: Option<&HashMap<String, V>>) -> BTreeMap<String, V> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
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
        responses: method
            .method_responses()
            .map(|r| {
                r.iter()
                    .map(|(status, m)| (status.clone(), sorted(m.response_parameters())))
                    .collect()
            })
            .unwrap_or_default(),
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
            responses: i
                .integration_responses()
                .map(|r| {
                    r.iter()
                        .map(|(status, r)| {
                            (
                                status.clone(),
                                IntegrationResponse {
                                    selection_pattern: r
                                        .selection_pattern()
                                        .filter(|p| !p.is_empty())
                                        .map(str::to_string),
                                    parameters: sorted(r.response_parameters()),
                                    templates: sorted(r.response_templates()),
                                },
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    });
    Ok((Some(method), integration))
}

/// Plans the REST API; returns its id when it exists already (`None`: the plan creates it)
/// and the front door's secret when the stage has one.
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&Current>,
    steps: &mut Vec<Step>,
) -> Planned {
    let name = desired.api(config);
    let push = |steps: &mut Vec<Step>, resource: String, action: Action, op: Op| {
        steps.push(Step {
            resource,
            action,
            op: crate::Op::RestApi(op),
        })
    };
    match current {
        None => push(
            steps,
            format!("api gateway rest api {name}"),
            Action::Create,
            Op::CreateApi {
                name: name.clone(),
                description: format!("contractc: {}", desired.manifest.name),
                tags: desired.tags(config),
            },
        ),
        Some(api) => {
            if let Some(change) = tags::change(&desired.tags(config), &api.tags) {
                push(
                    steps,
                    format!("api gateway rest api {name}"),
                    Action::Update(vec![change.describe()]),
                    Op::Tag {
                        api_id: api.id.clone(),
                        region: config.region.clone(),
                        change,
                    },
                );
            }
        }
    }
    // Plan against an empty API when it does not exist: everything in it gets created.
    let empty = Current::default();
    let have = current.unwrap_or(&empty);
    let api_id = current.map(|c| c.id.clone());
    // Anything changed needs a new deployment to take effect.
    let mut changed = current.is_none();

    if have.validator_id.is_none() {
        changed = true;
        push(
            steps,
            format!("api gateway request validator {name}/{VALIDATOR}"),
            Action::Create,
            Op::CreateValidator {
                api_id: api_id.clone(),
            },
        );
    }

    // Resources created by this plan (a batch route may sit under the single route's).
    let mut planned = HashSet::new();
    for spec in desired.rest_routes() {
        let mut route_steps = Vec::new();
        plan_route(
            config,
            desired,
            &spec,
            have,
            &api_id,
            &mut planned,
            &mut route_steps,
        );
        changed |= !route_steps.is_empty();
        steps.extend(route_steps);
    }

    let bad_request_body = bad_request_body();
    if have.bad_request_body.as_ref() != Some(&bad_request_body) {
        changed = true;
        push(
            steps,
            format!(
                "api gateway gateway response {name} BAD_REQUEST_BODY (400 with the model's errors)"
            ),
            Action::for_existing(have.bad_request_body.is_some(), "status or template"),
            Op::PutGatewayResponse {
                api_id: api_id.clone(),
                response: bad_request_body,
            },
        );
    }

    let (stage, _) = resource_path(&desired.manifest.ingest.route);
    let access_log = (
        crate::logs::group_arn(config, desired, false),
        crate::logs::REST_FORMAT.to_string(),
    );
    let access_log_ok = have.access_log.as_ref() == Some(&access_log);
    if changed || !have.has_deployment {
        push(
            steps,
            format!("api gateway deployment {name} stage {stage}"),
            Action::Create,
            Op::CreateDeployment {
                api_id: api_id.clone(),
                stage: stage.clone(),
                edge_secret: have.edge_secret.clone(),
                access_log: access_log_ok.then(|| access_log.clone()),
            },
        );
    }
    if !access_log_ok {
        push(
            steps,
            format!(
                "api gateway stage {name}/{stage} access log → {}",
                access_log.0
            ),
            Action::for_existing(have.access_log.is_some(), "access log settings"),
            Op::SetAccessLog {
                api_id: api_id.clone(),
                stage: stage.clone(),
                destination: access_log.0,
                format: access_log.1,
            },
        );
    }
    if have.edge_secret.is_none() {
        // Shown as a create only: the value is never printed.
        push(
            steps,
            format!(
                "api gateway stage variable {name}/{stage} {EDGE_SECRET_STAGE_VARIABLE} (front door secret)"
            ),
            Action::Create,
            Op::CreateEdgeSecret {
                api_id: api_id.clone(),
                stage,
            },
        );
    }
    Planned {
        api_id,
        edge_secret: have.edge_secret.clone(),
    }
}

/// Plans one route: its model, the resources of its path, the POST method, the Kinesis
/// integration and the responses. `planned` holds the resource paths earlier routes of this
/// plan create.
fn plan_route(
    config: &DeployConfig,
    desired: &Desired,
    spec: &RouteSpec,
    have: &Current,
    api_id: &Option<String>,
    planned: &mut HashSet<String>,
    steps: &mut Vec<Step>,
) {
    let name = desired.api(config);
    let mut push = |resource: String, action: Action, op: Op| {
        steps.push(Step {
            resource,
            action,
            op: crate::Op::RestApi(op),
        })
    };
    let model_name = spec.model_name.clone();
    let existing_model = have.models.get(&model_name);
    let same_model = existing_model.and_then(|s| serde_json::from_str::<Value>(s).ok())
        == serde_json::from_str::<Value>(&spec.model).ok();
    if !same_model {
        let replace = existing_model.is_some();
        push(
            format!("api gateway model {model_name}"),
            Action::for_existing(replace, "model schema"),
            Op::PutModel {
                api_id: api_id.clone(),
                name: model_name.clone(),
                schema: spec.model.clone(),
                replace,
            },
        );
    }

    let (_, path) = resource_path(&spec.route);
    // The root resource comes with the API.
    let mut parent_id = have.resources.get("/").cloned();
    let mut parent_path = "/".to_string();
    let mut walked = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        walked = format!("{walked}/{segment}");
        let existing = have.resources.get(&walked).cloned();
        if existing.is_none() && planned.insert(walked.clone()) {
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

    let route = have.routes.get(&path);
    let method = route.and_then(|r| r.method.as_ref());
    let method_ok = method.is_some_and(|m| {
        m.model.as_deref() == Some(model_name.as_str())
            && m.validator_id.is_some()
            && m.validator_id == have.validator_id
    });
    // Replacing the method drops its integration.
    let mut integration = route.and_then(|r| r.integration.as_ref());
    if !method_ok {
        let replace = method.is_some();
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
        .request_template(&spec.route)
        .replace("${stream_name}", &desired.stream(config));
    let uri = format!(
        "arn:aws:apigateway:{}:kinesis:action/{}",
        config.region, spec.action
    );
    let integration_ok = integration
        .is_some_and(|i| i.uri == uri && i.template.as_deref() == Some(template.as_str()));
    // A new integration comes without responses, a new method without method responses.
    let existing = Responses {
        method: method
            .filter(|_| method_ok)
            .map(|m| m.responses.clone())
            .unwrap_or_default(),
        integration: integration
            .filter(|_| integration_ok)
            .map(|i| i.responses.clone())
            .unwrap_or_default(),
    };
    if !integration_ok {
        push(
            format!(
                "api gateway kinesis integration {name}{path} ({})",
                spec.action
            ),
            Action::for_existing(integration.is_some(), "integration"),
            Op::PutIntegration {
                api_id: api_id.clone(),
                resource_id,
                resource_path: path.clone(),
                uri,
                credentials: crate::iam::role_arn(config, desired, crate::iam::Kind::ApiGateway),
                template,
            },
        );
    }

    let responses = desired.responses(&spec.route);
    if existing != responses {
        let exists = !existing.method.is_empty() || !existing.integration.is_empty();
        let statuses: Vec<&str> = responses.integration.keys().map(String::as_str).collect();
        push(
            format!(
                "api gateway responses POST {name}{path} ({})",
                statuses.join(", ")
            ),
            Action::for_existing(exists, "method or integration responses"),
            Op::PutResponses {
                api_id: api_id.clone(),
                resource_id: have.resources.get(&path).cloned(),
                resource_path: path,
                responses,
                existing,
            },
        );
    }
}

/// The CORS headers the reference's Lambda answers with, as method response parameters.
const CORS_HEADERS: [(&str, &str); 2] = [
    ("Access-Control-Allow-Origin", "'*'"),
    ("Access-Control-Allow-Credentials", "'true'"),
];

/// The body of a refused event: API Gateway's message and the model's validation errors.
/// `escapeJavaScript` keeps double quotes in the errors from breaking the JSON; its `\'` is no
/// JSON escape, so it is turned back into `'` (AWS's documented idiom).
pub const BAD_REQUEST_BODY_TEMPLATE: &str = "{\"message\": $context.error.messageString, \"errors\": \"$util.escapeJavaScript($context.error.validationErrorString).replaceAll(\"\\\\'\",\"'\")\"}";

pub(crate) fn bad_request_body() -> GatewayResponse {
    GatewayResponse {
        status: Some("400".into()),
        parameters: CORS_HEADERS
            .iter()
            .map(|(h, v)| (format!("gatewayresponse.header.{h}"), v.to_string()))
            .collect(),
        templates: BTreeMap::from([(
            "application/json".to_string(),
            BAD_REQUEST_BODY_TEMPLATE.to_string(),
        )]),
    }
}

impl Desired {
    /// The REST API's routes: the single-event route and, when the contract has one, the
    /// batch route.
    pub(crate) fn rest_routes(&self) -> Vec<RouteSpec> {
        let title = |model: &str| {
            serde_json::from_str::<Value>(model)
                .ok()
                .and_then(|m| m["title"].as_str().map(str::to_string))
                .unwrap_or_else(|| "Event".to_string())
        };
        let mut routes = vec![RouteSpec {
            route: self.manifest.ingest.route.clone(),
            model_name: title(&self.model),
            model: self.model.clone(),
            action: "PutRecord",
        }];
        if let (Some(route), Some(model)) = (&self.manifest.ingest.batch_route, &self.batch_model) {
            routes.push(RouteSpec {
                route: route.clone(),
                model_name: title(model),
                model: model.clone(),
                action: "PutRecords",
            });
        }
        routes
    }

    /// The generated Kinesis integration of a route.
    fn integration(&self, route: &str) -> &Value {
        &self.openapi["paths"][route]["post"]["x-amazon-apigateway-integration"]
    }

    /// The `application/json` request template of a route's integration, as generated.
    pub(crate) fn request_template(&self, route: &str) -> String {
        self.integration(route)["requestTemplates"]["application/json"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A route's POST responses: the generated integration responses (the default one for
    /// what Kinesis took, `[45]\d{2}` for what it refused), with method responses declaring
    /// their headers.
    pub(crate) fn responses(&self, route: &str) -> Responses {
        let mut integration: BTreeMap<String, IntegrationResponse> = BTreeMap::new();
        if let Some(responses) = self.integration(route)["responses"].as_object() {
            for (pattern, response) in responses {
                let Some(status) = response["statusCode"].as_str() else {
                    continue;
                };
                integration.insert(
                    status.to_string(),
                    IntegrationResponse {
                        selection_pattern: (pattern != "default").then(|| pattern.clone()),
                        parameters: string_map(&response["responseParameters"]),
                        templates: string_map(&response["responseTemplates"]),
                    },
                );
            }
        }
        let method = integration
            .iter()
            .map(|(status, r)| {
                let headers = r.parameters.keys().map(|k| (k.clone(), false)).collect();
                (status.clone(), headers)
            })
            .collect();
        Responses {
            method,
            integration,
        }
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn apply(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.rest_api, "rest api");
    match op {
        Op::CreateApi {
            name,
            description,
            tags,
        } => {
            let api = client
                .create_rest_api()
                .name(name)
                .description(description)
                .set_tags(Some(tags.iter().cloned().collect()))
                .send()
                .await
                .map_err(aws("apigateway:CreateRestApi"))?;
            created.rest_api = api.id().map(str::to_string);
            if let Some(root) = api.root_resource_id() {
                created.resources.insert("/".into(), root.to_string());
            }
        }
        Op::Tag {
            api_id,
            region,
            change,
        } => {
            tag(
                client,
                &format!("arn:aws:apigateway:{region}::/restapis/{api_id}"),
                change,
            )
            .await?
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
        Op::PutResponses {
            api_id,
            resource_id,
            resource_path,
            responses,
            existing,
        } => {
            let api_id = api(api_id)?;
            let resource_id = resolve(
                resource_id,
                &created.resources.get(resource_path).cloned(),
                "resource",
            )?;
            put_responses(client, &api_id, &resource_id, responses, existing).await?;
        }
        Op::PutGatewayResponse { api_id, response } => {
            client
                .put_gateway_response()
                .rest_api_id(api(api_id)?)
                .response_type(GatewayResponseType::BadRequestBody)
                .set_status_code(response.status.clone())
                .set_response_parameters(Some(response.parameters.clone().into_iter().collect()))
                .set_response_templates(Some(response.templates.clone().into_iter().collect()))
                .send()
                .await
                .map_err(aws("apigateway:PutGatewayResponse"))?;
        }
        Op::CreateDeployment {
            api_id,
            stage,
            edge_secret,
            access_log,
        } => {
            // Deploying to a stage may reset its variables (moto does): pass the secret along.
            let secret = edge_secret.clone().or_else(|| created.edge_secret.clone());
            client
                .create_deployment()
                .rest_api_id(api(api_id)?)
                .stage_name(stage)
                .set_variables(
                    secret.map(|s| HashMap::from([(EDGE_SECRET_STAGE_VARIABLE.to_string(), s)])),
                )
                .send()
                .await
                .map_err(aws("apigateway:CreateDeployment"))?;
            if let Some((destination, format)) = access_log {
                set_access_log(client, &api(api_id)?, stage, destination, format).await?;
            }
        }
        Op::SetAccessLog {
            api_id,
            stage,
            destination,
            format,
        } => set_access_log(client, &api(api_id)?, stage, destination, format).await?,
        Op::CreateEdgeSecret { api_id, stage } => {
            let secret = new_secret();
            let patch = PatchOperation::builder()
                .op(PatchOp::Replace)
                .path(format!("/variables/{EDGE_SECRET_STAGE_VARIABLE}"))
                .value(&secret)
                .build();
            client
                .update_stage()
                .rest_api_id(api(api_id)?)
                .stage_name(stage)
                .patch_operations(patch)
                .send()
                .await
                .map_err(aws("apigateway:UpdateStage"))?;
            created.edge_secret = Some(secret);
        }
    }
    Ok(())
}

/// 244 random bits (two v4 uuids), hex: only the front door and the REST API's stage know it.
fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Replaces the POST method's responses: old integration responses, then old method responses
/// are deleted (an integration response needs its method response), then the new ones put.
async fn put_responses(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    responses: &Responses,
    existing: &Responses,
) -> Result<(), DeployError> {
    for status in existing.integration.keys() {
        client
            .delete_integration_response()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method("POST")
            .status_code(status)
            .send()
            .await
            .map_err(aws("apigateway:DeleteIntegrationResponse"))?;
    }
    for status in existing.method.keys() {
        client
            .delete_method_response()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method("POST")
            .status_code(status)
            .send()
            .await
            .map_err(aws("apigateway:DeleteMethodResponse"))?;
    }
    for (status, headers) in &responses.method {
        client
            .put_method_response()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method("POST")
            .status_code(status)
            .set_response_parameters(Some(headers.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws("apigateway:PutMethodResponse"))?;
    }
    for (status, response) in &responses.integration {
        client
            .put_integration_response()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method("POST")
            .status_code(status)
            .set_selection_pattern(response.selection_pattern.clone())
            .set_response_parameters(Some(response.parameters.clone().into_iter().collect()))
            .set_response_templates(Some(response.templates.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws("apigateway:PutIntegrationResponse"))?;
    }
    Ok(())
}

async fn set_access_log(
    client: &Client,
    api_id: &str,
    stage: &str,
    destination: &str,
    format: &str,
) -> Result<(), DeployError> {
    let patch = |path: &str, value: &str| {
        PatchOperation::builder()
            .op(PatchOp::Replace)
            .path(path)
            .value(value)
            .build()
    };
    client
        .update_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .patch_operations(patch("/accessLogSettings/destinationArn", destination))
        .patch_operations(patch("/accessLogSettings/format", format))
        .send()
        .await
        .map_err(aws("apigateway:UpdateStage"))?;
    Ok(())
}

/// Brings an API Gateway resource's tags to the wanted ones.
async fn tag(client: &Client, arn: &str, change: &tags::Change) -> Result<(), DeployError> {
    if !change.set.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(change.set.iter().cloned().collect()))
            .send()
            .await
            .map_err(aws("apigateway:TagResource"))?;
    }
    if !change.remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(change.remove.clone()))
            .send()
            .await
            .map_err(aws("apigateway:UntagResource"))?;
    }
    Ok(())
}
