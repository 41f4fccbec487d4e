use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contract_support::manifest::Manifest;
use contract_support::{Verdict, Violation};
use serde_json::json;

use crate::identity::AuthError;
use crate::wal::{self};

use super::state::{AppState, now_micros};
use crate::judge::{Caller, max_body_bytes};

pub(crate) const SUCCESS_BODY: &str = "\"Successfully added event\"";

pub(crate) fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": text.into() }))).into_response()
}

/// The answer to events the log could not store: try again later (nothing was kept).
pub(crate) fn unavailable(state: &AppState) -> Response {
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

pub(crate) fn violations_json(violations: &[Violation]) -> serde_json::Value {
    serde_json::to_value(violations).unwrap_or_default()
}

pub(crate) async fn authenticate(
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
pub(crate) fn check_content_type(headers: &HeaderMap, batch: bool) -> Result<(), Response> {
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

pub(crate) fn too_large(what: &str, limit: usize, manifest: &Manifest) -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the {what} exceeds the limit of {limit} bytes of contract {}",
            manifest.name
        ),
    )
}

/// The most a batch body may weigh: its events at their limit, within 16 MiB (a batch is held
/// in memory while it is judged).
pub(crate) fn max_batch_bytes(manifest: &Manifest) -> usize {
    const CEILING: usize = 16 << 20;
    max_body_bytes(manifest)
        .saturating_mul(usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX))
        .min(CEILING)
}

/// An answer given before the request's body was read: the connection is closed after it, so
/// no client reuses a connection with an unread body in it.
pub(crate) fn before_body(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// How long, and how much, a refused request's unread body is still read and thrown away.
pub(crate) const LINGER: Duration = Duration::from_secs(5);
pub(crate) const LINGER_BYTES: usize = 64 << 20;

/// Refuses a request whose body was not read. Its client is most likely still sending it:
/// closing at once would reset the connection under it, and it would see a broken pipe instead
/// of the answer. So the rest is read and thrown away, within [`LINGER`] and [`LINGER_BYTES`]
/// (a lingering close, as web servers do), and then the connection closes. Nothing is kept.
pub(crate) fn refuse_unread(body: Body, response: Response) -> Response {
    tokio::spawn(discard(body));
    before_body(response)
}

pub(crate) async fn discard(body: Body) {
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
pub(crate) async fn read_body(
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
pub(crate) async fn admit(
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

pub(crate) async fn ingest_one(
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
pub(crate) enum BatchFormat {
    Array,
    Lines,
}

pub(crate) fn batch_format(headers: &HeaderMap) -> BatchFormat {
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
pub(crate) fn split_batch(body: &[u8], format: BatchFormat) -> Result<Vec<&[u8]>, String> {
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
pub(crate) const VIOLATIONS_PER_EVENT: usize = 10;

pub(crate) fn batch_result(
    index: usize,
    verdict: Verdict,
    violations: &[Violation],
) -> serde_json::Value {
    let shown = &violations[..violations.len().min(VIOLATIONS_PER_EVENT)];
    let mut result =
        json!({ "index": index, "verdict": verdict, "violations": violations_json(shown) });
    if violations.len() > shown.len() {
        result["more_violations"] = json!(violations.len() - shown.len());
    }
    result
}

/// A batch that does not split, or holds more events than the contract takes, is refused.
fn check_batch_count(
    state: &AppState,
    manifest: &Manifest,
    body: &[u8],
    format: BatchFormat,
) -> Result<(), Response> {
    let max_events = usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX);
    let count = match split_batch(body, format) {
        Ok(events) => events.len(),
        Err(error) => return Err(message(StatusCode::BAD_REQUEST, error)),
    };
    if count > max_events {
        state
            .metrics
            .limited
            .with_label_values(&["batch_events"])
            .inc();
        return Err(message(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the batch has {count} events; contract {} takes at most {max_events} per batch",
                manifest.name
            ),
        ));
    }
    Ok(())
}

pub(crate) async fn ingest_batch(
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
    if let Err(response) = check_batch_count(&state, manifest, &body, batch_format(&headers)) {
        return response;
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

pub(crate) type BatchJudged = (
    String,
    Vec<serde_json::Value>,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
    [usize; 3],
);

pub(crate) fn judge_batch(
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
