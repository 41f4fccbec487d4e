//! Prometheus metrics for `/metrics`.

use contract_support::manifest::Manifest;
use contract_support::manifest::alerts::prometheus as names;
use contract_support::{Verdict, Violation};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub events: IntCounterVec,
    pub violations: IntCounterVec,
    pub unauthorized: IntCounterVec,
    pub buffered: IntGaugeVec,
    pub commit_seconds: HistogramVec,
    /// Refused by a limit: `connection` (the cap), `guest_login` (rate), `batch_events`,
    /// `body_size`, `body_timeout`.
    pub limited: IntCounterVec,
    /// Bytes of write-ahead log on disk (acknowledged events not yet committed, and the
    /// segment being written).
    pub wal_bytes: prometheus::IntGauge,
    pub dedup: DedupMetrics,
    /// Flushes whose commit to one of a contract's tables failed, by contract (#24).
    pub commit_failures: IntCounterVec,
    /// 1 while serve's evaluation has an alert firing, by contract and alert (#24).
    pub alert_firing: IntGaugeVec,
}

/// Deduplication's figures (#21), by contract.
pub struct DedupMetrics {
    /// Retries of stored events, answered and not stored again.
    pub duplicates: IntCounterVec,
    /// Ids the index holds (pending writes included).
    pub ids: IntGaugeVec,
    /// Bytes the index has allocated for them.
    pub bytes: IntGaugeVec,
}

impl DedupMetrics {
    fn new(registry: &Registry) -> DedupMetrics {
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["contract"]).expect("valid metric")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["contract"]).expect("valid metric")
        };
        let metrics = DedupMetrics {
            duplicates: counter(
                "contractc_duplicates_total",
                "Retries of events stored within the deduplication window: answered as the original was, not stored again",
            ),
            ids: gauge(
                "contractc_dedup_ids",
                "Event ids the deduplication index holds (the window's)",
            ),
            bytes: gauge(
                "contractc_dedup_index_bytes",
                "Bytes the deduplication index has allocated for its ids",
            ),
        };
        for collector in [
            Box::new(metrics.duplicates.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.ids.clone()),
            Box::new(metrics.bytes.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }
}

/// What the quality alerts read and show (#24): failed commits, and alerts firing.
fn alert_metrics(registry: &Registry) -> (IntCounterVec, IntGaugeVec) {
    let commit_failures = IntCounterVec::new(
        Opts::new(
            names::COMMIT_FAILURES_TOTAL,
            "Flushes whose commit to a table of the contract failed after its retries (the events stay in the write-ahead log)",
        ),
        &["contract"],
    )
    .expect("valid metric");
    let alert_firing = IntGaugeVec::new(
        Opts::new(
            names::ALERT_FIRING,
            "1 while the contract's alert is firing (serve's own evaluation of quality.alerts)",
        ),
        &["contract", "alert"],
    )
    .expect("valid metric");
    register_all(
        registry,
        [
            Box::new(commit_failures.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(alert_firing.clone()),
        ],
    );
    (commit_failures, alert_firing)
}

/// Latency of commits, by table.
fn commit_histogram() -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(
            "contractc_commit_seconds",
            "Latency of Iceberg commits (write files + commit)",
        )
        .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        &["table"],
    )
    .expect("valid metric")
}

/// Registers metrics this module made (their names are fixed and distinct).
fn register_all(
    registry: &Registry,
    collectors: impl IntoIterator<Item = Box<dyn prometheus::core::Collector>>,
) {
    for collector in collectors {
        registry
            .register(collector)
            .expect("metric names are unique");
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(
                names::EVENTS_TOTAL,
                "Events judged, by contract and verdict (accept, quarantine, reject)",
            ),
            &["contract", "verdict"],
        )
        .expect("valid metric");
        let violations = IntCounterVec::new(
            Opts::new(
                "contractc_violations_total",
                "Rule violations, by contract, code and policy",
            ),
            &["contract", "code", "policy"],
        )
        .expect("valid metric");
        let unauthorized = IntCounterVec::new(
            Opts::new(
                "contractc_unauthorized_total",
                "Requests refused by authentication (401) or scope (403)",
            ),
            &["contract", "status"],
        )
        .expect("valid metric");
        let buffered = IntGaugeVec::new(
            Opts::new(
                "contractc_buffered_events",
                "Events logged but not yet committed to Iceberg",
            ),
            &["contract"],
        )
        .expect("valid metric");
        let commit_seconds = commit_histogram();
        let limited = IntCounterVec::new(
            Opts::new(
                "contractc_limited_total",
                "Connections and requests refused by a limit, by limit",
            ),
            &["limit"],
        )
        .expect("valid metric");
        let wal_bytes =
            prometheus::IntGauge::new("contractc_wal_bytes", "Bytes of write-ahead log on disk")
                .expect("valid metric");
        register_all(
            &registry,
            [
                Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(violations.clone()),
                Box::new(unauthorized.clone()),
                Box::new(buffered.clone()),
                Box::new(commit_seconds.clone()),
                Box::new(limited.clone()),
                Box::new(wal_bytes.clone()),
            ],
        );
        let dedup = DedupMetrics::new(&registry);
        let (commit_failures, alert_firing) = alert_metrics(&registry);
        Metrics {
            registry,
            events,
            violations,
            unauthorized,
            buffered,
            commit_seconds,
            limited,
            wal_bytes,
            dedup,
            commit_failures,
            alert_firing,
        }
    }

    /// Makes every series an alert or a rule reads exist at 0 from the start: `increase()`
    /// over a series that appears with its first event would miss that event.
    pub fn prepare(&self, manifests: &[&Manifest]) {
        for manifest in manifests {
            let contract = manifest.name.as_str();
            for verdict in names::VERDICTS {
                self.events.with_label_values(&[contract, verdict]);
            }
            self.commit_failures.with_label_values(&[contract]);
            for alert in &manifest.alerts {
                self.alert_firing
                    .with_label_values(&[contract, alert.name.as_str()]);
            }
        }
    }

    /// Adds collectors owned elsewhere (maintenance's table figures) to `/metrics`.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    pub fn record(&self, contract: &str, verdict: Verdict, violations: &[Violation]) {
        self.events
            .with_label_values(&[contract, verdict.as_str()])
            .inc();
        for v in violations {
            self.violations
                .with_label_values(&[contract, v.code.as_str(), v.policy.as_str()])
                .inc();
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            return format!("# cannot encode metrics: {error}\n");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
