//! Journal records and replay.
//!
//! Each event the machine handles becomes a [`Record`]: sequence number, time, the event, the
//! state before and after, and the actions decided. The operator writes the record before it
//! runs the actions. [`replay`] re-runs records through today's model and reports the first
//! record where it decides differently.
//!
//! Records hold spec facts (template hashes, images, replica counts) and observed status;
//! never secret values.

use crate::action::Action;
use crate::event::Event;
use crate::knowledge::Knowledge;
use crate::machine::{Machine, Step};
use crate::plan::Rules;
use crate::state::LifecycleState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The record format written by this version. Readers accept records with a format number up
/// to this one and refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;

/// One journaled step of a cluster's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Record format ([`FORMAT_VERSION`] when written by this version).
    pub format: u32,
    /// Position in the cluster's log, from 0, without gaps.
    pub seq: u64,
    /// When the shell handled the event (UTC).
    pub time: DateTime<Utc>,
    /// The event.
    pub event: Event,
    /// State before the event.
    pub before: LifecycleState,
    /// State after the event.
    pub after: LifecycleState,
    /// Actions decided, in order.
    pub actions: Vec<Action>,
    /// The machine's knowledge before the event; written now and then so that a log whose
    /// oldest records were dropped by retention can still be replayed from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Box<Knowledge>>,
}

impl Record {
    /// A record of `step`, the outcome of `event`.
    pub fn new(seq: u64, time: DateTime<Utc>, event: Event, step: Step) -> Record {
        Record {
            format: FORMAT_VERSION,
            seq,
            time,
            event,
            before: step.before,
            after: step.after,
            actions: step.actions,
            checkpoint: None,
        }
    }
}

/// Where and how a replay first decided differently from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Sequence number of the divergent record.
    pub seq: u64,
    /// Index of the record in the replayed sequence.
    pub index: usize,
    /// What differs.
    pub kind: DivergenceKind,
}

/// What differs at a divergent record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DivergenceKind {
    /// The record's format is newer than this model reads.
    UnsupportedFormat(u32),
    /// The state before the event differs (the log does not start where the model is).
    Before {
        /// Recorded.
        recorded: LifecycleState,
        /// Replayed.
        replayed: LifecycleState,
    },
    /// The state after the event differs.
    After {
        /// Recorded.
        recorded: LifecycleState,
        /// Replayed.
        replayed: LifecycleState,
    },
    /// The actions differ.
    Actions {
        /// Recorded.
        recorded: Vec<Action>,
        /// Replayed.
        replayed: Vec<Action>,
    },
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} (seq {}): ", self.index, self.seq)?;
        match &self.kind {
            DivergenceKind::UnsupportedFormat(v) => write!(
                f,
                "record format {v} is newer than this operator reads ({FORMAT_VERSION}); use a newer operator"
            ),
            DivergenceKind::Before { recorded, replayed } => write!(
                f,
                "the log says the cluster was {recorded} before this event, today's model has it {replayed}"
            ),
            DivergenceKind::After { recorded, replayed } => write!(
                f,
                "recorded state after the event {recorded}, today's model decides {replayed}"
            ),
            DivergenceKind::Actions { recorded, replayed } => write!(
                f,
                "recorded actions {recorded:?}, today's model decides {replayed:?}"
            ),
        }
    }
}

impl std::error::Error for Divergence {}

/// Replays `records` through a fresh machine with the StarRocks rules. Returns the machine at
/// the end, or the first divergence. A log that starts with a checkpoint starts from it.
pub fn replay<'a>(records: impl IntoIterator<Item = &'a Record>) -> Result<Machine, Divergence> {
    replay_with(Rules::default(), records, |_, _| {})
}

/// [`replay`] with explicit rules, calling `on_step` with each record and the replayed step
/// (for printing a timeline).
pub fn replay_with<'a>(
    rules: Rules,
    records: impl IntoIterator<Item = &'a Record>,
    mut on_step: impl FnMut(&Record, &Step),
) -> Result<Machine, Divergence> {
    let mut machine = Machine::with_rules(rules);
    for (index, record) in records.into_iter().enumerate() {
        let diverged = |kind| Divergence {
            seq: record.seq,
            index,
            kind,
        };
        if record.format > FORMAT_VERSION {
            return Err(diverged(DivergenceKind::UnsupportedFormat(record.format)));
        }
        if index == 0
            && let Some(knowledge) = &record.checkpoint
        {
            machine = Machine::restore(rules, record.before.clone(), (**knowledge).clone());
        }
        let before = machine.state();
        if before != record.before {
            return Err(diverged(DivergenceKind::Before {
                recorded: record.before.clone(),
                replayed: before,
            }));
        }
        let step = machine.handle(&record.event);
        on_step(record, &step);
        if step.after != record.after {
            return Err(diverged(DivergenceKind::After {
                recorded: record.after.clone(),
                replayed: step.after,
            }));
        }
        if step.actions != record.actions {
            return Err(diverged(DivergenceKind::Actions {
                recorded: record.actions.clone(),
                replayed: step.actions,
            }));
        }
    }
    Ok(machine)
}
