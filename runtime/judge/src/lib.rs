//! contract-judge: what `serve` and the AWS door (#22) must decide identically, with no HTTP
//! server, no lake and no AWS SDK in it, so any door can link it.
//!
//! - [`verdict`]: the verdict on one event (the size limit, then the generated validator);
//! - [`caller`]: who sent an event, as enrichment and the write-ahead log need it;
//! - [`batch`]: how a batch body is framed and split, and the per-event results;
//! - [`answer`]: the bodies of the answers, byte for byte the same at every door;
//! - [`door`]: whole answers (status, headers, body) and the refusals before judging, as data;
//! - [`dedup`]: which event an event is, for deduplication (#21).
//!
//! - [`privacy`]: personal data as stored: hashed, masked or dropped (#23);
//! - [`upcast`]: an event of a released version rewritten as one of the current version (#20);
//!   [`verdict`] picks the validator by the version the client declares.

pub mod answer;
pub mod batch;
pub mod caller;
pub mod dedup;
pub mod door;
pub mod privacy;
pub mod upcast;
pub mod verdict;

pub use caller::{CLIENT_VERSION_KEY, Caller};
pub use verdict::{
    OVERSIZED_KEPT_BYTES, client_version, max_batch_bytes, max_body_bytes, validate,
    validate_within,
};
