//! The fuzz targets' checks (`fuzz/common/*.rs`, included here with `#[path]`) on their seed
//! corpora (`fuzz/corpus/<target>/`), so that `cargo test` runs them on stable without
//! libFuzzer; and the seeds themselves: the event programs reach the states they are named
//! for.
//!
//! Regenerate the seeds with `UPDATE_FUZZ_CORPUS=1 cargo test --test fuzz_corpus`: the CR
//! examples of `deploy/examples/` as JSON (with the `metadata.uid` and `generation` the API
//! server would add), the event programs below, and journal records those programs produce.

#[path = "../fuzz/common/cluster_render.rs"]
mod cluster_render;
#[path = "../fuzz/common/journal_record.rs"]
mod journal_record;
#[path = "../fuzz/common/model_events.rs"]
mod model_events;

use model_events::op;
use serde_json::Value;
use starrocks_model::Component;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir(target: &str) -> PathBuf {
    root().join("fuzz/corpus").join(target)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_FUZZ_CORPUS").is_some()
}

/// The seed files of a target, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable seed"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "{}: a handful of seeds expected, found {}",
        dir.display(),
        files.len()
    );
    files
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// Builds an event program for the `model_events` target.
#[derive(Default, Clone)]
struct Program(Vec<u8>);

impl Program {
    fn op(mut self, code: u8) -> Self {
        self.0.push(code);
        self
    }

    fn spec(mut self, version: u8, flags: u8, replicas: u8) -> Self {
        self.0.extend([op::SPEC, version, flags, replicas]);
        self
    }

    fn on(mut self, code: u8, component: Component) -> Self {
        let index = Component::ALL.iter().position(|c| *c == component).unwrap();
        self.0.extend([code, index as u8]);
        self
    }

    fn args(mut self, args: &[u8]) -> Self {
        self.0.extend(args);
        self
    }

    /// The pending apply lands and its object finishes rolling out.
    fn land(self, component: Component) -> Self {
        self.op(op::ACK).on(op::ROLLED_OUT, component)
    }
}

const WITH_CN: u8 = 4;
const WITH_PROXY: u8 = 8;
const ONE_EACH: u8 = 0b01_01_01_01;

/// A first deployment of FE, BE and CN at `version`, to Steady.
fn deployed(version: u8) -> Program {
    Program::default()
        .spec(version, WITH_CN, ONE_EACH)
        .land(Component::Fe)
        .op(op::ACK)
        .op(op::ACK)
        .on(op::ROLLED_OUT, Component::Be)
        .on(op::ROLLED_OUT, Component::Cn)
}

/// The event programs: name, bytes, expected final state and minimum number of applies.
fn programs() -> Vec<(&'static str, Program, &'static str, usize)> {
    let upgraded = deployed(1)
        .spec(3, WITH_CN, ONE_EACH)
        .land(Component::Be)
        .land(Component::Cn)
        .land(Component::Fe);
    vec![
        ("first-deployment", deployed(1), "Steady", 3),
        ("upgrade", upgraded.clone(), "Steady", 6),
        (
            "downgrade",
            deployed(3)
                .spec(1, WITH_CN, ONE_EACH)
                .land(Component::Fe)
                .land(Component::Be)
                .land(Component::Cn),
            "Steady",
            6,
        ),
        (
            "upgrade-stuck-at-be",
            deployed(1).spec(3, WITH_CN, ONE_EACH).op(op::ACK),
            "UpgradingBe",
            4,
        ),
        (
            "waiting-fe",
            Program::default()
                .spec(1, WITH_CN | WITH_PROXY, ONE_EACH)
                .op(op::ACK)
                .on(op::OBSERVE, Component::Fe)
                .args(&[0b10, 0b01_00_01]),
            "WaitingFe",
            1,
        ),
        (
            "apply-failed-then-retried",
            Program::default()
                .spec(1, WITH_CN, ONE_EACH)
                .op(op::FAIL)
                .op(op::RESYNC)
                .land(Component::Fe)
                .op(op::ACK)
                .op(op::ACK)
                .on(op::ROLLED_OUT, Component::Be)
                .on(op::ROLLED_OUT, Component::Cn),
            "Steady",
            4,
        ),
        (
            "paused-restarted-resumed",
            deployed(1)
                .op(op::PAUSE)
                .spec(3, WITH_CN, ONE_EACH)
                .op(op::RESTART)
                .args(&[0b11])
                .op(op::RESUME)
                .land(Component::Be)
                .land(Component::Cn)
                .land(Component::Fe),
            "Steady",
            6,
        ),
        (
            "mixed-directions",
            deployed(2).spec(2, WITH_CN | 1 | 2, ONE_EACH),
            "Blocked",
            3,
        ),
        (
            "proxy-added-and-removed",
            deployed(1)
                .spec(1, WITH_CN | WITH_PROXY, ONE_EACH)
                .land(Component::FeProxy)
                .spec(1, WITH_CN, ONE_EACH)
                .on(op::REMOVE, Component::FeProxy)
                .args(&[0b10]),
            "Steady",
            4,
        ),
        (
            "duplicates-and-strays",
            upgraded
                .op(op::REPEAT)
                .on(op::STRAY_ACK, Component::Be)
                .args(&[7])
                .on(op::OBSERVE, Component::Cn)
                .args(&[0b0100_0001, 0])
                .op(op::REPEAT)
                .op(op::RESYNC),
            "Steady",
            6,
        ),
    ]
}

#[test]
fn event_programs_reach_the_states_they_are_named_for() {
    for (name, program, state, applies) in programs() {
        let run = model_events::check(&program.0);
        assert_eq!(
            run.state.name(),
            state,
            "{name}: ends in {} after {} events",
            run.state,
            run.records.len()
        );
        assert!(
            run.applies >= applies,
            "{name}: {} applies, expected at least {applies}",
            run.applies
        );
        if updating() {
            write_seed("model_events", &format!("{name}.bin"), &program.0);
        }
    }
}

#[test]
fn model_events_corpus() {
    for (name, bytes) in corpus("model_events") {
        let run = model_events::check(&bytes);
        assert!(!run.records.is_empty(), "{name}: no event");
    }
}

/// The CR examples as JSON with the server-set metadata rendering needs, plus one without
/// `metadata.uid`.
fn example_clusters() -> Vec<(String, Value)> {
    let dir = root().join("deploy/examples");
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/examples")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for (i, path) in paths.iter().enumerate() {
        let text = std::fs::read_to_string(path).expect("readable example");
        // Some examples carry the ConfigMaps they reference as further documents.
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example is YAML");
        let mut cluster = docs
            .into_iter()
            .find(|d| d["kind"] == "StarRocksCluster")
            .expect("an example holds a StarRocksCluster");
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if i == 0 {
            out.push((format!("{stem}-without-uid"), cluster.clone()));
        }
        let meta = cluster["metadata"].as_object_mut().expect("metadata");
        meta.insert(
            "uid".to_string(),
            Value::String(format!("00000000-0000-4000-8000-{:012}", i + 1)),
        );
        meta.insert("generation".to_string(), Value::from(1));
        out.push((stem, cluster));
    }
    out
}

#[test]
fn cluster_render_corpus() {
    if updating() {
        for (name, cluster) in example_clusters() {
            let json = serde_json::to_vec_pretty(&cluster).unwrap();
            write_seed("cluster_render", &format!("{name}.json"), &json);
        }
    }
    let mut outcomes = BTreeSet::new();
    for (name, bytes) in corpus("cluster_render") {
        let outcome = cluster_render::check(&bytes);
        assert!(
            outcome != cluster_render::Outcome::NotACluster,
            "{name}: not a StarRocksCluster"
        );
        outcomes.insert(format!("{outcome:?}"));
    }
    assert!(
        outcomes.contains("Rendered"),
        "no seed renders: {outcomes:?}"
    );
}

#[test]
fn journal_record_corpus() {
    if updating() {
        // Records of every event kind from the programs, and one carrying a checkpoint.
        let mut kinds = BTreeSet::new();
        for (_, program, _, _) in programs() {
            let run = model_events::check(&program.0);
            for record in &run.records {
                if kinds.insert(record.event.kind()) {
                    let json = serde_json::to_vec_pretty(record).unwrap();
                    write_seed(
                        "journal_record",
                        &format!("{}.json", record.event.kind()),
                        &json,
                    );
                }
            }
        }
        let run = model_events::check(&programs()[1].1.0);
        let keep = run.records.len() / 2;
        let head = starrocks_model::journal::replay(&run.records[..keep]).unwrap();
        let mut record = run.records[keep].clone();
        record.checkpoint = Some(Box::new(head.knowledge().clone()));
        let json = serde_json::to_vec_pretty(&record).unwrap();
        write_seed("journal_record", "with-checkpoint.json", &json);
    }
    let mut kinds = BTreeSet::new();
    for (name, bytes) in corpus("journal_record") {
        assert!(
            journal_record::check(&bytes),
            "{name}: not a journal record"
        );
        let record: starrocks_model::journal::Record = serde_json::from_slice(&bytes).unwrap();
        kinds.insert(record.event.kind());
    }
    assert!(
        kinds.len() >= 5,
        "the seeds should cover most event kinds: {kinds:?}"
    );
}

#[test]
fn every_target_has_a_check_and_a_corpus() {
    let targets: BTreeSet<String> = std::fs::read_dir(root().join("fuzz/fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .map(|e| {
            Path::new(&e.expect("directory entry").file_name())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: BTreeSet<String> = ["cluster_render", "journal_record", "model_events"]
        .map(String::from)
        .into();
    assert_eq!(
        targets, expected,
        "a new fuzz target needs a corpus test here"
    );
    for target in &targets {
        assert!(
            root()
                .join("fuzz/common")
                .join(format!("{target}.rs"))
                .exists()
        );
        assert!(corpus_dir(target).is_dir());
    }
}
