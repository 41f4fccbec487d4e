//! Quality alerts on `serve` (#24): each contract's `quality.alerts`, evaluated over the same
//! counters `/metrics` exports (so serve and the generated Prometheus rules measure alike).
//!
//! Every `interval` the evaluator reads each contract's counters into a [`Sample`]; an alert's
//! window is the difference between the newest sample and the newest one at or before the
//! window's start. Until serve has run for a whole window, the window starts at serve's start,
//! and `no_events` stays quiet (a fresh start is not "events stopped arriving"). A change of
//! state is shown on the console, set on `contractc_alert_firing`, logged, and posted to the
//! webhook if one is configured.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use contract_support::manifest::alerts::{Counts, prometheus as names};
use contract_support::manifest::{Alert, Condition, Manifest};
use prometheus::IntGaugeVec;
use serde::Serialize;

use crate::metrics::Metrics;

/// How `serve` evaluates its alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// Time between evaluations.
    pub interval: Duration,
    /// Where state changes are posted (JSON), if anywhere.
    pub webhook: Option<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            interval: Duration::from_secs(10),
            webhook: None,
        }
    }
}

/// One alert's state, as the console shows it and the webhook receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertStatus {
    pub contract: String,
    pub alert: String,
    /// The condition, as the contract spells it (`bad_share`, `no_events`, …).
    pub kind: &'static str,
    pub summary: String,
    pub description: Option<String>,
    pub firing: bool,
    /// Seconds since the epoch when it last started firing (None while quiet).
    pub since: Option<u64>,
    /// The measured share or count over the window (None: nothing to measure yet).
    pub value: Option<f64>,
    pub threshold: f64,
    pub window_minutes: u32,
}

/// A reading of one contract's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: u64,
    counts: Counts,
}

/// One contract's samples and its alerts' states.
struct Watch {
    manifest: &'static Manifest,
    samples: VecDeque<Sample>,
    states: Vec<AlertStatus>,
}

/// The evaluator: pure over the counts it is given, so tests drive it with any clock.
pub struct Evaluator {
    watches: Vec<Watch>,
}

/// What `window` held: the counts since its start, and whether the samples reach back that far.
fn window(samples: &VecDeque<Sample>, now: u64, minutes: u32) -> Option<(Counts, bool)> {
    let newest = samples.back()?;
    let start = now.saturating_sub(u64::from(minutes) * 60);
    let baseline = samples.iter().rev().find(|s| s.at <= start);
    let covered = baseline.is_some();
    let baseline = baseline.or(samples.front())?;
    let diff = |f: fn(&Counts) -> u64| f(&newest.counts).saturating_sub(f(&baseline.counts));
    let counts = Counts {
        accepted: diff(|c| c.accepted),
        quarantined: diff(|c| c.quarantined),
        refused: diff(|c| c.refused),
        commit_failures: diff(|c| c.commit_failures),
    };
    Some((counts, covered))
}

fn quiet(manifest: &Manifest, alert: &Alert) -> AlertStatus {
    AlertStatus {
        contract: manifest.name.clone(),
        alert: alert.name.clone(),
        kind: alert.condition.kind(),
        summary: alert.summary(),
        description: alert.description.clone(),
        firing: false,
        since: None,
        value: None,
        threshold: alert.condition.threshold(),
        window_minutes: alert.window_minutes,
    }
}

impl Evaluator {
    pub fn new(manifests: impl IntoIterator<Item = &'static Manifest>) -> Evaluator {
        let watches = manifests
            .into_iter()
            .map(|manifest| Watch {
                manifest,
                samples: VecDeque::new(),
                states: manifest.alerts.iter().map(|a| quiet(manifest, a)).collect(),
            })
            .collect();
        Evaluator { watches }
    }

    /// Takes a sample of every contract (`read` gives a contract's counters now) and
    /// evaluates its alerts; returns the alerts whose state changed.
    pub fn tick(&mut self, now: u64, read: impl Fn(&str) -> Counts) -> Vec<AlertStatus> {
        let mut changed = Vec::new();
        for watch in &mut self.watches {
            if watch.manifest.alerts.is_empty() {
                continue;
            }
            let counts = read(&watch.manifest.name);
            watch.samples.push_back(Sample { at: now, counts });
            let longest = watch.manifest.alerts.iter().map(|a| a.window_minutes);
            let keep_from = now.saturating_sub(u64::from(longest.max().unwrap_or(0)) * 60);
            // Keep one sample at or before the longest window's start: its baseline.
            while watch.samples.len() > 1 && watch.samples[1].at <= keep_from {
                watch.samples.pop_front();
            }
            for (alert, state) in watch.manifest.alerts.iter().zip(&mut watch.states) {
                if evaluate(alert, state, &watch.samples, now) {
                    changed.push(state.clone());
                }
            }
        }
        changed
    }

    /// Every alert's current state, in contract and declaration order.
    pub fn statuses(&self) -> Vec<AlertStatus> {
        self.watches
            .iter()
            .flat_map(|w| w.states.iter().cloned())
            .collect()
    }
}

/// Updates `state` from the samples; true when it started or stopped firing.
fn evaluate(alert: &Alert, state: &mut AlertStatus, samples: &VecDeque<Sample>, now: u64) -> bool {
    let Some((counts, covered)) = window(samples, now, alert.window_minutes) else {
        return false;
    };
    state.value = alert.condition.measure(&counts);
    let measurable = covered || !matches!(alert.condition, Condition::NoEvents);
    let firing = measurable && alert.condition.breached(&counts);
    if firing == state.firing {
        return false;
    }
    state.firing = firing;
    state.since = firing.then_some(now);
    true
}

/// A contract's counters as `/metrics` has them.
pub fn counts(metrics: &Metrics, contract: &str) -> Counts {
    let events = |verdict: &str| metrics.events.with_label_values(&[contract, verdict]).get();
    Counts {
        accepted: events(names::ACCEPT),
        quarantined: events(names::QUARANTINE),
        refused: events(names::REJECT),
        commit_failures: metrics.commit_failures.with_label_values(&[contract]).get(),
    }
}

/// The alerts' states for the console, updated by the evaluating task.
#[derive(Default)]
pub struct AlertBoard {
    statuses: RwLock<Vec<AlertStatus>>,
}

impl AlertBoard {
    pub fn statuses(&self) -> Vec<AlertStatus> {
        self.statuses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, statuses: Vec<AlertStatus>) {
        *self.statuses.write().unwrap_or_else(|p| p.into_inner()) = statuses;
    }
}

/// Runs the evaluator every `settings.interval` until the task is aborted; `read` gives a
/// contract's counters ([`counts`]).
pub fn spawn(
    manifests: Vec<&'static Manifest>,
    read: impl Fn(&str) -> Counts + Send + 'static,
    firing: IntGaugeVec,
    board: Arc<AlertBoard>,
    settings: AlertSettings,
) -> tokio::task::JoinHandle<()> {
    let mut evaluator = Evaluator::new(manifests);
    board.set(evaluator.statuses());
    let webhook = settings.webhook.and_then(Webhook::new);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let changed = evaluator.tick(now_seconds(), &read);
            for status in &changed {
                firing
                    .with_label_values(&[status.contract.as_str(), status.alert.as_str()])
                    .set(i64::from(status.firing));
                if status.firing {
                    tracing::warn!(contract = %status.contract, alert = %status.alert, value = ?status.value, "alert firing: {}", status.summary);
                } else {
                    tracing::info!(contract = %status.contract, alert = %status.alert, "alert resolved");
                }
            }
            board.set(evaluator.statuses());
            if let Some(webhook) = &webhook {
                webhook.post(changed);
            }
        }
    })
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Posts state changes to the configured URL, in order, from one task of its own (a slow
/// receiver never delays evaluation, and a "resolved" never overtakes its "firing"); each post
/// is retried with backoff.
struct Webhook {
    queue: tokio::sync::mpsc::UnboundedSender<AlertStatus>,
}

impl Webhook {
    fn new(url: String) -> Option<Webhook> {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot make the alert webhook's HTTP client: no webhook");
                return None;
            }
        };
        let (queue, mut changes) = tokio::sync::mpsc::unbounded_channel::<AlertStatus>();
        tokio::spawn(async move {
            while let Some(status) = changes.recv().await {
                post(&client, &url, status).await;
            }
        });
        Some(Webhook { queue })
    }

    fn post(&self, changed: Vec<AlertStatus>) {
        for status in changed {
            // The sender task ends only with the runtime.
            let _ = self.queue.send(status);
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, status: AlertStatus) {
    use backon::Retryable;
    let body = serde_json::json!({
        "state": if status.firing { "firing" } else { "resolved" },
        "status": status,
    });
    let send = || async {
        client
            .post(url)
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
    };
    let backoff = backon::ExponentialBuilder::default().with_max_times(4);
    if let Err(error) = send.retry(backoff).await {
        tracing::warn!(%error, %url, "cannot post the alert to the webhook");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::manifest::Condition;

    fn manifest(alerts: Vec<Alert>) -> &'static Manifest {
        let base = contract_validators::ALL[0].manifest();
        Box::leak(Box::new(Manifest {
            alerts,
            ..base.clone()
        }))
    }

    fn alert(name: &str, condition: Condition, window_minutes: u32) -> Alert {
        Alert {
            name: name.into(),
            description: None,
            condition,
            window_minutes,
        }
    }

    fn counts(accepted: u64, refused: u64) -> Counts {
        Counts {
            accepted,
            refused,
            ..Counts::default()
        }
    }

    #[test]
    fn bad_share_fires_on_a_bad_window_and_clears_when_it_slides_past() {
        let m = manifest(vec![alert(
            "broken",
            Condition::BadShare { over: 0.05 },
            10,
        )]);
        let mut e = Evaluator::new([m]);
        assert!(e.tick(0, |_| counts(0, 0)).is_empty());
        // 100 good, then 20 refused within the window: 16.7% bad.
        assert!(e.tick(60, |_| counts(100, 0)).is_empty());
        let changed = e.tick(120, |_| counts(100, 20));
        assert_eq!(changed.len(), 1);
        assert!(changed[0].firing);
        assert_eq!(changed[0].since, Some(120));
        // Still inside the 10 minutes: still firing, no change reported.
        assert!(e.tick(600, |_| counts(150, 20)).is_empty());
        // 11 minutes later the refusals are out of the window: only good events in it.
        let changed = e.tick(121 + 600, |_| counts(400, 20));
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(!changed[0].firing);
        assert_eq!(changed[0].value, Some(0.0));
    }

    #[test]
    fn no_events_waits_for_a_whole_window_of_samples() {
        let m = manifest(vec![alert("silence", Condition::NoEvents, 5)]);
        let mut e = Evaluator::new([m]);
        e.tick(1_000, |_| counts(0, 0));
        assert!(
            e.tick(1_200, |_| counts(0, 0)).is_empty(),
            "up 200 s of 300"
        );
        let changed = e.tick(1_300, |_| counts(0, 3));
        assert!(
            changed[0].firing,
            "a whole window without an accepted event"
        );
        let changed = e.tick(1_310, |_| counts(1, 3));
        assert!(!changed[0].firing);
    }

    #[test]
    fn samples_older_than_the_longest_window_are_dropped_but_one_baseline() {
        let m = manifest(vec![alert("q", Condition::QuarantineGrowth { over: 1 }, 1)]);
        let mut e = Evaluator::new([m]);
        for t in 0..100 {
            e.tick(t * 10, |_| Counts::default());
        }
        assert!(
            e.watches[0].samples.len() <= 8,
            "{}",
            e.watches[0].samples.len()
        );
        assert!(e.watches[0].samples[0].at <= 990 - 60);
    }
}
