//! Deduplication (#21): every event id stored within the contract's window, so a client's
//! retry of an event whose answer it lost is answered as the original was and never stored
//! again.
//!
//! An id enters the index *pending* when its event is judged (under the contract's lock, so a
//! retry racing its original sees it), becomes *stored* once the log has written it, and is
//! removed if that write failed (the client was told to retry). A retry of a pending event
//! waits for its original's outcome.
//!
//! What survives a crash: the write-ahead log holds every record above the last truncation,
//! and before the log is truncated the ids of the records it drops are appended to a journal
//! (`dedup/<contract>.ids`, fsynced). A start reads the journal, then the log: every id of the
//! window that was ever acknowledged is back. Expired ids leave the index as it is swept, and
//! the journal when it is rewritten (once it holds twice what is live).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use contract_judge::dedup::{EventId, event_id};
use contract_support::Verdict;
use contract_support::json::Parser;
use contract_support::manifest::Manifest;
use tokio::sync::Notify;

use crate::wal::Record;

/// A journal record: id (16), seconds (8), verdict (1), padding (3), crc32 of the rest (4).
const RECORD: usize = 32;
/// How long a retry waits for its original's write before it is told to retry later.
const PENDING_WAIT: Duration = Duration::from_secs(10);
/// Expired ids are swept at most this often.
const SWEEP_EVERY_SECONDS: u64 = 60;

#[derive(Debug, thiserror::Error)]
#[error("deduplication journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    source: std::io::Error,
}

/// What the index knows of an id.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When its event was received, in seconds since the epoch.
    at: u32,
    verdict: Verdict,
    state: State,
    /// The index's generation when the id was judged: a rebuild after a failed log write starts
    /// a new one, and a late settlement of an older group leaves newer entries alone.
    generation: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Judged; the log has not written it yet.
    Pending,
    /// In the log.
    Stored,
    /// In the journal too (the log may drop it).
    Journaled,
}

/// What a judged event's id says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Not seen within the window: judge and store it.
    New,
    /// A retry of a stored event, with the verdict the original got.
    Stored(Verdict),
    /// A retry of an event whose write is under way: wait for it ([`Index::outcome`]).
    Pending,
}

pub(crate) struct Index {
    window_seconds: u64,
    journal_path: PathBuf,
    inner: Mutex<Inner>,
    /// Told whenever pending ids are settled, for the retries waiting on them.
    settled: Notify,
}

struct Inner {
    seen: HashMap<EventId, Seen>,
    /// Ids of logged records not yet journaled, in log order: (LSN, id).
    unjournaled: VecDeque<(u64, EventId)>,
    journal: File,
    journal_records: u64,
    last_sweep: u64,
    generation: u16,
}

impl Index {
    /// Opens `dir/<contract>.ids` (creating it) and loads the ids of the window from it.
    pub(crate) fn open(
        dir: &Path,
        manifest: &Manifest,
        now_seconds: u64,
    ) -> Result<Option<Index>, JournalError> {
        let Some(dedup) = &manifest.ingest.dedup else {
            return Ok(None);
        };
        let journal_path = dir.join(format!("{}.ids", manifest.name));
        let error = |source| JournalError {
            path: journal_path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let mut journal = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&journal_path)
            .map_err(error)?;
        let mut bytes = Vec::new();
        journal.read_to_end(&mut bytes).map_err(error)?;
        let oldest = now_seconds.saturating_sub(dedup.window_seconds);
        let mut seen = HashMap::new();
        let mut journal_records = 0;
        for record in bytes.chunks_exact(RECORD) {
            journal_records += 1;
            if let Some((id, at, verdict)) = decode(record)
                && at >= oldest
            {
                seen.insert(
                    id,
                    Seen {
                        at: seconds(at),
                        verdict,
                        state: State::Journaled,
                        generation: 0,
                    },
                );
            }
        }
        // A torn tail (a crash mid-append) is cut off, so later appends stay aligned.
        let whole = journal_records * RECORD as u64;
        if whole < bytes.len() as u64 {
            journal.set_len(whole).map_err(error)?;
        }
        Ok(Some(Index {
            window_seconds: dedup.window_seconds,
            journal_path,
            inner: Mutex::new(Inner {
                seen,
                unjournaled: VecDeque::new(),
                journal,
                journal_records,
                last_sweep: now_seconds,
                generation: 0,
            }),
            settled: Notify::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the ids of the log's stored events (a start, or a rebuild after a failed write):
    /// they are acknowledged, and the journal does not have them yet.
    pub(crate) fn load_log(&self, manifest: &Manifest, records: &[Record]) {
        let mut parser = Parser::new();
        let mut inner = self.lock();
        for record in records.iter().filter(|r| r.contract == manifest.name) {
            let verdict = record
                .acknowledged
                .as_ref()
                .map_or(Verdict::Accept, |a| a.verdict);
            if verdict == Verdict::Reject {
                continue;
            }
            if let Some(id) = event_id(manifest, &mut parser, &record.body) {
                let at = seconds_of(record.received_micros);
                let (state, generation) = (State::Stored, inner.generation);
                let seen = Seen {
                    at,
                    verdict,
                    state,
                    generation,
                };
                inner.seen.insert(id, seen);
                inner.unjournaled.push_back((record.lsn, id));
            }
        }
    }

    /// Forgets what is not in the journal (a failed write: the log is read again), and starts
    /// a new generation.
    pub(crate) fn forget_unjournaled(&self) {
        let mut inner = self.lock();
        inner.seen.retain(|_, s| s.state == State::Journaled);
        inner.unjournaled.clear();
        inner.generation = inner.generation.wrapping_add(1);
        drop(inner);
        self.settled.notify_waiters();
    }

    pub(crate) fn lookup(&self, id: EventId) -> Lookup {
        match self.lock().seen.get(&id) {
            None => Lookup::New,
            Some(seen) if seen.state == State::Pending => Lookup::Pending,
            Some(seen) => Lookup::Stored(seen.verdict),
        }
    }

    /// Records a judged event that is being stored (accepted or quarantined).
    pub(crate) fn judged(&self, id: EventId, verdict: Verdict, received_micros: i64) {
        let at = seconds_of(received_micros);
        let mut inner = self.lock();
        let (state, generation) = (State::Pending, inner.generation);
        let seen = Seen {
            at,
            verdict,
            state,
            generation,
        };
        inner.seen.insert(id, seen);
    }

    /// The generation ids judged now belong to (stable while events are judged: a rebuild
    /// holds the gate).
    pub(crate) fn generation(&self) -> u16 {
        self.lock().generation
    }

    /// The LSNs the log gave the judged events' records.
    pub(crate) fn logged(&self, ids: impl IntoIterator<Item = (u64, EventId)>) {
        self.lock().unjournaled.extend(ids);
    }

    /// The log wrote (`stored`) or failed to write the pending `ids` of one group, judged in
    /// `generation`, whose records have the LSNs `lsns`.
    pub(crate) fn settle(
        &self,
        ids: &[EventId],
        stored: bool,
        generation: u16,
        lsns: std::ops::Range<u64>,
    ) {
        let mut inner = self.lock();
        for id in ids {
            let ours = |s: &Seen| s.state == State::Pending && s.generation == generation;
            match inner.seen.get_mut(id) {
                Some(seen) if stored && ours(seen) => seen.state = State::Stored,
                Some(seen) if !stored && ours(seen) => {
                    inner.seen.remove(id);
                }
                _ => {}
            }
        }
        if !stored {
            inner.unjournaled.retain(|(lsn, _)| !lsns.contains(lsn));
        }
        drop(inner);
        self.settled.notify_waiters();
    }

    /// How long from now a request's retries may wait for their originals.
    pub(crate) fn wait_deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + PENDING_WAIT
    }

    /// The verdict of a pending event once its write is done; None if it failed (or is not
    /// done by `deadline`): the retry is told to retry again.
    pub(crate) async fn outcome(
        &self,
        id: EventId,
        deadline: tokio::time::Instant,
    ) -> Option<Verdict> {
        let wait = async {
            loop {
                let notified = self.settled.notified();
                match self.lookup(id) {
                    Lookup::Stored(verdict) => return Some(verdict),
                    Lookup::New => return None,
                    Lookup::Pending => notified.await,
                }
            }
        };
        tokio::time::timeout_at(deadline, wait).await.ok().flatten()
    }

    /// Journals the ids of records up to `lsn` (the log is about to drop them), fsynced;
    /// sweeps expired ids now and then, and rewrites the journal once it is mostly expired.
    pub(crate) fn persist_through(&self, lsn: u64, now_seconds: u64) -> Result<(), JournalError> {
        let error = |source| JournalError {
            path: self.journal_path.clone(),
            source,
        };
        let mut guard = self.lock();
        let inner = &mut *guard;
        // Written and fsynced first, marked after: a failed write changes nothing (and is cut
        // off, so later records stay aligned), and the log keeps these records meanwhile.
        let count = inner
            .unjournaled
            .iter()
            .take_while(|(l, _)| *l <= lsn)
            .count();
        let mut bytes = Vec::with_capacity(count * RECORD);
        for (_, id) in inner.unjournaled.iter().take(count) {
            if let Some(seen) = inner.seen.get(id) {
                encode(*id, u64::from(seen.at), seen.verdict, &mut bytes);
            }
        }
        if !bytes.is_empty() {
            let written = inner
                .journal
                .write_all(&bytes)
                .and_then(|()| inner.journal.sync_data());
            if let Err(source) = written {
                let _ = inner.journal.set_len(inner.journal_records * RECORD as u64);
                return Err(error(source));
            }
            inner.journal_records += (bytes.len() / RECORD) as u64;
        }
        for (_, id) in inner.unjournaled.drain(..count) {
            if let Some(seen) = inner.seen.get_mut(&id) {
                seen.state = State::Journaled;
            }
        }
        if now_seconds >= inner.last_sweep + SWEEP_EVERY_SECONDS {
            inner.last_sweep = now_seconds;
            let oldest = now_seconds.saturating_sub(self.window_seconds);
            inner
                .seen
                .retain(|_, s| s.state == State::Pending || u64::from(s.at) >= oldest);
            let live = inner.seen.len() as u64;
            if inner.journal_records > 2 * live + 65_536 {
                self.rewrite(inner).map_err(error)?;
            }
        }
        Ok(())
    }

    /// Replaces the journal by one holding only the journaled ids still in the window.
    fn rewrite(&self, inner: &mut Inner) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for (id, seen) in &inner.seen {
            if seen.state == State::Journaled {
                encode(*id, u64::from(seen.at), seen.verdict, &mut bytes);
            }
        }
        let temporary = self.journal_path.with_extension("ids.new");
        let mut file = File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        // Opened before the rename, so the handle is the new journal's whatever happens next;
        // until the rename, the old journal (and its handle) stays in use.
        let appending = OpenOptions::new().append(true).open(&temporary)?;
        std::fs::rename(&temporary, &self.journal_path)?;
        inner.journal = appending;
        inner.journal_records = (bytes.len() / RECORD) as u64;
        if let Some(dir) = self.journal_path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Bytes the index has allocated for its ids, from its tables' capacities (a hash table
    /// of `capacity / 7 * 8` buckets rounded up to a power of two, each an entry and a control
    /// byte), for `/metrics` and the load benchmark's bytes per id.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let inner = self.lock();
        let buckets = (inner.seen.capacity() * 8 / 7).next_power_of_two();
        buckets * (std::mem::size_of::<(EventId, Seen)>() + 1)
            + inner.unjournaled.capacity() * std::mem::size_of::<(u64, EventId)>()
    }

    /// Ids in the index (pending ones included), for `/metrics`.
    pub(crate) fn len(&self) -> usize {
        self.lock().seen.len()
    }
}

/// The whole seconds of a time in microseconds since the epoch, as the index keeps them.
fn seconds_of(micros: i64) -> u32 {
    seconds(u64::try_from(micros / 1_000_000).unwrap_or(0))
}

fn seconds(at: u64) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

fn encode(id: EventId, at: u64, verdict: Verdict, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&id.0);
    out.extend_from_slice(&at.to_le_bytes());
    out.push(match verdict {
        Verdict::Accept => 0,
        Verdict::Quarantine => 1,
        Verdict::Reject => 2,
    });
    out.extend_from_slice(&[0; 3]);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A journal record, unless damaged.
fn decode(record: &[u8]) -> Option<(EventId, u64, Verdict)> {
    let (body, crc) = record.split_at(RECORD - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let id = EventId(body[..16].try_into().ok()?);
    let at = u64::from_le_bytes(body[16..24].try_into().ok()?);
    let verdict = match body[24] {
        0 => Verdict::Accept,
        1 => Verdict::Quarantine,
        _ => return None,
    };
    Some((id, at, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> &'static Manifest {
        contract_validators::ALL
            .iter()
            .map(|c| c.manifest())
            .find(|m| m.name == "game_events")
            .expect("game_events")
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("contractc-dedup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn id(n: u8) -> EventId {
        EventId([n; 16])
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_stored_id_is_a_duplicate_and_a_failed_one_is_not() {
        let dir = temp_dir("settle");
        let index = Index::open(&dir, manifest(), NOW).unwrap().unwrap();
        assert_eq!(index.lookup(id(1)), Lookup::New);
        index.judged(id(1), Verdict::Quarantine, NOW as i64 * 1_000_000);
        index.judged(id(2), Verdict::Accept, NOW as i64 * 1_000_000);
        assert_eq!(index.lookup(id(1)), Lookup::Pending);
        index.settle(&[id(1)], true, 0, 0..0);
        index.settle(&[id(2)], false, 0, 0..0);
        assert_eq!(index.lookup(id(1)), Lookup::Stored(Verdict::Quarantine));
        assert_eq!(index.lookup(id(2)), Lookup::New);
    }

    #[test]
    fn journaled_ids_survive_a_restart_until_the_window_passes() {
        let dir = temp_dir("journal");
        let index = Index::open(&dir, manifest(), NOW).unwrap().unwrap();
        for n in 1..=3 {
            index.judged(id(n), Verdict::Accept, NOW as i64 * 1_000_000);
        }
        index.settle(&[id(1), id(2), id(3)], true, 0, 0..0);
        index.logged([(10, id(1)), (11, id(2)), (12, id(3))]);
        index.persist_through(11, NOW).unwrap();
        // A torn record at the end is cut off, not misread.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("game_events.ids"))
            .unwrap()
            .write_all(&[7; 9])
            .unwrap();
        let reopened = Index::open(&dir, manifest(), NOW + 60).unwrap().unwrap();
        assert_eq!(reopened.lookup(id(1)), Lookup::Stored(Verdict::Accept));
        assert_eq!(reopened.lookup(id(2)), Lookup::Stored(Verdict::Accept));
        // Not journaled: the log still holds it, and a start reads it from there.
        assert_eq!(reopened.lookup(id(3)), Lookup::New);
        let day = 24 * 3600;
        let later = Index::open(&dir, manifest(), NOW + day + 1)
            .unwrap()
            .unwrap();
        assert_eq!(later.lookup(id(1)), Lookup::New, "expired with the window");
    }

    #[test]
    fn a_mostly_expired_journal_is_rewritten_with_the_live_ids() {
        let dir = temp_dir("rewrite");
        let index = Index::open(&dir, manifest(), NOW).unwrap().unwrap();
        let total = 70_000u32;
        let ids: Vec<EventId> = (0..total)
            .map(|n| {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&n.to_le_bytes());
                EventId(bytes)
            })
            .collect();
        for (n, id) in ids.iter().enumerate() {
            // The first ten thousand are a day older than the rest.
            let at = if n < 10_000 { NOW - 24 * 3600 } else { NOW };
            index.judged(*id, Verdict::Accept, at as i64 * 1_000_000);
            index.logged([(n as u64, *id)]);
        }
        index.settle(&ids, true, 0, 0..0);
        index.persist_through(u64::MAX, NOW).unwrap();
        let journal = dir.join("game_events.ids");
        let before = std::fs::metadata(&journal).unwrap().len();
        // A minute later the older ten thousand have expired: too few to rewrite for.
        index.persist_through(u64::MAX, NOW + 61).unwrap();
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), before);
        index
            .persist_through(u64::MAX, NOW + 24 * 3600 + 1)
            .unwrap();
        assert_eq!(index.len(), 0);
        assert_eq!(
            std::fs::metadata(&journal).unwrap().len(),
            0,
            "rewritten empty"
        );
    }

    #[tokio::test]
    async fn a_retry_waits_for_its_originals_write() {
        let dir = temp_dir("wait");
        let index = std::sync::Arc::new(Index::open(&dir, manifest(), NOW).unwrap().unwrap());
        index.judged(id(5), Verdict::Accept, NOW as i64 * 1_000_000);
        let waiting = tokio::spawn({
            let index = index.clone();
            async move { index.outcome(id(5), Index::wait_deadline()).await }
        });
        tokio::task::yield_now().await;
        index.settle(&[id(5)], true, 0, 0..0);
        assert_eq!(waiting.await.unwrap(), Some(Verdict::Accept));
        index.judged(id(6), Verdict::Accept, NOW as i64 * 1_000_000);
        let failing = tokio::spawn({
            let index = index.clone();
            async move { index.outcome(id(6), Index::wait_deadline()).await }
        });
        tokio::task::yield_now().await;
        index.settle(&[id(6)], false, 0, 0..0);
        assert_eq!(failing.await.unwrap(), None);
    }

    #[test]
    fn a_late_settlement_of_a_failed_group_leaves_a_newer_pending_id_alone() {
        let dir = temp_dir("generation");
        let index = Index::open(&dir, manifest(), NOW).unwrap().unwrap();
        index.judged(id(7), Verdict::Accept, NOW as i64 * 1_000_000);
        // The write failed; the rebuild forgets it before its settlement runs…
        index.forget_unjournaled();
        // …and the same event, sent again, is judged anew and logged at LSN 20.
        index.judged(id(7), Verdict::Accept, NOW as i64 * 1_000_000);
        index.logged([(20, id(7))]);
        index.settle(&[id(7)], false, 0, 10..11);
        assert_eq!(
            index.lookup(id(7)),
            Lookup::Pending,
            "the newer entry stays"
        );
        index.settle(&[id(7)], true, 1, 20..21);
        index.persist_through(20, NOW).unwrap();
        let reopened = Index::open(&dir, manifest(), NOW).unwrap().unwrap();
        assert_eq!(reopened.lookup(id(7)), Lookup::Stored(Verdict::Accept));
    }
}
