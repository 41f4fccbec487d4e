//! The built-in development identity provider and token verification.
//!
//! The provider speaks the reference's protocol: `GET /prod/login-as-guest` creates a guest
//! (or logs one in again with `?user_id=&guest_secret=`) and returns an RS256 JWT with the
//! reference's claims; `/.well-known/jwks.json` and `/.well-known/openid-configuration`
//! publish the keys. Keys and guests live in the data directory, so tokens survive restarts.
//!
//! Refresh tokens rotate (see [`families`]): each refresh spends the token presented and answers
//! with the next one of the login's family, which keeps the first token's expiry; a spent token
//! presented again revokes the family.
//!
//! Verification is the gateway's: the `kid` picks a key from the JWKS, and `iss`, `aud`,
//! `exp`/`nbf` and the scope are checked. Only RS256 is accepted, which refuses `alg: none`
//! and HS256 tokens signed with the public key.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod families;
mod issuers;

use families::{Families, Spend, rewrite_log};
pub use issuers::{ExternalIssuer, TrustedIssuer};

/// Seconds an access token lives (the reference's).
pub const TOKEN_TTL: u64 = 900;
/// Seconds a refresh token lives (six days, the reference's).
pub const REFRESH_TTL: u64 = 6 * 24 * 3600;
/// The audience and scope of refresh tokens (the reference's).
const REFRESH_AUDIENCE: &str = "refresh";
/// The refresh token's claim naming the scope of the access tokens it buys.
const ACCESS_TOKEN_SCOPE: &str = "access_token_scope";
/// The refresh token's claim naming its family: the login that issued the first one.
const REFRESH_FAMILY: &str = "refresh_family";
/// The refresh token's claim counting the refreshes of its family before it (0: the login's).
const REFRESH_GENERATION: &str = "refresh_generation";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key: {0}")]
    Key(String),
}

/// A token's audience: one, or several (RFC 7519 allows both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// One audience as a string, several as an array.
    fn of(audiences: &[String]) -> Audience {
        match audiences {
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        }
    }
}

/// How the dev identity provider treats guests.
#[derive(Debug, Clone, Copy)]
pub struct GuestPolicy {
    /// New guests one client address may create per minute; 0: no limit. The reference's
    /// client logs in anew for every event, 10 to 20 times a second.
    pub new_per_minute: u32,
    /// New guests one client address may create at once.
    pub burst: u32,
    /// A guest that has not logged in for this long is forgotten.
    pub ttl: Duration,
    /// Token refreshes and returning-guest logins one client address may make per minute
    /// (each costs two RSA signatures); 0: no limit. A player makes one per session and one
    /// per 15 minutes of play.
    pub renewals_per_minute: u32,
    /// Refreshes and returning logins one client address may make at once.
    pub renewal_burst: u32,
}

impl Default for GuestPolicy {
    fn default() -> Self {
        GuestPolicy {
            new_per_minute: 1200,
            burst: 100,
            ttl: Duration::from_secs(30 * 24 * 3600),
            // As many as new guests: whatever players an address may create unthrottled
            // renew their tokens unthrottled too, each at most once per session start and
            // once per access token's life.
            renewals_per_minute: 1200,
            renewal_burst: 200,
        }
    }
}

/// The claims of an access token (the reference's, plus the key id repeated).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: Audience,
    pub scope: String,
    pub iat: u64,
    /// 0 when absent: optional (RFC 7519), as many identity providers leave it out; checked
    /// when present.
    #[serde(default)]
    pub nbf: u64,
    pub exp: u64,
    #[serde(default)]
    pub kid: Option<String>,
    /// Other claims, for `jwt.<claim>` enrichment.
    #[serde(flatten)]
    pub extra: HashMap<String, serde_json::Value>,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

fn load_or_create_key(path: &Path) -> Result<SigningKey, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let key = if path.exists() {
        let pem = std::fs::read_to_string(path).map_err(io)?;
        rsa::PrivateKey::from_pkcs1_pem(&pem).map_err(|e| IdentityError::Key(e.to_string()))?
    } else {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
            .map_err(|e| IdentityError::Key(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        key.write_pkcs1_pem_file(path, LineEnding::LF)
            .map_err(|e| IdentityError::Key(e.to_string()))?;
        key
    };
    let der = key
        .to_pkcs1_der()
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    let encoding = EncodingKey::from_rsa_der(der.as_bytes());
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::RS256),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: URL_SAFE_NO_PAD.encode(key.n_bytes()),
            e: URL_SAFE_NO_PAD.encode(key.e_bytes()),
        }),
    };
    // RFC 7638 thumbprint: a stable kid for a stable key.
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    Ok(SigningKey { kid, encoding, jwk })
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `N` bytes from the operating system's random number generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random number generator");
    buf
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not recoverable in any useful way for an identity provider.
    getrandom::fill(&mut buf).expect("the operating system's random number generator");
    URL_SAFE_NO_PAD.encode(buf)
}

fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The response to a guest login, shaped as the reference's.
#[derive(Debug, Serialize, Deserialize)]
pub struct Login {
    pub user_id: String,
    pub guest_secret: String,
    pub auth_token: String,
    pub refresh_token: String,
    pub auth_token_expires_in: u64,
    pub refresh_token_expires_in: u64,
}

/// The answer to a token refresh, shaped as the reference's.
#[derive(Debug, Serialize, Deserialize)]
pub struct Refreshed {
    pub user_id: String,
    pub auth_token: String,
    pub refresh_token: String,
    pub auth_token_expires_in: u64,
    pub refresh_token_expires_in: u64,
}

/// Why a guest login failed (the reference answers 400 and 401 in plain text).
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    MissingSecret,
    WrongSecret,
}

/// Why a refresh was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshError {
    /// Not a refresh token of this provider, expired, from before rotation, or of a guest
    /// forgotten since.
    Invalid,
    /// Spent already (now or before): its login's family is revoked.
    Revoked,
    /// It buys a scope this server does not mint now (`authenticated` without
    /// `--dev-mint-scopes`).
    ScopeNotMinted(String),
}

/// The development identity provider.
pub struct DevIdentity {
    /// Issuer base URL, without a trailing slash.
    pub issuer: String,
    /// Every audience of the contracts that trust this provider: its tokens name them all.
    pub audiences: Vec<String>,
    current: SigningKey,
    previous: Option<SigningKey>,
    guests: RwLock<HashMap<String, Guest>>,
    guests_path: PathBuf,
    guests_file: Mutex<std::fs::File>,
    /// Refresh-token families: what was spent, what is revoked.
    families: Mutex<Families>,
    decoding: HashMap<String, DecodingKey>,
    policy: GuestPolicy,
}

/// A guest: the hash of its secret and when it last logged in (seconds since the epoch).
#[derive(Debug, Clone)]
struct Guest {
    hash: String,
    seen: u64,
}

/// The guests of the log at `path` that logged in within `ttl` seconds of `now`.
fn load_guests(path: &Path, ttl: u64, now: u64) -> HashMap<String, Guest> {
    let mut guests = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(user), Some(hash)) = (parts.next(), parts.next()) else {
                continue;
            };
            // Lines of older logs have no time: they count from now.
            let seen = parts.next().and_then(|t| t.parse().ok()).unwrap_or(now);
            guests.insert(
                user.to_string(),
                Guest {
                    hash: hash.to_string(),
                    seen,
                },
            );
        }
    }
    guests.retain(|_, g: &mut Guest| g.seen + ttl >= now);
    guests
}

/// Removes `subjects` from the guest store in `dir` (`forget`, while no `serve` runs): the
/// guests log rewritten without their lines; returns how many guests went.
pub fn forget_guests(
    dir: &Path,
    subjects: &std::collections::HashSet<&str>,
) -> std::io::Result<usize> {
    let path = dir.join("guests.log");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let about = |line: &str| {
        line.split(' ')
            .next()
            .is_some_and(|user| subjects.contains(user))
    };
    let forgotten: HashSet<&str> = text
        .lines()
        .filter(|line| about(line))
        .filter_map(|line| line.split(' ').next())
        .collect();
    if forgotten.is_empty() {
        return Ok(0);
    }
    let kept: String = text
        .lines()
        .filter(|line| !about(line))
        .map(|line| format!("{line}\n"))
        .collect();
    rewrite_log(&path, kept)?;
    Ok(forgotten.len())
}

impl DevIdentity {
    /// Loads (or creates) the keys under `dir/keys`, the guests in `dir/guests.log` and the
    /// refresh-token families in `dir/refresh.log`, forgetting guests unused for longer than
    /// the policy's time to live and families whose tokens expired (the logs are rewritten
    /// without them).
    pub fn open(
        dir: &Path,
        issuer: String,
        audiences: Vec<String>,
        policy: GuestPolicy,
    ) -> Result<DevIdentity, IdentityError> {
        let current = load_or_create_key(&dir.join("keys/current.pem"))?;
        let previous_path = dir.join("keys/previous.pem");
        let previous = if previous_path.exists() {
            Some(load_or_create_key(&previous_path)?)
        } else {
            None
        };
        let now = now_seconds();
        let guests_path = dir.join("guests.log");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { path, source }
        };
        let guests = load_guests(&guests_path, policy.ttl.as_secs(), now);
        let mut compacted: Vec<String> = guests
            .iter()
            .map(|(user, g)| format!("{user} {} {}\n", g.hash, g.seen))
            .collect();
        compacted.sort();
        let file = rewrite_log(&guests_path, compacted.concat()).map_err(io(&guests_path))?;
        let families_path = dir.join("refresh.log");
        let families = Families::open(&families_path, now).map_err(io(&families_path))?;
        let decoding = std::iter::once(&current)
            .chain(previous.as_ref())
            .filter_map(|k| Some((k.kid.clone(), DecodingKey::from_jwk(&k.jwk).ok()?)))
            .collect();
        Ok(DevIdentity {
            decoding,
            issuer,
            audiences,
            current,
            previous,
            guests: RwLock::new(guests),
            guests_path,
            guests_file: Mutex::new(file),
            families: Mutex::new(families),
            policy,
        })
    }

    /// The verification key for `kid` (built once: parsing a JWK per request is costly).
    pub fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.decoding.get(kid).cloned()
    }

    /// The JWKS: the current key and the previous one (keys rotate).
    pub fn jwks(&self) -> JwkSet {
        let mut keys = vec![self.current.jwk.clone()];
        if let Some(previous) = &self.previous {
            keys.push(previous.jwk.clone());
        }
        JwkSet { keys }
    }

    pub fn openid_configuration(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["guest", "authenticated"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        })
    }

    /// Signs an access token for `sub` with `scope`.
    pub fn sign(
        &self,
        sub: &str,
        scope: &str,
        ttl: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_claims(
            sub,
            Audience::of(&self.audiences),
            scope,
            now_seconds() + ttl,
            HashMap::new(),
        )
    }

    /// Signs a refresh token, shaped as the reference's: audience and scope `refresh`, and the
    /// scope of the access tokens it may be exchanged for in `access_token_scope`. Its
    /// audience keeps it from ever passing as an access token. It names its family and
    /// generation, and expires with its family (at `expires`).
    fn sign_refresh(
        &self,
        sub: &str,
        access_scope: &str,
        family: &str,
        generation: u64,
        expires: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let extra = HashMap::from([
            (
                ACCESS_TOKEN_SCOPE.to_string(),
                serde_json::Value::from(access_scope),
            ),
            (REFRESH_FAMILY.to_string(), serde_json::Value::from(family)),
            (
                REFRESH_GENERATION.to_string(),
                serde_json::Value::from(generation),
            ),
        ]);
        self.sign_claims(
            sub,
            Audience::One(REFRESH_AUDIENCE.into()),
            REFRESH_AUDIENCE,
            expires,
            extra,
        )
    }

    fn sign_claims(
        &self,
        sub: &str,
        aud: Audience,
        scope: &str,
        exp: u64,
        extra: HashMap<String, serde_json::Value>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_seconds();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.current.kid.clone());
        let claims = Claims {
            sub: sub.to_string(),
            iss: self.issuer.clone(),
            aud,
            scope: scope.to_string(),
            iat: now,
            nbf: now,
            exp,
            kid: Some(self.current.kid.clone()),
            extra,
        };
        jsonwebtoken::encode(&header, &claims, &self.current.encoding)
    }

    /// `GET refresh-access-token?refresh_token=…`: the newest refresh token of a login, of a
    /// guest this provider still knows, buys an access token of its scope — if that scope is
    /// among `mintable`, the scopes the server grants now — and the login's next refresh
    /// token, which expires when the login's first one does. The token presented is spent;
    /// presenting a spent one revokes its login's family.
    pub fn refresh(
        &self,
        refresh_token: &str,
        mintable: &[&str],
    ) -> Result<Refreshed, RefreshError> {
        let claims = self.verify_refresh(refresh_token)?;
        let scope = claims
            .extra
            .get(ACCESS_TOKEN_SCOPE)
            .and_then(serde_json::Value::as_str)
            .filter(|s| matches!(*s, "guest" | "authenticated"))
            .ok_or(RefreshError::Invalid)?
            .to_string();
        if !mintable.contains(&scope.as_str()) {
            return Err(RefreshError::ScopeNotMinted(scope));
        }
        // Tokens from before rotation name no family: their holder logs in again.
        let family = claims
            .extra
            .get(REFRESH_FAMILY)
            .and_then(serde_json::Value::as_str)
            .ok_or(RefreshError::Invalid)?;
        let generation = claims
            .extra
            .get(REFRESH_GENERATION)
            .and_then(serde_json::Value::as_u64)
            .ok_or(RefreshError::Invalid)?;
        let known = self
            .guests
            .read()
            .ok()
            .is_some_and(|g| g.contains_key(&claims.sub));
        if !known {
            return Err(RefreshError::Invalid);
        }
        self.spend(&claims.sub, family, generation, claims.exp)?;
        let now = now_seconds();
        let signed = |result: Result<String, _>| result.map_err(|_| RefreshError::Invalid);
        Ok(Refreshed {
            auth_token: signed(self.sign(&claims.sub, &scope, TOKEN_TTL))?,
            refresh_token: signed(self.sign_refresh(
                &claims.sub,
                &scope,
                family,
                generation + 1,
                claims.exp,
            ))?,
            user_id: claims.sub.clone(),
            auth_token_expires_in: TOKEN_TTL,
            refresh_token_expires_in: claims.exp.saturating_sub(now),
        })
    }

    /// Signature, issuer, audience `refresh` and expiry of a refresh token.
    fn verify_refresh(&self, refresh_token: &str) -> Result<Claims, RefreshError> {
        let header =
            jsonwebtoken::decode_header(refresh_token).map_err(|_| RefreshError::Invalid)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding_key(kid))
            .ok_or(RefreshError::Invalid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[REFRESH_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(refresh_token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| RefreshError::Invalid)
    }

    /// Spends one generation of a family (see [`families`]).
    fn spend(
        &self,
        user_id: &str,
        family: &str,
        generation: u64,
        expires: u64,
    ) -> Result<(), RefreshError> {
        let mut families = self.families.lock().map_err(|_| RefreshError::Invalid)?;
        match families.spend(family, generation, expires, now_seconds()) {
            Spend::Accepted => Ok(()),
            Spend::Reused => {
                tracing::warn!(
                    user_id,
                    generation,
                    "a spent refresh token was presented again (stolen, or an answer lost): \
                     its login's refresh tokens are revoked"
                );
                Err(RefreshError::Revoked)
            }
            Spend::Revoked => Err(RefreshError::Revoked),
            Spend::Unknown => Err(RefreshError::Invalid),
        }
    }

    /// A new guest (no arguments) or a returning one.
    pub fn login_as_guest(
        &self,
        user_id: Option<&str>,
        secret: Option<&str>,
        scope: &str,
    ) -> Result<Login, LoginError> {
        let (user_id, secret) = match (user_id, secret) {
            (None, None) => {
                let user_id = uuid::Uuid::new_v4().to_string();
                let secret = random_token(32);
                self.remember(&user_id, &secret);
                (user_id, secret)
            }
            (Some(_), None) => return Err(LoginError::MissingSecret),
            (None, Some(_)) => return Err(LoginError::WrongSecret),
            (Some(user), Some(secret)) => {
                let known = self.guests.read().ok().and_then(|g| g.get(user).cloned());
                let alive = known.as_ref().is_some_and(|g| {
                    g.hash == hash_secret(secret)
                        && g.seen + self.policy.ttl.as_secs() >= now_seconds()
                });
                if !alive {
                    return Err(LoginError::WrongSecret);
                }
                self.remember(user, secret);
                (user.to_string(), secret.to_string())
            }
        };
        let auth_token = self
            .sign(&user_id, scope, TOKEN_TTL)
            .map_err(|_| LoginError::WrongSecret)?;
        // Each login starts a family of refresh tokens.
        let refresh_token = self
            .sign_refresh(
                &user_id,
                scope,
                &random_token(16),
                0,
                now_seconds() + REFRESH_TTL,
            )
            .map_err(|_| LoginError::WrongSecret)?;
        Ok(Login {
            user_id,
            guest_secret: secret,
            auth_token,
            refresh_token,
            auth_token_expires_in: TOKEN_TTL,
            refresh_token_expires_in: REFRESH_TTL,
        })
    }

    /// Forgets `subjects` (`forget` beside a running serve): gone from memory and from the
    /// guests log, rewritten without them. Returns how many were known.
    pub fn forget_guests(&self, subjects: &HashSet<&str>) -> std::io::Result<usize> {
        let mut file = self
            .guests_file
            .lock()
            .map_err(|_| std::io::Error::other("the guests log's lock is poisoned"))?;
        let mut guests = self
            .guests
            .write()
            .map_err(|_| std::io::Error::other("the guests' lock is poisoned"))?;
        let before = guests.len();
        guests.retain(|user, _| !subjects.contains(user.as_str()));
        let forgotten = before - guests.len();
        let mut lines: Vec<String> = guests
            .iter()
            .map(|(user, g)| format!("{user} {} {}\n", g.hash, g.seen))
            .collect();
        lines.sort();
        *file = rewrite_log(&self.guests_path, lines.concat())?;
        Ok(forgotten)
    }

    /// Records a guest's login (new, or returning: its time to live starts again).
    fn remember(&self, user_id: &str, secret: &str) {
        let hash = hash_secret(secret);
        let seen = now_seconds();
        if let Ok(mut file) = self.guests_file.lock() {
            // Not fsynced: losing a guest on a crash only means that guest logs in anew.
            if let Err(error) = writeln!(file, "{user_id} {hash} {seen}") {
                tracing::warn!(%error, path = %self.guests_path.display(), "cannot persist a guest");
            }
        }
        if let Ok(mut guests) = self.guests.write() {
            guests.insert(user_id.to_string(), Guest { hash, seen });
            // Forget expired guests now and then, so memory follows the live ones.
            if guests.len().is_power_of_two() {
                let ttl = self.policy.ttl.as_secs();
                guests.retain(|_, g| g.seen + ttl >= seen);
            }
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: no token, a malformed or forged one, expired, wrong issuer or audience, unknown key.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: a valid token without an allowed scope.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// Where verification keys come from.
pub enum KeySource {
    Dev(Arc<DevIdentity>),
    /// An external issuer's JWKS, fetched on demand and cached; refreshed on an unknown `kid`
    /// (at most once a minute, so forged kids cannot make us hammer the issuer).
    Remote {
        url: String,
        cache: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
        client: reqwest::Client,
    },
}

impl KeySource {
    pub fn remote(url: String) -> KeySource {
        KeySource::Remote {
            url,
            cache: RwLock::new((HashMap::new(), None)),
            client: reqwest::Client::new(),
        }
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        match self {
            KeySource::Dev(dev) => dev.decoding_key(kid),
            KeySource::Remote { url, cache, client } => {
                if let Some(key) = cache.read().ok().and_then(|c| c.0.get(kid).cloned()) {
                    return Some(key);
                }
                let recently = cache
                    .read()
                    .ok()
                    .and_then(|c| c.1)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                if recently {
                    return None;
                }
                let fetched: Option<JwkSet> =
                    match client.get(url).timeout(Duration::from_secs(5)).send().await {
                        Ok(response) => response.json().await.ok(),
                        Err(error) => {
                            tracing::warn!(%error, url, "cannot fetch the issuer's JWKS");
                            None
                        }
                    };
                let mut cache = cache.write().ok()?;
                cache.1 = Some(Instant::now());
                if let Some(jwks) = fetched {
                    cache.0 = jwks
                        .keys
                        .iter()
                        .filter_map(|jwk| {
                            Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))
                        })
                        .collect();
                }
                cache.0.get(kid).cloned()
            }
        }
    }
}

/// Verifies bearer tokens for one audience, from the contract's issuer and the issuers `serve`
/// was told to trust beside it.
pub struct Verifier {
    pub audience: String,
    /// The contract's own issuer first; a token's `iss` picks whose keys check it.
    issuers: Vec<TrustedIssuer>,
    /// Tokens whose signature and claims checked out, by token text. A client reuses its
    /// token for up to 15 minutes; checking the RSA signature once per token instead of once
    /// per request is what API Gateway's authorizer cache does too. `exp`/`nbf` and the scope
    /// are still checked on every request.
    /// A bounded concurrent cache (S3-FIFO): a churn of one-use tokens evicts old entries
    /// instead of growing memory, and frequently used tokens stay.
    verified: quick_cache::sync::Cache<String, Claims>,
}

/// Verified tokens kept (a bound on memory, not a tuning knob).
const VERIFIED_CACHE_ENTRIES: usize = 100_000;

impl Verifier {
    pub fn new(issuer: String, audience: String, keys: KeySource) -> Verifier {
        Verifier {
            audience,
            issuers: vec![TrustedIssuer {
                issuer,
                keys: Arc::new(keys),
            }],
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_ENTRIES),
        }
    }

    /// Also accepts tokens of `others` (`--trust-issuer`), with the same audience and scopes;
    /// one naming the contract's own issuer again changes nothing.
    pub fn trusting(mut self, others: &[TrustedIssuer]) -> Verifier {
        for other in others {
            if !self.issuers.iter().any(|i| i.issuer == other.issuer) {
                self.issuers.push(other.clone());
            }
        }
        self
    }

    /// The issuers whose tokens this verifier accepts, the contract's own first.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.issuer.as_str())
    }

    /// Checks the `Authorization` header value (raw token or `Bearer <token>`) and that the
    /// token holds one of `scopes`.
    pub async fn verify<S: AsRef<str> + std::fmt::Debug>(
        &self,
        header: Option<&str>,
        scopes: &[S],
    ) -> Result<Claims, AuthError> {
        let raw = header
            .ok_or_else(|| AuthError::Unauthorized("no Authorization header".into()))?
            .trim();
        // The scheme is case-insensitive (RFC 9110); the reference's client sends no scheme.
        let token = match raw.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest,
            _ => raw,
        }
        .trim();
        let cached = self.verified.get(token);
        let claims = match cached {
            Some(claims) => {
                let now = now_seconds();
                if claims.exp + 5 < now || claims.nbf > now + 5 {
                    return Err(AuthError::Unauthorized("ExpiredSignature".into()));
                }
                claims
            }
            None => {
                let claims = self.verify_signature(token).await?;
                self.verified.insert(token.to_string(), claims.clone());
                claims
            }
        };
        let held: Vec<&str> = claims.scope.split_whitespace().collect();
        if !scopes.iter().any(|s| held.contains(&s.as_ref())) {
            return Err(AuthError::Forbidden(format!(
                "scope {:?} holds none of {scopes:?}",
                claims.scope
            )));
        }
        Ok(claims)
    }

    /// The full check: issuer among the trusted, key by `kid` from that issuer's keys, RS256
    /// signature, issuer, audience, `exp` (and `nbf` when present).
    async fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let unverified = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Unauthorized(format!("malformed token: {e}")))?;
        if unverified.alg != Algorithm::RS256 {
            return Err(AuthError::Unauthorized(format!(
                "algorithm {:?} is not accepted",
                unverified.alg
            )));
        }
        let kid = unverified
            .kid
            .ok_or_else(|| AuthError::Unauthorized("token has no kid".into()))?;
        let claimed = issuers::claimed_issuer(token)
            .ok_or_else(|| AuthError::Unauthorized("token names no issuer".into()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == claimed)
            .ok_or_else(|| AuthError::Unauthorized(format!("issuer {claimed} is not trusted")))?;
        let key = issuer
            .keys
            .key(&kid)
            .await
            .ok_or_else(|| AuthError::Unauthorized(format!("unknown key id {kid}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Unauthorized(format!("{:?}", e.kind())))?;
        Ok(data.claims)
    }
}
