//! Plans from hand-built read states: no AWS, no emulator.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::primitives::SdkBody;
use aws_sdk_s3::types::error::NotFound;
use serde_json::json;

use contract_support::manifest::TableDef;

use super::*;
use crate::names::{LogGroup, Role, resource_path};

fn config() -> DeployConfig {
    DeployConfig {
        prefix: "contractc".into(),
        region: "us-east-1".into(),
        endpoint_url: None,
        profile: None,
        bucket: None,
        glue_role_arn: None,
        api_role_arn: None,
        account_id: "123456789012".into(),
        generated: PathBuf::from("generated"),
        static_credentials: None,
        dev_issuer: Some("https://id.example.com".into()),
        job_size: glue::JobSize::default(),
        door: crate::Door::Rest,
        alarm_topic: None,
        maintenance_schedule: schedule::DEFAULT_SCHEDULE.into(),
    }
}

/// A route's generated integration, stood in: its request template and the two responses.
fn integration_stub(template: &str, ok: &str) -> serde_json::Value {
    json!({"x-amazon-apigateway-integration": {
        "requestTemplates": {"application/json": template},
        "responses": {
            "default": {
                "statusCode": "200",
                "responseParameters": {"method.response.header.Access-Control-Allow-Origin": "'*'"},
                "responseTemplates": {"application/json": ok}
            },
            "[45]\\d{2}": {
                "statusCode": "500",
                "selectionPattern": "[45]\\d{2}",
                "responseParameters": {"method.response.header.Access-Control-Allow-Origin": "'*'"},
                "responseTemplates": {"application/json": "\"Failed to add event\""}
            }
        }
    }})
}

/// The first contract compiled in (it has a batch route), with small stand-ins for its
/// generated artefacts.
fn desired() -> Desired {
    let manifest = contract_validators::ALL
        .first()
        .expect("a contract is compiled in")
        .manifest();
    let route = manifest.ingest.route.clone();
    let batch = manifest
        .ingest
        .batch_route
        .clone()
        .expect("the first contract has a batch route");
    Desired {
        manifest,
        script: b"print('job')\n".to_vec(),
        erasure_script: Some(b"print('erasure')\n".to_vec()),
        maintenance_script: b"print('maintenance')\n".to_vec(),
        model: json!({"title": "TestEvent", "type": "object"}).to_string(),
        batch_model: Some(json!({"title": "TestEventBatch", "type": "array"}).to_string()),
        openapi: json!({"paths": {
            route: {"post": integration_stub("{\"StreamName\": \"${stream_name}\"}", "\"Successfully added event\"")},
            batch: {"post": integration_stub("{\"StreamName\": \"${stream_name}\", \"Records\": []}", "{\"results\": []}")},
        }}),
    }
}

/// A job as Glue reads back the one `spec` made.
fn deployed_job(spec: &glue::JobSpec) -> glue::JobState {
    glue::JobState {
        script_location: Some(spec.script_location.clone()),
        glue_version: Some("5.0".into()),
        role: Some(spec.role.clone()),
        arguments: spec.arguments.clone(),
        size: spec.size.clone(),
        tags: spec.tags.iter().cloned().collect(),
    }
}

/// The metadata file `deploy` would have written for a table, at a fixed place.
fn metadata_file(definition: &TableDef) -> String {
    format!(
        "s3://contractc-artifacts/warehouse/{}.db/{}/metadata/00000-u.metadata.json",
        definition.database, definition.name
    )
}

/// A table as read back: Iceberg tables (`definition` given) with their metadata file.
fn table_state(
    input: &aws_sdk_glue::types::TableInput,
    definition: Option<&TableDef>,
) -> glue::TableState {
    let mut parameters = input.parameters().cloned().unwrap_or_default();
    let metadata = definition.map(|d| {
        parameters.insert(glue::METADATA_LOCATION.into(), metadata_file(d));
        let location = metadata_file(d).replace("/metadata/00000-u.metadata.json", "");
        d.initial_metadata(&location, "u", 1)
    });
    glue::TableState {
        parameters,
        metadata,
        columns: input
            .storage_descriptor()
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
            .unwrap_or_default(),
    }
}

/// The front door's secret in the hand-made read states.
const SECRET: &str = "s3cr3t";

/// The headers the edge should set: each enrichment claim from the token, and the secret.
fn forwarded(d: &Desired, secret: &str) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = d
        .manifest
        .enrichment_claims()
        .into_iter()
        .map(|claim| {
            (
                format!("overwrite:header.x-contractc-claim-{claim}"),
                format!("$context.authorizer.claims.{claim}"),
            )
        })
        .collect();
    map.insert("overwrite:header.x-contractc-edge".into(), secret.into());
    map
}

/// Everything deployed exactly as `desired` says, as a read would see it.
fn deployed(c: &DeployConfig, d: &Desired) -> Current {
    let (events, quarantine) = (d.manifest.events_table(), d.manifest.quarantine_table());
    let tables = [
        (d.iceberg_table_input(c, &events), Some(&events)),
        (d.iceberg_table_input(c, &quarantine), Some(&quarantine)),
        (d.stream_table_input(c), None),
    ]
    .into_iter()
    .map(|(input, definition)| {
        let input = input.expect("table input");
        (input.name().to_string(), table_state(&input, definition))
    })
    .collect();
    let specs = d.rest_routes();
    let mut resources = HashMap::from([("/".to_string(), "root".to_string())]);
    let mut routes = HashMap::new();
    for spec in &specs {
        let (_, path) = resource_path(&spec.route);
        let mut walked = String::new();
        for segment in path.trim_start_matches('/').split('/') {
            walked = format!("{walked}/{segment}");
            resources.insert(walked.clone(), format!("res{walked}"));
        }
        let responses = d.responses(&spec.route);
        let template = d
            .request_template(&spec.route)
            .replace("${stream_name}", &d.stream(c));
        routes.insert(
            path,
            rest_api::RouteState {
                method: Some(rest_api::MethodState {
                    model: Some(spec.model_name.clone()),
                    validator_id: Some("validator".into()),
                    responses: responses.method,
                }),
                integration: Some(rest_api::IntegrationState {
                    uri: format!(
                        "arn:aws:apigateway:us-east-1:kinesis:action/{}",
                        spec.action
                    ),
                    template: Some(template),
                    responses: responses.integration,
                }),
            },
        );
    }
    let models = specs
        .iter()
        .map(|s| (s.model_name.clone(), s.model.clone()))
        .collect();
    let tags: tags::Tags = d.tags(c).into_iter().collect();
    let edge_routes = [
        Some(&d.manifest.ingest.route),
        d.manifest.ingest.batch_route.as_ref(),
    ]
    .into_iter()
    .flatten()
    .enumerate();
    let mut edge_route_states = BTreeMap::new();
    let mut edge_integrations = Vec::new();
    for (i, route) in edge_routes {
        let id = format!("integration{i}");
        edge_route_states.insert(
            format!("POST {route}"),
            edge::RouteState {
                id: format!("route{i}"),
                jwt: true,
                authorizer_id: Some("authorizer".into()),
                scopes: d.manifest.ingest.auth.scopes.clone(),
                target: Some(format!("integrations/{id}")),
            },
        );
        edge_integrations.push(edge::IntegrationState {
            id,
            uri: format!(
                "https://api.execute-api.us-east-1.amazonaws.com/{}",
                route.trim_start_matches('/')
            ),
            request_parameters: forwarded(d, SECRET),
        });
    }
    let auth = &d.manifest.ingest.auth;
    let role = |kind| {
        Some(iam::RoleState {
            trust: Some(iam::trust_policy(kind)),
            policy: Some(iam::role_policy(c, d, kind)),
            tags: tags.clone(),
        })
    };
    let alarms = alarms::desired_alarms(c, d);
    Current {
        queries: queries::Current {
            workgroup: true,
            queries: queries::desired_queries(d)
                .into_iter()
                .enumerate()
                .map(|(i, q)| (q.name.clone(), (format!("query-{i}"), q)))
                .collect(),
        },
        schedule: schedule::Current {
            trigger: Some(schedule::Trigger {
                schedule: c.maintenance_schedule.clone(),
                jobs: vec![d.maintenance_job(c)],
            }),
        },
        alarms: alarms::Current {
            dashboard: Some(alarms::dashboard(c, d, &alarms)),
            alarms: alarms.into_iter().map(|a| (a.name.clone(), a)).collect(),
        },
        secret: secrets::Current::default(),
        iam: iam::Current {
            glue: role(Role::Glue),
            api: role(Role::ApiGateway),
            edge: None,
        },
        logs: logs::Current {
            groups: vec![
                d.log_group(c, LogGroup::RestApi),
                d.log_group(c, LogGroup::HttpApi),
            ],
            tags: [LogGroup::RestApi, LogGroup::HttpApi]
                .into_iter()
                .map(|group| (d.log_group(c, group), tags.clone()))
                .collect(),
            account_role: Some("arn:aws:iam::123456789012:role/someone-elses".into()),
            logs_role: false,
        },
        s3: s3::Current {
            bucket: true,
            script: Some(d.script.clone()),
            erasure_script: d.erasure_script.clone(),
            maintenance_script: Some(d.maintenance_script.clone()),
            settings: s3::wanted_settings(c),
        },
        kinesis: kinesis::Current {
            stream: true,
            encrypted: true,
            status: "ACTIVE".into(),
            tags: tags.clone(),
        },
        glue: glue::Current {
            database: true,
            tables,
            job: Some(glue::JobState {
                script_location: Some(format!("s3://{}/{}", c.bucket(), d.script_key(c))),
                glue_version: Some("5.0".into()),
                role: Some(d.role_arn(c, Role::Glue)),
                arguments: d.job_arguments(c).into_iter().collect::<BTreeMap<_, _>>(),
                size: glue::JobSize::default(),
                tags: tags.clone(),
            }),
            erasure_job: Some(deployed_job(&d.erasure_job_spec(c))),
            maintenance_job: Some(deployed_job(&d.maintenance_job_spec(c))),
        },
        rest_api: Some(rest_api::Current {
            id: "api".into(),
            models,
            validator_id: Some("validator".into()),
            resources,
            routes,
            has_deployment: true,
            edge_secret: Some(SECRET.into()),
            bad_request_body: Some(rest_api::bad_request_body()),
            access_log: Some((
                d.log_group_arn(c, LogGroup::RestApi),
                logs::REST_FORMAT.to_string(),
            )),
            tags: tags.clone(),
        }),
        edge: Some(edge::Current {
            api_id: "edge".into(),
            routes: edge_route_states,
            authorizer: Some(edge::AuthorizerState {
                id: "authorizer".into(),
                issuer: c.dev_issuer.clone(),
                audience: vec![auth.audience.clone()],
            }),
            integrations: edge_integrations,
            default_stage: true,
            access_log: Some((
                d.log_group_arn(c, LogGroup::HttpApi),
                logs::EDGE_FORMAT.to_string(),
            )),
            tags,
        }),
        function: None,
    }
}

/// The plan as `contract-deploy deploy` prints it.
fn shown(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::Create => format!("+ create {}", step.resource),
            Action::Update(what) => format!("~ update {} ({})", step.resource, what.join(", ")),
            Action::Delete => format!("- delete {}", step.resource),
        })
        .collect()
}

fn planned(current: &Current) -> Plan {
    plan(&config(), &desired(), current).expect("plan")
}

#[test]
fn routes_map_to_stage_and_resource() {
    assert_eq!(
        resource_path("/prod/put-record"),
        ("prod".into(), "/put-record".into())
    );
    assert_eq!(
        resource_path("/prod/match-events/batch"),
        ("prod".into(), "/match-events/batch".into())
    );
}

#[test]
fn nothing_deployed_plans_every_resource_as_a_create() {
    let plan = planned(&Current::default());
    assert!(
        plan.steps.iter().all(|s| s.action == Action::Create),
        "{:#?}",
        shown(&plan)
    );
    let d = desired();
    let name = format!("contractc-{}", d.manifest.name);
    let database = &d.manifest.table.database;
    let (stage, path) = resource_path(&d.manifest.ingest.route);
    let batch_route = d.manifest.ingest.batch_route.clone().expect("batch route");
    let (_, batch_path) = resource_path(&batch_route);
    let resources: Vec<String> = plan.steps.iter().map(|s| s.resource.clone()).collect();
    for expected in [
        "s3 bucket contractc-artifacts".to_string(),
        format!(
            "s3 object s3://contractc-artifacts/contractc/{}/streaming_job.py",
            d.manifest.name
        ),
        format!("kinesis stream {name} (on demand, KMS alias/aws/kinesis)"),
        "s3 bucket contractc-artifacts settings (versioning, lifecycle, public access block, encryption, tags)".to_string(),
        format!("glue database {database}"),
        format!("glue table {database}.{}", d.manifest.table.name),
        format!(
            "glue table {database}.{}",
            d.manifest.quarantine_table_name()
        ),
        format!("glue table {database}.{}_stream", d.manifest.table.name),
        format!("glue job {name}"),
        format!("api gateway rest api {name}"),
        "api gateway model TestEvent".to_string(),
        format!("api gateway request validator {name}/body-only"),
        format!("api gateway method POST {name}{path}"),
        format!("api gateway kinesis integration {name}{path} (PutRecord)"),
        "api gateway model TestEventBatch".to_string(),
        format!("api gateway method POST {name}{batch_path}"),
        format!("api gateway kinesis integration {name}{batch_path} (PutRecords)"),
        format!("api gateway responses POST {name}{batch_path} (200, 500)"),
        format!(
            "api gateway http api {name}-edge route POST {} (JWT, scopes {:?})",
            batch_route, d.manifest.ingest.auth.scopes
        ),
        format!("api gateway deployment {name} stage {stage}"),
        format!("api gateway http api {name}-edge"),
        format!("api gateway http api {name}-edge stage $default (auto-deploy, access log)"),
    ] {
        assert!(
            resources.contains(&expected),
            "{expected} missing from {resources:#?}"
        );
    }
    // What the new REST API gets is created by earlier steps: no ids known when planning.
    for step in &plan.steps {
        match &step.op {
            Op::RestApi(rest_api::Op::PutMethod {
                api_id,
                resource_id,
                validator_id,
                ..
            }) => assert_eq!((api_id, resource_id, validator_id), (&None, &None, &None)),
            Op::Edge(edge::Op::CreateIntegration { rest_api_id, .. }) => {
                assert_eq!(rest_api_id, &None)
            }
            _ => {}
        }
    }
}

#[test]
fn everything_deployed_as_desired_plans_nothing() {
    let plan = planned(&deployed(&config(), &desired()));
    assert_eq!(shown(&plan), Vec::<String>::new());
}

#[test]
fn changed_script_bytes_plan_one_update() {
    let mut current = deployed(&config(), &desired());
    current.s3.script = Some(b"print('edited by hand')".to_vec());
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [format!(
            "~ update s3 object s3://contractc-artifacts/contractc/{}/streaming_job.py (script bytes)",
            desired().manifest.name
        )]
    );
    assert!(matches!(
        &plan.steps[0].op,
        Op::S3(s3::Op::PutObject { body, .. }) if body == &desired().script
    ));
}

#[test]
fn changed_table_columns_plan_a_table_update() {
    let d = desired();
    let mut current = deployed(&config(), &d);
    let table = current
        .glue
        .tables
        .get_mut(&d.manifest.table.name)
        .expect("events table");
    table.columns.pop();
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [format!(
            "~ update glue table {}.{} (columns)",
            d.manifest.table.database, d.manifest.table.name
        )]
    );
    assert!(matches!(
        &plan.steps[0].op,
        Op::Glue(glue::Op::UpdateTable { .. })
    ));
}

#[test]
fn changed_model_plans_its_update_and_a_redeployment() {
    let mut current = deployed(&config(), &desired());
    if let Some(api) = current.rest_api.as_mut() {
        api.models.insert(
            "TestEvent".into(),
            json!({"title": "TestEvent"}).to_string(),
        );
    }
    let name = format!("contractc-{}", desired().manifest.name);
    assert_eq!(
        shown(&planned(&current)),
        [
            "~ update api gateway model TestEvent (model schema)".to_string(),
            format!("+ create api gateway deployment {name} stage prod"),
        ]
    );
}

#[test]
fn missing_stages_are_planned_alone() {
    let mut current = deployed(&config(), &desired());
    if let Some(api) = current.rest_api.as_mut() {
        api.has_deployment = false;
    }
    if let Some(edge) = current.edge.as_mut() {
        edge.default_stage = false;
    }
    let name = format!("contractc-{}", desired().manifest.name);
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [
            format!("+ create api gateway deployment {name} stage prod"),
            format!(
                "+ create api gateway http api {name}-edge stage $default (auto-deploy, access log)"
            ),
        ]
    );
    assert_eq!(
        plan.steps[0].op,
        Op::RestApi(rest_api::Op::CreateDeployment {
            api_id: Some("api".into()),
            stage: "prod".into(),
            edge_secret: Some(SECRET.into()),
            // Kept through the redeployment.
            access_log: Some((
                desired().log_group_arn(&config(), LogGroup::RestApi),
                logs::REST_FORMAT.to_string(),
            )),
        })
    );
}

#[test]
fn another_issuer_replaces_the_authorizer_and_its_route() {
    let mut current = deployed(&config(), &desired());
    if let Some(authorizer) = current.edge.as_mut().and_then(|e| e.authorizer.as_mut()) {
        authorizer.issuer = Some("https://elsewhere.example.com".into());
    }
    let plan = planned(&current);
    let actions: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
    assert_eq!(
        actions,
        [
            &Action::Update(vec!["issuer or audience".into()]),
            // The single-event route and the batch route.
            &Action::Update(vec!["authorizer, scopes or target".into()]),
            &Action::Update(vec!["authorizer, scopes or target".into()]),
        ],
        "{:#?}",
        shown(&plan)
    );
    // The route is recreated with the authorizer the step before creates.
    assert!(matches!(
        &plan.steps[1].op,
        Op::Edge(edge::Op::PutRoute {
            authorizer_id: None,
            replace: Some(_),
            ..
        })
    ));
}

#[test]
fn a_partial_apply_plans_only_what_is_missing() {
    let c = config();
    let d = desired();
    let full = deployed(&c, &d);
    // An earlier apply stopped after the REST API's first resources.
    let mut current = Current {
        iam: full.iam.clone(),
        logs: full.logs.clone(),
        s3: full.s3.clone(),
        kinesis: full.kinesis.clone(),
        secret: full.secret.clone(),
        glue: glue::Current {
            database: true,
            ..Default::default()
        },
        rest_api: full.rest_api.clone().map(|api| rest_api::Current {
            resources: HashMap::from([("/".to_string(), "root".to_string())]),
            routes: HashMap::new(),
            has_deployment: false,
            ..api
        }),
        edge: None,
        function: None,
        alarms: full.alarms.clone(),
        schedule: full.schedule.clone(),
        queries: full.queries.clone(),
    };
    let plan = planned(&current);
    let name = format!("contractc-{}", d.manifest.name);
    let (_, path) = resource_path(&d.manifest.ingest.route);
    let creates: Vec<&str> = plan.steps.iter().map(|s| s.resource.as_str()).collect();
    assert!(plan.steps.iter().all(|s| s.action == Action::Create));
    for present in [
        "s3 bucket",
        "s3 object",
        "kinesis stream",
        "glue database",
        "rest api",
        "model",
        "validator",
    ] {
        assert!(
            !creates.iter().any(|r| r.contains(present)),
            "{present} exists but is planned: {creates:#?}"
        );
    }
    for missing in [
        format!("glue job {name}"),
        format!("api gateway resource {name}{path}"),
        format!("api gateway method POST {name}{path}"),
        format!("api gateway http api {name}-edge"),
    ] {
        assert!(
            creates.contains(&missing.as_str()),
            "{missing} not planned: {creates:#?}"
        );
    }
    // The method goes on the resource created by the step before, under the existing API.
    assert!(plan.steps.iter().any(|s| matches!(
        &s.op,
        Op::RestApi(rest_api::Op::PutMethod { api_id: Some(id), resource_id: None, .. }) if id == "api"
    )));

    // And once the rest is there too, nothing.
    current = full;
    assert!(planned(&current).steps.is_empty());
}

#[test]
fn no_issuer_leaves_the_edge_out_with_a_note() {
    let mut c = config();
    c.dev_issuer = None;
    let d = desired();
    if !matches!(
        d.manifest.ingest.auth.issuer,
        contract_support::manifest::Issuer::Dev
    ) {
        return;
    }
    let plan = plan(&c, &d, &Current::default()).expect("plan");
    assert!(plan.steps.iter().all(|s| !s.resource.contains("-edge")));
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
}

fn head_bucket_failure(error: HeadBucketError, status: u16) -> SdkError<HeadBucketError> {
    let raw = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
    SdkError::service_error(error, raw)
}

#[test]
fn only_not_found_reads_as_absent() {
    let absent = found::<(), _>(
        "s3:HeadBucket",
        Err(head_bucket_failure(
            HeadBucketError::NotFound(NotFound::builder().build()),
            404,
        )),
        |e| e.is_not_found(),
    );
    assert!(matches!(absent, Ok(None)));

    let denied = HeadBucketError::generic(
        aws_sdk_s3::error::ErrorMetadata::builder()
            .code("Forbidden")
            .message("no entry")
            .build(),
    );
    let failed = found::<(), _>(
        "s3:HeadBucket",
        Err(head_bucket_failure(denied, 403)),
        |e| e.is_not_found(),
    );
    let error = failed.expect_err("a failed read is an error").to_string();
    assert_eq!(error, "s3:HeadBucket: Forbidden: no entry");
}

/// The first contract with one more optional envelope field (a compatible change).
fn with_added_field(required: bool) -> Desired {
    let mut manifest = desired().manifest.clone();
    let id = manifest
        .events_table()
        .columns
        .iter()
        .map(|c| c.id)
        .max()
        .expect("columns")
        + 100;
    manifest.fields.push(contract_support::manifest::Field {
        name: "added_note".into(),
        id,
        ty: contract_support::manifest::Type::String,
        required,
        description: None,
        pii: contract_support::manifest::Pii::No,
        rules: Vec::new(),
    });
    Desired {
        manifest: Box::leak(Box::new(manifest)),
        ..desired()
    }
}

#[test]
fn new_iceberg_tables_get_their_metadata_written_where_iceberg_looks() {
    let plan = planned(&Current::default());
    let d = desired();
    let metadata: Vec<&glue::Metadata> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Glue(glue::Op::CreateTable { iceberg, .. }) => iceberg.as_ref(),
            _ => None,
        })
        .collect();
    assert_eq!(metadata.len(), 2, "events and quarantine: {metadata:#?}");
    let events = d.manifest.events_table();
    assert!(metadata.contains(&&glue::Metadata::New {
        location: format!(
            "s3://contractc-artifacts/warehouse/{}.db/{}",
            events.database, events.name
        ),
        table: events,
    }));
}

#[test]
fn a_catalog_entry_without_metadata_gets_its_metadata() {
    let d = desired();
    let mut current = deployed(&config(), &d);
    let table = current
        .glue
        .tables
        .get_mut(&d.manifest.table.name)
        .expect("events table");
    table.parameters.remove(glue::METADATA_LOCATION);
    table.metadata = None;
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [format!(
            "~ update glue table {}.{} (iceberg metadata missing)",
            d.manifest.table.database, d.manifest.table.name
        )]
    );
    assert!(matches!(
        &plan.steps[0].op,
        Op::Glue(glue::Op::UpdateTable {
            iceberg: Some(glue::Metadata::New { .. }),
            ..
        })
    ));
}

#[test]
fn a_new_optional_column_evolves_the_iceberg_table() {
    let c = config();
    let current = deployed(&c, &desired());
    let changed = with_added_field(false);
    let plan = plan(&c, &changed, &current).expect("plan");
    let (database, table) = (
        &changed.manifest.table.database,
        &changed.manifest.table.name,
    );
    let (tables, others): (Vec<String>, Vec<String>) = shown(&plan)
        .into_iter()
        .partition(|s| s.starts_with("~ update glue table"));
    assert_eq!(
        tables,
        [
            format!(
                "~ update glue table {database}.{table} (parameter contractc.definition-sha, columns, iceberg add column added_note)"
            ),
            format!("~ update glue table {database}.{table}_stream (columns)"),
        ]
    );
    // The new envelope column is in every variant's view: their saved queries change too.
    let variants = changed
        .manifest
        .variants
        .as_ref()
        .map_or(0, |v| v.cases.len());
    assert_eq!(others.len(), variants, "{others:#?}");
    assert!(
        others
            .iter()
            .all(|s| s.starts_with("~ update athena named query") && s.ends_with("(query)")),
        "{others:#?}"
    );
    let Op::Glue(glue::Op::UpdateTable {
        iceberg:
            Some(glue::Metadata::Evolve {
                table: definition,
                previous,
                previous_location,
            }),
        ..
    }) = &plan.steps[0].op
    else {
        panic!("not an evolution: {:#?}", plan.steps[0].op);
    };
    let next = definition
        .evolved_metadata(previous, previous_location, 2)
        .expect("evolves");
    // The old schema stays, the new one is current, every field keeps its id.
    assert_eq!(next["schemas"].as_array().map(Vec::len), Some(2));
    assert_eq!(next["current-schema-id"], 1);
    let ids = |schema: &serde_json::Value| -> Vec<(String, u64)> {
        schema["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap_or_default().to_string(),
                    f["id"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let old = ids(&next["schemas"][0]);
    let new = ids(&next["schemas"][1]);
    assert!(old.iter().all(|f| new.contains(f)), "{old:?} vs {new:?}");
    assert_eq!(new.len(), old.len() + 1);
    assert_eq!(
        next["metadata-log"][0]["metadata-file"].as_str(),
        Some(previous_location.as_str())
    );
    assert_eq!(next["last-updated-ms"], 2);
    // And the evolved table is what the contract says: nothing more to change.
    assert_eq!(definition.metadata_changes(&next), Ok(Vec::new()));
}

#[test]
fn incompatible_table_changes_stop_the_plan_with_the_reason() {
    let c = config();
    let current = deployed(&c, &desired());
    let error = plan(&c, &with_added_field(true), &current)
        .expect_err("a new required column cannot be added")
        .to_string();
    assert!(
        error.contains("added_note") && error.contains("required"),
        "{error}"
    );

    // The table has a column the contract dropped.
    let evolved = deployed(&c, &with_added_field(false));
    let error = plan(&c, &desired(), &evolved)
        .expect_err("dropping a column is not applied")
        .to_string();
    assert!(
        error.contains("added_note") && error.contains("not in the contract"),
        "{error}"
    );
}

#[test]
fn metadata_files_are_numbered_as_iceberg_numbers_them() {
    assert_eq!(
        glue::next_metadata_file("s3://b/w/db.db/t/metadata/00000-a.metadata.json", "b"),
        Some("s3://b/w/db.db/t/metadata/00001-b.metadata.json".into())
    );
    assert_eq!(
        glue::next_metadata_file("s3://b/t/metadata.json", "b"),
        None
    );
    assert_eq!(
        glue::split_s3_url("s3://bucket/a/b.json"),
        Some(("bucket", "a/b.json"))
    );
}

#[test]
fn a_new_api_gets_responses_a_bad_request_body_and_a_front_door_secret() {
    let plan = planned(&Current::default());
    let d = desired();
    let name = format!("contractc-{}", d.manifest.name);
    let (stage, path) = resource_path(&d.manifest.ingest.route);
    let resources: Vec<&str> = plan.steps.iter().map(|s| s.resource.as_str()).collect();
    let position = |wanted: &str| {
        resources
            .iter()
            .position(|r| *r == wanted)
            .unwrap_or_else(|| panic!("{wanted} missing from {resources:#?}"))
    };
    let responses = position(&format!(
        "api gateway responses POST {name}{path} (200, 500)"
    ));
    let gateway = position(&format!(
        "api gateway gateway response {name} BAD_REQUEST_BODY (400 with the model's errors)"
    ));
    let deployment = position(&format!("api gateway deployment {name} stage {stage}"));
    let secret = position(&format!(
        "api gateway stage variable {name}/{stage} contractc_edge_secret (front door secret)"
    ));
    // Responses before the deployment that publishes them; the secret on the stage it makes;
    // the edge (which needs the secret) after it.
    assert!(responses < deployment && gateway < deployment && deployment < secret);
    let integration = plan
        .steps
        .iter()
        .position(|s| matches!(s.op, Op::Edge(edge::Op::CreateIntegration { .. })))
        .expect("edge integration");
    assert!(secret < integration);
    let Op::Edge(edge::Op::CreateIntegration { headers, .. }) = &plan.steps[integration].op else {
        unreachable!()
    };
    assert_eq!(
        headers.secret, None,
        "the secret is made when applying, never planned"
    );
    assert_eq!(headers.mappings(Some(SECRET)), Some(forwarded(&d, SECRET)));
    assert_eq!(headers.mappings(None), None);
}

#[test]
fn responses_answer_like_the_reference() {
    let d = desired();
    let responses = d.responses(&d.manifest.ingest.route);
    let ok = &responses.integration["200"];
    assert_eq!(ok.selection_pattern, None, "the default response");
    assert_eq!(
        ok.templates["application/json"],
        "\"Successfully added event\""
    );
    let failed = &responses.integration["500"];
    assert_eq!(failed.selection_pattern.as_deref(), Some("[45]\\d{2}"));
    for status in ["200", "500"] {
        assert_eq!(
            responses.method[status].get("method.response.header.Access-Control-Allow-Origin"),
            Some(&false),
            "{status}"
        );
    }
    assert!(
        rest_api::bad_request_body().templates["application/json"]
            .contains("$context.error.validationErrorString")
    );
}

#[test]
fn a_stage_without_the_secret_gets_one_and_the_edge_forwards_it() {
    let mut current = deployed(&config(), &desired());
    if let Some(api) = current.rest_api.as_mut() {
        api.edge_secret = None;
    }
    let d = desired();
    let name = format!("contractc-{}", d.manifest.name);
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [
            format!(
                "+ create api gateway stage variable {name}/prod contractc_edge_secret (front door secret)"
            ),
            format!(
                "~ update api gateway http api {name}-edge integration integration0 headers (claims {:?}, front door secret) (forwarded headers)",
                d.manifest.enrichment_claims()
            ),
            // The batch route's integration forwards the same headers.
            format!(
                "~ update api gateway http api {name}-edge integration integration1 headers (claims {:?}, front door secret) (forwarded headers)",
                d.manifest.enrichment_claims()
            ),
        ]
    );
    assert!(matches!(
        &plan.steps[1].op,
        Op::Edge(edge::Op::UpdateIntegration { headers, .. }) if headers.secret.is_none()
    ));
}

#[test]
fn a_client_cannot_keep_its_own_claim_headers() {
    // An integration that forwards the client's headers untouched is drift.
    let mut current = deployed(&config(), &desired());
    if let Some(edge) = current.edge.as_mut() {
        edge.integrations[0].request_parameters.clear();
    }
    let plan = planned(&current);
    assert_eq!(plan.steps.len(), 1, "{:#?}", shown(&plan));
    assert!(matches!(
        &plan.steps[0].op,
        Op::Edge(edge::Op::UpdateIntegration { headers, .. })
            if headers.mappings(None) == Some(forwarded(&desired(), SECRET))
    ));
}

#[test]
fn missing_integration_responses_are_put_and_deployed() {
    let mut current = deployed(&config(), &desired());
    let (_, path) = resource_path(&desired().manifest.ingest.route);
    if let Some(integration) = current
        .rest_api
        .as_mut()
        .and_then(|a| a.routes.get_mut(&path))
        .and_then(|r| r.integration.as_mut())
    {
        integration.responses.clear();
    }
    let name = format!("contractc-{}", desired().manifest.name);
    assert_eq!(
        shown(&planned(&current)),
        [
            format!(
                "~ update api gateway responses POST {name}{path} (200, 500) (method or integration responses)"
            ),
            format!("+ create api gateway deployment {name} stage prod"),
        ]
    );
}

#[test]
fn roles_come_first_and_are_scoped_to_the_contract() {
    let c = config();
    let d = desired();
    let plan = planned(&Current::default());
    let name = format!("contractc-{}", d.manifest.name);
    assert_eq!(
        shown(&plan)[..4],
        [
            format!("+ create iam role {name}-glue"),
            format!("+ create iam role {name}-glue policy contractc"),
            format!("+ create iam role {name}-apigateway"),
            format!("+ create iam role {name}-apigateway policy contractc"),
        ]
    );
    let glue = iam::role_policy(&c, &d, Role::Glue).to_string();
    assert!(glue.contains(&d.stream_arn(&c)), "{glue}");
    assert!(
        glue.contains(&format!(
            "arn:aws:s3:::contractc-artifacts/warehouse/{}.db/{}/*",
            d.manifest.table.database, d.manifest.table.name
        )),
        "{glue}"
    );
    // The one wildcard resource is CloudWatch metrics, which has no resource ARNs; it is
    // limited to Glue's namespace and the contract's counts' (#24).
    assert_eq!(glue.matches("\"Resource\":\"*\"").count(), 1, "{glue}");
    assert!(
        glue.contains("\"cloudwatch:namespace\":[\"Glue\",\"contractc\"]"),
        "{glue}"
    );
}

#[test]
fn given_role_arns_are_used_and_not_managed() {
    let mut c = config();
    c.glue_role_arn = Some("arn:aws:iam::1:role/mine".into());
    c.api_role_arn = Some("arn:aws:iam::1:role/api".into());
    let d = desired();
    let plan = plan(&c, &d, &Current::default()).expect("plan");
    assert!(!shown(&plan).iter().any(|s| s.contains("iam role")));
    assert!(plan.steps.iter().any(|s| matches!(
        &s.op,
        Op::Glue(glue::Op::CreateJob(spec)) if spec.role == "arn:aws:iam::1:role/mine"
    )));
    assert!(plan.steps.iter().any(|s| matches!(
        &s.op,
        Op::RestApi(rest_api::Op::PutIntegration { credentials, .. }) if credentials == "arn:aws:iam::1:role/api"
    )));
}

#[test]
fn a_widened_role_policy_is_put_back() {
    let mut current = deployed(&config(), &desired());
    if let Some(role) = current.iam.api.as_mut() {
        role.policy =
            Some(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
    }
    let name = format!("contractc-{}", desired().manifest.name);
    assert_eq!(
        shown(&planned(&current)),
        [format!(
            "~ update iam role {name}-apigateway policy contractc (permissions)"
        )]
    );
    assert_eq!(iam::policy_json("%7B%22a%22%3A1%7D"), Some(json!({"a": 1})));
}

#[test]
fn an_unencrypted_stream_and_an_unversioned_bucket_are_fixed() {
    let mut current = deployed(&config(), &desired());
    current.kinesis.encrypted = false;
    current.s3.settings.versioned = false;
    current.s3.settings.tags.clear();
    let name = format!("contractc-{}", desired().manifest.name);
    assert_eq!(
        shown(&planned(&current)),
        [
            "~ update s3 bucket contractc-artifacts settings (versioning, lifecycle, public access block, encryption, tags) (versioning, tags)".to_string(),
            format!("~ update kinesis stream {name} (on demand, KMS alias/aws/kinesis) (server-side encryption)"),
        ]
    );
}

#[test]
fn destroy_takes_the_door_down_first_and_the_roles_last() {
    let c = config();
    let d = desired();
    let plan = destroy::plan(&c, &d, &deployed(&c, &d));
    let shown = shown(&plan);
    let name = format!("contractc-{}", d.manifest.name);
    assert_eq!(
        shown.first(),
        Some(&format!("- delete api gateway http api {name}-edge"))
    );
    assert_eq!(
        shown.last(),
        Some(&format!("- delete iam role {name}-apigateway"))
    );
    assert!(shown.contains(&format!("- delete kinesis stream {name}")));
    assert!(shown.contains(&format!("- delete glue job {name}")));
    assert_eq!(
        shown.iter().filter(|s| s.contains("glue table")).count(),
        3,
        "{shown:#?}"
    );
    assert_eq!(
        plan.notes.len(),
        1,
        "the database is kept: {:?}",
        plan.notes
    );
    // Nothing deployed, nothing to delete.
    assert!(destroy::plan(&c, &d, &Current::default()).steps.is_empty());
}

#[test]
fn destroy_refuses_a_bucket_with_table_data_unless_forced() {
    let c = config();
    let with_data = destroy::BucketContents {
        objects: 5,
        table_data: 2,
    };
    let refused = destroy::plan_bucket(&c, Some(&with_data), false)
        .expect_err("table data is not deleted without --force-delete-data")
        .to_string();
    assert!(
        refused.contains("--force-delete-data") && refused.contains("2 table data"),
        "{refused}"
    );
    let forced = destroy::plan_bucket(&c, Some(&with_data), true).expect("forced");
    assert!(matches!(
        forced.map(|s| s.op),
        Some(Op::Destroy(destroy::Op::EmptyAndDeleteBucket { .. }))
    ));
    let metadata_only = destroy::BucketContents {
        objects: 3,
        table_data: 0,
    };
    assert!(
        destroy::plan_bucket(&c, Some(&metadata_only), false)
            .expect("no data")
            .is_some()
    );
    assert_eq!(
        destroy::plan_bucket(&c, None, false).expect("no bucket"),
        None
    );
}

#[test]
fn access_logs_get_their_groups_the_account_role_and_the_stage_settings() {
    let c = config();
    let d = desired();
    let plan = planned(&Current::default());
    let name = format!("contractc-{}", d.manifest.name);
    let lines = shown(&plan);
    for expected in [
        format!("+ create cloudwatch log group /aws/apigateway/{name} (30 days)"),
        format!("+ create cloudwatch log group /aws/apigateway/{name}-edge (30 days)"),
        "+ create api gateway account cloudwatch role arn:aws:iam::123456789012:role/contractc-apigateway-logs".to_string(),
        format!("+ create api gateway stage {name}/prod access log → {}", d.log_group_arn(&c, LogGroup::RestApi)),
    ] {
        assert!(lines.contains(&expected), "{expected} missing from {lines:#?}");
    }
    // The role is created with its policy and set on the account.
    assert!(plan.steps.iter().any(|s| matches!(
        &s.op,
        Op::Logs(logs::Op::SetAccountRole { create: true, .. })
    )));

    // An account with a role keeps it; a stage without settings gets them.
    let mut current = deployed(&c, &d);
    if let Some(api) = current.rest_api.as_mut() {
        api.access_log = None;
    }
    assert_eq!(
        shown(&planned(&current)),
        [format!(
            "+ create api gateway stage {name}/prod access log → {}",
            d.log_group_arn(&c, LogGroup::RestApi)
        )]
    );
}

/// Someone edited the tags of every tagged resource: each shows as a tag update, and only
/// deploy's own keys are touched.
#[test]
fn edited_tags_are_planned_back_on_every_tagged_resource() {
    let c = config();
    let d = desired();
    let mut current = deployed(&c, &d);
    let edited: tags::Tags = [
        ("contractc:contract", "renamed"),
        ("contractc:stale", "x"),
        ("team", "analytics"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for role in [current.iam.glue.as_mut(), current.iam.api.as_mut()]
        .into_iter()
        .flatten()
    {
        role.tags = edited.clone();
    }
    for tags in current.logs.tags.values_mut() {
        *tags = edited.clone();
    }
    current.kinesis.tags = edited.clone();
    if let Some(job) = current.glue.job.as_mut() {
        job.tags = edited.clone();
    }
    if let Some(api) = current.rest_api.as_mut() {
        api.tags = edited.clone();
    }
    if let Some(edge) = current.edge.as_mut() {
        edge.tags = edited.clone();
    }
    let plan = planned(&current);
    let name = format!("contractc-{}", d.manifest.name);
    // The renamed contract tag is set back, the missing prefix tag added, the stale one of
    // deploy's own removed; `team` is someone else's.
    let what = format!(
        "(tags contractc:contract={} contractc:prefix=contractc -contractc:stale)",
        d.manifest.name
    );
    assert_eq!(
        shown(&plan),
        [
            format!("~ update iam role {name}-glue {what}"),
            format!("~ update iam role {name}-apigateway {what}"),
            format!("~ update cloudwatch log group /aws/apigateway/{name} {what}"),
            format!("~ update cloudwatch log group /aws/apigateway/{name}-edge {what}"),
            format!("~ update kinesis stream {name} {what}"),
            format!("~ update glue job {name} {what}"),
            format!("~ update api gateway rest api {name} {what}"),
            format!("~ update api gateway http api {name}-edge {what}"),
        ],
    );
    // Tags need no redeployment, and each step carries the ARN its tagging call takes.
    assert!(plan.steps.iter().any(|s| s.op
        == Op::Glue(glue::Op::TagJob {
            arn: format!("arn:aws:glue:us-east-1:123456789012:job/{name}"),
            change: tags::Change {
                set: d.tags(&c),
                remove: vec!["contractc:stale".into()],
            },
        })));
    assert!(plan.steps.iter().any(|s| matches!(&s.op,
        Op::Edge(edge::Op::Tag { arn, .. }) if arn == "arn:aws:apigateway:us-east-1::/apis/edge")));
    assert!(plan.steps.iter().any(|s| matches!(&s.op,
        Op::Logs(logs::Op::TagLogGroup { arn, .. }) if *arn == d.log_group_arn(&c, LogGroup::HttpApi))));
}

#[test]
fn a_missing_batch_route_is_planned_alone_with_its_door() {
    let c = config();
    let d = desired();
    let mut current = deployed(&c, &d);
    let batch = d.manifest.ingest.batch_route.clone().expect("batch route");
    let (_, path) = resource_path(&batch);
    if let Some(api) = current.rest_api.as_mut() {
        api.routes.remove(&path);
        api.resources.remove(&path);
        api.models.remove("TestEventBatch");
    }
    if let Some(edge) = current.edge.as_mut() {
        edge.routes.remove(&format!("POST {batch}"));
        edge.integrations.truncate(1);
    }
    let name = format!("contractc-{}", d.manifest.name);
    let plan = planned(&current);
    assert_eq!(
        shown(&plan),
        [
            "+ create api gateway model TestEventBatch".to_string(),
            format!("+ create api gateway resource {name}{path}"),
            format!("+ create api gateway method POST {name}{path}"),
            format!("+ create api gateway kinesis integration {name}{path} (PutRecords)"),
            format!("+ create api gateway responses POST {name}{path} (200, 500)"),
            format!("+ create api gateway deployment {name} stage prod"),
            format!(
                "+ create api gateway http api {name}-edge integration → https://api.execute-api.us-east-1.amazonaws.com{batch}"
            ),
            format!(
                "+ create api gateway http api {name}-edge route POST {batch} (JWT, scopes {:?})",
                d.manifest.ingest.auth.scopes
            ),
        ]
    );
    // The integration: PutRecords with the batch template, the stream's name filled in.
    assert!(plan.steps.iter().any(|s| s.op
        == Op::RestApi(rest_api::Op::PutIntegration {
            api_id: Some("api".into()),
            resource_id: None,
            resource_path: path.clone(),
            uri: "arn:aws:apigateway:us-east-1:kinesis:action/PutRecords".into(),
            credentials: d.role_arn(&c, Role::ApiGateway),
            template: format!("{{\"StreamName\": \"{}\", \"Records\": []}}", d.stream(&c)),
        })));
    // The edge's route uses the integration created for the batch route in the same apply.
    assert!(plan.steps.iter().any(|s| matches!(&s.op,
        Op::Edge(edge::Op::PutRoute { route, integration_id: None, .. }) if *route == batch)));
}

#[test]
fn a_bare_403_reads_as_access_denied_in_one_line() {
    let bare = HeadBucketError::generic(aws_sdk_s3::error::ErrorMetadata::builder().build());
    let failed = found::<(), _>("s3:HeadBucket", Err(head_bucket_failure(bare, 403)), |e| {
        e.is_not_found()
    });
    assert_eq!(
        failed.expect_err("an error").to_string(),
        "s3:HeadBucket: access denied: the credentials lack the permission for s3:HeadBucket"
    );
}

fn lambda_config(code: Option<&[u8]>) -> DeployConfig {
    DeployConfig {
        door: crate::Door::Function(crate::function::Settings {
            code: code.map(|zip| crate::function::Code::new(zip.to_vec())),
            memory_mb: 256,
            timeout_seconds: 10,
            reserved_concurrency: None,
        }),
        ..config()
    }
}

#[test]
fn the_lambda_door_plans_the_function_its_role_and_routes_instead_of_the_rest_api() {
    let config = lambda_config(Some(b"zip"));
    let plan = plan(&config, &desired(), &Current::default()).expect("plan");
    let shown = shown(&plan);
    let name = format!("contractc-{}", desired().manifest.name);
    for wanted in [
        format!("+ create iam role {name}-edge"),
        format!("+ create cloudwatch log group /aws/lambda/{name}-edge (30 days)"),
        format!("+ create lambda function {name}-edge (256 MB, 10 s, 3 bytes of code)"),
        format!("+ create lambda function {name}-edge permission for the front door"),
    ] {
        assert!(shown.contains(&wanted), "{wanted}: {shown:#?}");
    }
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}-edge");
    assert!(
        shown
            .iter()
            .any(|s| s.ends_with(&format!("integration → lambda {arn}"))),
        "{shown:#?}"
    );
    for absent in ["rest api", "-apigateway", "account cloudwatch role"] {
        assert!(
            !shown.iter().any(|s| s.contains(absent)),
            "{absent}: {shown:#?}"
        );
    }
    // The function's role may put on this contract's stream and write its own log, no more.
    let policy = crate::iam::role_policy(&config, &desired(), crate::names::Role::Edge);
    assert_eq!(policy["Statement"][0]["Action"], "kinesis:PutRecords");
    assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_lambda_door_without_a_zip_names_the_build_command() {
    let error =
        plan(&lambda_config(None), &desired(), &Current::default()).expect_err("no zip, no plan");
    assert!(
        error.to_string().contains("cargo lambda build")
            && error.to_string().contains("--edge-zip"),
        "{error}"
    );
}

#[test]
fn only_a_contract_storing_hashed_values_gets_the_key_and_its_jobs_name_it() {
    let c = config();
    let resources =
        |plan: &Plan| -> Vec<String> { plan.steps.iter().map(|s| s.resource.clone()).collect() };
    // The jobs that read or write values; the maintenance job only rewrites files.
    let job_arguments = |plan: &Plan| -> Vec<BTreeMap<String, String>> {
        plan.steps
            .iter()
            .filter_map(|s| match &s.op {
                Op::Glue(glue::Op::CreateJob(spec)) if spec.kind != glue::JobKind::Maintenance => {
                    Some(spec.arguments.clone())
                }
                _ => None,
            })
            .collect()
    };
    let plain = planned(&Current::default());
    assert!(
        !resources(&plain)
            .iter()
            .any(|r| r.starts_with("secretsmanager"))
    );
    let jobs = job_arguments(&plain);
    assert_eq!(jobs.len(), 2, "the streaming and the erasure job");
    assert!(jobs.iter().all(|a| !a.contains_key("--pii_secret")));

    let mut manifest = desired().manifest.clone();
    for field in &mut manifest.fields {
        if field.name == "event_id" {
            field.pii = contract_support::manifest::Pii::Hash;
        }
    }
    let hashed = Desired {
        manifest: Box::leak(Box::new(manifest)),
        ..desired()
    };
    let plan = plan(&c, &hashed, &Current::default()).expect("plan");
    let order = resources(&plan);
    let secret = order
        .iter()
        .position(|r| r == "secretsmanager secret contractc/pii-keys")
        .expect("the key's secret is created");
    let first_job = order
        .iter()
        .position(|r| r.starts_with("glue job "))
        .expect("jobs");
    assert!(
        secret < first_job,
        "the key before the jobs reading it: {order:#?}"
    );
    let jobs = job_arguments(&plan);
    assert!(
        jobs.iter()
            .all(|a| a.get("--pii_secret").map(String::as_str) == Some("contractc/pii-keys")),
        "{jobs:#?}"
    );
    let maintenance = hashed.maintenance_job_spec(&c);
    assert!(!maintenance.arguments.contains_key("--pii_secret"));
}

#[test]
fn a_view_edited_in_athena_is_planned_back_and_a_missing_one_created() {
    let (c, d) = (config(), desired());
    let mut current = deployed(&c, &d);
    assert!(
        planned(&current).steps.is_empty(),
        "{:#?}",
        shown(&planned(&current))
    );
    let names: Vec<String> = current.queries.queries.keys().cloned().collect();
    assert!(names.len() >= 2, "{names:?}");
    if let Some((_, query)) = current.queries.queries.get_mut(&names[0]) {
        query.sql.push_str(" LIMIT 10");
    }
    current.queries.queries.remove(&names[1]);
    let old = queries::Query {
        name: "events_table_old_view".into(),
        description: String::new(),
        database: d.manifest.table.database.clone(),
        sql: "SELECT 1".into(),
    };
    current
        .queries
        .queries
        .insert(old.name.clone(), ("old-id".into(), old));
    assert_eq!(
        shown(&planned(&current)),
        [
            format!(
                "- delete athena named query contractc-{}/events_table_old_view",
                d.manifest.name
            ),
            format!(
                "~ update athena named query contractc-{}/{} (query)",
                d.manifest.name, names[0]
            ),
            format!(
                "+ create athena named query contractc-{}/{}",
                d.manifest.name, names[1]
            ),
        ]
    );
    // Each query is the view's statement: the database's view of the generated views.sql.
    let first = &queries::desired_queries(&d)[0];
    assert!(
        first.sql.starts_with(&format!(
            "CREATE OR REPLACE VIEW {}.",
            d.manifest.table.database
        )),
        "{}",
        first.sql
    );
}
