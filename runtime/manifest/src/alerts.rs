//! Quality alerts (#24), declared once in a contract's `quality.alerts` and measured the same
//! way on every engine: `serve` evaluates them itself, `contractc build` renders them as
//! Prometheus rules over serve's `/metrics`, and `deploy` creates them as CloudWatch alarms over
//! the counts the streaming job publishes. Each alert is one [`Condition`] over one window of
//! whole minutes (CloudWatch's periods are whole minutes).

/// One declared alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// A safe identifier, unique in the contract.
    pub name: String,
    pub description: Option<String>,
    pub condition: Condition,
    /// The window the condition is measured over, in minutes (1 to 1,440).
    pub window_minutes: u32,
}

/// What an alert watches, over its window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// The share of judged events not accepted (quarantined or refused) is over this fraction
    /// (0 < over < 1). A window without events has no share and does not fire.
    BadShare { over: f64 },
    /// No event was accepted in the window.
    NoEvents,
    /// More than this many events were quarantined in the window.
    QuarantineGrowth { over: u64 },
    /// More than this many commits failed in the window: on `serve`, commits to the lake; on
    /// AWS, the streaming job's micro-batches.
    CommitFailures { over: u64 },
}

/// What one window held, the figures every condition is measured on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u64,
    pub quarantined: u64,
    pub refused: u64,
    pub commit_failures: u64,
}

impl Counts {
    /// Events judged: accepted, quarantined or refused.
    pub fn judged(&self) -> u64 {
        self.accepted + self.quarantined + self.refused
    }
}

impl Condition {
    /// The kind as the contract spells it (`when:`).
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::BadShare { .. } => "bad_share",
            Condition::NoEvents => "no_events",
            Condition::QuarantineGrowth { .. } => "quarantine_growth",
            Condition::CommitFailures { .. } => "commit_failures",
        }
    }

    /// The threshold the measure is compared with (`> threshold` fires; `no_events`: `<= 0`).
    pub fn threshold(&self) -> f64 {
        match *self {
            Condition::BadShare { over } => over,
            Condition::NoEvents => 0.0,
            Condition::QuarantineGrowth { over } | Condition::CommitFailures { over } => {
                over as f64
            }
        }
    }

    /// What the condition measures over a window: a share for `bad_share` (None without
    /// events), a count otherwise.
    pub fn measure(&self, window: &Counts) -> Option<f64> {
        match self {
            Condition::BadShare { .. } => {
                let judged = window.judged();
                (judged > 0).then(|| (window.quarantined + window.refused) as f64 / judged as f64)
            }
            Condition::NoEvents => Some(window.accepted as f64),
            Condition::QuarantineGrowth { .. } => Some(window.quarantined as f64),
            Condition::CommitFailures { .. } => Some(window.commit_failures as f64),
        }
    }

    /// Whether a window with these counts breaches the condition.
    pub fn breached(&self, window: &Counts) -> bool {
        match (self, self.measure(window)) {
            (_, None) => false,
            (Condition::NoEvents, Some(accepted)) => accepted <= 0.0,
            (_, Some(value)) => value > self.threshold(),
        }
    }
}

impl Alert {
    /// One sentence saying when the alert fires, for consoles, rule annotations and alarm
    /// descriptions.
    pub fn summary(&self) -> String {
        let window = match self.window_minutes {
            1 => "1 minute".to_string(),
            m if m % 60 == 0 && m > 60 => format!("{} hours", m / 60),
            60 => "1 hour".to_string(),
            m => format!("{m} minutes"),
        };
        match self.condition {
            Condition::BadShare { over } => format!(
                "more than {} of events quarantined or refused over {window}",
                percent(over)
            ),
            Condition::NoEvents => format!("no event accepted for {window}"),
            Condition::QuarantineGrowth { over } => {
                format!("more than {over} events quarantined over {window}")
            }
            Condition::CommitFailures { over: 0 } => format!("a commit failed within {window}"),
            Condition::CommitFailures { over } => {
                format!("more than {over} failed commits over {window}")
            }
        }
    }
}

/// `0.05` → `5%`, `0.125` → `12.5%`.
pub fn percent(share: f64) -> String {
    let text = format!("{:.4}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// CloudWatch: where the streaming job publishes its per-batch counts and what `deploy`'s
/// alarms and dashboard read. One namespace for every contract; the `Contract` dimension tells
/// them apart.
pub mod cloudwatch {
    pub const NAMESPACE: &str = "contractc";
    /// The dimension naming the contract.
    pub const CONTRACT: &str = "Contract";
    /// The dimension naming the client's contract version (the `X-Contract-Version` header),
    /// on a second copy of the counts, where the contract records it.
    pub const CLIENT_VERSION: &str = "ClientVersion";
    /// The dimension naming a refusal's violation code, on a copy of `Refused`.
    pub const CODE: &str = "Code";
    pub const ACCEPTED: &str = "Accepted";
    pub const QUARANTINED: &str = "Quarantined";
    pub const REFUSED: &str = "Refused";
    /// 1 for every micro-batch that raised (published before the job re-raises).
    pub const BATCH_FAILURES: &str = "BatchFailures";
}

/// `serve`'s `/metrics` names the alerts are measured on (and the Prometheus rules query).
pub mod prometheus {
    /// Counter by `contract` and `verdict` ([`VERDICTS`]).
    pub const EVENTS_TOTAL: &str = "contractc_events_total";
    /// Counter by `contract`: flushes whose commit to a table of the contract failed (after
    /// its retries; the events stay in the write-ahead log).
    pub const COMMIT_FAILURES_TOTAL: &str = "contractc_commit_failures_total";
    /// Gauge by `contract` and `alert`: 1 while serve's own evaluation has the alert firing.
    pub const ALERT_FIRING: &str = "contractc_alert_firing";
    pub const ACCEPT: &str = "accept";
    pub const QUARANTINE: &str = "quarantine";
    pub const REJECT: &str = "reject";
    pub const VERDICTS: [&str; 3] = [ACCEPT, QUARANTINE, REJECT];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(accepted: u64, quarantined: u64, refused: u64) -> Counts {
        Counts {
            accepted,
            quarantined,
            refused,
            commit_failures: 0,
        }
    }

    #[test]
    fn bad_share_fires_over_its_fraction_and_never_without_events() {
        let c = Condition::BadShare { over: 0.05 };
        assert!(!c.breached(&counts(95, 5, 0)), "exactly 5% is not over 5%");
        assert!(c.breached(&counts(94, 3, 3)));
        assert!(!c.breached(&counts(0, 0, 0)));
        assert_eq!(c.measure(&counts(0, 0, 0)), None);
    }

    #[test]
    fn no_events_fires_on_no_accepted_event_even_with_bad_ones() {
        assert!(Condition::NoEvents.breached(&counts(0, 0, 0)));
        assert!(Condition::NoEvents.breached(&counts(0, 4, 2)));
        assert!(!Condition::NoEvents.breached(&counts(1, 0, 0)));
    }

    #[test]
    fn counts_fire_strictly_over() {
        let c = Condition::QuarantineGrowth { over: 10 };
        assert!(!c.breached(&counts(0, 10, 0)));
        assert!(c.breached(&counts(0, 11, 0)));
        let f = Condition::CommitFailures { over: 0 };
        assert!(!f.breached(&Counts::default()));
        assert!(f.breached(&Counts {
            commit_failures: 1,
            ..Counts::default()
        }));
    }

    #[test]
    fn summaries_read_as_sentences() {
        let alert = |condition, window_minutes| Alert {
            name: "a".into(),
            description: None,
            condition,
            window_minutes,
        };
        assert_eq!(
            alert(Condition::BadShare { over: 0.125 }, 10).summary(),
            "more than 12.5% of events quarantined or refused over 10 minutes"
        );
        assert_eq!(
            alert(Condition::NoEvents, 120).summary(),
            "no event accepted for 2 hours"
        );
        assert_eq!(percent(0.05), "5%");
    }
}
