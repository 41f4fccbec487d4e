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

pub mod console;
pub mod cors;
pub mod http;
pub mod identity;
pub mod lake;
pub mod maintenance;
pub mod metrics;
pub mod quarantine;
pub mod replay;
pub mod server;
pub mod upsert;
pub mod wal;

pub use contract_validators;
