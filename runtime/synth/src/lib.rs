//! `contract-runtime synth`: realistic test traffic from the contract itself.
//!
//! Events come from [`contract_corpus::random::Generator`] (valid by construction, or labelled
//! invalid ones from the contract's corpus); this crate sends them on the reference's routes
//! and checks every answer against its label. A pool of [`Players`] sends them: each signs in
//! once and renews its token, as a game does (the reference's test client logs in anew for
//! every event, which `serve`'s limit on new guests per address refuses after a burst).

mod players;

use std::time::Duration;

pub use contract_corpus::random::{Generator, Mixed, SynthEvent};
pub use players::{DEFAULT_PLAYERS, PlayerCounts, Players};
use serde_json::{Value, json};

/// A run's tally, printed at the end.
#[derive(Debug)]
pub struct Summary {
    pub sent: u64,
    pub accepted: u64,
    pub quarantined: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Requests sent again after a network error or a 5xx (`--retries`).
    pub resent: u64,
    pub rejected_by_code: std::collections::BTreeMap<String, u64>,
    /// The first mismatches (at most [`MISMATCHES_KEPT`]), and how many there were.
    pub mismatches: Vec<String>,
    pub mismatch_count: u64,
    /// Request latencies in microseconds: a histogram, so memory does not grow with the run.
    pub latencies: hdrhistogram::Histogram<u64>,
    pub elapsed: Duration,
    pub players: PlayerCounts,
}

/// Mismatches kept for the report (all are counted).
pub const MISMATCHES_KEPT: usize = 100;

impl Default for Summary {
    fn default() -> Self {
        Summary {
            sent: 0,
            accepted: 0,
            quarantined: 0,
            rejected: 0,
            failed: 0,
            resent: 0,
            rejected_by_code: Default::default(),
            mismatches: Vec::new(),
            mismatch_count: 0,
            // 1 µs to 10 min, 3 significant digits.
            latencies: hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant bounds are valid"),
            elapsed: Duration::ZERO,
            players: PlayerCounts::default(),
        }
    }
}

impl Summary {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latencies.value_at_quantile(p))
    }

    fn record_latency(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.max(1));
    }

    fn mismatch(&mut self, text: String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < MISMATCHES_KEPT {
            self.mismatches.push(text);
        }
    }

    /// Adds a worker's tally to this one.
    fn merge(&mut self, other: Summary) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.quarantined += other.quarantined;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.resent += other.resent;
        for (code, n) in other.rejected_by_code {
            *self.rejected_by_code.entry(code).or_default() += n;
        }
        self.mismatch_count += other.mismatch_count;
        let room = MISMATCHES_KEPT.saturating_sub(self.mismatches.len());
        self.mismatches
            .extend(other.mismatches.into_iter().take(room));
        let _ = self.latencies.add(&other.latencies);
    }

    /// Counts a request's answers (None: no answer) and checks them against the labels.
    fn tally(&mut self, events: &[SynthEvent], outcomes: Vec<Option<Outcome>>) {
        for (event, outcome) in events.iter().zip(outcomes) {
            self.sent += 1;
            let Some(o) = outcome else {
                self.failed += 1;
                continue;
            };
            match (o.status, o.quarantined) {
                (200, false) => self.accepted += 1,
                (200, true) => self.quarantined += 1,
                (400, _) => self.rejected += 1,
                _ => self.failed += 1,
            }
            for code in &o.codes {
                *self.rejected_by_code.entry(code.clone()).or_default() += 1;
            }
            if let Some(m) = check_answer(event, o.status, &o.codes) {
                self.mismatch(m);
            }
        }
    }

    pub fn render(&self) -> String {
        let rate = self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "sent {}  accepted {}  quarantined {}  rejected {}  failed {}  resent {}\nthroughput {:.0} events/s over {:.1?}  latency p50 {:.1?}  p99 {:.1?}\n",
            self.sent,
            self.accepted,
            self.quarantined,
            self.rejected,
            self.failed,
            self.resent,
            rate,
            self.elapsed,
            self.percentile(0.5),
            self.percentile(0.99)
        );
        let p = &self.players;
        out.push_str(&format!(
            "players {}: {} new guests, {} token refreshes, {} logins as a returning guest\n",
            p.players, p.new_guests, p.refreshes, p.returning_logins
        ));
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
            self.mismatch_count
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
    /// Base URL ending in `/`; `login-as-guest` and `refresh-access-token` are appended.
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
    /// Players sending the events in turn, each signed in once ([`Players`]): at most this
    /// many new guests per run.
    pub players: usize,
    /// Print each event as it is sent.
    pub console: bool,
    pub progress: bool,
    /// Times a request is sent again after a network error, a timeout or a 5xx, with the same
    /// events (their ids too: a server that stored them answers as before and stores them once).
    pub retries: u32,
    /// How long a request may take before it counts as failed.
    pub timeout: Duration,
}

struct Outcome {
    status: u16,
    codes: Vec<String>,
    /// A 200 that went to the quarantine table (not the events table).
    quarantined: bool,
}

/// Where the events come from: drawn one request's worth at a time, never all at once, so
/// memory stays constant whatever the count or duration.
pub struct Source {
    events: Box<dyn Iterator<Item = SynthEvent> + Send>,
    /// Events left to send (None: no count limit).
    remaining: Option<u64>,
    /// Stop drawing after this instant (None: no time limit).
    until: Option<std::time::Instant>,
    /// Every drawn event is also written here, as NDJSON (`--out`).
    out: Option<std::io::BufWriter<std::fs::File>>,
    drawn: u64,
}

impl Source {
    pub fn new(
        events: impl Iterator<Item = SynthEvent> + Send + 'static,
        count: Option<u64>,
        duration: Option<Duration>,
        out: Option<std::fs::File>,
    ) -> Source {
        Source {
            events: Box::new(events),
            remaining: count,
            until: duration.map(|d| std::time::Instant::now() + d),
            out: out.map(std::io::BufWriter::new),
            drawn: 0,
        }
    }

    /// Up to `n` events, and the number drawn before them; empty when the source is done.
    pub fn take(&mut self, n: usize) -> (u64, Vec<SynthEvent>) {
        let first = self.drawn;
        if self.until.is_some_and(|t| std::time::Instant::now() >= t) {
            return (first, Vec::new());
        }
        let n = self
            .remaining
            .map_or(n, |r| n.min(usize::try_from(r).unwrap_or(n)));
        let events: Vec<SynthEvent> = self.events.by_ref().take(n).collect();
        if let Some(r) = &mut self.remaining {
            *r -= events.len() as u64;
        }
        self.drawn += events.len() as u64;
        if let Some(out) = &mut self.out {
            use std::io::Write;
            for e in &events {
                let line = json!({ "body": e.body, "expect": e.expect, "label": e.label, "version": e.version });
                let _ = writeln!(out, "{line}");
            }
        }
        (first, events)
    }
}

/// Sends the events of `source` and tallies the answers against their labels.
pub async fn send(source: Source, options: SendOptions, total: Option<u64>) -> Summary {
    let progress = progress_bar(options.progress, total);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency.max(1))
        // Below serve's idle deadline (30 s by default), so a reused connection is open.
        .pool_idle_timeout(Duration::from_secs(20))
        .timeout(options.timeout)
        .build()
        .unwrap_or_default();
    let players = Players::new(
        client.clone(),
        &options.login_endpoint,
        &options.scope,
        options.players,
    );
    let sender = std::sync::Arc::new(Sender {
        source: std::sync::Mutex::new(source),
        client,
        players,
        progress: progress.clone(),
        started: std::time::Instant::now(),
        options,
    });
    let workers: Vec<_> = (0..sender.options.concurrency.max(1))
        .map(|_| {
            let sender = sender.clone();
            tokio::spawn(async move { sender.run().await })
        })
        .collect();
    let mut total = Summary::default();
    for worker in workers {
        if let Ok(s) = worker.await {
            total.merge(s);
        }
    }
    progress.finish_and_clear();
    total.elapsed = sender.started.elapsed();
    total.players = sender.players.counts();
    total
}

fn progress_bar(shown: bool, total: Option<u64>) -> indicatif::ProgressBar {
    match (shown, total) {
        (true, Some(total)) => {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} events  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        }
        (true, None) => indicatif::ProgressBar::new_spinner(),
        (false, _) => indicatif::ProgressBar::hidden(),
    }
}

/// What the concurrent senders share.
struct Sender {
    source: std::sync::Mutex<Source>,
    options: SendOptions,
    client: reqwest::Client,
    players: Players,
    progress: indicatif::ProgressBar,
    started: std::time::Instant,
}

impl Sender {
    /// One sender: draws a request's worth of events at a time until the source is done.
    async fn run(&self) -> Summary {
        let chunk = self.options.batch.unwrap_or(1).max(1);
        let mut summary = Summary::default();
        loop {
            let (start, slice) = self
                .source
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(chunk);
            if slice.is_empty() {
                break;
            }
            if let Some(rate) = self.options.rate {
                let due = self.started + Duration::from_secs_f64(start as f64 / rate);
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
            }
            let outcomes = self.send_as_a_player(&slice, &mut summary).await;
            summary.tally(&slice, outcomes);
            self.progress.inc(slice.len() as u64);
        }
        summary
    }

    /// Sends `slice` with the next player's token, and once more with a renewed one if it was
    /// refused (an expired token: a 401 is answered before the body is read, so nothing of it
    /// was kept). Records the latency of what was sent.
    async fn send_as_a_player(
        &self,
        slice: &[SynthEvent],
        summary: &mut Summary,
    ) -> Vec<Option<Outcome>> {
        let Some((player, token)) = self.players.token().await else {
            return slice.iter().map(|_| None).collect();
        };
        if self.options.console {
            for e in slice {
                println!("{}", e.body);
            }
        }
        let sent_at = std::time::Instant::now();
        let mut token = token;
        let mut outcomes = self.post(&token, slice).await;
        if outcomes.iter().flatten().any(|o| o.status == 401)
            && let Some(renewed) = self.players.renew_refused(player, &token).await
        {
            token = renewed;
            outcomes = self.post(&token, slice).await;
        }
        for attempt in 1..=self.options.retries {
            // A token refused midway (its family revoked after a lost refresh answer) is
            // renewed, and the events sent again with the new one.
            let refused = outcomes.iter().flatten().any(|o| o.status == 401);
            if !refused && !outcomes.iter().any(unanswered) {
                break;
            }
            if refused && let Some(renewed) = self.players.renew_refused(player, &token).await {
                token = renewed;
            }
            // Jitter under a doubling ceiling (200 ms, 400 ms, … up to 5 s), so senders that
            // failed together do not come back together; the clock's nanoseconds suffice.
            let ceiling = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()));
            let wait = ceiling / 2 + nanos % (ceiling / 2 + 1);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            summary.resent += 1;
            outcomes = self.post(&token, slice).await;
        }
        summary.record_latency(sent_at.elapsed());
        outcomes
    }

    /// A batch is one client's request, with one `X-Contract-Version` for all its events:
    /// events made for other versions go in requests of their own.
    async fn post_batches(
        &self,
        url: &str,
        token: &str,
        slice: &[SynthEvent],
    ) -> Vec<Option<Outcome>> {
        let mut outcomes: Vec<Option<Outcome>> = slice.iter().map(|_| None).collect();
        let mut versions: Vec<&str> = slice.iter().map(|e| e.version.as_str()).collect();
        versions.sort_unstable();
        versions.dedup();
        for version in versions {
            let (indices, events): (Vec<usize>, Vec<SynthEvent>) = slice
                .iter()
                .enumerate()
                .filter(|(_, e)| e.version == version)
                .map(|(i, e)| (i, e.clone()))
                .unzip();
            let answers = post_batch(&self.client, url, token, version, &events).await;
            for (i, outcome) in indices.into_iter().zip(answers) {
                outcomes[i] = outcome;
            }
        }
        outcomes
    }

    async fn post(&self, token: &str, slice: &[SynthEvent]) -> Vec<Option<Outcome>> {
        match (&self.options.batch, &self.options.batch_endpoint) {
            (Some(_), Some(url)) => self.post_batches(url, token, slice).await,
            _ => match slice.first() {
                Some(event) => {
                    vec![post_one(&self.client, &self.options.backend_endpoint, token, event).await]
                }
                None => Vec::new(),
            },
        }
    }
}

/// No answer for the event, or one that says to try again (5xx, or `failed` in a batch).
fn unanswered(outcome: &Option<Outcome>) -> bool {
    outcome.as_ref().is_none_or(|o| o.status >= 500)
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
        .header("X-Contract-Version", event.version.as_str())
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
    version: &str,
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
        .header("X-Contract-Version", version)
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
            let Some(result) = results.get(i) else {
                // A refused request (401, 413, 503…) answers for all its events at once.
                return (status != 200).then(|| Outcome {
                    status,
                    codes: Vec::new(),
                    quarantined: false,
                });
            };
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
