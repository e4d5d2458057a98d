//! The journal: one append-only log of [`Record`]s per cluster, keyed by the cluster's UID.
//!
//! The operator appends the record of each step (event, state before and after, actions) and
//! the append is flushed to disk before the actions run (a step without actions is only
//! written, see [`Durability`]). Kubernetes stays the source of truth:
//! the journal is for audit, offline replay (`starrocks-operator replay`) and fast restart, so
//! a journal that cannot be opened or decoded is moved aside and a fresh one created (see
//! [`SledJournal::open`]), and retention is bounded per cluster (see [`Retention`]).
//!
//! - [`JournalStore`]: the store trait; [`SledJournal`] its sled 0.34 implementation.
//! - [`jsonl`]: JSON Lines export and import, one record per line.
//! - [`replay`]: the `replay` and `journal export` commands as library functions.
//! - [`http`]: the listing and JSON Lines export over HTTP, for a running operator.

pub mod http;
pub mod jsonl;
pub mod replay;
mod sled_store;

pub use sled_store::{OnCorrupt, OpenOptions, Recovery, SledJournal};

use starrocks_model::journal::{Divergence, Record};
use std::fmt;
use std::path::PathBuf;

/// Which cluster a log belongs to: its `metadata.uid` (the log's key) and its
/// `metadata.namespace`/`metadata.name` (so that a log can be found by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterKey {
    /// `metadata.uid` of the StarRocksCluster.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ClusterKey {
    /// A key from its parts.
    pub fn new(
        uid: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> ClusterKey {
        ClusterKey {
            uid: uid.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} (uid {})", self.namespace, self.name, self.uid)
    }
}

/// Splits `NS/NAME` into namespace and name.
///
/// # Errors
/// [`JournalError::BadClusterName`] unless the text is two non-empty parts around one `/`.
pub fn parse_cluster_name(text: &str) -> Result<(String, String), JournalError> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(JournalError::BadClusterName(text.to_string())),
    }
}

/// How many records a cluster's log keeps.
///
/// A log is trimmed back to `max_records` once it holds more than `max_records + slack`
/// records, so that trimming (which replays the dropped records to checkpoint the first kept
/// one) costs O(1) per append on average. A log therefore never holds more than
/// `max_records + slack` records, and holds at least `max_records` once it has grown that far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records kept after a trim; at least 1.
    pub max_records: usize,
    /// Records allowed beyond `max_records` before an append trims.
    pub slack: usize,
}

impl Retention {
    /// Keeps `max_records` (at least 1) with a slack of a quarter of it (at least 1).
    pub fn new(max_records: usize) -> Retention {
        let max_records = max_records.max(1);
        Retention {
            max_records,
            slack: (max_records / 4).max(1),
        }
    }
}

impl Default for Retention {
    /// 10,000 records per cluster: days of a busy cluster's history, a few megabytes.
    fn default() -> Self {
        Retention::new(10_000)
    }
}

/// What a trim did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trimmed {
    /// Records dropped from the front of the log.
    pub dropped: usize,
    /// Records left.
    pub kept: usize,
    /// Whether the first kept record carries a checkpoint (it does unless the dropped
    /// records do not replay with today's model, see `divergence`).
    pub checkpointed: bool,
    /// Set when the dropped records diverge under today's model, so no checkpoint could be
    /// computed: the records were dropped anyway (retention is a hard bound) and a replay of
    /// the log now reports a divergence at its first record, as it would have before.
    pub divergence: Option<Divergence>,
}

/// A cluster's log as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLog {
    /// The cluster.
    pub cluster: ClusterKey,
    /// Sequence numbers of the first and last record held; `None` for an empty log.
    pub seqs: Option<(u64, u64)>,
}

/// When [`JournalStore::append_with`] returns, relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once the records are on disk (flushed). The rule for a record whose step decided
    /// actions: it is durable before they run (DESIGN.md, "The journal").
    Flushed,
    /// Once the records are in the store, before they are on disk. They become durable with
    /// the next flushed append of any cluster (the store's log is one sequence, and a flush
    /// makes all of it durable up to that point), or with the store's background flush (sled:
    /// every 500 ms), whichever is first; a crash before that loses them, and only them and
    /// the records after them, so a log never has a gap. For the record of a step that decided
    /// no action: nothing acts on it, so losing it loses no decision, and Kubernetes and the
    /// cluster's status still hold the state.
    Written,
}

impl Durability {
    /// What the record of a step needs: [`Durability::Flushed`] when the step decided actions
    /// (they run once the append returns), [`Durability::Written`] when it decided none.
    pub fn for_record(record: &Record) -> Durability {
        if record.actions.is_empty() {
            Durability::Written
        } else {
            Durability::Flushed
        }
    }
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// The records' encoded size in bytes (their JSON, as stored, without the store's own
    /// overhead).
    pub bytes: u64,
}

/// A store of per-cluster append-only logs of journal records.
///
/// Implementations are safe to share between threads; each method is atomic for its cluster.
pub trait JournalStore {
    /// Appends `records` (in order) to the log of `cluster`, and records `cluster`'s
    /// namespace/name for [`JournalStore::uid_of`], returning as `durability` says. Sequence
    /// numbers must continue the log without gaps (the first record of an empty log may have
    /// any number). May trim the log to the store's retention.
    ///
    /// # Errors
    /// [`JournalError::SeqGap`] when a sequence number does not follow the previous one (nothing
    /// is written); [`JournalError::Store`] or [`JournalError::Encode`] when writing fails.
    fn append_with(
        &self,
        cluster: &ClusterKey,
        records: &[Record],
        durability: Durability,
    ) -> Result<Appended, JournalError>;

    /// [`JournalStore::append_with`] that returns once the records are durable
    /// ([`Durability::Flushed`]).
    ///
    /// # Errors
    /// As [`JournalStore::append_with`].
    fn append(&self, cluster: &ClusterKey, records: &[Record]) -> Result<(), JournalError> {
        self.append_with(cluster, records, Durability::Flushed)
            .map(|_| ())
    }

    /// The records of the cluster with `uid`, in sequence order; empty when there is no log.
    ///
    /// # Errors
    /// [`JournalError::Decode`] for a record that does not decode; [`JournalError::Store`].
    fn read(&self, uid: &str) -> Result<Vec<Record>, JournalError>;

    /// Every cluster with a log, ordered by namespace, name and UID.
    ///
    /// # Errors
    /// [`JournalError::Store`], [`JournalError::Decode`].
    fn clusters(&self) -> Result<Vec<ClusterLog>, JournalError>;

    /// The UID of the latest cluster appended to under `namespace`/`name`, if any.
    ///
    /// # Errors
    /// [`JournalError::Store`].
    fn uid_of(&self, namespace: &str, name: &str) -> Result<Option<String>, JournalError>;

    /// Drops records from the front of the cluster's log so that at most `max_records` (at
    /// least 1) remain, checkpointing the first kept record with the machine's knowledge
    /// before it, so that the trimmed log still replays.
    ///
    /// # Errors
    /// [`JournalError::Decode`], [`JournalError::Encode`], [`JournalError::Store`].
    fn trim(&self, uid: &str, max_records: usize) -> Result<Trimmed, JournalError>;

    /// Removes the cluster's log and its name. Returns whether there was one.
    ///
    /// # Errors
    /// [`JournalError::Store`].
    fn remove(&self, uid: &str) -> Result<bool, JournalError>;
}

/// Errors of the journal store and its commands. Each message says what happened and, where
/// the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The storage engine failed.
    #[error("journal store error at {path}: {source}")]
    Store {
        /// The journal directory.
        path: PathBuf,
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// The journal directory is locked by another process.
    #[error(
        "the journal at {path} is in use by another process (a running operator?): stop it, \
         copy the directory and point --journal at the copy, or export the log from the running operator"
    )]
    Locked {
        /// The journal directory.
        path: PathBuf,
    },
    /// The journal cannot be opened or decoded, and was not moved aside (see
    /// [`OnCorrupt::Fail`]).
    #[error(
        "the journal at {path} cannot be read: {reason}; it may be corrupt or written by a \
         newer operator: the operator moves such a journal aside and starts a fresh one"
    )]
    Corrupt {
        /// The journal directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The directory does not exist (commands never create a journal).
    #[error(
        "no journal at {0}: pass the directory the operator was started with (`run --journal`)"
    )]
    NotFound(PathBuf),
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `moving aside`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record does not decode.
    #[error("record {seq} of cluster {uid} does not decode: {source}")]
    Decode {
        /// Cluster UID.
        uid: String,
        /// The record's key (sequence number).
        seq: u64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A record does not encode.
    #[error("record {seq} does not encode: {source}")]
    Encode {
        /// The record's sequence number.
        seq: u64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A line of a JSON Lines file is not a record.
    #[error(
        "{source_name} line {line}: not a journal record: {source}; a JSON Lines export \
         holds one record per line, as `journal export` writes it"
    )]
    BadLine {
        /// The file name, or `input`.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// An append would leave a gap or go backwards in the log.
    #[error(
        "cluster {uid}: record seq {got} does not follow the log (expected {expected}); nothing \
         was written"
    )]
    SeqGap {
        /// Cluster UID.
        uid: String,
        /// The next sequence number the log expects.
        expected: u64,
        /// The sequence number offered.
        got: u64,
    },
    /// `--cluster` is not `NS/NAME`.
    #[error("`{0}` is not NAMESPACE/NAME (or a cluster UID)")]
    BadClusterName(String),
    /// No log for the named cluster.
    #[error("the journal has no log for cluster {wanted}; it has: {known}")]
    UnknownCluster {
        /// What was asked for.
        wanted: String,
        /// The clusters the journal has, comma-separated, or `none`.
        known: String,
    },
}
