//! The ordering witness: checks from outside the operator, against the simulator's audit log
//! of writes and an independent watch of the workloads, that StarRocks' order held.
//!
//! Resource versions are one global counter in the simulator, so a workload state seen by a
//! watch (its `metadata.resourceVersion`) and a write in the audit log
//! ([`AuditEntry::resource_version`]) are totally ordered: "BE had finished rolling out before
//! FE's template was written" is a comparison of two numbers.
//!
//! Rules checked (StarRocks upgrade guide; upstream issue and PRs #704, #707, #801):
//! - first deployment: no BE, CN or FE proxy object is written before FE has rolled out;
//! - rollout in tier order (upgrade BE, CN, FE; downgrade FE, BE, CN): every template write
//!   of a tier comes after every earlier tier's last template write, and after a state in
//!   which that earlier tier had rolled out its last template.
//!
//! "Rolled out" is restated here from the API reference rather than taken from the model's
//! gate, on purpose: a check that shared the model's code would share its bugs. The tier
//! order is the caller's (the tests state it independently too).

use crate::render::names::workload_name;
use kube_sim::AuditEntry;
use starrocks_model::component::{Component, Tier};
use std::fmt;

/// One state of a workload as a watch saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSample {
    /// `metadata.resourceVersion`.
    pub resource_version: u64,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// When the watch delivered this state (for latency figures, not for ordering).
    pub seen_at: chrono::DateTime<chrono::Utc>,
    /// Whether the workload has rolled out its current generation: `status.observedGeneration
    /// == metadata.generation`, `currentRevision == updateRevision` (StatefulSets), and
    /// `replicas == readyReplicas == updatedReplicas == spec.replicas`.
    pub rolled_out: bool,
}

impl WorkloadSample {
    /// A sample of a StatefulSet.
    pub fn of_stateful_set(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> Option<Self> {
        let status = sts.status.as_ref()?;
        let generation = sts.metadata.generation.unwrap_or(0);
        let replicas = sts.spec.replicas.unwrap_or(1);
        let rolled_out = status.observed_generation == Some(generation)
            && status.current_revision.is_some()
            && status.current_revision == status.update_revision
            && status.replicas == replicas
            && status.ready_replicas.unwrap_or(0) == replicas
            && status.updated_replicas.unwrap_or(0) == replicas;
        Some(WorkloadSample {
            resource_version: sts.metadata.resource_version.as_ref()?.parse().ok()?,
            name: sts.metadata.name.clone()?,
            generation,
            seen_at: chrono::Utc::now(),
            rolled_out,
        })
    }

    /// A sample of a Deployment.
    pub fn of_deployment(d: &k8s_openapi::api::apps::v1::Deployment) -> Option<Self> {
        let status = d.status.as_ref()?;
        let generation = d.metadata.generation.unwrap_or(0);
        let replicas = d.spec.replicas.unwrap_or(1);
        let rolled_out = status.observed_generation == Some(generation)
            && status.replicas.unwrap_or(0) == replicas
            && status.ready_replicas.unwrap_or(0) == replicas
            && status.updated_replicas.unwrap_or(0) == replicas;
        Some(WorkloadSample {
            resource_version: d.metadata.resource_version.as_ref()?.parse().ok()?,
            name: d.metadata.name.clone()?,
            generation,
            seen_at: chrono::Utc::now(),
            rolled_out,
        })
    }
}

/// The component an object of cluster `cluster` belongs to, by the names this operator and
/// upstream render (`<c>-fe-proxy*` before `<c>-fe*`).
pub fn component_of(cluster: &str, object: &str) -> Option<Component> {
    [
        Component::FeProxy,
        Component::Fe,
        Component::Be,
        Component::Cn,
    ]
    .into_iter()
    .find(|c| {
        let base = workload_name(cluster, *c);
        object == base || object.starts_with(&format!("{base}-"))
    })
}

/// A write of a component's pod template, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateWrite {
    /// `metadata.resourceVersion` after the write.
    pub resource_version: u64,
    /// When the simulator answered.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The component.
    pub component: Component,
    /// `metadata.generation` after the write.
    pub generation: i64,
    /// The template's images.
    pub images: Vec<String>,
}

/// Successful writes of cluster `cluster` in `namespace` that changed a workload's pod
/// template (creates included), in order.
pub fn template_writes(audit: &[AuditEntry], namespace: &str, cluster: &str) -> Vec<TemplateWrite> {
    audit
        .iter()
        .filter(|e| e.code < 300 && e.template_changed && e.subresource.is_none())
        .filter(|e| matches!(e.resource.as_str(), "statefulsets" | "deployments"))
        .filter(|e| e.namespace.as_deref() == Some(namespace))
        .filter_map(|e| {
            let name = e.name.as_deref()?;
            let component = component_of(cluster, name)?;
            (name == workload_name(cluster, component)).then_some(TemplateWrite {
                resource_version: e.resource_version?,
                time: e.time,
                component,
                generation: e.generation.unwrap_or(0),
                images: e.images.clone(),
            })
        })
        .collect()
}

/// An ordering violation, with what was written when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn rolled_out_before(samples: &[WorkloadSample], name: &str, generation: i64, before: u64) -> bool {
    samples.iter().any(|s| {
        s.name == name && s.resource_version < before && s.generation >= generation && s.rolled_out
    })
}

/// First deployment: every successful write of a BE, CN or FE proxy object must come after a
/// watched state in which FE had rolled out.
pub fn check_first_deployment(
    audit: &[AuditEntry],
    samples: &[WorkloadSample],
    namespace: &str,
    cluster: &str,
) -> Vec<Violation> {
    let fe = workload_name(cluster, Component::Fe);
    audit
        .iter()
        .filter(|e| e.code < 300 && e.namespace.as_deref() == Some(namespace))
        .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .filter_map(|e| {
            let name = e.name.as_deref()?;
            let component = component_of(cluster, name)?;
            let rv = e.resource_version?;
            (component != Component::Fe && !rolled_out_before(samples, &fe, 1, rv)).then(|| {
                Violation(format!(
                    "{} {name} ({component}) written at resourceVersion {rv} before FE had rolled out",
                    e.verb
                ))
            })
        })
        .collect()
}

/// Tier order of one rollout: every template write of a component of a later tier must come
/// after every template write of the earlier tiers' components, and after a watched state in
/// which each earlier component had rolled out the generation of its last template write.
/// `writes` are the template writes of this rollout only (e.g. after clearing the audit log).
pub fn check_tier_order(
    writes: &[TemplateWrite],
    samples: &[WorkloadSample],
    cluster: &str,
    order: &[Tier],
) -> Vec<Violation> {
    let rank = |c: Component| order.iter().position(|t| *t == c.tier());
    let mut violations = Vec::new();
    for w in writes {
        let Some(k) = rank(w.component) else { continue };
        for earlier in writes
            .iter()
            .filter(|e| rank(e.component).is_some_and(|j| j < k))
        {
            let last = writes
                .iter()
                .filter(|x| x.component == earlier.component)
                .max_by_key(|x| x.resource_version)
                .unwrap_or(earlier);
            if last.resource_version > w.resource_version {
                violations.push(Violation(format!(
                    "{} template written at rv {} ({:?}) before {} finished its own writes (rv {})",
                    w.component,
                    w.resource_version,
                    w.images,
                    last.component,
                    last.resource_version
                )));
            } else if !rolled_out_before(
                samples,
                &workload_name(cluster, last.component),
                last.generation,
                w.resource_version,
            ) {
                violations.push(Violation(format!(
                    "{} template written at rv {} ({:?}) before {} had rolled out generation {}",
                    w.component, w.resource_version, w.images, last.component, last.generation
                )));
            }
        }
    }
    violations.dedup();
    violations
}

/// For each template write of a later tier, the time from the first watched state in which
/// every earlier-tier component had rolled out its last template to that write: how long the
/// operator took to start the next tier. One figure per tier change of the rollout.
pub fn next_tier_latencies(
    writes: &[TemplateWrite],
    samples: &[WorkloadSample],
    cluster: &str,
    order: &[Tier],
) -> Vec<chrono::Duration> {
    let rank = |c: Component| order.iter().position(|t| *t == c.tier());
    let mut out = Vec::new();
    for (k, tier) in order.iter().enumerate().skip(1) {
        let Some(first) = writes
            .iter()
            .filter(|w| w.component.tier() == *tier)
            .min_by_key(|w| w.resource_version)
        else {
            continue;
        };
        let previous: Vec<&TemplateWrite> = Component::ALL
            .iter()
            .filter(|c| rank(**c).is_some_and(|j| j + 1 == k))
            .filter_map(|c| {
                writes
                    .iter()
                    .filter(|w| w.component == *c)
                    .max_by_key(|w| w.resource_version)
            })
            .collect();
        if previous.is_empty() {
            continue;
        }
        // The moment the last of the previous tier's components was seen rolled out.
        let done = previous
            .iter()
            .filter_map(|p| {
                let name = workload_name(cluster, p.component);
                samples
                    .iter()
                    .filter(|s| s.name == name && s.rolled_out && s.generation >= p.generation)
                    .filter(|s| s.resource_version < first.resource_version)
                    .map(|s| s.seen_at)
                    .min()
            })
            .max();
        if let Some(done) = done {
            out.push(first.time - done);
        }
    }
    out
}

/// The template writes as a readable timeline, one line each:
/// `+1.234s  BE  generation 2  [starrocks/be-ubuntu:3.3.5]`, times relative to the first.
pub fn timeline(writes: &[TemplateWrite]) -> String {
    let Some(start) = writes.first().map(|w| w.time) else {
        return "  (no template writes)\n".to_string();
    };
    writes
        .iter()
        .map(|w| {
            let at = (w.time - start).num_milliseconds() as f64 / 1000.0;
            format!(
                "  +{at:>7.3}s  {:<8} generation {:<3} {}\n",
                w.component.to_string(),
                w.generation,
                w.images.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(rv: u64, c: Component, generation: i64) -> TemplateWrite {
        TemplateWrite {
            resource_version: rv,
            time: chrono::DateTime::UNIX_EPOCH,
            component: c,
            generation,
            images: vec![],
        }
    }

    fn sample(rv: u64, name: &str, generation: i64, rolled_out: bool) -> WorkloadSample {
        WorkloadSample {
            resource_version: rv,
            name: name.into(),
            generation,
            seen_at: chrono::DateTime::UNIX_EPOCH,
            rolled_out,
        }
    }

    #[test]
    fn names_map_to_components() {
        assert_eq!(
            component_of("demo", "demo-fe-proxy-service"),
            Some(Component::FeProxy)
        );
        assert_eq!(component_of("demo", "demo-fe-search"), Some(Component::Fe));
        assert_eq!(
            component_of("demo", "demo-cn-autoscaler"),
            Some(Component::Cn)
        );
        assert_eq!(component_of("demo", "demo-fellow"), None);
        assert_eq!(component_of("demo", "other-be"), None);
    }

    #[test]
    fn upgrade_order_passes_only_after_earlier_tiers_rolled_out() {
        let order = [Tier::Be, Tier::Cn, Tier::Fe];
        let writes = [
            write(10, Component::Be, 2),
            write(20, Component::Cn, 2),
            write(30, Component::Fe, 2),
        ];
        let good = [
            sample(15, "demo-be", 2, true),
            sample(25, "demo-cn", 2, true),
        ];
        assert!(check_tier_order(&writes, &good, "demo", &order).is_empty());
        // CN written before BE had rolled out: caught.
        let early = [
            sample(15, "demo-be", 2, false),
            sample(25, "demo-cn", 2, true),
        ];
        let v = check_tier_order(&writes, &early, "demo", &order);
        assert!(
            v.iter().any(|v| v.0.contains("before BE had rolled out")),
            "{v:?}"
        );
        // FE first: caught.
        let fe_first = [
            write(5, Component::Fe, 2),
            write(10, Component::Be, 2),
            write(20, Component::Cn, 2),
        ];
        assert!(!check_tier_order(&fe_first, &good, "demo", &order).is_empty());
    }
}
