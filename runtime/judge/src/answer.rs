//! The bodies of the answers: what a game client reads, the same at every door.

use contract_support::manifest::Manifest;
use contract_support::{Verdict, Violation};
use serde_json::{Value, json};

/// The body of a 200 for a single event (the reference API's, which its clients expect).
pub const SUCCESS_BODY: &str = "\"Successfully added event\"";

/// An answer lists at most this many violations per event of a batch (and how many more there
/// were), so its size is bounded by the batch's event limit.
pub const VIOLATIONS_PER_EVENT: usize = 10;

pub fn violations_json(violations: &[Violation]) -> Value {
    serde_json::to_value(violations).unwrap_or_default()
}

/// The body of a 400 for a refused single event: every violation.
pub fn rejected(manifest: &Manifest, request_id: &str, violations: &[Violation]) -> Value {
    json!({
        "message": format!("the event breaks contract {} {}", manifest.name, manifest.version),
        "request_id": request_id,
        "violations": violations_json(violations),
    })
}

/// The codes of an acknowledged event's violations, for the `X-Contract-Violations` header.
pub fn violation_codes(violations: &[Violation]) -> Option<String> {
    (!violations.is_empty()).then(|| {
        violations
            .iter()
            .map(|v| v.code.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// One event's result in a batch answer.
pub fn batch_result(index: usize, verdict: Verdict, violations: &[Violation]) -> Value {
    let shown = &violations[..violations.len().min(VIOLATIONS_PER_EVENT)];
    let mut result =
        json!({ "index": index, "verdict": verdict, "violations": violations_json(shown) });
    if violations.len() > shown.len() {
        result["more_violations"] = json!(violations.len() - shown.len());
    }
    result
}

/// The body of a batch answer: the counts per verdict and every event's result.
pub fn batch(request_id: &str, verdicts: &[(Verdict, Vec<Violation>)]) -> Value {
    let mut tally = [0usize; 3];
    let mut results = Vec::with_capacity(verdicts.len());
    for (i, (verdict, violations)) in verdicts.iter().enumerate() {
        tally[match verdict {
            Verdict::Accept => 0,
            Verdict::Quarantine => 1,
            Verdict::Reject => 2,
        }] += 1;
        results.push(batch_result(i, *verdict, violations));
    }
    json!({
        "request_id": request_id,
        "accepted": tally[0],
        "quarantined": tally[1],
        "rejected": tally[2],
        "results": results,
    })
}

/// The request id of event `index` of the batch `request_id`.
pub fn batch_item_id(request_id: &str, index: usize) -> String {
    format!("{request_id}-{index}")
}

/// A violation of `code` at `$.a`, for tests.
#[cfg(test)]
pub(crate) fn violation(code: contract_support::Code) -> Violation {
    Violation {
        code,
        path: "$.a".into(),
        policy: contract_support::Policy::Reject,
        message: "m".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::Code;

    #[test]
    fn batch_answers_count_verdicts_and_bound_violations() {
        let many = vec![violation(Code::Missing); VIOLATIONS_PER_EVENT + 3];
        let answer = batch(
            "r",
            &[
                (Verdict::Accept, vec![]),
                (Verdict::Reject, many),
                (Verdict::Quarantine, vec![violation(Code::NotBefore)]),
            ],
        );
        assert_eq!(answer["accepted"], 1);
        assert_eq!(answer["rejected"], 1);
        assert_eq!(answer["quarantined"], 1);
        assert_eq!(
            answer["results"][1]["violations"].as_array().map(Vec::len),
            Some(VIOLATIONS_PER_EVENT)
        );
        assert_eq!(answer["results"][1]["more_violations"], 3);
        assert_eq!(
            violation_codes(&[violation(Code::Missing), violation(Code::Max)]).as_deref(),
            Some("missing,max")
        );
    }
}
