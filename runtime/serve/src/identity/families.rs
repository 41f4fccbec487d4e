//! Refresh-token rotation, as the OAuth 2.0 Security BCP (RFC 9700, §4.14.2) recommends.
//!
//! Every refresh token belongs to the family of the login that issued the first one and carries
//! its generation in that family. A refresh spends its token and issues the next generation.
//! A spent token presented again means two parties hold it, one of them a thief (or a client
//! that lost an answer): the whole family is revoked, so neither the thief's newest token nor
//! the player's refreshes any more, and the player logs in again with its guest secret.
//!
//! Only families that refreshed at least once are recorded, and only until their tokens expire:
//! memory and the log follow the players of the last days, not every login ever made. The log
//! is appended once per refresh (written before the answer, so a restart keeps what was spent)
//! and rewritten without expired families once it has grown to twice what it held.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Seconds a family is kept past its expiry: the verifier's leeway on `exp`.
const EXPIRY_LEEWAY: u64 = 5;
/// Lines appended before the log is rewritten, beyond as many as it held after its last
/// rewrite: rewrites stay rare, and the log and memory within twice the live families (plus
/// this).
const REWRITE_SLACK: usize = 1024;

/// What is known of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Family {
    /// The newest generation spent.
    spent: u64,
    revoked: bool,
    /// When the family's tokens expire (seconds since the epoch): the first token's `exp`.
    expires: u64,
}

/// The outcome of presenting one generation of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spend {
    /// The family's newest token: spent now; the next generation may be issued.
    Accepted,
    /// A token spent before: the family is revoked from now on.
    Reused,
    /// The family was revoked already.
    Revoked,
    /// A generation this provider has no record of issuing (its log was lost or edited).
    Unknown,
}

/// The refresh-token families in use, and their log.
pub(super) struct Families {
    live: HashMap<String, Family>,
    path: PathBuf,
    file: File,
    /// Lines appended since the log was last rewritten.
    appended: usize,
    /// Families the log held when it was last rewritten.
    rewritten_with: usize,
}

impl Families {
    /// Loads the families of `path` still unexpired at `now`, and rewrites the log with those.
    pub(super) fn open(path: &Path, now: u64) -> std::io::Result<Families> {
        let mut live = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (id, family) in text.lines().filter_map(parse_line) {
                    merge(&mut live, id, family);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        live.retain(|_, f: &mut Family| !expired(f, now));
        let file = rewrite_log(path, log_lines(&live))?;
        Ok(Families {
            rewritten_with: live.len(),
            live,
            path: path.to_path_buf(),
            file,
            appended: 0,
        })
    }

    /// Presents generation `generation` of `family`, whose tokens expire at `expires`.
    pub(super) fn spend(&mut self, family: &str, generation: u64, expires: u64, now: u64) -> Spend {
        let known = self.live.get(family).copied();
        if known.is_some_and(|f| f.revoked) {
            return Spend::Revoked;
        }
        let next = known.map_or(0, |f| f.spent + 1);
        let (outcome, record) = if generation == next {
            let spent = Family {
                spent: generation,
                revoked: false,
                expires,
            };
            (Spend::Accepted, spent)
        } else if generation < next {
            let revoked = Family {
                spent: next - 1,
                revoked: true,
                expires,
            };
            (Spend::Reused, revoked)
        } else {
            return Spend::Unknown;
        };
        self.live.insert(family.to_string(), record);
        self.append(family, &record, now);
        outcome
    }

    /// Records a change; rewrites the log (without expired families) once it has grown enough.
    fn append(&mut self, id: &str, family: &Family, now: u64) {
        // Not fsynced, like the guests: a crash of the machine (not of the process) may forget
        // the last rotations, and a token spent just before it could then be spent once more.
        if let Err(error) = self.file.write_all(log_line(id, family).as_bytes()) {
            tracing::warn!(%error, path = %self.path.display(), "cannot record a refresh");
        }
        self.appended += 1;
        if self.appended > self.rewritten_with + REWRITE_SLACK {
            self.live.retain(|_, f| !expired(f, now));
            // Counted afresh either way: a failing rewrite is retried after as many lines again,
            // not on every refresh.
            self.appended = 0;
            self.rewritten_with = self.live.len();
            match rewrite_log(&self.path, log_lines(&self.live)) {
                Ok(file) => self.file = file,
                Err(error) => {
                    tracing::warn!(%error, path = %self.path.display(), "cannot rewrite the refresh log");
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.len()
    }
}

fn expired(family: &Family, now: u64) -> bool {
    family.expires + EXPIRY_LEEWAY < now
}

/// A later record of a family replaces an earlier one, but a revocation stays.
fn merge(live: &mut HashMap<String, Family>, id: String, family: Family) {
    let revoked = live.get(&id).is_some_and(|f| f.revoked);
    live.insert(
        id,
        Family {
            revoked: revoked || family.revoked,
            ..family
        },
    );
}

/// `family spent expires`, or `family revoked expires`.
fn log_line(id: &str, family: &Family) -> String {
    if family.revoked {
        format!("{id} revoked {}\n", family.expires)
    } else {
        format!("{id} {} {}\n", family.spent, family.expires)
    }
}

fn log_lines(live: &HashMap<String, Family>) -> String {
    let mut lines: Vec<String> = live.iter().map(|(id, f)| log_line(id, f)).collect();
    lines.sort();
    lines.concat()
}

/// One line of the log; None for a damaged one (a torn last line after a crash).
fn parse_line(line: &str) -> Option<(String, Family)> {
    let mut parts = line.split(' ');
    let (id, state, expires) = (parts.next()?, parts.next()?, parts.next()?);
    let expires = expires.parse().ok()?;
    let family = match state {
        "revoked" => Family {
            spent: 0,
            revoked: true,
            expires,
        },
        spent => Family {
            spent: spent.parse().ok()?,
            revoked: false,
            expires,
        },
    };
    (!id.is_empty() && parts.next().is_none()).then(|| (id.to_string(), family))
}

/// Replaces the log at `path` with `contents` (through a rename, so a crash leaves one or the
/// other) and opens it for appending. Owner-only whatever the umask: it names players.
pub(super) fn rewrite_log(path: &Path, contents: String) -> std::io::Result<File> {
    let mut partial_name = path.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(contents.as_bytes())?;
    drop(file);
    std::fs::rename(&partial, path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_log(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("families-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("refresh.log")
    }

    #[test]
    fn each_generation_is_spent_once_and_reuse_revokes_the_family() {
        let path = temp_log("reuse");
        let mut families = Families::open(&path, 100).expect("open");
        assert_eq!(families.spend("f", 0, 1000, 100), Spend::Accepted);
        assert_eq!(families.spend("f", 1, 1000, 100), Spend::Accepted);
        assert_eq!(families.spend("f", 5, 1000, 100), Spend::Unknown);
        assert_eq!(families.spend("f", 1, 1000, 100), Spend::Reused);
        assert_eq!(families.spend("f", 2, 1000, 100), Spend::Revoked);
        assert_eq!(families.spend("other", 0, 1000, 100), Spend::Accepted);
        // A restart remembers both the revocation and what was spent.
        drop(families);
        let mut families = Families::open(&path, 200).expect("reopen");
        assert_eq!(families.spend("f", 2, 1000, 200), Spend::Revoked);
        assert_eq!(families.spend("other", 0, 1000, 200), Spend::Reused);
    }

    #[test]
    fn expired_families_are_forgotten_and_the_log_stays_bounded() {
        let path = temp_log("bounded");
        let mut families = Families::open(&path, 100).expect("open");
        for i in 0..10_000u64 {
            // Every family expires a second after its refresh, the clock moving on.
            families.spend(&format!("f{i}"), 0, 100 + i, 100 + i);
        }
        assert!(families.len() < 3_000, "{} families kept", families.len());
        let lines = std::fs::read_to_string(&path).expect("log").lines().count();
        assert!(lines < 4_000, "{lines} lines in the log");
        drop(families);
        let families = Families::open(&path, 1_000_000).expect("reopen");
        assert_eq!(families.len(), 0);
        assert_eq!(std::fs::read_to_string(&path).expect("log"), "");
    }

    #[test]
    fn damaged_lines_are_skipped() {
        assert_eq!(parse_line("f 3 1000").map(|(_, f)| f.spent), Some(3));
        assert!(parse_line("f revoked 1000").is_some_and(|(_, f)| f.revoked));
        for damaged in ["", "f", "f 3", "f x 1000", "f 3 1000 9", " 3 1000"] {
            assert!(parse_line(damaged).is_none(), "{damaged:?}");
        }
    }
}
