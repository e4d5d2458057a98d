//! The components of a StarRocks cluster and the rollout tiers they belong to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One workload of a StarRocks cluster, as the upstream CRD names them
/// (`starRocksFeSpec`, `starRocksBeSpec`, `starRocksCnSpec`, `starRocksFeProxySpec`).
///
/// FE, BE and CN run as StatefulSets (`<cluster>-fe`, `<cluster>-be`, `<cluster>-cn`); the FE
/// proxy runs as a Deployment (`<cluster>-fe-proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Component {
    /// Frontend: metadata and query planning.
    Fe,
    /// Backend: storage and execution.
    Be,
    /// Compute node: stateless execution.
    Cn,
    /// nginx in front of FE (Stream Load); rolls with the FE tier.
    FeProxy,
}

impl Component {
    /// Every component, in the fixed order used for iteration and display.
    pub const ALL: [Component; 4] = [
        Component::Fe,
        Component::Be,
        Component::Cn,
        Component::FeProxy,
    ];

    /// The suffix upstream uses in object names: `fe`, `be`, `cn`, `fe-proxy`.
    pub fn suffix(self) -> &'static str {
        match self {
            Component::Fe => "fe",
            Component::Be => "be",
            Component::Cn => "cn",
            Component::FeProxy => "fe-proxy",
        }
    }

    /// The rollout tier this component is rolled in.
    pub fn tier(self) -> Tier {
        match self {
            Component::Fe | Component::FeProxy => Tier::Fe,
            Component::Be => Tier::Be,
            Component::Cn => Tier::Cn,
        }
    }

    /// Whether the component runs StarRocks itself (its image tag carries a StarRocks version).
    /// The FE proxy runs nginx, whose tag says nothing about StarRocks compatibility.
    pub fn is_versioned(self) -> bool {
        !matches!(self, Component::FeProxy)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::Fe => "FE",
            Component::Be => "BE",
            Component::Cn => "CN",
            Component::FeProxy => "FE proxy",
        })
    }
}

/// A step of an ordered rollout. The StarRocks upgrade guide orders them BE, CN, FE; the
/// downgrade guide FE, BE, CN. The FE proxy belongs to the FE tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tier {
    /// FE and the FE proxy.
    Fe,
    /// BE.
    Be,
    /// CN.
    Cn,
}

impl Tier {
    /// The components rolled in this tier, StatefulSet first.
    pub fn components(self) -> &'static [Component] {
        match self {
            Tier::Fe => &[Component::Fe, Component::FeProxy],
            Tier::Be => &[Component::Be],
            Tier::Cn => &[Component::Cn],
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Fe => "FE",
            Tier::Be => "BE",
            Tier::Cn => "CN",
        })
    }
}
