//! `contract-runtime serve`: the local ingest stack on one machine, arranged by concern.
//!
//! Request path: authenticate (JWT) → check size and content type → judge the event with the
//! generated validator (`crate::judge`) and buffer it under the contract's lock
//! ([`state`]) → append to the write-ahead log → wait for the group fsync → answer
//! ([`ingest`]). A background flusher ([`flush`]) commits the buffered events to Iceberg every
//! `commit_interval` (or sooner when `commit_rows` pile up), recording the highest LSN in each
//! snapshot; at start ([`startup`]), log records above a table's LSN are buffered again
//! ([`rebuffer`]), so an acknowledged event lands exactly once.
//!
//! - [`config`]: `ServeConfig`, `ServeError`;
//! - [`startup`]: the state built from the contracts, the lake and the log;
//! - [`state`]: what the handlers and the flusher share; buffering and logging a group of events;
//! - [`ingest`]: the ingest routes (single and batch): admission before the body, body reading;
//! - [`identity_routes`]: guest login, refresh, JWKS, OpenID configuration;
//! - [`router`]: the routes, CORS around the API (not the console), `/metrics`;
//! - [`flush`]: commits, retries, the rebuild after a failed log write;
//! - [`rebuffer`]: the start-up re-buffer of logged, uncommitted events.

pub(crate) mod config;
pub(crate) mod erasure;
pub(crate) mod flush;
pub(crate) mod identity_routes;
pub(crate) mod ingest;
pub(crate) mod rebuffer;
pub(crate) mod router;
pub(crate) mod startup;
pub(crate) mod state;

pub use config::{ServeConfig, ServeError};
pub use startup::CONSOLE_TOKEN_FILE;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::lake::Lake;
use crate::maintenance::Maintainer;
use crate::wal;

use flush::{flush, truncate_log};
use router::router;
use state::AppState;

/// Runs the server until `shutdown` resolves; flushes before returning.
pub async fn serve(
    config: ServeConfig,
    specs: crate::Contracts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    startup::check_switches(&config)?;
    crate::data_dir::make_private(&config.data_dir)?;
    // Held while serving: `forget` edits the log and the guest store only while no serve runs.
    let _lock = crate::data_dir::DataDirLock::take(&config.data_dir).map_err(ServeError::Config)?;
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
        .unwrap_or_else(|| format!("http://{local}"))
        .trim_end_matches('/')
        .to_string();
    let started = startup::start(&config, specs, &lake, &issuer).await?;
    let state = started.state;
    let maintainer = Maintainer::new(config.maintenance, started.maintained, &state.metrics);
    let flusher = Flusher::spawn(&state, &lake, config.commit_interval, maintainer);
    let alerting = spawn_alerts(&state, config.alerts.clone());
    startup::log_routes(&state, local, &issuer);
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
    alerting.abort();
    flusher.stop().await;
    // Graceful shutdown: everything acknowledged goes to the tables now.
    if let Some(safe) = flush(&state, &lake).await {
        truncate_log(&state, safe)?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Evaluates the contracts' `quality.alerts` over `/metrics`' counters (alerts.rs).
fn spawn_alerts(
    state: &Arc<AppState>,
    settings: crate::alerts::AlertSettings,
) -> tokio::task::JoinHandle<()> {
    let manifests = state.contracts.iter().map(|c| c.manifest).collect();
    let reader = state.clone();
    crate::alerts::spawn(
        manifests,
        move |contract| crate::alerts::counts(&reader.metrics, contract),
        state.metrics.alert_firing.clone(),
        state.console.alert_board(),
        settings,
    )
}

/// The background task that commits every interval (or when asked), then maintains.
struct Flusher {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Flusher {
    fn spawn(
        state: &Arc<AppState>,
        lake: &Arc<Lake>,
        interval: Duration,
        mut maintainer: Maintainer,
    ) -> Flusher {
        // Stopping the flusher is a request, not an abort: a commit cut off midway would leave
        // its events out of both the table and the buffers until the next start re-buffers them.
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (state, lake) = (state.clone(), lake.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = state.flush_now.notified() => {}
                    _ = stopped.changed() => break,
                }
                flush_round(&state, &lake, &state.wal_dir).await;
                // Between commits, in this task: maintenance never runs beside a commit of
                // ours, and events keep being acknowledged (into the log) while it runs.
                maintainer.run_if_due(&lake).await;
                erasure::run_erasures(&state, &lake).await;
                // Forget addresses whose quota has refilled: the limiters' memory follows the
                // clients of the last minute, not every client ever seen.
                for limiter in [&state.guest_logins, &state.token_renewals]
                    .into_iter()
                    .flatten()
                {
                    limiter.retain_recent();
                }
            }
        });
        Flusher { stop, task }
    }

    /// Asks the flusher to stop after its current round, and waits for it.
    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the flusher failed");
        }
    }
}

/// One flush: commit, cut the log below what is committed, report the log's size.
async fn flush_round(state: &AppState, lake: &Lake, wal_dir: &Path) {
    if let Some(safe) = flush(state, lake).await
        && let Err(error) = truncate_log(state, safe)
    {
        tracing::warn!(%error, "cannot truncate the write-ahead log");
    }
    if let Ok(bytes) = wal::size(wal_dir) {
        state
            .metrics
            .wal_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
