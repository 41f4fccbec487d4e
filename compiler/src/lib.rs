//! contractc: compiles YAML data contracts for game telemetry into validators, table
//! definitions, ETL scripts and API models.
//!
//! The pipeline runs one way: [`syntax`] (YAML with spans, JSON Schema, AST) → [`check`]
//! (semantic checks) → [`ir::Valid`]`<`[`ir::ContractSet`]`>` → backends. Only [`driver`] touches
//! the file system. See ARCHITECTURE.md.

pub mod backend;
pub mod check;

pub mod diagnostic;
pub mod diff;
pub mod driver;
pub mod ir;
pub mod source;
pub mod syntax;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use ir::{ContractSet, Valid};
