//! The verdict on one event.

use contract_support::json::Parser;
use contract_support::manifest::Manifest;
use contract_support::{
    AnyContract, Code, Context, Enrichment, EventBuffer, Policy, Verdict, Violation,
};

pub use contract_support::manifest::OVERSIZED_KEPT_BYTES;

/// The verdict on one event: `too_large` past the contract's limit (inside a batch; a single
/// event that large is refused before it is read), else the validator's. With a `buffer`, an
/// accepted event is appended to it as it is validated.
pub fn validate(
    buffer: Option<&mut Box<dyn EventBuffer>>,
    spec: &dyn AnyContract,
    parser: &mut Parser,
    body: &[u8],
    ctx: &Context,
    enrichment: &Enrichment<'_>,
) -> (Verdict, Vec<Violation>) {
    let limit = max_body_bytes(spec.manifest());
    validate_within(limit, buffer, spec, parser, body, ctx, enrichment)
}

/// [`validate`] with another size limit than the contract's: the AWS door's
/// (`Manifest::aws_event_limit`), when a Kinesis record carries less.
pub fn validate_within(
    limit: usize,
    buffer: Option<&mut Box<dyn EventBuffer>>,
    spec: &dyn AnyContract,
    parser: &mut Parser,
    body: &[u8],
    ctx: &Context,
    enrichment: &Enrichment<'_>,
) -> (Verdict, Vec<Violation>) {
    if body.len() > limit {
        return (
            Verdict::Reject,
            vec![Violation {
                code: Code::TooLarge,
                path: "$".into(),
                policy: Policy::Reject,
                message: format!(
                    "the event has {} bytes; the limit is {limit} (the quarantine table keeps \
                     its first {OVERSIZED_KEPT_BYTES} bytes)",
                    body.len(),
                ),
            }],
        );
    }
    match buffer {
        Some(buffer) => buffer.validate_into(parser, body, ctx, enrichment),
        None => spec.judge(parser, body, ctx),
    }
}

/// The most one event's body may weigh (the contract's `ingest.max_body_bytes`).
pub fn max_body_bytes(manifest: &Manifest) -> usize {
    usize::try_from(manifest.ingest.max_body_bytes).unwrap_or(usize::MAX)
}

/// The most a batch body may weigh: its events at their limit, within 16 MiB (a batch is held
/// in memory while it is judged).
pub fn max_batch_bytes(manifest: &Manifest) -> usize {
    const CEILING: usize = 16 << 20;
    max_body_bytes(manifest)
        .saturating_mul(usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX))
        .min(CEILING)
}
