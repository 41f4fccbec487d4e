//! `contract-runtime synth`: realistic test traffic from the contract itself.
//!
//! Events come from [`contract_corpus::random::Generator`] (valid by construction, or labelled
//! invalid ones from the contract's corpus); this crate sends them as the reference's test
//! client does and checks every answer against its label.

use std::time::Duration;

pub use contract_corpus::random::{Generator, SynthEvent};
use serde_json::Value;

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
        // Below serve's idle deadline (30 s by default), so a reused connection is open.
        .pool_idle_timeout(Duration::from_secs(20))
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
