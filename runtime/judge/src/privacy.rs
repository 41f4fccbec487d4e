//! Personal data as stored (#23): a value the contract declares `pii: hash`, `mask` or `drop`
//! never reaches a table as sent. `serve` applies [`stored`] to its rows and [`scrub_payload`]
//! to the payloads its quarantine table keeps; the Glue job does the same (`_pseudonymise`,
//! `_scrub`), so both engines store the same value for the same input and key.
//!
//! Keys: a JSON document `{"current": "<key id>", "keys": {"<key id>": "<hex secret>", ...}}`
//! (a file or environment variable for `serve`, a Secrets Manager secret on AWS). New values
//! are hashed under the current key; older keys stay listed so `forget` still finds the rows
//! hashed under them (docs/privacy.md, "Rotating the key").

use std::borrow::Cow;

use contract_support::manifest::{Manifest, Pii, privacy::mask};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::upcast::{Members, as_string, string_json};

pub use contract_support::manifest::privacy::WITHHELD;

/// A secret shorter than this is refused: HMAC-SHA256's own block of strength.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    #[error(
        "the key document is not JSON of the form {{\"current\": ID, \"keys\": {{ID: HEX, ...}}}}: {0}"
    )]
    Shape(String),
    #[error("key `{0}` is not hexadecimal")]
    NotHex(String),
    #[error("key `{id}` has {bytes} bytes; at least {MIN_SECRET_BYTES} are needed")]
    TooShort { id: String, bytes: usize },
    #[error("the current key `{0}` is not among the keys")]
    NoCurrent(String),
}

/// The deployment's hashing keys: the current one and those it replaced.
#[derive(Clone)]
pub struct Keys {
    current: String,
    keys: Vec<(String, Vec<u8>)>,
    /// Each key's HMAC state with the key already absorbed (in `keys`' order): a value's hash
    /// costs its own blocks only, not the key's two.
    prepared: Vec<Hmac<Sha256>>,
}

impl PartialEq for Keys {
    fn eq(&self, other: &Keys) -> bool {
        self.current == other.current && self.keys == other.keys
    }
}

impl Eq for Keys {}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "Keys {{ current: {:?}, ids: {ids:?} }}", self.current)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysDoc {
    current: String,
    keys: serde_json::Map<String, serde_json::Value>,
}

impl Keys {
    /// Parses a key document (see the module docs).
    pub fn parse(text: &str) -> Result<Keys, KeysError> {
        let doc: KeysDoc =
            serde_json::from_str(text).map_err(|e| KeysError::Shape(e.to_string()))?;
        let mut keys = Vec::with_capacity(doc.keys.len());
        for (id, secret) in doc.keys {
            let hex_text = secret
                .as_str()
                .ok_or_else(|| KeysError::NotHex(id.clone()))?;
            let secret = hex::decode(hex_text).map_err(|_| KeysError::NotHex(id.clone()))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeysError::TooShort {
                    id,
                    bytes: secret.len(),
                });
            }
            keys.push((id, secret));
        }
        if !keys.iter().any(|(id, _)| *id == doc.current) {
            return Err(KeysError::NoCurrent(doc.current));
        }
        let prepared = keys
            .iter()
            .filter_map(|(_, secret)| Hmac::<Sha256>::new_from_slice(secret).ok())
            .collect();
        Ok(Keys {
            current: doc.current,
            keys,
            prepared,
        })
    }

    /// A document holding one key, `id`, made of `secret`.
    pub fn document(id: &str, secret: &[u8]) -> String {
        serde_json::json!({ "current": id, "keys": { id: hex::encode(secret) } }).to_string()
    }

    /// The id of the key new values are hashed under (recorded with each commit).
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// `value` hashed under the current key: lowercase hex HMAC-SHA256 of its UTF-8 bytes.
    pub fn hash(&self, value: &str) -> String {
        let current = self.keys.iter().position(|(id, _)| *id == self.current);
        match current.and_then(|at| self.prepared.get(at)) {
            Some(mac) => finish(mac.clone(), value),
            None => String::new(),
        }
    }

    /// `value` hashed under every key, current first: what a row of this subject may hold.
    pub fn every_hash(&self, value: &str) -> Vec<String> {
        let mut out = vec![self.hash(value)];
        for ((id, _), mac) in self.keys.iter().zip(&self.prepared) {
            if *id != self.current {
                out.push(finish(mac.clone(), value));
            }
        }
        out
    }
}

fn finish(mut mac: Hmac<Sha256>, value: &str) -> String {
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
fn hmac_hex(secret: &[u8], value: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => finish(mac, value),
        Err(_) => String::new(),
    }
}

/// `value` as a column declared `pii` stores it: None for `drop`.
pub fn stored<'v>(pii: Pii, value: &'v str, keys: &Keys) -> Option<Cow<'v, str>> {
    match pii {
        Pii::No | Pii::Keep => Some(Cow::Borrowed(value)),
        Pii::Mask => Some(Cow::Owned(mask(value))),
        Pii::Hash => Some(Cow::Owned(keys.hash(value))),
        Pii::Drop => None,
    }
}

/// The payload as the quarantine table keeps it: every top-level member the contract stores
/// other than sent hashed, masked or removed, every other member's JSON text as it came. A
/// contract with no such field keeps the payload as it came; a payload that is not a JSON
/// object is [`WITHHELD`] when the contract has one. `text` is the body as the table holds
/// it (lossy UTF-8, cut when oversized).
pub fn scrub_payload<'t>(text: &'t str, manifest: &Manifest, keys: &Keys) -> Cow<'t, str> {
    let rewrites = |member: &str| manifest.payload_pii(member).rewrites();
    if !manifest.rewrites_payload() {
        return Cow::Borrowed(text);
    }
    let Ok(mut members) = serde_json::from_str::<Members<'_>>(text) else {
        return Cow::Borrowed(WITHHELD);
    };
    if !members.0.iter().any(|(key, _)| rewrites(key)) {
        return Cow::Borrowed(text);
    }
    let mut kept = Vec::with_capacity(members.0.len());
    for (key, value) in members.0.drain(..) {
        match scrub_member(manifest.payload_pii(&key), &value, keys) {
            Scrubbed::Keep => kept.push((key, value)),
            Scrubbed::Replace(text) => match string_json(&text) {
                Ok(json) => kept.push((key, json)),
                Err(_) => return Cow::Borrowed(WITHHELD),
            },
            Scrubbed::Remove => {}
        }
    }
    match Members(kept).to_json().map(String::from_utf8) {
        Ok(Ok(json)) => Cow::Owned(json),
        _ => Cow::Borrowed(WITHHELD),
    }
}

enum Scrubbed {
    Keep,
    Replace(String),
    Remove,
}

/// One member: a string's value (any other JSON value's text) hashed or masked; `null` kept.
fn scrub_member(pii: Pii, value: &RawValue, keys: &Keys) -> Scrubbed {
    if !pii.rewrites() || (pii != Pii::Drop && value.get() == "null") {
        return Scrubbed::Keep;
    }
    let text = as_string(value).unwrap_or_else(|| value.get().to_string());
    match stored(pii, &text, keys) {
        Some(stored) => Scrubbed::Replace(stored.into_owned()),
        None => Scrubbed::Remove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::manifest::Manifest;

    fn keys() -> Keys {
        Keys::parse(&Keys::document("k1", &[7u8; 32])).expect("keys")
    }

    fn manifest() -> Manifest {
        let mut manifest = contract_validators::game_events::MANIFEST.clone();
        for field in &mut manifest.fields {
            field.pii = match field.name.as_str() {
                "event_data" => Pii::Drop,
                "event_id" => Pii::Hash,
                "event_type" => Pii::Mask,
                _ => Pii::No,
            };
        }
        manifest
    }

    #[test]
    fn hashes_are_hmac_sha256_of_the_value_under_the_current_key() {
        let keys = keys();
        let hash = keys.hash("player-1");
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(hash, keys.hash("player-1"));
        assert_ne!(hash, keys.hash("player-2"));
        // RFC 4231, test case 2 (a key too short for a key document, fine for HMAC itself).
        assert_eq!(
            hmac_hex(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn every_hash_starts_with_the_current_key_and_covers_the_old_ones() {
        let doc = format!(
            r#"{{"current": "k2", "keys": {{"k1": "{}", "k2": "{}"}}}}"#,
            hex::encode([1u8; 32]),
            hex::encode([2u8; 32])
        );
        let keys = Keys::parse(&doc).expect("keys");
        let hashes = keys.every_hash("p");
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes[0], keys.hash("p"));
        assert_eq!(hashes[1], hmac_hex(&[1u8; 32], "p"));
    }

    #[test]
    fn bad_key_documents_say_what_is_wrong() {
        assert!(matches!(Keys::parse("[]"), Err(KeysError::Shape(_))));
        let short = Keys::document("k", &[1u8; 8]);
        assert_eq!(
            Keys::parse(&short),
            Err(KeysError::TooShort {
                id: "k".into(),
                bytes: 8
            })
        );
        let missing = r#"{"current": "k9", "keys": {}}"#;
        assert_eq!(Keys::parse(missing), Err(KeysError::NoCurrent("k9".into())));
        let not_hex = r#"{"current": "k", "keys": {"k": "zz"}}"#;
        assert_eq!(Keys::parse(not_hex), Err(KeysError::NotHex("k".into())));
    }

    #[test]
    fn scrubbed_payloads_keep_no_raw_personal_value() {
        let (manifest, keys) = (manifest(), keys());
        let body = r#"{"event_id": "e-1", "event_type":"Login", "event_data": "my secret", "updated_at":"x"}"#;
        let scrubbed = scrub_payload(body, &manifest, &keys);
        assert!(!scrubbed.contains("secret") && !scrubbed.contains("e-1"));
        assert_eq!(
            scrubbed,
            format!(
                r#"{{"event_id":"{}","event_type":"*****","updated_at":"x"}}"#,
                keys.hash("e-1")
            )
        );
        // Non-string values are hashed by their JSON text; null stays null.
        let numbers = r#"{"event_id": 12345, "event_type": null}"#;
        assert_eq!(
            scrub_payload(numbers, &manifest, &keys),
            format!(
                r#"{{"event_id":"{}","event_type":null}}"#,
                keys.hash("12345")
            )
        );
        assert_eq!(scrub_payload("[1, 2]", &manifest, &keys), WITHHELD);
        assert_eq!(
            scrub_payload(r#"{"event_id": "e-1""#, &manifest, &keys),
            WITHHELD
        );
    }

    #[test]
    fn payloads_of_contracts_without_rewrites_are_kept_as_they_came() {
        let manifest = contract_validators::game_events::MANIFEST.clone();
        let body = r#"{"event_data" : "kept as sent"}"#;
        assert_eq!(scrub_payload(body, &manifest, &keys()), body);
        assert_eq!(scrub_payload("not json", &manifest, &keys()), "not json");
    }
}
