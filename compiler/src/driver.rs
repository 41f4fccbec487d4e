//! The only module that reads (and, for `build`, writes) files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::{self, Checked};
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{ContractSet, Valid};
use crate::source::SourceFile;
use crate::syntax;

/// Contract files are YAML files; everything else in a contracts directory is ignored.
fn is_contract_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// The first of `paths` that does not exist (for the CLI, a usage error).
pub fn first_missing(paths: &[PathBuf]) -> Option<&PathBuf> {
    paths.iter().find(|p| !p.exists())
}

/// Whether `spec` names contracts on disk (else a diff takes it for a git revision).
pub fn is_on_disk(spec: &str) -> bool {
    Path::new(spec).exists()
}

/// Writes the labelled corpus under `out`: `(file name, contents)` per contract. Returns the
/// paths written, or the path that could not be written and why.
pub fn write_corpus(
    out: &Path,
    files: &[(String, String)],
) -> Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    std::fs::create_dir_all(out).map_err(|e| (out.to_path_buf(), e))?;
    let mut written = Vec::with_capacity(files.len());
    for (name, contents) in files {
        let path = out.join(name);
        std::fs::write(&path, contents).map_err(|e| (path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}

/// Expands the given paths (files or directories, searched recursively) into contract files,
/// sorted for a deterministic order.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).map_err(|e| io_error(path, &e))?;
        } else if path.exists() {
            files.push(path.clone());
            // A contract file comes with its released versions.
            let releases = path.with_extension("releases");
            if releases.is_dir() {
                walk(&releases, &mut files).map_err(|e| io_error(&releases, &e))?;
            }
        } else {
            return Err(Diagnostic::new(
                Code::Io,
                format!("{}: no such file or directory", path.display()),
            ));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_contract_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn io_error(path: &Path, error: &std::io::Error) -> Diagnostic {
    Diagnostic::new(Code::Io, format!("cannot read {}: {error}", path.display()))
}

/// Loads a file; non-UTF-8 content is a diagnostic, not a panic.
pub fn load_file(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::new(
            Code::Io,
            format!(
                "{} is not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// The result of checking a set of contracts.
pub struct CheckOutcome {
    pub contracts: Option<Valid<ContractSet>>,
    pub diagnostics: Vec<Diagnostic>,
    pub files: usize,
}

impl CheckOutcome {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Checks in-memory sources (what the CLI and the tests both call).
/// Release files (`<stem>.releases/<version>.yaml`) are checked as contracts of their own and
/// linked into their contract's history (`check::history`), not added to the set.
pub fn check_sources(files: &[Arc<SourceFile>]) -> CheckOutcome {
    let mut diagnostics = Vec::new();
    let mut checked = Vec::new();
    let mut releases: Vec<(String, Checked)> = Vec::new();
    let mut all_ok = true;
    for file in files {
        let owner = check::history::release_owner(&file.name).map(str::to_string);
        match syntax::parse(file) {
            Ok(parsed) => {
                let (contract, mut diags) = check::check_contract(&parsed);
                diagnostics.append(&mut diags);
                match contract {
                    Some(contract) => {
                        let item = Checked {
                            contract,
                            file: Arc::clone(file),
                            spans: Arc::clone(&parsed.spans),
                        };
                        match owner {
                            Some(owner) => releases.push((owner, item)),
                            None => checked.push(item),
                        }
                    }
                    None => all_ok = false,
                }
            }
            Err(mut diags) => {
                all_ok = false;
                diagnostics.append(&mut diags);
            }
        }
    }
    for item in &mut checked {
        let stem = check::history::stem(&item.file.name).to_string();
        let (own, others): (Vec<_>, Vec<_>) = releases.into_iter().partition(|(o, _)| *o == stem);
        releases = others;
        diagnostics.extend(check::history::link(
            item,
            own.into_iter().map(|(_, r)| r).collect(),
        ));
    }
    for (owner, release) in releases {
        all_ok = false;
        diagnostics.push(
            Diagnostic::new(
                Code::ReleaseMismatch,
                format!(
                    "a release of `{}` without its contract file",
                    release.contract.name
                ),
            )
            .in_file(&release.file)
            .help(format!("releases live beside their contract: {owner}.yaml")),
        );
    }
    let (contracts, diagnostics) = check::check_set(checked, diagnostics, all_ok);
    CheckOutcome {
        contracts,
        diagnostics,
        files: files.len(),
    }
}

/// Checks the contract files under `paths`.
pub fn check_paths(paths: &[PathBuf]) -> CheckOutcome {
    let files = match collect_files(paths) {
        Ok(files) => files,
        Err(d) => {
            return CheckOutcome {
                contracts: None,
                diagnostics: vec![d],
                files: 0,
            };
        }
    };
    let mut sources = Vec::new();
    let mut diagnostics = Vec::new();
    for path in &files {
        match load_file(path) {
            Ok(source) => sources.push(source),
            Err(d) => diagnostics.push(d),
        }
    }
    let mut outcome = check_sources(&sources);
    if !diagnostics.is_empty() {
        diagnostics.append(&mut outcome.diagnostics);
        outcome.diagnostics = diagnostics;
        outcome.contracts = None;
    }
    outcome.files = files.len();
    outcome
}

/// What `contractc release` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// The contract was copied to this path.
    Written(PathBuf),
    /// This path holds the same bytes already.
    Already(PathBuf),
}

/// Keeps the contract file at `path`, as it is, as the release of `version`:
/// `<stem>.releases/<version>.yaml` beside it. A different file there already is an error
/// (a released version never changes).
pub fn release(path: &Path, version: &semver::Version) -> Result<Released, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    let dir = path.with_extension("releases");
    let target = dir.join(format!("{version}.yaml"));
    match std::fs::read(&target) {
        Ok(existing) if existing == bytes => return Ok(Released::Already(target)),
        Ok(_) => {
            return Err(Diagnostic::new(
                Code::ReleaseMismatch,
                format!(
                    "{} exists and differs from {}: version {version} was released with other contents; bump the version",
                    target.display(),
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&target, &e)),
    }
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&target, &bytes)
    };
    write().map_err(|e| io_error(&target, &e))?;
    Ok(Released::Written(target))
}

/// Marks files this tool owns: only such files are ever deleted from the output directory.
const GENERATED_MARKER: &str = "@generated by contractc";

/// What `build` did (or, with `check_only`, would do) to the output directory.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Files whose bytes changed (or that are new), relative to the output directory.
    pub written: Vec<String>,
    /// Generated files no longer produced by any contract.
    pub removed: Vec<String>,
    pub unchanged: usize,
}

impl BuildReport {
    pub fn is_fresh(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Writes `files` under `out`, touching only files whose bytes differ, and removes generated
/// files that are no longer produced. With `check_only`, changes nothing and reports.
pub fn write_generated(
    out: &Path,
    files: &[crate::backend::GeneratedFile],
    check_only: bool,
) -> std::io::Result<BuildReport> {
    let mut report = BuildReport::default();
    let mut produced = std::collections::BTreeSet::new();
    for file in files {
        produced.insert(file.path.clone());
        let target = out.join(&file.path);
        let current = std::fs::read(&target).ok();
        if current.as_deref() == Some(file.contents.as_bytes()) {
            report.unchanged += 1;
            continue;
        }
        report.written.push(file.path.clone());
        if !check_only {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, &file.contents)?;
        }
    }
    if out.is_dir() {
        let mut existing = Vec::new();
        walk_all(out, &mut existing)?;
        for path in existing {
            let Ok(relative) = path.strip_prefix(out) else {
                continue;
            };
            let relative = relative.to_string_lossy().replace('\\', "/");
            if produced.contains(&relative) {
                continue;
            }
            let owned =
                std::fs::read_to_string(&path).is_ok_and(|text| text.contains(GENERATED_MARKER));
            if owned {
                report.removed.push(relative);
                if !check_only {
                    std::fs::remove_file(&path)?;
                }
            }
        }
    }
    report.written.sort();
    report.removed.sort();
    Ok(report)
}

fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            // Build output of the generated crate is never ours to judge.
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            walk_all(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads the contract files under `path` as they are at git revision `rev` (for `diff --base`).
/// Files are named `rev:path`, so diagnostics say where they came from.
pub fn load_git(rev: &str, path: &str) -> Result<Vec<Arc<SourceFile>>, Diagnostic> {
    let git = |args: &[&str]| -> Result<Vec<u8>, Diagnostic> {
        let output = std::process::Command::new("git")
            .args(args)
            .output()
            .map_err(|e| Diagnostic::new(Code::Io, format!("cannot run git: {e}")))?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(Diagnostic::new(
                Code::Io,
                format!(
                    "git {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ))
        }
    };
    let listing = git(&["ls-tree", "-r", "--name-only", rev, "--", path])?;
    let mut files = Vec::new();
    for name in String::from_utf8_lossy(&listing).lines() {
        if !is_contract_file(Path::new(name)) {
            continue;
        }
        let bytes = git(&["show", &format!("{rev}:{name}")])?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Diagnostic::new(Code::Io, format!("{rev}:{name} is not UTF-8")))?;
        files.push(SourceFile::new(format!("{rev}:{name}"), text));
    }
    Ok(files)
}
