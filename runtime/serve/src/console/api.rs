//! The console's JSON, under `/console/api/`. Every answer is computed from the rings and the
//! lake when asked; nothing here runs unless someone has the page open.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Console, Watched, mask, now_micros, tables};

/// A window of the page: its length, and the step its plots use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    name: &'static str,
    /// Seconds per point of the verdict plots.
    step: i64,
    points: usize,
    /// Seconds per point of the violation plots (whole minutes: their ring counts minutes).
    rule_step: i64,
    rule_points: usize,
}

const WINDOWS: [Window; 3] = [
    Window {
        name: "15m",
        step: 10,
        points: 90,
        rule_step: 60,
        rule_points: 15,
    },
    Window {
        name: "1h",
        step: 60,
        points: 60,
        rule_step: 60,
        rule_points: 60,
    },
    Window {
        name: "1d",
        step: 600,
        points: 144,
        rule_step: 600,
        rule_points: 144,
    },
];

fn window(query: &HashMap<String, String>) -> Result<Window, Response> {
    let wanted = query.get("window").map_or("15m", String::as_str);
    WINDOWS
        .iter()
        .find(|w| w.name == wanted)
        .copied()
        .ok_or_else(|| bad_request(format!("window must be 15m, 1h or 1d, not {wanted:?}")))
}

fn bad_request(text: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "message": text }))).into_response()
}

/// JSON that is never cached: the page polls it.
fn fresh(value: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(value)).into_response()
}

fn contract_named<'a>(
    console: &'a Console,
    query: &HashMap<String, String>,
) -> Result<&'a Watched, Response> {
    let name = query.get("contract").map_or("", String::as_str);
    console
        .contract(name)
        .ok_or_else(|| bad_request(format!("no contract {name:?} is served")))
}

/// Per contract: accepted / quarantined / rejected over the window, totals, current rates,
/// the share of bad events, and the commit lag.
pub async fn overview(
    State(console): State<Arc<Console>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let window = match window(&query) {
        Ok(w) => w,
        Err(response) => return response,
    };
    let now_secs = now_micros() / 1_000_000;
    let alerts = console.alerts.statuses();
    let contracts: Vec<Value> = console
        .contracts
        .iter()
        .map(|c| {
            let mut overview = contract_overview(&console, c, window, now_secs);
            let own: Vec<_> = alerts
                .iter()
                .filter(|a| a.contract == c.manifest.name)
                .collect();
            overview["alerts"] = json!(own);
            overview
        })
        .collect();
    let history = console
        .history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    fresh(json!({
        "now_ms": now_micros() / 1000,
        "window": window.name,
        "step_s": window.step,
        "wal_bytes": console.wal_bytes.get(),
        "history": history,
        "contracts": contracts,
    }))
}

/// The share of events refused or quarantined (0 without events).
fn bad_share(accepted: u64, quarantined: u64, rejected: u64) -> f64 {
    let all = accepted + quarantined + rejected;
    if all == 0 {
        0.0
    } else {
        (quarantined + rejected) as f64 / all as f64
    }
}

fn contract_overview(console: &Console, c: &Watched, window: Window, now_secs: i64) -> Value {
    let live = c.live.lock().unwrap_or_else(|p| p.into_inner());
    let (starts, counts) = live.verdict_series(now_secs, window.step, window.points);
    // The last minute, for the current rates.
    let (_, recent) = live.verdict_series(now_secs, super::live::STEP_SECS, 6);
    let client_versions: Vec<Value> = live
        .client_versions()
        .map(|(version, [accepted, quarantined, rejected])| {
            json!({
                "version": version,
                "accepted": accepted,
                "quarantined": quarantined,
                "rejected": rejected,
                "bad_share": bad_share(accepted, quarantined, rejected),
            })
        })
        .collect();
    drop(live);
    let column = |i: usize| counts.iter().map(|c| c[i]).collect::<Vec<u64>>();
    let total = |i: usize| counts.iter().map(|c| c[i]).sum::<u64>();
    let rate = |i: usize| recent.iter().map(|c| c[i]).sum::<u64>() as f64 / 60.0;
    let (accepted, quarantined, rejected) = (total(0), total(1), total(2));
    let last_commit_ms = c.last_commit_ms.load(Ordering::Relaxed);
    json!({
        "name": c.manifest.name,
        "version": c.manifest.version,
        "t": starts,
        "accepted": column(0),
        "quarantined": column(1),
        "rejected": column(2),
        "totals": { "accepted": accepted, "quarantined": quarantined, "rejected": rejected },
        "rates": { "accepted": rate(0), "quarantined": rate(1), "rejected": rate(2) },
        "bad_share": bad_share(accepted, quarantined, rejected),
        "buffered": console.buffered.with_label_values(&[c.manifest.name.as_str()]).get(),
        "last_commit_ms": (last_commit_ms > 0).then_some(last_commit_ms),
        // Null when the contract declares no deduplication.
        "duplicates": c.manifest.ingest.dedup.as_ref().map(|_| c.duplicates.load(Ordering::Relaxed)),
        // Since start, per the client version each event was judged as.
        "client_versions": client_versions,
    })
}

/// The rules broken most in the window, by code and folded path, with counts over time.
pub async fn violations(
    State(console): State<Arc<Console>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (window, contract) = match (window(&query), contract_named(&console, &query)) {
        (Ok(w), Ok(c)) => (w, c),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let now_secs = now_micros() / 1_000_000;
    let last = now_secs.div_euclid(window.rule_step);
    let starts: Vec<i64> = (0..window.rule_points as i64)
        .rev()
        .map(|i| (last - i) * window.rule_step)
        .collect();
    let rules = contract
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rule_series(now_secs, window.rule_step, window.rule_points);
    fresh(json!({
        "contract": contract.manifest.name,
        "window": window.name,
        "step_s": window.rule_step,
        "t": starts,
        "rules": rules,
    }))
}

/// The latest refused or quarantined events that broke one rule (`code`, folded `path`),
/// newest first, with every violation and the payload, `pii` fields masked.
pub async fn events(
    State(console): State<Arc<Console>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let contract = match contract_named(&console, &query) {
        Ok(c) => c,
        Err(response) => return response,
    };
    let (Some(code), Some(path)) = (query.get("code"), query.get("path")) else {
        return bad_request("code and path are required".into());
    };
    let latest = contract
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .latest(code, path);
    let events: Vec<Value> = latest
        .iter()
        .map(|e| {
            let mut shown = serde_json::to_value(e.as_ref()).unwrap_or_default();
            shown["payload"] = Value::String(mask::masked_payload(
                contract.manifest,
                &e.payload,
                e.truncated,
            ));
            shown["received_ms"] = json!(e.received_micros / 1000);
            shown
        })
        .collect();
    fresh(json!({
        "contract": contract.manifest.name,
        "code": code,
        "path": path,
        "events": events,
    }))
}

/// Every table's Iceberg state, read from the lake.
pub async fn tables(State(console): State<Arc<Console>>) -> Response {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for contract in &console.contracts {
        for (kind, ident) in [
            ("events", &contract.events_table),
            ("quarantine", &contract.quarantine_table),
        ] {
            let state = match console.lake.load(ident).await {
                Ok(table) => tables::table_state(&table, &console.manifests, &mut seen)
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            out.push(match state {
                Ok(state) => json!({ "contract": contract.manifest.name, "kind": kind, "state": state }),
                Err(error) => json!({ "contract": contract.manifest.name, "kind": kind, "table": ident.to_string(), "error": error }),
            });
        }
    }
    tables::forget_unlisted(&console.manifests, &seen);
    fresh(json!({ "tables": out }))
}

/// Each contract's version, fingerprint and generated documentation (rendered).
pub async fn contracts(State(console): State<Arc<Console>>) -> Response {
    let contracts: Vec<Value> = console
        .contracts
        .iter()
        .map(|c| {
            let m = c.manifest;
            json!({
                "name": m.name,
                "version": m.version,
                "owner": m.owner,
                "description": m.description,
                "source": m.source.path,
                "fingerprint": m.source.fingerprint,
                "route": m.ingest.route,
                "docs_html": c.docs_html.get_or_init(|| super::docs::render(&m.docs)),
            })
        })
        .collect();
    fresh(json!({ "contracts": contracts }))
}
