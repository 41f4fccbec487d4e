//! `contract-runtime replay`: moves quarantined and refused events that this build's contract
//! accepts (after a fix to a too-strict rule) into the events table, exactly once.
//!
//! Read → plan → apply:
//! - **read** the contract's quarantine table (optionally only rows received since a time) and
//!   the ledger of rows moved by earlier replays;
//! - **plan** (pure, [`plan`]): re-judge each row's stored raw payload with the built-in
//!   validator, at the time it was received; a row passes, was moved before, or still fails
//!   (with its codes and paths);
//! - **apply**: build the events rows the way `serve` does (same validator, same enrichment
//!   from what the quarantine row kept), write Parquet files, and commit them in one snapshot.
//!
//! Exactly once. The ledger is a table of the catalog database itself
//! (`contractc_replayed`: contract and request id as primary key, run id, snapshot id). The
//! commit's catalog pointer swap (the compare-and-swap on `metadata_location` that every writer
//! of this catalog does) and the ledger rows of the moved events are written in **one SQLite
//! transaction** ([`LedgerRecord`], written by `Lake::swap_metadata`): either the snapshot is the
//! table's and its rows are marked,
//! or neither. A run killed before that transaction leaves only unreferenced files (no reader
//! sees them) and the next run moves the same rows; killed after, the next run finds them in the
//! ledger. The ledger, not the snapshot summary, is the record (snapshots expire), though each
//! replay snapshot also names its run (`contractc.replay-run`) for audit.
//!
//! Next to a running `serve`: a conflicting commit (either side) fails its compare-and-swap and is
//! retried on the new table state, so neither overwrites the other. A replay snapshot carries the
//! table's `contractc.wal-lsn` forward unchanged, so `serve`'s restart point stays that of its own
//! newest commit. Upsert contracts are committed as `serve` commits them (copy-on-write: one row
//! per key in the table afterwards). Two
//! replays of one data directory exclude each other with a lock file (and the ledger's primary
//! key would refuse the second commit anyway).
//!
//! Not recoverable: the quarantine table keeps the token's subject (`player_id`) but not its
//! other claims nor the client's `X-Contract-Version`, so enrichment columns from those sources
//! are null in moved rows (the report names them). `contract_version` is this build's: the
//! version that accepted the event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_array::{Array, LargeListArray, ListArray, RecordBatch, TimestampMicrosecondArray};
use async_trait::async_trait;
use contract_support::json::Parser;
use contract_support::manifest::{EnrichmentSource, Manifest, Origin, TableDef, quarantine as q};
use contract_support::{AnyContract, Code, Context, Enrichment, Verdict, Violation};
use futures::TryStreamExt;
use iceberg::TableIdent;
use iceberg::expr::Reference;
use iceberg::spec::Datum;
use iceberg::table::Table;
use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use crate::lake::{Lake, LakeError, Rewrite, Swap, SwapRecord, table_ident};
use crate::quarantine::string_at;

/// The ledger of moved rows, a table of the catalog database.
pub const LEDGER_TABLE: &str = "contractc_replayed";
/// The snapshot summary property naming the replay run that wrote a snapshot.
pub const REPLAY_RUN_PROPERTY: &str = "contractc.replay-run";
/// How many still-failing rows the report shows in full.
const EXAMPLES: usize = 5;
/// How many ids of movable rows the report lists.
const MOVABLE_SHOWN: usize = 20;
/// Commits retried after a conflict with another writer, beyond iceberg's own retries.
const COMMIT_ATTEMPTS: u32 = 10;
/// A test hook that simulates `kill -9` at a step of a run: `before-commit` (data files
/// written, nothing committed) or `after-commit` (committed, nothing reported).
const CRASH_AT_VAR: &str = "CONTRACTC_REPLAY_CRASH_AT";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no contract {name:?} in this build (built: {built})")]
    UnknownContract { name: String, built: String },
    #[error("no lake in {0} (no catalog.db): run `serve` with this --data-dir first")]
    NoLake(PathBuf),
    #[error("table {0} does not exist: run `serve` with this build and --data-dir first")]
    NoTable(String),
    #[error(
        "table {table} does not have this build's columns (table ids {have:?}, contract ids \
         {want:?}): start `serve` with this build once (it evolves the table), then replay"
    )]
    SchemaBehind {
        table: String,
        have: Vec<i32>,
        want: Vec<i32>,
    },
    #[error("another replay is running on this data directory ({0} is locked)")]
    Busy(PathBuf),
    #[error(
        "another replay moved event {0} at the same time; this run committed nothing: run again"
    )]
    AlreadyMoved(String),
    #[error("the events table kept changing; {COMMIT_ATTEMPTS} commits conflicted: run again")]
    Contended,
    #[error("quarantine table {table}: {message}")]
    Quarantine { table: String, message: String },
    #[error("event {0} passed the plan but not the build of its row: nothing was committed")]
    Unstable(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("catalog database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which quarantine rows a replay considers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only rows received at or after this time (microseconds since the Unix epoch).
    pub since_micros: Option<i64>,
    /// Only rows stored with this violation code.
    pub code: Option<Code>,
}

impl Filter {
    fn matches(&self, row: &QuarantinedRow) -> bool {
        self.since_micros.is_none_or(|t| row.received_micros >= t)
            && self
                .code
                .is_none_or(|code| row.codes.iter().any(|c| c == code.as_str()))
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The contract's name (one built into this binary).
    pub contract: String,
    pub filter: Filter,
    /// Read and plan only: nothing is written.
    pub dry_run: bool,
}

/// One row of a quarantine table, as replay needs it.
#[derive(Debug, Clone)]
pub struct QuarantinedRow {
    pub received_micros: i64,
    pub request_id: Option<String>,
    /// As stored: `quarantine` or `reject`.
    pub verdict: String,
    /// The violation codes it was stored with.
    pub codes: Vec<String>,
    pub raw_payload: String,
    /// The token's subject (`jwt.sub`).
    pub player_id: Option<String>,
}

/// A row this build accepts, to be moved.
#[derive(Debug, Clone)]
pub struct Move {
    pub request_id: String,
    pub row: QuarantinedRow,
}

/// A row this build still refuses or quarantines.
#[derive(Debug, Clone)]
pub struct Failure {
    pub request_id: Option<String>,
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
}

/// What a replay would do, decided before anything is written.
#[derive(Debug, Default)]
pub struct Plan {
    /// Rows that pass the filter.
    pub considered: usize,
    /// Rows an earlier replay moved.
    pub already_moved: usize,
    /// Rows without a request id: nothing identifies them for exactly-once, so they stay.
    pub without_request_id: usize,
    /// Later rows with a request id seen before (moved once, with the first).
    pub duplicates: usize,
    pub moves: Vec<Move>,
    pub failures: Vec<Failure>,
}

/// Re-judges `rows` with `spec` (each at the time it was received) and decides each one's fate.
/// `moved` holds the request ids the ledger marks as moved. Pure: it writes nothing.
pub fn plan(
    spec: &dyn AnyContract,
    rows: Vec<QuarantinedRow>,
    moved: &HashSet<String>,
    filter: &Filter,
) -> Plan {
    let mut planner = Planner::new(spec, moved, filter);
    rows.into_iter().for_each(|row| planner.add(row));
    planner.plan
}

/// Builds a [`Plan`] a row at a time, so the quarantine table is read as a stream: only the
/// rows to move are kept whole (they are written next), failures keep their violations.
pub struct Planner<'a> {
    spec: &'a dyn AnyContract,
    moved: &'a HashSet<String>,
    filter: &'a Filter,
    parser: Parser,
    seen: HashSet<String>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    pub fn new(spec: &'a dyn AnyContract, moved: &'a HashSet<String>, filter: &'a Filter) -> Self {
        Planner {
            spec,
            moved,
            filter,
            parser: Parser::new(),
            seen: HashSet::new(),
            plan: Plan::default(),
        }
    }

    pub fn add(&mut self, row: QuarantinedRow) {
        if !self.filter.matches(&row) {
            return;
        }
        let plan = &mut self.plan;
        plan.considered += 1;
        // A moved row is in the events table whatever this build thinks of it now.
        if row
            .request_id
            .as_ref()
            .is_some_and(|id| self.moved.contains(id))
        {
            plan.already_moved += 1;
            return;
        }
        let (verdict, violations) = judge(self.spec, &mut self.parser, &row);
        if verdict != Verdict::Accept {
            let violations = kept_in_part(&row).unwrap_or(violations);
            plan.failures.push(Failure {
                request_id: row.request_id,
                verdict,
                violations,
            });
            return;
        }
        match row.request_id.clone() {
            None => plan.without_request_id += 1,
            Some(id) if !self.seen.insert(id.clone()) => plan.duplicates += 1,
            Some(request_id) => plan.moves.push(Move { request_id, row }),
        }
    }

    pub fn finish(self) -> Plan {
        self.plan
    }
}

/// Why a row refused for its size cannot be replayed: the table kept only its first bytes.
fn kept_in_part(row: &QuarantinedRow) -> Option<Vec<Violation>> {
    let cut = row.codes.iter().any(|c| c == Code::TooLarge.as_str())
        && row.raw_payload.len() <= crate::quarantine::OVERSIZED_KEPT_BYTES;
    cut.then(|| {
        vec![Violation {
            code: Code::TooLarge,
            path: "$".into(),
            policy: contract_support::Policy::Reject,
            message: format!(
                "refused for its size; the quarantine table kept only its first {} bytes, so \
                 it cannot be replayed",
                crate::quarantine::OVERSIZED_KEPT_BYTES
            ),
        }]
    })
}

/// The verdict `serve` would give the row's payload now, as of when it was received (the
/// reference of `not_before` / `not_after`), size limit included.
fn judge(
    spec: &dyn AnyContract,
    parser: &mut Parser,
    row: &QuarantinedRow,
) -> (Verdict, Vec<Violation>) {
    let ctx = Context {
        ingest_time_micros: row.received_micros,
    };
    crate::judge::validate(
        None,
        spec,
        parser,
        row.raw_payload.as_bytes(),
        &ctx,
        &Enrichment::default(),
    )
}

/// Rows still failing with one violation code at one path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureCount {
    pub code: String,
    pub path: String,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub request_id: Option<String>,
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
}

/// What a replay found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub contract: String,
    pub events_table: String,
    pub dry_run: bool,
    pub considered: usize,
    pub already_moved: usize,
    pub without_request_id: usize,
    pub duplicates: usize,
    /// Rows this build accepts that no replay moved yet.
    pub movable: usize,
    /// Some of their request ids.
    pub movable_ids: Vec<String>,
    /// Rows this run moved (0 with `--dry-run`).
    pub moved: usize,
    pub still_failing: usize,
    /// Still-failing rows per code and path, most frequent first.
    pub failing: Vec<FailureCount>,
    pub examples: Vec<Example>,
    /// Enrichment columns the quarantine table cannot fill: null in moved rows.
    pub not_recovered: Vec<String>,
    pub snapshot_id: Option<i64>,
    pub run_id: Option<String>,
    /// Commits that lost a race with another writer and were retried.
    pub commit_conflicts: usize,
}

impl Report {
    fn of(plan: &Plan, manifest: &Manifest, events_table: &TableIdent, dry_run: bool) -> Report {
        Report {
            contract: manifest.name.clone(),
            events_table: events_table.to_string(),
            dry_run,
            considered: plan.considered,
            already_moved: plan.already_moved,
            without_request_id: plan.without_request_id,
            duplicates: plan.duplicates,
            movable: plan.moves.len(),
            movable_ids: plan
                .moves
                .iter()
                .take(MOVABLE_SHOWN)
                .map(|m| m.request_id.clone())
                .collect(),
            moved: 0,
            still_failing: plan.failures.len(),
            failing: failure_counts(&plan.failures),
            examples: plan
                .failures
                .iter()
                .take(EXAMPLES)
                .map(|f| Example {
                    request_id: f.request_id.clone(),
                    verdict: f.verdict,
                    violations: f.violations.clone(),
                })
                .collect(),
            not_recovered: not_recovered(manifest),
            snapshot_id: None,
            run_id: None,
            commit_conflicts: 0,
        }
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "replay of {} into {}{}\n",
            self.contract,
            self.events_table,
            if self.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        let mut line = |label: &str, n: usize| out.push_str(&format!("  {label:<28}{n}\n"));
        line("quarantine rows considered", self.considered);
        line("moved by an earlier replay", self.already_moved);
        line("accepted now", self.movable);
        line("moved by this run", self.moved);
        line("still failing", self.still_failing);
        if self.without_request_id > 0 {
            line("accepted, no request id", self.without_request_id);
        }
        if self.duplicates > 0 {
            line("duplicate request ids", self.duplicates);
        }
        if let (Some(snapshot), Some(run)) = (self.snapshot_id, &self.run_id) {
            out.push_str(&format!(
                "  committed as snapshot {snapshot} (run {run}; {} conflicts retried)\n",
                self.commit_conflicts
            ));
        }
        if self.dry_run && !self.movable_ids.is_empty() {
            out.push_str("would move (request ids):\n");
            for id in &self.movable_ids {
                out.push_str(&format!("  {id}\n"));
            }
            if self.movable > self.movable_ids.len() {
                out.push_str(&format!(
                    "  … and {} more\n",
                    self.movable - self.movable_ids.len()
                ));
            }
        }
        if !self.failing.is_empty() {
            out.push_str("still failing, by code and path (rows):\n");
            for f in &self.failing {
                out.push_str(&format!("  {:<16}{:<28}{}\n", f.code, f.path, f.rows));
            }
            out.push_str("examples:\n");
            for e in &self.examples {
                let id = e.request_id.as_deref().unwrap_or("(no request id)");
                out.push_str(&format!("  {id} ({})\n", e.verdict.as_str()));
                for v in &e.violations {
                    out.push_str(&format!("    {} at {}: {}\n", v.code, v.path, v.message));
                }
            }
        }
        if !self.not_recovered.is_empty() && (self.movable > 0 || self.moved > 0) {
            out.push_str(&format!(
                "not kept by the quarantine table, null in moved rows: {}\n",
                self.not_recovered.join(", ")
            ));
        }
        out
    }
}

/// Rows per (code, path): a row counts once per pair however often it breaks it.
fn failure_counts(failures: &[Failure]) -> Vec<FailureCount> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for failure in failures {
        let pairs: HashSet<(String, String)> = failure
            .violations
            .iter()
            .filter(|v| v.policy != contract_support::Policy::Warn)
            .map(|v| (v.code.as_str().to_string(), v.path.clone()))
            .collect();
        for pair in pairs {
            *counts.entry(pair).or_default() += 1;
        }
    }
    let mut counts: Vec<FailureCount> = counts
        .into_iter()
        .map(|((code, path), rows)| FailureCount { code, path, rows })
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.rows));
    counts
}

/// Enrichment columns whose source the quarantine table does not keep.
fn not_recovered(manifest: &Manifest) -> Vec<String> {
    manifest
        .events_table()
        .columns
        .iter()
        .filter_map(|c| match &c.origin {
            Origin::Enrichment(
                source @ (EnrichmentSource::JwtClaim(_) | EnrichmentSource::ClientContractVersion),
            ) => Some(format!("{} (from {})", c.name, source.spelling())),
            _ => None,
        })
        .collect()
}

/// Replays `options.contract`'s quarantine in the lake under `data_dir`.
pub async fn replay(
    data_dir: &Path,
    options: &ReplayOptions,
    contracts: crate::Contracts,
) -> Result<Report, ReplayError> {
    let spec = find_contract(&options.contract, contracts)?;
    let manifest = spec.manifest();
    // Moved rows, metadata and the lock file are players' data, as serve's files are.
    crate::data_dir::owner_only_files();
    let lake = open_existing(data_dir).await?;
    let events_definition = manifest.events_table();
    let events = existing_table(&lake, &events_definition).await?;
    let quarantine = existing_table(&lake, &manifest.quarantine_table()).await?;
    // Held from reading the ledger to committing: two runs cannot plan the same rows.
    let _lock = (!options.dry_run)
        .then(|| ReplayLock::take(data_dir))
        .transpose()?;
    let ledger = Ledger::connect(&lake).await?;
    let moved = ledger.moved(&manifest.name).await?;
    let mut planner = Planner::new(spec, &moved, &options.filter);
    read_quarantine(
        &lake,
        &quarantine,
        options.filter.since_micros,
        &mut planner,
    )
    .await?;
    let plan = planner.finish();
    let mut report = Report::of(&plan, manifest, &events, options.dry_run);
    if options.dry_run || plan.moves.is_empty() {
        ledger.pool.close().await;
        return Ok(report);
    }
    check_columns(&lake.load(&events).await?, &events_definition)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let committed = apply(&lake, &ledger, spec, &events, &plan.moves, &run_id).await?;
    ledger.pool.close().await;
    report.moved = plan.moves.len();
    report.snapshot_id = committed.snapshot_id;
    report.run_id = Some(run_id);
    report.commit_conflicts = committed.conflicts;
    crash_point("after-commit");
    Ok(report)
}

fn find_contract(
    name: &str,
    contracts: crate::Contracts,
) -> Result<&'static dyn AnyContract, ReplayError> {
    contracts
        .iter()
        .copied()
        .find(|c| c.manifest().name == name)
        .ok_or_else(|| ReplayError::UnknownContract {
            name: name.to_string(),
            built: contracts
                .iter()
                .map(|c| c.manifest().name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Opens the lake without creating one: a replay of a directory `serve` never used is a
/// mistake (a typo in --data-dir), not an empty quarantine.
async fn open_existing(data_dir: &Path) -> Result<Lake, ReplayError> {
    if !data_dir.join("catalog.db").is_file() {
        return Err(ReplayError::NoLake(data_dir.to_path_buf()));
    }
    Ok(Lake::open(data_dir).await?)
}

async fn existing_table(lake: &Lake, definition: &TableDef) -> Result<TableIdent, ReplayError> {
    let ident = table_ident(definition);
    if !lake.exists(&ident).await? {
        return Err(ReplayError::NoTable(ident.to_string()));
    }
    Ok(ident)
}

/// The events rows are built with this build's columns; a table `serve` has not evolved yet
/// would not take them, and replay does not change schemas behind a running `serve`.
fn check_columns(table: &Table, definition: &TableDef) -> Result<(), ReplayError> {
    let have: Vec<i32> = table
        .metadata()
        .current_schema()
        .as_struct()
        .fields()
        .iter()
        .map(|f| f.id)
        .collect();
    let want: Vec<i32> = definition.columns.iter().map(|c| c.id as i32).collect();
    if have == want {
        Ok(())
    } else {
        Err(ReplayError::SchemaBehind {
            table: table.identifier().to_string(),
            have,
            want,
        })
    }
}

/// An exclusive lock on `DATA_DIR/replay.lock`, released when the process ends (killed too).
struct ReplayLock {
    _file: std::fs::File,
}

impl ReplayLock {
    fn take(data_dir: &Path) -> Result<ReplayLock, ReplayError> {
        let path = data_dir.join("replay.lock");
        match crate::data_dir::lock_exclusive(&path) {
            Ok(file) => Ok(ReplayLock { _file: file }),
            Err(crate::data_dir::LockError::Open(source)) => Err(ReplayError::Io { path, source }),
            Err(crate::data_dir::LockError::Held) => Err(ReplayError::Busy(path)),
        }
    }
}

/// Reads the quarantine rows (those received since `since_micros`, when given) into
/// `planner`, a small batch at a time: memory does not grow with the table.
async fn read_quarantine(
    lake: &Lake,
    ident: &TableIdent,
    since_micros: Option<i64>,
    planner: &mut Planner<'_>,
) -> Result<(), ReplayError> {
    let table = lake.load(ident).await?;
    if table.metadata().current_snapshot().is_none() {
        return Ok(());
    }
    let mut scan = table
        .scan()
        .select_all()
        .with_batch_size(Some(READ_BATCH_ROWS))
        .with_data_file_concurrency_limit(1);
    if let Some(since) = since_micros {
        // Prunes files; the plan filters rows exactly.
        let received_at = column_name(&table, q::RECEIVED_AT)?;
        scan = scan.with_filter(
            Reference::new(received_at).greater_than_or_equal_to(Datum::timestamptz_micros(since)),
        );
    }
    let mut batches = scan.build()?.to_arrow().await?;
    while let Some(batch) = batches.try_next().await? {
        let rows = quarantine_rows(&batch).map_err(|message| ReplayError::Quarantine {
            table: ident.to_string(),
            message,
        })?;
        rows.into_iter().for_each(|row| planner.add(row));
    }
    Ok(())
}

/// Rows per batch read from the quarantine table.
const READ_BATCH_ROWS: usize = 256;

fn column_name(table: &Table, id: u32) -> Result<String, ReplayError> {
    let schema = table.metadata().current_schema();
    i32::try_from(id)
        .ok()
        .and_then(|id| schema.field_by_id(id))
        .map(|f| f.name.clone())
        .ok_or_else(|| ReplayError::Quarantine {
            table: table.identifier().to_string(),
            message: format!("no column with id {id}"),
        })
}

/// The rows of one batch, its columns found by their Iceberg field ids (the quarantine table's
/// one definition), not by position.
fn quarantine_rows(batch: &RecordBatch) -> Result<Vec<QuarantinedRow>, String> {
    let ids: HashMap<u32, usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((f.metadata().get("PARQUET:field_id")?.parse().ok()?, i)))
        .collect();
    let column = |id: u32| -> Result<&dyn Array, String> {
        ids.get(&id)
            .map(|i| batch.column(*i).as_ref())
            .ok_or_else(|| format!("no column with field id {id}"))
    };
    let received = column(q::RECEIVED_AT)?
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or("received_at is not a microsecond timestamp")?;
    let (request_id, verdict, payload, player, codes) = (
        column(q::REQUEST_ID)?,
        column(q::VERDICT)?,
        column(q::RAW_PAYLOAD)?,
        column(q::PLAYER_ID)?,
        column(q::VIOLATION_CODES)?,
    );
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        rows.push(QuarantinedRow {
            received_micros: received.value(i),
            request_id: string_at(request_id, i)?,
            verdict: string_at(verdict, i)?.unwrap_or_default(),
            codes: strings_at(codes, i)?,
            raw_payload: string_at(payload, i)?.unwrap_or_default(),
            player_id: string_at(player, i)?,
        });
    }
    Ok(rows)
}

/// A list-of-strings cell.
fn strings_at(array: &dyn Array, i: usize) -> Result<Vec<String>, String> {
    if array.is_null(i) {
        return Ok(Vec::new());
    }
    let any = array.as_any();
    let values = if let Some(a) = any.downcast_ref::<ListArray>() {
        a.value(i)
    } else if let Some(a) = any.downcast_ref::<LargeListArray>() {
        a.value(i)
    } else {
        return Err(format!("{} is not a list column", array.data_type()));
    };
    (0..values.len())
        .filter_map(|j| string_at(values.as_ref(), j).transpose())
        .collect()
}

/// The ledger of moved rows, in the catalog database.
struct Ledger {
    pool: SqlitePool,
}

impl Ledger {
    async fn connect(lake: &Lake) -> Result<Ledger, ReplayError> {
        Ok(Ledger {
            pool: SqlitePool::connect(&lake.catalog_uri).await?,
        })
    }

    async fn exists(&self) -> Result<bool, ReplayError> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(LEDGER_TABLE)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Request ids of `contract`'s rows moved so far (none before the first replay, which
    /// creates the ledger: a dry run writes nothing, not even that).
    async fn moved(&self, contract: &str) -> Result<HashSet<String>, ReplayError> {
        if !self.exists().await? {
            return Ok(HashSet::new());
        }
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT request_id FROM {LEDGER_TABLE} WHERE contract = ?"
        ))
        .bind(contract)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn create(&self) -> Result<(), ReplayError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (\
               contract TEXT NOT NULL, \
               request_id TEXT NOT NULL, \
               run_id TEXT NOT NULL, \
               snapshot_id INTEGER, \
               moved_at_micros INTEGER NOT NULL, \
               PRIMARY KEY (contract, request_id))"
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

struct Committed {
    snapshot_id: Option<i64>,
    conflicts: usize,
}

/// Writes the moved rows and commits them with their ledger rows.
async fn apply(
    lake: &Lake,
    ledger: &Ledger,
    spec: &'static dyn AnyContract,
    events: &TableIdent,
    moves: &[Move],
    run_id: &str,
) -> Result<Committed, ReplayError> {
    // The events are players' data: owner-only files, as `serve` makes them.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    ledger.create().await?;
    let batch = events_batch(spec, moves)?;
    let record = LedgerRecord::new(
        &spec.manifest().name,
        moves.iter().map(|m| m.request_id.as_str()).collect(),
        run_id,
    );
    commit(lake, spec.manifest(), events, batch, &record).await
}

/// Commits `batch` in one snapshot with `record`'s ledger rows: appended, or upserted (one
/// row per key in the table afterwards, as `serve` commits) for upsert contracts. A conflict
/// with another writer is retried on the table's new state.
async fn commit(
    lake: &Lake,
    manifest: &Manifest,
    events: &TableIdent,
    batch: RecordBatch,
    record: &LedgerRecord<'_>,
) -> Result<Committed, ReplayError> {
    let mut conflicts = 0;
    // An append's files are written once, before the race with serve's commits: each attempt
    // then only lists them in new manifests, which keeps its window short.
    let appended = match manifest.upsert() {
        Some(_) => Vec::new(),
        None => {
            lake.write_appended(&lake.load(events).await?, batch.clone())
                .await?
        }
    };
    for attempt in 1..=COMMIT_ATTEMPTS {
        let table = lake.load(events).await?;
        let mut rewrite = match manifest.upsert() {
            Some(upsert) => crate::upsert::upsert_rewrite(&table, batch.clone(), upsert).await?,
            None => Rewrite::appending(appended.clone()),
        };
        rewrite
            .properties
            .insert(REPLAY_RUN_PROPERTY.to_string(), record.run_id.to_string());
        crash_point("before-commit");
        match lake
            .commit_rewrite(events, &table, rewrite, Some(record))
            .await?
        {
            Swap::Done => {
                return Ok(Committed {
                    snapshot_id: record.committed_snapshot(),
                    conflicts,
                });
            }
            Swap::Conflict => {
                conflicts += 1;
                tracing::warn!(%events, attempt, "replay commit conflicted; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
            }
            Swap::Refused(id) => return Err(ReplayError::AlreadyMoved(id)),
        }
    }
    Err(ReplayError::Contended)
}

/// The events rows of `moves`, built by the validator with the enrichment `serve` gives
/// (what the quarantine row kept of it), one row per key for upsert tables as in a commit of
/// `serve`.
fn events_batch(
    spec: &'static dyn AnyContract,
    moves: &[Move],
) -> Result<RecordBatch, ReplayError> {
    let manifest = spec.manifest();
    let mut buffer = spec.event_buffer();
    let mut parser = Parser::new();
    for m in moves {
        let ctx = Context {
            ingest_time_micros: m.row.received_micros,
        };
        let enrichment = Enrichment {
            ingest_time_micros: m.row.received_micros,
            contract_version: &manifest.version,
            request_id: &m.request_id,
            jwt_sub: m.row.player_id.as_deref(),
            // Not kept by the quarantine table (see the module notes): null, not invented.
            jwt_claims: &[],
            client_contract_version: None,
        };
        let (verdict, _) = crate::judge::validate(
            Some(&mut buffer),
            spec,
            &mut parser,
            m.row.raw_payload.as_bytes(),
            &ctx,
            &enrichment,
        );
        if verdict != Verdict::Accept {
            return Err(ReplayError::Unstable(m.request_id.clone()));
        }
    }
    let batch = buffer.finish();
    Ok(match manifest.upsert() {
        Some(upsert) => crate::upsert::latest_per_key(&batch, upsert.key, upsert.latest_by)?,
        None => batch,
    })
}

/// Aborts the process at `step` when the test hook asks for it (a `kill -9` there).
fn crash_point(step: &str) {
    if std::env::var(CRASH_AT_VAR).is_ok_and(|v| v == step) {
        eprintln!("{CRASH_AT_VAR}={step}: aborting");
        std::process::abort();
    }
}

/// Runs right before a pointer swap: tests make another writer commit there.
type BeforeSwap<'a> = &'a (dyn Fn() -> futures::future::BoxFuture<'a, ()> + Send + Sync);

/// The ledger rows of one replay commit, written in the transaction of its pointer swap
/// ([`Lake::swap_metadata`]): the snapshot is the table's with its rows marked, or neither.
struct LedgerRecord<'a> {
    contract: &'a str,
    request_ids: Vec<&'a str>,
    run_id: &'a str,
    /// The snapshot the rows were recorded with (set by a commit that went through).
    snapshot_id: std::sync::Mutex<Option<i64>>,
    before_swap: Option<BeforeSwap<'a>>,
}

impl<'a> LedgerRecord<'a> {
    fn new(contract: &'a str, request_ids: Vec<&'a str>, run_id: &'a str) -> LedgerRecord<'a> {
        LedgerRecord {
            contract,
            request_ids,
            run_id,
            snapshot_id: std::sync::Mutex::new(None),
            before_swap: None,
        }
    }

    fn committed_snapshot(&self) -> Option<i64> {
        *self.snapshot_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SwapRecord for LedgerRecord<'_> {
    async fn before_swap(&self) {
        if let Some(hook) = self.before_swap {
            hook().await;
        }
    }

    /// Inserts one ledger row per moved event; an id another replay's rows already hold
    /// refuses the commit.
    async fn record(
        &self,
        tx: &mut SqliteConnection,
        snapshot_id: Option<i64>,
    ) -> Result<Option<String>, sqlx::Error> {
        let now = now_micros();
        for id in &self.request_ids {
            let inserted = sqlx::query(&format!(
                "INSERT INTO {LEDGER_TABLE} (contract, request_id, run_id, snapshot_id, moved_at_micros) \
                 VALUES (?, ?, ?, ?, ?)"
            ))
            .bind(self.contract)
            .bind(*id)
            .bind(self.run_id)
            .bind(snapshot_id)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Ok(Some(id.to_string()));
                }
                other => {
                    other?;
                }
            }
        }
        *self.snapshot_id.lock().unwrap_or_else(|p| p.into_inner()) = snapshot_id;
        Ok(None)
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_708_603_200_000_000; // 2024-02-22 12:00:00 UTC

    fn spec() -> &'static dyn AnyContract {
        find_contract("game_events", contract_validators::ALL).expect("game_events is built")
    }

    fn row(id: Option<&str>, payload: &str, codes: &[&str], received: i64) -> QuarantinedRow {
        QuarantinedRow {
            received_micros: received,
            request_id: id.map(str::to_string),
            verdict: "quarantine".into(),
            codes: codes.iter().map(|c| c.to_string()).collect(),
            raw_payload: payload.into(),
            player_id: Some("p1".into()),
        }
    }

    fn valid(n: u32) -> String {
        format!(
            r#"{{"event_id": "e{n}", "event_type": "Login", "updated_at": "2024-02-22 10:00:00"}}"#
        )
    }

    #[test]
    fn the_plan_moves_what_passes_once_and_keeps_what_fails_with_its_codes() {
        let rows = vec![
            row(Some("a"), &valid(1), &["pattern"], NOW),
            row(Some("b"), &valid(2), &["pattern"], NOW),
            // Moved by an earlier run.
            row(Some("c"), &valid(3), &["pattern"], NOW),
            // The same event twice: moved once.
            row(Some("a"), &valid(1), &["pattern"], NOW),
            // Still too old for the contract (not_before is quarantine).
            row(
                Some("d"),
                r#"{"event_id": "e4", "event_type": "Login", "updated_at": "2023-01-01 00:00:00"}"#,
                &["not_before"],
                NOW,
            ),
            row(Some("e"), r#"{"event_id": "e5""#, &["invalid_json"], NOW),
            row(None, &valid(6), &["pattern"], NOW),
        ];
        let moved = HashSet::from(["c".to_string()]);
        let plan = plan(spec(), rows, &moved, &Filter::default());
        let ids: Vec<&str> = plan.moves.iter().map(|m| m.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            (
                plan.considered,
                plan.already_moved,
                plan.duplicates,
                plan.without_request_id
            ),
            (7, 1, 1, 1)
        );
        let counts = failure_counts(&plan.failures);
        let codes: Vec<&str> = counts.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(plan.failures.len(), 2);
        assert!(
            codes.contains(&"not_before") && codes.contains(&"invalid_json"),
            "{codes:?}"
        );
    }

    #[test]
    fn filters_select_by_receipt_time_and_stored_code() {
        let rows = || {
            vec![
                row(Some("old"), &valid(1), &["pattern"], NOW - 3_600_000_000),
                row(Some("new"), &valid(2), &["max_length"], NOW),
            ]
        };
        let since = Filter {
            since_micros: Some(NOW - 1),
            code: None,
        };
        let by_code = Filter {
            since_micros: None,
            code: Code::parse("pattern"),
        };
        let moved = HashSet::new();
        let ids = |f: &Filter| -> Vec<String> {
            plan(spec(), rows(), &moved, f)
                .moves
                .into_iter()
                .map(|m| m.request_id)
                .collect()
        };
        assert_eq!(ids(&since), ["new"]);
        assert_eq!(ids(&by_code), ["old"]);
    }

    /// A lake with game_events' events table, and the ledger; the table's metadata pointer.
    async fn lake_with_ledger(name: &str) -> (Lake, Ledger, TableIdent, String) {
        let dir = std::env::temp_dir().join(format!("replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let lake = Lake::open(&dir).await.expect("lake");
        let ident = lake
            .ensure_table(&spec().manifest().events_table())
            .await
            .expect("table");
        let ledger = Ledger::connect(&lake).await.expect("ledger");
        ledger.create().await.expect("ledger table");
        let pointer = pointer(&ledger, &ident).await;
        (lake, ledger, ident, pointer)
    }

    async fn pointer(ledger: &Ledger, ident: &TableIdent) -> String {
        let (location,): (String,) =
            sqlx::query_as("SELECT metadata_location FROM iceberg_tables WHERE table_name = ?")
                .bind(ident.name())
                .fetch_one(&ledger.pool)
                .await
                .expect("pointer");
        location
    }

    #[tokio::test]
    async fn a_lost_pointer_race_records_no_ledger_rows() {
        let (lake, ledger, ident, current) = lake_with_ledger("race").await;
        let table = lake.load(&ident).await.expect("table");
        let record = LedgerRecord::new("game_events", vec!["a", "b"], "run");
        let swap = lake
            .swap_metadata(
                &ident,
                Some("file:///someone-else-s".into()),
                table.metadata(),
                Some(&record),
            )
            .await
            .expect("swap");
        assert_eq!(swap, Swap::Conflict);
        assert_eq!(pointer(&ledger, &ident).await, current);
        assert!(
            ledger
                .moved("game_events")
                .await
                .expect("ledger")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn ledger_rows_and_the_pointer_swap_are_one_transaction() {
        let (lake, ledger, ident, current) = lake_with_ledger("atomic").await;
        let table = lake.load(&ident).await.expect("table");
        // A commit of the same metadata: nothing readers see changes.
        let first = LedgerRecord::new("game_events", vec!["a", "b"], "run");
        let swap = lake
            .swap_metadata(&ident, Some(current), table.metadata(), Some(&first))
            .await
            .expect("swap");
        assert_eq!(swap, Swap::Done);
        let moved = ledger.moved("game_events").await.expect("ledger");
        assert_eq!(moved, HashSet::from(["a".to_string(), "b".to_string()]));
        // A second commit of `b` (another replay's) is refused whole: the pointer stays.
        let now = pointer(&ledger, &ident).await;
        let second = LedgerRecord::new("game_events", vec!["c", "b"], "run-2");
        let swap = lake
            .swap_metadata(&ident, Some(now.clone()), table.metadata(), Some(&second))
            .await
            .expect("swap");
        assert_eq!(swap, Swap::Refused("b".into()));
        assert_eq!(pointer(&ledger, &ident).await, now);
        assert_eq!(ledger.moved("game_events").await.expect("ledger"), moved);
    }

    /// The events rows of `moves` built as a replay builds them.
    fn moves(ids: &[&str]) -> Vec<Move> {
        ids.iter()
            .enumerate()
            .map(|(n, id)| Move {
                request_id: id.to_string(),
                row: row(Some(id), &valid(n as u32), &["pattern"], NOW),
            })
            .collect()
    }

    async fn request_ids(lake: &Lake, ident: &TableIdent) -> Vec<String> {
        let table = lake.load(ident).await.expect("table");
        let scan = table.scan().select(["request_id"]).build().expect("scan");
        let batches: Vec<RecordBatch> = scan
            .to_arrow()
            .await
            .expect("read")
            .try_collect()
            .await
            .expect("batches");
        let mut ids: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let column = b.column(0).clone();
                (0..b.num_rows())
                    .filter_map(move |i| string_at(column.as_ref(), i).expect("string"))
            })
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_commit_that_loses_the_race_is_retried_on_the_new_table() {
        let (lake, ledger, ident, _) = lake_with_ledger("retry").await;
        let ours = events_batch(spec(), &moves(&["ours"])).expect("rows");
        // `serve` commits its own rows (LSN 7) between our metadata write and our swap.
        let first = std::sync::atomic::AtomicBool::new(true);
        let serve_commits = || -> futures::future::BoxFuture<'_, ()> {
            Box::pin(async {
                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    let theirs = events_batch(spec(), &moves(&["theirs"])).expect("rows");
                    lake.append(&ident, vec![theirs], 7)
                        .await
                        .expect("serve's commit");
                }
            })
        };
        let mut record = LedgerRecord::new("game_events", vec!["ours"], "run");
        record.before_swap = Some(&serve_commits);
        let committed = commit(&lake, spec().manifest(), &ident, ours, &record)
            .await
            .expect("commit");
        assert!(committed.snapshot_id.is_some());
        assert_eq!(committed.conflicts, 1, "the first swap lost");
        assert_eq!(request_ids(&lake, &ident).await, ["ours", "theirs"]);
        assert_eq!(
            lake.committed_lsn(&ident).await.expect("lsn"),
            7,
            "serve's restart point"
        );
        let moved = ledger.moved("game_events").await.expect("ledger");
        assert_eq!(moved, HashSet::from(["ours".to_string()]));
    }

    /// An upsert contract's replayed row replaces the table's older version of its key: one
    /// row per key afterwards, as after a commit of `serve`.
    #[tokio::test(flavor = "multi_thread")]
    async fn replayed_rows_of_an_upsert_contract_keep_one_row_per_key() {
        let matches =
            find_contract("match_events", contract_validators::ALL).expect("match_events is built");
        let dir = std::env::temp_dir().join(format!("replay-upsert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let lake = Lake::open(&dir).await.expect("lake");
        let ident = lake
            .ensure_table(&matches.manifest().events_table())
            .await
            .expect("table");
        let ledger = Ledger::connect(&lake).await.expect("ledger");
        ledger.create().await.expect("ledger table");
        let event = |occurred: &str, duration: u32| {
            format!(
                r#"{{"event_id": "123e4567-e89b-12d3-a456-426614174000", "kind": "match_ended",
                    "occurred_at": "{occurred}", "match_id": "m-0123456789ab", "region": "eu-west",
                    "build": {{"version": "1.2.3"}}, "duration_s": {duration}, "scores": {{"a": 1}}}}"#
            )
        };
        let received = 1_708_603_200_000_000; // 2024-02-22 12:00:00 UTC
        let moved = |id: &str, payload: String| Move {
            request_id: id.into(),
            row: row(Some(id), &payload, &["pattern"], received),
        };
        // The table holds the key's version of 11:00; the replayed one is of 11:30.
        let older = events_batch(matches, &[moved("old", event("2024-02-22T11:00:00Z", 100))])
            .expect("rows");
        let upsert = matches.manifest().upsert().expect("an upsert contract");
        crate::upsert::upsert_batch(&lake, &ident, older, 1, upsert)
            .await
            .expect("serve's commit");
        let newer = events_batch(matches, &[moved("new", event("2024-02-22T11:30:00Z", 200))])
            .expect("rows");
        let record = LedgerRecord::new("match_events", vec!["new"], "run");
        commit(&lake, matches.manifest(), &ident, newer, &record)
            .await
            .expect("replay's commit");
        let table = lake.load(&ident).await.expect("table");
        let scan = table.scan().select(["duration_s"]).build().expect("scan");
        let batches: Vec<RecordBatch> = scan
            .to_arrow()
            .await
            .expect("read")
            .try_collect()
            .await
            .expect("batches");
        let durations: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let column = b.column(0).clone();
                (0..b.num_rows()).map(move |i| arrow_cast_value(column.as_ref(), i))
            })
            .collect();
        assert_eq!(
            durations,
            ["200"],
            "one row for the key, the replayed (newer) one"
        );
    }

    /// A cell of an integer column as text.
    fn arrow_cast_value(column: &dyn Array, i: usize) -> String {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Int32Type, Int64Type};
        column
            .as_primitive_opt::<Int64Type>()
            .map(|a| a.value(i).to_string())
            .or_else(|| {
                column
                    .as_primitive_opt::<Int32Type>()
                    .map(|a| a.value(i).to_string())
            })
            .unwrap_or_else(|| format!("{:?}", column.data_type()))
    }

    #[test]
    fn moved_rows_are_enriched_from_what_the_quarantine_row_kept() {
        let moves = vec![Move {
            request_id: "r-7".into(),
            row: row(Some("r-7"), &valid(7), &["pattern"], NOW),
        }];
        let batch = events_batch(spec(), &moves).expect("batch");
        let text = |name: &str| {
            let column = batch.column_by_name(name).expect(name);
            string_at(column.as_ref(), 0).expect("string")
        };
        assert_eq!(text("request_id").as_deref(), Some("r-7"));
        assert_eq!(text("player_id").as_deref(), Some("p1"));
        assert_eq!(
            text("contract_version").as_deref(),
            Some(spec().manifest().version.as_str())
        );
        assert_eq!(text("client_version"), None, "not kept, so not invented");
        assert_eq!(
            not_recovered(spec().manifest()),
            ["client_version (from client_contract_version)"]
        );
    }
}
