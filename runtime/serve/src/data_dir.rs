//! The data directory holds players' data (the log, keys, guests, catalog, Parquet): every
//! command that writes there makes its files readable by their owner only.

use std::path::Path;

/// Makes every file and directory this process creates from now on owner-only (umask 077).
pub fn owner_only_files() {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// Creates `dir` if needed and makes it and what is created in it owner-only.
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    owner_only_files();
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

/// Why an exclusive lock on a file was not taken.
#[derive(Debug)]
pub enum LockError {
    /// The file could not be opened (or made).
    Open(std::io::Error),
    /// Another process holds it.
    Held,
}

/// An exclusive `flock` on `path` (made if missing), held until the file is dropped or the
/// process ends, killed too.
pub fn lock_exclusive(path: &Path) -> Result<std::fs::File, LockError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(LockError::Open)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| LockError::Held)?;
    Ok(file)
}

/// Whoever holds `DATA_DIR/serve.lock` works on the directory's log and guest store: `serve`
/// while it runs, `forget` while it erases. Released when the process ends, killed too.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock, or says who holds it.
    pub fn take(data_dir: &Path) -> Result<DataDirLock, String> {
        let path = data_dir.join("serve.lock");
        match lock_exclusive(&path) {
            Ok(file) => Ok(DataDirLock { _file: file }),
            Err(LockError::Open(e)) => Err(format!("cannot open {}: {e}", path.display())),
            Err(LockError::Held) => Err(format!(
                "{} is in use: `serve` (or `forget`) is running on {}: ask the running serve \
                 (forget --server URL) or stop it first",
                path.display(),
                data_dir.display()
            )),
        }
    }
}
