//! The StarRocks operator: the imperative shell around the pure lifecycle model in
//! [`starrocks_model`]. It observes the cluster, asks the model what to do, applies it and
//! reports status.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod demo;
pub mod embedded;
pub mod journal;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod run;
pub mod validate;
pub mod witness;

/// Locks a mutex, recovering the data if a thread panicked while holding it: every critical
/// section in this crate leaves the data consistent, so a poisoned lock carries no broken
/// invariant.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A spawned task that is aborted when this handle is dropped, so that a task spawned by a
/// future ends with it even when that future is dropped (a killed operator) rather than
/// finishing.
pub(crate) struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    pub(crate) fn new(task: tokio::task::JoinHandle<T>) -> Self {
        AbortOnDrop(Some(task))
    }

    /// The task's handle, no longer aborted on drop (to wait for it to finish).
    pub(crate) fn into_inner(mut self) -> tokio::task::JoinHandle<T> {
        match self.0.take() {
            Some(task) => task,
            // `new` always sets it and only `into_inner` (which consumes) takes it.
            None => unreachable!("AbortOnDrop holds its task until into_inner"),
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}
