//! Plans from hand-built read states: no AWS, no emulator.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::primitives::SdkBody;
use aws_sdk_s3::types::error::NotFound;
use serde_json::json;

use super::*;

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
    }
}

/// The first contract compiled in, with small stand-ins for its generated artefacts.
fn desired() -> Desired {
    let manifest = contract_validators::ALL
        .first()
        .expect("a contract is compiled in")
        .manifest();
    let route = manifest.ingest.route.clone();
    Desired {
        manifest,
        script: b"print('job')\n".to_vec(),
        model: json!({"title": "TestEvent", "type": "object"}).to_string(),
        openapi: json!({"paths": {route: {"post": {"x-amazon-apigateway-integration": {
            "requestTemplates": {"application/json": "{\"StreamName\": \"${stream_name}\"}"}
        }}}}}),
    }
}

fn table_state(input: &aws_sdk_glue::types::TableInput) -> glue::TableState {
    glue::TableState {
        parameters: input.parameters().cloned().unwrap_or_default(),
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

/// Everything deployed exactly as `desired` says, as a read would see it.
fn deployed(c: &DeployConfig, d: &Desired) -> Current {
    let tables = [
        d.iceberg_table_input(c, &d.manifest.events_table()),
        d.iceberg_table_input(c, &d.manifest.quarantine_table()),
        d.stream_table_input(c),
    ]
    .into_iter()
    .map(|input| {
        let input = input.expect("table input");
        (input.name().to_string(), table_state(&input))
    })
    .collect();
    let (_, path) = resource_path(&d.manifest.ingest.route);
    let mut resources = HashMap::from([("/".to_string(), "root".to_string())]);
    let mut walked = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        walked = format!("{walked}/{segment}");
        resources.insert(walked.clone(), format!("res{walked}"));
    }
    let auth = &d.manifest.ingest.auth;
    Current {
        s3: s3::Current {
            bucket: true,
            script: Some(d.script.clone()),
        },
        kinesis: kinesis::Current { stream: true },
        glue: glue::Current {
            database: true,
            tables,
            job: Some(glue::JobState {
                script_location: Some(format!("s3://{}/{}", c.bucket(), d.script_key(c))),
                glue_version: Some("5.0".into()),
                role: Some(c.glue_role()),
                arguments: d.job_arguments(c).into_iter().collect::<BTreeMap<_, _>>(),
            }),
        },
        rest_api: Some(rest_api::Current {
            id: "api".into(),
            model_schema: Some(d.model.clone()),
            validator_id: Some("validator".into()),
            resources,
            method: Some(rest_api::MethodState {
                model: Some(d.model_name()),
                validator_id: Some("validator".into()),
            }),
            integration: Some(rest_api::IntegrationState {
                uri: "arn:aws:apigateway:us-east-1:kinesis:action/PutRecord".into(),
                template: Some(format!("{{\"StreamName\": \"{}\"}}", d.stream(c))),
            }),
            has_deployment: true,
        }),
        edge: Some(edge::Current {
            api_id: "edge".into(),
            route: Some(edge::RouteState {
                id: "route".into(),
                jwt: true,
                authorizer_id: Some("authorizer".into()),
                scopes: auth.scopes.clone(),
                target: Some("integrations/integration".into()),
            }),
            authorizer: Some(edge::AuthorizerState {
                id: "authorizer".into(),
                issuer: c.dev_issuer.clone(),
                audience: vec![auth.audience.clone()],
            }),
            integrations: vec![(
                "integration".into(),
                format!(
                    "https://api.execute-api.us-east-1.amazonaws.com/{}",
                    d.manifest.ingest.route.trim_start_matches('/')
                ),
            )],
            default_stage: true,
        }),
    }
}

/// The plan as `contract-deploy deploy` prints it.
fn shown(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::Create => format!("+ create {}", step.resource),
            Action::Update(what) => format!("~ update {} ({})", step.resource, what.join(", ")),
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
    let resources: Vec<String> = plan.steps.iter().map(|s| s.resource.clone()).collect();
    for expected in [
        "s3 bucket contractc-artifacts".to_string(),
        format!(
            "s3 object s3://contractc-artifacts/contractc/{}/streaming_job.py",
            d.manifest.name
        ),
        format!("kinesis stream {name}"),
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
        format!("api gateway kinesis integration {name}{path}"),
        format!("api gateway deployment {name} stage {stage}"),
        format!("api gateway http api {name}-edge"),
        format!("api gateway http api {name}-edge stage $default (auto-deploy)"),
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
        api.model_schema = Some(json!({"title": "TestEvent"}).to_string());
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
            format!("+ create api gateway http api {name}-edge stage $default (auto-deploy)"),
        ]
    );
    assert_eq!(
        plan.steps[0].op,
        Op::RestApi(rest_api::Op::CreateDeployment {
            api_id: Some("api".into()),
            stage: "prod".into()
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
        s3: full.s3.clone(),
        kinesis: full.kinesis.clone(),
        glue: glue::Current {
            database: true,
            ..Default::default()
        },
        rest_api: full.rest_api.clone().map(|api| rest_api::Current {
            resources: HashMap::from([("/".to_string(), "root".to_string())]),
            method: None,
            integration: None,
            has_deployment: false,
            ..api
        }),
        edge: None,
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
