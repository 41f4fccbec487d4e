use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contract_support::manifest::Manifest;

use crate::identity::AuthError;
use crate::wal::{self};

use super::state::{AppState, Judged, now_micros};
use crate::judge::{Caller, caller_of, max_body_bytes};
use contract_judge::answer;
use contract_judge::batch::BatchFormat;
use contract_judge::door::{self, Answer, NotStored, Refusal};

/// A door's answer as an HTTP response: the same bytes the AWS edge function sends.
pub(crate) fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

pub(crate) fn message(status: StatusCode, text: impl Into<String>) -> Response {
    respond(Answer::message(status.as_u16(), text))
}

/// A refusal before judging, counted against its limit.
fn refuse(state: &AppState, manifest: &Manifest, refusal: Refusal) -> Response {
    if let Some(limit) = refusal.limit() {
        state.metrics.limited.with_label_values(&[limit]).inc();
    }
    respond(refusal.answer(manifest))
}

/// The answer to events the log could not store: try again later (nothing was kept).
pub(crate) fn unavailable(state: &AppState, manifest: &Manifest) -> Response {
    // The buffered rows of a failed write must not reach the tables: rebuild from the log.
    state.flush_now.notify_one();
    respond(Refusal::Unavailable.answer(manifest))
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
            Err(respond(Refusal::Unauthorized.answer(contract.manifest)))
        }
        Err(AuthError::Forbidden(reason)) => {
            tracing::debug!(contract = contract.manifest.name.as_str(), %reason, "forbidden");
            state
                .metrics
                .unauthorized
                .with_label_values(&[contract.manifest.name.as_str(), "403"])
                .inc();
            Err(respond(Refusal::Forbidden.answer(contract.manifest)))
        }
    }
}

/// 415 for a content type that is not JSON (absent counts as JSON, as API Gateway assumes).
fn check_content_type(
    state: &AppState,
    index: usize,
    headers: &HeaderMap,
    batch: bool,
) -> Result<(), Response> {
    door::check_content_type(content_type(headers), batch)
        .map_err(|refusal| refuse(state, state.contracts[index].manifest, refusal))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default())
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
        Ok(claims) => check_content_type(state, index, headers, batch).map(|()| claims),
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
        respond(
            Refusal::TooLarge {
                batch: false,
                limit,
            }
            .answer(manifest),
        )
    })
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    let caller = caller_of(&claims, manifest, &headers);
    let ids = [request_id.clone()];
    let judged = match state.judge(index, &[&body], &ids, received, &caller) {
        Ok(judged) => judged,
        Err(error) => {
            tracing::error!(%error, "cannot log the event");
            return unavailable(&state, manifest);
        }
    };
    let Judged {
        mut verdicts,
        ack,
        retries,
    } = judged;
    if !matches!(ack.await, Ok(Ok(()))) {
        return unavailable(&state, manifest);
    }
    // A retry of an event still being written is answered once it is, as it is.
    if !state
        .settle_retries(index, &mut verdicts, &retries)
        .await
        .is_empty()
    {
        return respond(Refusal::Unavailable.answer(manifest));
    }
    let Some((verdict, violations)) = verdicts.pop() else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
    };
    respond(door::single(manifest, &request_id, verdict, &violations))
}

fn batch_format(headers: &HeaderMap) -> BatchFormat {
    contract_judge::batch::batch_format(content_type(headers))
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
        respond(Refusal::TooLarge { batch: true, limit }.answer(manifest))
    })
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let caller = caller_of(&claims, manifest, &headers);
    let format = batch_format(&headers);
    // Splitting and judging are CPU work: off the async workers, so health checks and small
    // requests are not held up behind a large batch. The body is split once, here.
    let judged = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            door::events_of(manifest, &body, format)
                .map(|events| judge_batch(&state, index, &events, received, &caller))
        })
        .await
    };
    let (request_id, judged) = match judged {
        Ok(Ok(Ok(judged))) => judged,
        Ok(Err(refusal)) => return refuse(&state, manifest, refusal),
        Ok(Ok(Err(error))) => {
            tracing::error!(%error, "cannot log the batch");
            return unavailable(&state, manifest);
        }
        Err(error) => {
            tracing::error!(%error, "the batch task failed");
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed");
        }
    };
    let Judged {
        mut verdicts,
        ack,
        retries,
    } = judged;
    // The batch is logged all or nothing: an error means none of it was kept.
    if !matches!(ack.await, Ok(Ok(()))) {
        return unavailable(&state, manifest);
    }
    // Retries of events still being written are answered once they are; an event whose
    // earlier copy was not written is answered failed, as an unstored one (clients resend it).
    let unstored: Vec<NotStored> = state
        .settle_retries(index, &mut verdicts, &retries)
        .await
        .into_iter()
        .map(|index| NotStored {
            index,
            error: "retry".into(),
            message: "an earlier copy of this event was not stored: send it again".into(),
        })
        .collect();
    respond(door::batch(&request_id, &verdicts, &unstored))
}

/// Judges, buffers and logs a batch's events, under one request id.
pub(crate) fn judge_batch(
    state: &AppState,
    index: usize,
    events: &[&[u8]],
    received: i64,
    caller: &Caller,
) -> Result<(String, Judged), wal::WalError> {
    let request_id = uuid::Uuid::now_v7().to_string();
    let ids: Vec<String> = (0..events.len())
        .map(|i| answer::batch_item_id(&request_id, i))
        .collect();
    // The log keeps the batch whole or not at all: no event of an answered batch is unstored.
    let judged = state.judge(index, events, &ids, received, caller)?;
    Ok((request_id, judged))
}
