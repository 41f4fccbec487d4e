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
