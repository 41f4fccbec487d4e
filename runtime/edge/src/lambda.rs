//! The Lambda side: API Gateway's HTTP API request (payload format 2.0) to a [`Request`], and
//! an [`Answer`] back to its response. The JWT authorizer in front has verified the token; its
//! claims arrive in the request context, which a client cannot write.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contract_judge::door::Answer;
use contract_support::manifest::Manifest;

use crate::{Request, Route};

/// A Lambda event's body as bytes (API Gateway base64-encodes bodies that are not text);
/// `None` when its base64 is broken, which API Gateway never sends.
pub fn body(event: &ApiGatewayV2httpRequest) -> Option<Vec<u8>> {
    match event.body.as_deref() {
        None => Some(Vec::new()),
        Some(text) if event.is_base64_encoded => STANDARD.decode(text).ok(),
        Some(text) => Some(text.as_bytes().to_vec()),
    }
}

/// Which route of the contract the event came by, from the route API Gateway matched
/// (`POST /prod/put-records`), whatever path (custom domain, stage) the client used; `None`
/// for a route the contract does not have.
pub fn route(event: &ApiGatewayV2httpRequest, manifest: &Manifest) -> Option<Route> {
    let key = event
        .route_key
        .as_deref()
        .or(event.request_context.route_key.as_deref())?;
    let path = key.strip_prefix("POST ")?;
    if path == manifest.ingest.route {
        Some(Route::Single)
    } else if manifest.ingest.batch_route.as_deref() == Some(path) {
        Some(Route::Batch)
    } else {
        None
    }
}

/// The request the edge judges, read from the event.
pub fn request<'a>(
    event: &'a ApiGatewayV2httpRequest,
    route: Route,
    body: &'a [u8],
    received_at_ms: i64,
    request_id: String,
) -> Request<'a> {
    let claims = event
        .request_context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .map(|jwt| {
            let mut claims: Vec<(String, String)> = jwt
                .claims
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            claims.sort();
            claims
        });
    Request {
        route,
        content_type: header_text(&event.headers, header::CONTENT_TYPE.as_str()),
        client_version: header_text(&event.headers, "x-contract-version"),
        claims,
        body,
        received_at_ms,
        request_id,
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap_or_default())
}

/// The answer as API Gateway's response: JSON text, never base64.
pub fn response(answer: Answer) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(answer.status);
    response.headers = headers;
    response.body = Some(Body::Text(answer.body));
    response.is_base64_encoded = false;
    response
}
