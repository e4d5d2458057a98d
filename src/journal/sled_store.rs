//! The sled 0.34 implementation of [`JournalStore`].
//!
//! Layout of the sled database (one directory):
//! - tree `clusters`: cluster UID -> `namespace/name` (UTF-8);
//! - tree `names`: `namespace/name` -> UID of the latest cluster of that name;
//! - tree `log/<uid>`: one per cluster, big-endian `u64` sequence number -> the record as
//!   JSON ([`Record`] with serde_json).

use super::{
    Appended, ClusterKey, ClusterLog, Durability, JournalError, JournalStore, Retention, Trimmed,
};
use starrocks_model::Rules;
use starrocks_model::journal::{Divergence, DivergenceKind, Record, replay_with};
use std::fmt;
use std::io::ErrorKind;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const CLUSTERS: &str = "clusters";
const NAMES: &str = "names";
const LOG_PREFIX: &str = "log/";

/// What [`SledJournal::open`] does with a journal that cannot be opened or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Rename the directory to `<dir>.corrupt-<UTC timestamp>` and create a fresh journal;
    /// the operator's choice (Kubernetes stays the source of truth).
    #[default]
    MoveAside,
    /// Return [`JournalError::Corrupt`] and leave the directory as it is; the offline
    /// commands' choice.
    Fail,
}

/// How to open a [`SledJournal`].
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Create the directory when it does not exist; otherwise a missing directory is
    /// [`JournalError::NotFound`].
    pub create: bool,
    /// What to do with a journal that cannot be opened or decoded.
    pub on_corrupt: OnCorrupt,
    /// Per-cluster retention applied on append; `None` keeps everything.
    pub retention: Option<Retention>,
    /// The rules trimming replays with to compute checkpoints.
    pub rules: Rules,
}

impl Default for OpenOptions {
    /// The operator's options: create, move a corrupt journal aside, default retention.
    fn default() -> Self {
        OpenOptions {
            create: true,
            on_corrupt: OnCorrupt::MoveAside,
            retention: Some(Retention::default()),
            rules: Rules::default(),
        }
    }
}

impl OpenOptions {
    /// The offline commands' options: never create, never move aside, never trim.
    pub fn read_only() -> OpenOptions {
        OpenOptions {
            create: false,
            on_corrupt: OnCorrupt::Fail,
            retention: None,
            rules: Rules::default(),
        }
    }
}

/// The notice that a journal was moved aside and a fresh one created; the caller logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The journal directory (now holding the fresh journal).
    pub path: PathBuf,
    /// Where the unreadable journal was moved.
    pub moved_to: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the journal at {} could not be opened or decoded ({}); it was moved to {} and a \
             fresh journal was created: cluster state is rebuilt from status and observation",
            self.path.display(),
            self.reason,
            self.moved_to.display()
        )
    }
}

/// A [`JournalStore`] in a sled database directory. Appends are flushed before they return,
/// unless asked not to ([`Durability::Written`]).
///
/// Writes (append, trim, remove) are serialised by a lock, so the store may be shared between
/// threads; their flush to disk is not (see [`JournalStore::append`] on this type).
pub struct SledJournal {
    path: PathBuf,
    db: sled::Db,
    clusters: sled::Tree,
    names: sled::Tree,
    retention: Option<Retention>,
    rules: Rules,
    writes: Mutex<()>,
}

impl fmt::Debug for SledJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledJournal")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Why an open failed, before deciding what to do about it.
enum OpenFailure {
    Locked,
    Corrupt(String),
    Other(JournalError),
}

impl SledJournal {
    /// Opens (or creates, with `options.create`) the journal in directory `path`, and checks
    /// that every record decodes. A journal that cannot be opened or decoded is, with
    /// [`OnCorrupt::MoveAside`], renamed to `<path>.corrupt-<timestamp>` and replaced by a
    /// fresh one; the returned [`Recovery`] says so, for the caller to log.
    ///
    /// # Errors
    /// [`JournalError::NotFound`] when the directory is missing and `create` is off;
    /// [`JournalError::Locked`] when another process (or another handle in this one) has it
    /// open, after waiting up to 1.5 s for the lock; never moved aside;
    /// [`JournalError::Corrupt`] with [`OnCorrupt::Fail`]; [`JournalError::Io`] when moving
    /// aside fails; [`JournalError::Store`] for other storage errors (permissions, disk).
    pub fn open(
        path: impl AsRef<Path>,
        options: OpenOptions,
    ) -> Result<(SledJournal, Option<Recovery>), JournalError> {
        let path = path.as_ref().to_path_buf();
        if !options.create && !path.exists() {
            return Err(JournalError::NotFound(path));
        }
        match try_open(&path, &options) {
            Ok(journal) => Ok((journal, None)),
            Err(OpenFailure::Locked) => Err(JournalError::Locked { path }),
            Err(OpenFailure::Other(e)) => Err(e),
            Err(OpenFailure::Corrupt(reason)) => match options.on_corrupt {
                OnCorrupt::Fail => Err(JournalError::Corrupt { path, reason }),
                OnCorrupt::MoveAside => {
                    let moved_to = move_aside(&path)?;
                    let journal = match try_open(&path, &options) {
                        Ok(journal) => journal,
                        Err(OpenFailure::Locked) => return Err(JournalError::Locked { path }),
                        Err(OpenFailure::Other(e)) => return Err(e),
                        Err(OpenFailure::Corrupt(reason)) => {
                            return Err(JournalError::Corrupt { path, reason });
                        }
                    };
                    Ok((
                        journal,
                        Some(Recovery {
                            path,
                            moved_to,
                            reason,
                        }),
                    ))
                }
            },
        }
    }

    /// The journal directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn store_err(&self, source: sled::Error) -> JournalError {
        JournalError::Store {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, uid: &str) -> Result<sled::Tree, JournalError> {
        self.db
            .open_tree(log_tree_name(uid))
            .map_err(|e| self.store_err(e))
    }

    /// Whether a log tree exists, without creating it.
    fn has_log(&self, uid: &str) -> bool {
        let name = log_tree_name(uid);
        self.db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == name.as_bytes())
    }

    fn seqs(&self, log: &sled::Tree) -> Result<Option<(u64, u64)>, JournalError> {
        let first = log.first().map_err(|e| self.store_err(e))?;
        let last = log.last().map_err(|e| self.store_err(e))?;
        Ok(match (first, last) {
            (Some((f, _)), Some((l, _))) => Some((seq_of_key(&f), seq_of_key(&l))),
            _ => None,
        })
    }

    fn decode_range(
        &self,
        uid: &str,
        log: &sled::Tree,
        range: impl RangeBounds<[u8; 8]>,
    ) -> Result<Vec<Record>, JournalError> {
        let mut records = Vec::new();
        for item in log.range(range) {
            let (key, value) = item.map_err(|e| self.store_err(e))?;
            let seq = seq_of_key(&key);
            let record = serde_json::from_slice(&value).map_err(|source| JournalError::Decode {
                uid: uid.to_string(),
                seq,
                source,
            })?;
            records.push(record);
        }
        Ok(records)
    }

    fn trim_locked(&self, uid: &str, max_records: usize) -> Result<Trimmed, JournalError> {
        let max_records = max_records.max(1);
        if !self.has_log(uid) {
            return Ok(Trimmed::default());
        }
        let log = self.log(uid)?;
        let Some((first, last)) = self.seqs(&log)? else {
            return Ok(Trimmed::default());
        };
        let len = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
        if len <= max_records {
            let head = self.decode_range(uid, &log, key(first)..=key(first))?;
            return Ok(Trimmed {
                dropped: 0,
                kept: len,
                checkpointed: head.first().is_some_and(|r| r.checkpoint.is_some()),
                divergence: None,
            });
        }
        let cut = len - max_records;
        let first_kept = first + cut as u64;
        let mut head = self.decode_range(uid, &log, key(first_kept)..=key(first_kept))?;
        let Some(mut kept) = head.pop() else {
            return Err(self.store_err(sled::Error::ReportableBug(format!(
                "record {first_kept} of cluster {uid} vanished while trimming"
            ))));
        };
        let mut divergence = None;
        if kept.checkpoint.is_none() {
            let dropped = self.decode_range(uid, &log, key(first)..key(first_kept))?;
            match replay_with(self.rules, &dropped, |_, _| {}) {
                Ok(machine) if machine.state() == kept.before => {
                    kept.checkpoint = Some(Box::new(machine.knowledge().clone()));
                }
                Ok(machine) => {
                    divergence = Some(Divergence {
                        seq: kept.seq,
                        index: cut,
                        kind: DivergenceKind::Before {
                            recorded: kept.before.clone(),
                            replayed: machine.state(),
                        },
                    });
                }
                Err(d) => divergence = Some(d),
            }
        }
        let checkpointed = kept.checkpoint.is_some();
        let mut batch = sled::Batch::default();
        for seq in first..first_kept {
            batch.remove(&key(seq));
        }
        if checkpointed {
            let bytes = serde_json::to_vec(&kept).map_err(|source| JournalError::Encode {
                seq: kept.seq,
                source,
            })?;
            batch.insert(&key(first_kept), bytes);
        }
        log.apply_batch(batch).map_err(|e| self.store_err(e))?;
        if let Some(d) = &divergence {
            tracing::warn!(
                cluster = uid,
                divergence = %d,
                "journal trimmed without a checkpoint: the dropped records do not replay with this model"
            );
        }
        Ok(Trimmed {
            dropped: cut,
            kept: max_records,
            checkpointed,
            divergence,
        })
    }

    /// [`JournalStore::append`] up to its flush, under the write lock.
    fn append_unflushed(
        &self,
        cluster: &ClusterKey,
        records: &[Record],
    ) -> Result<Appended, JournalError> {
        let _guard = self.lock();
        let log = self.log(&cluster.uid)?;
        let mut expected = self.seqs(&log)?.map(|(_, last)| last + 1);
        let mut entries = Vec::with_capacity(records.len());
        let mut appended = Appended::default();
        for record in records {
            if let Some(expected) = expected
                && record.seq != expected
            {
                return Err(JournalError::SeqGap {
                    uid: cluster.uid.clone(),
                    expected,
                    got: record.seq,
                });
            }
            let bytes = serde_json::to_vec(record).map_err(|source| JournalError::Encode {
                seq: record.seq,
                source,
            })?;
            appended.bytes += bytes.len() as u64;
            entries.push((key(record.seq), bytes));
            expected = Some(record.seq + 1);
        }
        let full_name = format!("{}/{}", cluster.namespace, cluster.name);
        let known = self
            .clusters
            .get(cluster.uid.as_bytes())
            .map_err(|e| self.store_err(e))?;
        if known.as_deref() != Some(full_name.as_bytes()) {
            self.clusters
                .insert(cluster.uid.as_bytes(), full_name.as_bytes())
                .map_err(|e| self.store_err(e))?;
        }
        let named = self
            .names
            .get(full_name.as_bytes())
            .map_err(|e| self.store_err(e))?;
        if named.as_deref() != Some(cluster.uid.as_bytes()) {
            self.names
                .insert(full_name.as_bytes(), cluster.uid.as_bytes())
                .map_err(|e| self.store_err(e))?;
        }
        // One record is inserted on its own: sled 0.34 writes out its log buffer before and
        // after reserving a batch's manifest (`PageCache::pin_log`), so every batch was disk
        // writes, each with a `sync_file_range`, flushed or not: about 25 per cluster on the
        // way to Steady. A single insert is atomic by itself.
        match <[_; 1]>::try_from(entries) {
            Ok([(k, bytes)]) => log.insert(k, bytes).map(|_| ()),
            Err(entries) => {
                let mut batch = sled::Batch::default();
                for (k, bytes) in entries {
                    batch.insert(&k, bytes);
                }
                log.apply_batch(batch)
            }
        }
        .map_err(|e| self.store_err(e))?;
        if let Some(retention) = self.retention
            && let Some((first, last)) = self.seqs(&log)?
            && last - first + 1 > (retention.max_records + retention.slack) as u64
        {
            self.trim_locked(&cluster.uid, retention.max_records)?;
        }
        Ok(appended)
    }

    /// [`JournalStore::remove`] up to its flush, under the write lock.
    fn remove_unflushed(&self, uid: &str) -> Result<bool, JournalError> {
        let _guard = self.lock();
        let had_log = self
            .db
            .drop_tree(log_tree_name(uid))
            .map_err(|e| self.store_err(e))?;
        let full_name = self
            .clusters
            .remove(uid.as_bytes())
            .map_err(|e| self.store_err(e))?;
        if let Some(full_name) = &full_name {
            let named = self.names.get(full_name).map_err(|e| self.store_err(e))?;
            if named.as_deref() == Some(uid.as_bytes()) {
                self.names
                    .remove(full_name)
                    .map_err(|e| self.store_err(e))?;
            }
        }
        Ok(had_log || full_name.is_some())
    }
}

impl JournalStore for SledJournal {
    /// Appends under the write lock, then flushes outside it: sled's flush makes everything
    /// written so far durable, so concurrent reconciles may share a flush (group commit)
    /// instead of each holding the lock through its own. Each append still returns only once
    /// its records are on disk. On the development machine a flush is cheap and this gains
    /// little (`cargo bench --bench journal -- journal_append_concurrent`, 2026-12-06: about
    /// 12,000 flushed appends per second from 1 thread, 20,100 from 16, 18,700 from 64); it is
    /// for volumes where a flush takes milliseconds. [`Durability::Written`] skips the flush:
    /// sled's background thread flushes every 500 ms (its default `flush_every_ms`).
    fn append_with(
        &self,
        cluster: &ClusterKey,
        records: &[Record],
        durability: Durability,
    ) -> Result<Appended, JournalError> {
        let appended = self.append_unflushed(cluster, records)?;
        if durability == Durability::Flushed {
            self.db.flush().map_err(|e| self.store_err(e))?;
        }
        Ok(appended)
    }

    fn read(&self, uid: &str) -> Result<Vec<Record>, JournalError> {
        if !self.has_log(uid) {
            return Ok(Vec::new());
        }
        let log = self.log(uid)?;
        self.decode_range(uid, &log, ..)
    }

    fn clusters(&self) -> Result<Vec<ClusterLog>, JournalError> {
        let mut out = Vec::new();
        for item in self.clusters.iter() {
            let (uid, full_name) = item.map_err(|e| self.store_err(e))?;
            let uid = String::from_utf8_lossy(&uid).into_owned();
            let full_name = String::from_utf8_lossy(&full_name);
            let (namespace, name) = full_name
                .split_once('/')
                .map_or((String::new(), full_name.to_string()), |(ns, n)| {
                    (ns.to_string(), n.to_string())
                });
            let seqs = if self.has_log(&uid) {
                self.seqs(&self.log(&uid)?)?
            } else {
                None
            };
            out.push(ClusterLog {
                cluster: ClusterKey {
                    uid,
                    namespace,
                    name,
                },
                seqs,
            });
        }
        // As documented on the trait: by namespace, name, then UID.
        out.sort_by(|a, b| {
            (&a.cluster.namespace, &a.cluster.name, &a.cluster.uid).cmp(&(
                &b.cluster.namespace,
                &b.cluster.name,
                &b.cluster.uid,
            ))
        });
        Ok(out)
    }

    fn uid_of(&self, namespace: &str, name: &str) -> Result<Option<String>, JournalError> {
        let full_name = format!("{namespace}/{name}");
        let uid = self
            .names
            .get(full_name.as_bytes())
            .map_err(|e| self.store_err(e))?;
        Ok(uid.map(|u| String::from_utf8_lossy(&u).into_owned()))
    }

    fn trim(&self, uid: &str, max_records: usize) -> Result<Trimmed, JournalError> {
        let trimmed = {
            let _guard = self.lock();
            self.trim_locked(uid, max_records)?
        };
        self.db.flush().map_err(|e| self.store_err(e))?;
        Ok(trimmed)
    }

    fn remove(&self, uid: &str) -> Result<bool, JournalError> {
        let removed = self.remove_unflushed(uid)?;
        self.db.flush().map_err(|e| self.store_err(e))?;
        Ok(removed)
    }
}

fn log_tree_name(uid: &str) -> String {
    format!("{LOG_PREFIX}{uid}")
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of_key(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(bytes)
}

/// How long an open waits for sled's lock: sled 0.34 releases it shortly after the last
/// handle is dropped, not at once (sled issues #1234, #1289), so a reopen in the same
/// process, or a command right after an operator stopped, can find it held for a moment.
const LOCK_WAIT: Duration = Duration::from_millis(1500);
const LOCK_RETRY: Duration = Duration::from_millis(25);

/// [`try_open_once`], retried while the lock is held, for up to [`LOCK_WAIT`].
fn try_open(path: &Path, options: &OpenOptions) -> Result<SledJournal, OpenFailure> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match try_open_once(path, options) {
            Err(OpenFailure::Locked) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            other => return other,
        }
    }
}

/// sled page cache size of the journal: 16 MiB.
const JOURNAL_CACHE_BYTES: u64 = 16 * 1024 * 1024;

fn try_open_once(path: &Path, options: &OpenOptions) -> Result<SledJournal, OpenFailure> {
    // The page cache bounds the journal's share of the operator's memory (sled's default is
    // 1 GiB); appends and the rare reads do not need more.
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(JOURNAL_CACHE_BYTES);
    // sled 0.34 can panic on some damaged files rather than return an error; a journal is
    // never worth crashing the operator for.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(classify(path, e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the storage engine panicked".to_string());
            return Err(OpenFailure::Corrupt(what));
        }
    };
    let tree = |name: &str| db.open_tree(name).map_err(|e| classify(path, e));
    let clusters = tree(CLUSTERS)?;
    let names = tree(NAMES)?;
    let journal = SledJournal {
        path: path.to_path_buf(),
        clusters,
        names,
        retention: options.retention,
        rules: options.rules,
        writes: Mutex::new(()),
        db,
    };
    validate(&journal)?;
    Ok(journal)
}

/// Checks that every stored record decodes and sits under its own sequence number, and that
/// the cluster index is text.
fn validate(journal: &SledJournal) -> Result<(), OpenFailure> {
    let corrupt = |e: JournalError| match e {
        JournalError::Store { source, .. } => classify(&journal.path, source),
        other => OpenFailure::Corrupt(other.to_string()),
    };
    for tree in [&journal.clusters, &journal.names] {
        for item in tree.iter() {
            let (k, v) = item.map_err(|e| classify(&journal.path, e))?;
            if std::str::from_utf8(&k).is_err() || std::str::from_utf8(&v).is_err() {
                return Err(OpenFailure::Corrupt(
                    "the cluster index holds a key or value that is not text".to_string(),
                ));
            }
        }
    }
    for name in journal.db.tree_names() {
        let Some(uid) = name.strip_prefix(LOG_PREFIX.as_bytes()) else {
            continue;
        };
        let uid = String::from_utf8_lossy(uid).into_owned();
        let log = journal.log(&uid).map_err(corrupt)?;
        for item in log.iter() {
            let (k, v) = item.map_err(|e| classify(&journal.path, e))?;
            let seq = seq_of_key(&k);
            let record: Record = serde_json::from_slice(&v).map_err(|source| {
                corrupt(JournalError::Decode {
                    uid: uid.clone(),
                    seq,
                    source,
                })
            })?;
            if k.len() != 8 || record.seq != seq {
                return Err(OpenFailure::Corrupt(format!(
                    "cluster {uid}: record {} is stored under key {seq}",
                    record.seq
                )));
            }
        }
    }
    Ok(())
}

fn classify(path: &Path, e: sled::Error) -> OpenFailure {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            OpenFailure::Locked
        }
        sled::Error::Io(io)
            if matches!(io.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof) =>
        {
            OpenFailure::Corrupt(io.to_string())
        }
        sled::Error::Io(io) => OpenFailure::Other(JournalError::Store {
            path: path.to_path_buf(),
            source: sled::Error::Io(io),
        }),
        other => OpenFailure::Corrupt(other.to_string()),
    }
}

/// Renames `path` to `<path>.corrupt-<UTC timestamp>` (with `-N` appended if taken).
fn move_aside(path: &Path) -> Result<PathBuf, JournalError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let base = path
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let mut target = PathBuf::from(format!("{base}.corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{base}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|source| JournalError::Io {
        action: "moving aside the unreadable journal",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(target)
}
