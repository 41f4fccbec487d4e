//! Which event an event is: the id a contract's `ingest.dedup` names, read the same way by
//! every engine that deduplicates (serve's index, and the Glue job, whose template reads the
//! same top-level field).

use contract_support::json::Parser;
use contract_support::manifest::Manifest;

/// An event's id: the 128 bits of its UUID, whatever case or form the client wrote it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    pub fn parse(text: &str) -> Option<EventId> {
        uuid::Uuid::try_parse(text)
            .ok()
            .map(|id| EventId(*id.as_bytes()))
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        uuid::Uuid::from_bytes(self.0).fmt(f)
    }
}

/// The id of `body` under `manifest`'s deduplication: None when the contract declares none,
/// the body is not a JSON object, or its id field is absent or not a UUID (such an event is
/// not deduplicated; the validator judges it as usual). With duplicate keys the first counts.
pub fn event_id(manifest: &Manifest, parser: &mut Parser, body: &[u8]) -> Option<EventId> {
    let field = &manifest.ingest.dedup.as_ref()?.field;
    let document = parser.parse(body).ok()?;
    let mut members = document.root().members()?;
    members
        .find(|(key, _)| key == field)
        .and_then(|(_, value)| value.as_str())
        .and_then(EventId::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> &'static Manifest {
        contract_validators::ALL
            .iter()
            .map(|c| c.manifest())
            .find(|m| m.name == "game_events")
            .expect("game_events")
    }

    #[test]
    fn the_id_is_the_declared_fields_uuid_in_any_form() {
        let mut parser = Parser::new();
        let id = "0190a6c4-1c2b-7d3e-8f40-123456789abc";
        let body = format!(r#"{{"event_id":"1","event_uuid":"{id}"}}"#);
        let parsed = event_id(manifest(), &mut parser, body.as_bytes()).expect("an id");
        assert_eq!(parsed.to_string(), id);
        let upper = format!(r#"{{"event_uuid":"{}"}}"#, id.to_uppercase());
        assert_eq!(
            event_id(manifest(), &mut parser, upper.as_bytes()),
            Some(parsed)
        );
    }

    #[test]
    fn events_without_a_usable_id_are_not_deduplicated() {
        let mut parser = Parser::new();
        for body in [
            r#"{"event_id":"1"}"#,
            r#"{"event_uuid":"not a uuid"}"#,
            r#"{"event_uuid":7}"#,
            r#"["event_uuid"]"#,
            "{",
        ] {
            assert_eq!(
                event_id(manifest(), &mut parser, body.as_bytes()),
                None,
                "{body}"
            );
        }
    }
}
