//! contract-serve: `serve`, the local ingest stack on one machine.
//!
//! - [`server`]: routes, handlers, the flusher, startup replay;
//! - [`console`]: the read-only quality console at `/console/`;
//! - [`identity`]: the development identity provider and token verification;
//! - [`wal`]: the write-ahead log behind durable acknowledgements;
//! - [`lake`]: Iceberg tables (SQLite catalog, local warehouse);
//! - [`maintenance`]: compaction, snapshot expiry, orphan deletion (the runtime's own rewrite
//!   commits);
//! - [`quarantine`], [`upsert`], [`metrics`]: quarantine rows, one row per key, Prometheus;
//! - [`replay`]: moves quarantined events a fixed contract accepts into the events table.
//!
//! It links the generated validators and nothing of the compiler or of AWS.

pub mod alerts;
pub mod console;
pub mod cors;
pub mod data_dir;
pub mod dedup;
pub mod forget;
pub mod http;
pub mod identity;
pub mod judge;
pub mod lake;
pub mod local;
pub mod maintenance;
pub mod metrics;
pub mod privacy;
pub mod quarantine;
pub mod replay;
pub mod server;
pub mod upsert;
pub mod wal;

/// The contracts a binary serves: the generated crate's `ALL`, passed in by the binary, so this
/// library depends on the contract trait only (any build of contracts can link it).
pub type Contracts = &'static [&'static dyn contract_support::AnyContract];
