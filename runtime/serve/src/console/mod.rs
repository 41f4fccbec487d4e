//! The quality console: a read-only page of `serve` at `/console/` (docs/console.md).
//!
//! - [`live`]: counts per time bucket and the latest bad events per rule, in fixed rings,
//!   fed by the ingest path ([`Console::record`]: counters, plus one copy per bad event);
//! - [`history`]: the same read back from the lake at start, so a restart keeps the page;
//! - [`tables`]: each table's Iceberg state, read from the lake when asked;
//! - [`mask`]: `pii` fields hidden before a payload is shown;
//! - [`access`]: a token always (or `--console-open` for requests straight from this machine),
//!   and a `Host` naming this server;
//! - [`api`] (JSON under `/console/api/`) and [`assets`] (the page, embedded).

pub mod access;
mod api;
mod assets;
mod docs;
pub mod history;
pub mod live;
pub mod mask;
pub mod tables;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use contract_support::manifest::{EnrichmentSource, Manifest, Origin};
use contract_support::{Verdict, Violation};
use iceberg::TableIdent;
use prometheus::{IntGauge, IntGaugeVec};

use crate::lake::Lake;
use crate::metrics::Metrics;
pub use access::Access;
use live::{BadEvent, Live, ShownViolation};

/// How far back the page looks (and the history read at start reaches).
const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// One served contract as the console sees it.
struct Watched {
    manifest: &'static Manifest,
    events_table: TableIdent,
    quarantine_table: TableIdent,
    live: Mutex<Live>,
    /// Milliseconds since the epoch; 0 before the first commit.
    last_commit_ms: AtomicI64,
    /// Retries answered as their original was and not stored again, since this start.
    duplicates: AtomicU64,
    docs_html: OnceLock<String>,
}

/// Whether the history read from the lake at start is in.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct HistoryStatus {
    loaded: bool,
    error: Option<String>,
    /// Events counted from the lake (before this start).
    accepted: u64,
    bad: u64,
}

pub struct Console {
    contracts: Vec<Watched>,
    lake: Arc<Lake>,
    access: Arc<Access>,
    buffered: IntGaugeVec,
    wal_bytes: IntGauge,
    manifests: tables::ManifestCache,
    history: Mutex<HistoryStatus>,
    /// The contracts' alerts as serve's evaluation last left them.
    alerts: Arc<crate::alerts::AlertBoard>,
}

/// A served contract: its manifest and its two tables.
pub struct ServedContract {
    pub manifest: &'static Manifest,
    pub events_table: TableIdent,
    pub quarantine_table: TableIdent,
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Console {
    /// The console of `contracts` (in the server's order: [`Console::record`] takes its index).
    pub fn new(
        contracts: impl IntoIterator<Item = ServedContract>,
        lake: Arc<Lake>,
        metrics: &Metrics,
        access: Access,
    ) -> Console {
        Console {
            contracts: contracts
                .into_iter()
                .map(|c| Watched {
                    manifest: c.manifest,
                    events_table: c.events_table,
                    quarantine_table: c.quarantine_table,
                    live: Mutex::new(Live::default()),
                    last_commit_ms: AtomicI64::new(0),
                    duplicates: AtomicU64::new(0),
                    docs_html: OnceLock::new(),
                })
                .collect(),
            lake,
            access: Arc::new(access),
            buffered: metrics.buffered.clone(),
            wal_bytes: metrics.wal_bytes.clone(),
            manifests: tables::ManifestCache::default(),
            history: Mutex::new(HistoryStatus::default()),
            alerts: Arc::default(),
        }
    }

    /// Where the alert evaluation publishes its states for the page.
    pub fn alert_board(&self) -> Arc<crate::alerts::AlertBoard> {
        self.alerts.clone()
    }

    /// Who may use the console (and `/admin/forget`, guarded the same way).
    pub fn access(&self) -> Arc<Access> {
        self.access.clone()
    }

    /// The ingest path's one call: counts the event, and keeps a copy of a bad one. Called
    /// under the contract's lock, so the console's own lock is never contended by ingest.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        index: usize,
        received_micros: i64,
        request_id: &str,
        verdict: Verdict,
        violations: &[Violation],
        body: &[u8],
        client_version: Option<&str>,
    ) {
        let Some(contract) = self.contracts.get(index) else {
            return;
        };
        let bad = (verdict != Verdict::Accept).then(|| {
            let (payload, truncated) = BadEvent::cut_payload(body);
            BadEvent {
                received_micros,
                request_id: request_id.to_string(),
                verdict,
                violations: violations.iter().map(ShownViolation::from).collect(),
                payload,
                truncated,
                client_version: client_version.map(str::to_string),
                source: "memory",
            }
        });
        let mut live = contract.live.lock().unwrap_or_else(|p| p.into_inner());
        live.count(received_micros, verdict, 1);
        live.count_client_version(client_version, verdict);
        if let Some(bad) = bad {
            live.bad_event(bad);
        }
    }

    /// A commit to `table` succeeded (for "last commit" on the page).
    /// Counts a retry of a stored event (deduplication): answered, not stored again.
    pub fn duplicate(&self, index: usize) {
        if let Some(contract) = self.contracts.get(index) {
            contract.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn committed(&self, table: &TableIdent) {
        let now_ms = now_micros() / 1000;
        for contract in &self.contracts {
            if &contract.events_table == table || &contract.quarantine_table == table {
                contract.last_commit_ms.store(now_ms, Ordering::Relaxed);
            }
        }
    }

    /// Reads the last day from the lake, up to `until_micros` (the moment live counting
    /// began: everything after it is counted by [`Console::record`], so nothing twice).
    /// Runs in the background; the page says when it is in.
    pub fn load_history(self: &Arc<Self>, until_micros: i64) {
        let console = self.clone();
        tokio::spawn(async move {
            let mut status = HistoryStatus::default();
            for contract in &console.contracts {
                if let Err(error) = console
                    .load_contract(contract, until_micros, &mut status)
                    .await
                {
                    tracing::warn!(contract = contract.manifest.name.as_str(), %error, "the console cannot read its history from the lake");
                    status.error = Some(error.to_string());
                }
            }
            status.loaded = true;
            tracing::info!(
                accepted = status.accepted,
                bad = status.bad,
                "console history read from the lake"
            );
            *console.history.lock().unwrap_or_else(|p| p.into_inner()) = status;
        });
    }

    async fn load_contract(
        &self,
        contract: &Watched,
        until_micros: i64,
        status: &mut HistoryStatus,
    ) -> Result<(), history::HistoryError> {
        let since_micros = until_micros - DAY_MICROS;
        let events = self.lake.load(&contract.events_table).await?;
        let quarantine = self.lake.load(&contract.quarantine_table).await?;
        let last = [events.metadata(), quarantine.metadata()]
            .into_iter()
            .filter_map(history::last_commit_ms)
            .max()
            .unwrap_or(0);
        contract.last_commit_ms.fetch_max(last, Ordering::Relaxed);
        let ingest_time = contract
            .manifest
            .events_table()
            .columns
            .into_iter()
            .find(|c| c.origin == Origin::Enrichment(EnrichmentSource::IngestTime));
        let appended = match ingest_time {
            Some(column) => {
                history::ingested_rows(&events, &column.name, since_micros, until_micros).await?
            }
            None => {
                history::appended_rows(events.metadata(), since_micros / 1000, until_micros / 1000)
            }
        };
        {
            let mut live = contract.live.lock().unwrap_or_else(|p| p.into_inner());
            for (micros, rows) in appended {
                live.count(micros, Verdict::Accept, rows);
                status.accepted += u64::from(rows);
            }
        }
        // Streamed into the rings, which keep the latest events per rule: memory follows the
        // rings, not the day's quarantine.
        status.bad +=
            history::for_each_quarantine_row(&quarantine, since_micros, until_micros, |event| {
                let mut live = contract.live.lock().unwrap_or_else(|p| p.into_inner());
                live.count(event.received_micros, event.verdict, 1);
                live.bad_event(event);
            })
            .await?;
        Ok(())
    }

    fn contract(&self, name: &str) -> Option<&Watched> {
        self.contracts.iter().find(|c| c.manifest.name == name)
    }
}

/// The console's routes, guarded by its access rule; merged into `serve`'s router. The guard
/// is a route layer: paths that are not the console's get the server's 404, not its refusal.
pub fn router<S: Clone + Send + Sync + 'static>(console: Arc<Console>) -> Router<S> {
    let access = console.access.clone();
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(assets::index))
        .route("/console/assets/{*file}", get(assets::file))
        .route("/console/api/overview", get(api::overview))
        .route("/console/api/violations", get(api::violations))
        .route("/console/api/events", get(api::events))
        .route("/console/api/tables", get(api::tables))
        .route("/console/api/contracts", get(api::contracts))
        .route_layer(axum::middleware::from_fn_with_state(access, access::guard))
        .with_state(console)
}
