//! contract-runtime: runs what `contractc build` generates.
//!
//! - [`server`]: `serve`, the local ingest stack (JWT auth, generated validators, write-ahead
//!   log, Iceberg tables in an embedded catalog);
//! - [`identity`]: the development identity provider and token verification;
//! - [`wal`]: the write-ahead log behind durable acknowledgements;
//! - [`lake`]: Iceberg tables (SQLite catalog, local warehouse);
//! - [`quarantine`], [`metrics`]: the quarantine table's rows and Prometheus metrics.

pub mod deploy;
pub mod identity;
pub mod lake;
pub mod metrics;
pub mod quarantine;
pub mod server;
pub mod synth;
pub mod upsert;
pub mod wal;

pub use contract_validators;
