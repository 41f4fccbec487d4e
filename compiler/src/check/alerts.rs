//! Quality alerts (#24): each `quality.alerts` entry has a unique name, a threshold its
//! condition can compare with, and a window every engine can measure (CloudWatch's periods are
//! whole minutes, and an alarm looks back at most a day at this resolution).

use serde_json::Value;

use super::Checker;
use crate::diagnostic::Code;
use crate::ir::{Alert, Condition};
use crate::syntax::ast::{AlertDoc, AlertKindDoc, ContractDoc};

/// The longest window, in minutes: one day.
const MAX_WINDOW_MINUTES: u64 = 24 * 60;

/// The shortest `no_events` window, in minutes: the streaming job publishes once per
/// micro-batch (every 100 s), and a CloudWatch period without a datapoint counts as silence.
const MIN_SILENCE_MINUTES: u32 = 5;

impl Checker<'_> {
    /// The contract's alerts, each checked; a bad entry is reported and left out.
    pub(super) fn alerts(&mut self, doc: &ContractDoc) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = Vec::new();
        let mut first_pointer: Vec<String> = Vec::new();
        for (i, entry) in doc.quality.alerts.iter().enumerate() {
            let pointer = format!("/quality/alerts/{i}");
            let Some(alert) = self.alert(entry, &pointer) else {
                continue;
            };
            if let Some(earlier) = alerts.iter().position(|a| a.name == alert.name) {
                self.emit(
                    self.diag(
                        Code::DuplicateAlert,
                        format!("two alerts are named `{}`", alert.name),
                    )
                    .at(self.span(&format!("{pointer}/name")), "named again here")
                    .also(
                        self.span(&format!("{}/name", first_pointer[earlier])),
                        "first named here",
                    )
                    .help("alert names become CloudWatch alarm and Prometheus alert names"),
                );
                continue;
            }
            alerts.push(alert);
            first_pointer.push(pointer);
        }
        alerts
    }

    fn alert(&mut self, doc: &AlertDoc, pointer: &str) -> Option<Alert> {
        let named = self.identifier(&doc.name, &format!("{pointer}/name"), "alert name");
        let window_minutes = self.alert_window(&doc.window, &format!("{pointer}/for"));
        let condition = self.condition(doc, pointer);
        let window_minutes = match (condition, window_minutes) {
            (Some(Condition::NoEvents), Some(minutes)) if minutes < MIN_SILENCE_MINUTES => {
                self.emit(
                    self.diag(
                        Code::AlertWindow,
                        format!("`no_events` over `{}` would fire between batches", doc.window),
                    )
                    .at(
                        self.span(&format!("{pointer}/for")),
                        format!("at least {MIN_SILENCE_MINUTES}m for `no_events`"),
                    )
                    .help("the streaming job publishes its counts every 100 s: a shorter window sees gaps as silence"),
                );
                None
            }
            (_, minutes) => minutes,
        };
        Some(Alert {
            name: named.then(|| doc.name.clone())?,
            description: doc.description.clone(),
            condition: condition?,
            window_minutes: window_minutes?,
        })
    }

    fn alert_window(&mut self, text: &str, pointer: &str) -> Option<u32> {
        let (_, duration) = self.duration(text, false, pointer)?;
        let seconds = duration.as_secs();
        if seconds % 60 != 0 || seconds == 0 || seconds / 60 > MAX_WINDOW_MINUTES {
            self.emit(
                self.diag(
                    Code::AlertWindow,
                    format!("alert window `{text}` is not whole minutes from 1m to 24h"),
                )
                .at(self.span(pointer), "CloudWatch cannot measure this window")
                .help("write whole minutes or hours: 5m, 10m, 1h"),
            );
            return None;
        }
        u32::try_from(seconds / 60).ok()
    }

    fn condition(&mut self, doc: &AlertDoc, pointer: &str) -> Option<Condition> {
        let over_pointer = format!("{pointer}/over");
        match (doc.when, &doc.over) {
            (AlertKindDoc::NoEvents, None) => Some(Condition::NoEvents),
            (AlertKindDoc::NoEvents, Some(_)) => {
                self.threshold_error(&over_pointer, "`no_events` takes no threshold", None)
            }
            (AlertKindDoc::BadShare, over) => {
                let over = self.share(over.as_ref(), &over_pointer, pointer)?;
                Some(Condition::BadShare { over })
            }
            (AlertKindDoc::QuarantineGrowth, None) => self.threshold_error(
                &format!("{pointer}/when"),
                "`quarantine_growth` needs `over`: how many quarantined events are too many",
                Some("e.g. `over: 100`"),
            ),
            (AlertKindDoc::QuarantineGrowth, Some(over)) => {
                let over = self.count(over, &over_pointer)?;
                Some(Condition::QuarantineGrowth { over })
            }
            (AlertKindDoc::CommitFailures, None) => Some(Condition::CommitFailures { over: 0 }),
            (AlertKindDoc::CommitFailures, Some(over)) => {
                let over = self.count(over, &over_pointer)?;
                Some(Condition::CommitFailures { over })
            }
        }
    }

    /// `bad_share`'s threshold: `5%` or `0.05`, strictly between 0 and 1.
    fn share(&mut self, over: Option<&Value>, pointer: &str, alert: &str) -> Option<f64> {
        let Some(over) = over else {
            return self.threshold_error(
                &format!("{alert}/when"),
                "`bad_share` needs `over`: the share of bad events that is too many",
                Some("e.g. `over: 5%`"),
            );
        };
        let share = match over {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => text
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0),
            _ => None,
        };
        match share {
            Some(share) if share > 0.0 && share < 1.0 => Some(share),
            _ => self.threshold_error(
                pointer,
                "a share is over 0% and under 100%",
                Some("write a percentage (5%) or a fraction (0.05)"),
            ),
        }
    }

    /// A count threshold: a whole number, 0 or more.
    fn count(&mut self, over: &Value, pointer: &str) -> Option<u64> {
        match over.as_u64() {
            Some(count) => Some(count),
            None => self.threshold_error(pointer, "a count is a whole number, 0 or more", None),
        }
    }

    fn threshold_error<T>(&mut self, pointer: &str, label: &str, help: Option<&str>) -> Option<T> {
        let mut diagnostic = self
            .diag(
                Code::AlertThreshold,
                "alert threshold does not fit its condition".to_string(),
            )
            .at(self.span(pointer), label.to_string());
        if let Some(help) = help {
            diagnostic = diagnostic.help(help.to_string());
        }
        self.emit(diagnostic);
        None
    }
}
