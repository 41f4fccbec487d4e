//! Cross-origin requests, for games and tools running in browsers.
//!
//! - A request with an `Origin` the operator listed (`--cors-origin`) is answered with that
//!   origin, `Vary: Origin` and `Access-Control-Allow-Credentials: true`.
//! - Any other `Origin` gets `Access-Control-Allow-Origin: *` and no credentials: tokens travel
//!   in the `Authorization` header, never in cookies, so a page cannot borrow a player's session.
//! - A request without `Origin` (not a browser) gets the reference API's headers (`*` and
//!   `Allow-Credentials: true`), which its clients expect and browsers never see together.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here with 204,
//!   the methods and the headers clients send (`Authorization`, `Content-Type`,
//!   `X-Contract-Version`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins allowed to send credentials.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    pub allowed_origins: Vec<String>,
}

const ALLOWED_HEADERS: &str = "Authorization, Content-Type, X-Contract-Version";
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

impl CorsPolicy {
    fn headers_for(&self, origin: Option<&HeaderValue>) -> Vec<(header::HeaderName, HeaderValue)> {
        match origin {
            Some(origin)
                if self
                    .allowed_origins
                    .iter()
                    .any(|o| o.as_bytes() == origin.as_bytes()) =>
            {
                vec![
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
                    (
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    ),
                    (header::VARY, HeaderValue::from_static("Origin")),
                ]
            }
            Some(_) => vec![
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
                (header::VARY, HeaderValue::from_static("Origin")),
            ],
            None => vec![
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                ),
            ],
        }
    }
}

fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Middleware: answers preflights and adds the CORS headers to every response.
pub async fn layer(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if is_preflight(request.method(), request.headers()) {
        let mut response = (StatusCode::NO_CONTENT, Body::empty()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    for (name, value) in policy.headers_for(origin.as_ref()) {
        response.headers_mut().insert(name, value);
    }
    response
}
