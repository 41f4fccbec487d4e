//! contract-serve: `serve`, the local ingest stack on one machine.
//!
//! - [`server`]: routes, handlers, the flusher, startup replay;
//! - [`identity`]: the development identity provider and token verification;
//! - [`wal`]: the write-ahead log behind durable acknowledgements;
//! - [`lake`]: Iceberg tables (SQLite catalog, local warehouse);
//! - [`quarantine`], [`upsert`], [`metrics`]: quarantine rows, one row per key, Prometheus.
//!
//! It links the generated validators and nothing of the compiler or of AWS.

pub mod cors;
pub mod http;
pub mod identity;
pub mod lake;
pub mod metrics;
pub mod quarantine;
pub mod server;
pub mod upsert;
pub mod wal;

pub use contract_validators;
