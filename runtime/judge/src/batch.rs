//! Batches: how a body is framed (by its content type) and split into events.

/// How a batch body is framed: NDJSON, or a JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    Array,
    Lines,
}

/// A content type's essence, lower-cased (`Application/JSON; charset=utf-8` → `application/json`).
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The framing a batch's `Content-Type` names (a JSON array unless it says NDJSON).
pub fn batch_format(content_type: Option<&str>) -> BatchFormat {
    match content_type.map(essence).as_deref() {
        Some("application/x-ndjson" | "application/ndjson") => BatchFormat::Lines,
        _ => BatchFormat::Array,
    }
}

/// Whether a body of `content_type` may be judged (absent counts as JSON, as API Gateway
/// assumes); the refusal's text otherwise.
pub fn check_content_type(content_type: Option<&str>, batch: bool) -> Result<(), String> {
    let Some(content_type) = content_type else {
        return Ok(());
    };
    let essence = essence(content_type);
    let ok = essence == "application/json"
        || essence.ends_with("+json")
        || (batch && (essence == "application/x-ndjson" || essence == "application/ndjson"));
    if ok {
        return Ok(());
    }
    Err(format!(
        "unsupported content type {essence:?}: send application/json{}",
        if batch {
            " or application/x-ndjson"
        } else {
            ""
        }
    ))
}

/// Splits a batch body into events.
pub fn split_batch(body: &[u8], format: BatchFormat) -> Result<Vec<&[u8]>, String> {
    match format {
        BatchFormat::Array => {
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_slice(body).map_err(|e| {
                    format!(
                        "the batch is not a JSON array ({e}); send NDJSON as application/x-ndjson"
                    )
                })?;
            Ok(items.into_iter().map(|raw| raw.get().as_bytes()).collect())
        }
        BatchFormat::Lines => Ok(body
            .split(|b| *b == b'\n')
            .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_by_their_framing() {
        assert_eq!(
            batch_format(Some("application/x-ndjson; charset=utf-8")),
            BatchFormat::Lines
        );
        assert_eq!(batch_format(None), BatchFormat::Array);
        let array = split_batch(br#"[{"a":1}, {"b":[2]}]"#, BatchFormat::Array).expect("array");
        assert_eq!(array, vec![&br#"{"a":1}"#[..], &br#"{"b":[2]}"#[..]]);
        let lines =
            split_batch(b"{\"a\":1}\n\n  \n{\"b\":2}\n", BatchFormat::Lines).expect("lines");
        assert_eq!(lines.len(), 2);
        assert!(split_batch(b"{}", BatchFormat::Array).is_err());
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(None, false).is_ok());
        assert!(check_content_type(Some("application/vnd.game+json"), false).is_ok());
        assert!(check_content_type(Some("application/x-ndjson"), false).is_err());
        assert!(check_content_type(Some("application/x-ndjson"), true).is_ok());
        let refused = check_content_type(Some("text/plain"), true).expect_err("text");
        assert!(refused.contains("\"text/plain\""), "{refused}");
    }
}
