//! Whether a reflector cache has had its first complete listing, in a form any number of tasks
//! may wait on at once.
//!
//! Why not kube-runtime's `Store::wait_until_ready`: in kube-runtime 5.0.0 it awaits a
//! `DelayedInit`, which polls a `futures` oneshot receiver, and that receiver keeps the waker of
//! the last task that polled it only. With two reconciles waiting on one unsynced cache, the
//! first one's wakeup is lost and that reconcile never finishes; the controller then never
//! starts another reconcile of the same cluster (it is still "running"), so the cluster is never
//! reconciled. This was a CI failure (a cluster with no status after 60 s, about 2 % of runs of
//! `a_resync_in_steady_state_writes_nothing` under load); `kube_store_readiness_loses_a_waiter`
//! below pins the upstream behaviour. A readiness probe polling `wait_until_ready` with
//! `now_or_never` steals the waker the same way.
//!
//! Here the flag is a `tokio::sync::watch` channel, set by the reflector's own stream at the
//! watcher's first `InitDone` (the point at which the reflector has swapped the complete
//! listing into the cache), and every waiter is woken.

use kube::runtime::watcher;
use tokio::sync::watch;

/// Sets a [`Synced`] flag: feed it every event of the reflector's stream, after the reflector
/// has applied it to the cache.
#[derive(Debug)]
pub struct SyncSetter(watch::Sender<bool>);

/// Whether the cache of a [`SyncSetter`] has had its first complete listing. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Synced(watch::Receiver<bool>);

/// The setter is gone (the reflector stream, and so the controller, was dropped) before the
/// cache was synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cache's reflector stopped before its first complete listing")]
pub struct SetterGone;

/// A new unsynced flag: the setter for the reflector's stream, the reader for the waiters.
pub fn flag() -> (SyncSetter, Synced) {
    let (tx, rx) = watch::channel(false);
    (SyncSetter(tx), Synced(rx))
}

impl SyncSetter {
    /// Marks the cache synced at the watcher's `InitDone`; other events change nothing.
    pub fn observe<K>(&self, event: &watcher::Event<K>) {
        if matches!(event, watcher::Event::InitDone) {
            self.0
                .send_if_modified(|synced| !std::mem::replace(synced, true));
        }
    }
}

impl Synced {
    /// Whether the first complete listing has been applied (does not wait).
    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the first complete listing has been applied; returns at once afterwards.
    ///
    /// # Errors
    /// [`SetterGone`] when the setter was dropped before that.
    pub async fn wait(&self) -> Result<(), SetterGone> {
        let mut rx = self.0.clone();
        rx.wait_for(|synced| *synced)
            .await
            .map(|_| ())
            .map_err(|_| SetterGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::time::Duration;

    const WAKE: Duration = Duration::from_secs(2);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_wakes_at_init_done() {
        let (setter, synced) = flag();
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let synced = synced.clone();
                tokio::spawn(async move { synced.wait().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!synced.is_synced());
        setter.observe(&watcher::Event::<ConfigMap>::Init);
        setter.observe(&watcher::Event::InitApply(ConfigMap::default()));
        assert!(!synced.is_synced(), "only InitDone marks the cache synced");
        setter.observe(&watcher::Event::<ConfigMap>::InitDone);
        for waiter in waiters {
            let woke = tokio::time::timeout(WAKE, waiter).await;
            assert_eq!(woke.ok().and_then(Result::ok), Some(Ok(())));
        }
        assert!(synced.is_synced());
        // A relist later (Init, InitDone again) keeps it synced; a late waiter returns at once.
        setter.observe(&watcher::Event::<ConfigMap>::Init);
        assert!(synced.is_synced());
        assert_eq!(tokio::time::timeout(WAKE, synced.wait()).await, Ok(Ok(())));
    }

    #[tokio::test]
    async fn a_dropped_setter_fails_the_waiters() {
        let (setter, synced) = flag();
        let waiter = tokio::spawn({
            let synced = synced.clone();
            async move { synced.wait().await }
        });
        tokio::task::yield_now().await;
        drop(setter);
        let result = tokio::time::timeout(WAKE, waiter).await;
        assert_eq!(result.ok().and_then(Result::ok), Some(Err(SetterGone)));
    }

    /// A waker that records whether it was woken.
    struct Flag(std::sync::atomic::AtomicBool);

    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(arc_self: &std::sync::Arc<Self>) {
            arc_self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The upstream behaviour this module works around: of two waiters on a kube-runtime
    /// `Store`, each polled once (with its own waker) before the store is ready, only the one
    /// polled last is woken. Polled by hand, so the order does not depend on scheduling. If this
    /// fails after a kube upgrade, the upstream wait may be safe again.
    #[test]
    fn kube_store_readiness_loses_a_waiter() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::{Context, Poll};
        let (store, mut writer) = kube::runtime::reflector::store::<ConfigMap>();
        let mut first = Box::pin(store.wait_until_ready());
        let mut second = Box::pin(store.wait_until_ready());
        let woken_first = Arc::new(Flag(AtomicBool::new(false)));
        let woken_second = Arc::new(Flag(AtomicBool::new(false)));
        let waker_first = futures::task::waker(woken_first.clone());
        let waker_second = futures::task::waker(woken_second.clone());
        assert!(
            first
                .as_mut()
                .poll(&mut Context::from_waker(&waker_first))
                .is_pending()
        );
        assert!(
            second
                .as_mut()
                .poll(&mut Context::from_waker(&waker_second))
                .is_pending()
        );
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        assert!(
            woken_second.0.load(Ordering::SeqCst),
            "the last waiter is woken"
        );
        assert!(
            !woken_first.0.load(Ordering::SeqCst),
            "the first waiter was woken: kube-runtime's Store readiness may no longer lose wakeups"
        );
        // Both would be ready if polled again; the first is simply never told to.
        assert!(matches!(
            first.as_mut().poll(&mut Context::from_waker(&waker_first)),
            Poll::Ready(Ok(()))
        ));
        assert!(matches!(
            second
                .as_mut()
                .poll(&mut Context::from_waker(&waker_second)),
            Poll::Ready(Ok(()))
        ));
    }
}
