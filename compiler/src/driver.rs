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

/// Expands the given paths (files or directories, searched recursively) into contract files,
/// sorted for a deterministic order.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).map_err(|e| io_error(path, &e))?;
        } else if path.exists() {
            files.push(path.clone());
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
pub fn check_sources(files: &[Arc<SourceFile>]) -> CheckOutcome {
    let mut diagnostics = Vec::new();
    let mut checked = Vec::new();
    let mut all_ok = true;
    for file in files {
        match syntax::parse(file) {
            Ok(parsed) => {
                let (contract, mut diags) = check::check_contract(&parsed);
                diagnostics.append(&mut diags);
                match contract {
                    Some(contract) => checked.push(Checked {
                        contract,
                        file: Arc::clone(file),
                        spans: Arc::clone(&parsed.spans),
                    }),
                    None => all_ok = false,
                }
            }
            Err(mut diags) => {
                all_ok = false;
                diagnostics.append(&mut diags);
            }
        }
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
