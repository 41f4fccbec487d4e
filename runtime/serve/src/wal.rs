//! Write-ahead log: what makes a 200 mean "this event survives a crash".
//!
//! Every judged event (accepted, quarantined or rejected) is appended as a record with a
//! monotonically increasing log sequence number (LSN). One writer thread batches whatever is
//! queued, writes it, calls `fsync` once (group commit) and only then acknowledges the whole
//! group. Iceberg commits record the highest LSN they cover in the snapshot summary; on start
//! the runtime replays the records above each table's LSN, so every acknowledged event lands
//! exactly once.
//!
//! Format: segments `wal/NNNNNNNNNNNNNNNNNNNN.log` named by their first LSN; a record is
//! `u32 length | u32 crc32(payload) | payload`. The length's top two bits give the payload's
//! format: the second (top bit) adds the token's claims, the third (both bits) adds the verdict
//! the event was acknowledged with, its violations, and the record it supersedes, so a restart
//! routes each event to the table its acknowledgement promised whatever the running build
//! says (`route`). Records of the first two formats still replay. A torn tail (a crash
//! mid-write) fails its checksum and is cut off on open. A damaged record elsewhere (a flipped
//! bit) is skipped: replay looks for the next frame whose checksum holds and goes on from
//! there, so one bad record never takes the intact ones after it along.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use contract_support::{Code, Policy, Verdict, Violation};
use tokio::sync::oneshot;

mod route;
pub use route::{Committed, Route, route};

/// Rotate segments past this size, so committed ones can be deleted.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Records larger than this are corruption, not events (bodies are capped far lower).
const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;
/// Set in a frame's length word: the payload has the second format (or the third, with
/// [`FORMAT_3`]).
const FORMAT_2: u32 = 1 << 31;
/// Set with [`FORMAT_2`]: the payload has the third format (the acknowledged verdict).
const FORMAT_3: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the write-ahead log writer has stopped")]
    Stopped,
    #[error("the write-ahead log write failed: {0}")]
    Failed(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One judged event, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub lsn: u64,
    pub contract: String,
    /// Microseconds since the epoch when the runtime received the event (its ingest time).
    pub received_micros: i64,
    pub request_id: String,
    /// The token's subject (`jwt.sub`).
    pub player_id: Option<String>,
    /// The token's other string claims the contract enriches from, so a replayed event gets
    /// the same enrichment as it would have had.
    pub claims: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the client was told; None in records of the first two formats, written before
    /// the log kept it.
    pub acknowledged: Option<Acknowledged>,
    /// The LSN of the record this one replaces: an event acknowledged as accepted that a later
    /// build refused before it was committed is logged again as quarantined (`Route::Relog`).
    pub supersedes: Option<u64>,
}

/// The verdict an event was acknowledged with, and the violations its quarantine row holds
/// (none for an accepted event: its warnings are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
}

impl Acknowledged {
    pub fn new(verdict: Verdict, violations: &[Violation]) -> Acknowledged {
        let violations = match verdict {
            Verdict::Accept => Vec::new(),
            Verdict::Quarantine | Verdict::Reject => violations.to_vec(),
        };
        Acknowledged {
            verdict,
            violations,
        }
    }
}

/// How a payload is laid out, from its frame's length word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    First,
    Second,
    Third,
}

impl Format {
    fn of(word: u32) -> Option<Format> {
        match (word & FORMAT_2 != 0, word & FORMAT_3 != 0) {
            (false, false) => Some(Format::First),
            (true, false) => Some(Format::Second),
            (true, true) => Some(Format::Third),
            (false, true) => None,
        }
    }

    fn bits(self) -> u32 {
        match self {
            Format::First => 0,
            Format::Second => FORMAT_2,
            Format::Third => FORMAT_2 | FORMAT_3,
        }
    }
}

impl Record {
    /// This event logged again under `lsn` as refused with `verdict`, replacing this record.
    pub fn relogged(&self, lsn: u64, verdict: Verdict, violations: Vec<Violation>) -> Record {
        Record {
            lsn,
            acknowledged: Some(Acknowledged {
                verdict,
                violations,
            }),
            supersedes: Some(self.lsn),
            ..self.clone()
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_as(out, Format::Third);
    }

    /// Frames the record in `format` (tests write the older formats with it). A format that
    /// cannot hold the verdict drops it.
    fn encode_as(&self, out: &mut Vec<u8>, format: Format) {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&self.lsn.to_le_bytes());
        out.extend_from_slice(&self.received_micros.to_le_bytes());
        put_bytes(out, self.contract.as_bytes());
        put_bytes(out, self.request_id.as_bytes());
        match &self.player_id {
            Some(p) => {
                out.push(1);
                put_bytes(out, p.as_bytes());
            }
            None => out.push(0),
        }
        if format != Format::First {
            out.extend_from_slice(&(self.claims.len() as u32).to_le_bytes());
            for (name, value) in &self.claims {
                put_bytes(out, name.as_bytes());
                put_bytes(out, value.as_bytes());
            }
        }
        put_bytes(out, &self.body);
        if format == Format::Third {
            put_acknowledged(out, self.acknowledged.as_ref());
            match self.supersedes {
                Some(lsn) => {
                    out.push(1);
                    out.extend_from_slice(&lsn.to_le_bytes());
                }
                None => out.push(0),
            }
        }
        let payload = &out[start + 8..];
        let len = payload.len() as u32 | format.bits();
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8], format: Format) -> Option<Record> {
        let mut r = payload;
        let lsn = u64::from_le_bytes(take(&mut r, 8)?.try_into().ok()?);
        let received_micros = i64::from_le_bytes(take(&mut r, 8)?.try_into().ok()?);
        let contract = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
        let request_id = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
        let player_id = match take(&mut r, 1)?[0] {
            1 => Some(String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?),
            _ => None,
        };
        let mut claims = Vec::new();
        if format != Format::First {
            let count = u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?);
            for _ in 0..count {
                let name = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
                let value = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
                claims.push((name, value));
            }
        }
        let body = get_bytes(&mut r)?.to_vec();
        let (acknowledged, supersedes) = match format {
            Format::Third => {
                let acknowledged = get_acknowledged(&mut r)?;
                let supersedes = match take(&mut r, 1)?[0] {
                    0 => None,
                    1 => Some(u64::from_le_bytes(take(&mut r, 8)?.try_into().ok()?)),
                    _ => return None,
                };
                (acknowledged, supersedes)
            }
            Format::First | Format::Second => (None, None),
        };
        if !r.is_empty() {
            return None;
        }
        Some(Record {
            lsn,
            contract,
            received_micros,
            request_id,
            player_id,
            claims,
            body,
            acknowledged,
            supersedes,
        })
    }
}

fn verdict_byte(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Accept => 1,
        Verdict::Quarantine => 2,
        Verdict::Reject => 3,
    }
}

fn verdict_of(byte: u8) -> Option<Verdict> {
    match byte {
        1 => Some(Verdict::Accept),
        2 => Some(Verdict::Quarantine),
        3 => Some(Verdict::Reject),
        _ => None,
    }
}

fn policy_byte(policy: Policy) -> u8 {
    match policy {
        Policy::Warn => 1,
        Policy::Quarantine => 2,
        Policy::Reject => 3,
    }
}

fn policy_of(byte: u8) -> Option<Policy> {
    match byte {
        1 => Some(Policy::Warn),
        2 => Some(Policy::Quarantine),
        3 => Some(Policy::Reject),
        _ => None,
    }
}

/// `u8 verdict (0: none) | u32 count | count × (code, path, u8 policy, message)`.
fn put_acknowledged(out: &mut Vec<u8>, acknowledged: Option<&Acknowledged>) {
    let Some(acknowledged) = acknowledged else {
        out.push(0);
        return;
    };
    out.push(verdict_byte(acknowledged.verdict));
    out.extend_from_slice(&(acknowledged.violations.len() as u32).to_le_bytes());
    for violation in &acknowledged.violations {
        // Codes by name: a code's name is stable, its position in the enum is not.
        put_bytes(out, violation.code.as_str().as_bytes());
        put_bytes(out, violation.path.as_bytes());
        out.push(policy_byte(violation.policy));
        put_bytes(out, violation.message.as_bytes());
    }
}

/// The verdict part of a third-format payload: `Some(None)` when it holds none.
fn get_acknowledged(r: &mut &[u8]) -> Option<Option<Acknowledged>> {
    let verdict = match take(r, 1)?[0] {
        0 => return Some(None),
        byte => verdict_of(byte)?,
    };
    let count = u32::from_le_bytes(take(r, 4)?.try_into().ok()?);
    let mut violations = Vec::new();
    for _ in 0..count {
        let code = Code::parse(std::str::from_utf8(get_bytes(r)?).ok()?)?;
        let path = String::from_utf8(get_bytes(r)?.to_vec()).ok()?;
        let policy = policy_of(take(r, 1)?[0])?;
        let message = String::from_utf8(get_bytes(r)?.to_vec()).ok()?;
        violations.push(Violation {
            code,
            path,
            policy,
            message,
        });
    }
    Some(Some(Acknowledged {
        verdict,
        violations,
    }))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn get_bytes<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(take(r, 4)?.try_into().ok()?) as usize;
    take(r, len)
}

fn segment_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.log")
}

fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The record framed at the start of `bytes`, with its frame length, if its checksum holds
/// and it decodes.
fn frame_at(bytes: &[u8]) -> Option<(Record, usize)> {
    let header = bytes.get(..8)?;
    let word = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let format = Format::of(word)?;
    let len = word & !(FORMAT_2 | FORMAT_3);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let payload = bytes.get(8..8 + len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Record::decode(payload, format).map(|record| (record, 8 + len as usize))
}

/// What one segment holds: its intact records, how many damaged stretches were skipped, and
/// where its readable part ends (a torn tail starts there).
struct Segment {
    records: Vec<Record>,
    skipped: usize,
    end: usize,
}

fn read_segment(bytes: &[u8]) -> Segment {
    let mut records: Vec<Record> = Vec::new();
    let mut skipped = 0;
    let mut at = 0;
    let mut end = 0;
    while at < bytes.len() {
        if let Some((record, len)) = frame_at(&bytes[at..]) {
            at += len;
            end = at;
            records.push(record);
            continue;
        }
        // Damage: find the next frame that holds (a later LSN, a valid checksum), if any.
        let last = records.last().map(|r| r.lsn);
        let next = (at + 1..bytes.len())
            .find(|&i| frame_at(&bytes[i..]).is_some_and(|(r, _)| last.is_none_or(|l| r.lsn > l)));
        match next {
            Some(i) => {
                skipped += 1;
                at = i;
            }
            None => break,
        }
    }
    Segment {
        records,
        skipped,
        end,
    }
}

/// Reads every intact record, in LSN order, changing nothing (for a rebuild while the writer
/// runs).
pub fn read_records(dir: &Path) -> Result<Vec<Record>, WalError> {
    let mut records = Vec::new();
    for (_, path) in segments(dir)? {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        records.extend(read_segment(&bytes).records);
    }
    records.sort_by_key(|r| r.lsn);
    Ok(records)
}

/// Removes the records `erase` picks from every segment, each rewritten whole (to a temporary
/// file, synced, renamed over it); returns how many. Damaged stretches of a rewritten segment
/// go with it. Only while no writer runs (`forget` holds the data directory's lock).
pub fn purge(dir: &Path, mut erase: impl FnMut(&Record) -> bool) -> Result<usize, WalError> {
    let mut removed = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for (_, path) in segments(dir)? {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let segment = read_segment(&bytes);
        let before = segment.records.len();
        let kept: Vec<&Record> = segment.records.iter().filter(|r| !erase(r)).collect();
        if kept.len() == before {
            continue;
        }
        removed += before - kept.len();
        let mut out = Vec::with_capacity(bytes.len());
        for record in kept {
            record.encode(&mut out);
        }
        let staged = path.with_extension("purge");
        let mut file = std::fs::File::create(&staged).map_err(io(&staged))?;
        file.write_all(&out).map_err(io(&staged))?;
        file.sync_all().map_err(io(&staged))?;
        std::fs::rename(&staged, &path).map_err(io(&path))?;
    }
    if removed > 0 {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(removed)
}

/// Recovers the log at start: reads every intact record, in LSN order, skipping damaged records
/// whose successors are intact and cutting a torn tail off the last segment.
pub fn recover(dir: &Path) -> Result<Vec<Record>, WalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut records = Vec::new();
    let all = segments(dir)?;
    for (i, (_, path)) in all.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(io(path))?;
        // What is replayed is on disk first: a crash between a write and its fsync can leave
        // records only in the page cache, and a replayed event (its id too) must outlive the
        // next crash.
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io(path))?;
        let segment = read_segment(&bytes);
        if segment.skipped > 0 {
            tracing::error!(path = %path.display(), skipped = segment.skipped, kept = segment.records.len(), "damaged write-ahead log records skipped; the intact ones after them are replayed");
        }
        records.extend(segment.records);
        if segment.end < bytes.len() {
            if i + 1 == all.len() {
                tracing::warn!(path = %path.display(), kept = segment.end, size = bytes.len(), "cutting a torn write-ahead log tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io(path))?;
                file.set_len(segment.end as u64).map_err(io(path))?;
                file.sync_all().map_err(io(path))?;
            } else {
                tracing::error!(path = %path.display(), "unreadable end of an older write-ahead log segment");
            }
        }
    }
    records.sort_by_key(|r| r.lsn);
    Ok(records)
}

/// What an acknowledgement from [`Wal::append`] said, once received (by `.await` or
/// `blocking_recv`).
pub fn acknowledged(
    answer: Result<Result<(), String>, oneshot::error::RecvError>,
) -> Result<(), WalError> {
    answer
        .map_err(|_| WalError::Stopped)?
        .map_err(WalError::Failed)
}

/// Bytes of log on disk.
pub fn size(dir: &Path) -> Result<u64, WalError> {
    let mut total = 0;
    for (_, path) in segments(dir)? {
        total += std::fs::metadata(&path).map_err(io(&path))?.len();
    }
    Ok(total)
}

/// Deletes segments whose records are all at or below `committed` (every table has them).
pub fn truncate(dir: &Path, committed: u64) -> Result<usize, WalError> {
    let all = segments(dir)?;
    let mut removed = 0;
    // A segment's records are below the next segment's first LSN; the last one stays open.
    for window in all.windows(2) {
        let (_, path) = &window[0];
        let (next_first, _) = window[1];
        if next_first.saturating_sub(1) <= committed {
            std::fs::remove_file(path).map_err(io(path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Records written together, all or nothing, and their one acknowledgement.
struct Pending {
    records: Vec<Record>,
    ack: oneshot::Sender<Result<(), String>>,
}

enum Message {
    Append(Pending),
    /// Acknowledged once everything queued before it is written (or has failed).
    Barrier(oneshot::Sender<()>),
    /// Starts a new segment once everything queued before it is written: the records before
    /// it are then in closed segments, deleted by [`truncate`] once committed (`forget`).
    Rotate(oneshot::Sender<Result<u64, String>>),
}

/// The writer side: hand records in LSN order, await their durability.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Message>,
    /// Set when a write failed: events were buffered that the log does not hold.
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Wal {
    /// Starts the writer thread; new records go to a fresh segment starting at `next_lsn`.
    pub fn open(dir: &Path, next_lsn: u64) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (tx, rx) = mpsc::channel::<Message>();
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writer = Writer::new(dir.to_path_buf(), next_lsn, failed.clone())?;
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io(dir))?;
        Ok(Wal { tx, failed })
    }

    /// Queues `records`, written all or nothing; the returned receiver resolves once they are
    /// on disk (or failed, and are not). Callers queue a contract's records in LSN order (the
    /// runtime does so under its per-contract lock).
    pub fn append(
        &self,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<Result<(), String>>, WalError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message::Append(Pending { records, ack }))
            .map_err(|_| WalError::Stopped)?;
        Ok(done)
    }

    /// Resolves once everything queued so far is written or has failed.
    pub fn barrier(&self) -> Result<oneshot::Receiver<()>, WalError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message::Barrier(ack))
            .map_err(|_| WalError::Stopped)?;
        Ok(done)
    }

    /// Closes the current segment after everything queued so far: resolves, with the first
    /// LSN the new segment can hold, once the next record will go to it.
    pub fn rotate(&self) -> Result<oneshot::Receiver<Result<u64, String>>, WalError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message::Rotate(ack))
            .map_err(|_| WalError::Stopped)?;
        Ok(done)
    }

    /// Whether a write failed since the last call (and clears it).
    pub fn take_failure(&self) -> bool {
        self.failed.swap(false, std::sync::atomic::Ordering::AcqRel)
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    size: u64,
    next_lsn: u64,
    buffer: Vec<u8>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    fn new(
        dir: PathBuf,
        next_lsn: u64,
        failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Writer, WalError> {
        let path = dir.join(segment_name(next_lsn));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let size = file.metadata().map_err(io(&path))?.len();
        sync_dir(&dir)?;
        Ok(Writer {
            dir,
            file,
            path,
            size,
            next_lsn,
            buffer: Vec::with_capacity(1 << 20),
            failed,
        })
    }

    fn run(&mut self, rx: mpsc::Receiver<Message>) {
        let mut next = rx.recv().ok();
        while let Some(message) = next.take() {
            let first = match message {
                Message::Barrier(ack) => {
                    let _ = ack.send(());
                    next = rx.recv().ok();
                    continue;
                }
                Message::Rotate(ack) => {
                    let opened = self.open_next_segment().map(|()| self.next_lsn);
                    let _ = ack.send(opened.map_err(|e| e.to_string()));
                    next = rx.recv().ok();
                    continue;
                }
                Message::Append(pending) => pending,
            };
            // Group commit: everything queued meanwhile shares one fsync (up to a barrier).
            let mut group = vec![first];
            while group.len() < 65_536 {
                match rx.try_recv() {
                    Ok(Message::Append(more)) => group.push(more),
                    Ok(stop @ (Message::Barrier(_) | Message::Rotate(_))) => {
                        next = Some(stop);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let result = self.write_group(&group).map_err(|e| e.to_string());
            if let Err(error) = &result {
                self.failed
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::error!(%error, "write-ahead log write failed; the events are not acknowledged");
            }
            for pending in group {
                let _ = pending.ack.send(result.clone());
            }
            if next.is_none() {
                next = rx.recv().ok();
            }
        }
        let _ = self.file.sync_all();
    }

    /// Starts the segment the next record goes to, named by its LSN (records are queued in
    /// LSN order, so every later one is at least that). An empty current segment is kept.
    fn open_next_segment(&mut self) -> Result<(), WalError> {
        if self.size == 0 {
            return Ok(());
        }
        self.file.sync_all().map_err(io(&self.path))?;
        self.start_segment(self.next_lsn)
    }

    /// Appends to the segment named by `first_lsn` from now on.
    fn start_segment(&mut self, first_lsn: u64) -> Result<(), WalError> {
        self.path = self.dir.join(segment_name(first_lsn));
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        self.size = 0;
        sync_dir(&self.dir)
    }

    /// Writes a group and fsyncs it. On failure (a full disk, an I/O error) the segment is cut
    /// back to where the group began, so no part of an unacknowledged group is ever replayed.
    fn write_group(&mut self, group: &[Pending]) -> Result<(), WalError> {
        let result = self.try_write_group(group);
        if result.is_err()
            && let Err(error) = self.file.set_len(self.size)
        {
            tracing::error!(%error, path = %self.path.display(), "cannot cut a failed write off the write-ahead log");
        }
        result
    }

    fn try_write_group(&mut self, group: &[Pending]) -> Result<(), WalError> {
        if self.size >= SEGMENT_BYTES {
            let first = group
                .iter()
                .flat_map(|p| p.records.first())
                .next()
                .map_or(self.next_lsn, |r| r.lsn);
            self.start_segment(first)?;
        }
        self.buffer.clear();
        for record in group.iter().flat_map(|p| &p.records) {
            record.encode(&mut self.buffer);
            self.next_lsn = record.lsn + 1;
        }
        self.file.write_all(&self.buffer).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.size += self.buffer.len() as u64;
        Ok(())
    }
}

/// Makes a new file's directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lsn: u64) -> Record {
        Record {
            lsn,
            contract: "game_events".into(),
            received_micros: 1_700_000_000_000_000 + lsn as i64,
            request_id: format!("r{lsn}"),
            player_id: lsn.is_multiple_of(2).then(|| "p".to_string()),
            claims: if lsn.is_multiple_of(3) {
                vec![("team".to_string(), format!("t{lsn}"))]
            } else {
                Vec::new()
            },
            body: format!("{{\"n\": {lsn}}}").into_bytes(),
            acknowledged: Some(match lsn % 4 {
                0 => Acknowledged::new(Verdict::Accept, &[]),
                1 => Acknowledged::new(Verdict::Quarantine, &[violation(Code::NotBefore)]),
                2 => Acknowledged::new(
                    Verdict::Reject,
                    &[violation(Code::Pattern), violation(Code::TooLarge)],
                ),
                _ => Acknowledged::new(Verdict::Reject, &[]),
            }),
            supersedes: lsn.is_multiple_of(5).then_some(lsn / 2),
        }
    }

    fn violation(code: Code) -> Violation {
        Violation {
            code,
            path: "$.updated_at".into(),
            policy: if code == Code::NotBefore {
                Policy::Quarantine
            } else {
                Policy::Reject
            },
            message: format!("broke {code}"),
        }
    }

    /// `record` as a format that cannot hold everything decodes it.
    fn as_decoded_from(mut record: Record, format: Format) -> Record {
        record.acknowledged = None;
        record.supersedes = None;
        if format == Format::First {
            record.claims.clear();
        }
        record
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn appended_records_replay_in_order() {
        let dir = temp_dir("order");
        let wal = Wal::open(&dir, 1).unwrap();
        let acks: Vec<_> = (1..=100)
            .map(|lsn| wal.append(vec![record(lsn)]).unwrap())
            .collect();
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        let replayed = recover(&dir).unwrap();
        assert_eq!(replayed, (1..=100).map(record).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off() {
        let dir = temp_dir("torn");
        let wal = Wal::open(&dir, 1).unwrap();
        for lsn in 1..=3 {
            wal.append(vec![record(lsn)])
                .unwrap()
                .await
                .unwrap()
                .unwrap();
        }
        let (_, path) = segments(&dir).unwrap().pop().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        assert_eq!(recover(&dir).unwrap().len(), 2);
        // The cut is permanent: appending after it yields a clean log.
        let wal = Wal::open(&dir, 3).unwrap();
        wal.append(vec![record(3)]).unwrap().await.unwrap().unwrap();
        assert_eq!(
            recover(&dir)
                .unwrap()
                .iter()
                .map(|r| r.lsn)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_damaged_record_costs_only_itself() {
        let dir = temp_dir("flip");
        let wal = Wal::open(&dir, 1).unwrap();
        for lsn in 1..=100 {
            wal.append(vec![record(lsn)])
                .unwrap()
                .await
                .unwrap()
                .unwrap();
        }
        let (_, path) = segments(&dir).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // Flip one bit in the payload of an early record, then one in a length word.
        bytes[8 * 2 + 40] ^= 0x10;
        let len = bytes.len();
        bytes[len / 2] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let replayed = recover(&dir).unwrap();
        assert!(
            replayed.len() >= 97,
            "{} of 100 records replayed",
            replayed.len()
        );
        let lsns: Vec<u64> = replayed.iter().map(|r| r.lsn).collect();
        assert!(lsns.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            lsns.last(),
            Some(&100),
            "the records after the damage survive"
        );
        for r in &replayed {
            assert_eq!(r, &record(r.lsn), "a replayed record is intact");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_rotation_closes_the_segment_so_truncation_drops_what_came_before() {
        let dir = std::env::temp_dir().join(format!("wal-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let wal = Wal::open(&dir, 1).expect("open");
        let written = wal.append((1..=3).map(record).collect()).expect("append");
        written.blocking_recv().expect("ack").expect("written");
        let first_after = wal.rotate().expect("rotate").blocking_recv().expect("ack");
        assert_eq!(first_after, Ok(4));
        let written = wal.append(vec![record(4)]).expect("append");
        written.blocking_recv().expect("ack").expect("written");
        assert_eq!(
            truncate(&dir, 3).expect("truncate"),
            1,
            "the closed segment went"
        );
        let left: Vec<u64> = read_records(&dir)
            .expect("read")
            .iter()
            .map(|r| r.lsn)
            .collect();
        assert_eq!(left, [4]);
        // With no writer left, purging rewrites a segment without the records it picks.
        drop(wal);
        assert_eq!(purge(&dir, |r| r.lsn == 4).expect("purge"), 1);
        assert!(read_records(&dir).expect("read").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_of_the_first_format_still_replay() {
        let mut out = Vec::new();
        let mut old = record(7);
        old.claims.clear();
        old.encode_as(&mut out, Format::First);
        // The first format by hand: lsn, time, contract, request id, player, body; no bit.
        let mut expected = Vec::new();
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&old.received_micros.to_le_bytes());
        put_bytes(&mut expected, b"game_events");
        put_bytes(&mut expected, b"r7");
        expected.push(0);
        put_bytes(&mut expected, &old.body);
        assert_eq!(out[8..], expected[..]);
        let word = u32::from_le_bytes(out[..4].try_into().unwrap());
        assert_eq!(word, expected.len() as u32, "no format bit");
        let (decoded, len) = frame_at(&out).expect("a first-format frame");
        assert_eq!(len, out.len());
        assert_eq!(decoded, as_decoded_from(old, Format::First));
    }

    #[test]
    fn records_of_the_second_format_replay_without_a_verdict() {
        let mut out = Vec::new();
        for lsn in 1..=6 {
            record(lsn).encode_as(&mut out, Format::Second);
        }
        let segment = read_segment(&out);
        assert_eq!(segment.skipped, 0);
        let expected: Vec<Record> = (1..=6)
            .map(|lsn| as_decoded_from(record(lsn), Format::Second))
            .collect();
        assert_eq!(segment.records, expected);
        assert!(segment.records.iter().all(|r| r.acknowledged.is_none()));
    }

    #[test]
    fn formats_mix_in_one_segment() {
        // A log written by the previous version, then by this one after an upgrade.
        let mut out = Vec::new();
        record(1).encode_as(&mut out, Format::Second);
        record(2).encode(&mut out);
        record(3).encode_as(&mut out, Format::Second);
        record(4).encode(&mut out);
        let records = read_segment(&out).records;
        assert_eq!(
            records,
            [
                as_decoded_from(record(1), Format::Second),
                record(2),
                as_decoded_from(record(3), Format::Second),
                record(4),
            ]
        );
    }

    #[test]
    fn the_verdict_and_what_it_supersedes_round_trip() {
        for lsn in 1..=20 {
            let mut out = Vec::new();
            record(lsn).encode(&mut out);
            assert_eq!(frame_at(&out).map(|(r, _)| r), Some(record(lsn)));
        }
        let relogged = record(9).relogged(30, Verdict::Reject, vec![violation(Code::MaxLength)]);
        assert_eq!(relogged.supersedes, Some(9));
        assert_eq!(relogged.body, record(9).body);
        let mut out = Vec::new();
        relogged.encode(&mut out);
        assert_eq!(frame_at(&out).map(|(r, _)| r), Some(relogged));
        // A record of this format whose verdict is missing still decodes.
        let mut bare = record(8);
        bare.acknowledged = None;
        let mut out = Vec::new();
        bare.encode(&mut out);
        assert_eq!(frame_at(&out).map(|(r, _)| r), Some(bare));
    }

    #[test]
    fn a_flipped_format_bit_is_damage_not_another_format() {
        let mut out = Vec::new();
        record(1).encode(&mut out);
        for bit in [FORMAT_2, FORMAT_3] {
            let mut damaged = out.clone();
            let word = u32::from_le_bytes(damaged[..4].try_into().unwrap()) ^ bit;
            damaged[..4].copy_from_slice(&word.to_le_bytes());
            assert_eq!(frame_at(&damaged), None, "format bit {bit:#x} flipped");
        }
    }
}
