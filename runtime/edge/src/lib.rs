//! contract-edge: the AWS door. An AWS Lambda function behind API Gateway's JWT front door
//! that judges every event with the same code as `serve` (`contract_judge`), answers with the
//! same bytes, and puts each event (accepted, quarantined or refused, as `serve` logs it) on the
//! Kinesis stream as the envelope the Glue job reads.
//!
//! - [`Edge::answer`]: one request, judged and stored, answered (no Lambda types);
//! - [`lambda`]: the Lambda runtime's request and response, to and from that;
//! - [`envelope`]: the stream record of one event;
//! - [`stream`]: the Kinesis store, retrying only the records Kinesis failed.

pub mod envelope;
pub mod lambda;
pub mod stream;

use contract_judge::door::{self, Answer, NotStored as Unstored, Refusal};
use contract_judge::{Caller, answer, batch};
use contract_support::json::Parser;
use contract_support::{AnyContract, Code, Context, Enrichment, Verdict, Violation};

use crate::stream::{Record, Store};

/// Which of the contract's routes a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Single,
    Batch,
}

/// One request as the edge judges it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub route: Route,
    pub content_type: Option<&'a str>,
    /// `X-Contract-Version`.
    pub client_version: Option<&'a str>,
    /// The verified token's claims, as API Gateway's JWT authorizer passes them (`None`: the
    /// request did not come through an authorizer).
    pub claims: Option<Vec<(String, String)>>,
    pub body: &'a [u8],
    pub received_at_ms: i64,
    /// The id of the request (of a batch: its events are `{id}-{index}`).
    pub request_id: String,
}

/// The door of one contract.
pub struct Edge<S> {
    spec: &'static dyn AnyContract,
    store: S,
    /// The most one event may weigh here: the contract's limit, within a Kinesis record.
    event_limit: usize,
}

/// What a request's events were judged, and their stream records.
struct Judged {
    verdicts: Vec<(Verdict, Vec<Violation>)>,
    records: Vec<Record>,
}

impl<S: Store> Edge<S> {
    pub fn new(spec: &'static dyn AnyContract, store: S) -> Edge<S> {
        let event_limit = usize::try_from(spec.manifest().aws_event_limit()).unwrap_or(usize::MAX);
        Edge {
            spec,
            store,
            event_limit,
        }
    }

    pub fn spec(&self) -> &'static dyn AnyContract {
        self.spec
    }

    /// Judges, stores and answers one request.
    pub async fn answer(&self, request: &Request<'_>) -> Answer {
        let manifest = self.spec.manifest();
        let started = std::time::Instant::now();
        let judged = match self.judge(request) {
            Ok(judged) => judged,
            Err(refusal) => return refusal.answer(manifest),
        };
        let judge_time = started.elapsed();
        let events = judged.records.len();
        let stored = self.store.put(judged.records).await;
        // What an invocation costs, apart (`RUST_LOG=contract_edge=info`; benches/edge.py).
        tracing::info!(
            events,
            judge_us = judge_time.as_micros() as u64,
            store_us = (started.elapsed() - judge_time).as_micros() as u64,
            "answered"
        );
        match request.route {
            Route::Single => match stored.first() {
                Some(Ok(())) => match judged.verdicts.first() {
                    Some((verdict, violations)) => {
                        door::single(manifest, &request.request_id, *verdict, violations)
                    }
                    None => Refusal::Unavailable.answer(manifest),
                },
                _ => Refusal::Unavailable.answer(manifest),
            },
            Route::Batch => {
                let not_stored: Vec<Unstored> = stored
                    .into_iter()
                    .enumerate()
                    .filter_map(|(index, outcome)| {
                        let error = outcome.err()?;
                        Some(Unstored {
                            index,
                            error: error.code,
                            message: error.message,
                        })
                    })
                    .collect();
                door::batch(&request.request_id, &judged.verdicts, &not_stored)
            }
        }
    }

    /// The refusals before judging (the same, in the same order, as `serve`'s after its
    /// token check), then every event's verdict and record.
    fn judge(&self, request: &Request<'_>) -> Result<Judged, Refusal> {
        let manifest = self.spec.manifest();
        let caller = caller(manifest, request).ok_or(Refusal::Unauthorized)?;
        let is_batch = request.route == Route::Batch;
        door::check_content_type(request.content_type, is_batch)?;
        let limit = match request.route {
            Route::Single => contract_judge::max_body_bytes(manifest),
            Route::Batch => contract_judge::max_batch_bytes(manifest),
        };
        if request.body.len() > limit {
            return Err(Refusal::TooLarge {
                batch: is_batch,
                limit,
            });
        }
        if !is_batch && request.body.len() > self.event_limit {
            return Err(Refusal::TooLargeForStream {
                limit: self.event_limit,
            });
        }
        let events = match request.route {
            Route::Single => vec![request.body],
            Route::Batch => door::events_of(
                manifest,
                request.body,
                batch::batch_format(request.content_type),
            )?,
        };
        let ctx = Context {
            ingest_time_micros: request.received_at_ms.saturating_mul(1000),
        };
        let mut parser = Parser::default();
        let mut judged = Judged {
            verdicts: Vec::with_capacity(events.len()),
            records: Vec::with_capacity(events.len()),
        };
        for (index, body) in events.into_iter().enumerate() {
            let id = match request.route {
                Route::Single => request.request_id.clone(),
                Route::Batch => answer::batch_item_id(&request.request_id, index),
            };
            let verdict = contract_judge::validate_within(
                self.event_limit,
                None,
                self.spec,
                &mut parser,
                body,
                &ctx,
                &Enrichment {
                    client_contract_version: request.client_version,
                    ..Default::default()
                },
            );
            let oversized = verdict.1.iter().any(|v| v.code == Code::TooLarge);
            let kept;
            let event = if oversized {
                // Kept as serve's quarantine keeps it, with its size for the Glue job's verdict.
                kept = oversized_kept(body);
                envelope::Event::oversized(kept.as_bytes(), body.len())
            } else {
                envelope::Event::whole(body)
            };
            let data = envelope::envelope(manifest, &caller, &id, request.received_at_ms, event);
            judged.records.push(Record {
                partition_key: id,
                data,
            });
            judged.verdicts.push(verdict);
        }
        Ok(judged)
    }
}

/// What the quarantine keeps of an event refused as too large: its first bytes, cut at a
/// character of its text (as `serve` keeps them).
fn oversized_kept(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text[..text.floor_char_boundary(contract_judge::OVERSIZED_KEPT_BYTES)].to_string()
}

/// The caller the authorizer's claims describe; `None` without a subject (no verified token).
fn caller(
    manifest: &contract_support::manifest::Manifest,
    request: &Request<'_>,
) -> Option<Caller> {
    let claims = request.claims.as_ref()?;
    let subject = claims.iter().find(|(name, _)| name == "sub")?.1.as_str();
    let values: Vec<(&str, serde_json::Value)> = claims
        .iter()
        .map(|(name, value)| (name.as_str(), serde_json::Value::String(value.clone())))
        .collect();
    Some(Caller::new(
        subject,
        values.iter().map(|(name, value)| (*name, value)),
        manifest,
        request.client_version,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::stream::NotStored;

    /// Keeps what it is given, failing the records whose index is in `fail`.
    #[derive(Default)]
    struct Kept {
        fail: Vec<usize>,
        records: Mutex<Vec<Record>>,
    }

    impl Store for Kept {
        async fn put(&self, records: Vec<Record>) -> Vec<Result<(), NotStored>> {
            let outcomes = (0..records.len())
                .map(|i| {
                    if self.fail.contains(&i) {
                        Err(NotStored {
                            code: "ProvisionedThroughputExceededException".into(),
                            message: "Rate exceeded".into(),
                        })
                    } else {
                        Ok(())
                    }
                })
                .collect();
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(records);
            outcomes
        }
    }

    fn contract(name: &str) -> &'static dyn AnyContract {
        contract_validators::ALL
            .iter()
            .copied()
            .find(|spec| spec.manifest().name == name)
            .expect("the contract is built")
    }

    fn game_events() -> &'static dyn AnyContract {
        contract("game_events")
    }

    fn request(route: Route, body: &[u8]) -> Request<'_> {
        Request {
            route,
            content_type: Some("application/json"),
            client_version: Some("1.0.0"),
            claims: Some(vec![("sub".into(), "player-1".into())]),
            body,
            received_at_ms: 1_700_000_000_000,
            request_id: "r".into(),
        }
    }

    #[tokio::test]
    async fn without_a_verified_subject_nothing_is_judged_or_put() {
        let edge = Edge::new(game_events(), Kept::default());
        let mut anonymous = request(Route::Single, b"{}");
        anonymous.claims = None;
        let answer = edge.answer(&anonymous).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (401, r#"{"message":"Unauthorized"}"#)
        );
        assert!(edge.store.records.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn every_event_is_put_refused_ones_too_and_a_failed_put_is_a_503() {
        let edge = Edge::new(game_events(), Kept::default());
        let refused = edge.answer(&request(Route::Single, b"{}")).await;
        assert_eq!(refused.status, 400);
        assert_eq!(edge.store.records.lock().expect("lock").len(), 1);

        let failing = Edge::new(
            game_events(),
            Kept {
                fail: vec![0],
                ..Kept::default()
            },
        );
        let unstored = failing.answer(&request(Route::Single, b"{}")).await;
        assert_eq!(unstored.status, 503);
    }

    /// match_events takes 1 MiB events; a Kinesis record carries less once base64-encoded.
    #[tokio::test]
    async fn events_over_what_a_record_carries_are_refused_and_kept_in_part() {
        let spec = contract("match_events");
        let limit = usize::try_from(spec.manifest().aws_event_limit()).expect("limit");
        assert!(limit < contract_judge::max_body_bytes(spec.manifest()));
        let edge = Edge::new(spec, Kept::default());
        let big = format!("{{\"pad\": \"{}\"}}", "y".repeat(limit));
        let single = edge.answer(&request(Route::Single, big.as_bytes())).await;
        assert_eq!(single.status, 413, "{}", single.body);
        assert!(
            single.body.contains(&format!("limit of {limit} bytes")),
            "{}",
            single.body
        );
        assert!(edge.store.records.lock().expect("lock").is_empty());

        let batch = format!("[{big}]");
        let answer = edge.answer(&request(Route::Batch, batch.as_bytes())).await;
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(body["results"][0]["violations"][0]["code"], "too_large");
        let records = edge.store.records.lock().expect("lock");
        let record = records.first().expect("the event is put, in part");
        assert!(record.data.len() < contract_support::manifest::KINESIS_RECORD_BYTES);
        let envelope: serde_json::Value = serde_json::from_slice(&record.data).expect("json");
        assert_eq!(envelope["body_bytes"], big.len());
    }

    #[tokio::test]
    async fn a_batch_answers_failed_only_for_the_events_not_put() {
        let edge = Edge::new(
            game_events(),
            Kept {
                fail: vec![1],
                ..Kept::default()
            },
        );
        let answer = edge.answer(&request(Route::Batch, b"[{}, {}, {}]")).await;
        assert_eq!(answer.status, 200);
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(body["results"][0]["verdict"], "reject");
        assert_eq!(body["results"][1]["result"], "failed");
        assert_eq!(
            body["results"][1]["error"],
            "ProvisionedThroughputExceededException"
        );
        assert_eq!(body["results"][2]["verdict"], "reject");
        let ids: Vec<String> = edge
            .store
            .records
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.partition_key.clone())
            .collect();
        assert_eq!(ids, ["r-0", "r-1", "r-2"]);
    }
}
