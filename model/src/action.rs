//! The typed outputs of the lifecycle machine: what the shell must do.

use crate::component::Component;
use crate::state::LifecycleState;
use serde::{Deserialize, Serialize};

/// Kubernetes Event type (`core/v1` Event `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// One thing the shell must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    /// Server-side apply the component's objects as rendered from the spec whose template hash
    /// is `template_hash`; report back with `ApplyFinished` or `ApplyFailed`.
    Apply {
        /// Which component.
        component: Component,
        /// The template hash of the render to apply.
        template_hash: String,
        /// The replica count to apply; `None` leaves it to the autoscaler.
        replicas: Option<i32>,
    },
    /// Delete the component's objects (the spec no longer has it).
    Delete {
        /// Which component.
        component: Component,
    },
    /// Write the lifecycle state into the StarRocksCluster status.
    WriteStatus {
        /// The state to record.
        state: LifecycleState,
    },
    /// Emit a Kubernetes Event on the StarRocksCluster.
    EmitEvent {
        /// `Normal` or `Warning`.
        event_type: EventType,
        /// The Event's `reason` (UpperCamelCase).
        reason: String,
        /// The Event's `message`.
        message: String,
    },
}

impl Action {
    /// The component an `Apply` or `Delete` touches.
    pub fn component(&self) -> Option<Component> {
        match self {
            Action::Apply { component, .. } | Action::Delete { component } => Some(*component),
            _ => None,
        }
    }
}
