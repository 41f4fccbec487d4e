//! Quality alarms on AWS (#24): each of the contract's `quality.alerts` as a CloudWatch alarm
//! over the counts the streaming job publishes per micro-batch (namespace `contractc`,
//! dimension `Contract`; `contract_manifest::alerts::cloudwatch`), and one dashboard per
//! contract mirroring the quality console's overview.
//!
//! An alarm measures its alert's window as one period (`for: 10m` → one 600 s period):
//! `bad_share` is metric math over the three counts, the others one count. Missing data is
//! "not breaching", except for `no_events`, where no data means the job published nothing (it
//! publishes zeros for a quiet batch): the job stopped, and that is the silence the alarm is
//! for. Alarms of the contract's prefix that no alert declares any more are deleted.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, Tag,
};
use contract_support::manifest::alerts::cloudwatch as names;
use contract_support::manifest::{Alert, Condition};
use serde_json::{Value, json};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found};

/// One metric query of an alarm: a count of the contract (Sum), or an expression over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    /// The metric's name (`Accepted`, …), summed over the period; None for an expression.
    pub metric: Option<String>,
    pub expression: Option<String>,
    /// Whether this query is the alarm's value (exactly one is).
    pub returned: bool,
}

/// An alarm as deploy sets it and reads it back: everything a plan compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub description: String,
    pub queries: Vec<Query>,
    /// Seconds: the alert's window.
    pub period: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    /// SNS topics told when it fires and when it clears (`--alarm-topic`).
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    /// The prefix's alarms of this contract, by name.
    pub alarms: BTreeMap<String, Alarm>,
    /// The dashboard's body, when it exists.
    pub dashboard: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    PutAlarm {
        alarm: Alarm,
        contract: String,
        tags: Vec<(String, String)>,
    },
    PutDashboard {
        name: String,
        body: Value,
    },
    /// Alarms of the contract no alert declares (or all of them, on `--destroy`).
    DeleteAlarms {
        names: Vec<String>,
    },
    DeleteDashboard {
        name: String,
    },
}

impl Desired {
    /// `PREFIX-<contract>-`: every alarm of the contract starts so.
    pub(crate) fn alarm_prefix(&self, c: &DeployConfig) -> String {
        format!("{}-{}-", c.prefix, self.manifest.name)
    }

    pub(crate) fn alarm(&self, c: &DeployConfig, alert: &Alert) -> String {
        format!("{}{}", self.alarm_prefix(c), alert.name)
    }

    pub(crate) fn dashboard(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.manifest.name)
    }
}

fn count(id: &str, metric: &str, returned: bool) -> Query {
    Query {
        id: id.to_string(),
        metric: Some(metric.to_string()),
        expression: None,
        returned,
    }
}

/// The queries, comparison and missing-data rule measuring `condition`.
fn measure(condition: &Condition) -> (Vec<Query>, &'static str, &'static str) {
    match condition {
        Condition::BadShare { .. } => (
            vec![
                count("accepted", names::ACCEPTED, false),
                count("quarantined", names::QUARANTINED, false),
                count("refused", names::REFUSED, false),
                Query {
                    id: "bad_share".to_string(),
                    metric: None,
                    expression: Some(
                        "(quarantined + refused) / (accepted + quarantined + refused)".to_string(),
                    ),
                    returned: true,
                },
            ],
            "GreaterThanThreshold",
            "notBreaching",
        ),
        Condition::NoEvents => (
            vec![count("accepted", names::ACCEPTED, true)],
            "LessThanOrEqualToThreshold",
            "breaching",
        ),
        Condition::QuarantineGrowth { .. } => (
            vec![count("quarantined", names::QUARANTINED, true)],
            "GreaterThanThreshold",
            "notBreaching",
        ),
        Condition::CommitFailures { .. } => (
            vec![count("failures", names::BATCH_FAILURES, true)],
            "GreaterThanThreshold",
            "notBreaching",
        ),
    }
}

/// The alarms the contract's alerts ask for.
pub fn desired_alarms(config: &DeployConfig, desired: &Desired) -> Vec<Alarm> {
    let manifest = desired.manifest;
    manifest
        .alerts
        .iter()
        .map(|alert| {
            let (queries, comparison, treat_missing_data) = measure(&alert.condition);
            let mut description = format!("contractc {}: {}", manifest.name, alert.summary());
            if let Some(more) = &alert.description {
                description.push_str(". ");
                description.push_str(more);
            }
            Alarm {
                name: desired.alarm(config, alert),
                description,
                queries,
                period: i32::try_from(alert.window_minutes * 60).unwrap_or(i32::MAX),
                threshold: alert.condition.threshold(),
                comparison: comparison.to_string(),
                treat_missing_data: treat_missing_data.to_string(),
                actions: config.alarm_topic.iter().cloned().collect(),
            }
        })
        .collect()
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    let prefix = desired.alarm_prefix(config);
    let mut alarms = BTreeMap::new();
    let mut pages = client
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("cloudwatch:DescribeAlarms"))?;
        for alarm in page
            .metric_alarms()
            .iter()
            .filter(|a| watches(a, &desired.manifest.name))
        {
            let seen = observed(alarm);
            alarms.insert(seen.name.clone(), seen);
        }
    }
    let got = client
        .get_dashboard()
        .dashboard_name(desired.dashboard(config))
        .send()
        .await;
    let dashboard = found("cloudwatch:GetDashboard", got, |e| {
        e.is_dashboard_not_found_error()
    })?
    .map(|d| {
        // A body that is not JSON (edited by hand) differs from any wanted one.
        d.dashboard_body()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null)
    });
    Ok(Current { alarms, dashboard })
}

/// Whether `alarm` measures `contract`'s counts: another stack's prefix may extend this one's
/// (`PREFIX-<contract>-…`), and its alarms are not this contract's to delete.
fn watches(alarm: &MetricAlarm, contract: &str) -> bool {
    let ours = |namespace: Option<&str>, dimensions: &[Dimension]| {
        namespace == Some(names::NAMESPACE)
            && dimensions
                .iter()
                .any(|d| d.name() == Some(names::CONTRACT) && d.value() == Some(contract))
    };
    ours(alarm.namespace(), alarm.dimensions())
        || alarm.metrics().iter().any(|q| {
            q.metric_stat()
                .and_then(|s| s.metric())
                .is_some_and(|m| ours(m.namespace(), m.dimensions()))
        })
}

/// An alarm as CloudWatch has it, in deploy's terms.
fn observed(alarm: &MetricAlarm) -> Alarm {
    let queries = alarm
        .metrics()
        .iter()
        .map(|q| Query {
            id: q.id().unwrap_or_default().to_string(),
            metric: q
                .metric_stat()
                .and_then(|s| s.metric())
                .and_then(|m| m.metric_name())
                .map(str::to_string),
            expression: q.expression().map(str::to_string),
            returned: q.return_data().unwrap_or(true),
        })
        .collect();
    Alarm {
        name: alarm.alarm_name().unwrap_or_default().to_string(),
        description: alarm.alarm_description().unwrap_or_default().to_string(),
        queries,
        period: alarm
            .metrics()
            .iter()
            .find_map(|q| q.metric_stat().and_then(|s| s.period()))
            .or(alarm.period())
            .unwrap_or_default(),
        threshold: alarm.threshold().unwrap_or_default(),
        comparison: alarm
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        treat_missing_data: alarm.treat_missing_data().unwrap_or("missing").to_string(),
        actions: alarm.alarm_actions().to_vec(),
    }
}

/// What differs between an alarm as it is and as it should be.
fn differences(have: &Alarm, want: &Alarm) -> Vec<String> {
    let mut differs = Vec::new();
    let mut compare = |what: &str, same: bool| {
        if !same {
            differs.push(what.to_string());
        }
    };
    compare("description", have.description == want.description);
    compare("metrics", have.queries == want.queries);
    compare("period", have.period == want.period);
    compare("threshold", (have.threshold - want.threshold).abs() < 1e-9);
    compare("comparison", have.comparison == want.comparison);
    compare(
        "missing data",
        have.treat_missing_data == want.treat_missing_data,
    );
    compare("actions", have.actions == want.actions);
    differs
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let wanted = desired_alarms(config, desired);
    for alarm in &wanted {
        let action = match current.alarms.get(&alarm.name) {
            None => Action::Create,
            Some(have) => match differences(have, alarm) {
                differs if differs.is_empty() => continue,
                differs => Action::Update(differs),
            },
        };
        steps.push(Step {
            resource: resource(&alarm.name),
            action,
            op: crate::Op::Alarms(Op::PutAlarm {
                alarm: alarm.clone(),
                contract: desired.manifest.name.clone(),
                tags: desired.tags(config),
            }),
        });
    }
    let retired: Vec<String> = current
        .alarms
        .keys()
        .filter(|name| !wanted.iter().any(|a| &a.name == *name))
        .cloned()
        .collect();
    if !retired.is_empty() {
        steps.push(delete_alarms(retired));
    }
    let body = dashboard(config, desired, &wanted);
    let action = match &current.dashboard {
        None => Action::Create,
        Some(have) if *have == body => return,
        Some(_) => Action::Update(vec!["widgets".to_string()]),
    };
    let name = desired.dashboard(config);
    steps.push(Step {
        resource: dashboard_resource(&name),
        action,
        op: crate::Op::Alarms(Op::PutDashboard { name, body }),
    });
}

pub(crate) fn resource(name: &str) -> String {
    format!("cloudwatch alarm {name}")
}

/// The deletion of `names`.
pub(crate) fn delete_alarms(names: Vec<String>) -> Step {
    let shown: Vec<String> = names.iter().map(|n| resource(n)).collect();
    Step {
        resource: shown.join(", "),
        action: Action::Delete,
        op: crate::Op::Alarms(Op::DeleteAlarms { names }),
    }
}

/// `--destroy`: the contract's alarms and its dashboard, when they exist.
pub(crate) fn plan_destroy(
    config: &DeployConfig,
    desired: &Desired,
    current: &Current,
    steps: &mut Vec<Step>,
) {
    if !current.alarms.is_empty() {
        steps.push(delete_alarms(current.alarms.keys().cloned().collect()));
    }
    if current.dashboard.is_some() {
        let name = desired.dashboard(config);
        steps.push(Step {
            resource: dashboard_resource(&name),
            action: Action::Delete,
            op: crate::Op::Alarms(Op::DeleteDashboard { name }),
        });
    }
}

pub(crate) fn dashboard_resource(name: &str) -> String {
    format!("cloudwatch dashboard {name}")
}

/// The dashboard: counts, bad share, refusals by code, counts per client version, failed
/// batches and the alarms' states; the console's overview, over the job's metrics.
pub fn dashboard(config: &DeployConfig, desired: &Desired, alarms: &[Alarm]) -> Value {
    let contract = desired.manifest.name.as_str();
    let region = config.region.as_str();
    let ns = names::NAMESPACE;
    let metric = |name: &str, options: Value| json!([ns, name, names::CONTRACT, contract, options]);
    // Every series of one metric split by one more dimension (codes, client versions).
    let search = |dimension: &str, metric_name: &str| {
        let by = names::CONTRACT;
        let query =
            format!("{{{ns},{by},{dimension}}} {by}=\"{contract}\" MetricName=\"{metric_name}\"");
        json!([{ "expression": format!("SEARCH('{query}', 'Sum', 300)"), "id": "search" }])
    };
    let widget = |title: &str, metrics: Value, x: u32, y: u32, stacked: bool| {
        json!({
            "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {
                "title": title, "region": region, "view": "timeSeries", "stacked": stacked,
                "stat": "Sum", "period": 300, "metrics": metrics,
            }
        })
    };
    let counts = json!([
        metric(names::ACCEPTED, json!({ "color": "#2ca02c" })),
        metric(names::QUARANTINED, json!({ "color": "#ff7f0e" })),
        metric(names::REFUSED, json!({ "color": "#d62728" })),
    ]);
    let share = json!([
        [{ "expression": "(q + r) / (a + q + r)", "label": "bad share", "id": "share" }],
        metric(names::ACCEPTED, json!({ "id": "a", "visible": false })),
        metric(names::QUARANTINED, json!({ "id": "q", "visible": false })),
        metric(names::REFUSED, json!({ "id": "r", "visible": false })),
    ]);
    let arns: Vec<String> = alarms
        .iter()
        .map(|a| {
            format!(
                "arn:aws:cloudwatch:{region}:{}:alarm:{}",
                config.account_id, a.name
            )
        })
        .collect();
    let mut widgets = vec![
        widget("Events judged (per 5 minutes)", counts, 0, 0, true),
        widget("Bad share", share, 12, 0, false),
        widget(
            "Refused, by violation code",
            search(names::CODE, names::REFUSED),
            0,
            6,
            true,
        ),
        widget(
            "Refused, by client version",
            search(names::CLIENT_VERSION, names::REFUSED),
            12,
            6,
            true,
        ),
        widget(
            "Failed micro-batches",
            json!([metric(names::BATCH_FAILURES, json!({}))]),
            0,
            12,
            false,
        ),
    ];
    if !arns.is_empty() {
        widgets.push(json!({
            "type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
            "properties": { "title": "Alerts (quality.alerts)", "alarms": arns },
        }));
    }
    json!({ "widgets": widgets })
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::PutAlarm {
            alarm,
            contract,
            tags,
        } => put_alarm(client, alarm, contract, tags).await,
        Op::PutDashboard { name, body } => {
            client
                .put_dashboard()
                .dashboard_name(name)
                .dashboard_body(body.to_string())
                .send()
                .await
                .map_err(aws("cloudwatch:PutDashboard"))?;
            Ok(())
        }
        Op::DeleteAlarms { names } => {
            client
                .delete_alarms()
                .set_alarm_names(Some(names.clone()))
                .send()
                .await
                .map_err(aws("cloudwatch:DeleteAlarms"))?;
            Ok(())
        }
        Op::DeleteDashboard { name } => {
            client
                .delete_dashboards()
                .dashboard_names(name)
                .send()
                .await
                .map_err(aws("cloudwatch:DeleteDashboards"))?;
            Ok(())
        }
    }
}

/// PutMetricAlarm creates or replaces the whole alarm: one call for create and update.
async fn put_alarm(
    client: &Client,
    alarm: &Alarm,
    contract: &str,
    tags: &[(String, String)],
) -> Result<(), DeployError> {
    let dimension = Dimension::builder()
        .name(names::CONTRACT)
        .value(contract)
        .build();
    let queries = alarm
        .queries
        .iter()
        .map(|q| {
            let stat = q.metric.as_ref().map(|name| {
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(names::NAMESPACE)
                            .metric_name(name)
                            .dimensions(dimension.clone())
                            .build(),
                    )
                    .period(alarm.period)
                    .stat("Sum")
                    .build()
            });
            MetricDataQuery::builder()
                .id(&q.id)
                .set_metric_stat(stat)
                .set_expression(q.expression.clone())
                .return_data(q.returned)
                .build()
        })
        .collect();
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    client
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .set_metrics(Some(queries))
        .evaluation_periods(1)
        .datapoints_to_alarm(1)
        .threshold(alarm.threshold)
        .comparison_operator(ComparisonOperator::from(alarm.comparison.as_str()))
        .treat_missing_data(&alarm.treat_missing_data)
        .set_alarm_actions(Some(alarm.actions.clone()))
        .set_ok_actions(Some(alarm.actions.clone()))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("cloudwatch:PutMetricAlarm"))?;
    Ok(())
}
