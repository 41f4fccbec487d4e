use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cors::CorsPolicy;
use crate::http::ConnectionLimits;
use crate::identity::GuestPolicy;
use crate::wal::{self};

/// Settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Commit buffered events at least this often.
    pub commit_interval: Duration,
    /// Commit early once this many events are buffered for a contract.
    pub commit_rows: usize,
    /// The dev identity provider's issuer URL (default `http://{listen}`).
    pub public_url: Option<String>,
    /// Connection cap and header deadline.
    pub connections: ConnectionLimits,
    /// How long a request body may take to arrive once its headers have.
    pub body_timeout: Duration,
    /// Batch requests judged at once (each holds up to its body in memory).
    pub concurrent_batches: usize,
    /// Origins allowed to send credentials.
    pub cors: CorsPolicy,
    /// Issuers whose tokens every contract accepts beside its own (`--trust-issuer`): the
    /// game's identity provider. Their tokens need the contract's audience and scopes.
    pub trusted_issuers: Vec<crate::identity::ExternalIssuer>,
    /// Development only: lets `/prod/login-as-guest?scope=authenticated` mint the
    /// `authenticated` scope. Refused unless `listen` is a loopback address.
    pub dev_mint_scopes: bool,
    /// Guest logins per client address, and how long an unused guest lives.
    pub guests: GuestPolicy,
    /// The token that opens the quality console (`/console/`); without one, `serve` makes one
    /// at first start and keeps it in `DATA_DIR/console-token`.
    pub console_token: Option<String>,
    /// Development: requests straight from this machine open the console without the token
    /// (never relayed ones). Refused unless `listen` is a loopback address.
    pub console_open: bool,
    /// Table maintenance (compaction, snapshot expiry, orphan files) between commits.
    pub maintenance: crate::maintenance::Schedule,
    /// Deduplicate as the contracts declare (`ingest.dedup`); off only to measure its cost.
    pub dedup: bool,
    /// The key document for `pii: hash` fields (`privacy::load_keys`); without one, `serve`
    /// makes a key at first start and keeps it in `DATA_DIR/pii-keys.json`.
    pub pii_keys: Option<String>,
    /// How the contracts' `quality.alerts` are evaluated (interval, webhook).
    pub alerts: crate::alerts::AlertSettings,
}

impl ServeConfig {
    /// The defaults `contract-runtime serve` starts with.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            listen,
            data_dir,
            commit_interval: Duration::from_secs(2),
            commit_rows: 100_000,
            public_url: None,
            connections: ConnectionLimits::default(),
            body_timeout: Duration::from_secs(30),
            concurrent_batches: 4,
            cors: CorsPolicy::default(),
            trusted_issuers: Vec::new(),
            dev_mint_scopes: false,
            guests: GuestPolicy::default(),
            console_token: None,
            console_open: false,
            maintenance: crate::maintenance::Schedule::default(),
            dedup: true,
            pii_keys: None,
            alerts: crate::alerts::AlertSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Dedup(#[from] crate::dedup::JournalError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot listen on {listen}: {source}{hint}",
        hint = listen_hint(.source)
    )]
    Listen {
        listen: SocketAddr,
        source: std::io::Error,
    },
}

/// What to do about a listen address that cannot be had.
pub(crate) fn listen_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program, perhaps another serve, has the port: stop it, or pass \
             --listen with another address)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    }
}
