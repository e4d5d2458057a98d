//! Ordering of StarRocks image tags and the rollout direction rule.
//!
//! StarRocks publishes images tagged `3.3.2`, `3.3-latest` (the newest 3.3 patch), `latest`,
//! and sometimes suffixed tags (`3.3.2-rc01`, `3.3.2-ubuntu`). The StarRocks upgrade guide
//! requires BE and CN before FE on upgrade and FE first on downgrade; this module decides which
//! of the two a change is. Tags that cannot be ordered (digests, arbitrary names) give no
//! direction and roll in upgrade order (DESIGN.md, "Direction").

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// A StarRocks version read from an image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A numbered release: `3.3.2` is `[3, 3, 2]`. `series_latest` marks `3.3-latest`, which is
    /// newer than every `3.3.x`. `pre` holds a pre-release suffix (`rc01`, `beta1`), which
    /// orders before the release itself.
    Release {
        /// Numeric parts, at most four.
        parts: Vec<u64>,
        /// `<parts>-latest`: the newest release of that series.
        series_latest: bool,
        /// Pre-release suffix, lower-cased.
        pre: Option<String>,
    },
    /// The tag `latest`: newer than every numbered release.
    Latest,
    /// A digest-pinned image or a tag with no version in it: orders with nothing.
    Unordered(String),
}

impl Version {
    /// Reads the version from an image reference such as
    /// `registry:5000/starrocks/fe-ubuntu:3.3.2` or `starrocks/be-ubuntu@sha256:...`.
    /// A reference without a tag reads as `latest`, as the container runtime resolves it.
    pub fn from_image(image: &str) -> Version {
        if let Some((_, digest)) = image.split_once('@') {
            return Version::Unordered(digest.to_string());
        }
        // The tag is after the last ':' that follows the last '/', so that a registry port is
        // not taken for a tag.
        let last_segment = image.rsplit('/').next().unwrap_or(image);
        match last_segment.rsplit_once(':') {
            Some((_, tag)) => Version::from_tag(tag),
            None => Version::Latest,
        }
    }

    /// Reads a version from a bare tag (`3.3.2`, `3.3-latest`, `latest`, `3.3.2-rc01`).
    pub fn from_tag(tag: &str) -> Version {
        let tag = tag.trim();
        let lower = tag.to_ascii_lowercase();
        if lower == "latest" {
            return Version::Latest;
        }
        let unversioned = lower.strip_prefix('v').unwrap_or(&lower);
        let (numbers, suffix) = match unversioned.split_once('-') {
            Some((n, s)) => (n, Some(s)),
            None => (unversioned, None),
        };
        let parts: Option<Vec<u64>> = numbers.split('.').map(|p| p.parse().ok()).collect();
        let parts = match parts {
            Some(parts) if !parts.is_empty() && parts.len() <= 4 => parts,
            _ => return Version::Unordered(tag.to_string()),
        };
        let (series_latest, pre) = match suffix {
            None => (false, None),
            Some("latest") => (true, None),
            Some(s) if is_pre_release(s) => (false, Some(s.to_string())),
            // Distribution suffixes (`-ubuntu`, `-centos`) do not change the version.
            Some(_) => (false, None),
        };
        Version::Release {
            parts,
            series_latest,
            pre,
        }
    }

    /// Compares two versions; `None` when they cannot be ordered (a digest or an unversioned
    /// tag on either side, unless both are the identical string).
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        use Version::*;
        match (self, other) {
            (Latest, Latest) => Some(Ordering::Equal),
            (Latest, Release { .. }) => Some(Ordering::Greater),
            (Release { .. }, Latest) => Some(Ordering::Less),
            (Unordered(a), Unordered(b)) if a == b => Some(Ordering::Equal),
            (Unordered(_), _) | (_, Unordered(_)) => None,
            (
                Release {
                    parts: a,
                    series_latest: la,
                    pre: pa,
                },
                Release {
                    parts: b,
                    series_latest: lb,
                    pre: pb,
                },
            ) => Some(compare_release(
                (a, *la, pa.as_deref()),
                (b, *lb, pb.as_deref()),
            )),
        }
    }
}

fn is_pre_release(suffix: &str) -> bool {
    ["rc", "alpha", "beta", "pre", "dev", "snapshot"]
        .iter()
        .any(|p| suffix.starts_with(p))
}

type ReleaseKey<'a> = (&'a [u64], bool, Option<&'a str>);

fn compare_release(a: ReleaseKey<'_>, b: ReleaseKey<'_>) -> Ordering {
    let (pa, la, prea) = a;
    let (pb, lb, preb) = b;
    let common = pa.len().min(pb.len());
    match pa[..common].cmp(&pb[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    // Same common prefix: `3.3-latest` is above any `3.3.x`; otherwise missing parts are zero.
    match (la, lb) {
        (true, true) if pa.len() == pb.len() => return Ordering::Equal,
        (true, _) if pa.len() <= pb.len() => return Ordering::Greater,
        (_, true) if pb.len() <= pa.len() => return Ordering::Less,
        _ => {}
    }
    let width = pa.len().max(pb.len());
    let get = |p: &[u64], i: usize| p.get(i).copied().unwrap_or(0);
    for i in common..width {
        match get(pa, i).cmp(&get(pb, i)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (prea, preb) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

/// The direction of a change, decided over the versioned components that change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Versions go up, stay the same (config or resource change), or cannot be ordered:
    /// BE, then CN, then FE.
    Upgrade,
    /// At least one version goes down and none goes up: FE, then BE, then CN.
    Downgrade,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
        })
    }
}

/// Why no direction could be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "mixed directions: {up} would be upgraded while {down} would be downgraded; change the images so that all go the same way"
)]
pub struct MixedDirections {
    /// A component whose version goes up, with from and to images.
    pub up: String,
    /// A component whose version goes down, with from and to images.
    pub down: String,
}

/// Decides the direction of a change from `(component name, current image, desired image)`
/// triples. Any component going down makes it a downgrade; components going both ways are an
/// error; unordered or equal versions do not vote.
pub fn direction<'a>(
    changes: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Result<Direction, MixedDirections> {
    let mut up = None;
    let mut down = None;
    for (name, from, to) in changes {
        let ordering = Version::from_image(from).compare(&Version::from_image(to));
        let describe = || format!("{name} ({from} -> {to})");
        match ordering {
            Some(Ordering::Less) if up.is_none() => up = Some(describe()),
            Some(Ordering::Greater) if down.is_none() => down = Some(describe()),
            _ => {}
        }
    }
    match (up, down) {
        (Some(up), Some(down)) => Err(MixedDirections { up, down }),
        (_, Some(_)) => Ok(Direction::Downgrade),
        _ => Ok(Direction::Upgrade),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Option<Ordering> {
        Version::from_image(a).compare(&Version::from_image(b))
    }

    #[test]
    fn numbered_releases_order_numerically() {
        assert_eq!(cmp("fe:3.3.2", "fe:3.3.10"), Some(Ordering::Less));
        assert_eq!(cmp("fe:3.4.0", "fe:3.3.10"), Some(Ordering::Greater));
        assert_eq!(cmp("fe:3.3", "fe:3.3.0"), Some(Ordering::Equal));
        assert_eq!(cmp("fe:v3.3.2", "fe:3.3.2"), Some(Ordering::Equal));
    }

    #[test]
    fn series_latest_is_above_its_series_and_below_the_next() {
        assert_eq!(cmp("fe:3.3-latest", "fe:3.3.9"), Some(Ordering::Greater));
        assert_eq!(cmp("fe:3.3-latest", "fe:3.4.0"), Some(Ordering::Less));
        assert_eq!(
            cmp("fe:4.1-latest", "fe:3.3-latest"),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp("fe:3.3-latest", "fe:3.3-latest"), Some(Ordering::Equal));
    }

    #[test]
    fn latest_is_above_every_release_and_untagged_means_latest() {
        assert_eq!(cmp("fe:latest", "fe:9.9.9"), Some(Ordering::Greater));
        assert_eq!(
            cmp("starrocks/fe-ubuntu", "fe:latest"),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp("registry:5000/fe", "fe:3.3.2"), Some(Ordering::Greater));
    }

    #[test]
    fn pre_releases_order_before_the_release_and_distro_suffixes_are_ignored() {
        assert_eq!(cmp("fe:3.3.2-rc01", "fe:3.3.2"), Some(Ordering::Less));
        assert_eq!(cmp("fe:3.3.2-ubuntu", "fe:3.3.2"), Some(Ordering::Equal));
    }

    #[test]
    fn digests_and_names_do_not_order() {
        assert_eq!(cmp("fe@sha256:abc", "fe:3.3.2"), None);
        assert_eq!(cmp("fe:nightly", "fe:3.3.2"), None);
        assert_eq!(cmp("fe@sha256:abc", "fe@sha256:abc"), Some(Ordering::Equal));
    }

    #[test]
    fn direction_rule() {
        assert_eq!(
            direction([
                ("BE", "be:3.3.2", "be:3.4.0"),
                ("FE", "fe:3.3.2", "fe:3.4.0")
            ]),
            Ok(Direction::Upgrade)
        );
        assert_eq!(
            direction([
                ("BE", "be:3.4.0", "be:3.3.2"),
                ("FE", "fe:3.4.0", "fe:3.4.0")
            ]),
            Ok(Direction::Downgrade)
        );
        assert_eq!(
            direction([("FE", "fe:3.3.2", "fe@sha256:1")]),
            Ok(Direction::Upgrade)
        );
        let mixed = direction([
            ("BE", "be:3.4.0", "be:3.3.2"),
            ("FE", "fe:3.3.0", "fe:3.3.2"),
        ]);
        let err = mixed.expect_err("mixed directions must be rejected");
        assert!(err.to_string().contains("FE (fe:3.3.0 -> fe:3.3.2)"));
        assert!(err.to_string().contains("BE (be:3.4.0 -> be:3.3.2)"));
    }
}
