//! The StarRocks operator: the imperative shell around the pure lifecycle model in
//! [`starrocks_model`]. It observes the cluster, asks the model what to do, applies it and
//! reports status.

pub mod cli;
pub mod crd;
pub mod journal;
pub mod render;
pub mod validate;
