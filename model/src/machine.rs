//! The lifecycle state machine (statig, blocking mode) and [`Machine`], the handle the shell
//! and the tests drive.
//!
//! statig holds the current state with its data; the hierarchy keeps shared handling in one
//! place: `managed` replans on a new spec, a restart, a pause or resume; `rolling_out` advances
//! an ordered rollout tier by tier; `provisioning` covers the first deployment. The decisions
//! themselves are the pure functions of [`crate::plan`].

use crate::action::{Action, EventType};
use crate::component::Component;
use crate::event::Event;
use crate::gate::GateFailure;
use crate::knowledge::Knowledge;
use crate::plan::Rules;
use crate::state::{LifecycleState, Rollout};
use statig::blocking::{InitializedStateMachine, IntoStateMachineExt};
use statig::prelude::*;

/// The statig shared storage: the rules the machine decides by.
#[derive(Debug, Default)]
pub struct Lifecycle {
    rules: Rules,
}

#[state_machine(
    initial = "State::starting()",
    state(derive(Debug, Clone, PartialEq, Eq)),
    superstate(derive(Debug))
)]
impl Lifecycle {
    /// No spec yet.
    #[state(superstate = "managed")]
    fn starting(event: &Event) -> Outcome<State> {
        if event.is_progress() { Handled } else { Super }
    }

    /// First deployment, FE being applied.
    #[state(superstate = "provisioning")]
    fn creating(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// First deployment, FE applied and gated.
    #[state(superstate = "provisioning")]
    fn waiting_fe(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// First deployment: any event replans, which keeps BE, CN and the FE proxy back until the
    /// FE gate passes.
    #[superstate(superstate = "managed")]
    fn provisioning(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "rolling_out")]
    fn upgrading_be(rollout: &Rollout, event: &Event) -> Outcome<State> {
        let _ = (rollout, event);
        Super
    }

    #[state(superstate = "rolling_out")]
    fn upgrading_cn(rollout: &Rollout, event: &Event) -> Outcome<State> {
        let _ = (rollout, event);
        Super
    }

    #[state(superstate = "rolling_out")]
    fn upgrading_fe(rollout: &Rollout, event: &Event) -> Outcome<State> {
        let _ = (rollout, event);
        Super
    }

    /// An ordered rollout sticks to its plan on news of the world and only moves forward;
    /// anything that changes the plan is left to `managed`.
    #[superstate(superstate = "managed")]
    fn rolling_out(
        &self,
        rollout: &Rollout,
        context: &mut Knowledge,
        event: &Event,
    ) -> Outcome<State> {
        if event.is_progress() {
            Transition(into_state(self.rules.advance(context, rollout)))
        } else {
            Super
        }
    }

    #[state(superstate = "managed")]
    fn steady(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Nothing happens until resumed; news of the world is only absorbed.
    #[state(superstate = "managed")]
    fn paused(event: &Event) -> Outcome<State> {
        if event.is_progress() { Handled } else { Super }
    }

    /// Nothing happens until the spec changes.
    #[state(superstate = "managed")]
    fn blocked(reason: &crate::state::BlockedReason, event: &Event) -> Outcome<State> {
        let _ = reason;
        if event.is_progress() { Handled } else { Super }
    }

    /// The top: every event not handled below replans from the knowledge.
    #[superstate]
    fn managed(&self, context: &mut Knowledge, event: &Event) -> Outcome<State> {
        let _ = event;
        Transition(into_state(self.rules.replan(context)))
    }
}

fn into_state(state: LifecycleState) -> State {
    match state {
        LifecycleState::Starting => State::starting(),
        LifecycleState::Creating => State::creating(),
        LifecycleState::WaitingFe => State::waiting_fe(),
        LifecycleState::UpgradingBe(r) => State::upgrading_be(r),
        LifecycleState::UpgradingCn(r) => State::upgrading_cn(r),
        LifecycleState::UpgradingFe(r) => State::upgrading_fe(r),
        LifecycleState::Steady => State::steady(),
        LifecycleState::Paused => State::paused(),
        LifecycleState::Blocked(reason) => State::blocked(reason),
    }
}

fn from_state(state: &State) -> LifecycleState {
    match state {
        State::Starting {} => LifecycleState::Starting,
        State::Creating {} => LifecycleState::Creating,
        State::WaitingFe {} => LifecycleState::WaitingFe,
        State::UpgradingBe { rollout } => LifecycleState::UpgradingBe(rollout.clone()),
        State::UpgradingCn { rollout } => LifecycleState::UpgradingCn(rollout.clone()),
        State::UpgradingFe { rollout } => LifecycleState::UpgradingFe(rollout.clone()),
        State::Steady {} => LifecycleState::Steady,
        State::Paused {} => LifecycleState::Paused,
        State::Blocked { reason } => LifecycleState::Blocked(reason.clone()),
    }
}

/// The outcome of one event: the state before and after, and the actions decided, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// State before the event.
    pub before: LifecycleState,
    /// State after the event.
    pub after: LifecycleState,
    /// What the shell must do.
    pub actions: Vec<Action>,
}

/// One cluster's lifecycle: the statig machine plus what it knows. Deterministic: the same
/// events in the same order give the same steps.
pub struct Machine {
    sm: InitializedStateMachine<Lifecycle>,
    knowledge: Knowledge,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("state", &self.state())
            .field("knowledge", &self.knowledge)
            .finish()
    }
}

impl Machine {
    /// A machine in `Starting` with the StarRocks rules.
    pub fn new() -> Machine {
        Machine::with_rules(Rules::default())
    }

    /// A machine with the given rules (tests use wrong rules to prove the checks can fail).
    pub fn with_rules(rules: Rules) -> Machine {
        let mut knowledge = Knowledge::default();
        let sm = Lifecycle { rules }
            .uninitialized_state_machine()
            .init_with_context(&mut knowledge);
        Machine { sm, knowledge }
    }

    /// A machine resumed in `state` with `knowledge`, as a journal checkpoint recorded them.
    pub fn restore(rules: Rules, state: LifecycleState, mut knowledge: Knowledge) -> Machine {
        let mut sm = Lifecycle { rules }.uninitialized_state_machine();
        *sm.state_mut() = into_state(state);
        let sm = sm.init_with_context(&mut knowledge);
        Machine { sm, knowledge }
    }

    /// Feeds one event: absorbs it into the knowledge, lets the state machine transition, then
    /// decides the actions the new state allows. A state change adds a status write and a
    /// Kubernetes Event; entering Blocked makes that Event a Warning that says why.
    pub fn handle(&mut self, event: &Event) -> Step {
        let before = self.state();
        self.knowledge.absorb(event);
        self.sm.handle_with_context(event, &mut self.knowledge);
        let after = self.state();
        let mut actions = Vec::new();
        if before != after {
            actions.push(Action::WriteStatus {
                state: after.clone(),
            });
            let (event_type, reason, message) = match &after {
                crate::state::LifecycleState::Blocked(why) => (
                    EventType::Warning,
                    why.reason().to_string(),
                    why.to_string(),
                ),
                _ => (
                    EventType::Normal,
                    after.name().to_string(),
                    format!("{} -> {}", before, after),
                ),
            };
            actions.push(Action::EmitEvent {
                event_type,
                reason,
                message,
            });
        }
        if let Event::ApplyFailed {
            component, reason, ..
        } = event
        {
            // Retried on the next resync, not at once, so a failing API server is not hammered.
            actions.push(Action::EmitEvent {
                event_type: EventType::Warning,
                reason: "ApplyFailed".to_string(),
                message: format!("applying {component} failed: {reason}; retrying"),
            });
        } else {
            actions.extend(self.rules().actions(&mut self.knowledge, &after));
        }
        Step {
            before,
            after,
            actions,
        }
    }

    /// The rules this machine decides by (held in the statig shared storage).
    pub fn rules(&self) -> Rules {
        self.sm.inner().rules
    }

    /// The current state with its data.
    pub fn state(&self) -> LifecycleState {
        from_state(self.sm.state())
    }

    /// What the machine knows.
    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// What the current rollout or the first deployment waits for, if anything: the first
    /// component of the current tier whose gate fails, and why.
    pub fn waiting_on(&self) -> Option<(Component, GateFailure)> {
        self.rules().waiting_on(&self.knowledge, &self.state())
    }
}
