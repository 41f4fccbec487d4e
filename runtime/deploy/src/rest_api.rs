//! The API Gateway REST API: the request model, a body validator, the route's resources, the
//! POST method, its Kinesis integration, and a deployment to the route's stage.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::{
    GatewayResponseType, IntegrationType, Op as PatchOp, PatchOperation,
};
use contract_support::manifest::EDGE_SECRET_STAGE_VARIABLE;
use serde_json::Value;

use crate::names::{self, Role, resource_path};
use crate::tags::{self, Tags};
use crate::{Action, Created, DeployConfig, DeployError, Desired, Step, aws, found, logs, resolve};

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
    let Some((id, tags)) = find_api(client, &desired.api(config)).await? else {
        return Ok(None);
    };
    let models = read_models(client, &id).await?;
    let validator_id = read_validator(client, &id).await?;
    let resources = read_resources(client, &id).await?;
    let routes = read_routes(client, &id, desired, &resources).await?;
    let has_deployment = has_deployment(client, &id).await?;
    let (stage, _) = resource_path(&desired.manifest.ingest.route);
    let (edge_secret, access_log) = read_stage(client, &id, &stage).await?;
    let bad_request_body = read_bad_request_body(client, &id).await?;
    Ok(Some(Current {
        id,
        models,
        validator_id,
        resources,
        routes,
        has_deployment,
        edge_secret,
        bad_request_body,
        access_log,
        tags,
    }))
}

/// The REST API named `name`: its id and tags (`None`: no such API).
async fn find_api(client: &Client, name: &str) -> Result<Option<(String, Tags)>, DeployError> {
    let apis = client
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetRestApis"))?;
    Ok(apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name))
        .map(|api| {
            (
                api.id().unwrap_or_default().to_string(),
                tags::from_map(api.tags()),
            )
        }))
}

/// Model name → schema, for every model of the API.
async fn read_models(
    client: &Client,
    api_id: &str,
) -> Result<HashMap<String, String>, DeployError> {
    let listed = client
        .get_models()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetModels"))?;
    Ok(listed
        .items()
        .iter()
        .filter_map(|m| Some((m.name()?.to_string(), m.schema()?.to_string())))
        .collect())
}

/// The id of the body-only request validator, if the API has it.
async fn read_validator(client: &Client, api_id: &str) -> Result<Option<String>, DeployError> {
    let validators = client
        .get_request_validators()
        .rest_api_id(api_id)
        .send()
        .await
        .map_err(aws("apigateway:GetRequestValidators"))?;
    Ok(validators
        .items()
        .iter()
        .find(|v| v.name() == Some(VALIDATOR))
        .and_then(|v| v.id().map(str::to_string)))
}

/// Resource path → id, for every resource of the API.
async fn read_resources(
    client: &Client,
    api_id: &str,
) -> Result<HashMap<String, String>, DeployError> {
    let listed = client
        .get_resources()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetResources"))?;
    Ok(listed
        .items()
        .iter()
        .filter_map(|r| Some((r.path()?.to_string(), r.id()?.to_string())))
        .collect())
}

/// The POST method and integration of each of the contract's routes whose resource exists.
async fn read_routes(
    client: &Client,
    api_id: &str,
    desired: &Desired,
    resources: &HashMap<String, String>,
) -> Result<HashMap<String, RouteState>, DeployError> {
    let mut routes = HashMap::new();
    for spec in desired.rest_routes() {
        let (_, path) = resource_path(&spec.route);
        if let Some(resource_id) = resources.get(&path) {
            let (method, integration) = read_method(client, api_id, resource_id).await?;
            routes.insert(
                path,
                RouteState {
                    method,
                    integration,
                },
            );
        }
    }
    Ok(routes)
}

async fn has_deployment(client: &Client, api_id: &str) -> Result<bool, DeployError> {
    let deployments = client
        .get_deployments()
        .rest_api_id(api_id)
        .send()
        .await
        .map_err(aws("apigateway:GetDeployments"))?;
    Ok(!deployments.items().is_empty())
}

/// The stage's front door secret and access log settings (`None`s: no such stage).
async fn read_stage(
    client: &Client,
    api_id: &str,
    stage: &str,
) -> Result<(Option<String>, Option<(String, String)>), DeployError> {
    let got = client
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await;
    let stage = found("apigateway:GetStage", got, |e| e.is_not_found_exception())?;
    let edge_secret = stage
        .as_ref()
        .and_then(|s| s.variables()?.get(EDGE_SECRET_STAGE_VARIABLE).cloned());
    let access_log = stage
        .as_ref()
        .and_then(|s| s.access_log_settings())
        .and_then(|a| Some((a.destination_arn()?.to_string(), a.format()?.to_string())));
    Ok((edge_secret, access_log))
}

/// The gateway response for bodies the model refuses (`None`: API Gateway's default).
async fn read_bad_request_body(
    client: &Client,
    api_id: &str,
) -> Result<Option<GatewayResponse>, DeployError> {
    let got = client
        .get_gateway_response()
        .rest_api_id(api_id)
        .response_type(GatewayResponseType::BadRequestBody)
        .send()
        .await;
    let response = found("apigateway:GetGatewayResponse", got, |e| {
        e.is_not_found_exception()
    })?;
    Ok(response.map(|r| GatewayResponse {
        status: r.status_code().map(str::to_string),
        parameters: sorted(r.response_parameters()),
        templates: sorted(r.response_templates()),
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
    plan_api(config, desired, current, steps);
    // Plan against an empty API when it does not exist: everything in it gets created.
    let empty = Current::default();
    let mut planner = Planner {
        config,
        desired,
        name: desired.api(config),
        have: current.unwrap_or(&empty),
        api_id: current.map(|c| c.id.clone()),
        planned: HashSet::new(),
        steps,
    };
    // Anything changed needs a new deployment to take effect.
    let mut changed = current.is_none();
    changed |= planner.validator();
    changed |= planner.routes();
    changed |= planner.gateway_response();
    planner.stage(changed);
    Planned {
        api_id: planner.api_id,
        edge_secret: planner.have.edge_secret.clone(),
    }
}

fn step(resource: String, action: Action, op: Op) -> Step {
    Step {
        resource,
        action,
        op: crate::Op::RestApi(op),
    }
}

/// The API itself: created when missing, else its tags put back.
fn plan_api(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&Current>,
    steps: &mut Vec<Step>,
) {
    let name = desired.api(config);
    let Some(api) = current else {
        steps.push(step(
            format!("api gateway rest api {name}"),
            Action::Create,
            Op::CreateApi {
                name: name.clone(),
                description: format!("contractc: {}", desired.manifest.name),
                tags: desired.tags(config),
            },
        ));
        return;
    };
    if let Some(change) = tags::change(&desired.tags(config), &api.tags) {
        steps.push(step(
            format!("api gateway rest api {name}"),
            Action::Update(vec![change.describe()]),
            Op::Tag {
                api_id: api.id.clone(),
                region: config.region.clone(),
                change,
            },
        ));
    }
}

/// The plan of what is in the REST API: what exists, and where the steps go.
struct Planner<'a> {
    config: &'a DeployConfig,
    desired: &'a Desired,
    /// The API's name, as the steps show it.
    name: String,
    /// What exists (an empty API when the plan creates it).
    have: &'a Current,
    /// `None`: the plan creates the API.
    api_id: Option<String>,
    /// Resource paths this plan creates (a batch route may sit under the single route's).
    planned: HashSet<String>,
    steps: &'a mut Vec<Step>,
}

impl<'a> Planner<'a> {
    fn push(&mut self, resource: String, action: Action, op: Op) {
        self.steps.push(step(resource, action, op));
    }

    /// The body-only request validator; whether it is planned.
    fn validator(&mut self) -> bool {
        if self.have.validator_id.is_some() {
            return false;
        }
        self.push(
            format!("api gateway request validator {}/{VALIDATOR}", self.name),
            Action::Create,
            Op::CreateValidator {
                api_id: self.api_id.clone(),
            },
        );
        true
    }

    /// Every route of the contract; whether anything is planned for one.
    fn routes(&mut self) -> bool {
        let before = self.steps.len();
        for spec in self.desired.rest_routes() {
            self.route(&spec);
        }
        self.steps.len() > before
    }

    /// One route: its model, the resources of its path, the POST method, the Kinesis
    /// integration and the responses.
    fn route(&mut self, spec: &RouteSpec) {
        self.model(spec);
        let (_, path) = resource_path(&spec.route);
        let resource_id = self.resources(&path);
        let have = self.have;
        let route = have.routes.get(&path);
        let method = self.method(
            spec,
            &path,
            &resource_id,
            route.and_then(|r| r.method.as_ref()),
        );
        // Replacing the method drops its integration.
        let integration = method.and(route.and_then(|r| r.integration.as_ref()));
        let integration = self.integration(spec, &path, resource_id, integration);
        // A new integration comes without responses, a new method without method responses.
        let existing = Responses {
            method: method.map(|m| m.responses.clone()).unwrap_or_default(),
            integration: integration.map(|i| i.responses.clone()).unwrap_or_default(),
        };
        self.responses(spec, path, existing);
    }

    /// The route's model, put when missing or different (a model cannot be updated in place).
    fn model(&mut self, spec: &RouteSpec) {
        let existing = self.have.models.get(&spec.model_name);
        let same = existing.and_then(|s| serde_json::from_str::<Value>(s).ok())
            == serde_json::from_str::<Value>(&spec.model).ok();
        if same {
            return;
        }
        let replace = existing.is_some();
        self.push(
            format!("api gateway model {}", spec.model_name),
            Action::for_existing(replace, "model schema"),
            Op::PutModel {
                api_id: self.api_id.clone(),
                name: spec.model_name.clone(),
                schema: spec.model.clone(),
                replace,
            },
        );
    }

    /// The resources of `path` that are missing, each under its parent; returns the id of the
    /// path's own resource (`None`: this plan creates it).
    fn resources(&mut self, path: &str) -> Option<String> {
        let have = self.have;
        // The root resource comes with the API.
        let mut parent_id = have.resources.get("/").cloned();
        let mut parent_path = "/".to_string();
        let mut walked = String::new();
        for segment in path.trim_start_matches('/').split('/') {
            walked = format!("{walked}/{segment}");
            let existing = have.resources.get(&walked).cloned();
            if existing.is_none() && self.planned.insert(walked.clone()) {
                self.push(
                    format!("api gateway resource {}{walked}", self.name),
                    Action::Create,
                    Op::CreateResource {
                        api_id: self.api_id.clone(),
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
        parent_id
    }

    /// The POST method with the route's model and the validator; returns the existing method
    /// when it stays (`None`: it is put anew).
    fn method(
        &mut self,
        spec: &RouteSpec,
        path: &str,
        resource_id: &Option<String>,
        method: Option<&'a MethodState>,
    ) -> Option<&'a MethodState> {
        let have = self.have;
        let validator_id = &have.validator_id;
        let stays = method.is_some_and(|m| {
            m.model.as_deref() == Some(spec.model_name.as_str())
                && m.validator_id.is_some()
                && m.validator_id == *validator_id
        });
        if stays {
            return method;
        }
        let replace = method.is_some();
        self.push(
            format!("api gateway method POST {}{path}", self.name),
            Action::for_existing(replace, "method model or validator"),
            Op::PutMethod {
                api_id: self.api_id.clone(),
                resource_id: resource_id.clone(),
                resource_path: path.to_string(),
                validator_id: validator_id.clone(),
                model_name: spec.model_name.clone(),
                replace,
            },
        );
        None
    }

    /// The Kinesis integration of the route's method; returns the existing integration when
    /// it stays (`None`: it is put anew).
    fn integration(
        &mut self,
        spec: &RouteSpec,
        path: &str,
        resource_id: Option<String>,
        integration: Option<&'a IntegrationState>,
    ) -> Option<&'a IntegrationState> {
        let (config, desired) = (self.config, self.desired);
        let template = desired
            .request_template(&spec.route)
            .replace("${stream_name}", &desired.stream(config));
        let uri = format!(
            "arn:aws:apigateway:{}:kinesis:action/{}",
            config.region, spec.action
        );
        let stays = integration
            .is_some_and(|i| i.uri == uri && i.template.as_deref() == Some(template.as_str()));
        if stays {
            return integration;
        }
        self.push(
            format!(
                "api gateway kinesis integration {}{path} ({})",
                self.name, spec.action
            ),
            Action::for_existing(integration.is_some(), "integration"),
            Op::PutIntegration {
                api_id: self.api_id.clone(),
                resource_id,
                resource_path: path.to_string(),
                uri,
                credentials: desired.role_arn(config, Role::ApiGateway),
                template,
            },
        );
        None
    }

    /// The method and integration responses, put when they differ from `existing`.
    fn responses(&mut self, spec: &RouteSpec, path: String, existing: Responses) {
        let responses = self.desired.responses(&spec.route);
        if existing == responses {
            return;
        }
        let exists = !existing.method.is_empty() || !existing.integration.is_empty();
        let statuses: Vec<&str> = responses.integration.keys().map(String::as_str).collect();
        let resource = format!(
            "api gateway responses POST {}{path} ({})",
            self.name,
            statuses.join(", ")
        );
        self.push(
            resource,
            Action::for_existing(exists, "method or integration responses"),
            Op::PutResponses {
                api_id: self.api_id.clone(),
                resource_id: self.have.resources.get(&path).cloned(),
                resource_path: path,
                responses,
                existing,
            },
        );
    }

    /// The gateway response for refused bodies; whether it is planned.
    fn gateway_response(&mut self) -> bool {
        let wanted = bad_request_body();
        let have = &self.have.bad_request_body;
        if have.as_ref() == Some(&wanted) {
            return false;
        }
        self.push(
            format!(
                "api gateway gateway response {} BAD_REQUEST_BODY (400 with the model's errors)",
                self.name
            ),
            Action::for_existing(have.is_some(), "status or template"),
            Op::PutGatewayResponse {
                api_id: self.api_id.clone(),
                response: wanted,
            },
        );
        true
    }

    /// The stage: a deployment when anything `changed` (or there is none yet), its access
    /// log settings, and the front door's secret.
    fn stage(&mut self, changed: bool) {
        let (stage, _) = resource_path(&self.desired.manifest.ingest.route);
        let access_log = (
            self.desired
                .log_group_arn(self.config, crate::names::LogGroup::RestApi),
            logs::REST_FORMAT.to_string(),
        );
        let access_log_ok = self.have.access_log.as_ref() == Some(&access_log);
        if changed || !self.have.has_deployment {
            self.push(
                format!("api gateway deployment {} stage {stage}", self.name),
                Action::Create,
                Op::CreateDeployment {
                    api_id: self.api_id.clone(),
                    stage: stage.clone(),
                    edge_secret: self.have.edge_secret.clone(),
                    access_log: access_log_ok.then(|| access_log.clone()),
                },
            );
        }
        if !access_log_ok {
            self.access_log(&stage, access_log);
        }
        if self.have.edge_secret.is_none() {
            self.edge_secret(stage);
        }
    }

    fn access_log(&mut self, stage: &str, (destination, format): (String, String)) {
        self.push(
            format!(
                "api gateway stage {}/{stage} access log → {destination}",
                self.name
            ),
            Action::for_existing(self.have.access_log.is_some(), "access log settings"),
            Op::SetAccessLog {
                api_id: self.api_id.clone(),
                stage: stage.to_string(),
                destination,
                format,
            },
        );
    }

    /// The front door's secret, generated by the apply.
    fn edge_secret(&mut self, stage: String) {
        // Shown as a create only: the value is never printed.
        self.push(
            format!(
                "api gateway stage variable {}/{stage} {EDGE_SECRET_STAGE_VARIABLE} (front door secret)",
                self.name
            ),
            Action::Create,
            Op::CreateEdgeSecret {
                api_id: self.api_id.clone(),
                stage,
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

/// Makes the calls of one step; ids the plan did not know come from earlier steps (`created`).
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
        } => create_api(client, name, description, tags, created).await,
        Op::Tag {
            api_id,
            region,
            change,
        } => tag(client, &names::rest_api_arn(region, api_id), change).await,
        Op::PutModel {
            api_id,
            name,
            schema,
            replace,
        } => {
            let api_id = api(api_id)?;
            if *replace {
                delete_model(client, &api_id, name).await?;
            }
            create_model(client, &api_id, name, schema).await
        }
        Op::CreateValidator { api_id } => {
            created.validator = create_validator(client, &api(api_id)?).await?;
            Ok(())
        }
        Op::CreateResource { .. }
        | Op::PutMethod { .. }
        | Op::PutIntegration { .. }
        | Op::PutResponses { .. } => apply_to_route(client, op, created).await,
        Op::PutGatewayResponse { api_id, response } => {
            put_gateway_response(client, &api(api_id)?, response).await
        }
        Op::CreateDeployment {
            api_id,
            stage,
            edge_secret,
            access_log,
        } => {
            // Deploying to a stage may reset its variables (moto does): pass the secret along.
            let secret = edge_secret.clone().or_else(|| created.edge_secret.clone());
            let api_id = api(api_id)?;
            create_deployment(client, &api_id, stage, secret).await?;
            match access_log {
                Some((destination, format)) => {
                    set_access_log(client, &api_id, stage, destination, format).await
                }
                None => Ok(()),
            }
        }
        Op::SetAccessLog {
            api_id,
            stage,
            destination,
            format,
        } => set_access_log(client, &api(api_id)?, stage, destination, format).await,
        Op::CreateEdgeSecret { api_id, stage } => {
            created.edge_secret = Some(create_edge_secret(client, &api(api_id)?, stage).await?);
            Ok(())
        }
    }
}

/// The steps on a route's resources and its POST method (`apply` hands these on: with their
/// resource ids to resolve they would make it too long to read).
async fn apply_to_route(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.rest_api, "rest api");
    let resource = |known: &Option<String>, path: &str| {
        resolve(known, &created.resources.get(path).cloned(), "resource")
    };
    match op {
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
            if let Some(id) = create_resource(client, &api_id, &parent, path_part).await? {
                created.resources.insert(path.clone(), id);
            }
            Ok(())
        }
        Op::PutMethod {
            api_id,
            resource_id,
            resource_path,
            validator_id,
            model_name,
            replace,
        } => {
            let (api_id, resource_id) = (api(api_id)?, resource(resource_id, resource_path)?);
            let validator_id = resolve(validator_id, &created.validator, "request validator")?;
            if *replace {
                delete_method(client, &api_id, &resource_id).await?;
            }
            put_method(client, &api_id, &resource_id, &validator_id, model_name).await
        }
        Op::PutIntegration {
            api_id,
            resource_id,
            resource_path,
            uri,
            credentials,
            template,
        } => {
            let (api_id, resource_id) = (api(api_id)?, resource(resource_id, resource_path)?);
            put_integration(client, &api_id, &resource_id, uri, credentials, template).await
        }
        Op::PutResponses {
            api_id,
            resource_id,
            resource_path,
            responses,
            existing,
        } => {
            let (api_id, resource_id) = (api(api_id)?, resource(resource_id, resource_path)?);
            put_responses(client, &api_id, &resource_id, responses, existing).await
        }
        // The API's and the stage's steps: `apply` makes those itself.
        _ => unreachable!("not a step on a route: {op:?}"),
    }
}

/// Creates the API; records its id and its root resource's for the steps after it.
async fn create_api(
    client: &Client,
    name: &str,
    description: &str,
    tags: &[(String, String)],
    created: &mut Created,
) -> Result<(), DeployError> {
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
    Ok(())
}

/// Deletes a model (a model cannot be updated in place: a changed one is replaced).
async fn delete_model(client: &Client, api_id: &str, name: &str) -> Result<(), DeployError> {
    client
        .delete_model()
        .rest_api_id(api_id)
        .model_name(name)
        .send()
        .await
        .map_err(aws("apigateway:DeleteModel"))?;
    Ok(())
}

async fn create_model(
    client: &Client,
    api_id: &str,
    name: &str,
    schema: &str,
) -> Result<(), DeployError> {
    client
        .create_model()
        .rest_api_id(api_id)
        .name(name)
        .content_type("application/json")
        .schema(schema)
        .send()
        .await
        .map_err(aws("apigateway:CreateModel"))?;
    Ok(())
}

/// Creates the body-only validator; returns its id.
async fn create_validator(client: &Client, api_id: &str) -> Result<Option<String>, DeployError> {
    let validator = client
        .create_request_validator()
        .rest_api_id(api_id)
        .name(VALIDATOR)
        .validate_request_body(true)
        .validate_request_parameters(false)
        .send()
        .await
        .map_err(aws("apigateway:CreateRequestValidator"))?;
    Ok(validator.id().map(str::to_string))
}

/// Creates the resource `path_part` under `parent_id`; returns its id.
async fn create_resource(
    client: &Client,
    api_id: &str,
    parent_id: &str,
    path_part: &str,
) -> Result<Option<String>, DeployError> {
    let resource = client
        .create_resource()
        .rest_api_id(api_id)
        .parent_id(parent_id)
        .path_part(path_part)
        .send()
        .await
        .map_err(aws("apigateway:CreateResource"))?;
    Ok(resource.id().map(str::to_string))
}

/// Deletes a resource's POST method, and with it its integration and responses.
async fn delete_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
) -> Result<(), DeployError> {
    client
        .delete_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method("POST")
        .send()
        .await
        .map_err(aws("apigateway:DeleteMethod"))?;
    Ok(())
}

/// Puts a resource's POST method: its model and the body validator.
async fn put_method(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    validator_id: &str,
    model_name: &str,
) -> Result<(), DeployError> {
    client
        .put_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method("POST")
        // The JWT is checked by the authorizer of the HTTP API in front (edge.rs); the
        // REST method itself takes the request as it comes.
        .authorization_type("NONE")
        .request_validator_id(validator_id)
        .request_models("application/json", model_name)
        .send()
        .await
        .map_err(aws("apigateway:PutMethod"))?;
    Ok(())
}

/// Puts the Kinesis integration of a resource's POST method.
async fn put_integration(
    client: &Client,
    api_id: &str,
    resource_id: &str,
    uri: &str,
    credentials: &str,
    template: &str,
) -> Result<(), DeployError> {
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
    Ok(())
}

async fn put_gateway_response(
    client: &Client,
    api_id: &str,
    response: &GatewayResponse,
) -> Result<(), DeployError> {
    client
        .put_gateway_response()
        .rest_api_id(api_id)
        .response_type(GatewayResponseType::BadRequestBody)
        .set_status_code(response.status.clone())
        .set_response_parameters(Some(response.parameters.clone().into_iter().collect()))
        .set_response_templates(Some(response.templates.clone().into_iter().collect()))
        .send()
        .await
        .map_err(aws("apigateway:PutGatewayResponse"))?;
    Ok(())
}

/// Deploys the API to `stage`, with the front door's secret as the stage's variable.
async fn create_deployment(
    client: &Client,
    api_id: &str,
    stage: &str,
    edge_secret: Option<String>,
) -> Result<(), DeployError> {
    client
        .create_deployment()
        .rest_api_id(api_id)
        .stage_name(stage)
        .set_variables(
            edge_secret.map(|s| HashMap::from([(EDGE_SECRET_STAGE_VARIABLE.to_string(), s)])),
        )
        .send()
        .await
        .map_err(aws("apigateway:CreateDeployment"))?;
    Ok(())
}

/// Generates the front door's secret and sets it as the stage's variable; returns it.
async fn create_edge_secret(
    client: &Client,
    api_id: &str,
    stage: &str,
) -> Result<String, DeployError> {
    let secret = new_secret();
    let patch = PatchOperation::builder()
        .op(PatchOp::Replace)
        .path(format!("/variables/{EDGE_SECRET_STAGE_VARIABLE}"))
        .value(&secret)
        .build();
    client
        .update_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .patch_operations(patch)
        .send()
        .await
        .map_err(aws("apigateway:UpdateStage"))?;
    Ok(secret)
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
