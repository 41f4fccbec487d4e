//! `contract-runtime synth`: realistic test traffic from the contract itself.
//!
//! Valid events are random but valid by construction: values drawn within each rule (enums,
//! ranges, lengths, patterns through a regex-based generator, timestamps in the contract's
//! format inside its time window), per-variant payloads, nested fields. Invalid events come
//! from the contract's labelled corpus (one thing broken each, with the violation codes it
//! must produce), so the summary can check the server answered each one as labelled.

use std::time::Duration;

use contractc::corpus;
use contractc::ir::{Contract, Element, Literal, Rule, RuleKind, Type, Variant};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// One generated event and what the server must say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthEvent {
    pub body: String,
    /// Violation codes the event must produce; empty for a valid event.
    pub expect: Vec<String>,
    /// What was broken (for invalid events).
    pub label: Option<String>,
}

/// Generates `count` events: valid ones, and a share `invalid_ratio` of labelled invalid ones.
pub struct Generator<'c> {
    contract: &'c Contract,
    rng: StdRng,
    invalid: Vec<corpus::Case>,
    invalid_ratio: f64,
    /// Ingest time the events are made valid for (seconds since the epoch).
    now: i64,
}

impl<'c> Generator<'c> {
    pub fn new(contract: &'c Contract, seed: u64, invalid_ratio: f64, now: i64) -> Self {
        // Corpus cases whose only problem a server can see at any time (time-window cases are
        // relative to `now`, and stay valid labels for a few minutes).
        let invalid = corpus::cases_at(contract, now)
            .into_iter()
            .filter(|c| !c.is_valid())
            .collect();
        Generator {
            contract,
            rng: StdRng::seed_from_u64(seed),
            invalid,
            invalid_ratio,
            now,
        }
    }

    pub fn next_event(&mut self) -> SynthEvent {
        if !self.invalid.is_empty() && self.rng.random_bool(self.invalid_ratio.clamp(0.0, 1.0)) {
            let case = &self.invalid[self.rng.random_range(0..self.invalid.len())];
            return SynthEvent {
                body: case.body.clone(),
                expect: case.codes.iter().map(|c| c.to_string()).collect(),
                label: Some(case.name.clone()),
            };
        }
        // `contract` outlives `self`'s borrow: no need to clone the variant or the fields.
        let contract = self.contract;
        let variant = contract
            .variants
            .as_ref()
            .map(|v| &v.cases[self.rng.random_range(0..v.cases.len())]);
        let body = Value::Object(self.valid_event(variant)).to_string();
        SynthEvent {
            body,
            expect: Vec::new(),
            label: None,
        }
    }

    fn valid_event(&mut self, variant: Option<&Variant>) -> Map<String, Value> {
        let mut event = Map::new();
        let contract = self.contract;
        for f in &contract.fields {
            let extra: Vec<Rule> = variant
                .and_then(|v| v.rules.iter().find(|(n, _)| n == &f.name))
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let required = f.required || variant.is_some_and(|v| v.require.contains(&f.name));
            if let (Some(vs), Some(v)) = (&self.contract.variants, variant)
                && vs.discriminator == f.name
            {
                event.insert(f.name.clone(), json!(v.value));
                continue;
            }
            if !required && self.rng.random_bool(0.3) {
                continue;
            }
            let rules: Vec<Rule> = f.rules.iter().cloned().chain(extra).collect();
            let value = self.value(&f.ty, &rules);
            event.insert(f.name.clone(), value);
        }
        if let Some(v) = variant {
            for f in &v.fields {
                if !f.required && self.rng.random_bool(0.3) {
                    continue;
                }
                let value = self.value(&f.ty, &f.rules);
                event.insert(f.name.clone(), value);
            }
        }
        event
    }

    fn value(&mut self, ty: &Type, rules: &[Rule]) -> Value {
        let one_of = rules.iter().find_map(|r| match &r.kind {
            RuleKind::OneOf(values) => Some(values.clone()),
            _ => None,
        });
        let (lo, hi) = bounds(rules);
        match ty {
            Type::String => {
                if let Some(values) = one_of {
                    let passing: Vec<String> = values
                        .iter()
                        .filter_map(|v| {
                            if let Literal::String(s) = v {
                                Some(s.clone())
                            } else {
                                None
                            }
                        })
                        .filter(|s| corpus::string_codes(s, rules).is_empty())
                        .collect();
                    if !passing.is_empty() {
                        return json!(passing[self.rng.random_range(0..passing.len())]);
                    }
                }
                json!(self.string(rules))
            }
            Type::Boolean => json!(self.rng.random_bool(0.5)),
            Type::Int | Type::Long => {
                if let Some(values) = one_of {
                    let ints: Vec<i64> = values
                        .iter()
                        .filter_map(|v| {
                            if let Literal::Int(i) = v {
                                Some(*i)
                            } else {
                                None
                            }
                        })
                        .collect();
                    if !ints.is_empty() {
                        return json!(ints[self.rng.random_range(0..ints.len())]);
                    }
                }
                let lo = lo.map_or(0, |v| v.ceil() as i64);
                let hi = hi.map_or(lo.saturating_add(10_000), |v| v.floor() as i64);
                json!(self.rng.random_range(lo..=hi.max(lo)))
            }
            Type::Float | Type::Double => {
                let lo = lo.unwrap_or(0.0);
                let hi = hi.unwrap_or(lo + 10_000.0).max(lo);
                // Two decimals keep the text short and the value inside inclusive bounds.
                let v = (self.rng.random_range(lo..=hi) * 100.0).floor() / 100.0;
                json!(v.clamp(lo, hi))
            }
            Type::Decimal { precision, scale } => {
                let max = 10f64.powi(i32::from(*precision) - i32::from(*scale)) - 1.0;
                let lo = lo.unwrap_or(0.0).max(-max);
                let hi = hi.unwrap_or(lo + 1000.0).min(max).max(lo);
                let units = 10f64.powi(i32::from(*scale));
                let v = (self.rng.random_range(lo..=hi) * units).floor() / units;
                json!(format!("{:.*}", usize::from(*scale), v.clamp(lo, hi)))
            }
            Type::Date | Type::Timestamp { .. } | Type::TimestampTz => {
                // A time inside the rules' window, within the last hour of `now`.
                let anchor = corpus::example_seconds(ty, rules, self.now);
                let window = time_window(rules, self.now);
                let jitter = self.rng.random_range(0..3600);
                let candidate = (self.now - jitter).clamp(window.0, window.1);
                let seconds = if *ty == Type::Date { anchor } else { candidate };
                corpus::time_value(ty, seconds).unwrap_or(Value::Null)
            }
            Type::Uuid => {
                let bytes: [u8; 16] = self.rng.random();
                json!(
                    uuid::Builder::from_random_bytes(bytes)
                        .into_uuid()
                        .to_string()
                )
            }
            Type::List(e) => {
                let n = self.length(rules, 3);
                json!((0..n).map(|_| self.element(e)).collect::<Vec<_>>())
            }
            Type::Map { key, value } => {
                let n = self.length(rules, 3);
                let mut map = Map::new();
                for _ in 0..n * 4 {
                    if map.len() as u64 >= n {
                        break;
                    }
                    let k = self.string(&key.rules);
                    let v = self.element(value);
                    map.insert(k, v);
                }
                Value::Object(map)
            }
            Type::Struct(fields) => {
                let mut object = Map::new();
                for f in fields {
                    if !f.required && self.rng.random_bool(0.3) {
                        continue;
                    }
                    let v = self.value(&f.ty, &f.rules);
                    object.insert(f.name.clone(), v);
                }
                Value::Object(object)
            }
        }
    }

    fn element(&mut self, e: &Element) -> Value {
        self.value(&e.ty, &e.rules)
    }

    fn length(&mut self, rules: &[Rule], default_max: u64) -> u64 {
        let min = rules
            .iter()
            .find_map(|r| {
                if let RuleKind::MinLength(n) = r.kind {
                    Some(n)
                } else {
                    None
                }
            })
            .unwrap_or(0);
        let max = rules
            .iter()
            .find_map(|r| {
                if let RuleKind::MaxLength(n) = r.kind {
                    Some(n)
                } else {
                    None
                }
            })
            .unwrap_or(min + default_max);
        self.rng.random_range(min..=max.max(min).min(min + 16))
    }

    /// A string passing every string rule: from the pattern when there is one.
    fn string(&mut self, rules: &[Rule]) -> String {
        let pattern = rules.iter().find_map(|r| {
            if let RuleKind::Pattern(p) = &r.kind {
                Some(p.clone())
            } else {
                None
            }
        });
        if let Some(pattern) = pattern
            && let Ok(generator) = rand_regex::Regex::compile(&pattern, 12)
        {
            for _ in 0..50 {
                let s: String = self.rng.sample(&generator);
                if corpus::string_codes(&s, rules).is_empty() {
                    return s;
                }
            }
        }
        let min = rules
            .iter()
            .find_map(|r| {
                if let RuleKind::MinLength(n) = r.kind {
                    Some(n as usize)
                } else {
                    None
                }
            })
            .unwrap_or(1);
        let max = rules
            .iter()
            .find_map(|r| {
                if let RuleKind::MaxLength(n) = r.kind {
                    Some(n as usize)
                } else {
                    None
                }
            })
            .unwrap_or(min + 40)
            .max(min);
        let len = self.rng.random_range(min..=max.min(min + 40));
        const WORDS: &[&str] = &[
            "the", "only", "thing", "we", "have", "to", "fear", "is", "itself", "dream", "leap",
        ];
        let mut s = String::new();
        while s.chars().count() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.rng.random_range(0..WORDS.len())]);
        }
        let s: String = s.chars().take(len).collect();
        if corpus::string_codes(&s, rules).is_empty() {
            s
        } else {
            // A pattern the generator could not satisfy: the contract's own example passes.
            corpus::example_value(&Type::String, rules, self.now)
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    }
}

fn bounds(rules: &[Rule]) -> (Option<f64>, Option<f64>) {
    let lo = rules.iter().find_map(|r| {
        if let RuleKind::Min(b) = r.kind {
            Some(b.as_f64())
        } else {
            None
        }
    });
    let hi = rules.iter().find_map(|r| {
        if let RuleKind::Max(b) = r.kind {
            Some(b.as_f64())
        } else {
            None
        }
    });
    (lo, hi)
}

/// The [earliest, latest] seconds a time rule allows, padded by a minute inside.
fn time_window(rules: &[Rule], now: i64) -> (i64, i64) {
    let lo = rules
        .iter()
        .find_map(|r| {
            if let RuleKind::NotBefore(t) = r.kind {
                Some(now + t.offset_seconds - t.skew.as_secs() as i64 + 60)
            } else {
                None
            }
        })
        .unwrap_or(i64::MIN / 2);
    let hi = rules
        .iter()
        .find_map(|r| {
            if let RuleKind::NotAfter(t) = r.kind {
                Some(now + t.offset_seconds + t.skew.as_secs() as i64 - 60)
            } else {
                None
            }
        })
        .unwrap_or(i64::MAX / 2);
    (lo, hi.max(lo))
}

/// A run's tally, printed at the end.
#[derive(Debug, Default)]
pub struct Summary {
    pub sent: u64,
    pub accepted: u64,
    pub quarantined: u64,
    pub rejected: u64,
    pub failed: u64,
    pub rejected_by_code: std::collections::BTreeMap<String, u64>,
    pub mismatches: Vec<String>,
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    pub fn render(&self) -> String {
        let rate = self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "sent {}  accepted {}  quarantined {}  rejected {}  failed {}\nthroughput {:.0} events/s over {:.1?}  latency p50 {:.1?}  p99 {:.1?}\n",
            self.sent,
            self.accepted,
            self.quarantined,
            self.rejected,
            self.failed,
            rate,
            self.elapsed,
            self.percentile(0.5),
            self.percentile(0.99)
        );
        if !self.rejected_by_code.is_empty() {
            let codes: Vec<String> = self
                .rejected_by_code
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect();
            out.push_str(&format!("violations by code: {}\n", codes.join(" ")));
        }
        out.push_str(&format!(
            "mismatches against labels: {}\n",
            self.mismatches.len()
        ));
        for m in self.mismatches.iter().take(10) {
            out.push_str(&format!("  {m}\n"));
        }
        out
    }
}

/// Checks a server's answer against an event's label; returns a mismatch description.
/// `codes` are the violation codes the server reported (in a 400 body, or the
/// `x-contract-violations` header of a 200 for quarantined or warned events).
pub fn check_answer(event: &SynthEvent, status: u16, codes: &[String]) -> Option<String> {
    let ok = if event.expect.is_empty() {
        status == 200 && codes.is_empty()
    } else {
        (status == 200 || status == 400) && event.expect.iter().all(|c| codes.contains(c))
    };
    (!ok).then(|| {
        format!(
            "{}: expected {}, got {status} {codes:?}",
            event.label.as_deref().unwrap_or("valid event"),
            if event.expect.is_empty() {
                "200".to_string()
            } else {
                format!("{:?}", event.expect)
            }
        )
    })
}

/// How to send the events.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Base URL ending in `/`; `login-as-guest` is appended.
    pub login_endpoint: String,
    /// The scope to ask the dev identity provider for (`guest` unless the contract refuses it).
    pub scope: String,
    /// The single-event route's full URL.
    pub backend_endpoint: String,
    /// The batch route's full URL (for `batch`).
    pub batch_endpoint: Option<String>,
    /// Events per second across all workers (None: as fast as possible).
    pub rate: Option<f64>,
    pub concurrency: usize,
    /// Events per batch request (None: one event per request).
    pub batch: Option<usize>,
    /// One guest login per worker instead of one per request (the reference logs in per event).
    pub reuse_token: bool,
    /// Print each event as it is sent.
    pub console: bool,
    pub progress: bool,
}

struct Outcome {
    status: u16,
    codes: Vec<String>,
    /// A 200 that went to the quarantine table (not the events table).
    quarantined: bool,
}

/// Sends `events` and tallies the answers against their labels.
pub async fn send(events: Vec<SynthEvent>, options: SendOptions) -> Summary {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let events = Arc::new(events);
    let next = Arc::new(AtomicUsize::new(0));
    let chunk = options.batch.unwrap_or(1).max(1);
    let progress = if options.progress {
        let bar = indicatif::ProgressBar::new(events.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} events  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency.max(1))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let (events, next, options, client, progress) = (
            events.clone(),
            next.clone(),
            options.clone(),
            client.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut summary = Summary::default();
            let mut token: Option<String> = None;
            loop {
                let start = next.fetch_add(chunk, Ordering::Relaxed);
                if start >= events.len() {
                    break;
                }
                let end = (start + chunk).min(events.len());
                if let Some(rate) = options.rate {
                    let due = started + Duration::from_secs_f64(start as f64 / rate);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                }
                if token.is_none() || !options.reuse_token {
                    token = login(&client, &options.login_endpoint, &options.scope).await;
                }
                let Some(jwt) = token.clone() else {
                    summary.failed += (end - start) as u64;
                    summary.sent += (end - start) as u64;
                    progress.inc((end - start) as u64);
                    continue;
                };
                let slice = &events[start..end];
                if options.console {
                    for e in slice {
                        println!("{}", e.body);
                    }
                }
                let sent_at = std::time::Instant::now();
                let outcomes = match (&options.batch, &options.batch_endpoint) {
                    (Some(_), Some(url)) => post_batch(&client, url, &jwt, slice).await,
                    _ => vec![post_one(&client, &options.backend_endpoint, &jwt, &slice[0]).await],
                };
                summary.latencies.push(sent_at.elapsed());
                for (event, outcome) in slice.iter().zip(outcomes) {
                    summary.sent += 1;
                    match outcome {
                        None => summary.failed += 1,
                        Some(o) => {
                            match (o.status, o.quarantined) {
                                (200, false) => summary.accepted += 1,
                                (200, true) => summary.quarantined += 1,
                                (400, _) => summary.rejected += 1,
                                _ => summary.failed += 1,
                            }
                            for code in &o.codes {
                                *summary.rejected_by_code.entry(code.clone()).or_default() += 1;
                            }
                            if let Some(m) = check_answer(event, o.status, &o.codes) {
                                summary.mismatches.push(m);
                            }
                        }
                    }
                }
                progress.inc((end - start) as u64);
            }
            summary
        }));
    }
    let mut total = Summary::default();
    for worker in workers {
        if let Ok(s) = worker.await {
            total.sent += s.sent;
            total.accepted += s.accepted;
            total.quarantined += s.quarantined;
            total.rejected += s.rejected;
            total.failed += s.failed;
            for (code, n) in s.rejected_by_code {
                *total.rejected_by_code.entry(code).or_default() += n;
            }
            total.mismatches.extend(s.mismatches);
            total.latencies.extend(s.latencies);
        }
    }
    progress.finish_and_clear();
    total.elapsed = started.elapsed();
    total
}

async fn login(client: &reqwest::Client, login_endpoint: &str, scope: &str) -> Option<String> {
    // The reference's URL exactly when a guest token will do.
    let url = if scope == "guest" {
        format!("{login_endpoint}login-as-guest")
    } else {
        format!("{login_endpoint}login-as-guest?scope={scope}")
    };
    let response = client.get(url).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body["auth_token"].as_str().map(str::to_string)
}

async fn post_one(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    event: &SynthEvent,
) -> Option<Outcome> {
    let response = client
        .post(url)
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(event.body.clone())
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let header_codes: Vec<String> = response
        .headers()
        .get("x-contract-violations")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let quarantined = response
        .headers()
        .get("x-contract-verdict")
        .is_some_and(|v| v == "quarantine");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let codes = if status == 400 {
        codes_of(&body["violations"])
    } else {
        header_codes
    };
    Some(Outcome {
        status,
        codes,
        quarantined,
    })
}

async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    events: &[SynthEvent],
) -> Vec<Option<Outcome>> {
    let body: String = events
        .iter()
        .map(|e| e.body.replace('\n', " ") + "\n")
        .collect();
    let response = client
        .post(url)
        .header("Authorization", token)
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await;
    let Ok(response) = response else {
        return events.iter().map(|_| None).collect();
    };
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    (0..events.len())
        .map(|i| {
            let result = results.get(i)?;
            let verdict = result["verdict"].as_str()?;
            let status = if verdict == "reject" { 400 } else { status };
            Some(Outcome {
                status,
                codes: codes_of(&result["violations"]),
                quarantined: verdict == "quarantine",
            })
        })
        .collect()
}

fn codes_of(violations: &Value) -> Vec<String> {
    violations
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
