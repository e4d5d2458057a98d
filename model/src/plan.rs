//! The decisions: which state the cluster should be in, and which applies that state allows
//! now. Pure functions of [`Knowledge`] and [`Rules`]; the statig machine calls them.

use crate::action::Action;
use crate::component::{Component, Tier};
use crate::gate::{self, GateFailure, LastApply};
use crate::knowledge::Knowledge;
use crate::observe::ComponentObservation;
use crate::spec::DesiredComponent;
use crate::state::{BlockedReason, LifecycleState, Rollout};
use crate::version::{self, Direction};

/// The rollout gate's signature; see [`gate::gate`].
pub type GateFn =
    fn(Option<&ComponentObservation>, &str, Option<&LastApply>) -> Result<(), GateFailure>;

/// The tier order for a direction.
pub type OrderFn = fn(Direction) -> [Tier; 3];

/// The rules the machine decides by. Production code uses [`Rules::default`], the StarRocks
/// rules; tests swap in deliberately wrong rules to show that the property checks catch them.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The rollout gate.
    pub gate: GateFn,
    /// Tier order per direction.
    pub order: OrderFn,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            gate: gate::gate,
            order: starrocks_order,
        }
    }
}

/// The StarRocks order: upgrade BE, CN, FE; downgrade FE, BE, CN (StarRocks upgrade and
/// downgrade guides).
pub fn starrocks_order(direction: Direction) -> [Tier; 3] {
    match direction {
        Direction::Upgrade => [Tier::Be, Tier::Cn, Tier::Fe],
        Direction::Downgrade => [Tier::Fe, Tier::Be, Tier::Cn],
    }
}

impl Rules {
    /// The gate result of `component` against its desired template; `Missing` when the spec
    /// does not have it.
    pub fn gate_of(&self, know: &Knowledge, component: Component) -> Result<(), GateFailure> {
        let desired = know
            .desired
            .as_ref()
            .and_then(|d| d.get(component))
            .ok_or(GateFailure::Missing)?;
        (self.gate)(
            know.observed.get(&component),
            &desired.template_hash,
            know.in_flight
                .get(&component)
                .or_else(|| know.applied.get(&component)),
        )
    }

    /// A component is settled when the spec has it and it passes the gate at the desired
    /// template.
    fn settled(&self, know: &Knowledge, component: Component) -> bool {
        self.gate_of(know, component).is_ok()
    }

    /// A tier is settled when each of its StarRocks components in the spec passes the gate (a
    /// missing one is created by the tier), and so does the FE proxy if it exists (a new proxy
    /// is created in Steady). Existence is never taken from the machine's own bookkeeping
    /// alone: an apply that failed or was superseded can leave the object in the cluster.
    fn tier_settled(&self, know: &Knowledge, tier: Tier) -> bool {
        tier.components()
            .iter()
            .filter(|c| in_spec(know, **c) && (c.is_versioned() || exists(know, **c)))
            .all(|c| self.settled(know, *c))
    }

    /// The first component of the current tier that does not pass the gate, with the reason:
    /// what a rollout waits for.
    pub fn waiting_on(
        &self,
        know: &Knowledge,
        state: &LifecycleState,
    ) -> Option<(Component, GateFailure)> {
        let components: &[Component] = match state {
            LifecycleState::Creating | LifecycleState::WaitingFe => &[Component::Fe],
            other => other.rollout()?.tier.components(),
        };
        components
            .iter()
            .filter(|c| in_spec(know, **c))
            .find_map(|c| self.gate_of(know, *c).err().map(|e| (*c, e)))
    }

    /// Plans from where the cluster is: used on a new spec, on restart, on resume and on every
    /// event outside a rollout.
    pub fn replan(&self, know: &Knowledge) -> LifecycleState {
        if know.paused {
            return LifecycleState::Paused;
        }
        let Some(desired) = &know.desired else {
            return LifecycleState::Starting;
        };
        if let Some(message) = &desired.invalid {
            return LifecycleState::Blocked(BlockedReason::InvalidSpec(message.clone()));
        }
        let Some(fe) = desired.get(Component::Fe) else {
            return LifecycleState::Blocked(BlockedReason::FeSpecRemoved);
        };
        let others_exist = [Component::Be, Component::Cn, Component::FeProxy]
            .iter()
            .any(|c| exists(know, *c));
        if !others_exist && !self.settled(know, Component::Fe) {
            return if at_target(know, Component::Fe, fe) {
                LifecycleState::WaitingFe
            } else {
                LifecycleState::Creating
            };
        }
        // Where each component is: its observed template, or the operator's own newer apply.
        let current: Vec<(Component, String, Option<String>)> = Component::ALL
            .into_iter()
            .filter_map(|c| {
                let (hash, image) = know.current_template(c)?;
                Some((c, hash, image))
            })
            .collect();
        let changed: Vec<&(Component, String, Option<String>)> = current
            .iter()
            .filter(|(c, hash, _)| desired.get(*c).is_some_and(|d| d.template_hash != *hash))
            .collect();
        // A component at its target whose controller has not finished rolling it out (the
        // operator resumed, restarted or replanned mid-tier) keeps a rollout going; an
        // unhealthy pod alone (replicas not ready, no endpoint) does not, and neither does a
        // workload still at generation 1 (see [`rolling_out`]).
        let in_progress = Component::ALL
            .into_iter()
            .any(|c| in_spec(know, c) && exists(know, c) && rolling_out(&self.gate_of(know, c)));
        if changed.is_empty() && !in_progress {
            return LifecycleState::Steady;
        }
        let votes: Vec<(String, String, String)> = changed
            .iter()
            .filter(|(c, _, _)| c.is_versioned())
            .filter_map(|(c, _, image)| {
                let from = image.clone()?;
                let to = desired.get(*c)?.image.clone();
                Some((c.to_string(), from, to))
            })
            .collect();
        let direction = match version::direction(
            votes
                .iter()
                .map(|(n, f, t)| (n.as_str(), f.as_str(), t.as_str())),
        ) {
            Ok(d) => d,
            Err(mixed) => {
                return LifecycleState::Blocked(BlockedReason::MixedDirections(mixed.to_string()));
            }
        };
        let tiers: Vec<Tier> = (self.order)(direction)
            .into_iter()
            .filter(|t| !self.tier_settled(know, *t))
            .collect();
        match tiers.split_first() {
            Some((first, rest)) => LifecycleState::for_rollout(Rollout {
                direction,
                generation: desired.generation,
                tier: *first,
                remaining: rest.to_vec(),
            }),
            None => LifecycleState::Steady,
        }
    }

    /// Advances a rollout: when its tier is settled, moves to the next unsettled tier, and when
    /// none is left, replans (normally to Steady).
    pub fn advance(&self, know: &Knowledge, rollout: &Rollout) -> LifecycleState {
        if !self.tier_settled(know, rollout.tier) {
            return LifecycleState::for_rollout(rollout.clone());
        }
        let mut rest = rollout
            .remaining
            .iter()
            .copied()
            .skip_while(|t| self.tier_settled(know, *t));
        match rest.next() {
            Some(tier) => LifecycleState::for_rollout(Rollout {
                direction: rollout.direction,
                generation: rollout.generation,
                tier,
                remaining: rest.collect(),
            }),
            None => self.replan(know),
        }
    }

    /// The applies and deletes `state` allows now, recording each apply as in flight so that
    /// it is not decided twice.
    pub fn actions(&self, know: &mut Knowledge, state: &LifecycleState) -> Vec<Action> {
        let mut wanted: Vec<Component> = Vec::new();
        let mut actions = Vec::new();
        match state {
            LifecycleState::Creating => wanted.push(Component::Fe),
            LifecycleState::UpgradingBe(r)
            | LifecycleState::UpgradingCn(r)
            | LifecycleState::UpgradingFe(r) => {
                for c in r.tier.components() {
                    // The FE proxy is created in Steady, like any new component.
                    if c.is_versioned() || exists(know, *c) {
                        wanted.push(*c);
                    }
                }
            }
            LifecycleState::Steady => {
                let fe_up = self.settled(know, Component::Fe);
                for c in Component::ALL {
                    if c == Component::Fe || fe_up || exists(know, c) {
                        wanted.push(c);
                    }
                }
                for c in Component::ALL {
                    if know.observed.contains_key(&c)
                        && !in_spec(know, c)
                        && c != Component::Fe
                        && know.deleting.insert(c)
                    {
                        // The object is going away; the record of our apply to it goes too.
                        know.applied.remove(&c);
                        actions.push(Action::Delete { component: c });
                    }
                }
            }
            LifecycleState::Starting
            | LifecycleState::WaitingFe
            | LifecycleState::Paused
            | LifecycleState::Blocked(_) => {}
        }
        for c in wanted {
            let Some(desired) = know.desired.as_ref().and_then(|d| d.get(c)).cloned() else {
                continue;
            };
            if needs_apply(know, c, &desired) {
                know.in_flight.insert(
                    c,
                    LastApply {
                        template_hash: desired.template_hash.clone(),
                        image: desired.image.clone(),
                        generation: None,
                        uid: None,
                    },
                );
                actions.push(Action::Apply {
                    component: c,
                    template_hash: desired.template_hash,
                    replicas: desired.replicas,
                });
            }
        }
        actions
    }
}

/// Whether a gate failure means the workload's controller is replacing pods of an older
/// template: an apply in flight, two revisions, or a generation not yet observed (or a cache
/// older than the operator's apply) above 1. The API server sets `metadata.generation` to 1
/// on create and bumps it on every spec change (Kubernetes API conventions, "metadata"), so a
/// workload at generation 1 still runs the template it was created with: its controller is
/// creating pods, and there is no older revision whose order matters. Counting it made every
/// first deployment whose BE/CN StatefulSet was seen before its controller's first status
/// write go Steady, then UpgradingBe and UpgradingCn ("upgrade of generation 1"), then
/// Steady again (found in the scale bench's journals: 6 in 10 clusters at 100, 99 in 100 at 1,000).
fn rolling_out(gate: &Result<(), GateFailure>) -> bool {
    match gate {
        Err(GateFailure::ApplyInFlight | GateFailure::RevisionMismatch { .. }) => true,
        Err(
            GateFailure::StaleObservation {
                applied_generation: generation,
                ..
            }
            | GateFailure::GenerationNotObserved { generation, .. },
        ) => *generation > 1,
        _ => false,
    }
}

/// The component exists as far as the machine knows: observed, or applied by the operator.
fn exists(know: &Knowledge, component: Component) -> bool {
    know.current_template(component).is_some()
}

fn in_spec(know: &Knowledge, component: Component) -> bool {
    know.desired
        .as_ref()
        .is_some_and(|d| d.get(component).is_some())
}

/// Where the cluster is for the component (see [`Knowledge::current_template`]) is the
/// desired template.
fn at_target(know: &Knowledge, component: Component, desired: &DesiredComponent) -> bool {
    know.current_template(component)
        .is_some_and(|(hash, _)| hash == desired.template_hash)
}

/// Whether the component's object differs from `desired` in a way an apply would fix, and no
/// apply of this template is in flight or just returned but not yet visible in the cache.
fn needs_apply(know: &Knowledge, component: Component, desired: &DesiredComponent) -> bool {
    if know.in_flight.contains_key(&component) {
        return false;
    }
    let last = know
        .applied
        .get(&component)
        .filter(|a| a.template_hash == desired.template_hash);
    let Some(obs) = know.observed.get(&component) else {
        // Not in the cache: create it unless our create has not become visible yet.
        return last.is_none();
    };
    let differs = obs.template_hash.as_deref() != Some(&desired.template_hash)
        || desired.replicas.is_some_and(|r| r != obs.replicas);
    if !differs {
        return false;
    }
    // Apply again unless the cache has not caught up with our write yet.
    last.is_none_or(|a| !a.newer_than(obs))
}
