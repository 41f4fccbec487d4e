//! `contract-edge` (`bootstrap` in the function's zip): the edge function, for the Lambda
//! runtime `provided.al2023`.
//!
//! Environment: `CONTRACTC_CONTRACT` (the contract this function judges), `CONTRACTC_STREAM`
//! (the Kinesis stream it puts events on); `AWS_REGION` and the role's credentials, which
//! Lambda sets; `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_KINESIS`) for an emulator.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use contract_edge::stream::Kinesis;
use contract_edge::{Edge, lambda};
use contract_judge::door::Answer;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .without_time()
        .init();
    let edge = Arc::new(edge_from_env().await?);
    lambda_runtime::run(service_fn(move |event| {
        let edge = edge.clone();
        async move { handle(&edge, event).await }
    }))
    .await
}

/// The function's door, made once per execution environment (its cold start).
async fn edge_from_env() -> Result<Edge<Kinesis>, Error> {
    let name = std::env::var("CONTRACTC_CONTRACT")
        .map_err(|_| "CONTRACTC_CONTRACT is not set: name the contract this function judges")?;
    let spec = contract_validators::ALL
        .iter()
        .copied()
        .find(|spec| spec.manifest().name == name)
        .ok_or_else(|| {
            format!(
                "CONTRACTC_CONTRACT={name} is not a contract of this build ({})",
                contract_validators::CONTRACTS.join(", ")
            )
        })?;
    let stream = std::env::var("CONTRACTC_STREAM")
        .map_err(|_| "CONTRACTC_STREAM is not set: name the Kinesis stream to put events on")?;
    Ok(Edge::new(spec, Kinesis::new(kinesis_from_env()?, stream)))
}

/// The Kinesis client of the function's environment: Lambda sets the region and the role's
/// credentials as variables, so the SDK's whole credential chain (profiles, SSO, STS, the
/// instance metadata service), which a cold start would load and probe, is left out.
fn kinesis_from_env() -> Result<aws_sdk_kinesis::Client, Error> {
    use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or("AWS_REGION is not set")?;
    let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them \
                    from the function's role)"
                .into(),
        );
    };
    let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment");
    let mut config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials);
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_KINESIS").or_else(|| var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    Ok(aws_sdk_kinesis::Client::from_conf(config.build()))
}

async fn handle(
    edge: &Edge<Kinesis>,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let received_at_ms = now_ms();
    let manifest = edge.spec().manifest();
    let Some(body) = lambda::body(&event.payload) else {
        return Ok(lambda::response(Answer::message(
            400,
            "the body is not valid base64",
        )));
    };
    let Some(route) = lambda::route(&event.payload, manifest) else {
        // API Gateway's own answer to a route it does not have.
        return Ok(lambda::response(Answer::message(404, "Not Found")));
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    let request = lambda::request(&event.payload, route, &body, received_at_ms, request_id);
    Ok(lambda::response(edge.answer(&request).await))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
