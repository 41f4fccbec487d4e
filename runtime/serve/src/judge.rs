//! The judge as `serve` uses it: the shared one (`contract_judge`, which the AWS door links
//! too), and the caller read from a verified token and the request's headers.

use axum::http::HeaderMap;
use contract_support::manifest::Manifest;

pub(crate) use contract_judge::{CLIENT_VERSION_KEY, Caller, max_body_bytes, validate};

/// The caller of a request: the token's subject and claims, and its `X-Contract-Version`.
pub(crate) fn caller_of(
    claims: &crate::identity::Claims,
    manifest: &Manifest,
    headers: &HeaderMap,
) -> Caller {
    let version = headers
        .get("x-contract-version")
        .and_then(|v| v.to_str().ok());
    Caller::new(
        &claims.sub,
        claims
            .extra
            .iter()
            .map(|(name, value)| (name.as_str(), value)),
        manifest,
        version,
    )
}
