//! Start-up: checks the development switches, opens every contract's tables (evolving them
//! for a compatible contract change), sets up the dev identity provider, the verifiers, the
//! log and the console, buffers again what the log holds beyond the tables, and commits it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use contract_support::AnyContract;
use contract_support::json::Parser;
use contract_support::manifest::{Issuer, Manifest};
use governor::{Quota, RateLimiter};
use iceberg::TableIdent;
use tokio::sync::Notify;

use crate::console::{Console, ServedContract};
use crate::dedup::Index;
use crate::identity::{DevIdentity, KeySource, TrustedIssuer, Verifier};
use crate::lake::Lake;
use crate::metrics::Metrics;
use crate::quarantine::QuarantineBatch;
use crate::wal::{self, Record, Wal};

use super::config::{ServeConfig, ServeError};
use super::flush::{flush, truncate_log};
use super::rebuffer::rebuffer;
use super::state::{AppState, Buffers, ContractState, now_micros, now_seconds};

/// What start-up hands the running server.
pub(crate) struct Started {
    pub(crate) state: Arc<AppState>,
    /// Every table with its properties, for maintenance.
    pub(crate) maintained: Vec<(TableIdent, std::collections::BTreeMap<String, String>)>,
}

/// Development switches only make sense on loopback.
pub(crate) fn check_switches(config: &ServeConfig) -> Result<(), ServeError> {
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
    Ok(())
}

/// Builds the server's state, buffers again what the log holds beyond the tables and commits
/// it: when this returns, everything acknowledged before is in the lake.
pub(crate) async fn start(
    config: &ServeConfig,
    specs: crate::Contracts,
    lake: &Arc<Lake>,
    issuer: &str,
) -> Result<Started, ServeError> {
    let dev = dev_identity(config, specs, issuer).await?;
    let needed = specs.iter().any(|c| c.manifest().rewrites_personal_data());
    let pii_keys = crate::privacy::load_keys(config.pii_keys.as_deref(), &config.data_dir, needed)
        .map_err(ServeError::Config)?;
    lake.record_key_id(pii_keys.as_deref().map(|k| k.current_id()));
    let mut opened = Opened {
        pii_keys: pii_keys.clone(),
        // One key cache per issuer, shared by the contracts: its JWKS is fetched once.
        trusted: config.trusted_issuers.iter().map(|i| i.trusted()).collect(),
        ..Opened::default()
    };
    for spec in specs.iter().copied() {
        opened.open(lake, spec, issuer, &dev, config).await?;
    }
    let wal_dir = config.data_dir.join("wal");
    let records = wal::recover(&wal_dir)?;
    // The ids the journal has not got yet are in the log: every acknowledged id is back.
    for contract in &opened.contracts {
        if let Some(dedup) = &contract.dedup {
            dedup.load_log(contract.manifest, &records);
        }
    }
    let highest = records
        .iter()
        .map(|r| r.lsn)
        .chain(opened.committed.values().copied())
        .max()
        .unwrap_or(0);
    let metrics = Metrics::new();
    let manifests: Vec<_> = opened.contracts.iter().map(|c| c.manifest).collect();
    metrics.prepare(&manifests);
    let console = Arc::new(Console::new(
        opened.contracts.iter().map(|c| ServedContract {
            manifest: c.manifest,
            events_table: c.events_table.clone(),
            quarantine_table: c.quarantine_table.clone(),
        }),
        lake.clone(),
        &metrics,
        console_access(config, issuer)?,
    ));
    let state = Arc::new(AppState {
        contracts: opened.contracts,
        dev,
        wal: Wal::open(&wal_dir, highest + 1)?,
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
        rebuild_needed: std::sync::atomic::AtomicBool::new(false),
        wal_dir,
        console,
        pii_keys,
        erasures: Mutex::new(Vec::new()),
    });
    commit_what_the_log_holds(&state, lake, &records, &opened.committed).await?;
    Ok(Started {
        state,
        maintained: opened.maintained,
    })
}

/// The dev identity provider, issuing tokens for every contract that trusts it.
async fn dev_identity(
    config: &ServeConfig,
    specs: crate::Contracts,
    issuer: &str,
) -> Result<Arc<DevIdentity>, ServeError> {
    let mut audiences: Vec<String> = specs
        .iter()
        .map(|c| &c.manifest().ingest.auth)
        .filter(|a| a.issuer == Issuer::Dev)
        .map(|a| a.audience.clone())
        .collect();
    audiences.sort();
    audiences.dedup();
    let (data_dir, guests, issuer) = (config.data_dir.clone(), config.guests, issuer.to_string());
    // RSA key generation is CPU work: keep it off the async workers.
    let dev = tokio::task::spawn_blocking(move || {
        DevIdentity::open(&data_dir, issuer, audiences, guests)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(Arc::new(dev))
}

/// The contracts' tables as opened, with what each has committed.
#[derive(Default)]
struct Opened {
    contracts: Vec<ContractState>,
    committed: HashMap<TableIdent, u64>,
    maintained: Vec<(TableIdent, std::collections::BTreeMap<String, String>)>,
    pii_keys: Option<Arc<contract_judge::privacy::Keys>>,
    /// The issuers every contract trusts beside its own (`--trust-issuer`).
    trusted: Vec<TrustedIssuer>,
}

impl Opened {
    /// Opens (or creates) one contract's two tables and builds its state.
    async fn open(
        &mut self,
        lake: &Lake,
        spec: &'static dyn AnyContract,
        issuer: &str,
        dev: &Arc<DevIdentity>,
        config: &ServeConfig,
    ) -> Result<(), ServeError> {
        let dedup = if config.dedup {
            Index::open(
                &config.data_dir.join("dedup"),
                spec.manifest(),
                now_seconds(),
            )?
        } else {
            None
        };
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
        for (table, definition) in [
            (&events_table, &events_definition),
            (&quarantine_table, &quarantine_definition),
        ] {
            self.maintained
                .push((table.clone(), definition.properties.clone()));
            self.committed
                .insert(table.clone(), lake.committed_lsn(table).await?);
        }
        let quarantine_schema = Arc::new(lake.arrow_schema(&quarantine_table).await?);
        self.contracts.push(ContractState {
            spec,
            manifest,
            verifier: verifier_for(manifest, issuer, dev).trusting(&self.trusted),
            events_table,
            quarantine_table,
            buffers: Mutex::new(Buffers {
                parser: Parser::new(),
                events: spec.event_buffer(),
                quarantine: QuarantineBatch::new(
                    quarantine_schema,
                    manifest,
                    self.pii_keys.clone(),
                ),
                last_lsn: 0,
            }),
            unsent_events: Mutex::new(Vec::new()),
            unsent_quarantine: Mutex::new(Vec::new()),
            dedup: dedup.map(Arc::new),
        });
        Ok(())
    }
}

/// Who verifies a contract's tokens: the dev identity provider, or an issuer's JWKS.
fn verifier_for(manifest: &Manifest, issuer: &str, dev: &Arc<DevIdentity>) -> Verifier {
    let auth = &manifest.ingest.auth;
    match &auth.issuer {
        Issuer::Dev => Verifier::new(
            issuer.to_string(),
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
    }
}

/// Buffers again the logged events no table has committed, and commits them.
async fn commit_what_the_log_holds(
    state: &AppState,
    lake: &Lake,
    records: &[Record],
    committed: &HashMap<TableIdent, u64>,
) -> Result<(), ServeError> {
    let rebuffered = rebuffer(state, records, committed)?;
    // Records logged again must be durable before a commit could pass the ones they replace.
    if let Some(ack) = rebuffered.relogged {
        wal::acknowledged(ack.await)?;
    }
    if rebuffered.count > 0 {
        tracing::info!(
            rebuffered = rebuffered.count,
            "buffering again logged events that were not committed yet"
        );
    }
    if let Some(safe) = flush(state, lake).await {
        truncate_log(state, safe)?;
    }
    // Everything logged before this start is in the lake now; from here on the console
    // counts live, and reads what came before from the lake.
    state.console.load_history(now_micros());
    Ok(())
}

/// The start's log lines: where it listens, and each contract's routes.
pub(crate) fn log_routes(state: &AppState, local: SocketAddr, issuer: &str) {
    tracing::info!(%local, %issuer, contracts = state.contracts.len(), "serving");
    for contract in &state.contracts {
        let issuers: Vec<&str> = contract.verifier.issuers().collect();
        tracing::info!(
            contract = contract.manifest.name.as_str(),
            route = contract.manifest.ingest.route.as_str(),
            batch_route = contract.manifest.ingest.batch_route.as_deref().unwrap_or("-"),
            table = %contract.events_table,
            issuers = issuers.join(" "),
            "route"
        );
    }
}

/// A per-address quota of `per_minute` with bursts of `burst`; None (no limit) for 0.
pub(crate) fn per_minute_quota(per_minute: u32, burst: u32) -> Option<Quota> {
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

/// The console's token file in the data directory (made at first start when no token is
/// given): read by the operator, never printed to the log.
pub const CONSOLE_TOKEN_FILE: &str = "console-token";

/// Who may open the console: the given token, or the one kept in the data directory.
pub(crate) fn console_access(
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

pub(crate) fn write_console_token(path: &std::path::Path) -> Result<String, ServeError> {
    let token = crate::identity::random_token(24);
    // Owner-only, as every file of the data directory (the umask is 077 by now).
    std::fs::write(path, format!("{token}\n"))?;
    Ok(token)
}
