use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::cors::CorsPolicy;

use super::identity_routes::{jwks, login_as_guest, openid_configuration, refresh_access_token};
use super::ingest::{ingest_batch, ingest_one};
use super::state::AppState;

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) fn router(state: Arc<AppState>, cors: CorsPolicy) -> Router {
    let mut router = Router::new()
        .route("/prod/login-as-guest", get(login_as_guest))
        .route("/prod/refresh-access-token", get(refresh_access_token))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics));
    // Bodies are read by the handlers themselves, after authentication, within the
    // contract's limit: axum's default limit would read them first.
    for (index, contract) in state.contracts.iter().enumerate() {
        let single = move |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body| {
            ingest_one(state, index, headers, body)
        };
        router = router.route(contract.manifest.ingest.route.as_str(), post(single));
        if let Some(batch_route) = contract.manifest.ingest.batch_route.as_deref() {
            let batch =
                move |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body| {
                    ingest_batch(state, index, headers, body)
                };
            router = router.route(batch_route, post(batch));
        }
    }
    let console = crate::console::router(state.console.clone());
    // Erasure asks for the console's token (and nothing else answers it from another origin).
    let admin = Router::new()
        .route("/admin/forget", post(super::erasure::forget_route))
        .route_layer(axum::middleware::from_fn_with_state(
            state.console.access(),
            crate::console::access::guard,
        ))
        .with_state(state.clone());
    router
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(cors),
            crate::cors::layer,
        ))
        // After the CORS layer, so no console answer is readable from another origin.
        .merge(console)
        .merge(admin)
}
