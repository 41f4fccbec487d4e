//! The start-up re-buffer: log records no table has committed are buffered again, each for
//! the table its acknowledgement promised (`wal::route`), so an acknowledged event lands
//! exactly once across crashes and rebuilds.

use std::collections::{HashMap, HashSet};

use contract_support::{Context, Enrichment};
use iceberg::TableIdent;

use crate::quarantine::Row;
use crate::wal::{self, Record};

use super::state::{AppState, Buffers, ContractState};
use crate::judge::{CLIENT_VERSION_KEY, validate};

/// What a re-buffer buffered, and the acknowledgement of the records it logged again
/// (`wal::Route::Relog`): nothing may be committed before that resolves.
pub(crate) struct Rebuffered {
    pub(crate) count: usize,
    pub(crate) relogged: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
}

/// Buffers again the log records newer than each table's committed LSN, each for the table
/// `wal::route` gives it (the verdict it was acknowledged with, when the log holds it).
pub(crate) fn rebuffer(
    state: &AppState,
    records: &[Record],
    committed: &HashMap<TableIdent, u64>,
) -> Result<Rebuffered, wal::WalError> {
    let superseded: HashSet<u64> = records.iter().filter_map(|r| r.supersedes).collect();
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
        let tables = wal::Committed {
            events: committed.get(&contract.events_table).copied().unwrap_or(0),
            quarantine: committed
                .get(&contract.quarantine_table)
                .copied()
                .unwrap_or(0),
        };
        let mut buffers = contract.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let superseded = superseded.contains(&record.lsn);
        let route = route_record(contract, &mut buffers, record, tables, superseded);
        count += follow_route(state, &mut buffers, record, route, &mut relogged);
        buffers.last_lsn = buffers.last_lsn.max(record.lsn);
    }
    let relogged = if relogged.is_empty() {
        None
    } else {
        Some(state.wal.append(relogged)?)
    };
    Ok(Rebuffered { count, relogged })
}

/// Where a logged record goes, judged (when the route needs a judgement) as `serve` judged it
/// when it arrived: at its receipt time, enriched from the claims the log kept.
fn route_record(
    contract: &ContractState,
    buffers: &mut Buffers,
    record: &Record,
    tables: wal::Committed,
    superseded: bool,
) -> wal::Route {
    let ctx = Context {
        ingest_time_micros: record.received_micros,
    };
    let claims: Vec<(&str, &str)> = record
        .claims
        .iter()
        .filter(|(k, _)| k != CLIENT_VERSION_KEY)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let declared = record
        .claims
        .iter()
        .find(|(k, _)| k == CLIENT_VERSION_KEY)
        .map(|(_, v)| v.as_str());
    let client_contract_version = contract_judge::client_version(contract.manifest, declared);
    let enrichment = Enrichment {
        ingest_time_micros: record.received_micros,
        contract_version: &contract.manifest.version,
        request_id: &record.request_id,
        jwt_sub: record.player_id.as_deref(),
        jwt_claims: &claims,
        client_contract_version,
    };
    let Buffers { parser, events, .. } = buffers;
    // An acceptance above the events table's LSN is appended by the judgement itself, and
    // routes to the events table (`wal::route` promises it).
    wal::route(record, tables, superseded, || {
        let buffer = (record.lsn > tables.events).then_some(events);
        validate(
            buffer,
            contract.spec,
            parser,
            &record.body,
            &ctx,
            &enrichment,
        )
    })
}

/// Buffers what `route` says for `record`; returns how many rows it buffered (0 or 1).
fn follow_route(
    state: &AppState,
    buffers: &mut Buffers,
    record: &Record,
    route: wal::Route,
    relogged: &mut Vec<Record>,
) -> usize {
    let row = |verdict, violations| Row {
        received_micros: record.received_micros,
        request_id: record.request_id.clone(),
        verdict,
        violations,
        raw_payload: String::from_utf8_lossy(&record.body).into_owned(),
        player_id: record.player_id.clone(),
    };
    match route {
        wal::Route::Done => 0,
        wal::Route::Events => 1,
        wal::Route::Quarantine(verdict, violations) => {
            buffers.quarantine.push(row(verdict, violations));
            1
        }
        wal::Route::Relog(verdict, violations) => {
            buffers.quarantine.push(row(verdict, violations.clone()));
            let lsn = state.assign_lsn();
            tracing::warn!(contract = %record.contract, lsn = record.lsn, relogged = lsn, verdict = verdict.as_str(), "this build refuses an event acknowledged as accepted and not committed yet: it goes to the quarantine table");
            relogged.push(record.relogged(lsn, verdict, violations));
            buffers.last_lsn = buffers.last_lsn.max(lsn);
            1
        }
    }
}
