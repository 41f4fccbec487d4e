//! `contract-runtime serve`: the local ingest stack on one machine.
//!
//! Request path: authenticate (JWT) → check size and content type → validate with the
//! generated validator and buffer the event (under the contract's lock) → append to the
//! write-ahead log → wait for the group fsync → answer. A background flusher commits the
//! buffered events to Iceberg every `commit_interval` (or sooner when `commit_rows` pile up),
//! recording the highest LSN in each snapshot; on start, log records above a table's LSN are
//! replayed, so an acknowledged event lands exactly once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contract_support::json::Parser;
use contract_support::manifest::{Issuer, Manifest};
use contract_support::{AnyContract, Context, Enrichment, EventBuffer, Verdict, Violation};
use iceberg::TableIdent;
use serde_json::json;
use tokio::sync::Notify;

use crate::identity::{AuthError, DevIdentity, KeySource, LoginError, Verifier};
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
}

/// A judged event: its verdict, its violations, and the log's durability acknowledgement.
type Judged = (
    Verdict,
    Vec<Violation>,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
);

const SUCCESS_BODY: &str = "\"Successfully added event\"";

fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    response
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    cors((status, axum::Json(json!({ "message": text.into() }))).into_response())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl AppState {
    /// Validates, buffers and logs one event; returns its verdict, violations and the log ack.
    fn judge(
        &self,
        index: usize,
        body: &[u8],
        received_micros: i64,
        request_id: &str,
        claims: Option<&crate::identity::Claims>,
    ) -> Result<Judged, wal::WalError> {
        let state = &self.contracts[index];
        let manifest = state.manifest;
        let string_claims: Vec<(&str, &str)> = claims
            .map(|c| {
                c.extra
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        let enrichment = Enrichment {
            ingest_time_micros: received_micros,
            contract_version: &manifest.version,
            request_id,
            jwt_sub: claims.map(|c| c.sub.as_str()),
            jwt_claims: &string_claims,
        };
        let ctx = Context {
            ingest_time_micros: received_micros,
        };
        let mut buffers = state.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let Buffers {
            parser,
            events,
            quarantine,
            last_lsn,
        } = &mut *buffers;
        let (verdict, violations) = events.validate_into(parser, body, &ctx, &enrichment);
        if verdict != Verdict::Accept {
            quarantine.push(Row {
                received_micros,
                request_id: request_id.to_string(),
                verdict,
                violations: violations.clone(),
                raw_payload: String::from_utf8_lossy(body).into_owned(),
                player_id: claims.map(|c| c.sub.clone()),
            });
        }
        let buffered = events.len() + quarantine.len();
        // The log lock nests inside the contract lock: a contract's records get increasing
        // LSNs in the order they were buffered, which the commit LSN relies on.
        let ack = {
            let mut next = self.next_lsn.lock().unwrap_or_else(|p| p.into_inner());
            let lsn = *next;
            *next += 1;
            *last_lsn = lsn;
            self.last_assigned.store(lsn, Ordering::Release);
            self.wal.append(Record {
                lsn,
                contract: manifest.name.clone(),
                received_micros,
                request_id: request_id.to_string(),
                player_id: claims.map(|c| c.sub.clone()),
                body: body.to_vec(),
            })?
        };
        drop(buffers);
        self.metrics
            .buffered
            .with_label_values(&[manifest.name.as_str()])
            .set(buffered as i64);
        if buffered >= self.commit_rows {
            self.flush_now.notify_one();
        }
        self.metrics.record(&manifest.name, verdict, &violations);
        Ok((verdict, violations, ack))
    }
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

fn too_large(manifest: &Manifest) -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body exceeds the limit of {} bytes of contract {}",
            manifest.ingest.max_body_bytes, manifest.name
        ),
    )
}

fn max_body_bytes(manifest: &Manifest) -> usize {
    usize::try_from(manifest.ingest.max_body_bytes).unwrap_or(usize::MAX)
}

async fn ingest_one(
    state: Arc<AppState>,
    index: usize,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let received = now_micros();
    let claims = match authenticate(&state, index, &headers).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let manifest = state.contracts[index].manifest;
    let body = match body {
        Ok(body) => body,
        Err(_) => return too_large(manifest),
    };
    if body.len() > max_body_bytes(manifest) {
        return too_large(manifest);
    }
    if let Err(response) = check_content_type(&headers, false) {
        return response;
    }
    let request_id = uuid::Uuid::now_v7().to_string();
    let (verdict, violations, ack) =
        match state.judge(index, &body, received, &request_id, Some(&claims)) {
            Ok(judged) => judged,
            Err(error) => {
                tracing::error!(%error, "cannot log the event");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
            }
        };
    match ack.await {
        Ok(Ok(())) => {}
        _ => return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed"),
    }
    match verdict {
        // Quarantined events are acknowledged: the producer did nothing a retry would fix.
        Verdict::Accept | Verdict::Quarantine => {
            let mut response = cors((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], SUCCESS_BODY).into_response());
            response.headers_mut().insert("x-contract-verdict", HeaderValue::from_static(verdict.as_str()));
            if !violations.is_empty() {
                let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
                if let Ok(value) = HeaderValue::from_str(&codes.join(",")) {
                    response.headers_mut().insert("x-contract-violations", value);
                }
            }
            response
        }
        Verdict::Reject => cors(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "message": format!("the event breaks contract {} {}", manifest.name, manifest.version),
                    "request_id": request_id,
                    "violations": violations_json(&violations),
                })),
            )
                .into_response(),
        ),
    }
}

/// Splits a batch body into events: a JSON array, or newline-delimited JSON.
fn split_batch(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(body)
            .map_err(|e| format!("the batch is not a JSON array: {e}"))?;
        Ok(items
            .into_iter()
            .map(|raw| raw.get().as_bytes().to_vec())
            .collect())
    } else {
        Ok(body
            .split(|b| *b == b'\n')
            .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
            .map(<[u8]>::to_vec)
            .collect())
    }
}

async fn ingest_batch(
    state: Arc<AppState>,
    index: usize,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let received = now_micros();
    let claims = match authenticate(&state, index, &headers).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let manifest = state.contracts[index].manifest;
    let Ok(body) = body else {
        return too_large(manifest);
    };
    if let Err(response) = check_content_type(&headers, true) {
        return response;
    }
    let events = match split_batch(&body) {
        Ok(events) => events,
        Err(error) => return message(StatusCode::BAD_REQUEST, error),
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    let mut results = Vec::with_capacity(events.len());
    let mut acks = Vec::with_capacity(events.len());
    let (mut accepted, mut quarantined, mut rejected) = (0usize, 0usize, 0usize);
    for (i, event) in events.iter().enumerate() {
        let event_id = format!("{request_id}-{i}");
        if event.len() > max_body_bytes(manifest) {
            rejected += 1;
            results.push(json!({ "index": i, "verdict": "reject", "violations": [{
                "code": "too_large", "path": "$", "policy": "reject",
                "message": format!("the event exceeds the limit of {} bytes", max_body_bytes(manifest)) }] }));
            continue;
        }
        match state.judge(index, event, received, &event_id, Some(&claims)) {
            Ok((verdict, violations, ack)) => {
                acks.push(ack);
                match verdict {
                    Verdict::Accept => accepted += 1,
                    Verdict::Quarantine => quarantined += 1,
                    Verdict::Reject => rejected += 1,
                }
                results.push(json!({ "index": i, "verdict": verdict, "violations": violations_json(&violations) }));
            }
            Err(error) => {
                tracing::error!(%error, "cannot log the event");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
            }
        }
    }
    for ack in acks {
        if !matches!(ack.await, Ok(Ok(()))) {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
        }
    }
    cors(
        (
            StatusCode::OK,
            axum::Json(json!({
                "request_id": request_id,
                "accepted": accepted,
                "quarantined": quarantined,
                "rejected": rejected,
                "results": results,
            })),
        )
            .into_response(),
    )
}

async fn login_as_guest(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    // Development only: `?scope=authenticated` mints what an identity-provider login would,
    // for contracts that do not admit guests (synth uses it).
    let scope = match query.get("scope").map(String::as_str) {
        None | Some("guest") => "guest",
        Some("authenticated") => "authenticated",
        Some(_) => {
            return cors(
                (
                    StatusCode::BAD_REQUEST,
                    "scope must be guest or authenticated",
                )
                    .into_response(),
            );
        }
    };
    match state.dev.login_as_guest(
        query.get("user_id").map(String::as_str),
        query.get("guest_secret").map(String::as_str),
        scope,
    ) {
        Ok(login) => cors(axum::Json(login).into_response()),
        Err(LoginError::MissingSecret) => {
            cors((StatusCode::BAD_REQUEST, "Missing guest_secret").into_response())
        }
        Err(LoginError::WrongSecret) => {
            cors((StatusCode::UNAUTHORIZED, "Unauthorized").into_response())
        }
    }
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

fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/prod/login-as-guest", get(login_as_guest))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics));
    for (index, contract) in state.contracts.iter().enumerate() {
        // Room above the limit so an oversized body gets our 413 message, not a reset.
        let limit = DefaultBodyLimit::max(
            max_body_bytes(contract.manifest)
                .saturating_mul(2)
                .max(1024),
        );
        let single = move |State(state): State<Arc<AppState>>, headers: HeaderMap, body| {
            ingest_one(state, index, headers, body)
        };
        router = router.route(
            contract.manifest.ingest.route.as_str(),
            post(single).layer(limit),
        );
        if let Some(batch_route) = contract.manifest.ingest.batch_route.as_deref() {
            // A batch may hold many events: allow 100 events' worth.
            let batch_limit = DefaultBodyLimit::max(
                max_body_bytes(contract.manifest)
                    .saturating_mul(100)
                    .min(64 << 20),
            );
            let batch = move |State(state): State<Arc<AppState>>, headers: HeaderMap, body| {
                ingest_batch(state, index, headers, body)
            };
            router = router.route(batch_route, post(batch).layer(batch_limit));
        }
    }
    router.with_state(state)
}

/// Commits every contract's buffered events and quarantined rows. Returns the LSN below
/// which everything is committed (for log truncation), or None when a commit failed.
async fn flush(state: &AppState, lake: &Lake) -> Option<u64> {
    let safe_point = state.last_assigned.load(Ordering::Acquire);
    let mut all_ok = true;
    for contract in &state.contracts {
        let (events, quarantine, lsn) = {
            let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
            let events = (!buffers.events.is_empty()).then(|| buffers.events.finish());
            let quarantine = (!buffers.quarantine.is_empty()).then(|| buffers.quarantine.finish());
            (events, quarantine, buffers.last_lsn)
        };
        state
            .metrics
            .buffered
            .with_label_values(&[contract.manifest.name.as_str()])
            .set(0);
        let events = match events.map(|batch| match contract.manifest.upsert() {
            // Upsert tables get one row per key per commit (see upsert.rs for across commits).
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
            &contract.unsent_events,
            events,
            lsn,
        )
        .await;
        all_ok &= commit(
            state,
            lake,
            &contract.quarantine_table,
            &contract.unsent_quarantine,
            quarantine,
            lsn,
        )
        .await;
    }
    all_ok.then_some(safe_point)
}

/// Commits `batch` together with any batches an earlier commit failed to write, recording
/// `lsn`. On failure everything goes back to `unsent` for the next flush: a later commit must
/// never record an LSN above rows that are not in the table, or a restart would skip them.
async fn commit(
    state: &AppState,
    lake: &Lake,
    table: &TableIdent,
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
        match lake.append(table, batches.clone(), lsn).await {
            Ok(files) => {
                let seconds = started.elapsed().as_secs_f64();
                state
                    .metrics
                    .commit_seconds
                    .with_label_values(&[&table.to_string()])
                    .observe(seconds);
                tracing::info!(%table, rows, files, lsn, seconds, "committed");
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

/// Replays log records newer than each table's committed LSN into the buffers.
fn replay(state: &AppState, records: &[Record], committed: &HashMap<TableIdent, u64>) -> usize {
    let mut replayed = 0;
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
        let enrichment = Enrichment {
            ingest_time_micros: record.received_micros,
            contract_version: &contract.manifest.version,
            request_id: &record.request_id,
            jwt_sub: record.player_id.as_deref(),
            jwt_claims: &[],
        };
        let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let Buffers {
            parser,
            events,
            quarantine,
            last_lsn,
        } = &mut *buffers;
        let events_done = committed.get(&contract.events_table).copied().unwrap_or(0);
        let quarantine_done = committed
            .get(&contract.quarantine_table)
            .copied()
            .unwrap_or(0);
        let (verdict, violations) = if record.lsn > events_done {
            events.validate_into(parser, &record.body, &ctx, &enrichment)
        } else {
            contract.spec.judge(parser, &record.body, &ctx)
        };
        if verdict == Verdict::Accept && record.lsn > events_done {
            replayed += 1;
        }
        if verdict != Verdict::Accept && record.lsn > quarantine_done {
            quarantine.push(Row {
                received_micros: record.received_micros,
                request_id: record.request_id.clone(),
                verdict,
                violations,
                raw_payload: String::from_utf8_lossy(&record.body).into_owned(),
                player_id: record.player_id.clone(),
            });
            replayed += 1;
        }
        *last_lsn = (*last_lsn).max(record.lsn);
    }
    replayed
}

/// Runs the server until `shutdown` resolves; flushes before returning.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let lake = Arc::new(Lake::open(&config.data_dir).await?);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local = listener.local_addr()?;
    let issuer = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let issuer = issuer.trim_end_matches('/').to_string();
    let dev_audience = contract_validators::ALL
        .iter()
        .map(|c| &c.manifest().ingest.auth)
        .find(|a| a.issuer == Issuer::Dev)
        .map_or("gamebackend", |a| a.audience.as_str())
        .to_string();
    let data_dir = config.data_dir.clone();
    let dev = {
        let issuer = issuer.clone();
        // RSA key generation is CPU work: keep it off the async workers.
        Arc::new(
            tokio::task::spawn_blocking(move || DevIdentity::open(&data_dir, issuer, dev_audience))
                .await
                .map_err(std::io::Error::other)??,
        )
    };

    let mut contracts = Vec::new();
    let mut committed = HashMap::new();
    for spec in contract_validators::ALL.iter().copied() {
        let manifest = spec.manifest();
        let events_definition = manifest.events_table();
        let events_table = lake.ensure_table(&events_definition).await?;
        // A compatible contract change (new optional fields) evolves the table in place; an
        // incompatible one stops the start with the reason.
        let added = lake.evolve(&events_table, &events_definition).await?;
        if !added.is_empty() {
            tracing::info!(table = %events_table, ?added, version = %manifest.version, "added columns for the new contract version");
        }
        let quarantine_table = lake.ensure_table(&manifest.quarantine_table()).await?;
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
    let state = Arc::new(AppState {
        contracts,
        dev,
        wal,
        next_lsn: Mutex::new(highest + 1),
        last_assigned: AtomicU64::new(highest),
        metrics: Metrics::new(),
        flush_now: Notify::new(),
        commit_rows: config.commit_rows,
    });
    let replayed = replay(&state, &records, &committed);
    if replayed > 0 {
        tracing::info!(
            replayed,
            "replaying logged events that were not committed yet"
        );
    }
    if let Some(safe) = flush(&state, &lake).await {
        wal::truncate(&wal_dir, safe)?;
    }

    // Stopping the flusher is a request, not an abort: a commit cut off midway would leave its
    // events out of both the table and the buffers until the next start replays them.
    let (stop_flusher, mut flusher_stopped) = tokio::sync::watch::channel(false);
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
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
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
