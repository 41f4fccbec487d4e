//! The "edge": an API Gateway HTTP API in front of the REST API. Its JWT authorizer checks
//! the token (REST APIs have no JWT authorizer type) and its route forwards to the REST API.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AccessLogSettings, AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration,
    ProtocolType,
};
use contract_support::manifest::{EDGE_SECRET_HEADER, Issuer, claim_header};

use crate::tags::{self, Tags};
use crate::{
    Action, Created, DeployConfig, DeployError, Desired, Plan, Step, aws, found, resolve,
    resource_path,
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

fn name(config: &DeployConfig, desired: &Desired) -> String {
    format!("{}-edge", desired.api(config))
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

/// The issuer the authorizer trusts; `None` for the dev identity provider without
/// `--issuer-url` (it does not run on AWS): then the contract gets no edge.
pub fn issuer(config: &DeployConfig, desired: &Desired) -> Option<String> {
    match &desired.manifest.ingest.auth.issuer {
        Issuer::Url(url) => Some(url.clone()),
        Issuer::Dev => config.dev_issuer.clone(),
    }
}

/// Where the edge forwards to: the REST API's invoke URL of the route.
pub(crate) fn target(rest_api_id: &str, region: &str, route: &str) -> String {
    let (stage, path) = resource_path(route);
    format!("https://{rest_api_id}.execute-api.{region}.amazonaws.com/{stage}{path}")
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Option<Current>, DeployError> {
    let name = name(config, desired);
    let apis = client
        .get_apis()
        .send()
        .await
        .map_err(aws("apigatewayv2:GetApis"))?;
    let Some(api) = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name.as_str()))
    else {
        return Ok(None);
    };
    let api_id = api.api_id().unwrap_or_default().to_string();
    let tags = tags::from_map(api.tags());
    let routes = client
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetRoutes"))?;
    let keys: Vec<String> = ingest_routes(desired)
        .iter()
        .map(|r| route_key(r))
        .collect();
    let routes: BTreeMap<String, RouteState> = routes
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
        .collect();
    // The authorizer is found through the routes that use it (listing authorizers is a call
    // some emulators lack).
    let used = keys
        .iter()
        .find_map(|k| routes.get(k)?.authorizer_id.as_deref());
    let authorizer = match used {
        Some(id) => read_authorizer(client, &api_id, id).await?,
        None => None,
    };
    let integrations = client
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetIntegrations"))?;
    let integrations = integrations
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
        .collect();
    let stages = client
        .get_stages()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetStages"))?;
    let stage = stages
        .items()
        .iter()
        .find(|s| s.stage_name() == Some(STAGE));
    let default_stage = stage.is_some();
    let access_log = stage
        .and_then(|s| s.access_log_settings())
        .and_then(|a| Some((a.destination_arn()?.to_string(), a.format()?.to_string())));
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

/// Plans the edge in front of the REST API `rest_api_id` (`None`: the plan creates it).
pub fn plan(
    config: &DeployConfig,
    desired: &Desired,
    rest_api: crate::rest_api::Planned,
    current: Option<&Current>,
    plan: &mut Plan,
) {
    let rest_api_id = rest_api.api_id;
    let name = name(config, desired);
    let Some(issuer) = issuer(config, desired) else {
        plan.notes.push(format!(
            "{name}: no JWT authorizer planned: the contract trusts the dev identity provider; pass --issuer-url"
        ));
        return;
    };
    let steps = &mut plan.steps;
    let mut push = |resource: String, action: Action, op: Op| {
        steps.push(Step {
            resource,
            action,
            op: crate::Op::Edge(op),
        })
    };
    match current {
        None => push(
            format!("api gateway http api {name}"),
            Action::Create,
            Op::CreateApi {
                name: name.clone(),
                tags: desired.tags(config),
            },
        ),
        Some(api) => {
            if let Some(change) = tags::change(&desired.tags(config), &api.tags) {
                push(
                    format!("api gateway http api {name}"),
                    Action::Update(vec![change.describe()]),
                    Op::Tag {
                        arn: format!("arn:aws:apigateway:{}::/apis/{}", config.region, api.api_id),
                        change,
                    },
                );
            }
        }
    }
    // Plan against an empty API when it does not exist: everything in it gets created.
    let empty = Current::default();
    let have = current.unwrap_or(&empty);
    let api_id = current.map(|c| c.api_id.clone());
    let auth = &desired.manifest.ingest.auth;

    let audience = vec![auth.audience.to_string()];
    let authorizer_ok = have
        .authorizer
        .as_ref()
        .is_some_and(|a| a.issuer.as_deref() == Some(issuer.as_str()) && a.audience == audience);
    // The id the route should use: the existing one, or `None` for the one created below.
    let authorizer_id = if authorizer_ok {
        have.authorizer.as_ref().map(|a| a.id.clone())
    } else {
        push(
            format!("api gateway JWT authorizer {name}/jwt ({issuer})"),
            Action::for_existing(have.authorizer.is_some(), "issuer or audience"),
            Op::PutAuthorizer {
                api_id: api_id.clone(),
                replace: have.authorizer.as_ref().map(|a| a.id.clone()),
                issuer,
                audience,
            },
        );
        None
    };

    let headers = Headers {
        claims: desired
            .manifest
            .enrichment_claims()
            .into_iter()
            .map(str::to_string)
            .collect(),
        secret: rest_api.edge_secret,
    };
    let scopes: Vec<String> = auth.scopes.iter().map(|s| s.to_string()).collect();
    for route in ingest_routes(desired) {
        let wanted = rest_api_id
            .as_deref()
            .map(|id| target(id, &config.region, &route));
        let existing = wanted
            .as_ref()
            .and_then(|wanted| have.integrations.iter().find(|i| &i.uri == wanted));
        let integration_id = existing.map(|i| i.id.clone());
        if let Some(existing) = existing
            && headers.mappings(None).as_ref() != Some(&existing.request_parameters)
        {
            push(
                format!(
                    "api gateway http api {name} integration {} headers (claims {:?}, front door secret)",
                    existing.id, headers.claims
                ),
                Action::Update(vec!["forwarded headers".into()]),
                Op::UpdateIntegration {
                    api_id: api_id.clone(),
                    integration_id: existing.id.clone(),
                    headers: headers.clone(),
                },
            );
        }
        if integration_id.is_none() {
            let shown = wanted.unwrap_or_else(|| target("<new rest api>", &config.region, &route));
            push(
                format!("api gateway http api {name} integration → {shown}"),
                Action::Create,
                Op::CreateIntegration {
                    api_id: api_id.clone(),
                    rest_api_id: rest_api_id.clone(),
                    region: config.region.clone(),
                    route: route.clone(),
                    headers: headers.clone(),
                },
            );
        }

        let key = route_key(&route);
        let existing_route = have.routes.get(&key);
        let route_ok = existing_route.is_some_and(|r| {
            r.jwt
                && authorizer_id.is_some()
                && r.authorizer_id == authorizer_id
                && r.scopes == scopes
                && integration_id.is_some()
                && r.target == integration_id.as_ref().map(|i| format!("integrations/{i}"))
        });
        if !route_ok {
            push(
                format!("api gateway http api {name} route {key} (JWT, scopes {scopes:?})"),
                Action::for_existing(existing_route.is_some(), "authorizer, scopes or target"),
                Op::PutRoute {
                    api_id: api_id.clone(),
                    route,
                    replace: existing_route.map(|r| r.id.clone()),
                    route_key: key,
                    authorizer_id: authorizer_id.clone(),
                    scopes: scopes.clone(),
                    integration_id,
                },
            );
        }
    }

    let access_log = (
        crate::logs::group_arn(config, desired, true),
        crate::logs::EDGE_FORMAT.to_string(),
    );
    if !have.default_stage {
        push(
            format!("api gateway http api {name} stage {STAGE} (auto-deploy, access log)"),
            Action::Create,
            Op::CreateStage { api_id, access_log },
        );
    } else if have.access_log.as_ref() != Some(&access_log) {
        push(
            format!(
                "api gateway http api {name} stage {STAGE} access log → {}",
                access_log.0
            ),
            Action::for_existing(have.access_log.is_some(), "access log settings"),
            Op::SetAccessLog { api_id, access_log },
        );
    }
}

fn access_log_settings((destination, format): &(String, String)) -> AccessLogSettings {
    AccessLogSettings::builder()
        .destination_arn(destination)
        .format(format)
        .build()
}

pub(crate) async fn apply(
    client: &Client,
    op: &Op,
    created: &mut Created,
) -> Result<(), DeployError> {
    let api = |known: &Option<String>| resolve(known, &created.edge_api, "http api");
    match op {
        Op::CreateApi { name, tags } => {
            let api = client
                .create_api()
                .name(name)
                .set_tags(Some(tags.iter().cloned().collect()))
                .protocol_type(ProtocolType::Http)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateApi"))?;
            created.edge_api = api.api_id().map(str::to_string);
        }
        Op::Tag { arn, change } => tag(client, arn, change).await?,
        Op::PutAuthorizer {
            api_id,
            replace,
            issuer,
            audience,
        } => {
            let api_id = api(api_id)?;
            if let Some(id) = replace {
                client
                    .delete_authorizer()
                    .api_id(&api_id)
                    .authorizer_id(id)
                    .send()
                    .await
                    .map_err(aws("apigatewayv2:DeleteAuthorizer"))?;
            }
            let jwt = JwtConfiguration::builder()
                .issuer(issuer)
                .set_audience(Some(audience.clone()))
                .build();
            let authorizer = client
                .create_authorizer()
                .api_id(&api_id)
                .name("jwt")
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source("$request.header.Authorization")
                .jwt_configuration(jwt)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateAuthorizer"))?;
            created.authorizer = authorizer.authorizer_id().map(str::to_string);
        }
        Op::CreateIntegration {
            api_id,
            rest_api_id,
            region,
            route,
            headers,
        } => {
            let rest_api_id = resolve(rest_api_id, &created.rest_api, "rest api")?;
            let mappings = mappings(headers, created)?;
            let integration = client
                .create_integration()
                .api_id(api(api_id)?)
                .integration_type(IntegrationType::HttpProxy)
                .integration_method("POST")
                .integration_uri(target(&rest_api_id, region, route))
                .payload_format_version("1.0")
                .set_request_parameters(Some(mappings))
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateIntegration"))?;
            if let Some(id) = integration.integration_id() {
                created.integrations.insert(route.clone(), id.to_string());
            }
        }
        Op::UpdateIntegration {
            api_id,
            integration_id,
            headers,
        } => {
            let mappings = mappings(headers, created)?;
            client
                .update_integration()
                .api_id(api(api_id)?)
                .integration_id(integration_id)
                .set_request_parameters(Some(mappings))
                .send()
                .await
                .map_err(aws("apigatewayv2:UpdateIntegration"))?;
        }
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
            let integration_id = resolve(
                integration_id,
                &created.integrations.get(route).cloned(),
                "integration",
            )?;
            if let Some(id) = replace {
                client
                    .delete_route()
                    .api_id(&api_id)
                    .route_id(id)
                    .send()
                    .await
                    .map_err(aws("apigatewayv2:DeleteRoute"))?;
            }
            client
                .create_route()
                .api_id(&api_id)
                .route_key(route_key)
                .authorization_type(AuthorizationType::Jwt)
                .authorizer_id(authorizer_id)
                .set_authorization_scopes(Some(scopes.clone()))
                .target(format!("integrations/{integration_id}"))
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateRoute"))?;
        }
        Op::CreateStage { api_id, access_log } => {
            client
                .create_stage()
                .api_id(api(api_id)?)
                .stage_name(STAGE)
                .auto_deploy(true)
                .access_log_settings(access_log_settings(access_log))
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateStage"))?;
        }
        Op::SetAccessLog { api_id, access_log } => {
            client
                .update_stage()
                .api_id(api(api_id)?)
                .stage_name(STAGE)
                .access_log_settings(access_log_settings(access_log))
                .send()
                .await
                .map_err(aws("apigatewayv2:UpdateStage"))?;
        }
    }
    Ok(())
}

/// The parameter mappings of `headers`, with the secret generated earlier in this apply.
fn mappings(
    headers: &Headers,
    created: &Created,
) -> Result<std::collections::HashMap<String, String>, DeployError> {
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
