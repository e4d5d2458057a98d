//! The lifecycle states as plain data: what the journal records, the CR status shows and the
//! planner returns. The statig machine in [`crate::machine`] holds one of these at a time.

use crate::component::Tier;
use crate::version::Direction;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ordered rollout in progress: its direction, the spec generation it rolls out, the tier
/// it is at, and the tiers still to come.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Upgrade (BE, CN, FE) or downgrade (FE, BE, CN).
    pub direction: Direction,
    /// `metadata.generation` of the StarRocksCluster being rolled out.
    pub generation: i64,
    /// The tier being rolled out now.
    pub tier: Tier,
    /// Tiers after this one, in order. Tiers whose components did not change are left out.
    pub remaining: Vec<Tier>,
}

/// Why a cluster is blocked. Nothing is applied until the spec changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason", content = "message")]
pub enum BlockedReason {
    /// The spec failed validation; the message names the field.
    InvalidSpec(String),
    /// Some components would be upgraded and others downgraded in one change.
    MixedDirections(String),
    /// `spec.starRocksFeSpec` is missing: StarRocks cannot run without FE.
    FeSpecRemoved,
}

impl fmt::Display for BlockedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockedReason::InvalidSpec(m) => write!(f, "invalid spec: {m}"),
            BlockedReason::MixedDirections(m) => write!(f, "{m}"),
            BlockedReason::FeSpecRemoved => write!(
                f,
                "spec.starRocksFeSpec is missing; StarRocks needs FE: restore it to resume"
            ),
        }
    }
}

impl BlockedReason {
    /// The condition reason (UpperCamelCase) for the CR status.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockedReason::InvalidSpec(_) => "InvalidSpec",
            BlockedReason::MixedDirections(_) => "MixedDirections",
            BlockedReason::FeSpecRemoved => "FeSpecRemoved",
        }
    }
}

/// A lifecycle state with its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum LifecycleState {
    /// Nothing known yet: no spec has arrived.
    Starting,
    /// First deployment: FE objects are being applied. Only FE may be applied.
    Creating,
    /// FE applied; waiting for its rollout gate. Nothing new is applied.
    WaitingFe,
    /// An ordered rollout at the BE tier. Only BE may be applied.
    UpgradingBe(Rollout),
    /// An ordered rollout at the CN tier. Only CN may be applied.
    UpgradingCn(Rollout),
    /// An ordered rollout at the FE tier. Only FE and the FE proxy may be applied.
    UpgradingFe(Rollout),
    /// Everything desired is applied and no ordered rollout is pending. Changes that need no
    /// ordering (new components once FE is up, replica counts, deletions) are applied here.
    Steady,
    /// The pause annotation is set: nothing is applied; resuming replans from the cluster.
    Paused,
    /// Nothing is applied until the spec changes.
    Blocked(BlockedReason),
}

impl LifecycleState {
    /// The state's name as shown in status and printer columns (`UpgradingBe`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            LifecycleState::Starting => "Starting",
            LifecycleState::Creating => "Creating",
            LifecycleState::WaitingFe => "WaitingFe",
            LifecycleState::UpgradingBe(_) => "UpgradingBe",
            LifecycleState::UpgradingCn(_) => "UpgradingCn",
            LifecycleState::UpgradingFe(_) => "UpgradingFe",
            LifecycleState::Steady => "Steady",
            LifecycleState::Paused => "Paused",
            LifecycleState::Blocked(_) => "Blocked",
        }
    }

    /// The rollout in progress, if any.
    pub fn rollout(&self) -> Option<&Rollout> {
        match self {
            LifecycleState::UpgradingBe(r)
            | LifecycleState::UpgradingCn(r)
            | LifecycleState::UpgradingFe(r) => Some(r),
            _ => None,
        }
    }

    /// The state for a rollout at its current tier.
    pub fn for_rollout(rollout: Rollout) -> LifecycleState {
        match rollout.tier {
            Tier::Be => LifecycleState::UpgradingBe(rollout),
            Tier::Cn => LifecycleState::UpgradingCn(rollout),
            Tier::Fe => LifecycleState::UpgradingFe(rollout),
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleState::Blocked(reason) => write!(f, "Blocked ({})", reason.reason()),
            other => match other.rollout() {
                Some(r) => {
                    write!(
                        f,
                        "{} ({} of generation {}",
                        other.name(),
                        r.direction,
                        r.generation
                    )?;
                    if !r.remaining.is_empty() {
                        let rest: Vec<String> = r.remaining.iter().map(|t| t.to_string()).collect();
                        write!(f, ", then {}", rest.join(", "))?;
                    }
                    write!(f, ")")
                }
                None => f.write_str(other.name()),
            },
        }
    }
}
