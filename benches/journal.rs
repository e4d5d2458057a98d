//! Benchmarks of the journal on a realistic log: the records the lifecycle machine writes while
//! a 3 FE / 3 BE / 1 CN cluster is created, upgraded and then reconfigured a number of times
//! (driven through the model's world, as `model/benches/dispatch.rs` does).
//!
//! - `journal_append/N`: appending to a sled journal in batches of N records, one flush
//!   (fsync) per batch; throughput in records per second.
//! - `journal_append_concurrent/T`: T threads appending one record each at a time, each to a
//!   cluster of its own, as concurrent reconciles do; every append flushed before it returns
//!   (the flushes are shared); throughput in records per second.
//! - `journal_replay/replay`: `starrocks_model::journal::replay` over the whole log.
//! - `journal_read/read`: reading and decoding the whole log back from sled.
//! - `journal_codec/{encode,decode}`: serde_json alone, per record.
//!
//! Bytes per record (JSON and on-disk growth) are printed once to stderr.

#[path = "../model/tests/world/mod.rs"]
mod world;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use starrocks_model::Rules;
use starrocks_model::journal::{Record, replay};
use starrocks_operator::journal::{ClusterKey, Durability, JournalStore, OpenOptions, SledJournal};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use world::{Operator, SpecChoice, World};

/// Records in the realistic log (at least).
const LOG_RECORDS: usize = 3_000;

/// Records a log may hold before the append benchmark starts it over: about the operator's
/// default retention (10,000 records plus a quarter of slack), so the tree sled appends to is
/// the size it is in production.
const RESTART_AFTER: u64 = 12_500;

/// The journal of one realistic lifecycle of at least `min_records` records: create a
/// 3 FE / 3 BE / 1 CN cluster, upgrade it, then change the configuration of FE, BE and CN in
/// turn (each a rolling restart), settling after each change.
fn lifecycle_log(min_records: usize) -> Vec<Record> {
    let mut op = Operator::new(Rules::default(), false);
    let mut world = World::new();
    let mut spec = SpecChoice::simple(1);
    spec.fe_replicas = 3;
    spec.be_replicas = 3;
    let change = |world: &mut World, op: &mut Operator, spec: &SpecChoice| {
        world.set_spec(spec, op);
        assert!(world.settle(op, 200).is_some(), "the cluster settles");
    };
    change(&mut world, &mut op, &spec);
    spec.version = 3;
    change(&mut world, &mut op, &spec);
    let mut round = 0;
    while op.journal.len() < min_records {
        let salt = &mut spec.salt[round % 3];
        *salt = salt.wrapping_add(1);
        round += 1;
        change(&mut world, &mut op, &spec);
    }
    assert!(replay(&op.journal).is_ok(), "the benchmark log replays");
    op.journal
}

fn key() -> ClusterKey {
    ClusterKey::new("4f1c2d7e-0000-4000-8000-000000000001", "starrocks", "bench")
}

/// A fresh journal in a temporary directory, without retention (the append benchmark bounds
/// the log itself).
fn open_journal() -> (tempfile::TempDir, SledJournal) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = OpenOptions {
        retention: None,
        ..OpenOptions::default()
    };
    let (journal, _) = SledJournal::open(dir.path().join("journal"), options).expect("open");
    (dir, journal)
}

/// Total size in bytes of the files under `path`.
fn disk_usage(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Prints the JSON size of the log's records and how much the journal directory grows when
/// the log is appended in batches of 10.
fn report_sizes(log: &[Record]) {
    let sizes: Vec<usize> = log
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |b| b.len()))
        .collect();
    let total: usize = sizes.iter().sum();
    let (dir, journal) = open_journal();
    let cluster = key();
    // One record first so that the trees exist before the baseline is taken.
    journal.append(&cluster, &log[..1]).expect("append");
    let before = disk_usage(dir.path());
    for batch in log[1..].chunks(10) {
        journal.append(&cluster, batch).expect("append");
    }
    drop(journal);
    let after = disk_usage(dir.path());
    eprintln!(
        "journal log: {} records; JSON bytes per record: mean {:.0}, min {}, max {}; \
         on-disk growth over {} records appended in batches of 10: {} bytes ({:.0} bytes per record)",
        log.len(),
        total as f64 / log.len() as f64,
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
        log.len() - 1,
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / (log.len() - 1) as f64,
    );
}

fn append(c: &mut Criterion) {
    let log = lifecycle_log(LOG_RECORDS);
    report_sizes(&log);
    let cluster = key();
    let mut group = c.benchmark_group("journal_append");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for size in [1usize, 10, 100] {
        let (_dir, journal) = open_journal();
        // Consecutive slices of the log, renumbered as they are appended.
        let mut batches: Vec<Vec<Record>> =
            log.chunks_exact(size).map(<[Record]>::to_vec).collect();
        let mut next = 0usize;
        let mut seq = 0u64;
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_custom(|iters| {
                if seq >= RESTART_AFTER {
                    journal.remove(&cluster.uid).expect("remove");
                    seq = 0;
                }
                let start = Instant::now();
                let count = batches.len();
                for _ in 0..iters {
                    let batch = &mut batches[next];
                    next = (next + 1) % count;
                    for record in batch.iter_mut() {
                        record.seq = seq;
                        seq += 1;
                    }
                    journal.append(&cluster, batch).expect("append");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn append_concurrent(c: &mut Criterion) {
    let log = lifecycle_log(LOG_RECORDS);
    let mut group = c.benchmark_group("journal_append_concurrent");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (threads, as_reconciled) in [
        (1usize, false),
        (16, false),
        (64, false),
        (1, true),
        (16, true),
    ] {
        let (_dir, journal) = open_journal();
        let clusters: Vec<ClusterKey> = (0..threads)
            .map(|i| ClusterKey::new(format!("uid-{i}"), "starrocks", format!("bench-{i}")))
            .collect();
        // The next sequence number of each thread's cluster.
        let mut seqs = vec![0u64; threads];
        group.throughput(Throughput::Elements(threads as u64));
        // `as_reconciled`: flushed only when the record's step decided actions, as the
        // reconciler appends (the others are only written, see `Durability::Written`).
        let id = if as_reconciled {
            format!("{threads}-as-reconciled")
        } else {
            threads.to_string()
        };
        group.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for (cluster, seq) in clusters.iter().zip(seqs.iter_mut()) {
                        let (journal, log) = (&journal, &log);
                        scope.spawn(move || {
                            if *seq >= RESTART_AFTER {
                                journal.remove(&cluster.uid).expect("remove");
                                *seq = 0;
                            }
                            for _ in 0..iters {
                                let mut record = log[*seq as usize % log.len()].clone();
                                record.seq = *seq;
                                *seq += 1;
                                let durability = if as_reconciled {
                                    Durability::for_record(&record)
                                } else {
                                    Durability::Flushed
                                };
                                journal
                                    .append_with(cluster, &[record], durability)
                                    .expect("append");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn replay_log(c: &mut Criterion) {
    let log = lifecycle_log(LOG_RECORDS);
    let mut group = c.benchmark_group("journal_replay");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function("replay", |b| {
        b.iter(|| black_box(replay(black_box(&log)).is_ok()))
    });
    group.finish();
}

fn read_log(c: &mut Criterion) {
    let log = lifecycle_log(LOG_RECORDS);
    let (_dir, journal) = open_journal();
    let cluster = key();
    for batch in log.chunks(100) {
        journal.append(&cluster, batch).expect("append");
    }
    let mut group = c.benchmark_group("journal_read");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function("read", |b| {
        b.iter(|| black_box(journal.read(&cluster.uid).expect("read").len()))
    });
    group.finish();
}

/// The JSON encoding and decoding alone, to tell them apart from sled's share of the append
/// and read figures.
fn codec(c: &mut Criterion) {
    let log = lifecycle_log(LOG_RECORDS);
    let encoded: Vec<Vec<u8>> = log
        .iter()
        .map(|r| serde_json::to_vec(r).expect("encode"))
        .collect();
    let mut group = c.benchmark_group("journal_codec");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            for record in &log {
                black_box(serde_json::to_vec(black_box(record)).expect("encode"));
            }
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(serde_json::from_slice::<Record>(black_box(bytes)).expect("decode"));
            }
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    append,
    append_concurrent,
    replay_log,
    read_log,
    codec
);
criterion_main!(benches);
