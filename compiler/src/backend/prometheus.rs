//! Prometheus alerting rules (#24): each contract's `quality.alerts` as rules over the
//! counters `serve` exports on `/metrics`, for users who scrape it
//! (`generated/<contract>/prometheus/alerts.yml`, checked by `promtool` in the tests).
//!
//! Every rule measures its condition over a range of the alert's window, as `serve` and the
//! CloudWatch alarms do; no `for:` delay is added on top. `increase()` extrapolates to the
//! range's edges, so a count condition can fire a little early or late of serve's own
//! evaluation, which counts exactly.

use contract_manifest::alerts::prometheus::{
    ACCEPT, COMMIT_FAILURES_TOTAL, EVENTS_TOTAL, QUARANTINE,
};
use contract_manifest::alerts::{Alert, Condition};
use serde_json::{Value, json};

use super::GeneratedFile;
use crate::ir::{Contract, ContractSet, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    set.contracts
        .iter()
        .filter(|c| !c.alerts.is_empty())
        .map(|c| GeneratedFile::new(format!("{}/prometheus/alerts.yml", c.name), rules(c)))
        .collect()
}

fn rules(c: &Contract) -> String {
    let rules: Vec<Value> = c.alerts.iter().map(|a| rule(&c.name, a)).collect();
    let document = json!({
        "groups": [{ "name": format!("contractc_{}", c.name), "rules": rules }]
    });
    let mut out = super::header("#", &c.source.path);
    out.push_str("# Alerting rules over `contract-runtime serve`'s /metrics (docs/alerts.md).\n");
    out.push_str(&serde_yaml::to_string(&document).unwrap_or_default());
    out
}

/// The rule's name: the contract's and the alert's (unique across contracts).
pub fn rule_name(contract: &str, alert: &Alert) -> String {
    format!("{contract}_{}", alert.name)
}

fn rule(contract: &str, alert: &Alert) -> Value {
    let mut annotations = json!({ "summary": format!("{contract}: {}", alert.summary()) });
    if let Some(description) = &alert.description {
        annotations["description"] = json!(template_text(description));
    }
    json!({
        "alert": rule_name(contract, alert),
        "expr": expression(contract, alert),
        "labels": { "contract": contract, "alert": alert.name, "severity": "warning" },
        "annotations": annotations,
    })
}

/// A Prometheus template that expands to exactly `text`: annotations are Go templates, where a
/// `{{` in a description would start an action (and fail the rule file) instead of being text.
fn template_text(text: &str) -> String {
    text.replace("{{", "{{ \"{{\" }}")
}

/// The PromQL that is non-empty while the condition holds.
pub fn expression(contract: &str, alert: &Alert) -> String {
    let range = format!("{}m", alert.window_minutes);
    let events = |verdict: &str| {
        format!("sum(increase({EVENTS_TOTAL}{{contract=\"{contract}\"{verdict}}}[{range}]))")
    };
    match alert.condition {
        Condition::BadShare { over } => format!(
            "{} / {} > {over}",
            events(&format!(",verdict!=\"{ACCEPT}\"")),
            events("")
        ),
        Condition::NoEvents => format!("{} == 0", events(&format!(",verdict=\"{ACCEPT}\""))),
        Condition::QuarantineGrowth { over } => {
            format!("{} > {over}", events(&format!(",verdict=\"{QUARANTINE}\"")))
        }
        Condition::CommitFailures { over } => format!(
            "sum(increase({COMMIT_FAILURES_TOTAL}{{contract=\"{contract}\"}}[{range}])) > {over}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_expand_to_their_own_text() {
        assert_eq!(
            template_text("a {{ $value }} b"),
            "a {{ \"{{\" }} $value }} b"
        );
        assert_eq!(template_text("{{{"), "{{ \"{{\" }}{");
        assert_eq!(template_text("}} \" \\ ` %"), "}} \" \\ ` %");
    }

    #[test]
    fn bad_share_divides_the_bad_by_all_judged_over_the_window() {
        let alert = Alert {
            name: "broken_build".into(),
            description: None,
            condition: Condition::BadShare { over: 0.05 },
            window_minutes: 10,
        };
        assert_eq!(
            expression("game_events", &alert),
            "sum(increase(contractc_events_total{contract=\"game_events\",verdict!=\"accept\"}[10m])) \
             / sum(increase(contractc_events_total{contract=\"game_events\"}[10m])) > 0.05"
        );
    }
}
