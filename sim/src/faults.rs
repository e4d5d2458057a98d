//! Fault injection, switchable at run time: latency, a fraction of 409/500 answers per verb and
//! resource, dropped watch connections and `410 Gone` on the next watch (of any resource or
//! of one).
//!
//! Fractions are applied deterministically (an accumulator per rule: with fraction 0.25 every
//! fourth matching request fails), so tests are reproducible.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock;

/// Which error an error rule injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedError {
    /// 409 Conflict (as a stale resourceVersion would).
    Conflict,
    /// 500 InternalError.
    Internal,
}

#[derive(Debug, Clone)]
struct Rule {
    verb: String,
    resource: String,
    error: InjectedError,
    fraction: f64,
    acc: f64,
}

#[derive(Debug, Default)]
struct Inner {
    latency: Duration,
    rules: Vec<Rule>,
    /// The resource (plural, or `*` for any) whose next watch gets `410 Expired`.
    expire_next_watch: Option<String>,
}

/// Handle to the fault switches; clones share state.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
    drop_watches: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            inner: Arc::default(),
            drop_watches: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl Faults {
    /// Adds a delay before every request is handled (0 to disable).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner).latency = latency;
    }

    /// The current added latency.
    pub fn latency(&self) -> Duration {
        lock(&self.inner).latency
    }

    /// Makes `fraction` (0.0..=1.0) of the requests with this verb (`get`, `list`, `create`,
    /// `update`, `patch`, `delete`, `watch`, or `*`) on this resource (plural, or `*`) fail with
    /// `error`. Replaces an earlier rule for the same verb, resource and error.
    pub fn set_error_rate(&self, verb: &str, resource: &str, error: InjectedError, fraction: f64) {
        let mut g = lock(&self.inner);
        g.rules
            .retain(|r| !(r.verb == verb && r.resource == resource && r.error == error));
        if fraction > 0.0 {
            g.rules.push(Rule {
                verb: verb.into(),
                resource: resource.into(),
                error,
                fraction: fraction.min(1.0),
                acc: 0.0,
            });
        }
    }

    /// Removes every error rule and the latency.
    pub fn clear(&self) {
        let mut g = lock(&self.inner);
        g.rules.clear();
        g.latency = Duration::ZERO;
        g.expire_next_watch = None;
    }

    /// Closes every open watch connection now (clients see the stream end and re-watch).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// The next watch request is answered with an `ERROR` event carrying `410 Expired`.
    pub fn expire_next_watch(&self) {
        self.expire_next_watch_on("*");
    }

    /// The next watch request on `resource` (plural, e.g. `statefulsets`; `*` for any) is
    /// answered with an `ERROR` event carrying `410 Expired`: that client must relist.
    pub fn expire_next_watch_on(&self, resource: &str) {
        lock(&self.inner).expire_next_watch = Some(resource.to_string());
    }

    /// Takes the "expire next watch" switch if it applies to a watch on `resource` (true once
    /// after [`Faults::expire_next_watch_on`] for it or for `*`).
    pub fn take_expire_next_watch(&self, resource: &str) -> bool {
        let mut g = lock(&self.inner);
        let applies = g
            .expire_next_watch
            .as_deref()
            .is_some_and(|r| r == "*" || r == resource);
        if applies {
            g.expire_next_watch = None;
        }
        applies
    }

    /// A receiver that changes whenever [`Faults::drop_watches`] is called.
    pub fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }

    /// Decides whether this request fails, advancing the matching rules' accumulators.
    pub fn roll(&self, verb: &str, resource: &str) -> Option<InjectedError> {
        let mut g = lock(&self.inner);
        for r in g.rules.iter_mut() {
            if (r.verb == "*" || r.verb == verb) && (r.resource == "*" || r.resource == resource) {
                r.acc += r.fraction;
                if r.acc >= 1.0 - 1e-9 {
                    r.acc -= 1.0;
                    return Some(r.error);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_deterministic() {
        let f = Faults::default();
        f.set_error_rate("patch", "statefulsets", InjectedError::Internal, 0.5);
        let hits: Vec<bool> = (0..4)
            .map(|_| f.roll("patch", "statefulsets").is_some())
            .collect();
        assert_eq!(hits, vec![false, true, false, true]);
        assert!(f.roll("get", "statefulsets").is_none());
        f.expire_next_watch();
        assert!(f.take_expire_next_watch("pods"));
        assert!(!f.take_expire_next_watch("pods"));
        f.expire_next_watch_on("statefulsets");
        assert!(
            !f.take_expire_next_watch("pods"),
            "another resource's watch"
        );
        assert!(f.take_expire_next_watch("statefulsets"));
        assert!(!f.take_expire_next_watch("statefulsets"));
    }
}
