//! `contract-runtime deploy`: the generated stack on AWS (API Gateway → Kinesis → Glue Spark
//! streaming → Iceberg tables in S3 registered in the Glue Data Catalog).
//!
//! Each resource is read back, compared with what the generated artefacts say it should be,
//! and planned as create, update or nothing (like a terraform plan); `apply` carries the plan
//! out. Applying twice changes nothing the second time, and a resource changed outside shows
//! up as an update (drift). The artefacts come from `generated/`, so what is deployed is
//! byte for byte what `contractc build` produced.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use aws_sdk_apigateway::types::IntegrationType;
use aws_sdk_glue::types::{
    Column, DatabaseInput, JobCommand, JobUpdate, StorageDescriptor, TableInput,
};
use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};
use contract_support::Contract;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{call}: {message}")]
    Aws { call: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn aws<E: std::fmt::Debug>(call: &'static str) -> impl Fn(E) -> DeployError {
    move |error| {
        let text = format!("{error:?}");
        // Emulators answer unimplemented calls with an HTML 500 or a NotImplemented code.
        let message = if text.contains("NotImplemented")
            || text.contains("not yet implemented")
            || text.contains("<!doctype html")
        {
            format!("not supported by this endpoint (the call {call} is not implemented)")
        } else if text.contains("AccessDenied") {
            format!("access denied: the credentials lack the permission for {call}")
        } else {
            text
        };
        DeployError::Aws { call, message }
    }
}

/// Settings of `deploy` and `status`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub prefix: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub bucket: Option<String>,
    pub glue_role_arn: Option<String>,
    pub api_role_arn: Option<String>,
    pub account_id: String,
    /// Where `contractc build` wrote the artefacts.
    pub generated: PathBuf,
    /// Fixed credentials (access key id, secret) instead of the standard chain: for emulators.
    pub static_credentials: Option<(String, String)>,
    /// The issuer the JWT authorizer trusts for contracts using the dev identity provider
    /// (which does not run on AWS); without it their authorizer is left out, with a note.
    pub dev_issuer: Option<String>,
}

impl DeployConfig {
    fn bucket(&self) -> String {
        self.bucket
            .clone()
            .unwrap_or_else(|| format!("{}-artifacts", self.prefix))
    }
    fn glue_role(&self) -> String {
        self.glue_role_arn.clone().unwrap_or_else(|| {
            format!("arn:aws:iam::{}:role/{}-glue", self.account_id, self.prefix)
        })
    }
    fn api_role(&self) -> String {
        self.api_role_arn.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:role/{}-apigateway",
                self.account_id, self.prefix
            )
        })
    }
}

/// The AWS clients, one configuration for all (endpoint, region, credentials chain).
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub glue: aws_sdk_glue::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub apigatewayv2: aws_sdk_apigatewayv2::Client,
}

impl Clients {
    pub async fn new(config: &DeployConfig) -> Clients {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            // Emulators answer unimplemented calls with 500s: no point in retrying them.
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(if config.endpoint_url.is_some() { 1 } else { 3 }),
            );
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((id, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id, secret, None, None, "static",
            ));
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.endpoint_url.is_some())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            kinesis: aws_sdk_kinesis::Client::new(&shared),
            glue: aws_sdk_glue::Client::new(&shared),
            apigateway: aws_sdk_apigateway::Client::new(&shared),
            apigatewayv2: aws_sdk_apigatewayv2::Client::new(&shared),
        }
    }
}

/// What a plan does to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// The resource exists but differs (drift, or a changed contract): what differs.
    Update(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// e.g. `glue job contractc-game_events`.
    pub resource: String,
    pub action: Action,
}

/// Everything one contract needs deployed, read from the generated artefacts.
pub struct Desired {
    pub contract: &'static dyn Contract,
    pub script: Vec<u8>,
    pub model: String,
    pub openapi: Value,
}

impl Desired {
    pub fn load(
        contract: &'static dyn Contract,
        generated: &std::path::Path,
    ) -> Result<Desired, DeployError> {
        let read = |rel: &str| {
            let path = generated.join(contract.name()).join(rel);
            std::fs::read(&path).map_err(|source| DeployError::Io { path, source })
        };
        let script = read("glue/streaming_job.py")?;
        let model = String::from_utf8_lossy(&read("apigateway/request-model.json")?).into_owned();
        let openapi = serde_json::from_slice(&read("apigateway/openapi.json")?)
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        Ok(Desired {
            contract,
            script,
            model,
            openapi,
        })
    }

    fn stream(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.contract.name())
    }
    fn script_key(&self, c: &DeployConfig) -> String {
        format!("{}/{}/streaming_job.py", c.prefix, self.contract.name())
    }
    fn job(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.contract.name())
    }
    fn api(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.contract.name())
    }
    fn model_name(&self) -> String {
        self.model_json()["title"]
            .as_str()
            .unwrap_or("Event")
            .to_string()
    }
    fn model_json(&self) -> Value {
        serde_json::from_str(&self.model).unwrap_or_default()
    }
    fn stream_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{}",
            c.region,
            c.account_id,
            self.stream(c)
        )
    }

    fn job_arguments(&self, c: &DeployConfig) -> HashMap<String, String> {
        let bucket = c.bucket();
        let warehouse = format!("s3://{bucket}/warehouse");
        HashMap::from([
            ("--datalake-formats".to_string(), "iceberg".to_string()),
            ("--stream_arn".to_string(), self.stream_arn(c)),
            (
                "--checkpoint_location".to_string(),
                format!(
                    "s3://{bucket}/{}/{}/checkpoints/",
                    c.prefix,
                    self.contract.name()
                ),
            ),
            ("--window_seconds".to_string(), "100".to_string()),
            ("--catalog".to_string(), "glue_catalog".to_string()),
            (
                "--conf".to_string(),
                format!(
                    "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions --conf spark.sql.catalog.glue_catalog=org.apache.iceberg.spark.SparkCatalog --conf spark.sql.catalog.glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog --conf spark.sql.catalog.glue_catalog.warehouse={warehouse} --conf spark.sql.catalog.glue_catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO"
                ),
            ),
            (
                "--contractc-fingerprint".to_string(),
                self.contract.fingerprint().to_string(),
            ),
        ])
    }

    /// A Glue table for an Iceberg definition (columns for Athena/Glue, the definition's
    /// properties as parameters).
    fn iceberg_table_input(
        &self,
        c: &DeployConfig,
        definition: &str,
    ) -> Result<TableInput, DeployError> {
        let json: Value =
            serde_json::from_str(definition).map_err(|e| DeployError::Invalid(e.to_string()))?;
        let name = json["name"].as_str().unwrap_or_default().to_string();
        let columns = json["schema"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                Column::builder()
                    .name(f["name"].as_str().unwrap_or_default())
                    .r#type(glue_type(&f["type"]))
                    .set_comment(f["doc"].as_str().map(str::to_string))
                    .build()
                    .map_err(|e| DeployError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let location = format!(
            "s3://{}/warehouse/{}.db/{name}",
            c.bucket(),
            self.contract.database()
        );
        let mut parameters: HashMap<String, String> = HashMap::from([
            ("table_type".to_string(), "ICEBERG".to_string()),
            (
                "contractc.definition-sha".to_string(),
                short_hash(definition),
            ),
        ]);
        if let Some(props) = json["properties"].as_object() {
            for (k, v) in props {
                parameters.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        TableInput::builder()
            .name(name)
            .table_type("EXTERNAL_TABLE")
            .set_parameters(Some(parameters))
            .storage_descriptor(
                StorageDescriptor::builder()
                    .set_columns(Some(columns))
                    .location(location)
                    .build(),
            )
            .build()
            .map_err(|e| DeployError::Invalid(e.to_string()))
    }

    /// The Glue table describing the Kinesis stream (what Glue's streaming sources read).
    fn stream_table_input(&self, c: &DeployConfig) -> Result<TableInput, DeployError> {
        let json: Value = serde_json::from_str(self.contract.events_table_json())
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        let columns = json["schema"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                !f["doc"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Enriched from")
            })
            .map(|f| {
                Column::builder()
                    .name(f["name"].as_str().unwrap_or_default())
                    .r#type(glue_type(&f["type"]))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        let parameters = HashMap::from([
            ("classification".to_string(), "json".to_string()),
            ("typeOfData".to_string(), "kinesis".to_string()),
            ("streamARN".to_string(), self.stream_arn(c)),
            (
                "contractc.fingerprint".to_string(),
                self.contract.fingerprint().to_string(),
            ),
        ]);
        TableInput::builder()
            .name(format!("{}_stream", self.contract.events_table()))
            .table_type("EXTERNAL_TABLE")
            .set_parameters(Some(parameters.clone()))
            .storage_descriptor(
                StorageDescriptor::builder()
                    .set_columns(Some(columns))
                    .set_parameters(Some(parameters))
                    .build(),
            )
            .build()
            .map_err(|e| DeployError::Invalid(e.to_string()))
    }

    fn request_template(&self) -> String {
        let route = self.contract.route();
        self.openapi["paths"][route]["post"]["x-amazon-apigateway-integration"]["requestTemplates"]
            ["application/json"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Glue/Hive type names for an Iceberg type.
fn glue_type(ty: &Value) -> String {
    match ty {
        Value::String(s) => match s.as_str() {
            "long" => "bigint".into(),
            "timestamptz" => "timestamp".into(),
            "uuid" => "string".into(),
            other => other.replace(", ", ","),
        },
        other => match other["type"].as_str() {
            Some("list") => format!("array<{}>", glue_type(&other["element"])),
            Some("map") => format!(
                "map<{},{}>",
                glue_type(&other["key"]),
                glue_type(&other["value"])
            ),
            Some("struct") => {
                let members: Vec<String> = other["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        format!(
                            "{}:{}",
                            f["name"].as_str().unwrap_or_default(),
                            glue_type(&f["type"])
                        )
                    })
                    .collect();
                format!("struct<{}>", members.join(","))
            }
            _ => "string".into(),
        },
    }
}

/// The API Gateway resource path of a route: its first segment is the stage (`/prod/x` → `/x`).
fn resource_path(route: &str) -> (String, String) {
    let mut parts = route.trim_start_matches('/').splitn(2, '/');
    let first = parts.next().unwrap_or_default().to_string();
    match parts.next() {
        Some(rest) => (first, format!("/{rest}")),
        None => ("prod".to_string(), route.to_string()),
    }
}

/// Plans (and with `apply`, carries out) one contract's deployment.
pub async fn deploy_contract(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
    apply: bool,
) -> Result<Vec<Step>, DeployError> {
    let mut steps = Vec::new();
    let bucket = config.bucket();

    // S3 bucket and the Glue script.
    if clients
        .s3
        .head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .is_err()
    {
        steps.push(Step {
            resource: format!("s3 bucket {bucket}"),
            action: Action::Create,
        });
        if apply {
            clients
                .s3
                .create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .map_err(aws("s3:CreateBucket"))?;
        }
    }
    let key = desired.script_key(config);
    let current = match clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(object) => Some(
            object
                .body
                .collect()
                .await
                .map_err(aws("s3:GetObject"))?
                .into_bytes()
                .to_vec(),
        ),
        Err(_) => None,
    };
    if current.as_deref() != Some(desired.script.as_slice()) {
        let action = if current.is_some() {
            Action::Update(vec!["script bytes".into()])
        } else {
            Action::Create
        };
        steps.push(Step {
            resource: format!("s3 object s3://{bucket}/{key}"),
            action,
        });
        if apply {
            clients
                .s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from(
                    desired.script.clone(),
                ))
                .send()
                .await
                .map_err(aws("s3:PutObject"))?;
        }
    }

    // Kinesis stream (on demand).
    let stream = desired.stream(config);
    if clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .is_err()
    {
        steps.push(Step {
            resource: format!("kinesis stream {stream}"),
            action: Action::Create,
        });
        if apply {
            let mode = StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .map_err(|e| DeployError::Invalid(e.to_string()))?;
            clients
                .kinesis
                .create_stream()
                .stream_name(&stream)
                .stream_mode_details(mode)
                .send()
                .await
                .map_err(aws("kinesis:CreateStream"))?;
        }
    }

    // Glue database and tables.
    let database = desired.contract.database();
    if clients
        .glue
        .get_database()
        .name(database)
        .send()
        .await
        .is_err()
    {
        steps.push(Step {
            resource: format!("glue database {database}"),
            action: Action::Create,
        });
        if apply {
            let input = DatabaseInput::builder()
                .name(database)
                .build()
                .map_err(|e| DeployError::Invalid(e.to_string()))?;
            clients
                .glue
                .create_database()
                .database_input(input)
                .send()
                .await
                .map_err(aws("glue:CreateDatabase"))?;
        }
    }
    let tables = [
        desired.iceberg_table_input(config, desired.contract.events_table_json())?,
        desired.iceberg_table_input(config, desired.contract.quarantine_table_json())?,
        desired.stream_table_input(config)?,
    ];
    for input in tables {
        let name = input.name().to_string();
        let current = clients
            .glue
            .get_table()
            .database_name(database)
            .name(&name)
            .send()
            .await
            .ok()
            .and_then(|t| t.table);
        let action = match &current {
            None => Some(Action::Create),
            Some(table) => {
                let mut differs = Vec::new();
                let want_params = input.parameters().cloned().unwrap_or_default();
                let have_params = table.parameters().cloned().unwrap_or_default();
                for (k, v) in &want_params {
                    if have_params.get(k) != Some(v) {
                        differs.push(format!("parameter {k}"));
                    }
                }
                let columns = |sd: Option<&StorageDescriptor>| -> Vec<(String, String)> {
                    sd.map(|s| {
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
                    .unwrap_or_default()
                };
                if columns(input.storage_descriptor()) != columns(table.storage_descriptor()) {
                    differs.push("columns".into());
                }
                (!differs.is_empty()).then_some(Action::Update(differs))
            }
        };
        if let Some(action) = action {
            let create = action == Action::Create;
            steps.push(Step {
                resource: format!("glue table {database}.{name}"),
                action,
            });
            if apply {
                if create {
                    clients
                        .glue
                        .create_table()
                        .database_name(database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(aws("glue:CreateTable"))?;
                } else {
                    clients
                        .glue
                        .update_table()
                        .database_name(database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(aws("glue:UpdateTable"))?;
                }
            }
        }
    }

    // Glue streaming job.
    let job_name = desired.job(config);
    let script_location = format!("s3://{bucket}/{key}");
    let arguments = desired.job_arguments(config);
    let command = JobCommand::builder()
        .name("gluestreaming")
        .script_location(&script_location)
        .python_version("3")
        .build();
    match clients
        .glue
        .get_job()
        .job_name(&job_name)
        .send()
        .await
        .ok()
        .and_then(|j| j.job)
    {
        None => {
            steps.push(Step {
                resource: format!("glue job {job_name}"),
                action: Action::Create,
            });
            if apply {
                clients
                    .glue
                    .create_job()
                    .name(&job_name)
                    .role(config.glue_role())
                    .command(command)
                    .glue_version("5.0")
                    .set_default_arguments(Some(arguments))
                    .send()
                    .await
                    .map_err(aws("glue:CreateJob"))?;
            }
        }
        Some(job) => {
            let mut differs = Vec::new();
            if job.command().and_then(|c| c.script_location()) != Some(script_location.as_str()) {
                differs.push("script location".to_string());
            }
            if job.glue_version() != Some("5.0") {
                differs.push("glue version".into());
            }
            if job.role() != Some(config.glue_role().as_str()) {
                differs.push("role".into());
            }
            let have: BTreeMap<String, String> = job
                .default_arguments()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let want: BTreeMap<String, String> = arguments.clone().into_iter().collect();
            if have != want {
                differs.push("arguments".into());
            }
            if !differs.is_empty() {
                steps.push(Step {
                    resource: format!("glue job {job_name}"),
                    action: Action::Update(differs),
                });
                if apply {
                    let update = JobUpdate::builder()
                        .role(config.glue_role())
                        .command(command)
                        .glue_version("5.0")
                        .set_default_arguments(Some(arguments))
                        .build();
                    clients
                        .glue
                        .update_job()
                        .job_name(&job_name)
                        .job_update(update)
                        .send()
                        .await
                        .map_err(aws("glue:UpdateJob"))?;
                }
            }
        }
    }

    // API Gateway: REST API, model, validator, resource, method, integration, deployment.
    let rest_api_id = api_gateway(clients, config, desired, apply, &mut steps).await?;
    // The front door: an HTTP API whose JWT authorizer checks the token (REST APIs have no JWT
    // authorizer type) and forwards to the REST API, which validates the body and puts the
    // record on the stream.
    if let Some(rest_api_id) = rest_api_id {
        jwt_edge(clients, config, desired, &rest_api_id, apply, &mut steps).await?;
    }
    Ok(steps)
}

async fn api_gateway(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
    apply: bool,
    steps: &mut Vec<Step>,
) -> Result<Option<String>, DeployError> {
    let api = &clients.apigateway;
    let name = desired.api(config);
    let apis = api
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetRestApis"))?;
    let existing = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name.as_str()))
        .and_then(|a| a.id().map(str::to_string));
    let api_id = match existing {
        Some(id) => id,
        None => {
            steps.push(Step {
                resource: format!("api gateway rest api {name}"),
                action: Action::Create,
            });
            if !apply {
                // Everything below would be created with it.
                steps.push(Step {
                    resource: format!(
                        "api gateway model, validator, route and integration of {name}"
                    ),
                    action: Action::Create,
                });
                steps.push(Step {
                    resource: format!(
                        "api gateway http api {name}-edge with its JWT authorizer and route"
                    ),
                    action: Action::Create,
                });
                return Ok(None);
            }
            let created = api
                .create_rest_api()
                .name(&name)
                .description(format!("contractc: {}", desired.contract.name()))
                .send()
                .await
                .map_err(aws("apigateway:CreateRestApi"))?;
            created.id().unwrap_or_default().to_string()
        }
    };
    let mut changed = false;

    let model_name = desired.model_name();
    let models = api
        .get_models()
        .rest_api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigateway:GetModels"))?;
    let current_model = models
        .items()
        .iter()
        .find(|m| m.name() == Some(model_name.as_str()))
        .and_then(|m| m.schema().map(str::to_string));
    let same_model = current_model
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        == Some(desired.model_json());
    if !same_model {
        changed = true;
        let action = if current_model.is_some() {
            Action::Update(vec!["model schema".into()])
        } else {
            Action::Create
        };
        let update = action != Action::Create;
        steps.push(Step {
            resource: format!("api gateway model {model_name}"),
            action,
        });
        if apply {
            if update {
                api.delete_model()
                    .rest_api_id(&api_id)
                    .model_name(&model_name)
                    .send()
                    .await
                    .map_err(aws("apigateway:DeleteModel"))?;
            }
            api.create_model()
                .rest_api_id(&api_id)
                .name(&model_name)
                .content_type("application/json")
                .schema(&desired.model)
                .send()
                .await
                .map_err(aws("apigateway:CreateModel"))?;
        }
    }

    let validators = api
        .get_request_validators()
        .rest_api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigateway:GetRequestValidators"))?;
    let mut validator_id = validators
        .items()
        .iter()
        .find(|v| v.name() == Some("body-only"))
        .and_then(|v| v.id().map(str::to_string));
    if validator_id.is_none() {
        changed = true;
        steps.push(Step {
            resource: format!("api gateway request validator {name}/body-only"),
            action: Action::Create,
        });
        if apply {
            let created = api
                .create_request_validator()
                .rest_api_id(&api_id)
                .name("body-only")
                .validate_request_body(true)
                .validate_request_parameters(false)
                .send()
                .await
                .map_err(aws("apigateway:CreateRequestValidator"))?;
            validator_id = created.id().map(str::to_string);
        }
    }

    let (stage, path) = resource_path(desired.contract.route());
    let resources = api
        .get_resources()
        .rest_api_id(&api_id)
        .limit(500)
        .send()
        .await
        .map_err(aws("apigateway:GetResources"))?;
    let mut by_path: HashMap<String, String> = resources
        .items()
        .iter()
        .filter_map(|r| Some((r.path()?.to_string(), r.id()?.to_string())))
        .collect();
    let mut parent = by_path.get("/").cloned().unwrap_or_default();
    let mut walked = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        walked = format!("{walked}/{segment}");
        match by_path.get(&walked) {
            Some(id) => parent = id.clone(),
            None => {
                changed = true;
                steps.push(Step {
                    resource: format!("api gateway resource {name}{walked}"),
                    action: Action::Create,
                });
                if !apply {
                    return Ok(Some(api_id));
                }
                let created = api
                    .create_resource()
                    .rest_api_id(&api_id)
                    .parent_id(&parent)
                    .path_part(segment)
                    .send()
                    .await
                    .map_err(aws("apigateway:CreateResource"))?;
                parent = created.id().unwrap_or_default().to_string();
                by_path.insert(walked.clone(), parent.clone());
            }
        }
    }
    let resource_id = parent;

    let method = api
        .get_method()
        .rest_api_id(&api_id)
        .resource_id(&resource_id)
        .http_method("POST")
        .send()
        .await
        .ok();
    let method_ok = method.as_ref().is_some_and(|m| {
        m.request_models()
            .and_then(|r| r.get("application/json"))
            .map(String::as_str)
            == Some(model_name.as_str())
            && m.request_validator_id() == validator_id.as_deref()
    });
    if !method_ok {
        changed = true;
        let action = if method.is_some() {
            Action::Update(vec!["method model or validator".into()])
        } else {
            Action::Create
        };
        steps.push(Step {
            resource: format!("api gateway method POST {name}{path}"),
            action,
        });
        if apply {
            if method.is_some() {
                api.delete_method()
                    .rest_api_id(&api_id)
                    .resource_id(&resource_id)
                    .http_method("POST")
                    .send()
                    .await
                    .map_err(aws("apigateway:DeleteMethod"))?;
            }
            api.put_method()
                .rest_api_id(&api_id)
                .resource_id(&resource_id)
                .http_method("POST")
                // The JWT is checked by the authorizer configured from openapi.json (API Gateway
                // HTTP APIs) or a Lambda authorizer; the REST method itself takes the token header.
                .authorization_type("NONE")
                .set_request_validator_id(validator_id.clone())
                .request_models("application/json", &model_name)
                .send()
                .await
                .map_err(aws("apigateway:PutMethod"))?;
        }
    }

    let template = desired
        .request_template()
        .replace("${stream_name}", &desired.stream(config));
    let uri = format!(
        "arn:aws:apigateway:{}:kinesis:action/PutRecord",
        config.region
    );
    // An integration without a URI is no integration (a fresh method answers with an empty one).
    let integration = api
        .get_integration()
        .rest_api_id(&api_id)
        .resource_id(&resource_id)
        .http_method("POST")
        .send()
        .await
        .ok()
        .filter(|i| i.uri().is_some_and(|u| !u.is_empty()));
    let integration_ok = integration.as_ref().is_some_and(|i| {
        i.uri() == Some(uri.as_str())
            && i.request_templates()
                .and_then(|t| t.get("application/json"))
                == Some(&template)
    });
    if !integration_ok {
        changed = true;
        let action = if integration.is_some() {
            Action::Update(vec!["integration".into()])
        } else {
            Action::Create
        };
        steps.push(Step {
            resource: format!("api gateway kinesis integration {name}{path}"),
            action,
        });
        if apply {
            api.put_integration()
                .rest_api_id(&api_id)
                .resource_id(&resource_id)
                .http_method("POST")
                .r#type(IntegrationType::Aws)
                .integration_http_method("POST")
                .uri(&uri)
                .credentials(config.api_role())
                .request_templates("application/json", &template)
                .send()
                .await
                .map_err(aws("apigateway:PutIntegration"))?;
        }
    }

    let deployments = api
        .get_deployments()
        .rest_api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigateway:GetDeployments"))?;
    if changed || deployments.items().is_empty() {
        steps.push(Step {
            resource: format!("api gateway deployment {name} stage {stage}"),
            action: Action::Create,
        });
        if apply {
            api.create_deployment()
                .rest_api_id(&api_id)
                .stage_name(&stage)
                .send()
                .await
                .map_err(aws("apigateway:CreateDeployment"))?;
        }
    }
    Ok(Some(api_id))
}

async fn jwt_edge(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
    rest_api_id: &str,
    apply: bool,
    steps: &mut Vec<Step>,
) -> Result<(), DeployError> {
    use aws_sdk_apigatewayv2::types::{
        AuthorizationType, AuthorizerType, IntegrationType as HttpIntegration, JwtConfiguration,
        ProtocolType,
    };
    let v2 = &clients.apigatewayv2;
    let auth = desired.contract.auth();
    let name = format!("{}-edge", desired.api(config));
    let Some(issuer) = auth
        .issuer
        .map(str::to_string)
        .or_else(|| config.dev_issuer.clone())
    else {
        println!(
            "note: {name}: no JWT authorizer planned: the contract trusts the dev identity provider; pass --issuer-url"
        );
        return Ok(());
    };
    let apis = v2
        .get_apis()
        .send()
        .await
        .map_err(aws("apigatewayv2:GetApis"))?;
    let api_id = match apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name.as_str()))
        .and_then(|a| a.api_id().map(str::to_string))
    {
        Some(id) => id,
        None => {
            steps.push(Step {
                resource: format!("api gateway http api {name}"),
                action: Action::Create,
            });
            if !apply {
                steps.push(Step {
                    resource: format!("api gateway JWT authorizer, route and stage of {name}"),
                    action: Action::Create,
                });
                return Ok(());
            }
            let created = v2
                .create_api()
                .name(&name)
                .protocol_type(ProtocolType::Http)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateApi"))?;
            created.api_id().unwrap_or_default().to_string()
        }
    };
    let audience = vec![auth.audience.to_string()];
    // The authorizer is found through the route that uses it (listing authorizers is a call
    // some emulators lack).
    let route_key = format!("POST {}", desired.contract.route());
    let routes = v2
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetRoutes"))?;
    let route = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some(route_key.as_str()))
        .cloned();
    let current = match route.as_ref().and_then(|r| r.authorizer_id()) {
        Some(id) => v2
            .get_authorizer()
            .api_id(&api_id)
            .authorizer_id(id)
            .send()
            .await
            .ok(),
        None => None,
    };
    let matches = current.as_ref().is_some_and(|a| {
        a.jwt_configuration().is_some_and(|j| {
            j.issuer() == Some(issuer.as_str()) && j.audience() == audience.as_slice()
        })
    });
    let mut authorizer_id = current
        .as_ref()
        .and_then(|a| a.authorizer_id().map(str::to_string));
    if !matches {
        let action = if current.is_some() {
            Action::Update(vec!["issuer or audience".into()])
        } else {
            Action::Create
        };
        steps.push(Step {
            resource: format!("api gateway JWT authorizer {name}/jwt ({issuer})"),
            action,
        });
        if apply {
            let jwt = JwtConfiguration::builder()
                .issuer(&issuer)
                .set_audience(Some(audience.clone()))
                .build();
            if let Some(id) = &authorizer_id {
                v2.delete_authorizer()
                    .api_id(&api_id)
                    .authorizer_id(id)
                    .send()
                    .await
                    .map_err(aws("apigatewayv2:DeleteAuthorizer"))?;
            }
            let created = v2
                .create_authorizer()
                .api_id(&api_id)
                .name("jwt")
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source("$request.header.Authorization")
                .jwt_configuration(jwt)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateAuthorizer"))?;
            authorizer_id = created.authorizer_id().map(str::to_string);
        }
    }
    let (stage, path) = resource_path(desired.contract.route());
    let target = format!(
        "https://{rest_api_id}.execute-api.{}.amazonaws.com/{stage}{path}",
        config.region
    );
    let integrations = v2
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetIntegrations"))?;
    let mut integration_id = integrations
        .items()
        .iter()
        .find(|i| i.integration_uri() == Some(target.as_str()))
        .and_then(|i| i.integration_id().map(str::to_string));
    if integration_id.is_none() {
        steps.push(Step {
            resource: format!("api gateway http api {name} integration → {target}"),
            action: Action::Create,
        });
        if apply {
            let created = v2
                .create_integration()
                .api_id(&api_id)
                .integration_type(HttpIntegration::HttpProxy)
                .integration_method("POST")
                .integration_uri(&target)
                .payload_format_version("1.0")
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateIntegration"))?;
            integration_id = created.integration_id().map(str::to_string);
        }
    }
    let scopes: Vec<String> = auth.scopes.iter().map(|s| s.to_string()).collect();
    let wanted_target = integration_id.as_ref().map(|i| format!("integrations/{i}"));
    let route_ok = route.as_ref().is_some_and(|r| {
        r.authorization_type() == Some(&AuthorizationType::Jwt)
            && r.authorizer_id() == authorizer_id.as_deref()
            && r.authorization_scopes() == scopes.as_slice()
            && r.target() == wanted_target.as_deref()
    });
    if !route_ok {
        let action = if route.is_some() {
            Action::Update(vec!["authorizer, scopes or target".into()])
        } else {
            Action::Create
        };
        steps.push(Step {
            resource: format!(
                "api gateway http api {name} route {route_key} (JWT, scopes {scopes:?})"
            ),
            action,
        });
        if apply {
            if let Some(id) = route.as_ref().and_then(|r| r.route_id()) {
                v2.delete_route()
                    .api_id(&api_id)
                    .route_id(id)
                    .send()
                    .await
                    .map_err(aws("apigatewayv2:DeleteRoute"))?;
            }
            v2.create_route()
                .api_id(&api_id)
                .route_key(&route_key)
                .authorization_type(AuthorizationType::Jwt)
                .set_authorizer_id(authorizer_id.clone())
                .set_authorization_scopes(Some(scopes))
                .set_target(wanted_target)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateRoute"))?;
        }
    }
    let stages = v2
        .get_stages()
        .api_id(&api_id)
        .send()
        .await
        .map_err(aws("apigatewayv2:GetStages"))?;
    if !stages
        .items()
        .iter()
        .any(|s| s.stage_name() == Some("$default"))
    {
        steps.push(Step {
            resource: format!("api gateway http api {name} stage $default (auto-deploy)"),
            action: Action::Create,
        });
        if apply {
            v2.create_stage()
                .api_id(&api_id)
                .stage_name("$default")
                .auto_deploy(true)
                .send()
                .await
                .map_err(aws("apigatewayv2:CreateStage"))?;
        }
    }
    Ok(())
}

/// Starts the contract's Glue job; returns the run id.
pub async fn start_job(
    clients: &Clients,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<String, DeployError> {
    let run = clients
        .glue
        .start_job_run()
        .job_name(desired.job(config))
        .send()
        .await
        .map_err(aws("glue:StartJobRun"))?;
    Ok(run.job_run_id().unwrap_or_default().to_string())
}

/// One line per resource and the last job run.
pub async fn status(clients: &Clients, config: &DeployConfig, desired: &Desired) -> Vec<String> {
    let mut lines = Vec::new();
    let present = |ok: bool| if ok { "present" } else { "missing" };
    let bucket = config.bucket();
    lines.push(format!(
        "s3 bucket {bucket}: {}",
        present(
            clients
                .s3
                .head_bucket()
                .bucket(&bucket)
                .send()
                .await
                .is_ok()
        )
    ));
    let stream = desired.stream(config);
    let stream_status = clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .ok()
        .and_then(|s| {
            s.stream_description_summary
                .map(|d| d.stream_status.as_str().to_string())
        });
    lines.push(format!(
        "kinesis stream {stream}: {}",
        stream_status.unwrap_or_else(|| "missing".into())
    ));
    for table in [
        desired.contract.events_table().to_string(),
        desired.contract.quarantine_table().to_string(),
    ] {
        let ok = clients
            .glue
            .get_table()
            .database_name(desired.contract.database())
            .name(&table)
            .send()
            .await
            .is_ok();
        lines.push(format!(
            "glue table {}.{table}: {}",
            desired.contract.database(),
            present(ok)
        ));
    }
    let job = desired.job(config);
    let last_run = clients
        .glue
        .get_job_runs()
        .job_name(&job)
        .max_results(1)
        .send()
        .await
        .ok()
        .and_then(|r| {
            r.job_runs().first().map(|run| {
                format!(
                    "{} {}",
                    run.id().unwrap_or_default(),
                    run.job_run_state().map(|s| s.as_str()).unwrap_or("?")
                )
            })
        });
    lines.push(format!(
        "glue job {job}: last run {}",
        last_run.unwrap_or_else(|| "none".into())
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn glue_types() {
        assert_eq!(glue_type(&serde_json::json!("long")), "bigint");
        assert_eq!(
            glue_type(&serde_json::json!("decimal(12, 2)")),
            "decimal(12,2)"
        );
        assert_eq!(
            glue_type(&serde_json::json!({"type": "list", "element": "string"})),
            "array<string>"
        );
    }
}
