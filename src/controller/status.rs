//! The StarRocksCluster status as the reconciler writes it: upstream's `phase` and
//! per-component statuses, plus `observedGeneration`, the standard conditions and the
//! lifecycle state. Pure: computed from the model's state and the observation, then compared
//! with the status in the cache so that an unchanged status is never written.
//!
//! Conditions follow the Kubernetes API conventions (`status` `True`/`False`, CamelCase
//! `reason`, `lastTransitionTime` kept while `status` does not change).

use crate::crd::{
    ComponentPhase, ComponentStatus, ConditionType, HorizontalScaler, LifecycleStatus,
    StarRocksCluster, StarRocksClusterStatus,
};
use crate::render::names::{autoscaler_name, selector_string, service_name, workload_name};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use starrocks_model::component::Component;
use starrocks_model::gate::{GateFailure, check_rolled_out};
use starrocks_model::observe::ClusterObservation;
use starrocks_model::state::LifecycleState;

/// Upstream's cluster phase values (`running`, `reconciling`, `failed`).
pub const PHASE_RUNNING: &str = "running";
/// Some component is being created or rolled out.
pub const PHASE_RECONCILING: &str = "reconciling";
/// The lifecycle is blocked.
pub const PHASE_FAILED: &str = "failed";

/// What the status is computed from.
#[derive(Debug, Clone, Copy)]
pub struct StatusInputs<'a> {
    /// The cluster (spec, generation, current status for transition times).
    pub cluster: &'a StarRocksCluster,
    /// The lifecycle state after the reconcile.
    pub state: &'a LifecycleState,
    /// What the current tier waits for ([`starrocks_model::Machine::waiting_on`]).
    pub waiting_on: Option<&'a (Component, GateFailure)>,
    /// The components as the caches show them.
    pub observation: &'a ClusterObservation,
    /// Whether the spec has each component (FE, BE, CN, FE proxy).
    pub in_spec: &'a [Component],
    /// Time to stamp on conditions whose `status` changes.
    pub now: &'a Time,
}

/// A component is `running` when its workload has rolled out and every replica is ready.
fn component_phase(observation: Option<&starrocks_model::ComponentObservation>) -> &'static str {
    match observation {
        Some(o) if check_rolled_out(o).is_ok() => ComponentPhase::RUNNING,
        _ => ComponentPhase::RECONCILING,
    }
}

fn component_status(
    inputs: &StatusInputs<'_>,
    name: &str,
    component: Component,
) -> Option<ComponentStatus> {
    if !inputs.in_spec.contains(&component) {
        return None;
    }
    let observation = inputs.observation.get(&component);
    let phase = component_phase(observation);
    let reason = match (observation, inputs.waiting_on) {
        (None, _) => Some("the workload does not exist yet".to_string()),
        (Some(_), Some((c, why))) if *c == component => Some(why.to_string()),
        (Some(o), _) => check_rolled_out(o).err().map(|e| e.to_string()),
    };
    let mut status = ComponentStatus {
        service_name: Some(service_name(name, component)),
        resource_names: Some(vec![workload_name(name, component)]),
        phase: Some(phase.to_string()),
        reason,
        ..Default::default()
    };
    if component == Component::Cn {
        // The scale subresource reads these (statusReplicasPath, labelSelectorPath).
        status.replicas = Some(observation.map_or(0, |o| o.status_replicas));
        status.selector = Some(selector_string(name, component));
        let autoscaled = inputs
            .cluster
            .spec
            .star_rocks_cn_spec
            .as_ref()
            .is_some_and(|cn| cn.auto_scaling_policy.is_some());
        if autoscaled {
            status.hpa_name = Some(autoscaler_name(name));
            status.horizontal_scaler = Some(HorizontalScaler {
                name: Some(autoscaler_name(name)),
                version: Some("v2".to_string()),
            });
        }
    }
    Some(status)
}

/// One condition, keeping the previous `lastTransitionTime` when `status` is unchanged.
fn condition(
    inputs: &StatusInputs<'_>,
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let previous = inputs
        .cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => inputs.now.clone(),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: inputs.cluster.metadata.generation,
        last_transition_time,
    }
}

/// A one-line description of the state for status messages, e.g. `UpgradingBe (upgrade of
/// generation 3, then CN, FE): waiting for be: status.currentRevision ...`.
pub fn describe(state: &LifecycleState, waiting_on: Option<&(Component, GateFailure)>) -> String {
    match (state, waiting_on) {
        (LifecycleState::Blocked(why), _) => why.to_string(),
        (_, Some((c, why))) => format!("{state}: waiting for {c}: {why}"),
        _ => state.to_string(),
    }
}

/// The status the cluster should have.
pub fn compute(inputs: &StatusInputs<'_>) -> StarRocksClusterStatus {
    let cluster = inputs.cluster;
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let state = inputs.state;
    let fe = component_status(inputs, name, Component::Fe);
    let be = component_status(inputs, name, Component::Be);
    let cn = component_status(inputs, name, Component::Cn);
    let proxy = component_status(inputs, name, Component::FeProxy);
    let all_running = [&fe, &be, &cn, &proxy]
        .iter()
        .filter_map(|s| s.as_ref())
        .all(|s| s.phase.as_deref() == Some(ComponentPhase::RUNNING));
    let message = describe(state, inputs.waiting_on);
    let blocked = matches!(state, LifecycleState::Blocked(_));
    let steady = matches!(state, LifecycleState::Steady);
    let progressing = matches!(
        state,
        LifecycleState::Creating
            | LifecycleState::WaitingFe
            | LifecycleState::UpgradingBe(_)
            | LifecycleState::UpgradingCn(_)
            | LifecycleState::UpgradingFe(_)
    );
    let phase = if blocked {
        PHASE_FAILED
    } else if steady && all_running {
        PHASE_RUNNING
    } else {
        PHASE_RECONCILING
    };
    let ready = steady && all_running;
    let mut conditions = vec![
        condition(
            inputs,
            ConditionType::READY,
            ready,
            if ready { "Steady" } else { state.name() },
            if ready {
                "every component is rolled out and ready".to_string()
            } else {
                message.clone()
            },
        ),
        condition(
            inputs,
            ConditionType::PROGRESSING,
            progressing,
            state.name(),
            message.clone(),
        ),
        condition(
            inputs,
            ConditionType::DEGRADED,
            steady && !all_running,
            if steady && !all_running {
                "ComponentNotReady"
            } else {
                "AsExpected"
            },
            if steady && !all_running {
                "a component has pods that are not ready".to_string()
            } else {
                String::new()
            },
        ),
        match state {
            LifecycleState::Blocked(why) => condition(
                inputs,
                ConditionType::BLOCKED,
                true,
                why.reason(),
                why.to_string(),
            ),
            _ => condition(
                inputs,
                ConditionType::BLOCKED,
                false,
                "NotBlocked",
                String::new(),
            ),
        },
    ];
    let unacted = cluster.spec.unacted_fields();
    if !unacted.is_empty() {
        conditions.push(condition(
            inputs,
            ConditionType::UNSUPPORTED_FIELDS,
            true,
            "FieldsNotActedOn",
            format!(
                "kept but not acted on by this operator: {}",
                unacted.join(", ")
            ),
        ));
    }
    let rollout = state.rollout();
    let previous = cluster.status.clone().unwrap_or_default();
    StarRocksClusterStatus {
        phase: Some(phase.to_string()),
        reason: (!ready).then(|| message.clone()),
        star_rocks_fe_status: fe,
        star_rocks_be_status: be,
        star_rocks_cn_status: cn,
        star_rocks_fe_proxy_status: proxy,
        // Not written by this operator; kept as found.
        disaster_recovery_status: previous.disaster_recovery_status,
        observed_generation: cluster.metadata.generation,
        conditions: Some(conditions),
        lifecycle: Some(LifecycleStatus {
            state: Some(state.name().to_string()),
            direction: rollout.map(|r| r.direction.to_string()),
            remaining_tiers: rollout.map(|r| r.remaining.iter().map(|t| t.to_string()).collect()),
            target_generation: rollout.map(|r| r.generation),
            message: Some(message),
        }),
    }
}

/// Whether `desired` differs from the status the cache shows, i.e. whether a write is needed.
pub fn needs_write(cluster: &StarRocksCluster, desired: &StarRocksClusterStatus) -> bool {
    cluster.status.as_ref() != Some(desired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::StarRocksClusterSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use starrocks_model::ComponentObservation;
    use starrocks_model::state::{BlockedReason, Rollout};
    use starrocks_model::{Direction, Tier};

    fn cluster() -> StarRocksCluster {
        let mut c = StarRocksCluster::new("demo", StarRocksClusterSpec::default());
        c.metadata = ObjectMeta {
            name: Some("demo".into()),
            namespace: Some("ns".into()),
            generation: Some(2),
            ..Default::default()
        };
        c
    }

    fn rolled_out() -> ComponentObservation {
        ComponentObservation {
            uid: Some("u".into()),
            generation: 2,
            observed_generation: Some(2),
            current_revision: Some("r".into()),
            update_revision: Some("r".into()),
            replicas: 3,
            status_replicas: 3,
            ready_replicas: 3,
            updated_replicas: 3,
            ready_endpoints: 3,
            template_hash: Some("h".into()),
            image: Some("fe:1".into()),
        }
    }

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn find<'a>(s: &'a StarRocksClusterStatus, t: &str) -> &'a Condition {
        s.conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .unwrap()
    }

    #[test]
    fn steady_and_rolled_out_is_ready_and_a_recompute_needs_no_write() {
        let mut c = cluster();
        let obs = ClusterObservation::from([(Component::Fe, rolled_out())]);
        let inputs = StatusInputs {
            cluster: &c,
            state: &LifecycleState::Steady,
            waiting_on: None,
            observation: &obs,
            in_spec: &[Component::Fe],
            now: &time(100),
        };
        let status = compute(&inputs);
        assert_eq!(status.phase.as_deref(), Some(PHASE_RUNNING));
        assert_eq!(find(&status, ConditionType::READY).status, "True");
        assert_eq!(find(&status, ConditionType::PROGRESSING).status, "False");
        assert_eq!(status.observed_generation, Some(2));
        assert!(needs_write(&c, &status));
        c.status = Some(status.clone());
        // Later, nothing changed: same transition times, so no write.
        let later = StatusInputs {
            cluster: &c,
            state: &LifecycleState::Steady,
            waiting_on: None,
            observation: &obs,
            in_spec: &[Component::Fe],
            now: &time(500),
        };
        let again = compute(&later);
        assert_eq!(again, status);
        assert!(!needs_write(&c, &again));
    }

    #[test]
    fn a_rollout_is_progressing_with_what_it_waits_for() {
        let c = cluster();
        let mut be = rolled_out();
        be.current_revision = Some("old".into());
        let obs = ClusterObservation::from([(Component::Fe, rolled_out()), (Component::Be, be)]);
        let state = LifecycleState::UpgradingBe(Rollout {
            direction: Direction::Upgrade,
            generation: 2,
            tier: Tier::Be,
            remaining: vec![Tier::Fe],
        });
        let waiting = (
            Component::Be,
            GateFailure::RevisionMismatch {
                current: Some("old".into()),
                update: Some("r".into()),
            },
        );
        let status = compute(&StatusInputs {
            cluster: &c,
            state: &state,
            waiting_on: Some(&waiting),
            observation: &obs,
            in_spec: &[Component::Fe, Component::Be],
            now: &time(1),
        });
        assert_eq!(status.phase.as_deref(), Some(PHASE_RECONCILING));
        let progressing = find(&status, ConditionType::PROGRESSING);
        assert_eq!(progressing.status, "True");
        assert!(
            progressing.message.contains("waiting for"),
            "{progressing:?}"
        );
        let lifecycle = status.lifecycle.unwrap();
        assert_eq!(lifecycle.state.as_deref(), Some("UpgradingBe"));
        assert_eq!(lifecycle.remaining_tiers.as_ref().map(Vec::len), Some(1));
        let be_status = status.star_rocks_be_status.unwrap();
        assert_eq!(
            be_status.phase.as_deref(),
            Some(ComponentPhase::RECONCILING)
        );
        assert!(be_status.reason.unwrap().contains("currentRevision"));
    }

    #[test]
    fn blocked_names_the_reason_and_fails_the_phase() {
        let c = cluster();
        let obs = ClusterObservation::new();
        let state = LifecycleState::Blocked(BlockedReason::InvalidSpec(
            "spec.starRocksBeSpec.replicas: must be >= 0".into(),
        ));
        let status = compute(&StatusInputs {
            cluster: &c,
            state: &state,
            waiting_on: None,
            observation: &obs,
            in_spec: &[],
            now: &time(1),
        });
        assert_eq!(status.phase.as_deref(), Some(PHASE_FAILED));
        let blocked = find(&status, ConditionType::BLOCKED);
        assert_eq!(blocked.status, "True");
        assert!(blocked.message.contains("spec.starRocksBeSpec.replicas"));
    }
}
