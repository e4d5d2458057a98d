//! Prometheus metrics of the operator (prometheus-client), served on `/metrics` in the text
//! exposition format.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `starrocks_operator_reconciles_total` | `cluster` | reconciles started |
//! | `starrocks_operator_reconcile_errors_total` | `cluster` | reconciles that failed (retried with backoff) |
//! | `starrocks_operator_transitions_total` | `from`, `to` | lifecycle transitions |
//! | `starrocks_operator_state_seconds_total` | `state` | seconds clusters spent in each state, added when they leave it |
//! | `starrocks_operator_gate_waits_total` | `condition` | reconciles that found the current tier waiting, by the gate condition that failed |
//! | `starrocks_operator_journal_appends_total` | | records appended (flushed) |
//! | `starrocks_operator_journal_bytes_total` | | bytes of records appended (JSON) |
//! | `starrocks_operator_api_writes_total` | `verb`, `code` | the operator's API writes (apply, apply_status, delete) by HTTP code (0: no answer) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A `cluster` label (`namespace/name`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    /// `namespace/name`.
    pub cluster: String,
}

/// A lifecycle transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// State left.
    pub from: String,
    /// State entered.
    pub to: String,
}

/// A lifecycle state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// State name.
    pub state: String,
}

/// A failed gate condition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabel {
    /// The condition's label (`stale_observation`, `replicas_not_ready`, ...).
    pub condition: String,
}

/// An API write.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply`, `apply_status`, `delete`.
    pub verb: String,
    /// HTTP status code; 0 when no answer came (connection error).
    pub code: u16,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciles started, by cluster.
    pub reconciles: Family<ClusterLabel, Counter>,
    /// Reconciles failed, by cluster.
    pub reconcile_errors: Family<ClusterLabel, Counter>,
    /// Lifecycle transitions.
    pub transitions: Family<TransitionLabels, Counter>,
    /// Seconds spent per state.
    pub state_seconds: Family<StateLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Gate waits by failed condition.
    pub gate_waits: Family<ConditionLabel, Counter>,
    /// Journal records appended.
    pub journal_appends: Counter,
    /// Journal bytes appended.
    pub journal_bytes: Counter,
    /// API writes by verb and code.
    pub api_writes: Family<WriteLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the prefix `starrocks_operator`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("starrocks_operator");
        let reconciles = Family::<ClusterLabel, Counter>::default();
        let reconcile_errors = Family::<ClusterLabel, Counter>::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let state_seconds = Family::default();
        let gate_waits = Family::<ConditionLabel, Counter>::default();
        let journal_appends = Counter::default();
        let journal_bytes = Counter::default();
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed and are retried with backoff",
            reconcile_errors.clone(),
        );
        registry.register("transitions", "Lifecycle transitions", transitions.clone());
        registry.register(
            "state_seconds",
            "Seconds clusters spent in each lifecycle state",
            state_seconds.clone(),
        );
        registry.register(
            "gate_waits",
            "Reconciles whose current tier waits, by the failed gate condition",
            gate_waits.clone(),
        );
        registry.register(
            "journal_appends",
            "Journal records appended and flushed",
            journal_appends.clone(),
        );
        registry.register(
            "journal_bytes",
            "Bytes of journal records appended (JSON)",
            journal_bytes.clone(),
        );
        registry.register(
            "api_writes",
            "API writes of the operator by verb and HTTP code",
            api_writes.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            transitions,
            state_seconds,
            gate_waits,
            journal_appends,
            journal_bytes,
            api_writes,
        }
    }

    /// Counts an API write result.
    pub fn write<T>(&self, verb: &str, result: &Result<T, kube::Error>) {
        let code = match result {
            Ok(_) => 200,
            Err(kube::Error::Api(status)) => status.code,
            Err(_) => 0,
        };
        self.api_writes
            .get_or_create(&WriteLabels {
                verb: verb.to_string(),
                code,
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    ///
    /// # Errors
    /// [`std::fmt::Error`] (not expected when writing to a `String`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_their_labels() {
        let m = Metrics::new();
        m.reconciles
            .get_or_create(&ClusterLabel {
                cluster: "ns/demo".into(),
            })
            .inc();
        m.transitions
            .get_or_create(&TransitionLabels {
                from: "Steady".into(),
                to: "UpgradingBe".into(),
            })
            .inc();
        m.state_seconds
            .get_or_create(&StateLabel {
                state: "UpgradingBe".into(),
            })
            .inc_by(1.5);
        let text = m.encode().unwrap();
        assert!(
            text.contains("starrocks_operator_reconciles_total{cluster=\"ns/demo\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("from=\"Steady\",to=\"UpgradingBe\""),
            "{text}"
        );
        assert!(
            text.contains("starrocks_operator_state_seconds_total{state=\"UpgradingBe\"} 1.5"),
            "{text}"
        );
    }
}
