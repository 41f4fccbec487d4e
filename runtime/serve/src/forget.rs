//! `contract-runtime forget` (#23): erases data subjects from everything `serve` keeps.
//!
//! For each contract's two tables: the data files holding a subject's rows are rewritten
//! without them and committed (`Lake::commit_rewrite`, a compare-and-swap like every commit)
//! in manifests that list the removed files nowhere (their column bounds may be the subject's
//! value); every older snapshot is expired and every file the table no longer references that
//! is older than the erasure is deleted at once. Then the subject's records leave the
//! write-ahead log (its segments rewritten) and the dev identity provider's guest store.
//!
//! A subject is matched as each column stores it: as sent, or hashed under every key of the
//! key document (rotation keeps old keys listed for this). The receipt names no subject.
//!
//! It runs while `serve` is stopped: it holds `DATA_DIR/serve.lock`, which `serve` holds while
//! it runs, so neither can start while the other works on the directory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use contract_judge::privacy::Keys;
use contract_support::manifest::{EnrichmentSource, Manifest, Pii};
use futures::{StreamExt, TryStreamExt};
use iceberg::TableIdent;
use iceberg::spec::Operation;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDirLock;
use crate::lake::{
    DEFAULT_TARGET_FILE_BYTES, Lake, LakeError, RemovedEntries, Rewrite, Swap, read_files,
    write_data_stream,
};
use crate::maintenance::{Policy, Schedule, delete_orphans};

/// The scan column naming each row's data file.
const FILE_COLUMN: &str = "_file";
/// Commits lost to a concurrent writer before `forget` gives up on a table.
const ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Iceberg(#[from] iceberg::Error),
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "{contract} stores its subject hashed: give the key document (--pii-keys-file or \
         CONTRACTC_PII_KEYS), or keep DATA_DIR/pii-keys.json"
    )]
    NoKeys { contract: String },
    #[error("{table}: {message}")]
    Table { table: String, message: String },
    /// The data directory is missing, or `serve` holds it.
    #[error("{0}")]
    Busy(String),
}

/// What was erased, for the operator's records (no subject in it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    pub subjects: usize,
    pub started: String,
    pub finished: String,
    pub tables: Vec<TableReceipt>,
    pub log_records_removed: usize,
    pub guests_removed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct TableReceipt {
    pub table: String,
    pub rows_removed: usize,
    pub files_rewritten: usize,
    pub snapshots_expired: usize,
    pub files_deleted: usize,
}

/// Erases `subjects` from the data directory (see the module docs).
pub async fn forget(
    data_dir: &Path,
    specs: crate::Contracts,
    keys: Option<&Keys>,
    subjects: &[String],
) -> Result<Receipt, ForgetError> {
    let started = now_rfc3339();
    if !data_dir.is_dir() {
        return Err(ForgetError::Busy(format!(
            "{} is no data directory: give the one serve used (--data-dir)",
            data_dir.display()
        )));
    }
    let since = SystemTime::now();
    let _lock = DataDirLock::take(data_dir).map_err(ForgetError::Busy)?;
    let lake = Lake::open(data_dir).await?;
    let manifests: Vec<&'static Manifest> = specs.iter().map(|s| s.manifest()).collect();
    let tables = erase_tables(&lake, &manifests, keys, subjects, since).await?;
    let subject_set: HashSet<&str> = subjects.iter().map(String::as_str).collect();
    let log_records_removed = crate::wal::purge(&data_dir.join("wal"), |record| {
        let spec = specs.iter().find(|s| s.manifest().name == record.contract);
        record_is_about(record, spec.map(|s| s.manifest()), &subject_set)
    })?;
    let guests_removed = crate::identity::forget_guests(data_dir, &subject_set)?;
    Ok(Receipt {
        subjects: subjects.len(),
        started,
        finished: now_rfc3339(),
        tables,
        log_records_removed,
        guests_removed,
    })
}

/// Erases `subjects` from each contract's two tables (see the module docs). Files written
/// since `since` are left alone: they may be another writer's, not committed yet.
pub async fn erase_tables(
    lake: &Lake,
    manifests: &[&'static Manifest],
    keys: Option<&Keys>,
    subjects: &[String],
    since: SystemTime,
) -> Result<Vec<TableReceipt>, ForgetError> {
    let mut tables = Vec::new();
    for &manifest in manifests {
        let matchers = Matchers::of(manifest, keys, subjects)?;
        let database = &manifest.table.database;
        let events = TableIdent::from_strs([database.as_str(), manifest.table.name.as_str()])
            .map_err(LakeError::from)?;
        let quarantine =
            TableIdent::from_strs([database.as_str(), &manifest.quarantine_table_name()])
                .map_err(LakeError::from)?;
        let count = subjects.len();
        tables.push(erase(lake, &events, &matchers.events, count, since).await?);
        tables.push(erase(lake, &quarantine, &matchers.quarantine, count, since).await?);
    }
    Ok(tables)
}

/// Whether a logged event is about one of `subjects`: sent by one (its token's subject or a
/// claim), or naming one in the contract's subject field.
pub(crate) fn record_is_about(
    record: &crate::wal::Record,
    manifest: Option<&Manifest>,
    subjects: &HashSet<&str>,
) -> bool {
    if record
        .player_id
        .as_deref()
        .is_some_and(|p| subjects.contains(p))
        || record
            .claims
            .iter()
            .any(|(_, v)| subjects.contains(v.as_str()))
    {
        return true;
    }
    let member = manifest.and_then(payload_subject);
    member.is_some_and(|member| {
        member_value(&String::from_utf8_lossy(&record.body), member)
            .is_some_and(|v| subjects.contains(v.as_str()))
    })
}

/// The contract's subject when it is a field of the payload (not an enrichment).
fn payload_subject(manifest: &Manifest) -> Option<&str> {
    let subject = manifest.subject.as_deref()?;
    manifest
        .fields
        .iter()
        .any(|f| f.name == subject)
        .then_some(subject)
}

/// A top-level string member of a JSON object.
fn member_value(text: &str, member: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get(member)?.as_str().map(str::to_string)
}

/// Which rows of a contract's two tables are about the subjects.
struct Matchers {
    events: Matcher,
    quarantine: Matcher,
}

/// Rows whose `column` holds one of `values`, or whose payload (`raw_payload`) member holds one.
struct Matcher {
    column: Option<(String, HashSet<String>)>,
    payload: Option<(String, HashSet<String>)>,
}

impl Matchers {
    fn of(
        manifest: &Manifest,
        keys: Option<&Keys>,
        subjects: &[String],
    ) -> Result<Matchers, ForgetError> {
        let stored = |pii: Pii| -> Result<Option<HashSet<String>>, ForgetError> {
            Ok(match pii {
                Pii::No | Pii::Keep => Some(subjects.iter().cloned().collect()),
                Pii::Hash => {
                    let keys = keys.ok_or_else(|| ForgetError::NoKeys {
                        contract: manifest.name.clone(),
                    })?;
                    Some(subjects.iter().flat_map(|s| keys.every_hash(s)).collect())
                }
                // The checker refuses such a subject; a masked or dropped player cannot be found.
                Pii::Mask | Pii::Drop => None,
            })
        };
        let events = match (&manifest.subject, manifest.subject_pii()) {
            (Some(column), Some(pii)) => stored(pii)?.map(|v| (column.clone(), v)),
            _ => None,
        };
        let player = stored(manifest.quarantine_subject_pii())?.map(|v| ("player_id".into(), v));
        let payload = match (payload_subject(manifest), manifest.subject_pii()) {
            (Some(member), Some(pii)) => stored(pii)?.map(|v| (member.to_string(), v)),
            _ => None,
        };
        let player_is_subject = manifest.enrichments.iter().any(|e| {
            e.source == EnrichmentSource::JwtSub && Some(&e.name) == manifest.subject.as_ref()
        });
        Ok(Matchers {
            events: Matcher {
                column: events,
                payload: None,
            },
            quarantine: Matcher {
                // The token's subject is the data subject unless the contract names another.
                column: player.filter(|_| player_is_subject || manifest.subject.is_none()),
                payload,
            },
        })
    }
}

impl Matcher {
    fn is_empty(&self) -> bool {
        self.column.is_none() && self.payload.is_none()
    }

    fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self.column.iter().map(|(c, _)| c.clone()).collect();
        if self.payload.is_some() {
            columns.push("raw_payload".into());
        }
        columns
    }

    /// `batch` without the rows to erase.
    fn without_matches(&self, batch: &RecordBatch) -> Result<RecordBatch, iceberg::Error> {
        let unexpected = |e: String| iceberg::Error::new(iceberg::ErrorKind::Unexpected, e);
        let erase = self.erase(batch).map_err(unexpected)?;
        let keep: BooleanArray = erase.iter().map(|e| Some(e != Some(true))).collect();
        arrow_select::filter::filter_record_batch(batch, &keep)
            .map_err(|e| unexpected(e.to_string()))
    }

    /// True for each row to erase.
    fn erase(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let strings = |name: &str| -> Result<&StringArray, String> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| format!("no string column `{name}`"))
        };
        let mut erase = vec![false; batch.num_rows()];
        if let Some((name, values)) = &self.column {
            for (row, value) in strings(name)?.iter().enumerate() {
                erase[row] |= value.is_some_and(|v| values.contains(v));
            }
        }
        if let Some((member, values)) = &self.payload {
            for (row, text) in strings("raw_payload")?.iter().enumerate() {
                erase[row] |= text
                    .and_then(|t| member_value(t, member))
                    .is_some_and(|v| values.contains(&v));
            }
        }
        Ok(BooleanArray::from(erase))
    }
}

/// Erases the matching rows of one table, then everything that still references them.
async fn erase(
    lake: &Lake,
    ident: &TableIdent,
    matcher: &Matcher,
    subjects: usize,
    since: SystemTime,
) -> Result<TableReceipt, ForgetError> {
    let mut receipt = TableReceipt {
        table: ident.to_string(),
        ..TableReceipt::default()
    };
    if matcher.is_empty() || !lake.table_exists(ident).await? {
        return Ok(receipt);
    }
    let (rows, files) = remove_rows(lake, ident, matcher, subjects).await?;
    receipt.rows_removed = rows;
    receipt.files_rewritten = files;
    receipt.snapshots_expired = expire_all_but_current(lake, ident).await?;
    // Unreferenced files from before the erasure: the removed ones among them.
    let before = Policy::of(
        &std::collections::BTreeMap::new(),
        &Schedule {
            orphan_grace: since.elapsed().unwrap_or(Duration::ZERO),
            ..Schedule::default()
        },
    );
    receipt.files_deleted = delete_orphans(lake, ident, &before).await?.0;
    Ok(receipt)
}

/// Rewrites the files holding matching rows without them; returns (rows, files).
async fn remove_rows(
    lake: &Lake,
    ident: &TableIdent,
    matcher: &Matcher,
    subjects: usize,
) -> Result<(usize, usize), ForgetError> {
    for _ in 0..ATTEMPTS {
        let table = lake.load(ident).await?;
        if table.metadata().current_snapshot().is_none() {
            return Ok((0, 0));
        }
        let hits = files_with_matches(&table, matcher).await?;
        if hits.is_empty() {
            return Ok((0, 0));
        }
        let removed = (hits.values().sum(), hits.len());
        let paths: HashSet<String> = hits.into_keys().collect();
        let kept = read_files(&table, &paths)
            .await?
            .and_then(|batch| std::future::ready(matcher.without_matches(&batch)));
        let rewrite = Rewrite {
            removed: paths,
            added: write_data_stream(&table, kept, DEFAULT_TARGET_FILE_BYTES).await?,
            operation: Operation::Overwrite,
            properties: HashMap::from([(
                "contractc.erasure".to_string(),
                format!("{subjects} subject(s)"),
            )]),
            lsn: None,
            // The removed files' entries would keep their column bounds: the erased values.
            removed_entries: RemovedEntries::Omitted,
        };
        if lake.commit_rewrite(ident, &table, rewrite, None).await? == Swap::Done {
            return Ok(removed);
        }
    }
    Err(lost_races(ident))
}

fn lost_races(ident: &TableIdent) -> ForgetError {
    ForgetError::Table {
        table: ident.to_string(),
        message: format!("{ATTEMPTS} commits in a row lost to another writer"),
    }
}

/// The current snapshot's data files holding matching rows, with how many each holds.
async fn files_with_matches(
    table: &iceberg::table::Table,
    matcher: &Matcher,
) -> Result<HashMap<String, usize>, ForgetError> {
    let mut columns = matcher.columns();
    columns.push(FILE_COLUMN.to_string());
    let mut batches = table.scan().select(columns).build()?.to_arrow().await?;
    let mut hits: HashMap<String, usize> = HashMap::new();
    let trouble = |message: String| ForgetError::Table {
        table: table.identifier().to_string(),
        message,
    };
    while let Some(batch) = batches.next().await.transpose()? {
        if batch.num_rows() == 0 {
            continue;
        }
        let erase = matcher.erase(&batch).map_err(trouble)?;
        let count = erase.true_count();
        if count > 0 {
            let file = crate::upsert::batch_file(&batch)
                .ok_or_else(|| trouble("a scan batch without its `_file`".into()))?;
            *hits.entry(file).or_default() += count;
        }
    }
    Ok(hits)
}

/// Expires every snapshot but the current one; returns how many.
async fn expire_all_but_current(lake: &Lake, ident: &TableIdent) -> Result<usize, ForgetError> {
    let table = lake.load(ident).await?;
    let before = table.metadata().snapshots().count();
    if before <= 1 {
        return Ok(0);
    }
    let tx = Transaction::new(&table);
    let tx = tx
        .expire_snapshots()
        .expire_older_than_ms(i64::MAX)
        .retain_last(1)
        .apply(tx)
        .map_err(LakeError::from)?;
    let table = tx.commit(&lake.catalog).await.map_err(LakeError::from)?;
    Ok(before.saturating_sub(table.metadata().snapshots().count()))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where a receipt goes by default: `DATA_DIR/erasures/<time>.json`.
pub fn default_receipt_path(data_dir: &Path, receipt: &Receipt) -> PathBuf {
    data_dir
        .join("erasures")
        .join(format!("{}.json", receipt.finished.replace(':', "-")))
}
