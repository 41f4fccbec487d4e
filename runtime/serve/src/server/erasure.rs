//! `forget` beside a running `serve` (#23): `POST /admin/forget` (the console's token) queues an
//! erasure; the flusher runs it between commits, where nothing else commits or writes the log:
//!
//! 1. the log starts a new segment, so every record logged before the request is in closed ones;
//! 2. everything buffered is committed (those records are then in the tables);
//! 3. the subjects' rows leave the tables (`forget::erase_tables`), and the files from before
//!    step 3 that nothing references any more are deleted;
//! 4. the log is cut below what is committed: the closed segments, with the subjects' records,
//!    are deleted whole (the dedup journals take their ids first, as at every truncation);
//! 5. the subjects' guests leave the identity provider.
//!
//! Events a subject sends after the request are stored as usual.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;

use contract_support::manifest::Manifest;

use crate::forget::{ForgetError, Receipt, erase_tables, record_is_about};
use crate::lake::Lake;
use crate::wal;

use super::flush::{flush, truncate_log};
use super::state::AppState;

/// The most subjects one request may name.
pub(crate) const MAX_SUBJECTS: usize = 10_000;

/// An erasure waiting for the flusher, and who waits for its receipt.
pub(crate) struct ErasureRequest {
    subjects: Vec<String>,
    reply: oneshot::Sender<Result<Receipt, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgetBody {
    subjects: Vec<String>,
}

/// `POST /admin/forget` with `{"subjects": [ID, ...]}`: answers with the receipt once done.
pub(crate) async fn forget_route(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let subjects = match serde_json::from_slice::<ForgetBody>(&body) {
        Ok(body) => body.subjects,
        Err(error) => {
            return refusal(format!(
                "the body must be {{\"subjects\": [ID, ...]}}: {error}"
            ));
        }
    };
    if subjects.is_empty() || subjects.len() > MAX_SUBJECTS {
        return refusal(format!("give 1 to {MAX_SUBJECTS} subjects"));
    }
    let (reply, receipt) = oneshot::channel();
    if let Ok(mut queue) = state.erasures.lock() {
        queue.push(ErasureRequest { subjects, reply });
    }
    state.flush_now.notify_one();
    match receipt.await {
        Ok(Ok(receipt)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string_pretty(&receipt).unwrap_or_default(),
        )
            .into_response(),
        Ok(Err(error)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "serve is stopping\n").into_response(),
    }
}

fn refusal(text: String) -> Response {
    (StatusCode::BAD_REQUEST, text + "\n").into_response()
}

/// Runs the queued erasures, one after the other (the flusher calls it between commits).
pub(crate) async fn run_erasures(state: &AppState, lake: &Lake) {
    let queued: Vec<ErasureRequest> = match state.erasures.lock() {
        Ok(mut queue) => std::mem::take(&mut *queue),
        Err(_) => return,
    };
    for request in queued {
        let result = erase(state, lake, &request.subjects).await;
        match &result {
            Ok(receipt) => tracing::info!(
                subjects = receipt.subjects,
                log_records = receipt.log_records_removed,
                "forgot data subjects"
            ),
            Err(error) => tracing::error!(%error, "an erasure failed"),
        }
        let _ = request.reply.send(result.map_err(|e| e.to_string()));
    }
}

async fn erase(state: &AppState, lake: &Lake, subjects: &[String]) -> Result<Receipt, ForgetError> {
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // Every record before `rotated` is in a closed segment.
    let rotated = state
        .wal
        .rotate()?
        .await
        .map_err(|_| wal::WalError::Stopped)?
        .map_err(|e| ForgetError::Table {
            table: "the write-ahead log".into(),
            message: e,
        })?;
    let subject_set: HashSet<&str> = subjects.iter().map(String::as_str).collect();
    let manifests: Vec<&'static Manifest> = state.contracts.iter().map(|c| c.manifest).collect();
    let logged = logged_before(&state.wal_dir, rotated, &manifests, &subject_set)?;
    let Some(safe) = flush(state, lake).await else {
        return Err(ForgetError::Busy(
            "a commit failed: nothing was erased; ask again".into(),
        ));
    };
    let since = SystemTime::now();
    let keys = state.pii_keys.as_deref();
    let tables = erase_tables(lake, &manifests, keys, subjects, since).await?;
    truncate_log(state, safe).map_err(|e| ForgetError::Busy(e.to_string()))?;
    let left = logged_before(&state.wal_dir, rotated, &manifests, &subject_set)?;
    if left > 0 {
        return Err(ForgetError::Busy(format!(
            "{left} logged record(s) of the subjects are still in the log: ask again"
        )));
    }
    let guests_removed = state.dev.forget_guests(&subject_set)?;
    Ok(Receipt {
        subjects: subjects.len(),
        started,
        finished: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        tables,
        log_records_removed: logged,
        guests_removed,
    })
}

/// How many logged records below `rotated` are about the subjects.
fn logged_before(
    dir: &std::path::Path,
    rotated: u64,
    manifests: &[&'static Manifest],
    subjects: &HashSet<&str>,
) -> Result<usize, wal::WalError> {
    let records = wal::read_records(dir)?;
    Ok(records
        .iter()
        .filter(|r| r.lsn < rotated)
        .filter(|r| {
            let manifest = manifests.iter().copied().find(|m| m.name == r.contract);
            record_is_about(r, manifest, subjects)
        })
        .count())
}
