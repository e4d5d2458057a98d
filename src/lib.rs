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
