//! Table maintenance: what keeps a table that `serve` commits to every two seconds small and
//! fast to read after months.
//!
//! One run, per table, in this order:
//! 1. **Compact** ([`Lake::compact`]): per partition, small data files (a size tier, see
//!    [`pick_tier`]) are read back through iceberg-rust's reader (projected to the current
//!    schema, so files written before a schema change get nulls for the new columns) and written
//!    again as files of up to `write.target-file-size-bytes`.
//! 2. **Merge manifests**: the same rewrite lists every live file in one manifest per partition
//!    spec, so the manifest list stops growing by one manifest per commit.
//! 3. **Expire snapshots** older than `history.expire.max-snapshot-age-ms`, keeping at least
//!    `history.expire.min-snapshots-to-keep` (iceberg-rust's own action).
//! 4. **Delete orphans**: files under the table's location that neither a retained snapshot nor
//!    a metadata file in the log references, once older than a grace period (a file younger
//!    than that may belong to a commit another process has not finished).
//!
//! Compaction's rewrite is committed by the lake (`lake::commit`, as upserts and replays are):
//! a `kill -9` at any point leaves the old table or the new one, and what a killed run wrote
//! is an orphan for step 4.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use iceberg::spec::{DataFile, Operation};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{ErrorKind, TableIdent};

use crate::lake::{
    Lake, LakeError, LiveFile, RemovedEntries, Rewrite, Swap, live_files, local_path, now_ms,
    read_files, write_data_stream,
};

/// What a maintenance run may do, from the table's properties (Iceberg's names) and the
/// runtime's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `history.expire.max-snapshot-age-ms`. Iceberg's default is 5 days, which at one commit
    /// every 2 s is 216,000 snapshots in every metadata file: the runtime's is 10 minutes.
    pub max_snapshot_age_ms: i64,
    /// `history.expire.min-snapshots-to-keep` (Iceberg's default, 1).
    pub min_snapshots_to_keep: usize,
    /// `write.target-file-size-bytes` (Iceberg's default, 512 MiB): compaction writes files up to
    /// this size and leaves files of at least 3/4 of it alone.
    pub target_file_bytes: u64,
    /// `contractc.compaction.min-input-files`: a partition is compacted once this many small
    /// files of one tier are in it (Iceberg's rewrite action's `min-input-files`, 5).
    pub min_input_files: usize,
    /// How old an unreferenced file must be before it is deleted.
    pub orphan_grace: Duration,
}

use contract_support::manifest::maintenance::{
    MAX_SNAPSHOT_AGE_MS, MIN_INPUT_FILES, MIN_SNAPSHOTS_TO_KEEP, TARGET_FILE_SIZE,
};

/// A file joins a compaction tier only if it is at most this many times the tier so far: each
/// byte is rewritten a logarithmic number of times, not once per run (size-tiered compaction).
const TIER_RATIO: u64 = 2;

impl Policy {
    /// The policy for a table with `properties` (the contract's, then the runtime's defaults),
    /// under `schedule`'s overrides.
    pub fn of(properties: &BTreeMap<String, String>, schedule: &Schedule) -> Policy {
        let max_age_ms = match schedule.max_snapshot_age {
            Some(age) => u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            None => MAX_SNAPSHOT_AGE_MS.of(properties),
        };
        Policy {
            max_snapshot_age_ms: i64::try_from(max_age_ms).unwrap_or(i64::MAX),
            min_snapshots_to_keep: MIN_SNAPSHOTS_TO_KEEP.of(properties) as usize,
            target_file_bytes: TARGET_FILE_SIZE.of(properties),
            min_input_files: MIN_INPUT_FILES.of(properties) as usize,
            orphan_grace: schedule.orphan_grace,
        }
    }

    fn small_file_bytes(&self) -> u64 {
        self.target_file_bytes / 4 * 3
    }
}

/// What one maintenance run did to one table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Data files replaced by compaction.
    pub compacted_files: usize,
    /// Data files compaction wrote.
    pub written_files: usize,
    pub expired_snapshots: usize,
    pub deleted_orphans: usize,
    pub deleted_bytes: u64,
}

/// A table's size as maintenance sees it (and `/metrics` shows).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    pub data_files: u64,
    pub data_bytes: u64,
    pub rows: u64,
    pub snapshots: u64,
    /// Size of the current metadata file (it holds every retained snapshot).
    pub metadata_bytes: u64,
}

/// Runs every maintenance step on one table. A step that loses a race with a concurrent
/// commit is skipped until the next run (it wrote nothing the table references).
pub async fn maintain(
    lake: &Lake,
    ident: &TableIdent,
    policy: &Policy,
) -> Result<Report, LakeError> {
    let mut report = Report::default();
    (report.compacted_files, report.written_files) = compact(lake, ident, policy).await?;
    report.expired_snapshots = expire_snapshots(lake, ident, policy).await?;
    (report.deleted_orphans, report.deleted_bytes) = delete_orphans(lake, ident, policy).await?;
    Ok(report)
}

/// The table's current size.
pub async fn figures(lake: &Lake, ident: &TableIdent) -> Result<Figures, LakeError> {
    let table = lake.load(ident).await?;
    let live = live_files(&table).await?;
    let metadata_bytes = table
        .metadata_location()
        .and_then(|l| std::fs::metadata(local_path(l)).ok())
        .map_or(0, |m| m.len());
    Ok(Figures {
        data_files: live.len() as u64,
        data_bytes: live.iter().map(|f| f.entry.file_size_in_bytes()).sum(),
        rows: live.iter().map(|f| f.entry.record_count()).sum(),
        snapshots: table.metadata().snapshots().count() as u64,
        metadata_bytes,
    })
}

/// Compacts each partition's smallest tier of files, and merges the manifests, in one
/// replace snapshot. Returns (files replaced, files written).
pub async fn compact(
    lake: &Lake,
    ident: &TableIdent,
    policy: &Policy,
) -> Result<(usize, usize), LakeError> {
    let table = lake.load(ident).await?;
    let live = live_files(&table).await?;
    let default_spec = table.metadata().default_partition_spec_id();
    let mut partitions: HashMap<_, Vec<&LiveFile>> = HashMap::new();
    for file in live.iter().filter(|f| f.spec_id == default_spec) {
        partitions
            .entry(file.entry.data_file.partition().clone())
            .or_default()
            .push(file);
    }
    // One set of files per partition: each is rewritten on its own, so one Parquet writer is
    // open at a time (each holds up to a row group in memory).
    let tiers: Vec<HashSet<String>> = partitions
        .values()
        .map(|files| {
            let sizes: Vec<u64> = files.iter().map(|f| f.entry.file_size_in_bytes()).collect();
            pick_tier(&sizes, policy)
                .into_iter()
                .map(|index| files[index].path().to_string())
                .collect::<HashSet<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect();
    let manifests = table
        .metadata()
        .current_snapshot()
        .map(|s| table.manifest_list_reader(s));
    let manifest_count = match manifests {
        Some(reader) => reader.load().await?.entries().len(),
        None => 0,
    };
    let specs: BTreeSet<i32> = live.iter().map(|f| f.spec_id).collect();
    // Nothing to compact and the manifests already merged: no snapshot for nothing.
    if tiers.is_empty() && manifest_count <= specs.len() {
        return Ok((0, 0));
    }
    let (mut added, mut expected_rows) = (Vec::new(), 0);
    for tier in &tiers {
        let (files, rows) = rewrite_files(ident, &table, &live, tier, policy).await?;
        added.extend(files);
        expected_rows += rows;
    }
    let picked: HashSet<String> = tiers.into_iter().flatten().collect();
    let written = added.len();
    let compacted = picked.len();
    let rewrite = Rewrite {
        removed: picked,
        added,
        operation: Operation::Replace,
        properties: HashMap::new(),
        lsn: None,
        removed_entries: RemovedEntries::Deleted,
    };
    if lake.commit_rewrite(ident, &table, rewrite, None).await? == Swap::Done {
        if compacted > 0 {
            tracing::info!(table = %ident, compacted, written, rows = expected_rows, "compacted");
        }
        Ok((compacted, written))
    } else {
        tracing::info!(table = %ident, "compaction lost a race with a commit; next run");
        Ok((0, 0))
    }
}

/// Writes the rows of `paths` again as files of up to the target size (streamed, one batch
/// at a time); returns the files and their rows. Nothing is committed; if fewer rows come
/// back than the manifests count, the written files are left for orphan deletion and
/// nothing changes.
async fn rewrite_files(
    ident: &TableIdent,
    table: &Table,
    live: &[LiveFile],
    paths: &HashSet<String>,
    policy: &Policy,
) -> Result<(Vec<DataFile>, u64), LakeError> {
    let expected: u64 = live
        .iter()
        .filter(|f| paths.contains(f.path()))
        .map(|f| f.entry.record_count())
        .sum();
    let rows = std::sync::atomic::AtomicU64::new(0);
    let batches = read_files(table, paths).await?.inspect_ok(|b| {
        rows.fetch_add(b.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
    });
    let written = write_data_stream(table, batches, policy.target_file_bytes).await?;
    let rows = rows.into_inner();
    if rows != expected {
        return Err(LakeError::Maintenance {
            table: ident.to_string(),
            message: format!(
                "compaction read {rows} rows from files whose manifests count {expected}; nothing was changed"
            ),
        });
    }
    Ok((written, rows))
}

/// Expires snapshots older than the policy's age, keeping the newest ones it names.
pub async fn expire_snapshots(
    lake: &Lake,
    ident: &TableIdent,
    policy: &Policy,
) -> Result<usize, LakeError> {
    let table = lake.load(ident).await?;
    let metadata = table.metadata();
    let cutoff = now_ms().saturating_sub(policy.max_snapshot_age_ms);
    let before = metadata.snapshots().count();
    let expirable = metadata
        .snapshots()
        .filter(|s| s.timestamp_ms() < cutoff)
        .filter(|s| Some(s.snapshot_id()) != metadata.current_snapshot_id())
        .count();
    if expirable == 0 || before <= policy.min_snapshots_to_keep {
        return Ok(0);
    }
    let tx = Transaction::new(&table);
    let tx = tx
        .expire_snapshots()
        .expire_older_than_ms(cutoff)
        .retain_last(policy.min_snapshots_to_keep)
        .apply(tx)?;
    match tx.commit(&lake.catalog).await {
        Ok(table) => Ok(before.saturating_sub(table.metadata().snapshots().count())),
        Err(error) if error.kind() == ErrorKind::CatalogCommitConflicts => Ok(0),
        Err(error) => Err(error.into()),
    }
}

/// Deletes files under the table's location that nothing retained references and that are
/// older than the grace period. Returns (files, bytes).
pub async fn delete_orphans(
    lake: &Lake,
    ident: &TableIdent,
    policy: &Policy,
) -> Result<(usize, u64), LakeError> {
    let table = lake.load(ident).await?;
    let referenced = referenced_files(&table).await?;
    let root = local_path(table.metadata().location());
    let cutoff = SystemTime::now()
        .checked_sub(policy.orphan_grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut deleted = (0, 0);
    for dir in [root.join("data"), root.join("metadata")] {
        for (path, meta) in files_under(&dir) {
            let old = meta.modified().is_ok_and(|m| m < cutoff);
            if old && !referenced.contains(&path) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        deleted.0 += 1;
                        deleted.1 += meta.len();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(LakeError::Io { path, source }),
                }
            }
        }
    }
    if deleted.0 > 0 {
        tracing::info!(table = %ident, files = deleted.0, bytes = deleted.1, "deleted unreferenced files");
    }
    Ok(deleted)
}

/// When maintenance runs inside `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time between runs; zero turns maintenance off.
    pub every: Duration,
    /// See [`Policy::orphan_grace`].
    pub orphan_grace: Duration,
    /// Overrides every table's `history.expire.max-snapshot-age-ms`.
    pub max_snapshot_age: Option<Duration>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            every: Duration::from_secs(60),
            orphan_grace: Duration::from_secs(300),
            max_snapshot_age: None,
        }
    }
}

/// Runs maintenance on `serve`'s tables between commits (the flusher calls it, so no commit of
/// this process is ever in flight during a run) and keeps the table figures on `/metrics`.
pub struct Maintainer {
    schedule: Schedule,
    tables: Vec<(TableIdent, Policy)>,
    last_run: Option<std::time::Instant>,
    metrics: MaintenanceMetrics,
}

impl Maintainer {
    /// `tables` with the properties their definitions carry.
    pub fn new(
        schedule: Schedule,
        tables: Vec<(TableIdent, BTreeMap<String, String>)>,
        metrics: &crate::metrics::Metrics,
    ) -> Maintainer {
        let tables = tables
            .into_iter()
            .map(|(ident, properties)| (ident, Policy::of(&properties, &schedule)))
            .collect();
        Maintainer {
            schedule,
            tables,
            last_run: None,
            metrics: MaintenanceMetrics::registered(metrics),
        }
    }

    /// Runs if a run is due (never when the schedule is off); figures are refreshed either way
    /// on the first call.
    pub async fn run_if_due(&mut self, lake: &Lake) {
        let due = !self.schedule.every.is_zero()
            && self
                .last_run
                .is_none_or(|last| last.elapsed() >= self.schedule.every);
        if due {
            self.run(lake).await;
        } else if self.last_run.is_none() {
            self.refresh_figures(lake).await;
            self.last_run = Some(std::time::Instant::now());
        }
    }

    /// One run over every table; a failing table is logged and the others still run.
    pub async fn run(&mut self, lake: &Lake) {
        self.last_run = Some(std::time::Instant::now());
        for (ident, policy) in &self.tables {
            let table = ident.to_string();
            match maintain(lake, ident, policy).await {
                Ok(report) => self.metrics.record(&table, &report),
                Err(error) => {
                    tracing::warn!(%table, %error, "maintenance failed; next run retries");
                    self.metrics
                        .failures
                        .with_label_values(&[table.as_str()])
                        .inc();
                }
            }
        }
        self.metrics.last_run.set(now_ms() / 1000);
        self.refresh_figures(lake).await;
    }

    async fn refresh_figures(&self, lake: &Lake) {
        for (ident, _) in &self.tables {
            match figures(lake, ident).await {
                Ok(figures) => self.metrics.show(&ident.to_string(), &figures),
                Err(error) => tracing::warn!(table = %ident, %error, "cannot read table figures"),
            }
        }
    }
}

/// One table's outcome of [`maintain_once`].
#[derive(Debug)]
pub struct TableRun {
    pub table: TableIdent,
    pub before: Figures,
    pub outcome: Result<Report, LakeError>,
    pub after: Figures,
}

/// One maintenance run over the tables of every contract built into this binary that exist
/// under `data_dir` (`contract-runtime maintain`); safe beside a running `serve`.
pub async fn maintain_once(
    data_dir: &Path,
    schedule: &Schedule,
    contracts: crate::Contracts,
) -> Result<Vec<TableRun>, LakeError> {
    // Rewritten data files and metadata are players' data, as serve's are.
    crate::data_dir::owner_only_files();
    let lake = Lake::open(data_dir).await?;
    let mut runs = Vec::new();
    for contract in contracts {
        let manifest = contract.manifest();
        for definition in [manifest.events_table(), manifest.quarantine_table()] {
            let table = crate::lake::table_ident(&definition);
            if !lake.exists(&table).await? {
                continue;
            }
            let policy = Policy::of(&definition.properties, schedule);
            let before = figures(&lake, &table).await?;
            let outcome = maintain(&lake, &table, &policy).await;
            let after = figures(&lake, &table).await?;
            runs.push(TableRun {
                table,
                before,
                outcome,
                after,
            });
        }
    }
    Ok(runs)
}

/// Maintenance's part of `/metrics`.
struct MaintenanceMetrics {
    data_files: prometheus::IntGaugeVec,
    data_bytes: prometheus::IntGaugeVec,
    rows: prometheus::IntGaugeVec,
    snapshots: prometheus::IntGaugeVec,
    metadata_bytes: prometheus::IntGaugeVec,
    compacted: prometheus::IntCounterVec,
    expired: prometheus::IntCounterVec,
    orphans: prometheus::IntCounterVec,
    failures: prometheus::IntCounterVec,
    last_run: prometheus::IntGauge,
}

impl MaintenanceMetrics {
    fn registered(metrics: &crate::metrics::Metrics) -> MaintenanceMetrics {
        let gauge = |name: &str, help: &str| {
            prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), &["table"])
                .expect("valid metric")
        };
        let counter = |name: &str, help: &str| {
            prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &["table"])
                .expect("valid metric")
        };
        let this = MaintenanceMetrics {
            data_files: gauge(
                "contractc_table_data_files",
                "Data files of the current snapshot",
            ),
            data_bytes: gauge(
                "contractc_table_data_bytes",
                "Bytes of the current snapshot's data files",
            ),
            rows: gauge("contractc_table_rows", "Rows of the current snapshot"),
            snapshots: gauge(
                "contractc_table_snapshots",
                "Snapshots retained in the table's metadata",
            ),
            metadata_bytes: gauge(
                "contractc_table_metadata_bytes",
                "Size of the table's current metadata file",
            ),
            compacted: counter(
                "contractc_maintenance_compacted_files_total",
                "Data files replaced by compaction",
            ),
            expired: counter(
                "contractc_maintenance_expired_snapshots_total",
                "Snapshots expired",
            ),
            orphans: counter(
                "contractc_maintenance_deleted_files_total",
                "Unreferenced files deleted",
            ),
            failures: counter(
                "contractc_maintenance_failures_total",
                "Maintenance runs that failed",
            ),
            last_run: prometheus::IntGauge::new(
                "contractc_maintenance_last_run_seconds",
                "Unix time of the last maintenance run",
            )
            .expect("valid metric"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(this.data_files.clone()),
            Box::new(this.data_bytes.clone()),
            Box::new(this.rows.clone()),
            Box::new(this.snapshots.clone()),
            Box::new(this.metadata_bytes.clone()),
            Box::new(this.compacted.clone()),
            Box::new(this.expired.clone()),
            Box::new(this.orphans.clone()),
            Box::new(this.failures.clone()),
            Box::new(this.last_run.clone()),
        ];
        for collector in collectors {
            // Only one Maintainer registers per Metrics; a second would keep its own figures.
            let _ = metrics.register(collector);
        }
        this
    }

    fn record(&self, table: &str, report: &Report) {
        let labels = [table];
        self.compacted
            .with_label_values(&labels)
            .inc_by(report.compacted_files as u64);
        self.expired
            .with_label_values(&labels)
            .inc_by(report.expired_snapshots as u64);
        self.orphans
            .with_label_values(&labels)
            .inc_by(report.deleted_orphans as u64);
    }

    fn show(&self, table: &str, figures: &Figures) {
        let labels = [table];
        let set = |gauge: &prometheus::IntGaugeVec, value: u64| {
            gauge
                .with_label_values(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.data_files, figures.data_files);
        set(&self.data_bytes, figures.data_bytes);
        set(&self.rows, figures.rows);
        set(&self.snapshots, figures.snapshots);
        set(&self.metadata_bytes, figures.metadata_bytes);
    }
}

/// Indices of the files (by `sizes`) to compact together: the small files, smallest first,
/// as long as each is at most [`TIER_RATIO`] times the sum of those before it; none unless
/// there are at least `min_input_files` of them.
pub fn pick_tier(sizes: &[u64], policy: &Policy) -> Vec<usize> {
    let mut small: Vec<usize> = (0..sizes.len())
        .filter(|&i| sizes[i] < policy.small_file_bytes())
        .collect();
    small.sort_by_key(|&i| sizes[i]);
    let mut total = 0u64;
    let mut tier = Vec::new();
    for i in small {
        if total > 0 && sizes[i] > total.saturating_mul(TIER_RATIO) {
            break;
        }
        total = total.saturating_add(sizes[i]);
        tier.push(i);
    }
    if tier.len() >= policy.min_input_files {
        tier
    } else {
        Vec::new()
    }
}

/// Every file a retained snapshot or a logged metadata file needs, as local paths.
async fn referenced_files(table: &Table) -> Result<HashSet<PathBuf>, LakeError> {
    let metadata = table.metadata();
    let mut referenced = HashSet::new();
    referenced.extend(table.metadata_location().map(local_path));
    referenced.extend(
        metadata
            .metadata_log()
            .iter()
            .map(|m| local_path(&m.metadata_file)),
    );
    let mut manifests_seen = HashSet::new();
    for snapshot in metadata.snapshots() {
        referenced.insert(local_path(snapshot.manifest_list()));
        let list = table.manifest_list_reader(snapshot).load().await?;
        for manifest in list.entries() {
            if !manifests_seen.insert(manifest.manifest_path.clone()) {
                continue;
            }
            referenced.insert(local_path(&manifest.manifest_path));
            // Live entries only: a file a snapshot marks deleted was live in its parent, whose
            // own manifests name it as long as that parent is retained.
            for entry in manifest.load_manifest(table.file_io()).await?.entries() {
                if entry.is_alive() {
                    referenced.insert(local_path(entry.file_path()));
                }
            }
        }
    }
    Ok(referenced)
}

/// Regular files below `dir` (recursively) with their metadata; a missing directory is empty.
fn files_under(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), meta));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(target: u64, min_files: usize) -> Policy {
        Policy {
            max_snapshot_age_ms: 0,
            min_snapshots_to_keep: 1,
            target_file_bytes: target,
            min_input_files: min_files,
            orphan_grace: Duration::ZERO,
        }
    }

    #[test]
    fn a_tier_is_the_small_files_of_similar_size() {
        let p = policy(4000, 3);
        // Files of 3000 bytes and more are big enough (3/4 of the target).
        assert_eq!(pick_tier(&[10, 3000, 12, 11], &p), vec![0, 3, 2]);
        // 1000 is more than twice 10 + 11 + 12: it waits for more small files.
        assert_eq!(pick_tier(&[1000, 10, 11, 12], &p), vec![1, 2, 3]);
        assert_eq!(pick_tier(&[1000, 400, 300, 310], &p), vec![2, 3, 1, 0]);
        // Too few files: nothing.
        assert!(pick_tier(&[10, 11], &p).is_empty());
        assert!(pick_tier(&[], &p).is_empty());
    }

    #[test]
    fn properties_use_icebergs_names_and_fall_back_to_defaults() {
        let props = BTreeMap::from([
            (
                MAX_SNAPSHOT_AGE_MS.property.to_string(),
                "60000".to_string(),
            ),
            (TARGET_FILE_SIZE.property.to_string(), "1048576".to_string()),
            (
                MIN_SNAPSHOTS_TO_KEEP.property.to_string(),
                "nonsense".to_string(),
            ),
        ]);
        let p = Policy::of(&props, &Schedule::default());
        assert_eq!(p.max_snapshot_age_ms, 60_000);
        assert_eq!(p.target_file_bytes, 1_048_576);
        assert_eq!(p.min_snapshots_to_keep, 1);
        assert_eq!(p.min_input_files, 5);
        assert_eq!(
            Policy::of(&BTreeMap::new(), &Schedule::default()).max_snapshot_age_ms,
            600_000
        );
        let overridden = Schedule {
            max_snapshot_age: Some(Duration::from_secs(2)),
            ..Schedule::default()
        };
        assert_eq!(Policy::of(&props, &overridden).max_snapshot_age_ms, 2000);
    }
}
