//! The lifecycle model of a StarRocks cluster on Kubernetes: a pure, deterministic state
//! machine that turns typed events (spec changes, observations, apply results) into typed
//! actions (apply, delete, write status, emit an Event), enforcing the order the StarRocks
//! upgrade and downgrade guides require: on first deployment FE before BE, CN and the FE proxy;
//! on upgrade BE, then CN, then FE; on downgrade FE, then BE, then CN.
//!
//! No I/O, no clock, no kube client: the operator (`src/`) observes and applies; this crate
//! decides. Journal records ([`journal`]) make every decision replayable offline.

pub mod action;
pub mod component;
pub mod event;
pub mod gate;
pub mod journal;
pub mod knowledge;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod spec;
pub mod state;
pub mod version;

pub use action::{Action, EventType};
pub use component::{Component, Tier};
pub use event::Event;
pub use gate::{GateFailure, LastApply, gate};
pub use knowledge::Knowledge;
pub use machine::{Machine, Step};
pub use observe::{ClusterObservation, ComponentObservation, diff};
pub use plan::Rules;
pub use spec::{DesiredCluster, DesiredComponent};
pub use state::{BlockedReason, LifecycleState, Rollout};
pub use version::{Direction, Version};
