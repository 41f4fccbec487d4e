//! Personal data in `serve` (#23): the hashing keys, and the rows as stored: every column a
//! contract declares `pii: hash`, `mask` or `drop` is rewritten when a batch is committed
//! (`flush`), never later, so no table file holds it as sent. The rules themselves are
//! `contract_judge::privacy`, shared with the Glue job's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow_schema::ArrowError;
use contract_judge::privacy::{Keys, stored};
use contract_support::manifest::{Manifest, Pii};

/// The key document `serve` makes at first start when no key is given and a contract hashes.
pub const PII_KEYS_FILE: &str = "pii-keys.json";

/// The hashing keys: the document given (`--pii-keys-file` or `CONTRACTC_PII_KEYS`), else the
/// one in `DATA_DIR/pii-keys.json`, else, when `needed`, a new one written there. None when
/// none is given, kept or needed.
pub fn load_keys(
    given: Option<&str>,
    data_dir: &Path,
    needed: bool,
) -> Result<Option<Arc<Keys>>, String> {
    let parse = |text: &str, origin: &str| {
        Keys::parse(text)
            .map(|keys| Some(Arc::new(keys)))
            .map_err(|error| format!("the pii keys {origin}: {error}"))
    };
    if let Some(text) = given {
        return parse(text, "given");
    }
    let path = data_dir.join(PII_KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &format!("in {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && needed => {
            let secret = crate::identity::random_bytes::<32>();
            let text = Keys::document("k1", &secret);
            // Owner-only, as every file of the data directory (the umask is 077 by now).
            std::fs::write(&path, &text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "made a pii hashing key (keep a copy: without it, hashed values can no longer be matched)");
            parse(&text, &format!("in {}", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// `batch` (rows of `manifest`'s events table) with each rewritten column as the contract
/// stores it. Without keys nothing is rewritten: `serve` has keys whenever a contract needs
/// them (`load_keys`).
pub fn pseudonymise(
    batch: RecordBatch,
    manifest: &Manifest,
    keys: Option<&Keys>,
) -> Result<RecordBatch, ArrowError> {
    let Some(keys) = keys else {
        return Ok(batch);
    };
    let rewritten = manifest.rewritten_columns();
    if rewritten.is_empty() {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, pii) in rewritten {
        let Ok(at) = schema.index_of(name) else {
            continue;
        };
        columns[at] = stored_column(&columns[at], pii, keys)?;
    }
    RecordBatch::try_new(schema, columns)
}

fn stored_column(column: &ArrayRef, pii: Pii, keys: &Keys) -> Result<ArrayRef, ArrowError> {
    if pii == Pii::Drop {
        return Ok(new_null_array(column.data_type(), column.len()));
    }
    let strings = column
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| {
            ArrowError::SchemaError(format!(
                "a `pii: {}` column must hold strings, not {}",
                pii.spelling(),
                column.data_type()
            ))
        })?;
    // A player sends many events per commit: each distinct value is hashed once per batch.
    let mut seen: HashMap<&str, Option<String>> = HashMap::new();
    let values: StringArray = strings
        .iter()
        .map(|value| {
            let value = value?;
            seen.entry(value)
                .or_insert_with(|| stored(pii, value, keys).map(|s| s.into_owned()))
                .clone()
        })
        .collect();
    Ok(Arc::new(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::AnyContract;

    fn keys() -> Keys {
        Keys::parse(&Keys::document("k1", &[3u8; 32])).expect("keys")
    }

    #[test]
    fn hashed_masked_and_dropped_columns_are_rewritten_and_the_rest_kept() {
        let spec: &'static dyn AnyContract = contract_validators::ALL
            .iter()
            .copied()
            .find(|c| c.manifest().name == "game_events")
            .expect("game_events");
        let mut manifest = spec.manifest().clone();
        for field in &mut manifest.fields {
            field.pii = match field.name.as_str() {
                "event_id" => Pii::Hash,
                "event_data" => Pii::Drop,
                _ => field.pii,
            };
        }
        for enrichment in &mut manifest.enrichments {
            if enrichment.name == "player_id" {
                enrichment.pii = Pii::Mask;
            }
        }
        let mut buffer = spec.event_buffer();
        let now = 1_796_300_000_000_000;
        let body = br#"{"event_id":"e-1","event_type":"Login","updated_at":"2026-12-03 10:00:00","event_data":"secret"}"#;
        let enrichment = contract_support::Enrichment {
            ingest_time_micros: now,
            contract_version: &manifest.version,
            request_id: "r-1",
            jwt_sub: Some("player-123456"),
            jwt_claims: &[],
            client_contract_version: None,
        };
        let ctx = contract_support::Context {
            ingest_time_micros: now,
        };
        let mut parser = contract_support::json::Parser::new();
        let (verdict, violations) = buffer.validate_into(&mut parser, body, &ctx, &enrichment);
        assert_eq!(verdict, contract_support::Verdict::Accept, "{violations:?}");
        let batch = pseudonymise(buffer.finish(), &manifest, Some(&keys())).expect("rewritten");
        let column = |name: &str| {
            let at = batch.schema().index_of(name).expect("column");
            batch.column(at).clone()
        };
        let strings = |name: &str| {
            column(name)
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.value(0).to_string())
        };
        assert_eq!(strings("event_id"), Some(keys().hash("e-1")));
        assert_eq!(column("event_data").null_count(), 1);
        assert_eq!(strings("player_id").as_deref(), Some("*********3456"));
        assert_eq!(strings("event_type").as_deref(), Some("Login"));
    }
}
