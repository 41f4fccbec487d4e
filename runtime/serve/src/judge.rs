use axum::http::HeaderMap;
use contract_support::json::Parser;
use contract_support::manifest::Manifest;
use contract_support::{
    AnyContract, Code, Context, Enrichment, EventBuffer, Policy, Verdict, Violation,
};

/// Who sent an event, as far as enrichment needs: the token's subject and the other claims the
/// contract enriches from. Logged with the event, so a replay enriches it the same way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub(crate) subject: Option<String>,
    pub(crate) claims: Vec<(String, String)>,
    /// The contract version the client was generated from (`X-Contract-Version`).
    pub(crate) client_version: Option<String>,
}

/// The log records the client's contract version among the claims under this name, which no
/// JWT claim can have (claim names are identifiers).
pub(crate) const CLIENT_VERSION_KEY: &str = "contractc.client_contract_version";

impl Caller {
    pub(crate) fn of(
        claims: &crate::identity::Claims,
        manifest: &Manifest,
        headers: &HeaderMap,
    ) -> Caller {
        let wanted = manifest.enrichment_claims();
        Caller {
            subject: Some(claims.sub.clone()),
            claims: claims
                .extra
                .iter()
                .filter(|(name, _)| name.as_str() != "sub" && wanted.contains(&name.as_str()))
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
                .collect(),
            client_version: client_version(headers),
        }
    }

    /// The claims as the log keeps them (the client's version included).
    pub(crate) fn logged_claims(&self) -> Vec<(String, String)> {
        let mut claims = self.claims.clone();
        if let Some(version) = &self.client_version {
            claims.push((CLIENT_VERSION_KEY.to_string(), version.clone()));
        }
        claims
    }
}

/// The client's `X-Contract-Version`: a short printable value, else none.
pub(crate) fn client_version(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-contract-version")?.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic()))
        .then(|| value.to_string())
}

/// The verdict on one event: `too_large` past the contract's limit (inside a batch; a single
/// event that large is refused before it is read), else the validator's.
pub(crate) fn validate(
    buffer: Option<&mut Box<dyn EventBuffer>>,
    spec: &dyn AnyContract,
    parser: &mut Parser,
    body: &[u8],
    ctx: &Context,
    enrichment: &Enrichment<'_>,
) -> (Verdict, Vec<Violation>) {
    let limit = max_body_bytes(spec.manifest());
    if body.len() > limit {
        return (
            Verdict::Reject,
            vec![Violation {
                code: Code::TooLarge,
                path: "$".into(),
                policy: Policy::Reject,
                message: format!(
                    "the event has {} bytes; the limit is {limit} (the quarantine table keeps \
                     its first {} bytes)",
                    body.len(),
                    crate::quarantine::OVERSIZED_KEPT_BYTES
                ),
            }],
        );
    }
    match buffer {
        Some(buffer) => buffer.validate_into(parser, body, ctx, enrichment),
        None => spec.judge(parser, body, ctx),
    }
}

pub(crate) fn max_body_bytes(manifest: &Manifest) -> usize {
    usize::try_from(manifest.ingest.max_body_bytes).unwrap_or(usize::MAX)
}
