//! The "edge": an API Gateway HTTP API, the JWT front door. Its JWT authorizer checks the
//! token and its routes go to the contract's door: the edge function (the Lambda door: a
//! Lambda proxy integration, the verified claims in the request context) or the REST API (the
//! REST door: forwarded with the claims in headers it overwrites, REST APIs having no JWT
//! authorizer type).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AccessLogSettings, AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration,
    ProtocolType,
};
use contract_support::manifest::{EDGE_SECRET_HEADER, claim_header};

use crate::names::{self, invoke_url};
use crate::tags::{self, Tags};
use crate::{
    Action, Created, DeployConfig, DeployError, Desired, Plan, Step, aws, found, logs, resolve,
};

/// The headers the edge sets on every forwarded request, overwriting any a client sent under
/// those names: each claim the contract enriches from, from the verified token, and the
/// shared secret that tells the REST API the request came through here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub claims: Vec<String>,
    /// `None`: the secret the REST API's plan creates in the same apply.
    pub secret: Option<String>,
}

impl Headers {
    /// As HTTP API parameter mappings; `None` while the secret is unknown.
    pub fn mappings(&self, secret: Option<&str>) -> Option<BTreeMap<String, String>> {
        let secret = self.secret.as_deref().or(secret)?;
        let mut map: BTreeMap<String, String> = self
            .claims
            .iter()
            .map(|claim| {
                (
                    format!("overwrite:header.{}", claim_header(claim)),
                    format!("$context.authorizer.claims.{claim}"),
                )
            })
            .collect();
        map.insert(
            format!("overwrite:header.{EDGE_SECRET_HEADER}"),
            secret.to_string(),
        );
        Some(map)
    }
}

/// The stage of the HTTP API (auto-deployed).
const STAGE: &str = "$default";

/// What exists of the contract's HTTP API (read only when the API itself exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub api_id: String,
    /// Route key (`POST /prod/put-record`) → route, for the contract's ingest routes.
    pub routes: BTreeMap<String, RouteState>,
    /// The authorizer the single-event route uses (else the batch route's).
    pub authorizer: Option<AuthorizerState>,
    pub integrations: Vec<IntegrationState>,
    pub default_stage: bool,
    /// The `$default` stage's access log settings: (destination ARN, format).
    pub access_log: Option<(String, String)>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteState {
    pub id: String,
    pub jwt: bool,
    pub authorizer_id: Option<String>,
    pub scopes: Vec<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationState {
    pub id: String,
    pub uri: String,
    /// Parameter mappings (`overwrite:header.NAME` → value).
    pub request_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerState {
    pub id: String,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
}

/// One call (or delete-and-create pair) on the HTTP API; ids are `None` when an earlier step
/// of the plan creates what they refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateApi {
        name: String,
        tags: Vec<(String, String)>,
    },
    Tag {
        arn: String,
        change: tags::Change,
    },
    PutAuthorizer {
        api_id: Option<String>,
        /// The authorizer to delete first.
        replace: Option<String>,
        issuer: String,
        audience: Vec<String>,
    },
    CreateIntegration {
        api_id: Option<String>,
        rest_api_id: Option<String>,
        region: String,
        route: String,
        headers: Headers,
    },
    /// A Lambda proxy integration (payload format 2.0) invoking the edge function.
    CreateFunctionIntegration {
        api_id: Option<String>,
        route: String,
        function_arn: String,
    },
    /// Sets the forwarded headers of an existing integration.
    UpdateIntegration {
        api_id: Option<String>,
        integration_id: String,
        headers: Headers,
    },
    PutRoute {
        api_id: Option<String>,
        /// The contract's route: finds the integration created for it by this apply.
        route: String,
        /// The route to delete first.
        replace: Option<String>,
        route_key: String,
        authorizer_id: Option<String>,
        scopes: Vec<String>,
        integration_id: Option<String>,
    },
    CreateStage {
        api_id: Option<String>,
        access_log: (String, String),
    },
    SetAccessLog {
        api_id: Option<String>,
        access_log: (String, String),
    },
}

fn route_key(route: &str) -> String {
    format!("POST {route}")
}

/// The contract's ingest routes the front door forwards: the single-event route and the
/// batch route, when the contract has one.
fn ingest_routes(desired: &Desired) -> Vec<String> {
    let ingest = &desired.manifest.ingest;
    std::iter::once(ingest.route.clone())
        .chain(ingest.batch_route.clone())
        .collect()
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Option<Current>, DeployError> {
    let Some((api_id, tags)) = find_api(client, &desired.edge_api(config)).await? else {
        return Ok(None);
    };
    let keys: Vec<String> = ingest_routes(desired)
        .iter()
        .map(|r| route_key(r))
        .collect();
    let routes = read_routes(client, &api_id, &keys).await?;
    // The authorizer is found through the routes that use it (listing authorizers is a call
    // some emulators lack).
    let used = keys
        .iter()
        .find_map(|k| routes.get(k)?.authorizer_id.as_deref());
    let authorizer = match used {
        Some(id) => read_authorizer(client, &api_id, id).await?,
        None => None,
    };
    let integrations = read_integrations(client, &api_id).await?;
    let (default_stage, access_log) = read_stage(client, &api_id).await?;
    Ok(Some(Current {
        api_id,
        routes,
        authorizer,
        integrations,
        default_stage,
        access_log,
        tags,
    }))
}

/// The HTTP API named `name`: its id and tags (`None`: no such API).
async fn find_api(client: &Client, name: &str) -> Result<Option<(String, Tags)>, DeployError> {
    let apis = client
        .get_apis()
        .send()
        .await
        .map_err(aws("apigatewayv2:GetApis"))?;
    Ok(apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name))
        .map(|api| {
            (
                api.api_id().unwrap_or_default().to_string(),
                tags::from_map(api.tags()),
            )
        }))
}

/// The API's routes whose keys are among `keys`, by key.
async fn read_routes(
    client: &Client,
    api_id: &str,
    keys: &[String],
) -> Result<BTreeMap<String, RouteState>, DeployError> {
    let routes = client
        .get_routes()
        .api_id(api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetRoutes"))?;
    Ok(routes
        .items()
        .iter()
        .filter_map(|r| {
            let key = r.route_key().filter(|k| keys.iter().any(|w| w == k))?;
            let state = RouteState {
                id: r.route_id().unwrap_or_default().to_string(),
                jwt: r.authorization_type() == Some(&AuthorizationType::Jwt),
                authorizer_id: r.authorizer_id().map(str::to_string),
                scopes: r.authorization_scopes().to_vec(),
                target: r.target().map(str::to_string),
            };
            Some((key.to_string(), state))
        })
        .collect())
}

async fn read_integrations(
    client: &Client,
    api_id: &str,
) -> Result<Vec<IntegrationState>, DeployError> {
    let integrations = client
        .get_integrations()
        .api_id(api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetIntegrations"))?;
    Ok(integrations
        .items()
        .iter()
        .filter_map(|i| {
            Some(IntegrationState {
                id: i.integration_id()?.to_string(),
                uri: i.integration_uri()?.to_string(),
                request_parameters: i
                    .request_parameters()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// Whether the `$default` stage exists, and its access log settings.
async fn read_stage(
    client: &Client,
    api_id: &str,
) -> Result<(bool, Option<(String, String)>), DeployError> {
    let stages = client
        .get_stages()
        .api_id(api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetStages"))?;
    let stage = stages
        .items()
        .iter()
        .find(|s| s.stage_name() == Some(STAGE));
    let access_log = stage
        .and_then(|s| s.access_log_settings())
        .and_then(|a| Some((a.destination_arn()?.to_string(), a.format()?.to_string())));
    Ok((stage.is_some(), access_log))
}

async fn read_authorizer(
    client: &Client,
    api_id: &str,
    id: &str,
) -> Result<Option<AuthorizerState>, DeployError> {
    let got = client
        .get_authorizer()
        .api_id(api_id)
        .authorizer_id(id)
        .send()
        .await;
    let authorizer = found("apigatewayv2:GetAuthorizer", got, |e| {
        e.is_not_found_exception()
    })?;
    Ok(authorizer.map(|a| AuthorizerState {
        id: a.authorizer_id().unwrap_or(id).to_string(),
        issuer: a
            .jwt_configuration()
            .and_then(|j| j.issuer())
            .map(str::to_string),
        audience: a
            .jwt_configuration()
            .map(|j| j.audience().to_vec())
            .unwrap_or_default(),
    }))
}

/// What the front door's routes go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The REST door, as planned.
    RestApi(crate::rest_api::Planned),
    /// The Lambda door: the edge function of this ARN.
    Function(String),
}

/// Plans the front door in front of `target`; returns the HTTP API's id when it exists
/// (`None`: this plan creates it, or the contract gets no front door).
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    target: Target,
    current: Option<&Current>,
    plan: &mut Plan,
) -> Option<String> {
    let name = desired.edge_api(config);
    let Some(issuer) = desired.edge_issuer(config) else {
        plan.notes.push(format!(
            "{name}: no JWT authorizer planned: the contract trusts the dev identity provider; pass --issuer-url"
        ));
        return None;
    };
    plan_api(config, desired, current, &mut plan.steps);
    // Plan against an empty API when it does not exist: everything in it gets created.
    let empty = Current::default();
    let mut planner = Planner {
        config,
        desired,
        name,
        have: current.unwrap_or(&empty),
        api_id: current.map(|c| c.api_id.clone()),
        steps: &mut plan.steps,
    };
    let authorizer_id = planner.authorizer(issuer);
    for route in ingest_routes(desired) {
        let integration_id = match &target {
            Target::RestApi(rest_api) => {
                let headers = Headers {
                    claims: (desired.manifest.enrichment_claims().into_iter())
                        .map(str::to_string)
                        .collect(),
                    secret: rest_api.edge_secret.clone(),
                };
                planner.integration(&route, &headers, rest_api.api_id.as_deref())
            }
            Target::Function(arn) => planner.function_integration(&route, arn),
        };
        planner.route(route, &authorizer_id, integration_id);
    }
    planner.stage();
    current.map(|c| c.api_id.clone())
}

fn step(resource: String, action: Action, op: Op) -> Step {
    Step {
        resource,
        action,
        op: crate::Op::Edge(op),
    }
}

/// The HTTP API itself: created when missing, else its tags put back.
fn plan_api(
    config: &DeployConfig,
    desired: &Desired,
    current: Option<&Current>,
    steps: &mut Vec<Step>,
) {
    let name = desired.edge_api(config);
    let Some(api) = current else {
        steps.push(step(
            format!("api gateway http api {name}"),
            Action::Create,
            Op::CreateApi {
                name: name.clone(),
                tags: desired.tags(config),
            },
        ));
        return;
    };
    if let Some(change) = tags::change(&desired.tags(config), &api.tags) {
        steps.push(step(
            format!("api gateway http api {name}"),
            Action::Update(vec![change.describe()]),
            Op::Tag {
                arn: names::http_api_arn(&config.region, &api.api_id),
                change,
            },
        ));
    }
}

/// The plan of what is in the HTTP API: what exists, and where the steps go.
struct Planner<'a> {
    config: &'a DeployConfig,
    desired: &'a Desired,
    /// The API's name, as the steps show it.
    name: String,
    /// What exists (an empty API when the plan creates it).
    have: &'a Current,
    /// `None`: the plan creates the API.
    api_id: Option<String>,
    steps: &'a mut Vec<Step>,
}

impl Planner<'_> {
    fn push(&mut self, resource: String, action: Action, op: Op) {
        self.steps.push(step(resource, action, op));
    }

    /// The JWT authorizer trusting `issuer` for the contract's audience; returns its id when
    /// it stays (`None`: it is created anew).
    fn authorizer(&mut self, issuer: String) -> Option<String> {
        let audience = vec![self.desired.manifest.ingest.auth.audience.to_string()];
        let have = self.have;
        let existing = have.authorizer.as_ref();
        let stays = existing.is_some_and(|a| {
            a.issuer.as_deref() == Some(issuer.as_str()) && a.audience == audience
        });
        if stays {
            return existing.map(|a| a.id.clone());
        }
        self.push(
            format!("api gateway JWT authorizer {}/jwt ({issuer})", self.name),
            Action::for_existing(existing.is_some(), "issuer or audience"),
            Op::PutAuthorizer {
                api_id: self.api_id.clone(),
                replace: existing.map(|a| a.id.clone()),
                issuer,
                audience,
            },
        );
        None
    }

    /// The integration forwarding `route` to the REST API `rest_api_id` (`None`: the plan
    /// creates it) with `headers`; returns its id when it exists (`None`: it is created).
    fn integration(
        &mut self,
        route: &str,
        headers: &Headers,
        rest_api_id: Option<&str>,
    ) -> Option<String> {
        let region = &self.config.region;
        let wanted = rest_api_id.map(|id| invoke_url(id, region, route));
        let have = self.have;
        let existing = wanted
            .as_ref()
            .and_then(|wanted| have.integrations.iter().find(|i| &i.uri == wanted));
        if let Some(existing) = existing {
            if headers.mappings(None).as_ref() != Some(&existing.request_parameters) {
                self.push(
                    format!(
                        "api gateway http api {} integration {} headers (claims {:?}, front door secret)",
                        self.name, existing.id, headers.claims
                    ),
                    Action::Update(vec!["forwarded headers".into()]),
                    Op::UpdateIntegration {
                        api_id: self.api_id.clone(),
                        integration_id: existing.id.clone(),
                        headers: headers.clone(),
                    },
                );
            }
            return Some(existing.id.clone());
        }
        let shown = wanted.unwrap_or_else(|| invoke_url("<new rest api>", region, route));
        self.push(
            format!("api gateway http api {} integration → {shown}", self.name),
            Action::Create,
            Op::CreateIntegration {
                api_id: self.api_id.clone(),
                rest_api_id: rest_api_id.map(str::to_string),
                region: self.config.region.clone(),
                route: route.to_string(),
                headers: headers.clone(),
            },
        );
        None
    }

    /// The Lambda proxy integration invoking the function `arn` for `route`: the one the route
    /// targets already, else any invoking it; returns its id when it exists (`None`: created).
    fn function_integration(&mut self, route: &str, arn: &str) -> Option<String> {
        let have = self.have;
        let own = (have.routes.get(&route_key(route)))
            .and_then(|r| r.target.as_deref()?.strip_prefix("integrations/"));
        let invoking = |i: &&IntegrationState| i.uri == arn;
        let existing = (have.integrations.iter())
            .filter(invoking)
            .find(|i| own == Some(i.id.as_str()))
            .or_else(|| have.integrations.iter().find(invoking));
        if let Some(existing) = existing {
            return Some(existing.id.clone());
        }
        self.push(
            format!(
                "api gateway http api {} integration → lambda {arn}",
                self.name
            ),
            Action::Create,
            Op::CreateFunctionIntegration {
                api_id: self.api_id.clone(),
                route: route.to_string(),
                function_arn: arn.to_string(),
            },
        );
        None
    }

    /// The route `POST <route>`: JWT with the contract's scopes, to its integration (ids
    /// `None`: created by this plan); replaced when any of that differs.
    fn route(
        &mut self,
        route: String,
        authorizer_id: &Option<String>,
        integration_id: Option<String>,
    ) {
        let scopes: Vec<String> = (self.desired.manifest.ingest.auth.scopes.iter())
            .map(|s| s.to_string())
            .collect();
        let key = route_key(&route);
        let have = self.have;
        let existing = have.routes.get(&key);
        let stays = existing.is_some_and(|r| {
            r.jwt
                && authorizer_id.is_some()
                && r.authorizer_id == *authorizer_id
                && r.scopes == scopes
                && integration_id.is_some()
                && r.target == integration_id.as_ref().map(|i| format!("integrations/{i}"))
        });
        if stays {
            return;
        }
        self.push(
            format!(
                "api gateway http api {} route {key} (JWT, scopes {scopes:?})",
                self.name
            ),
            Action::for_existing(existing.is_some(), "authorizer, scopes or target"),
            Op::PutRoute {
                api_id: self.api_id.clone(),
                route,
                replace: existing.map(|r| r.id.clone()),
                route_key: key,
                authorizer_id: authorizer_id.clone(),
                scopes,
                integration_id,
            },
        );
    }

    /// The auto-deployed `$default` stage with its access log settings.
    fn stage(&mut self) {
        let access_log = (
            self.desired
                .log_group_arn(self.config, crate::names::LogGroup::HttpApi),
            logs::EDGE_FORMAT.to_string(),
        );
        let api_id = self.api_id.clone();
        let have = self.have;
        if !have.default_stage {
            self.push(
                format!(
                    "api gateway http api {} stage {STAGE} (auto-deploy, access log)",
                    self.name
                ),
                Action::Create,
                Op::CreateStage { api_id, access_log },
            );
        } else if have.access_log.as_ref() != Some(&access_log) {
            self.push(
                format!(
                    "api gateway http api {} stage {STAGE} access log → {}",
                    self.name, access_log.0
                ),
                Action::for_existing(have.access_log.is_some(), "access log settings"),
                Op::SetAccessLog { api_id, access_log },
            );
        }
    }
}

fn access_log_settings((destination, format): &(String, String)) -> AccessLogSettings {
    AccessLogSettings::builder()
        .destination_arn(destination)
        .format(format)
        .build()
}

/// Makes the calls of one step; ids the plan did not know come from earlier steps (`created`).
pub(crate) async fn apply(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.edge_api, "http api");
    match op {
        Op::CreateApi { name, tags } => {
            created.edge_api = create_api(client, name, tags).await?;
            Ok(())
        }
        Op::Tag { arn, change } => tag(client, arn, change).await,
        Op::PutAuthorizer {
            api_id,
            replace,
            issuer,
            audience,
        } => {
            let api_id = api(api_id)?;
            if let Some(id) = replace {
                delete_authorizer(client, &api_id, id).await?;
            }
            created.authorizer = create_authorizer(client, &api_id, issuer, audience).await?;
            Ok(())
        }
        Op::CreateIntegration { .. }
        | Op::CreateFunctionIntegration { .. }
        | Op::UpdateIntegration { .. } => apply_integration(client, op, created).await,
        Op::PutRoute {
            api_id,
            route,
            replace,
            route_key,
            authorizer_id,
            scopes,
            integration_id,
        } => {
            let api_id = api(api_id)?;
            let authorizer_id = resolve(authorizer_id, &created.authorizer, "JWT authorizer")?;
            let integration = created.integrations.get(route).cloned();
            let integration_id = resolve(integration_id, &integration, "integration")?;
            let target = format!("integrations/{integration_id}");
            if let Some(id) = replace {
                delete_route(client, &api_id, id).await?;
            }
            create_route(client, &api_id, route_key, &authorizer_id, scopes, &target).await
        }
        Op::CreateStage { api_id, access_log } => {
            create_stage(client, &api(api_id)?, access_log).await
        }
        Op::SetAccessLog { api_id, access_log } => {
            set_access_log(client, &api(api_id)?, access_log).await
        }
    }
}

/// The integration steps: created (to the REST API or the edge function) or updated.
async fn apply_integration(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.edge_api, "http api");
    match op {
        Op::CreateIntegration {
            api_id,
            rest_api_id,
            region,
            route,
            headers,
        } => {
            let rest_api_id = resolve(rest_api_id, &created.rest_api, "rest api")?;
            let mappings = mappings(headers, created)?;
            let uri = invoke_url(&rest_api_id, region, route);
            if let Some(id) = create_integration(client, &api(api_id)?, &uri, mappings).await? {
                created.integrations.insert(route.clone(), id);
            }
            Ok(())
        }
        Op::CreateFunctionIntegration {
            api_id,
            route,
            function_arn,
        } => {
            let id = create_function_integration(client, &api(api_id)?, function_arn).await?;
            if let Some(id) = id {
                created.integrations.insert(route.clone(), id);
            }
            Ok(())
        }
        Op::UpdateIntegration {
            api_id,
            integration_id,
            headers,
        } => {
            let mappings = mappings(headers, created)?;
            update_integration(client, &api(api_id)?, integration_id, mappings).await
        }
        // The other steps are not integrations: `apply` does not send them here.
        _ => Ok(()),
    }
}

/// Creates the HTTP API; returns its id.
async fn create_api(
    client: &Client,
    name: &str,
    tags: &[(String, String)],
) -> Result<Option<String>, DeployError> {
    let api = client
        .create_api()
        .name(name)
        .set_tags(Some(tags.iter().cloned().collect()))
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateApi"))?;
    Ok(api.api_id().map(str::to_string))
}

async fn delete_authorizer(
    client: &Client,
    api_id: &str,
    authorizer_id: &str,
) -> Result<(), DeployError> {
    client
        .delete_authorizer()
        .api_id(api_id)
        .authorizer_id(authorizer_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:DeleteAuthorizer"))?;
    Ok(())
}

/// Creates the JWT authorizer: tokens from `issuer` for `audience`; returns its id.
async fn create_authorizer(
    client: &Client,
    api_id: &str,
    issuer: &str,
    audience: &[String],
) -> Result<Option<String>, DeployError> {
    let jwt = JwtConfiguration::builder()
        .issuer(issuer)
        .set_audience(Some(audience.to_vec()))
        .build();
    let authorizer = client
        .create_authorizer()
        .api_id(api_id)
        .name("jwt")
        .authorizer_type(AuthorizerType::Jwt)
        .identity_source("$request.header.Authorization")
        .jwt_configuration(jwt)
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateAuthorizer"))?;
    Ok(authorizer.authorizer_id().map(str::to_string))
}

/// Creates a Lambda proxy integration (payload format 2.0) invoking `function_arn`; returns
/// its id.
async fn create_function_integration(
    client: &Client,
    api_id: &str,
    function_arn: &str,
) -> Result<Option<String>, DeployError> {
    let integration = client
        .create_integration()
        .api_id(api_id)
        .integration_type(IntegrationType::AwsProxy)
        .integration_uri(function_arn)
        .payload_format_version("2.0")
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateIntegration"))?;
    Ok(integration.integration_id().map(str::to_string))
}

/// Creates an integration forwarding to `uri` with the header `mappings`; returns its id.
async fn create_integration(
    client: &Client,
    api_id: &str,
    uri: &str,
    mappings: HashMap<String, String>,
) -> Result<Option<String>, DeployError> {
    let integration = client
        .create_integration()
        .api_id(api_id)
        .integration_type(IntegrationType::HttpProxy)
        .integration_method("POST")
        .integration_uri(uri)
        .payload_format_version("1.0")
        .set_request_parameters(Some(mappings))
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateIntegration"))?;
    Ok(integration.integration_id().map(str::to_string))
}

/// Sets the forwarded headers of an existing integration.
async fn update_integration(
    client: &Client,
    api_id: &str,
    integration_id: &str,
    mappings: HashMap<String, String>,
) -> Result<(), DeployError> {
    client
        .update_integration()
        .api_id(api_id)
        .integration_id(integration_id)
        .set_request_parameters(Some(mappings))
        .send()
        .await
        .map_err(aws("apigatewayv2:UpdateIntegration"))?;
    Ok(())
}

async fn delete_route(client: &Client, api_id: &str, route_id: &str) -> Result<(), DeployError> {
    client
        .delete_route()
        .api_id(api_id)
        .route_id(route_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:DeleteRoute"))?;
    Ok(())
}

/// Creates the route, JWT-authorized, to `target` (`integrations/<id>`).
async fn create_route(
    client: &Client,
    api_id: &str,
    route_key: &str,
    authorizer_id: &str,
    scopes: &[String],
    target: &str,
) -> Result<(), DeployError> {
    client
        .create_route()
        .api_id(api_id)
        .route_key(route_key)
        .authorization_type(AuthorizationType::Jwt)
        .authorizer_id(authorizer_id)
        .set_authorization_scopes(Some(scopes.to_vec()))
        .target(target)
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateRoute"))?;
    Ok(())
}

async fn create_stage(
    client: &Client,
    api_id: &str,
    access_log: &(String, String),
) -> Result<(), DeployError> {
    client
        .create_stage()
        .api_id(api_id)
        .stage_name(STAGE)
        .auto_deploy(true)
        .access_log_settings(access_log_settings(access_log))
        .send()
        .await
        .map_err(aws("apigatewayv2:CreateStage"))?;
    Ok(())
}

async fn set_access_log(
    client: &Client,
    api_id: &str,
    access_log: &(String, String),
) -> Result<(), DeployError> {
    client
        .update_stage()
        .api_id(api_id)
        .stage_name(STAGE)
        .access_log_settings(access_log_settings(access_log))
        .send()
        .await
        .map_err(aws("apigatewayv2:UpdateStage"))?;
    Ok(())
}

/// The parameter mappings of `headers`, with the secret generated earlier in this apply.
fn mappings(headers: &Headers, created: &Created) -> Result<HashMap<String, String>, DeployError> {
    headers
        .mappings(created.edge_secret.as_deref())
        .map(|m| m.into_iter().collect())
        .ok_or_else(|| {
            DeployError::Invalid(
                "no front door secret: the step creating the REST API's stage variable did not run"
                    .into(),
            )
        })
}

/// Brings the HTTP API's tags to the wanted ones.
async fn tag(client: &Client, arn: &str, change: &tags::Change) -> Result<(), DeployError> {
    if !change.set.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(change.set.iter().cloned().collect()))
            .send()
            .await
            .map_err(aws("apigatewayv2:TagResource"))?;
    }
    if !change.remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(change.remove.clone()))
            .send()
            .await
            .map_err(aws("apigatewayv2:UntagResource"))?;
    }
    Ok(())
}
