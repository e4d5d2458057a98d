//! The journal store (sled), its JSON Lines export and the `replay` / `journal export`
//! commands, on logs produced by driving the lifecycle model through a create and an upgrade.

use chrono::{DateTime, Utc};
use starrocks_model::journal::{DivergenceKind, Record, replay};
use starrocks_model::{
    Action, Component, ComponentObservation, DesiredCluster, DesiredComponent, Event,
    LifecycleState, Machine, Rules,
};
use starrocks_operator::journal::replay::{ReplaySource, export_command, replay_command};
use starrocks_operator::journal::{
    ClusterKey, Durability, JournalError, JournalStore, OnCorrupt, OpenOptions, Retention,
    SledJournal, jsonl,
};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small cluster the machine drives: applies bump the object's generation at once, the
/// workload controller first reports a rollout in progress, then the rollout finished.
struct Cluster {
    machine: Machine,
    records: Vec<Record>,
    spec: DesiredCluster,
    objects: BTreeMap<Component, ComponentObservation>,
    applies: Vec<Component>,
}

fn hash(component: Component, image: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in component.suffix().bytes().chain(image.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn spec(generation: i64, version: &str) -> DesiredCluster {
    let mut components = BTreeMap::new();
    for (component, repo, replicas) in [
        (Component::Fe, "starrocks/fe-ubuntu", 3),
        (Component::Be, "starrocks/be-ubuntu", 3),
        (Component::Cn, "starrocks/cn-ubuntu", 2),
    ] {
        let image = format!("{repo}:{version}");
        components.insert(
            component,
            DesiredComponent {
                template_hash: hash(component, &image),
                image,
                replicas: Some(replicas),
            },
        );
    }
    DesiredCluster {
        generation,
        components,
        invalid: None,
    }
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            machine: Machine::new(),
            records: Vec::new(),
            spec: DesiredCluster::default(),
            objects: BTreeMap::new(),
            applies: Vec::new(),
        }
    }

    fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + 7 * self.records.len() as i64, 0)
            .unwrap_or_default()
    }

    /// Feeds `first` and everything the world answers to the actions, until quiet.
    fn run(&mut self, first: Event) {
        let mut queue = VecDeque::from([first]);
        while let Some(event) = queue.pop_front() {
            let step = self.machine.handle(&event);
            let record = Record::new(self.records.len() as u64, self.time(), event, step);
            let actions = record.actions.clone();
            self.records.push(record);
            for action in actions {
                if let Action::Apply {
                    component,
                    template_hash,
                    replicas,
                } = action
                {
                    self.apply(component, template_hash, replicas, &mut queue);
                }
            }
        }
    }

    fn apply(
        &mut self,
        component: Component,
        template_hash: String,
        replicas: Option<i32>,
        queue: &mut VecDeque<Event>,
    ) {
        self.applies.push(component);
        let image = self
            .spec
            .get(component)
            .map(|d| d.image.clone())
            .unwrap_or_default();
        let uid = format!("uid-{}", component.suffix());
        let object = self
            .objects
            .entry(component)
            .or_insert_with(|| ComponentObservation {
                uid: Some(uid.clone()),
                ..ComponentObservation::default()
            });
        let old_revision = object.current_revision.clone();
        object.generation += 1;
        object.template_hash = Some(template_hash.clone());
        object.image = Some(image);
        object.replicas = replicas.unwrap_or(1);
        queue.push_back(Event::ApplyFinished {
            component,
            template_hash: template_hash.clone(),
            generation: object.generation,
            uid: Some(uid),
        });
        // Rolling: the controller saw the new generation, one pod updated and not ready yet.
        object.observed_generation = Some(object.generation);
        object.current_revision = old_revision.or_else(|| Some(template_hash.clone()));
        object.update_revision = Some(template_hash.clone());
        object.status_replicas = object.replicas;
        object.updated_replicas = 1;
        object.ready_replicas = object.replicas - 1;
        queue.push_back(Event::Observed {
            component,
            observation: object.clone(),
        });
        // Rolled out: every pod updated and ready, endpoints ready.
        object.current_revision = Some(template_hash);
        object.updated_replicas = object.replicas;
        object.ready_replicas = object.replicas;
        object.ready_endpoints = object.replicas as u32;
        queue.push_back(Event::Observed {
            component,
            observation: object.clone(),
        });
    }

    fn change_spec(&mut self, spec: DesiredCluster) {
        self.spec = spec.clone();
        self.run(Event::SpecChanged { spec });
    }
}

/// A cluster created at 3.3.2, then upgraded to 3.4.1, with a resync in between.
fn create_and_upgrade() -> Cluster {
    let mut cluster = Cluster::new();
    cluster.change_spec(spec(1, "3.3.2"));
    assert_eq!(cluster.machine.state(), LifecycleState::Steady, "created");
    cluster.run(Event::Resync);
    cluster.applies.clear();
    cluster.change_spec(spec(2, "3.4.1"));
    assert_eq!(cluster.machine.state(), LifecycleState::Steady, "upgraded");
    assert_eq!(
        cluster.applies,
        [Component::Be, Component::Cn, Component::Fe],
        "upgrade order"
    );
    cluster
}

fn key() -> ClusterKey {
    ClusterKey::new("0b6c3a52-uid", "analytics", "sr-main")
}

fn no_retention() -> OpenOptions {
    OpenOptions {
        retention: None,
        ..OpenOptions::default()
    }
}

fn open(dir: &Path, options: OpenOptions) -> SledJournal {
    match SledJournal::open(dir, options) {
        Ok((journal, None)) => journal,
        Ok((_, Some(recovery))) => panic!("unexpected recovery: {recovery}"),
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

fn without_checkpoints(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .cloned()
        .map(|mut r| {
            r.checkpoint = None;
            r
        })
        .collect()
}

#[test]
fn append_and_read_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let cluster = create_and_upgrade();
    let records = &cluster.records;
    assert!(
        records.len() >= 20,
        "a realistic log: {} records",
        records.len()
    );
    {
        let journal = open(&dir, no_retention());
        let (a, b) = records.split_at(records.len() / 2);
        journal.append(&key(), a).unwrap();
        for r in b {
            journal.append(&key(), std::slice::from_ref(r)).unwrap();
        }
        assert_eq!(&journal.read(&key().uid).unwrap(), records);
        // A gap is refused and nothing is written.
        let mut late = records[3].clone();
        late.seq = records.len() as u64 + 5;
        match journal.append(&key(), &[late]) {
            Err(JournalError::SeqGap { expected, got, .. }) => {
                assert_eq!(expected, records.len() as u64);
                assert_eq!(got, records.len() as u64 + 5);
            }
            other => panic!("expected a sequence gap, got {other:?}"),
        }
        assert_eq!(journal.read("no-such-uid").unwrap(), Vec::<Record>::new());
    }
    // Durable across a reopen; found by name.
    let journal = open(&dir, no_retention());
    assert_eq!(&journal.read(&key().uid).unwrap(), records);
    assert_eq!(
        journal.uid_of("analytics", "sr-main").unwrap(),
        Some(key().uid)
    );
    let logs = journal.clusters().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].cluster, key());
    assert_eq!(logs[0].seqs, Some((0, records.len() as u64 - 1)));
    // A recreated cluster of the same name gets its own log; the name points to it.
    let other = ClusterKey::new("9f1e-uid", "analytics", "sr-main");
    journal.append(&other, &records[..2]).unwrap();
    assert_eq!(
        journal.uid_of("analytics", "sr-main").unwrap(),
        Some(other.uid.clone())
    );
    assert_eq!(journal.clusters().unwrap().len(), 2);
    assert!(journal.remove(&other.uid).unwrap());
    assert!(!journal.remove(&other.uid).unwrap());
    assert_eq!(journal.uid_of("analytics", "sr-main").unwrap(), None);
    assert!(journal.read(&other.uid).unwrap().is_empty());
    assert_eq!(&journal.read(&key().uid).unwrap(), records);
}

/// Appends from many threads at once (as concurrent reconciles make them), each flushed
/// outside the write lock: every cluster's log is complete and in order, also after a reopen.
#[test]
fn concurrent_appends_all_land_in_order_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let records = create_and_upgrade().records;
    let clusters: Vec<ClusterKey> = (0..16)
        .map(|i| ClusterKey::new(format!("uid-{i}"), "analytics", format!("sr-{i}")))
        .collect();
    {
        let journal = std::sync::Arc::new(open(&dir, no_retention()));
        std::thread::scope(|scope| {
            for cluster in &clusters {
                let (journal, records) = (journal.clone(), &records);
                scope.spawn(move || {
                    for r in records {
                        journal.append(cluster, std::slice::from_ref(r)).unwrap();
                    }
                });
            }
        });
        for cluster in &clusters {
            assert_eq!(&journal.read(&cluster.uid).unwrap(), &records);
        }
    }
    let journal = open(&dir, no_retention());
    assert_eq!(journal.clusters().unwrap().len(), clusters.len());
    for cluster in &clusters {
        assert_eq!(&journal.read(&cluster.uid).unwrap(), &records, "{cluster}");
    }
}

#[test]
fn retention_checkpoints_the_first_kept_record_and_the_trimmed_log_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = create_and_upgrade();
    let records = &cluster.records;
    let retention = Retention::new(12);
    let journal = open(
        tmp.path(),
        OpenOptions {
            retention: Some(retention),
            ..OpenOptions::default()
        },
    );
    for r in records {
        journal.append(&key(), std::slice::from_ref(r)).unwrap();
        let held = journal.read(&key().uid).unwrap();
        assert!(held.len() <= retention.max_records + retention.slack);
        // Whatever was dropped, what is held replays.
        if let Err(d) = replay(&held) {
            panic!("after appending seq {}: {d}", r.seq);
        }
    }
    let held = journal.read(&key().uid).unwrap();
    assert!(held.len() >= retention.max_records);
    assert!(
        held[0].checkpoint.is_some(),
        "first kept record checkpointed"
    );
    assert_eq!(held.last(), records.last(), "the newest record kept");
    // Apart from checkpoints, the kept records are the originals.
    assert_eq!(
        without_checkpoints(&held),
        without_checkpoints(&records[records.len() - held.len()..])
    );
    let machine = replay(&held).unwrap();
    assert_eq!(machine.state(), cluster.machine.state());
    assert_eq!(machine.knowledge(), cluster.machine.knowledge());

    // An explicit trim, over a log whose first record already carries a checkpoint.
    let trimmed = journal.trim(&key().uid, 5).unwrap();
    assert_eq!(trimmed.kept, 5);
    assert!(trimmed.checkpointed);
    assert_eq!(trimmed.divergence, None);
    let held = journal.read(&key().uid).unwrap();
    assert_eq!(held.len(), 5);
    let machine = replay(&held).unwrap();
    assert_eq!(machine.knowledge(), cluster.machine.knowledge());
}

#[test]
fn corrupt_journal_directory_is_moved_aside_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let cluster = create_and_upgrade();
    {
        let journal = open(&dir, no_retention());
        journal.append(&key(), &cluster.records).unwrap();
    }
    // Every file of the database overwritten with garbage.
    for entry in walk(&dir) {
        std::fs::write(&entry, b"\xde\xad\xbe\xef not a sled file \x00\x01\x02").unwrap();
    }
    // The offline commands refuse and leave it where it is.
    match SledJournal::open(&dir, OpenOptions::read_only()) {
        Err(JournalError::Corrupt { path, .. }) => assert_eq!(path, dir),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(dir.exists());
    // The operator moves it aside and starts afresh.
    let (journal, recovery) = SledJournal::open(&dir, no_retention()).unwrap();
    let recovery = recovery.expect("a recovery notice");
    assert_eq!(recovery.path, dir);
    assert!(recovery.moved_to.exists(), "{recovery}");
    assert!(
        recovery
            .moved_to
            .to_string_lossy()
            .contains("journal.corrupt-")
    );
    assert!(recovery.to_string().contains("moved to"));
    assert!(journal.clusters().unwrap().is_empty());
    journal.append(&key(), &cluster.records[..3]).unwrap();
    assert_eq!(journal.read(&key().uid).unwrap(), cluster.records[..3]);
}

#[test]
fn undecodable_record_moves_the_journal_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let cluster = create_and_upgrade();
    {
        let journal = open(&dir, no_retention());
        journal.append(&key(), &cluster.records).unwrap();
    }
    {
        let db = sled::open(&dir).unwrap();
        let log = db.open_tree(format!("log/{}", key().uid)).unwrap();
        log.insert(4u64.to_be_bytes(), &b"{\"format\": 1, \"seq\": "[..])
            .unwrap();
        db.flush().unwrap();
    }
    match SledJournal::open(&dir, OpenOptions::read_only()) {
        Err(e @ JournalError::Corrupt { .. }) => {
            assert!(e.to_string().contains("record 4"), "{e}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (journal, recovery) = SledJournal::open(&dir, OpenOptions::default()).unwrap();
    let recovery = recovery.expect("a recovery notice");
    assert!(recovery.reason.contains("does not decode"), "{recovery}");
    assert!(journal.read(&key().uid).unwrap().is_empty());
    // The moved journal is intact apart from the damaged record: still evidence.
    assert!(recovery.moved_to.join("db").exists());
}

#[test]
fn locked_journal_is_reported_and_never_moved_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let _running = open(&dir, no_retention());
    match SledJournal::open(&dir, OpenOptions::default()) {
        Err(e @ JournalError::Locked { .. }) => {
            assert!(e.to_string().contains("in use by another process"), "{e}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn export_then_replay_of_a_driven_journal_reports_no_divergence() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let cluster = create_and_upgrade();
    {
        let journal = open(&dir, no_retention());
        journal.append(&key(), &cluster.records).unwrap();
    }
    let mut exported = Vec::new();
    let n = export_command(&dir, "analytics/sr-main", &mut exported).unwrap();
    assert_eq!(n, cluster.records.len());
    let text = String::from_utf8(exported).unwrap();
    assert_eq!(text.lines().count(), n);
    assert_eq!(
        jsonl::import(text.as_bytes(), "export").unwrap(),
        cluster.records
    );
    let file = tmp.path().join("export.jsonl");
    std::fs::write(&file, &text).unwrap();

    let mut timeline = Vec::new();
    let outcome = replay_command(
        &ReplaySource::File(file.clone()),
        Rules::default(),
        &mut timeline,
    )
    .unwrap();
    let timeline = String::from_utf8(timeline).unwrap();
    assert_eq!(outcome.first_divergence(), None, "{timeline}");
    assert_eq!(outcome.logs[0].result, Ok(LifecycleState::Steady));
    for expected in [
        "specChanged",
        "Starting -> Creating",
        "apply FE template",
        "applyFinished",
        "observed",
        "UpgradingBe",
        "no divergence; final state Steady",
    ] {
        assert!(timeline.contains(expected), "{expected:?} in:\n{timeline}");
    }

    // The journal directory itself, by name, by UID and all clusters.
    for cluster_arg in [Some("analytics/sr-main"), Some("0b6c3a52-uid"), None] {
        let outcome = replay_command(
            &ReplaySource::Journal {
                dir: dir.clone(),
                cluster: cluster_arg.map(str::to_string),
            },
            Rules::default(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(outcome.logs.len(), 1);
        assert_eq!(outcome.first_divergence(), None);
    }
    match replay_command(
        &ReplaySource::Journal {
            dir: dir.clone(),
            cluster: Some("analytics/other".into()),
        },
        Rules::default(),
        &mut Vec::new(),
    ) {
        Err(e @ JournalError::UnknownCluster { .. }) => {
            assert!(e.to_string().contains("analytics/sr-main"), "{e}")
        }
        other => panic!("expected UnknownCluster, got {other:?}"),
    }
}

/// The export with the `after` state of the first record that entered WaitingFe changed to
/// Steady; returns the text and the tampered sequence number.
fn tampered_export(records: &[Record]) -> (String, u64) {
    let mut out = String::new();
    let mut tampered = None;
    for record in records {
        let mut value = serde_json::to_value(record).unwrap();
        if tampered.is_none() && record.after == LifecycleState::WaitingFe {
            value["after"] = serde_json::to_value(LifecycleState::Steady).unwrap();
            tampered = Some(record.seq);
        }
        out.push_str(&serde_json::to_string(&value).unwrap());
        out.push('\n');
    }
    (out, tampered.expect("the log enters WaitingFe"))
}

#[test]
fn tampered_record_is_reported_as_the_first_divergence() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = create_and_upgrade();
    let (text, seq) = tampered_export(&cluster.records);
    let file = tmp.path().join("tampered.jsonl");
    std::fs::write(&file, text).unwrap();
    let mut timeline = Vec::new();
    let outcome =
        replay_command(&ReplaySource::File(file), Rules::default(), &mut timeline).unwrap();
    let timeline = String::from_utf8(timeline).unwrap();
    let (_, divergence) = outcome.first_divergence().expect("a divergence");
    assert_eq!(divergence.seq, seq);
    assert_eq!(
        divergence.kind,
        DivergenceKind::After {
            recorded: LifecycleState::Steady,
            replayed: LifecycleState::WaitingFe,
        }
    );
    assert!(timeline.contains("!! today's model"), "{timeline}");
    assert!(
        timeline.contains(&format!("DIVERGED at record {seq} (seq {seq})")),
        "{timeline}"
    );
    // The timeline stops at the divergent record.
    assert!(
        !timeline.contains(&format!("#{:<5}", seq + 1)),
        "{timeline}"
    );
}

#[test]
fn a_bad_export_line_names_its_line() {
    let cluster = create_and_upgrade();
    let mut text = Vec::new();
    jsonl::export(&cluster.records[..3], &mut text).unwrap();
    text.extend_from_slice(b"\n{\"format\": 1, \"seq\": 3, \"oops\": true}\n");
    match jsonl::import(&text[..], "x.jsonl") {
        Err(e @ JournalError::BadLine { line: 5, .. }) => {
            assert!(e.to_string().starts_with("x.jsonl line 5"), "{e}")
        }
        other => panic!("expected BadLine at line 5, got {other:?}"),
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_starrocks-operator"))
}

#[test]
fn binary_exports_replays_and_exits_non_zero_on_divergence() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let cluster = create_and_upgrade();
    {
        let journal = open(&dir, no_retention());
        journal.append(&key(), &cluster.records).unwrap();
    }
    let export = bin()
        .args(["journal", "export", "--journal"])
        .arg(&dir)
        .args(["--cluster", "analytics/sr-main"])
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let good = tmp.path().join("good.jsonl");
    std::fs::write(&good, &export.stdout).unwrap();

    let ok = bin()
        .arg("replay")
        .arg("--file")
        .arg(&good)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("no divergence"));

    let ok = bin()
        .arg("replay")
        .arg("--journal")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");

    let (text, seq) = tampered_export(&cluster.records);
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, text).unwrap();
    let diverged = bin()
        .arg("replay")
        .arg("--file")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(diverged.status.code(), Some(1), "{diverged:?}");
    let stderr = String::from_utf8_lossy(&diverged.stderr);
    assert!(stderr.contains(&format!("(seq {seq})")), "{stderr}");

    let missing = bin()
        .arg("replay")
        .arg("--journal")
        .arg(tmp.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no journal at"));
    assert!(
        !tmp.path().join("nowhere").exists(),
        "replay creates nothing"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn move_aside_option_defaults() {
    assert_eq!(OnCorrupt::default(), OnCorrupt::MoveAside);
    assert_eq!(OpenOptions::read_only().on_corrupt, OnCorrupt::Fail);
}

/// The child half of [`an_unflushed_record_is_lost_only_with_those_after_it`]: appends the
/// records of a create and an upgrade as the reconciler does (flushed when the step decided
/// actions, only written when it decided none), then aborts without dropping the journal,
/// as a crash would.
fn crash_after_appending(dir: &Path, records: &[Record]) -> ! {
    let journal = open(dir, no_retention());
    for r in records {
        journal
            .append_with(&key(), std::slice::from_ref(r), Durability::for_record(r))
            .unwrap();
    }
    std::process::abort()
}

/// A crash keeps every record up to the last flushed one (a step with actions), and what it
/// loses is a tail: the log is a prefix of what was appended, never one with a gap. The test
/// runs itself in a child process that aborts after appending.
#[test]
fn an_unflushed_record_is_lost_only_with_those_after_it() {
    const CHILD: &str = "JOURNAL_CRASH_CHILD_DIR";
    // Resyncs in Steady decide nothing: the log ends with records that are only written.
    let mut cluster = create_and_upgrade();
    for _ in 0..3 {
        cluster.run(Event::Resync);
    }
    let records = cluster.records;
    if let Some(dir) = std::env::var_os(CHILD) {
        crash_after_appending(Path::new(&dir), &records);
    }
    let last_flushed = records
        .iter()
        .rposition(|r| !r.actions.is_empty())
        .expect("a create decides actions");
    assert!(
        last_flushed + 1 < records.len(),
        "the log should end with steps that decided nothing"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_unflushed_record_is_lost_only_with_those_after_it",
            "--nocapture",
        ])
        .env(CHILD, &dir)
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    let journal = open(&dir, no_retention());
    let kept = journal.read(&key().uid).unwrap();
    assert!(
        kept.len() > last_flushed,
        "{} records kept, the last flushed one is #{last_flushed}",
        kept.len()
    );
    assert_eq!(
        kept[..],
        records[..kept.len()],
        "a prefix of what was appended"
    );
}

/// An append that is only written is read back at once, and reports the bytes it encoded.
#[test]
fn a_written_append_reads_back_and_counts_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let records = create_and_upgrade().records;
    let journal = open(&tmp.path().join("journal"), no_retention());
    let (a, b) = records.split_at(3);
    let written = journal.append_with(&key(), a, Durability::Written).unwrap();
    let json: u64 = a
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len() as u64)
        .sum();
    assert_eq!(written.bytes, json);
    assert_eq!(journal.read(&key().uid).unwrap(), a);
    journal.append_with(&key(), b, Durability::Flushed).unwrap();
    assert_eq!(journal.read(&key().uid).unwrap(), records);
}
