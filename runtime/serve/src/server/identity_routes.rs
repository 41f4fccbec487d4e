use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::DefaultKeyedRateLimiter;

use crate::identity::{LoginError, RefreshError};

use super::ingest::message;
use super::state::AppState;

pub(crate) async fn login_as_guest(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let scope = match query.get("scope").map(String::as_str) {
        None | Some("guest") => "guest",
        // Development only, asked for at start (loopback), and only for requests straight
        // from this machine: behind a proxy on the same host everyone arrives from loopback,
        // and anyone could mint what only a real identity provider should grant.
        Some("authenticated")
            if state.dev_mint_scopes && crate::local::is_direct_local(peer, &headers) =>
        {
            "authenticated"
        }
        Some("authenticated") => {
            return message(
                StatusCode::FORBIDDEN,
                "guests get the guest scope; minting `authenticated` is a development switch \
                 (serve --dev-mint-scopes) for requests straight from this machine, never \
                 relayed ones",
            );
        }
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "scope must be guest or authenticated",
            )
                .into_response();
        }
    };
    // A login costs two RSA signatures, a new guest a record too: a client may make only so
    // many. New guests and returning ones have their own quota, so a flood of new guests does
    // not lock out the players an address has.
    let limited = if query.contains_key("user_id") {
        renewal_limited(&state, peer.ip())
    } else {
        limited_by(
            &state,
            state.guest_logins.as_ref(),
            peer.ip(),
            "guest_login",
            "too many new guests from this address; log in as the guest you have (user_id and guest_secret)",
        )
    };
    if let Some(response) = limited {
        return response;
    }
    match state.dev.login_as_guest(
        query.get("user_id").map(String::as_str),
        query.get("guest_secret").map(String::as_str),
        scope,
    ) {
        Ok(login) => axum::Json(login).into_response(),
        Err(LoginError::MissingSecret) => {
            (StatusCode::BAD_REQUEST, "Missing guest_secret").into_response()
        }
        Err(LoginError::WrongSecret) => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
    }
}

pub(crate) async fn refresh_access_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = renewal_limited(&state, peer.ip()) {
        return response;
    }
    let Some(token) = query.get("refresh_token") else {
        return (StatusCode::UNAUTHORIZED, "Missing refresh_token").into_response();
    };
    // A refresh grants no scope a login would not grant this request now (see
    // login_as_guest): a token minted under --dev-mint-scopes buys nothing once serve runs
    // without it, nor when relayed.
    let mintable: &[&str] =
        if state.dev_mint_scopes && crate::local::is_direct_local(peer, &headers) {
            &["guest", "authenticated"]
        } else {
            &["guest"]
        };
    match state.dev.refresh(token, mintable) {
        Ok(refreshed) => axum::Json(refreshed).into_response(),
        Err(RefreshError::ScopeNotMinted(scope)) => message(
            StatusCode::FORBIDDEN,
            format!(
                "this refresh token buys the `{scope}` scope, which this server does not mint \
                 now (a development switch, serve --dev-mint-scopes, for requests straight \
                 from this machine); log in again"
            ),
        ),
        Err(RefreshError::Invalid | RefreshError::Revoked) => {
            (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
        }
    }
}

/// A 429 when `ip` has made too many refreshes and returning-guest logins.
pub(crate) fn renewal_limited(state: &AppState, ip: IpAddr) -> Option<Response> {
    limited_by(
        state,
        state.token_renewals.as_ref(),
        ip,
        "token_renewal",
        "too many token refreshes and returning-guest logins from this address",
    )
}

/// A 429, counted under `limit`, with the seconds until the quota allows one more (Retry-After),
/// when `limiter` refuses `ip` one more request; None when it allows it (or there is none).
pub(crate) fn limited_by(
    state: &AppState,
    limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
    ip: IpAddr,
    limit: &str,
    text: &str,
) -> Option<Response> {
    let limiter = limiter?;
    let not_until = limiter.check_key(&ip).err()?;
    let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
    state.metrics.limited.with_label_values(&[limit]).inc();
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, text);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    Some(response)
}

pub(crate) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.dev.jwks()).into_response()
}

pub(crate) async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.dev.openid_configuration()).into_response()
}
