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
        return refused(
            Code::TooLarge,
            Policy::Reject,
            format!(
                "the event has {} bytes; the limit is {limit} (the quarantine table keeps its \
                 first {OVERSIZED_KEPT_BYTES} bytes)",
                body.len(),
            ),
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

/// Refused before (or instead of) the validator, with one violation of the whole event.
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

#[cfg(test)]
mod tests {
    //! The version dispatch on a stand-in history: game_events' validator plays both a "2.0.0"
    //! and its release "1.1.0", whose migration renames the `Login` event type to `Logout`
    //! (so an upcast row is told apart); "1.0.0" is retired.
    use std::sync::LazyLock;

    use contract_support::Contract;
    use contract_support::manifest::{Release, Step, Versions};
    use contract_validators::game_events;

    use super::*;

    fn manifest(version: &str, versions: Option<Versions>) -> Manifest {
        Manifest {
            version: version.into(),
            versions,
            ..(*game_events::MANIFEST).clone()
        }
    }

    static CURRENT: LazyLock<Manifest> = LazyLock::new(|| {
        let release = |version: &str, retired| Release {
            version: version.into(),
            retired,
            upcast: vec![Step::MapValues {
                field: "event_type".into(),
                map: vec![("Login".into(), "Logout".into())],
            }],
        };
        manifest(
            "2.0.0",
            Some(Versions {
                default_client: "1.1.0".into(),
                releases: vec![release("1.0.0", true), release("1.1.0", false)],
            }),
        )
    });
    static RELEASED: LazyLock<Manifest> = LazyLock::new(|| manifest("1.1.0", None));

    /// game_events under another manifest.
    struct Standin(
        &'static LazyLock<Manifest>,
        &'static [&'static dyn AnyContract],
    );

    impl Contract for Standin {
        type Batch = game_events::BatchBuilder;
        fn manifest(&self) -> &'static Manifest {
            self.0
        }
        fn arrow_schema(&self) -> contract_support::arrow_schema::Schema {
            game_events::arrow_schema()
        }
        fn new_batch(&self) -> Self::Batch {
            game_events::BatchBuilder::new()
        }
        fn validate_into(
            &self,
            parser: &mut Parser,
            bytes: &[u8],
            ctx: &Context,
            enrichment: &Enrichment<'_>,
            batch: Option<&mut Self::Batch>,
        ) -> (Verdict, Vec<Violation>) {
            game_events::Spec.validate_into(parser, bytes, ctx, enrichment, batch)
        }
        fn releases(&self) -> &'static [&'static dyn AnyContract] {
            self.1
        }
    }

    static OLD: Standin = Standin(&RELEASED, &[]);
    static NEW: Standin = Standin(&CURRENT, &[&OLD]);

    const LOGIN: &[u8] =
        br#"{"event_id": "1", "event_type": "Login", "updated_at": "2024-02-22 03:03:02"}"#;

    /// The verdict, the codes, and the event type of the row buffered (if any).
    fn judge(body: &[u8], declared: Option<&str>) -> (Verdict, Vec<Code>, Option<String>) {
        let spec: &'static dyn AnyContract = &NEW;
        let mut buffer = spec.event_buffer();
        let ctx = Context {
            ingest_time_micros: 1_708_603_200_000_000,
        };
        let enrichment = Enrichment {
            client_contract_version: declared,
            ..Default::default()
        };
        let (verdict, violations) = validate(
            Some(&mut buffer),
            spec,
            &mut Parser::new(),
            body,
            &ctx,
            &enrichment,
        );
        let rows = buffer.finish();
        let event_type = (rows.num_rows() == 1).then(|| {
            let column = rows
                .column_by_name("event_type")
                .expect("event_type column");
            contract_support::arrow_array::cast::as_string_array(column)
                .value(0)
                .to_string()
        });
        let codes = violations.iter().map(|v| v.code).collect();
        (verdict, codes, event_type)
    }

    #[test]
    fn each_event_is_judged_as_the_version_its_client_declares() {
        let upcast = (Verdict::Accept, vec![], Some("Logout".to_string()));
        assert_eq!(
            judge(LOGIN, Some("1.1.0")),
            upcast,
            "a release: judged, then upcast"
        );
        assert_eq!(judge(LOGIN, None), upcast, "no header: the default version");
        assert_eq!(
            judge(LOGIN, Some("2.0.0")),
            (Verdict::Accept, vec![], Some("Login".to_string())),
            "the current version: as sent"
        );
        assert_eq!(
            judge(LOGIN, Some("1.0.0")),
            (Verdict::Quarantine, vec![Code::RetiredVersion], None)
        );
        assert_eq!(
            judge(LOGIN, Some("3.0.0")),
            (Verdict::Reject, vec![Code::UnknownVersion], None)
        );
        // The release's own refusal is the answer: nothing is upcast or buffered.
        let bad =
            br#"{"event_id": "1", "event_type": "Dance", "updated_at": "2024-02-22 03:03:02"}"#;
        assert_eq!(
            judge(bad, Some("1.1.0")),
            (Verdict::Reject, vec![Code::OneOf], None)
        );
    }

    #[test]
    fn refusals_name_the_versions_and_the_size_limit_comes_first() {
        let spec: &'static dyn AnyContract = &NEW;
        let refuse = |body: &[u8], declared| {
            let enrichment = Enrichment {
                client_contract_version: Some(declared),
                ..Default::default()
            };
            let ctx = Context {
                ingest_time_micros: 0,
            };
            validate(None, spec, &mut Parser::new(), body, &ctx, &enrichment).1
        };
        let unknown = refuse(LOGIN, "9.9.9");
        assert_eq!(
            unknown[0].message,
            "contract version \"9.9.9\" (X-Contract-Version) is not a version of game_events: supported are 1.1.0, 2.0.0"
        );
        assert!(
            refuse(LOGIN, "1.0.0")[0]
                .message
                .contains("1.0.0 is retired")
        );
        let huge = vec![b' '; max_body_bytes(spec.manifest()) + 1];
        assert_eq!(refuse(&huge, "9.9.9")[0].code, Code::TooLarge);
    }
}
