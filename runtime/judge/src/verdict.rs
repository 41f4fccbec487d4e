//! The verdict on one event.

use contract_support::json::Parser;
use contract_support::manifest::{Judging, Manifest, Release, Versions};
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
    let manifest = spec.manifest();
    let Some(versions) = &manifest.versions else {
        return current(buffer, spec, parser, body, ctx, enrichment);
    };
    let declared = enrichment.client_contract_version;
    match versions.judging(&manifest.version, declared) {
        Judging::Current => current(buffer, spec, parser, body, ctx, enrichment),
        Judging::Release(_, release) => {
            match spec
                .releases()
                .iter()
                .find(|r| r.manifest().version == release.version)
            {
                Some(validator) => judge_release(
                    *validator, release, buffer, spec, parser, body, ctx, enrichment,
                ),
                None => unknown_version(manifest, versions, declared),
            }
        }
        Judging::Retired(version) => refused(
            Code::RetiredVersion,
            Policy::Quarantine,
            format!(
                "contract version {version} is retired (X-Contract-Version); the event is kept \
                 in quarantine: update the client to one of {}",
                versions.supported(&manifest.version).join(", ")
            ),
        ),
        Judging::Unknown => unknown_version(manifest, versions, declared),
    }
}

/// An event of a supported release: judged by the release's validator; when that accepts it,
/// the current version judges (and buffers) what the migration makes of it, so every stored row
/// holds the table's rules. The violations of both judgements are kept.
#[allow(clippy::too_many_arguments)]
fn judge_release(
    validator: &dyn AnyContract,
    release: &Release,
    buffer: Option<&mut Box<dyn EventBuffer>>,
    spec: &dyn AnyContract,
    parser: &mut Parser,
    body: &[u8],
    ctx: &Context,
    enrichment: &Enrichment<'_>,
) -> (Verdict, Vec<Violation>) {
    let (verdict, mut violations) = validator.judge(parser, body, ctx);
    if verdict != Verdict::Accept {
        return (verdict, violations);
    }
    match crate::upcast::upcast(body, &release.upcast) {
        Ok(upcast) => {
            let (verdict, more) = current(buffer, spec, parser, &upcast, ctx, enrichment);
            violations.extend(more);
            (verdict, violations)
        }
        Err(error) => {
            violations.push(Violation {
                code: Code::OutOfRange,
                path: "$".into(),
                policy: Policy::Reject,
                message: format!(
                    "the event could not be upcast to {}: {}",
                    spec.manifest().version,
                    error.0
                ),
            });
            (Verdict::Reject, violations)
        }
    }
}

/// The client version an event is judged as and recorded with (the `client_contract_version`
/// enrichment): the one it declares, else the contract's default for clients that declare none
/// (None for a contract without a release history, which judges every event as current).
pub fn client_version<'a>(manifest: &'a Manifest, declared: Option<&'a str>) -> Option<&'a str> {
    declared.or(manifest
        .versions
        .as_ref()
        .map(|v| v.default_client.as_str()))
}

/// Judged by the current version's validator (buffered when accepted, given a buffer).
fn current(
    buffer: Option<&mut Box<dyn EventBuffer>>,
    spec: &dyn AnyContract,
    parser: &mut Parser,
    body: &[u8],
    ctx: &Context,
    enrichment: &Enrichment<'_>,
) -> (Verdict, Vec<Violation>) {
    match buffer {
        Some(buffer) => buffer.validate_into(parser, body, ctx, enrichment),
        None => spec.judge(parser, body, ctx),
    }
}

fn refused(code: Code, policy: Policy, message: String) -> (Verdict, Vec<Violation>) {
    let verdict = match policy {
        Policy::Reject => Verdict::Reject,
        Policy::Quarantine => Verdict::Quarantine,
        Policy::Warn => Verdict::Accept,
    };
    (
        verdict,
        vec![Violation {
            code,
            path: "$".into(),
            policy,
            message,
        }],
    )
}

fn unknown_version(
    manifest: &Manifest,
    versions: &Versions,
    declared: Option<&str>,
) -> (Verdict, Vec<Violation>) {
    let declared: String = declared
        .unwrap_or(&versions.default_client)
        .chars()
        .take(64)
        .collect();
    refused(
        Code::UnknownVersion,
        Policy::Reject,
        format!(
            "contract version \"{declared}\" (X-Contract-Version) is not a version of {}: supported are {}",
            manifest.name,
            versions.supported(&manifest.version).join(", ")
        ),
    )
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
