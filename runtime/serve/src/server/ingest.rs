use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contract_support::Verdict;
use contract_support::manifest::Manifest;
use serde_json::json;

use crate::identity::AuthError;
use crate::wal::{self};

use super::state::{AppState, now_micros};
use crate::judge::{Caller, caller_of, max_body_bytes};
use contract_judge::answer::{self, SUCCESS_BODY};
use contract_judge::batch::{BatchFormat, split_batch};

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
    contract_judge::batch::check_content_type(content_type(headers), batch)
        .map_err(|text| message(StatusCode::UNSUPPORTED_MEDIA_TYPE, text))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default())
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
/// make the server hold an upload. A refusal is a lingering close (the body is thrown away,
/// never kept); otherwise the body comes back, to be read within the limit.
pub(crate) async fn admit(
    state: &AppState,
    index: usize,
    headers: &HeaderMap,
    batch: bool,
    body: Body,
) -> Result<(crate::identity::Claims, Body), Response> {
    let admitted = match authenticate(state, index, headers).await {
        Ok(claims) => check_content_type(headers, batch).map(|()| claims),
        Err(response) => Err(response),
    };
    match admitted {
        Ok(claims) => Ok((claims, body)),
        Err(response) => Err(refuse_unread(body, response)),
    }
}

pub(crate) async fn ingest_one(
    state: Arc<AppState>,
    index: usize,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = now_micros();
    let (claims, body) = match admit(&state, index, &headers, false, body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
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
    let caller = caller_of(&claims, manifest, &headers);
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
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                SUCCESS_BODY,
            )
                .into_response();
            response.headers_mut().insert(
                "x-contract-verdict",
                HeaderValue::from_static(verdict.as_str()),
            );
            if let Some(codes) = answer::violation_codes(&violations)
                && let Ok(value) = HeaderValue::from_str(&codes)
            {
                response
                    .headers_mut()
                    .insert("x-contract-violations", value);
            }
            response
        }
        Verdict::Reject => (
            StatusCode::BAD_REQUEST,
            axum::Json(answer::rejected(manifest, &request_id, &violations)),
        )
            .into_response(),
    }
}

fn batch_format(headers: &HeaderMap) -> BatchFormat {
    contract_judge::batch::batch_format(content_type(headers))
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
    let (claims, body) = match admit(&state, index, &headers, true, body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let manifest = state.contracts[index].manifest;
    // Batches wait their turn: each holds its body and its answer in memory.
    let Ok(_turn) = state.batches.acquire().await else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let limit = contract_judge::max_batch_bytes(manifest);
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
    let caller = caller_of(&claims, manifest, &headers);
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
    let (body, ack) = match judged {
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
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A batch's answer, and the log's acknowledgement of the whole batch.
pub(crate) type BatchJudged = (
    serde_json::Value,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
);

/// Judges, buffers and logs a batch; its answer is the shared judge's.
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
        .map(|i| answer::batch_item_id(&request_id, i))
        .collect();
    let (verdicts, ack) = state.judge(index, &events, &ids, received, caller)?;
    Ok((answer::batch(&request_id, &verdicts), ack))
}
