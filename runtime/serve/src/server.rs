//! `contract-runtime serve`: the local ingest stack on one machine.
//!
//! Request path: authenticate (JWT) → check size and content type → validate with the
//! generated validator and buffer the event (under the contract's lock) → append to the
//! write-ahead log → wait for the group fsync → answer. A background flusher commits the
//! buffered events to Iceberg every `commit_interval` (or sooner when `commit_rows` pile up),
//! recording the highest LSN in each snapshot; on start, log records above a table's LSN are
//! replayed, so an acknowledged event lands exactly once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contract_support::json::Parser;
use contract_support::manifest::{Issuer, Manifest};
use contract_support::{
    AnyContract, Code, Context, Enrichment, EventBuffer, Policy, Verdict, Violation,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use iceberg::TableIdent;
use serde_json::json;
use tokio::sync::Notify;

use crate::console::{Console, ServedContract};
use crate::cors::CorsPolicy;
use crate::http::ConnectionLimits;
use crate::identity::{
    AuthError, DevIdentity, GuestPolicy, KeySource, LoginError, RefreshError, Verifier,
};
use crate::lake::Lake;
use crate::metrics::Metrics;
use crate::quarantine::{QuarantineBatch, Row};
use crate::wal::{self, Record, Wal};

/// Settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Commit buffered events at least this often.
    pub commit_interval: Duration,
    /// Commit early once this many events are buffered for a contract.
    pub commit_rows: usize,
    /// The dev identity provider's issuer URL (default `http://{listen}`).
    pub public_url: Option<String>,
    /// Connection cap and header deadline.
    pub connections: ConnectionLimits,
    /// How long a request body may take to arrive once its headers have.
    pub body_timeout: Duration,
    /// Batch requests judged at once (each holds up to its body in memory).
    pub concurrent_batches: usize,
    /// Origins allowed to send credentials.
    pub cors: CorsPolicy,
    /// Development only: lets `/prod/login-as-guest?scope=authenticated` mint the
    /// `authenticated` scope. Refused unless `listen` is a loopback address.
    pub dev_mint_scopes: bool,
    /// Guest logins per client address, and how long an unused guest lives.
    pub guests: GuestPolicy,
    /// The token that opens the quality console (`/console/`); without one, `serve` makes one
    /// at first start and keeps it in `DATA_DIR/console-token`.
    pub console_token: Option<String>,
    /// Development: requests straight from this machine open the console without the token
    /// (never relayed ones). Refused unless `listen` is a loopback address.
    pub console_open: bool,
    /// Table maintenance (compaction, snapshot expiry, orphan files) between commits.
    pub maintenance: crate::maintenance::Schedule,
}

impl ServeConfig {
    /// The defaults `contract-runtime serve` starts with.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            listen,
            data_dir,
            commit_interval: Duration::from_secs(2),
            commit_rows: 100_000,
            public_url: None,
            connections: ConnectionLimits::default(),
            body_timeout: Duration::from_secs(30),
            concurrent_batches: 4,
            cors: CorsPolicy::default(),
            dev_mint_scopes: false,
            guests: GuestPolicy::default(),
            console_token: None,
            console_open: false,
            maintenance: crate::maintenance::Schedule::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot listen on {listen}: {source}{hint}",
        hint = listen_hint(.source)
    )]
    Listen {
        listen: SocketAddr,
        source: std::io::Error,
    },
}

/// What to do about a listen address that cannot be had.
fn listen_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program, perhaps another serve, has the port: stop it, or pass \
             --listen with another address)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    }
}

/// What one contract holds between commits.
struct Buffers {
    parser: Parser,
    events: Box<dyn EventBuffer>,
    quarantine: QuarantineBatch,
    /// The highest LSN of this contract's records buffered so far.
    last_lsn: u64,
}

struct ContractState {
    spec: &'static dyn AnyContract,
    manifest: &'static Manifest,
    verifier: Verifier,
    events_table: TableIdent,
    quarantine_table: TableIdent,
    buffers: Mutex<Buffers>,
    /// Batches whose commit failed, retried (before newer rows) by the next flush.
    unsent_events: Mutex<Vec<arrow_array::RecordBatch>>,
    unsent_quarantine: Mutex<Vec<arrow_array::RecordBatch>>,
}

struct AppState {
    contracts: Vec<ContractState>,
    dev: Arc<DevIdentity>,
    wal: Wal,
    /// Assigns LSNs and queues log records in LSN order (held only for that).
    next_lsn: Mutex<u64>,
    last_assigned: AtomicU64,
    metrics: Metrics,
    flush_now: Notify,
    commit_rows: usize,
    body_timeout: Duration,
    batches: tokio::sync::Semaphore,
    dev_mint_scopes: bool,
    /// New guests per client address (None: unlimited).
    guest_logins: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Token refreshes and returning-guest logins per client address (None: unlimited).
    token_renewals: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Held (read) while events are buffered; a rebuild from the log takes it (write).
    gate: std::sync::RwLock<()>,
    wal_dir: PathBuf,
    console: Arc<Console>,
}

const SUCCESS_BODY: &str = "\"Successfully added event\"";

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": text.into() }))).into_response()
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Who sent an event, as far as enrichment needs: the token's subject and the other claims the
/// contract enriches from. Logged with the event, so a replay enriches it the same way.
#[derive(Debug, Clone, Default)]
struct Caller {
    subject: Option<String>,
    claims: Vec<(String, String)>,
    /// The contract version the client was generated from (`X-Contract-Version`).
    client_version: Option<String>,
}

/// The log records the client's contract version among the claims under this name, which no
/// JWT claim can have (claim names are identifiers).
const CLIENT_VERSION_KEY: &str = "contractc.client_contract_version";

impl Caller {
    fn of(claims: &crate::identity::Claims, manifest: &Manifest, headers: &HeaderMap) -> Caller {
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
    fn logged_claims(&self) -> Vec<(String, String)> {
        let mut claims = self.claims.clone();
        if let Some(version) = &self.client_version {
            claims.push((CLIENT_VERSION_KEY.to_string(), version.clone()));
        }
        claims
    }
}

/// The client's `X-Contract-Version`: a short printable value, else none.
fn client_version(headers: &HeaderMap) -> Option<String> {
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

/// The verdicts on a group of events, and the log's acknowledgement of the whole group.
type Judged = (
    Vec<(Verdict, Vec<Violation>)>,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
);

impl AppState {
    /// Validates, buffers and logs a group of events (one request's): their verdicts, and one
    /// acknowledgement for the group, which the log writes all or nothing. `ids[i]` is event
    /// `i`'s request id.
    fn judge(
        &self,
        index: usize,
        bodies: &[&[u8]],
        ids: &[String],
        received_micros: i64,
        caller: &Caller,
    ) -> Result<Judged, wal::WalError> {
        let state = &self.contracts[index];
        let manifest = state.manifest;
        let string_claims: Vec<(&str, &str)> = caller
            .claims
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let logged_claims = caller.logged_claims();
        let ctx = Context {
            ingest_time_micros: received_micros,
        };
        // While the log is rebuilt after a failed write, no event may be buffered.
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let mut buffers = state.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let Buffers {
            parser,
            events,
            quarantine,
            last_lsn,
        } = &mut *buffers;
        let mut verdicts = Vec::with_capacity(bodies.len());
        let mut records = Vec::with_capacity(bodies.len());
        for (body, request_id) in bodies.iter().zip(ids) {
            let enrichment = Enrichment {
                ingest_time_micros: received_micros,
                contract_version: &manifest.version,
                request_id,
                jwt_sub: caller.subject.as_deref(),
                jwt_claims: &string_claims,
                client_contract_version: caller.client_version.as_deref(),
            };
            let (verdict, violations) =
                validate(Some(events), state.spec, parser, body, &ctx, &enrichment);
            if verdict != Verdict::Accept {
                quarantine.push(Row {
                    received_micros,
                    request_id: request_id.clone(),
                    verdict,
                    violations: violations.clone(),
                    raw_payload: String::from_utf8_lossy(body).into_owned(),
                    player_id: caller.subject.clone(),
                });
            }
            self.metrics.record(&manifest.name, verdict, &violations);
            self.console.record(
                index,
                received_micros,
                request_id,
                verdict,
                &violations,
                body,
                caller.client_version.as_deref(),
            );
            records.push(Record {
                lsn: 0,
                contract: manifest.name.clone(),
                received_micros,
                request_id: request_id.clone(),
                player_id: caller.subject.clone(),
                claims: logged_claims.clone(),
                body: body.to_vec(),
                // What the answer says, so a restart routes it there whatever its build says.
                acknowledged: Some(wal::Acknowledged::new(verdict, &violations)),
                supersedes: None,
            });
            verdicts.push((verdict, violations));
        }
        let buffered = events.len() + quarantine.len();
        // The log lock nests inside the contract lock: a contract's records get increasing
        // LSNs in the order they were buffered, which the commit LSN relies on.
        let ack = {
            let mut next = self.next_lsn.lock().unwrap_or_else(|p| p.into_inner());
            for record in &mut records {
                record.lsn = *next;
                *next += 1;
            }
            if let Some(last) = records.last() {
                *last_lsn = last.lsn;
                self.last_assigned.store(last.lsn, Ordering::Release);
            }
            self.wal.append(records)?
        };
        drop(buffers);
        self.metrics
            .buffered
            .with_label_values(&[manifest.name.as_str()])
            .set(buffered as i64);
        if buffered >= self.commit_rows {
            self.flush_now.notify_one();
        }
        Ok((verdicts, ack))
    }
}

/// The answer to events the log could not store: try again later (nothing was kept).
fn unavailable(state: &AppState) -> Response {
    // The buffered rows of a failed write must not reach the tables: rebuild from the log.
    state.flush_now.notify_one();
    let mut response = message(
        StatusCode::SERVICE_UNAVAILABLE,
        "the event could not be stored (is the disk full?); nothing was kept: retry later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn violations_json(violations: &[Violation]) -> serde_json::Value {
    serde_json::to_value(violations).unwrap_or_default()
}

async fn authenticate(
    state: &AppState,
    index: usize,
    headers: &HeaderMap,
) -> Result<crate::identity::Claims, Response> {
    let contract = &state.contracts[index];
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match contract
        .verifier
        .verify(authorization, &contract.manifest.ingest.auth.scopes)
        .await
    {
        Ok(claims) => Ok(claims),
        Err(AuthError::Unauthorized(reason)) => {
            tracing::debug!(contract = contract.manifest.name.as_str(), %reason, "unauthorized");
            state
                .metrics
                .unauthorized
                .with_label_values(&[contract.manifest.name.as_str(), "401"])
                .inc();
            Err(message(StatusCode::UNAUTHORIZED, "Unauthorized"))
        }
        Err(AuthError::Forbidden(reason)) => {
            tracing::debug!(contract = contract.manifest.name.as_str(), %reason, "forbidden");
            state
                .metrics
                .unauthorized
                .with_label_values(&[contract.manifest.name.as_str(), "403"])
                .inc();
            Err(message(StatusCode::FORBIDDEN, "Forbidden"))
        }
    }
}

/// 415 for a content type that is not JSON (absent counts as JSON, as API Gateway assumes).
fn check_content_type(headers: &HeaderMap, batch: bool) -> Result<(), Response> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = text.split(';').next().unwrap_or_default().trim();
    let ok = essence == "application/json"
        || essence.ends_with("+json")
        || (batch && (essence == "application/x-ndjson" || essence == "application/ndjson"));
    if ok {
        Ok(())
    } else {
        Err(message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {essence:?}: send application/json{}",
                if batch {
                    " or application/x-ndjson"
                } else {
                    ""
                }
            ),
        ))
    }
}

fn too_large(what: &str, limit: usize, manifest: &Manifest) -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the {what} exceeds the limit of {limit} bytes of contract {}",
            manifest.name
        ),
    )
}

fn max_body_bytes(manifest: &Manifest) -> usize {
    usize::try_from(manifest.ingest.max_body_bytes).unwrap_or(usize::MAX)
}

/// The most a batch body may weigh: its events at their limit, within 16 MiB (a batch is held
/// in memory while it is judged).
fn max_batch_bytes(manifest: &Manifest) -> usize {
    const CEILING: usize = 16 << 20;
    max_body_bytes(manifest)
        .saturating_mul(usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX))
        .min(CEILING)
}

/// An answer given before the request's body was read: the connection is closed after it, so
/// no client reuses a connection with an unread body in it.
fn before_body(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// How long, and how much, a refused request's unread body is still read and thrown away.
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 64 << 20;

/// Refuses a request whose body was not read. Its client is most likely still sending it:
/// closing at once would reset the connection under it, and it would see a broken pipe instead
/// of the answer. So the rest is read and thrown away, within [`LINGER`] and [`LINGER_BYTES`]
/// (a lingering close, as web servers do), and then the connection closes. Nothing is kept.
fn refuse_unread(body: Body, response: Response) -> Response {
    tokio::spawn(discard(body));
    before_body(response)
}

async fn discard(body: Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while read < LINGER_BYTES {
            match stream.next().await {
                Some(Ok(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
    })
    .await;
}

/// Reads a body of at most `limit` bytes within the body deadline. A declared length over the
/// limit is refused before a byte of the body is kept.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    over_limit: impl Fn() -> Response,
) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        state
            .metrics
            .limited
            .with_label_values(&["body_size"])
            .inc();
        return Err(refuse_unread(body, over_limit()));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(
        state.body_timeout,
        http_body_util::BodyExt::collect(limited),
    )
    .await
    {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            state
                .metrics
                .limited
                .with_label_values(&["body_size"])
                .inc();
            Err(before_body(over_limit()))
        }
        Ok(Err(error)) => Err(message(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {error}"),
        )),
        Err(_) => {
            state
                .metrics
                .limited
                .with_label_values(&["body_timeout"])
                .inc();
            Err(before_body(message(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    state.body_timeout.as_secs()
                ),
            )))
        }
    }
}

/// What is checked before a body is read, the token first: an unauthenticated client cannot
/// make the server hold an upload. A refusal closes the connection (the body stays unread).
async fn admit(
    state: &AppState,
    index: usize,
    headers: &HeaderMap,
    batch: bool,
) -> Result<crate::identity::Claims, Response> {
    let claims = authenticate(state, index, headers)
        .await
        .map_err(before_body)?;
    check_content_type(headers, batch).map_err(before_body)?;
    Ok(claims)
}

async fn ingest_one(
    state: Arc<AppState>,
    index: usize,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = now_micros();
    let claims = match admit(&state, index, &headers, false).await {
        Ok(claims) => claims,
        Err(response) => return refuse_unread(body, response),
    };
    let manifest = state.contracts[index].manifest;
    let limit = max_body_bytes(manifest);
    let body = match read_body(&state, &headers, body, limit, || {
        too_large("body", limit, manifest)
    })
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    let caller = Caller::of(&claims, manifest, &headers);
    let ids = [request_id.clone()];
    let (mut verdicts, ack) = match state.judge(index, &[&body], &ids, received, &caller) {
        Ok(judged) => judged,
        Err(error) => {
            tracing::error!(%error, "cannot log the event");
            return unavailable(&state);
        }
    };
    if !matches!(ack.await, Ok(Ok(()))) {
        return unavailable(&state);
    }
    let Some((verdict, violations)) = verdicts.pop() else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
    };
    match verdict {
        // Quarantined events are acknowledged: the producer did nothing a retry would fix.
        Verdict::Accept | Verdict::Quarantine => {
            let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], SUCCESS_BODY).into_response();
            response.headers_mut().insert("x-contract-verdict", HeaderValue::from_static(verdict.as_str()));
            if !violations.is_empty() {
                let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
                if let Ok(value) = HeaderValue::from_str(&codes.join(",")) {
                    response.headers_mut().insert("x-contract-violations", value);
                }
            }
            response
        }
        Verdict::Reject => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "message": format!("the event breaks contract {} {}", manifest.name, manifest.version),
                "request_id": request_id,
                "violations": violations_json(&violations),
            })),
        )
            .into_response(),
    }
}

/// How a batch body is framed: by its content type (NDJSON, or a JSON array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchFormat {
    Array,
    Lines,
}

fn batch_format(headers: &HeaderMap) -> BatchFormat {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence.as_deref() {
        Some("application/x-ndjson" | "application/ndjson") => BatchFormat::Lines,
        _ => BatchFormat::Array,
    }
}

/// Splits a batch body into events.
fn split_batch(body: &[u8], format: BatchFormat) -> Result<Vec<&[u8]>, String> {
    match format {
        BatchFormat::Array => {
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_slice(body).map_err(|e| {
                    format!(
                        "the batch is not a JSON array ({e}); send NDJSON as application/x-ndjson"
                    )
                })?;
            Ok(items.into_iter().map(|raw| raw.get().as_bytes()).collect())
        }
        BatchFormat::Lines => Ok(body
            .split(|b| *b == b'\n')
            .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
            .collect()),
    }
}

/// An answer lists at most this many violations per event (and how many more there were),
/// so its size is bounded by the batch's event limit.
const VIOLATIONS_PER_EVENT: usize = 10;

fn batch_result(index: usize, verdict: Verdict, violations: &[Violation]) -> serde_json::Value {
    let shown = &violations[..violations.len().min(VIOLATIONS_PER_EVENT)];
    let mut result =
        json!({ "index": index, "verdict": verdict, "violations": violations_json(shown) });
    if violations.len() > shown.len() {
        result["more_violations"] = json!(violations.len() - shown.len());
    }
    result
}

async fn ingest_batch(
    state: Arc<AppState>,
    index: usize,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = now_micros();
    let claims = match admit(&state, index, &headers, true).await {
        Ok(claims) => claims,
        Err(response) => return refuse_unread(body, response),
    };
    let manifest = state.contracts[index].manifest;
    // Batches wait their turn: each holds its body and its answer in memory.
    let Ok(_turn) = state.batches.acquire().await else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let limit = max_batch_bytes(manifest);
    let body = match read_body(&state, &headers, body, limit, || {
        too_large("batch", limit, manifest)
    })
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let max_events = usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX);
    let count = match split_batch(&body, batch_format(&headers)) {
        Ok(events) => events.len(),
        Err(error) => return message(StatusCode::BAD_REQUEST, error),
    };
    if count > max_events {
        state
            .metrics
            .limited
            .with_label_values(&["batch_events"])
            .inc();
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the batch has {count} events; contract {} takes at most {max_events} per batch",
                manifest.name
            ),
        );
    }
    let caller = Caller::of(&claims, manifest, &headers);
    let format = batch_format(&headers);
    // Judging is CPU work: off the async workers, so health checks and small requests are not
    // held up behind a large batch.
    let judged = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            judge_batch(&state, index, &body, format, received, &caller)
        })
        .await
    };
    let (request_id, results, ack, tally) = match judged {
        Ok(Ok(judged)) => judged,
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot log the batch");
            return unavailable(&state);
        }
        Err(error) => {
            tracing::error!(%error, "the batch task failed");
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
        }
    };
    // The batch is logged all or nothing: an error means none of it was kept.
    if !matches!(ack.await, Ok(Ok(()))) {
        return unavailable(&state);
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "request_id": request_id,
            "accepted": tally[0],
            "quarantined": tally[1],
            "rejected": tally[2],
            "results": results,
        })),
    )
        .into_response()
}

type BatchJudged = (
    String,
    Vec<serde_json::Value>,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
    [usize; 3],
);

fn judge_batch(
    state: &AppState,
    index: usize,
    body: &[u8],
    format: BatchFormat,
    received: i64,
    caller: &Caller,
) -> Result<BatchJudged, wal::WalError> {
    let events = split_batch(body, format).unwrap_or_default();
    let request_id = uuid::Uuid::now_v7().to_string();
    let ids: Vec<String> = (0..events.len())
        .map(|i| format!("{request_id}-{i}"))
        .collect();
    let (verdicts, ack) = state.judge(index, &events, &ids, received, caller)?;
    let mut results = Vec::with_capacity(events.len());
    let mut tally = [0usize; 3];
    for (i, (verdict, violations)) in verdicts.iter().enumerate() {
        tally[match verdict {
            Verdict::Accept => 0,
            Verdict::Quarantine => 1,
            Verdict::Reject => 2,
        }] += 1;
        results.push(batch_result(i, *verdict, violations));
    }
    Ok((request_id, results, ack, tally))
}

async fn login_as_guest(
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

async fn refresh_access_token(
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
fn renewal_limited(state: &AppState, ip: IpAddr) -> Option<Response> {
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
fn limited_by(
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

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.dev.jwks()).into_response()
}

async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.dev.openid_configuration()).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

fn router(state: Arc<AppState>, cors: CorsPolicy) -> Router {
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
    router
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(cors),
            crate::cors::layer,
        ))
        // After the CORS layer, so no console answer is readable from another origin.
        .merge(console)
}

/// Commits every contract's buffered events and quarantined rows. Returns the LSN below
/// which everything is committed (for log truncation), or None when a commit failed.
async fn flush(state: &AppState, lake: &Lake) -> Option<u64> {
    let safe_point = state.last_assigned.load(Ordering::Acquire);
    let mut all_ok = true;
    let mut taken = Vec::with_capacity(state.contracts.len());
    for contract in &state.contracts {
        let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let events = (!buffers.events.is_empty()).then(|| buffers.events.finish());
        let quarantine = (!buffers.quarantine.is_empty()).then(|| buffers.quarantine.finish());
        taken.push((events, quarantine, buffers.last_lsn));
    }
    // Commit these rows only once the log holds them: after a failed write some were never
    // acknowledged, and an event answered with an error must never reach a table.
    if let Ok(barrier) = state.wal.barrier() {
        let _ = barrier.await;
    }
    if state.wal.take_failure() {
        drop(taken);
        match rebuild_from_log(state, lake).await {
            Ok(kept) => tracing::warn!(
                kept,
                "a log write failed: the buffers were rebuilt from the log"
            ),
            Err(error) => tracing::error!(%error, "cannot rebuild the buffers from the log"),
        }
        return None;
    }
    for (contract, (events, quarantine, lsn)) in state.contracts.iter().zip(taken) {
        state
            .metrics
            .buffered
            .with_label_values(&[contract.manifest.name.as_str()])
            .set(0);
        let events = match events.map(|batch| match contract.manifest.upsert() {
            // One row per key in the batch first: less to hold, and to look up in the table.
            Some(upsert) => crate::upsert::latest_per_key(&batch, upsert.key, upsert.latest_by),
            None => Ok(batch),
        }) {
            Some(Ok(batch)) => Some(batch),
            Some(Err(error)) => {
                tracing::error!(%error, "cannot de-duplicate the batch; it stays in the write-ahead log");
                all_ok = false;
                None
            }
            None => None,
        };
        let quarantine = match quarantine {
            Some(Ok(batch)) => Some(batch),
            Some(Err(error)) => {
                tracing::error!(%error, "cannot build the quarantine batch; it stays in the write-ahead log");
                all_ok = false;
                None
            }
            None => None,
        };
        all_ok &= commit(
            state,
            lake,
            &contract.events_table,
            contract.manifest.upsert(),
            &contract.unsent_events,
            events,
            lsn,
        )
        .await;
        all_ok &= commit(
            state,
            lake,
            &contract.quarantine_table,
            None,
            &contract.unsent_quarantine,
            quarantine,
            lsn,
        )
        .await;
    }
    all_ok.then_some(safe_point)
}

/// Throws away what is buffered and buffers again what the log holds above each table's
/// committed LSN: the events of a failed write are gone, everything acknowledged is back.
async fn rebuild_from_log(state: &AppState, lake: &Lake) -> Result<usize, ServeError> {
    let mut committed = HashMap::new();
    for contract in &state.contracts {
        for table in [&contract.events_table, &contract.quarantine_table] {
            committed.insert(table.clone(), lake.committed_lsn(table).await?);
        }
    }
    tokio::task::block_in_place(|| {
        // No event is buffered until the rebuild is done…
        let _gate = state.gate.write().unwrap_or_else(|p| p.into_inner());
        // …and every write queued before that is on disk or failed (and cut off).
        let barrier = state.wal.barrier()?;
        let _ = barrier.blocking_recv();
        state.wal.take_failure();
        for contract in &state.contracts {
            let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
            buffers.events = contract.spec.event_buffer();
            buffers.quarantine.clear();
            buffers.last_lsn = 0;
            for unsent in [&contract.unsent_events, &contract.unsent_quarantine] {
                unsent.lock().unwrap_or_else(|p| p.into_inner()).clear();
            }
        }
        let records = wal::read_records(&state.wal_dir)?;
        let replayed = replay(state, &records, &committed)?;
        if let Some(ack) = replayed.relogged {
            wal::acknowledged(ack.blocking_recv())?;
        }
        Ok(replayed.count)
    })
}

/// Commits `batch` together with any batches an earlier commit failed to write, recording
/// `lsn`. On failure everything goes back to `unsent` for the next flush: a later commit must
/// never record an LSN above rows that are not in the table, or a restart would skip them.
/// An upsert table's commit replaces the versions it supersedes (upsert.rs).
async fn commit(
    state: &AppState,
    lake: &Lake,
    table: &TableIdent,
    upsert: Option<contract_support::manifest::Upsert<'_>>,
    unsent: &Mutex<Vec<arrow_array::RecordBatch>>,
    batch: Option<arrow_array::RecordBatch>,
    lsn: u64,
) -> bool {
    let mut batches = std::mem::take(&mut *unsent.lock().unwrap_or_else(|p| p.into_inner()));
    batches.extend(batch);
    if batches.is_empty() {
        return true;
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let started = Instant::now();
    for attempt in 1..=5 {
        let written = match upsert {
            Some(upsert) => {
                crate::upsert::upsert_batches(lake, table, batches.clone(), lsn, upsert).await
            }
            None => lake.append(table, batches.clone(), lsn).await,
        };
        match written {
            Ok(files) => {
                let seconds = started.elapsed().as_secs_f64();
                state
                    .metrics
                    .commit_seconds
                    .with_label_values(&[&table.to_string()])
                    .observe(seconds);
                tracing::info!(%table, rows, files, lsn, seconds, "committed");
                state.console.committed(table);
                return true;
            }
            Err(error) => {
                tracing::warn!(%table, attempt, %error, "commit failed");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
    tracing::error!(%table, rows, lsn, "commit failed five times; retrying with the next flush (the events are in the write-ahead log)");
    unsent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(batches);
    false
}

/// What a replay buffered, and the acknowledgement of the records it logged again
/// (`wal::Route::Relog`): nothing may be committed before that resolves.
struct Replayed {
    count: usize,
    relogged: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
}

/// Replays log records newer than each table's committed LSN into the buffers, each to the
/// table `wal::route` gives it (the verdict it was acknowledged with, when the log holds it).
fn replay(
    state: &AppState,
    records: &[Record],
    committed: &HashMap<TableIdent, u64>,
) -> Result<Replayed, wal::WalError> {
    let superseded: std::collections::HashSet<u64> =
        records.iter().filter_map(|r| r.supersedes).collect();
    let mut count = 0;
    let mut relogged = Vec::new();
    for record in records {
        let Some(contract) = state
            .contracts
            .iter()
            .find(|c| c.manifest.name == record.contract)
        else {
            tracing::warn!(contract = %record.contract, lsn = record.lsn, "log record for a contract that is no longer served");
            continue;
        };
        let ctx = Context {
            ingest_time_micros: record.received_micros,
        };
        let claims: Vec<(&str, &str)> = record
            .claims
            .iter()
            .filter(|(k, _)| k != CLIENT_VERSION_KEY)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let client_contract_version = record
            .claims
            .iter()
            .find(|(k, _)| k == CLIENT_VERSION_KEY)
            .map(|(_, v)| v.as_str());
        let enrichment = Enrichment {
            ingest_time_micros: record.received_micros,
            contract_version: &contract.manifest.version,
            request_id: &record.request_id,
            jwt_sub: record.player_id.as_deref(),
            jwt_claims: &claims,
            client_contract_version,
        };
        let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let Buffers {
            parser,
            events,
            quarantine,
            last_lsn,
        } = &mut *buffers;
        let tables = wal::Committed {
            events: committed.get(&contract.events_table).copied().unwrap_or(0),
            quarantine: committed
                .get(&contract.quarantine_table)
                .copied()
                .unwrap_or(0),
        };
        let superseded = superseded.contains(&record.lsn);
        // An acceptance above the events table's LSN is appended by the judgement itself, and
        // routes to the events table (`wal::route` promises it).
        let route = wal::route(record, tables, superseded, || {
            let buffer = (record.lsn > tables.events).then_some(events);
            validate(
                buffer,
                contract.spec,
                parser,
                &record.body,
                &ctx,
                &enrichment,
            )
        });
        let row = |verdict, violations| Row {
            received_micros: record.received_micros,
            request_id: record.request_id.clone(),
            verdict,
            violations,
            raw_payload: String::from_utf8_lossy(&record.body).into_owned(),
            player_id: record.player_id.clone(),
        };
        match route {
            wal::Route::Done => {}
            wal::Route::Events => count += 1,
            wal::Route::Quarantine(verdict, violations) => {
                quarantine.push(row(verdict, violations));
                count += 1;
            }
            wal::Route::Relog(verdict, violations) => {
                quarantine.push(row(verdict, violations.clone()));
                let lsn = state.assign_lsn();
                tracing::warn!(contract = %record.contract, lsn = record.lsn, relogged = lsn, verdict = verdict.as_str(), "this build refuses an event acknowledged as accepted and not committed yet: it goes to the quarantine table");
                relogged.push(record.relogged(lsn, verdict, violations));
                *last_lsn = (*last_lsn).max(lsn);
                count += 1;
            }
        }
        *last_lsn = (*last_lsn).max(record.lsn);
    }
    let relogged = if relogged.is_empty() {
        None
    } else {
        Some(state.wal.append(relogged)?)
    };
    Ok(Replayed { count, relogged })
}

impl AppState {
    /// The next LSN, for a record logged outside `judge` (nothing else is buffered meanwhile).
    fn assign_lsn(&self) -> u64 {
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

/// A per-address quota of `per_minute` with bursts of `burst`; None (no limit) for 0.
fn per_minute_quota(per_minute: u32, burst: u32) -> Option<Quota> {
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

/// The console's token file in the data directory (made at first start when no token is
/// given): read by the operator, never printed to the log.
pub const CONSOLE_TOKEN_FILE: &str = "console-token";

/// Who may open the console: the given token, or the one kept in the data directory.
fn console_access(
    config: &ServeConfig,
    issuer: &str,
) -> Result<crate::console::Access, ServeError> {
    let (token, hint) = match config.console_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => (token.to_string(), "the one serve was given".to_string()),
        None => {
            let path = config.data_dir.join(CONSOLE_TOKEN_FILE);
            let token = match std::fs::read_to_string(&path) {
                Ok(kept) if !kept.trim().is_empty() => kept.trim().to_string(),
                Ok(_) => write_console_token(&path)?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    write_console_token(&path)?
                }
                Err(error) => return Err(error.into()),
            };
            (token, format!("in {}", path.display()))
        }
    };
    tracing::info!(
        "quality console: {issuer}/console/ (token {hint}; open /console/?token=TOKEN once)"
    );
    let hosts = crate::local::url_host(issuer).into_iter().collect();
    Ok(crate::console::Access::new(
        &token,
        hint,
        config.console_open,
        hosts,
    ))
}

fn write_console_token(path: &std::path::Path) -> Result<String, ServeError> {
    let token = crate::identity::random_token(24);
    // Owner-only, as every file of the data directory (the umask is 077 by now).
    std::fs::write(path, format!("{token}\n"))?;
    Ok(token)
}

/// Runs the server until `shutdown` resolves; flushes before returning.
pub async fn serve(
    config: ServeConfig,
    specs: crate::Contracts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.dev_mint_scopes && !config.listen.ip().is_loopback() {
        return Err(ServeError::Config(format!(
            "--dev-mint-scopes lets anyone mint the `authenticated` scope: it is for development \
             on loopback only, not for {}",
            config.listen
        )));
    }
    if config.console_open && !config.listen.ip().is_loopback() {
        return Err(ServeError::Config(format!(
            "--console-open opens the console without its token to this machine only: it is \
             for development on loopback, not for {}",
            config.listen
        )));
    }
    crate::data_dir::make_private(&config.data_dir)?;
    let lake = Arc::new(Lake::open(&config.data_dir).await?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            listen: config.listen,
            source,
        })?;
    let local = listener.local_addr()?;
    let issuer = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let issuer = issuer.trim_end_matches('/').to_string();
    // The dev identity provider issues tokens for every contract that trusts it.
    let mut dev_audiences: Vec<String> = specs
        .iter()
        .map(|c| &c.manifest().ingest.auth)
        .filter(|a| a.issuer == Issuer::Dev)
        .map(|a| a.audience.clone())
        .collect();
    dev_audiences.sort();
    dev_audiences.dedup();
    let data_dir = config.data_dir.clone();
    let guests = config.guests;
    let dev = {
        let issuer = issuer.clone();
        // RSA key generation is CPU work: keep it off the async workers.
        Arc::new(
            tokio::task::spawn_blocking(move || {
                DevIdentity::open(&data_dir, issuer, dev_audiences, guests)
            })
            .await
            .map_err(std::io::Error::other)??,
        )
    };

    let mut contracts = Vec::new();
    let mut committed = HashMap::new();
    let mut maintained = Vec::new();
    for spec in specs.iter().copied() {
        let manifest = spec.manifest();
        let events_definition = manifest.events_table();
        let events_table = lake.ensure_table(&events_definition).await?;
        // A compatible contract change (new optional fields) evolves the table in place; an
        // incompatible one stops the start with the reason.
        let added = lake.evolve(&events_table, &events_definition).await?;
        if !added.is_empty() {
            tracing::info!(table = %events_table, ?added, version = %manifest.version, "added columns for the new contract version");
        }
        let quarantine_definition = manifest.quarantine_table();
        let quarantine_table = lake.ensure_table(&quarantine_definition).await?;
        maintained.push((events_table.clone(), events_definition.properties.clone()));
        maintained.push((quarantine_table.clone(), quarantine_definition.properties));
        committed.insert(
            events_table.clone(),
            lake.committed_lsn(&events_table).await?,
        );
        committed.insert(
            quarantine_table.clone(),
            lake.committed_lsn(&quarantine_table).await?,
        );
        let quarantine_schema = Arc::new(lake.arrow_schema(&quarantine_table).await?);
        let auth = &manifest.ingest.auth;
        let verifier = match &auth.issuer {
            Issuer::Dev => Verifier::new(
                issuer.clone(),
                auth.audience.clone(),
                KeySource::Dev(dev.clone()),
            ),
            Issuer::Url(external) => {
                let jwks = auth
                    .jwks_url
                    .clone()
                    .unwrap_or_else(|| format!("{external}/.well-known/jwks.json"));
                Verifier::new(
                    external.clone(),
                    auth.audience.clone(),
                    KeySource::remote(jwks),
                )
            }
        };
        contracts.push(ContractState {
            spec,
            manifest,
            verifier,
            events_table,
            quarantine_table,
            buffers: Mutex::new(Buffers {
                parser: Parser::new(),
                events: spec.event_buffer(),
                quarantine: QuarantineBatch::new(quarantine_schema, &manifest.version),
                last_lsn: 0,
            }),
            unsent_events: Mutex::new(Vec::new()),
            unsent_quarantine: Mutex::new(Vec::new()),
        });
    }

    let wal_dir = config.data_dir.join("wal");
    let records = wal::replay(&wal_dir)?;
    let highest = records
        .iter()
        .map(|r| r.lsn)
        .chain(committed.values().copied())
        .max()
        .unwrap_or(0);
    let wal = Wal::open(&wal_dir, highest + 1)?;
    let metrics = Metrics::new();
    let console = Arc::new(Console::new(
        contracts.iter().map(|c| ServedContract {
            manifest: c.manifest,
            events_table: c.events_table.clone(),
            quarantine_table: c.quarantine_table.clone(),
        }),
        lake.clone(),
        &metrics,
        console_access(&config, &issuer)?,
    ));
    let state = Arc::new(AppState {
        contracts,
        dev,
        wal,
        next_lsn: Mutex::new(highest + 1),
        last_assigned: AtomicU64::new(highest),
        metrics,
        flush_now: Notify::new(),
        commit_rows: config.commit_rows,
        body_timeout: config.body_timeout,
        batches: tokio::sync::Semaphore::new(config.concurrent_batches.max(1)),
        dev_mint_scopes: config.dev_mint_scopes,
        guest_logins: per_minute_quota(config.guests.new_per_minute, config.guests.burst)
            .map(RateLimiter::keyed),
        token_renewals: per_minute_quota(
            config.guests.renewals_per_minute,
            config.guests.renewal_burst,
        )
        .map(RateLimiter::keyed),
        gate: std::sync::RwLock::new(()),
        wal_dir: wal_dir.clone(),
        console,
    });
    let replayed = replay(&state, &records, &committed)?;
    // Records logged again must be durable before a commit could pass the ones they replace.
    if let Some(ack) = replayed.relogged {
        wal::acknowledged(ack.await)?;
    }
    let replayed = replayed.count;
    if replayed > 0 {
        tracing::info!(
            replayed,
            "replaying logged events that were not committed yet"
        );
    }
    if let Some(safe) = flush(&state, &lake).await {
        wal::truncate(&wal_dir, safe)?;
    }
    // Everything logged before this start is in the lake now; from here on the console
    // counts live, and reads what came before from the lake.
    state.console.load_history(now_micros());

    // Stopping the flusher is a request, not an abort: a commit cut off midway would leave its
    // events out of both the table and the buffers until the next start replays them.
    let (stop_flusher, mut flusher_stopped) = tokio::sync::watch::channel(false);
    let mut maintainer =
        crate::maintenance::Maintainer::new(config.maintenance, maintained, &state.metrics);
    let flusher = {
        let state = state.clone();
        let lake = lake.clone();
        let wal_dir = wal_dir.clone();
        let interval = config.commit_interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = state.flush_now.notified() => {}
                    _ = flusher_stopped.changed() => break,
                }
                if let Some(safe) = flush(&state, &lake).await
                    && let Err(error) = wal::truncate(&wal_dir, safe)
                {
                    tracing::warn!(%error, "cannot truncate the write-ahead log");
                }
                if let Ok(bytes) = wal::size(&wal_dir) {
                    state
                        .metrics
                        .wal_bytes
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
                // Between commits, in this task: maintenance never runs beside a commit of
                // ours, and events keep being acknowledged (into the log) while it runs.
                maintainer.run_if_due(&lake).await;
                // Forget addresses whose quota has refilled: the limiter's memory follows the
                // clients of the last minute, not every client ever seen.
                for limiter in [&state.guest_logins, &state.token_renewals]
                    .into_iter()
                    .flatten()
                {
                    limiter.retain_recent();
                }
            }
        })
    };

    tracing::info!(%local, %issuer, contracts = state.contracts.len(), "serving");
    for contract in &state.contracts {
        tracing::info!(
            contract = contract.manifest.name.as_str(),
            route = contract.manifest.ingest.route.as_str(),
            batch_route = contract.manifest.ingest.batch_route.as_deref().unwrap_or("-"),
            table = %contract.events_table,
            "route"
        );
    }
    let events: Arc<dyn crate::http::ConnectionEvents> = state.clone();
    crate::http::serve(
        listener,
        router(state.clone(), config.cors.clone()),
        config.connections,
        events,
        shutdown,
        config.body_timeout,
    )
    .await;
    let _ = stop_flusher.send(true);
    if let Err(error) = flusher.await {
        tracing::error!(%error, "the flusher failed");
    }
    // Graceful shutdown: everything acknowledged goes to the tables now.
    if let Some(safe) = flush(&state, &lake).await {
        wal::truncate(&wal_dir, safe)?;
    }
    tracing::info!("stopped");
    Ok(())
}
