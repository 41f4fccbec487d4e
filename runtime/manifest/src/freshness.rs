//! Staleness is an error, not a surprise: the runtime is built from the contracts as they were
//! at `contractc build` time. When the contracts directory is at hand, [`check`] compares it
//! with the manifests compiled in, so an edited contract without a rebuild is refused with the
//! fix, instead of serving, synthesising or deploying one version while the files say another.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Manifest;

/// How the contracts on disk differ from the compiled ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The file changed since it was compiled.
    Changed { contract: String, path: PathBuf },
    /// A compiled contract whose file is gone.
    Removed { contract: String, path: PathBuf },
    /// A contract file that was never compiled.
    Added { path: PathBuf },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Changed { contract, path } => {
                write!(
                    f,
                    "{} changed since contract `{contract}` was built",
                    path.display()
                )
            }
            Difference::Removed { contract, path } => write!(
                f,
                "contract `{contract}` was built from {}, which no longer exists",
                path.display()
            ),
            Difference::Added { path } => {
                write!(f, "{} is not in the build", path.display())
            }
        }
    }
}

/// The built contracts disagree with the contract files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the runtime was built from other contracts than {dir}:\n{}\nfix: run `cargo run -p contractc -- build` and rebuild, \
     or run from a directory without {dir}",
    .differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"),
    dir = .dir
)]
pub struct Stale {
    /// The contract directories compared, comma-separated.
    pub dir: String,
    pub differences: Vec<Difference>,
}

/// SHA-256 of `bytes`, lowercase hex: a contract's fingerprint.
pub fn fingerprint(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares the manifests with the contract files under `root` (the directory `contractc
/// build` ran in). Nothing to compare, when `root` has no contracts directory: the runtime may
/// run anywhere. Contract files are the `*.yaml` / `*.yml` files of the directories the
/// manifests were compiled from.
pub fn check(root: &Path, manifests: &[&Manifest]) -> Result<(), Stale> {
    let mut differences = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for m in manifests {
        let relative = Path::new(&m.source.path);
        if let Some(parent) = relative.parent()
            && !dirs.iter().any(|d| d == parent)
        {
            dirs.push(parent.to_path_buf());
        }
    }
    let present: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| root.join(d).is_dir())
        .cloned()
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    for m in manifests {
        let relative = Path::new(&m.source.path);
        if !relative
            .parent()
            .is_some_and(|p| present.iter().any(|d| d == p))
        {
            continue;
        }
        match std::fs::read(root.join(relative)) {
            Ok(bytes) if fingerprint(&bytes) == m.source.fingerprint => {}
            Ok(_) => differences.push(Difference::Changed {
                contract: m.name.clone(),
                path: relative.to_path_buf(),
            }),
            Err(_) => differences.push(Difference::Removed {
                contract: m.name.clone(),
                path: relative.to_path_buf(),
            }),
        }
    }
    for dir in &present {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut added: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| dir.join(e.file_name()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .filter(|p| !manifests.iter().any(|m| Path::new(&m.source.path) == p))
            .collect();
        added.sort();
        differences.extend(added.into_iter().map(|path| Difference::Added { path }));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Stale {
            dir: present
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            differences,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ingest, Source, Table};

    fn manifest(name: &str, path: &str, bytes: &[u8]) -> Manifest {
        Manifest {
            name: name.into(),
            version: "1.0.0".into(),
            owner: "o".into(),
            description: None,
            source: Source {
                path: path.into(),
                fingerprint: fingerprint(bytes),
            },
            fields: Vec::new(),
            variants: None,
            enrichments: Vec::new(),
            docs: String::new(),
            versions: None,
            subject: None,
            alerts: Vec::new(),
            table: Table {
                database: "db".into(),
                name: name.into(),
                partition: Vec::new(),
                sort: Vec::new(),
                write: crate::WriteMode::Append,
                properties: Default::default(),
            },
            ingest: Ingest {
                route: "/prod/x".into(),
                batch_route: None,
                max_body_bytes: 1024,
                max_batch_events: 10,
                unknown_fields: crate::UnknownFields::Reject,
                dedup: None,
                auth: crate::Auth {
                    issuer: crate::Issuer::Dev,
                    jwks_url: None,
                    audience: "a".into(),
                    scopes: vec!["guest".into()],
                },
            },
        }
    }

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("freshness-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("contracts")).expect("temp dir");
        dir
    }

    #[test]
    fn nothing_to_compare_without_the_contracts_directory() {
        let root = std::env::temp_dir().join(format!("freshness-none-{}", std::process::id()));
        let m = manifest("a", "contracts/a.yaml", b"a");
        assert_eq!(check(&root, &[&m]), Ok(()));
    }

    #[test]
    fn the_same_files_are_fresh_and_every_difference_is_named() {
        let root = temp_root("diff");
        std::fs::write(root.join("contracts/a.yaml"), b"a").expect("write");
        std::fs::write(root.join("contracts/b.yaml"), b"b").expect("write");
        let a = manifest("a", "contracts/a.yaml", b"a");
        let b = manifest("b", "contracts/b.yaml", b"b");
        assert_eq!(check(&root, &[&a, &b]), Ok(()));

        std::fs::write(root.join("contracts/a.yaml"), b"a, edited").expect("write");
        std::fs::remove_file(root.join("contracts/b.yaml")).expect("remove");
        std::fs::write(root.join("contracts/c.yml"), b"c").expect("write");
        std::fs::write(root.join("contracts/notes.txt"), b"not a contract").expect("write");
        let stale = check(&root, &[&a, &b]).expect_err("stale");
        assert_eq!(
            stale.differences,
            vec![
                Difference::Changed {
                    contract: "a".into(),
                    path: "contracts/a.yaml".into()
                },
                Difference::Removed {
                    contract: "b".into(),
                    path: "contracts/b.yaml".into()
                },
                Difference::Added {
                    path: "contracts/c.yml".into()
                },
            ]
        );
        let message = stale.to_string();
        assert!(
            message.contains("contracts/a.yaml changed since contract `a` was built"),
            "{message}"
        );
        assert!(
            message.contains("cargo run -p contractc -- build"),
            "{message}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
