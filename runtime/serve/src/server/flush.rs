use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iceberg::TableIdent;

use crate::lake::Lake;
use crate::wal;

use super::config::ServeError;
use super::rebuffer::rebuffer;
use super::state::{AppState, ContractState};

/// Commits every contract's buffered events and quarantined rows. Returns the LSN below
/// which everything is committed (for log truncation), or None when a commit failed.
pub(crate) async fn flush(state: &AppState, lake: &Lake) -> Option<u64> {
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
    if rebuilt(state, lake).await {
        drop(taken);
        return None;
    }
    for (contract, (events, quarantine, lsn)) in state.contracts.iter().zip(taken) {
        state
            .metrics
            .buffered
            .with_label_values(&[contract.manifest.name.as_str()])
            .set(0);
        // Outside the contract's lock: personal values are rewritten (#23) before any file
        // holds them, then (upsert) one row per key is kept: less to hold and to look up.
        let keys = state.pii_keys.as_deref();
        let events = match events.map(|batch| {
            let batch = crate::privacy::pseudonymise(batch, contract.manifest, keys)?;
            match contract.manifest.upsert() {
                Some(upsert) => crate::upsert::latest_per_key(&batch, upsert.key, upsert.latest_by),
                None => Ok(batch),
            }
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
        all_ok &= commit_contract(state, lake, contract, events, quarantine, lsn).await;
    }
    all_ok.then_some(safe_point)
}

/// Commits one contract's rows to both its tables; a failure of either is counted for its
/// `commit_failures` alerts (#24).
async fn commit_contract(
    state: &AppState,
    lake: &Lake,
    contract: &ContractState,
    events: Option<arrow_array::RecordBatch>,
    quarantine: Option<arrow_array::RecordBatch>,
    lsn: u64,
) -> bool {
    let events_table = &contract.events_table;
    let upsert = contract.manifest.upsert();
    let committed = commit(state, lake, events_table, upsert, &contract.unsent_events, events, lsn)
        .await
        // Both tables are tried, whatever the first did.
        & commit(
            state,
            lake,
            &contract.quarantine_table,
            None,
            &contract.unsent_quarantine,
            quarantine,
            lsn,
        )
        .await;
    if !committed {
        state
            .metrics
            .commit_failures
            .with_label_values(&[contract.manifest.name.as_str()])
            .inc();
    }
    committed
}

/// After a failed write since the last flush, or a rebuild that failed, rebuilds the buffers
/// (and the dedup index) from the log: true when it did (or tried), and nothing may be
/// committed this round. Called after the buffers were taken: the rebuild replaces them.
async fn rebuilt(state: &AppState, lake: &Lake) -> bool {
    if !(state.wal.take_failure() || state.rebuild_needed.swap(false, Ordering::AcqRel)) {
        return false;
    }
    match rebuild_from_log(state, lake).await {
        Ok(kept) => tracing::warn!(
            kept,
            "a log write failed: the buffers were rebuilt from the log"
        ),
        Err(error) => {
            state.rebuild_needed.store(true, Ordering::Release);
            tracing::error!(%error, "cannot rebuild the buffers from the log; retrying with the next flush");
        }
    }
    true
}

/// Cuts the log below `safe` (everything up to it is committed). The deduplication journals
/// take the ids of the records it drops first: an id acknowledged within the window is always
/// in the journal or in the log.
pub(crate) fn truncate_log(state: &AppState, safe: u64) -> Result<(), ServeError> {
    let now = super::state::now_seconds();
    for contract in &state.contracts {
        if let Some(dedup) = &contract.dedup {
            dedup.persist_through(safe, now)?;
            state
                .metrics
                .dedup
                .ids
                .with_label_values(&[contract.manifest.name.as_str()])
                .set(i64::try_from(dedup.len()).unwrap_or(i64::MAX));
            state
                .metrics
                .dedup
                .bytes
                .with_label_values(&[contract.manifest.name.as_str()])
                .set(i64::try_from(dedup.allocated_bytes()).unwrap_or(i64::MAX));
        }
    }
    wal::truncate(&state.wal_dir, safe)?;
    Ok(())
}

/// Throws away what is buffered and buffers again what the log holds above each table's
/// committed LSN: the events of a failed write are gone, everything acknowledged is back.
pub(crate) async fn rebuild_from_log(state: &AppState, lake: &Lake) -> Result<usize, ServeError> {
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
        // The ids of the failed write go too: only what the log and the journals hold counts.
        for contract in &state.contracts {
            if let Some(dedup) = &contract.dedup {
                dedup.forget_unjournaled();
                dedup.load_log(contract.manifest, &records);
            }
        }
        let rebuffered = rebuffer(state, &records, &committed)?;
        if let Some(ack) = rebuffered.relogged {
            wal::acknowledged(ack.blocking_recv())?;
        }
        Ok(rebuffered.count)
    })
}

/// Commits `batch` together with any batches an earlier commit failed to write, recording
/// `lsn`. On failure everything goes back to `unsent` for the next flush: a later commit must
/// never record an LSN above rows that are not in the table, or a restart would skip them.
/// An upsert table's commit replaces the versions it supersedes (upsert.rs).
pub(crate) async fn commit(
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
