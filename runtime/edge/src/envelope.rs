//! The stream record of one event: the envelope the Glue job reads (and the REST door's
//! mapping template writes), with what the job needs besides the body, base64-encoded:
//! `{"contractc": 1, "request_id", "received_at_ms", "claims": {name: base64},
//! "client_contract_version": base64, "body": base64}`, and `"body_bytes"` when the body is
//! the kept start of an event refused as too large.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contract_judge::Caller;
use contract_support::manifest::Manifest;
use serde_json::{Map, Value, json};

/// The body of one event as the stream carries it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    body: &'a [u8],
    /// The size of the whole event, when `body` is only its start.
    whole_bytes: Option<usize>,
}

impl<'a> Event<'a> {
    pub fn whole(body: &'a [u8]) -> Event<'a> {
        Event {
            body,
            whole_bytes: None,
        }
    }

    /// The start of an event of `whole_bytes` bytes (too large to keep).
    pub fn oversized(kept: &'a [u8], whole_bytes: usize) -> Event<'a> {
        Event {
            body: kept,
            whole_bytes: Some(whole_bytes),
        }
    }
}

/// The envelope of one event of `caller`'s request. Every claim the contract enriches from is
/// present ("" when the token had none), as the job expects.
pub fn envelope(
    manifest: &Manifest,
    caller: &Caller,
    request_id: &str,
    received_at_ms: i64,
    event: Event<'_>,
) -> Vec<u8> {
    let claims: Map<String, Value> = manifest
        .enrichment_claims()
        .into_iter()
        .map(|name| {
            let value = if name == "sub" {
                caller.subject.as_deref()
            } else {
                caller
                    .claims
                    .iter()
                    .find(|(claim, _)| claim == name)
                    .map(|(_, value)| value.as_str())
            };
            (name.to_string(), Value::String(encode(value.unwrap_or(""))))
        })
        .collect();
    let mut record = json!({
        "contractc": 1,
        "request_id": request_id,
        "received_at_ms": received_at_ms,
        "claims": claims,
        "client_contract_version": encode(caller.client_version.as_deref().unwrap_or("")),
        "body": STANDARD.encode(event.body),
    });
    if let Some(bytes) = event.whole_bytes {
        record["body_bytes"] = json!(bytes);
    }
    record.to_string().into_bytes()
}

fn encode(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_carries_the_body_verbatim_and_every_claim_the_contract_reads() {
        let manifest = contract_validators::ALL[0].manifest();
        let caller = Caller {
            subject: Some("player-1".into()),
            claims: vec![],
            client_version: Some("1.2.0".into()),
        };
        let body = b"{\"x\": \"\xff not utf-8\"}";
        let data = envelope(
            manifest,
            &caller,
            "r-1",
            1_700_000_000_000,
            Event::whole(body),
        );
        let record: Value = serde_json::from_slice(&data).expect("json");
        assert_eq!(record["contractc"], 1);
        assert_eq!(record["request_id"], "r-1");
        assert_eq!(record["received_at_ms"], 1_700_000_000_000_i64);
        let decoded = STANDARD
            .decode(record["body"].as_str().unwrap_or_default())
            .expect("base64");
        assert_eq!(decoded, body);
        let claims = record["claims"].as_object().expect("claims");
        assert_eq!(
            claims.keys().map(String::as_str).collect::<Vec<_>>(),
            manifest.enrichment_claims()
        );
        assert_eq!(claims["sub"], encode("player-1"));
        assert_eq!(record["client_contract_version"], encode("1.2.0"));
        assert!(record.get("body_bytes").is_none());
        let kept = envelope(manifest, &caller, "r-2", 0, Event::oversized(b"{", 70_000));
        let kept: Value = serde_json::from_slice(&kept).expect("json");
        assert_eq!(kept["body_bytes"], 70_000);
    }
}
