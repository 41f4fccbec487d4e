//! What the console keeps in memory: counts per time bucket and the latest bad events per
//! rule. Fixed-size rings, so memory does not grow with traffic or uptime; updated by the
//! ingest path under the contract's lock (one uncontended mutex, a few additions per event).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use contract_support::{Verdict, Violation};
use serde::Serialize;

/// Verdict counts are kept per 10 seconds, for a day.
pub const STEP_SECS: i64 = 10;
const VERDICT_SLOTS: usize = 8640;
/// Violation counts are kept per minute, for a day.
pub const RULE_STEP_SECS: i64 = 60;
const RULE_SLOTS: usize = 1440;
/// At most this many paths per violation code and contract; further ones are counted under
/// (code, [`OTHER_PATHS`]), so a flood of distinct map keys cannot grow memory. The budget is
/// per code (codes are a closed set), so junk keys flooding `unknown_field` never push another
/// rule's violations out of the list.
const PATHS_PER_CODE: usize = 20;
pub const OTHER_PATHS: &str = "(other paths)";
/// Bad events kept per (code, path).
pub const EVENTS_PER_RULE: usize = 20;
/// Payload bytes kept per bad event (the rest is cut; the table has the whole payload).
pub const PAYLOAD_BYTES: usize = 8192;

/// A ring of counters, one slot per time bucket; a slot whose bucket is older than the ring is
/// reused (its old count is gone, as it should be: it fell out of the day).
#[derive(Clone)]
struct Ring<V: Copy + Default> {
    slots: Vec<(i64, V)>,
}

impl<V: Copy + Default> Ring<V> {
    fn new(len: usize) -> Ring<V> {
        Ring {
            slots: vec![(i64::MIN, V::default()); len],
        }
    }

    /// The counter of `bucket`; None when its slot already holds a newer bucket (history
    /// read from the lake after live counting began must not wipe live counts).
    fn slot(&mut self, bucket: i64) -> Option<&mut V> {
        let len = self.slots.len() as i64;
        let slot = &mut self.slots[bucket.rem_euclid(len) as usize];
        if slot.0 > bucket {
            return None;
        }
        if slot.0 != bucket {
            *slot = (bucket, V::default());
        }
        Some(&mut slot.1)
    }

    fn get(&self, bucket: i64) -> V {
        let len = self.slots.len() as i64;
        let slot = self.slots[bucket.rem_euclid(len) as usize];
        if slot.0 == bucket {
            slot.1
        } else {
            V::default()
        }
    }
}

/// Index of a verdict in `[accepted, quarantined, rejected]`.
pub fn verdict_index(verdict: Verdict) -> usize {
    match verdict {
        Verdict::Accept => 0,
        Verdict::Quarantine => 1,
        Verdict::Reject => 2,
    }
}

/// A refused or quarantined event as the console shows it (payload still unmasked: masking
/// costs a JSON parse, so it happens when someone looks, not on the ingest path).
#[derive(Debug, Clone, Serialize)]
pub struct BadEvent {
    pub received_micros: i64,
    pub request_id: String,
    pub verdict: Verdict,
    pub violations: Vec<ShownViolation>,
    #[serde(skip)]
    pub payload: String,
    /// Whether `payload` was cut at [`PAYLOAD_BYTES`].
    #[serde(skip)]
    pub truncated: bool,
    pub client_version: Option<String>,
    /// `memory` (judged since start) or `lake` (read back from the quarantine table).
    pub source: &'static str,
}

impl BadEvent {
    /// Keeps at most [`PAYLOAD_BYTES`] of the payload, cut on a character boundary.
    pub fn cut_payload(body: &[u8]) -> (String, bool) {
        let kept = &body[..body.len().min(PAYLOAD_BYTES)];
        // A character split by the cut becomes a replacement character: harmless.
        (
            String::from_utf8_lossy(kept).into_owned(),
            kept.len() < body.len(),
        )
    }
}

/// A violation as stored in the quarantine table: plain strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownViolation {
    pub code: String,
    pub path: String,
    pub policy: String,
    pub message: String,
}

impl From<&Violation> for ShownViolation {
    fn from(v: &Violation) -> Self {
        ShownViolation {
            code: v.code.as_str().to_string(),
            path: v.path.clone(),
            policy: v.policy.as_str().to_string(),
            message: v.message.clone(),
        }
    }
}

/// The key violations are counted by: the code and the path with list indices folded
/// (`$.players[3].skill` → `$.players[*].skill`), so one broken rule is one row.
pub fn rule_key(violation: &ShownViolation) -> (String, String) {
    (violation.code.clone(), fold_indices(&violation.path))
}

pub fn fold_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    // Inside a quoted key (`$["a[1]"]`) brackets are the key's own characters.
    let (mut in_key, mut escaped) = (false, false);
    let mut skip_to = 0;
    for (i, c) in path.char_indices() {
        if i < skip_to {
            continue;
        }
        if in_key {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_key = false;
            }
        } else if c == '"' {
            in_key = true;
        } else if c == '[' {
            let rest = &path[i + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with(']') {
                out.push_str("[*]");
                skip_to = i + digits + 2;
                continue;
            }
        }
        out.push(c);
    }
    out
}

struct Rule {
    counts: Ring<u32>,
    total: u64,
    latest: VecDeque<Arc<BadEvent>>,
}

/// One contract's live state.
pub struct Live {
    verdicts: Ring<[u32; 3]>,
    rules: HashMap<(String, String), Rule>,
    /// How many paths each code has its own row for.
    paths_per_code: HashMap<String, usize>,
    /// Verdict counts since start per client version (which build sends bad data, #20).
    client_versions: std::collections::BTreeMap<String, [u64; 3]>,
}

/// Client versions counted apart; the versions clients declare are their word, so past this
/// many the rest share one row.
const CLIENT_VERSIONS: usize = 32;
/// The row of events whose client declared no version (and the contract has no default).
pub const NO_CLIENT_VERSION: &str = "(none)";
/// The row of versions past [`CLIENT_VERSIONS`].
pub const OTHER_CLIENT_VERSIONS: &str = "(other)";

impl Default for Live {
    fn default() -> Self {
        Live {
            verdicts: Ring::new(VERDICT_SLOTS),
            rules: HashMap::new(),
            paths_per_code: HashMap::new(),
            client_versions: std::collections::BTreeMap::new(),
        }
    }
}

impl Live {
    /// Counts one event's verdict for the client version it was judged as.
    pub fn count_client_version(&mut self, version: Option<&str>, verdict: Verdict) {
        let version = version.unwrap_or(NO_CLIENT_VERSION);
        // Called for every event: a version already counted costs no allocation.
        let counts = match self.client_versions.get_mut(version) {
            Some(counts) => counts,
            None => {
                let key = if self.client_versions.len() < CLIENT_VERSIONS {
                    version
                } else {
                    OTHER_CLIENT_VERSIONS
                };
                self.client_versions.entry(key.to_string()).or_default()
            }
        };
        counts[verdict_index(verdict)] += 1;
    }

    /// Verdict counts since start per client version, sorted by version text.
    pub fn client_versions(&self) -> impl Iterator<Item = (&str, [u64; 3])> {
        self.client_versions.iter().map(|(v, c)| (v.as_str(), *c))
    }

    /// Counts `n` events with `verdict` at `micros`.
    pub fn count(&mut self, micros: i64, verdict: Verdict, n: u32) {
        if let Some(slot) = self.verdicts.slot(micros.div_euclid(STEP_SECS * 1_000_000)) {
            slot[verdict_index(verdict)] = slot[verdict_index(verdict)].saturating_add(n);
        }
    }

    /// Counts a bad event's violations and keeps it as one of the latest of each rule.
    pub fn bad_event(&mut self, event: BadEvent) {
        let event = Arc::new(event);
        let minute = event.received_micros.div_euclid(RULE_STEP_SECS * 1_000_000);
        let mut seen: Vec<(String, String)> = Vec::new();
        for violation in &event.violations {
            let key = self.key_for(rule_key(violation));
            let rule = self.rules.entry(key.clone()).or_insert_with(|| {
                *self.paths_per_code.entry(key.0.clone()).or_default() += 1;
                Rule {
                    counts: Ring::new(RULE_SLOTS),
                    total: 0,
                    latest: VecDeque::new(),
                }
            });
            if let Some(count) = rule.counts.slot(minute) {
                *count += 1;
            }
            rule.total += 1;
            // An event breaking one rule twice (two list items) is listed once.
            if !seen.contains(&key) {
                // Kept in arrival order, oldest first: history read from the lake may come
                // in after newer live events.
                let at = rule
                    .latest
                    .partition_point(|e| e.received_micros <= event.received_micros);
                rule.latest.insert(at, event.clone());
                if rule.latest.len() > EVENTS_PER_RULE {
                    rule.latest.pop_front();
                }
                seen.push(key);
            }
        }
    }

    fn key_for(&self, key: (String, String)) -> (String, String) {
        let paths = self.paths_per_code.get(&key.0).copied().unwrap_or(0);
        // One slot stays free for the code's OTHER_PATHS row.
        if paths < PATHS_PER_CODE - 1 || self.rules.contains_key(&key) {
            key
        } else {
            (key.0, OTHER_PATHS.to_string())
        }
    }

    /// Verdict counts per `step` seconds for the `points` steps ending with the one holding
    /// `now_secs`: the step starts, and the counts.
    pub fn verdict_series(
        &self,
        now_secs: i64,
        step: i64,
        points: usize,
    ) -> (Vec<i64>, Vec<[u64; 3]>) {
        let per_step = (step / STEP_SECS).max(1);
        let last = now_secs.div_euclid(step);
        let mut starts = Vec::with_capacity(points);
        let mut counts = Vec::with_capacity(points);
        for i in (0..points as i64).rev() {
            let start = (last - i) * step;
            let first_bucket = start.div_euclid(STEP_SECS);
            let mut sum = [0u64; 3];
            for bucket in first_bucket..first_bucket + per_step {
                let n = self.verdicts.get(bucket);
                for (s, v) in sum.iter_mut().zip(n) {
                    *s += u64::from(v);
                }
            }
            starts.push(start);
            counts.push(sum);
        }
        (starts, counts)
    }

    /// Every rule's counts per `step` seconds (a multiple of a minute) over `points` steps
    /// ending now, with the total over those steps; most broken first.
    pub fn rule_series(&self, now_secs: i64, step: i64, points: usize) -> Vec<RuleSeries> {
        let per_step = (step / RULE_STEP_SECS).max(1);
        let last = now_secs.div_euclid(step);
        let mut out: Vec<RuleSeries> = self
            .rules
            .iter()
            .map(|((code, path), rule)| {
                let counts: Vec<u64> = (0..points as i64)
                    .rev()
                    .map(|i| {
                        let first = ((last - i) * step).div_euclid(RULE_STEP_SECS);
                        (first..first + per_step)
                            .map(|m| u64::from(rule.counts.get(m)))
                            .sum()
                    })
                    .collect();
                RuleSeries {
                    code: code.clone(),
                    path: path.clone(),
                    total: counts.iter().sum(),
                    code_total: 0,
                    since_start: rule.total,
                    counts,
                }
            })
            .filter(|r| r.total > 0)
            .collect();
        // Grouped by code, the most broken code first, then its paths by count: the first
        // row is the most broken code at its most broken path.
        let mut by_code: HashMap<String, u64> = HashMap::new();
        for rule in &out {
            *by_code.entry(rule.code.clone()).or_default() += rule.total;
        }
        for rule in &mut out {
            rule.code_total = by_code.get(&rule.code).copied().unwrap_or(0);
        }
        out.sort_by(|a, b| {
            (b.code_total, &a.code, b.total, &a.path).cmp(&(
                a.code_total,
                &b.code,
                a.total,
                &b.path,
            ))
        });
        out
    }

    /// The latest bad events that broke (`code`, `path`), newest first.
    pub fn latest(&self, code: &str, path: &str) -> Vec<Arc<BadEvent>> {
        self.rules
            .get(&(code.to_string(), path.to_string()))
            .map(|rule| rule.latest.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
pub struct RuleSeries {
    pub code: String,
    pub path: String,
    /// Over the window asked for.
    pub total: u64,
    /// Every path of this code, over the window.
    pub code_total: u64,
    /// Over the day the ring holds.
    pub since_start: u64,
    pub counts: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::{Code, Policy};

    fn violation(code: Code, path: &str) -> ShownViolation {
        ShownViolation::from(&Violation {
            code,
            path: path.into(),
            policy: Policy::Reject,
            message: "m".into(),
        })
    }

    fn bad(micros: i64, violations: Vec<ShownViolation>) -> BadEvent {
        BadEvent {
            received_micros: micros,
            request_id: format!("r{micros}"),
            verdict: Verdict::Reject,
            violations,
            payload: "{}".into(),
            truncated: false,
            client_version: None,
            source: "memory",
        }
    }

    #[test]
    fn rules_are_grouped_by_code_most_broken_first() {
        let mut live = Live::default();
        let now = 2_000_000_000i64;
        for (i, (code, path)) in [(Code::Pattern, "$.a"), (Code::Pattern, "$.b")]
            .into_iter()
            .cycle()
            .take(10)
            .enumerate()
        {
            live.bad_event(bad(
                (now - 30) * 1_000_000 + i as i64,
                vec![violation(code, path)],
            ));
        }
        for i in 0..8 {
            live.bad_event(bad(
                (now - 20) * 1_000_000 + i,
                vec![violation(Code::Missing, "$.c")],
            ));
        }
        let rules = live.rule_series(now, 60, 15);
        let order: Vec<(&str, &str)> = rules
            .iter()
            .map(|r| (r.code.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            order,
            [("pattern", "$.a"), ("pattern", "$.b"), ("missing", "$.c")]
        );
        assert_eq!(rules[0].code_total, 10);
    }

    #[test]
    fn indices_fold_but_keys_stay() {
        assert_eq!(fold_indices("$.players[12].skill"), "$.players[*].skill");
        assert_eq!(fold_indices("$[\"a[1]\"]"), "$[\"a[1]\"]");
        assert_eq!(fold_indices("$"), "$");
    }

    #[test]
    fn series_sum_buckets_and_forget_what_left_the_ring() {
        let mut live = Live::default();
        let now = 1_000_000_000i64;
        live.count(now * 1_000_000, Verdict::Accept, 3);
        live.count((now - 5) * 1_000_000, Verdict::Reject, 1);
        live.count((now - 86_400 * 2) * 1_000_000, Verdict::Accept, 7);
        let (_, counts) = live.verdict_series(now, 60, 60);
        let total: [u64; 3] = counts
            .iter()
            .fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
        assert_eq!(total, [3, 0, 1]);
    }

    #[test]
    fn rules_rank_by_count_and_keep_the_latest_events() {
        let mut live = Live::default();
        let now = 2_000_000_000i64;
        for i in 0..30 {
            live.bad_event(bad(
                (now - 60 + i) * 1_000_000,
                vec![violation(Code::Pattern, "$.a[1]")],
            ));
        }
        live.bad_event(bad(now * 1_000_000, vec![violation(Code::Missing, "$.b")]));
        let rules = live.rule_series(now, 60, 15);
        assert_eq!(rules[0].code, "pattern");
        assert_eq!(rules[0].path, "$.a[*]");
        assert_eq!(rules[0].total, 30);
        let latest = live.latest("pattern", "$.a[*]");
        assert_eq!(latest.len(), EVENTS_PER_RULE);
        assert!(latest[0].received_micros > latest[1].received_micros);
    }

    #[test]
    fn junk_keys_never_push_another_rule_out() {
        let mut live = Live::default();
        let mut violations: Vec<ShownViolation> = (0..120)
            .map(|i| violation(Code::UnknownField, &format!("$.junk{i}")))
            .collect();
        violations.push(violation(Code::OneOf, "$.event_type"));
        live.bad_event(bad(1_000_000, violations));
        let rules = live.rule_series(1, 60, 15);
        assert!(
            rules
                .iter()
                .any(|r| r.code == "one_of" && r.path == "$.event_type"),
            "the real violation keeps its row"
        );
        let unknown: Vec<&RuleSeries> =
            rules.iter().filter(|r| r.code == "unknown_field").collect();
        assert_eq!(unknown.len(), PATHS_PER_CODE);
        let other = unknown
            .iter()
            .find(|r| r.path == OTHER_PATHS)
            .expect("other paths row");
        assert_eq!(other.total, 120 - (PATHS_PER_CODE as u64 - 1));
    }
}
