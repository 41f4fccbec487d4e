//! The answers of an ingest door as data (status, headers, body), so `serve` and the AWS edge
//! function send the same bytes: each door only turns an [`Answer`] into its own response type.

use contract_support::manifest::Manifest;
use contract_support::{Verdict, Violation};
use serde_json::{Value, json};

use crate::answer::{self, SUCCESS_BODY};
use crate::batch::{BatchFormat, split_batch};

/// One answer of a door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Besides `Content-Type: application/json`, which every answer has.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    /// A JSON answer with no other header.
    pub fn json(status: u16, body: &Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// `{"message": text}`, the shape of every refusal (and of API Gateway's own).
    pub fn message(status: u16, text: impl Into<String>) -> Answer {
        Answer::json(status, &json!({ "message": text.into() }))
    }
}

/// Why a door refuses a request before judging its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token (API Gateway's JWT authorizer answers the same).
    Unauthorized,
    /// The token lacks the contract's scopes.
    Forbidden,
    /// The content type is not JSON (or NDJSON, for a batch): the text says what to send.
    ContentType(String),
    /// The body weighs more than `limit` bytes.
    TooLarge { batch: bool, limit: usize },
    /// The event weighs more than `limit` bytes, the most the AWS path's stream carries (less
    /// than the contract's limit).
    TooLargeForStream { limit: usize },
    /// The batch body does not split into events.
    NotABatch(String),
    /// The batch has more events than the contract takes.
    TooManyEvents { count: usize, max: usize },
    /// The events could not be stored: nothing was kept, retry later.
    Unavailable,
}

impl Refusal {
    pub fn answer(&self, manifest: &Manifest) -> Answer {
        match self {
            Refusal::Unauthorized => Answer::message(401, "Unauthorized"),
            Refusal::Forbidden => Answer::message(403, "Forbidden"),
            Refusal::ContentType(text) => Answer::message(415, text.clone()),
            Refusal::TooLarge { batch, limit } => Answer::message(
                413,
                format!(
                    "the {} exceeds the limit of {limit} bytes of contract {}",
                    if *batch { "batch" } else { "body" },
                    manifest.name
                ),
            ),
            Refusal::TooLargeForStream { limit } => Answer::message(
                413,
                format!(
                    "the body exceeds the limit of {limit} bytes of contract {} on AWS (its \
                     stream's records carry 1 MiB, the event base64-encoded in them)",
                    manifest.name
                ),
            ),
            Refusal::NotABatch(text) => Answer::message(400, text.clone()),
            Refusal::TooManyEvents { count, max } => Answer::message(
                413,
                format!(
                    "the batch has {count} events; contract {} takes at most {max} per batch",
                    manifest.name
                ),
            ),
            Refusal::Unavailable => unavailable(),
        }
    }

    /// The limit a refusal counts against, for the `limited` metric.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            Refusal::TooLarge { .. } | Refusal::TooLargeForStream { .. } => Some("body_size"),
            Refusal::TooManyEvents { .. } => Some("batch_events"),
            _ => None,
        }
    }
}

/// 503: nothing of the request was stored, try again later.
pub fn unavailable() -> Answer {
    let mut answer = Answer::message(
        503,
        "the event could not be stored; nothing was kept: retry later",
    );
    answer.headers.push(("retry-after", "5".to_string()));
    answer
}

/// 415 for a content type that is not JSON (absent counts as JSON, as API Gateway assumes).
pub fn check_content_type(content_type: Option<&str>, batch: bool) -> Result<(), Refusal> {
    crate::batch::check_content_type(content_type, batch).map_err(Refusal::ContentType)
}

/// The events of a batch body, unless it does not split or holds more than the contract takes.
pub fn events_of<'b>(
    manifest: &Manifest,
    body: &'b [u8],
    format: BatchFormat,
) -> Result<Vec<&'b [u8]>, Refusal> {
    let max = usize::try_from(manifest.ingest.max_batch_events).unwrap_or(usize::MAX);
    let events = split_batch(body, format).map_err(Refusal::NotABatch)?;
    if events.len() > max {
        return Err(Refusal::TooManyEvents {
            count: events.len(),
            max,
        });
    }
    Ok(events)
}

/// The answer to a single event that was stored: 200 with the verdict and codes in headers
/// (quarantined events are acknowledged: a retry would not fix them), or 400 with every
/// violation.
pub fn single(
    manifest: &Manifest,
    request_id: &str,
    verdict: Verdict,
    violations: &[Violation],
) -> Answer {
    match verdict {
        Verdict::Accept | Verdict::Quarantine => {
            let mut headers = vec![("x-contract-verdict", verdict.as_str().to_string())];
            if let Some(codes) = answer::violation_codes(violations) {
                headers.push(("x-contract-violations", codes));
            }
            Answer {
                status: 200,
                headers,
                body: SUCCESS_BODY.to_string(),
            }
        }
        Verdict::Reject => Answer::json(400, &answer::rejected(manifest, request_id, violations)),
    }
}

/// An event of a batch that could not be stored: its index, and why (the store's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStored {
    pub index: usize,
    pub error: String,
    pub message: String,
}

/// The answer to a batch: 200 with every event's result. An event that could not be stored
/// is answered `{"index", "result": "failed", "error", "message"}` instead of its verdict (the
/// clients send those again); if none was stored, the answer is [`unavailable`].
pub fn batch(
    request_id: &str,
    verdicts: &[(Verdict, Vec<Violation>)],
    not_stored: &[NotStored],
) -> Answer {
    let mut body = answer::batch(request_id, verdicts);
    if not_stored.is_empty() {
        return Answer::json(200, &body);
    }
    if not_stored.len() >= verdicts.len() {
        return unavailable();
    }
    if let Some(results) = body["results"].as_array_mut() {
        for failed in not_stored {
            if let Some(result) = results.get_mut(failed.index) {
                *result = json!({
                    "index": failed.index,
                    "result": "failed",
                    "error": failed.error,
                    "message": failed.message,
                });
            }
        }
    }
    body["failed"] = json!(not_stored.len());
    Answer::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::violation;
    use contract_support::Code;

    #[test]
    fn unstored_events_of_a_batch_are_answered_failed_and_none_stored_is_a_503() {
        let verdicts = vec![
            (Verdict::Accept, vec![]),
            (Verdict::Quarantine, vec![violation(Code::NotBefore)]),
        ];
        let failed = NotStored {
            index: 1,
            error: "ProvisionedThroughputExceededException".into(),
            message: "slow down".into(),
        };
        let some = batch("r", &verdicts, std::slice::from_ref(&failed));
        assert_eq!(some.status, 200);
        let body: Value = serde_json::from_str(&some.body).expect("json");
        assert_eq!(body["results"][0]["verdict"], "accept");
        assert_eq!(body["results"][1]["result"], "failed");
        assert_eq!(body["failed"], 1);
        let second = NotStored {
            index: 0,
            ..failed.clone()
        };
        let none = batch("r", &verdicts, &[failed, second]);
        assert_eq!(none, unavailable());
        assert_eq!(batch("r", &verdicts, &[]).status, 200);
    }

    #[test]
    fn stored_single_events_are_acknowledged_unless_rejected() {
        let manifest = contract_validators::ALL[0].manifest();
        let quarantined = single(
            manifest,
            "r",
            Verdict::Quarantine,
            &[violation(Code::NotBefore), violation(Code::Max)],
        );
        assert_eq!(quarantined.status, 200);
        assert_eq!(quarantined.body, SUCCESS_BODY);
        assert!(
            quarantined
                .headers
                .contains(&("x-contract-violations", "not_before,max".to_string()))
        );
        assert_eq!(
            single(manifest, "r", Verdict::Reject, &[violation(Code::Max)]).status,
            400
        );
    }
}
