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
//! `u32 length | u32 crc32(payload) | payload`. A torn tail (a crash mid-write) fails its
//! checksum and is cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

/// Rotate segments past this size, so committed ones can be deleted.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Records larger than this are corruption, not events (bodies are capped far lower).
const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the write-ahead log writer has stopped")]
    Stopped,
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
    pub player_id: Option<String>,
    pub body: Vec<u8>,
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
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
        put_bytes(out, &self.body);
        let payload = &out[start + 8..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let mut r = payload;
        let lsn = u64::from_le_bytes(take(&mut r, 8)?.try_into().ok()?);
        let received_micros = i64::from_le_bytes(take(&mut r, 8)?.try_into().ok()?);
        let contract = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
        let request_id = String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?;
        let player_id = match take(&mut r, 1)?[0] {
            1 => Some(String::from_utf8(get_bytes(&mut r)?.to_vec()).ok()?),
            _ => None,
        };
        let body = get_bytes(&mut r)?.to_vec();
        Some(Record {
            lsn,
            contract,
            received_micros,
            request_id,
            player_id,
            body,
        })
    }
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

/// Reads every intact record, in LSN order, cutting a torn tail off the last segment.
pub fn replay(dir: &Path) -> Result<Vec<Record>, WalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut records = Vec::new();
    let all = segments(dir)?;
    for (i, (_, path)) in all.iter().enumerate() {
        let file = File::open(path).map_err(io(path))?;
        let mut reader = BufReader::new(file);
        let mut good_bytes: u64 = 0;
        loop {
            let mut header = [0u8; 8];
            if reader.read_exact(&mut header).is_err() {
                break;
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len > MAX_RECORD_BYTES {
                break;
            }
            let mut payload = vec![0u8; len as usize];
            if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
                break;
            }
            match Record::decode(&payload) {
                Some(record) => records.push(record),
                None => break,
            }
            good_bytes += 8 + u64::from(len);
        }
        let size = std::fs::metadata(path).map_err(io(path))?.len();
        if good_bytes < size {
            if i + 1 == all.len() {
                tracing::warn!(path = %path.display(), kept = good_bytes, size, "cutting a torn write-ahead log tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io(path))?;
                file.set_len(good_bytes).map_err(io(path))?;
                file.sync_all().map_err(io(path))?;
            } else {
                tracing::error!(path = %path.display(), "corrupt record inside an older write-ahead log segment; skipping the rest of it");
            }
        }
    }
    records.sort_by_key(|r| r.lsn);
    Ok(records)
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

struct Pending {
    record: Record,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The writer side: hand records in LSN order, await their durability.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Pending>,
}

impl Wal {
    /// Starts the writer thread; new records go to a fresh segment starting at `next_lsn`.
    pub fn open(dir: &Path, next_lsn: u64) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (tx, rx) = mpsc::channel::<Pending>();
        let mut writer = Writer::new(dir.to_path_buf(), next_lsn)?;
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io(dir))?;
        Ok(Wal { tx })
    }

    /// Queues `record`; the returned receiver resolves once it is on disk. Callers must queue
    /// records in LSN order (the runtime does so under its per-contract lock).
    pub fn append(
        &self,
        record: Record,
    ) -> Result<oneshot::Receiver<Result<(), String>>, WalError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Pending { record, ack })
            .map_err(|_| WalError::Stopped)?;
        Ok(done)
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    size: u64,
    next_lsn: u64,
    buffer: Vec<u8>,
}

impl Writer {
    fn new(dir: PathBuf, next_lsn: u64) -> Result<Writer, WalError> {
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
        })
    }

    fn run(&mut self, rx: mpsc::Receiver<Pending>) {
        while let Ok(first) = rx.recv() {
            // Group commit: everything queued meanwhile shares one fsync.
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
                if group.len() >= 65_536 {
                    break;
                }
            }
            let result = self.write_group(&group).map_err(|e| e.to_string());
            if let Err(error) = &result {
                tracing::error!(%error, "write-ahead log write failed; the events are not acknowledged");
            }
            for pending in group {
                let _ = pending.ack.send(result.clone());
            }
        }
        let _ = self.file.sync_all();
    }

    fn write_group(&mut self, group: &[Pending]) -> Result<(), WalError> {
        if self.size >= SEGMENT_BYTES {
            let first = group.first().map_or(self.next_lsn, |p| p.record.lsn);
            self.path = self.dir.join(segment_name(first));
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io(&self.path))?;
            self.size = 0;
            sync_dir(&self.dir)?;
        }
        self.buffer.clear();
        for pending in group {
            pending.record.encode(&mut self.buffer);
            self.next_lsn = pending.record.lsn + 1;
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
            body: format!("{{\"n\": {lsn}}}").into_bytes(),
        }
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
            .map(|lsn| wal.append(record(lsn)).unwrap())
            .collect();
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        let replayed = replay(&dir).unwrap();
        assert_eq!(replayed, (1..=100).map(record).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off() {
        let dir = temp_dir("torn");
        let wal = Wal::open(&dir, 1).unwrap();
        for lsn in 1..=3 {
            wal.append(record(lsn)).unwrap().await.unwrap().unwrap();
        }
        let (_, path) = segments(&dir).unwrap().pop().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        assert_eq!(replay(&dir).unwrap().len(), 2);
        // The cut is permanent: appending after it yields a clean log.
        let wal = Wal::open(&dir, 3).unwrap();
        wal.append(record(3)).unwrap().await.unwrap().unwrap();
        assert_eq!(
            replay(&dir)
                .unwrap()
                .iter()
                .map(|r| r.lsn)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
