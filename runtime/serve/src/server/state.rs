use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract_support::json::Parser;
use contract_support::manifest::Manifest;
use contract_support::{AnyContract, Context, Enrichment, EventBuffer, Verdict, Violation};
use governor::DefaultKeyedRateLimiter;
use iceberg::TableIdent;
use tokio::sync::Notify;

use crate::console::Console;
use crate::dedup::{Index, Lookup};
use crate::identity::{DevIdentity, Verifier};
use crate::metrics::Metrics;
use crate::quarantine::{QuarantineBatch, Row};
use crate::wal::{self, Record, Wal};
use contract_judge::dedup::{EventId, event_id};

use crate::judge::{Caller, validate};

/// What one contract holds between commits.
pub(crate) struct Buffers {
    pub(crate) parser: Parser,
    pub(crate) events: Box<dyn EventBuffer>,
    pub(crate) quarantine: QuarantineBatch,
    /// The highest LSN of this contract's records buffered so far.
    pub(crate) last_lsn: u64,
}

pub(crate) struct ContractState {
    pub(crate) spec: &'static dyn AnyContract,
    pub(crate) manifest: &'static Manifest,
    pub(crate) verifier: Verifier,
    pub(crate) events_table: TableIdent,
    pub(crate) quarantine_table: TableIdent,
    pub(crate) buffers: Mutex<Buffers>,
    /// Batches whose commit failed, retried (before newer rows) by the next flush.
    pub(crate) unsent_events: Mutex<Vec<arrow_array::RecordBatch>>,
    pub(crate) unsent_quarantine: Mutex<Vec<arrow_array::RecordBatch>>,
    /// The ids stored within the contract's deduplication window (None: it declares none).
    pub(crate) dedup: Option<Arc<Index>>,
}

pub(crate) struct AppState {
    pub(crate) contracts: Vec<ContractState>,
    pub(crate) dev: Arc<DevIdentity>,
    pub(crate) wal: Wal,
    /// Assigns LSNs and queues log records in LSN order (held only for that).
    pub(crate) next_lsn: Mutex<u64>,
    pub(crate) last_assigned: AtomicU64,
    pub(crate) metrics: Metrics,
    pub(crate) flush_now: Notify,
    pub(crate) commit_rows: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) batches: tokio::sync::Semaphore,
    pub(crate) dev_mint_scopes: bool,
    /// New guests per client address (None: unlimited).
    pub(crate) guest_logins: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Token refreshes and returning-guest logins per client address (None: unlimited).
    pub(crate) token_renewals: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Held (read) while events are buffered; a rebuild from the log takes it (write).
    pub(crate) gate: std::sync::RwLock<()>,
    /// A rebuild from the log failed: the next flush tries again before it commits anything.
    pub(crate) rebuild_needed: std::sync::atomic::AtomicBool,
    pub(crate) wal_dir: PathBuf,
    pub(crate) console: Arc<Console>,
    /// The hashing keys for `pii: hash` (None when no contract stores personal data
    /// rewritten and none were given).
    pub(crate) pii_keys: Option<Arc<contract_judge::privacy::Keys>>,
    /// Erasures asked for (`POST /admin/forget`), run by the flusher between commits.
    pub(crate) erasures: Mutex<Vec<super::erasure::ErasureRequest>>,
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

pub(crate) fn now_seconds() -> u64 {
    u64::try_from(now_micros() / 1_000_000).unwrap_or(0)
}

/// The log's acknowledgement of a group of records: written all, or none.
pub(crate) type Ack = tokio::sync::oneshot::Receiver<Result<(), String>>;

/// The verdicts on a group of events, and the log's acknowledgement of the whole group.
pub(crate) struct Judged {
    pub(crate) verdicts: Vec<(Verdict, Vec<Violation>)>,
    pub(crate) ack: Ack,
    /// Events repeating one whose write is under way, by index: their verdict is the
    /// original's, known once it is written ([`AppState::settle_retries`]).
    pub(crate) retries: Vec<(usize, EventId)>,
}

/// What judging one event of a group found.
enum Judgement {
    /// Judged (and buffered unless rejected): to be logged.
    New {
        verdict: Verdict,
        violations: Vec<Violation>,
        id: Option<EventId>,
    },
    /// A retry of a stored event: answered as the original was, not stored again.
    Duplicate {
        verdict: Verdict,
        violations: Vec<Violation>,
    },
    /// A retry of an event whose write is under way.
    Retry(EventId),
}

impl AppState {
    /// Validates, buffers and logs a group of events (one request's): their verdicts, and one
    /// acknowledgement for the group, which the log writes all or nothing. `ids[i]` is event
    /// `i`'s request id.
    pub(crate) fn judge(
        &self,
        index: usize,
        bodies: &[&[u8]],
        ids: &[String],
        received_micros: i64,
        caller: &Caller,
    ) -> Result<Judged, wal::WalError> {
        let state = &self.contracts[index];
        let group = Group::new(state.manifest, caller, received_micros);
        // While the log is rebuilt after a failed write, no event may be buffered.
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let mut buffers = state.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let mut verdicts = Vec::with_capacity(bodies.len());
        let mut records = Vec::with_capacity(bodies.len());
        // (index among the records, id) of the stored events with an id; retries by event.
        let mut stored_ids = Vec::new();
        let mut retries = Vec::new();
        for (body, request_id) in bodies.iter().zip(ids) {
            match self.judge_one(index, &mut buffers, &group, body, request_id) {
                Judgement::New {
                    verdict,
                    violations,
                    id,
                } => {
                    if let Some(id) = id {
                        stored_ids.push((records.len(), id));
                    }
                    records.push(group.record(request_id, body, verdict, &violations));
                    verdicts.push((verdict, violations));
                }
                Judgement::Duplicate {
                    verdict,
                    violations,
                } => verdicts.push((verdict, violations)),
                Judgement::Retry(id) => {
                    retries.push((verdicts.len(), id));
                    verdicts.push((Verdict::Accept, Vec::new()));
                }
            }
        }
        let buffered = buffers.events.len() + buffers.quarantine.len();
        let ack = self.log_group(state, &mut buffers.last_lsn, records, stored_ids)?;
        drop(buffers);
        self.metrics
            .buffered
            .with_label_values(&[state.manifest.name.as_str()])
            .set(buffered as i64);
        if buffered >= self.commit_rows {
            self.flush_now.notify_one();
        }
        Ok(Judged {
            verdicts,
            ack,
            retries,
        })
    }

    /// Logs a group's records (none: every event was a retry) and has the dedup index settle
    /// the ids of its stored events, `(index among the records, id)`, once they are written.
    fn log_group(
        &self,
        state: &ContractState,
        last_lsn: &mut u64,
        records: Vec<Record>,
        stored_ids: Vec<(usize, EventId)>,
    ) -> Result<Ack, wal::WalError> {
        if records.is_empty() {
            return Ok(written());
        }
        let logged = records.len() as u64;
        let ids: Vec<EventId> = stored_ids.iter().map(|(_, id)| *id).collect();
        let generation = state.dedup.as_ref().map_or(0, |d| d.generation());
        let ack = match (self.log_in_order(records, last_lsn), &state.dedup) {
            (Ok(ack), Some(dedup)) if !stored_ids.is_empty() => {
                let first = *last_lsn + 1 - logged;
                dedup.logged(stored_ids.iter().map(|(r, id)| (first + *r as u64, *id)));
                let group = Logged {
                    ids,
                    generation,
                    lsns: first..first + logged,
                };
                settle_when_written(dedup.clone(), group, ack)
            }
            (Ok(ack), _) => ack,
            (Err(error), dedup) => {
                if let Some(dedup) = dedup {
                    dedup.settle(&ids, false, generation, 0..0);
                }
                return Err(error);
            }
        };
        Ok(ack)
    }

    /// Gives each retry of a group its original's verdict once the original is written; the
    /// retries whose original was not come back (answered as unstored: the client retries).
    pub(crate) async fn settle_retries(
        &self,
        index: usize,
        verdicts: &mut [(Verdict, Vec<Violation>)],
        retries: &[(usize, EventId)],
    ) -> Vec<usize> {
        let mut unstored = Vec::new();
        let Some(dedup) = &self.contracts[index].dedup else {
            return unstored;
        };
        // One deadline for the request, however many retries it holds.
        let deadline = Index::wait_deadline();
        for (event, id) in retries {
            match dedup.outcome(*id, deadline).await {
                Some(verdict) => verdicts[*event].0 = verdict,
                None => unstored.push(*event),
            }
        }
        unstored
    }

    /// Judges one event of a group: a retry of an event stored within the deduplication
    /// window is answered as the original was, neither buffered nor counted again; any other
    /// is judged and buffered ([`AppState::judge_new`]).
    fn judge_one(
        &self,
        index: usize,
        buffers: &mut Buffers,
        group: &Group<'_>,
        body: &[u8],
        request_id: &str,
    ) -> Judgement {
        let state = &self.contracts[index];
        let id = state
            .dedup
            .as_ref()
            .and_then(|_| event_id(state.manifest, &mut buffers.parser, body));
        if let (Some(dedup), Some(id)) = (&state.dedup, id) {
            let found = dedup.lookup(id);
            // Judged first without buffering (retries only): one refused now is refused again,
            // as any refused event (nothing of it was stored), at both doors alike.
            if found != Lookup::New {
                let enrichment = group.enrichment(request_id);
                let (verdict, violations) = validate(
                    None,
                    state.spec,
                    &mut buffers.parser,
                    body,
                    &group.ctx,
                    &enrichment,
                );
                match found {
                    _ if verdict == Verdict::Reject => {}
                    Lookup::Stored(original) => {
                        self.count_retry(index);
                        // The violations as judged now: the original's, unless a time rule moved.
                        let same = verdict == original;
                        return Judgement::Duplicate {
                            verdict: original,
                            violations: if same { violations } else { Vec::new() },
                        };
                    }
                    _ => {
                        self.count_retry(index);
                        return Judgement::Retry(id);
                    }
                }
            }
        }
        let (verdict, violations) = self.judge_new(index, buffers, group, body, request_id);
        let id = id.filter(|_| verdict != Verdict::Reject);
        if let (Some(dedup), Some(id)) = (&state.dedup, id) {
            dedup.judged(id, verdict, group.received_micros);
        }
        Judgement::New {
            verdict,
            violations,
            id,
        }
    }

    /// Counts a retry answered as its original was (`/metrics` and the console).
    fn count_retry(&self, index: usize) {
        let name = self.contracts[index].manifest.name.as_str();
        self.metrics
            .dedup
            .duplicates
            .with_label_values(&[name])
            .inc();
        self.console.duplicate(index);
    }

    /// Judges an event not seen before and buffers it (or its quarantine row); counts it.
    fn judge_new(
        &self,
        index: usize,
        buffers: &mut Buffers,
        group: &Group<'_>,
        body: &[u8],
        request_id: &str,
    ) -> (Verdict, Vec<Violation>) {
        let spec = self.contracts[index].spec;
        let enrichment = group.enrichment(request_id);
        let Buffers {
            parser,
            events,
            quarantine,
            ..
        } = buffers;
        let (verdict, violations) =
            validate(Some(events), spec, parser, body, &group.ctx, &enrichment);
        if verdict != Verdict::Accept {
            quarantine.push(Row {
                received_micros: group.received_micros,
                request_id: request_id.to_string(),
                verdict,
                violations: violations.clone(),
                raw_payload: String::from_utf8_lossy(body).into_owned(),
                player_id: group.caller.subject.clone(),
            });
        }
        self.metrics
            .record(&group.manifest.name, verdict, &violations);
        self.console.record(
            index,
            group.received_micros,
            request_id,
            verdict,
            &violations,
            body,
            contract_judge::client_version(group.manifest, group.caller.client_version.as_deref()),
        );
        (verdict, violations)
    }

    /// Gives `records` the next LSNs and queues them for the log. Called under the contract's
    /// lock: the log lock nests inside it, so a contract's records get increasing LSNs in the
    /// order they were buffered, which the commit LSN relies on.
    fn log_in_order(
        &self,
        mut records: Vec<Record>,
        last_lsn: &mut u64,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, wal::WalError> {
        let mut next = self.next_lsn.lock().unwrap_or_else(|p| p.into_inner());
        for record in &mut records {
            record.lsn = *next;
            *next += 1;
        }
        if let Some(last) = records.last() {
            *last_lsn = last.lsn;
            self.last_assigned.store(last.lsn, Ordering::Release);
        }
        self.wal.append(records)
    }
}

/// An acknowledgement with nothing to write: every event of the group was a retry.
fn written() -> Ack {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let _ = sender.send(Ok(()));
    receiver
}

/// The stored ids of one logged group, for the dedup index to settle.
struct Logged {
    ids: Vec<EventId>,
    generation: u16,
    /// The LSNs of the group's records.
    lsns: std::ops::Range<u64>,
}

/// Settles the group's ids in the deduplication index once the log has written them (or
/// failed to), then passes the acknowledgement on. In a task of its own, so the ids settle
/// even if the request is dropped meanwhile (its client went away).
fn settle_when_written(dedup: Arc<Index>, group: Logged, ack: Ack) -> Ack {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let written = ack
            .await
            .unwrap_or_else(|_| Err("the log writer stopped".into()));
        dedup.settle(&group.ids, written.is_ok(), group.generation, group.lsns);
        let _ = sender.send(written);
    });
    receiver
}

/// What the events of one request share: who sent them, when, and for which contract.
struct Group<'a> {
    manifest: &'static Manifest,
    caller: &'a Caller,
    received_micros: i64,
    ctx: Context,
    string_claims: Vec<(&'a str, &'a str)>,
    logged_claims: Vec<(String, String)>,
}

impl<'a> Group<'a> {
    fn new(manifest: &'static Manifest, caller: &'a Caller, received_micros: i64) -> Self {
        Group {
            manifest,
            caller,
            received_micros,
            ctx: Context {
                ingest_time_micros: received_micros,
            },
            string_claims: caller
                .claims
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            logged_claims: caller.logged_claims(),
        }
    }

    fn enrichment<'e>(&'e self, request_id: &'e str) -> Enrichment<'e> {
        Enrichment {
            ingest_time_micros: self.received_micros,
            contract_version: &self.manifest.version,
            request_id,
            jwt_sub: self.caller.subject.as_deref(),
            jwt_claims: &self.string_claims,
            client_contract_version: contract_judge::client_version(
                self.manifest,
                self.caller.client_version.as_deref(),
            ),
        }
    }

    /// The log record of one event, with the verdict its answer gives.
    fn record(
        &self,
        request_id: &str,
        body: &[u8],
        verdict: Verdict,
        violations: &[Violation],
    ) -> Record {
        Record {
            lsn: 0,
            contract: self.manifest.name.clone(),
            received_micros: self.received_micros,
            request_id: request_id.to_string(),
            player_id: self.caller.subject.clone(),
            claims: self.logged_claims.clone(),
            body: body.to_vec(),
            // What the answer says, so a restart routes it there whatever its build says.
            acknowledged: Some(wal::Acknowledged::new(verdict, violations)),
            supersedes: None,
        }
    }
}

impl AppState {
    /// The next LSN, for a record logged outside `judge` (nothing else is buffered meanwhile).
    pub(crate) fn assign_lsn(&self) -> u64 {
        let mut next = self.next_lsn.lock().unwrap_or_else(|p| p.into_inner());
        let lsn = *next;
        *next += 1;
        self.last_assigned.store(lsn, Ordering::Release);
        lsn
    }
}

impl crate::http::ConnectionEvents for AppState {
    fn refused(&self) {
        self.metrics
            .limited
            .with_label_values(&["connection"])
            .inc();
    }
}
