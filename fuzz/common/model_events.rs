//! The `model_events` check, shared by the fuzz target (`fuzz/fuzz_targets/model_events.rs`)
//! and the corpus test (`tests/fuzz_corpus.rs`), which include this file with `#[path]`.
//!
//! Bytes are read as a program of small operations (no `arbitrary`): each operation is one
//! byte (modulo [`op::COUNT`]) and a few argument bytes, and turns into one [`Event`] built
//! from a tiny world the harness keeps (the objects the machine's applies created, their
//! generations and UIDs), so that a short input reaches deep states. Reading past the end
//! gives zeros. Each event is fed to a [`Machine`] and every step is checked:
//!
//! - first deployment: no BE, CN or FE proxy apply while no FE observation that shows a
//!   finished rollout has ever been delivered and no such object has been reported to exist;
//! - while paused, nothing is applied or deleted;
//! - an apply carries the latest spec's template hash and replica count of a component the
//!   spec has; FE is never deleted, and a deleted component is not in the spec;
//! - a state allows only its own applies (Creating: FE; UpgradingBe: BE; UpgradingCn: CN;
//!   UpgradingFe: FE and the proxy; Starting, WaitingFe, Paused, Blocked: none);
//! - a status write and an Event accompany exactly the steps that change state;
//!
//! and at the end: replaying the journal records reproduces every state, action and the final
//! knowledge; so does replaying a trimmed log from a checkpoint; and every record survives
//! JSON. Nothing may panic along the way.

// Each including crate uses a different part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use starrocks_model::journal::{self, Record};
use starrocks_model::{
    Action, Component, ComponentObservation, DesiredCluster, DesiredComponent, Event,
    LifecycleState, Machine,
};
use std::collections::{BTreeMap, VecDeque};

/// At most this many events per input.
pub const MAX_EVENTS: usize = 256;

/// Image tags specs pick from, oldest first.
pub const VERSIONS: [&str; 5] = ["3.2.0", "3.3.2", "3.3-latest", "3.4.1", "latest"];

/// The operation codes (first byte of each operation, modulo [`op::COUNT`]) and their
/// argument bytes.
pub mod op {
    /// A new spec. Args: version index; flags (bit 0 BE one version newer than FE, bit 1 CN
    /// one version older, bit 2 with CN, bit 3 with the FE proxy, bit 4 config salt, bit 5 CN
    /// autoscaled, bits 6-7: 2 invalid, 3 without FE); replicas (2 bits each: FE, BE, CN,
    /// proxy).
    pub const SPEC: u8 = 0;
    /// The oldest pending apply lands: `ApplyFinished` with the object's generation and UID.
    pub const ACK: u8 = 1;
    /// The oldest pending apply fails: `ApplyFailed`.
    pub const FAIL: u8 = 2;
    /// Arg: component. The object as fully rolled out (or `ComponentRemoved` if absent).
    pub const ROLLED_OUT: u8 = 3;
    /// Args: component, two bytes of field choices. An observation mid-rollout, stale, or of
    /// an object the operator did not create.
    pub const OBSERVE: u8 = 4;
    /// Args: component, flags. The object disappears (bit 0) or a removal of an unknown or
    /// long-gone object arrives.
    pub const REMOVE: u8 = 5;
    /// The pause annotation is set.
    pub const PAUSE: u8 = 6;
    /// The pause annotation is removed.
    pub const RESUME: u8 = 7;
    /// Arg: flags (bit 0 paused, bit 1 objects fully rolled out). The operator restarts and
    /// adopts the world from a fresh listing; pending applies die.
    pub const RESTART: u8 = 8;
    /// A periodic resync.
    pub const RESYNC: u8 = 9;
    /// Args: component, generation. An `ApplyFinished` nobody asked for.
    pub const STRAY_ACK: u8 = 10;
    /// The previous event again (a duplicate delivery).
    pub const REPEAT: u8 = 11;
    /// Number of operations.
    pub const COUNT: u8 = 12;
}

/// The outcome of a run, for the corpus test.
#[derive(Debug)]
pub struct Run {
    /// The journal.
    pub records: Vec<Record>,
    /// The final state.
    pub state: LifecycleState,
    /// Applies decided.
    pub applies: usize,
}

/// Runs the check on `data`.
pub fn check(data: &[u8]) -> Run {
    let mut h = Harness::default();
    let mut input = Input(data);
    while !input.0.is_empty() && h.records.len() < MAX_EVENTS {
        let event = h.next_event(&mut input);
        h.feed(event);
    }
    h.check_replay();
    Run {
        state: h.machine.state(),
        records: h.records,
        applies: h.applies,
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn component(&mut self) -> Component {
        Component::ALL[usize::from(self.byte()) % Component::ALL.len()]
    }
}

/// One object of the harness's world.
#[derive(Debug, Clone)]
struct Object {
    uid: String,
    generation: i64,
    hash: String,
    image: String,
    replicas: i32,
}

impl Object {
    fn rolled_out(&self) -> ComponentObservation {
        ComponentObservation {
            uid: Some(self.uid.clone()),
            generation: self.generation,
            observed_generation: Some(self.generation),
            current_revision: Some(self.hash.clone()),
            update_revision: Some(self.hash.clone()),
            replicas: self.replicas,
            status_replicas: self.replicas,
            ready_replicas: self.replicas,
            updated_replicas: self.replicas,
            ready_endpoints: u32::try_from(self.replicas).unwrap_or(0),
            template_hash: Some(self.hash.clone()),
            image: Some(self.image.clone()),
        }
    }
}

/// Whether an observation shows a finished rollout with a ready endpoint: the harness's own
/// reading of the rollout gate's conditions 2 to 5, independent of the model's code.
fn shows_rolled_out(o: &ComponentObservation) -> bool {
    o.observed_generation == Some(o.generation)
        && o.current_revision == o.update_revision
        && o.status_replicas == o.replicas
        && o.ready_replicas == o.replicas
        && o.updated_replicas == o.replicas
        && o.ready_endpoints > 0
}

#[derive(Default)]
struct Harness {
    machine: Machine,
    records: Vec<Record>,
    applies: usize,
    /// The spec last sent (SpecChanged or Restarted).
    spec: DesiredCluster,
    generation: i64,
    objects: BTreeMap<Component, Object>,
    deleted: BTreeMap<Component, String>,
    next_uid: u32,
    /// Applies decided and not yet answered: component, template hash, replicas, image.
    pending: VecDeque<(Component, String, Option<i32>, String)>,
    last_event: Option<Event>,
    paused: bool,
    /// An FE observation showing a finished rollout was delivered, at some point.
    fe_seen_rolled_out: bool,
    /// A BE, CN or FE proxy object was reported to exist: not a first deployment any more.
    others_seen: bool,
}

impl Harness {
    fn render_spec(&mut self, input: &mut Input<'_>) -> DesiredCluster {
        let version = usize::from(input.byte());
        let flags = input.byte();
        let replicas = input.byte();
        let tag = |offset: usize| VERSIONS[(version + offset) % VERSIONS.len()];
        let count = |shift: u8| i32::from((replicas >> shift) & 3);
        let salt = (flags >> 4) & 1;
        let mut components = BTreeMap::new();
        let mut add = |c: Component, image: String, replicas: Option<i32>| {
            components.insert(
                c,
                DesiredComponent {
                    template_hash: format!("{}:{image}#{salt}", c.suffix()),
                    image,
                    replicas,
                },
            );
        };
        if flags >> 6 != 3 {
            add(
                Component::Fe,
                format!("starrocks/fe-ubuntu:{}", tag(0)),
                Some(count(0)),
            );
        }
        let be_offset = usize::from(flags & 1);
        add(
            Component::Be,
            format!("starrocks/be-ubuntu:{}", tag(be_offset)),
            Some(count(2)),
        );
        if flags & 4 != 0 {
            let cn_offset = if flags & 2 != 0 {
                VERSIONS.len() - 1
            } else {
                0
            };
            let cn_replicas = (flags & 32 == 0).then(|| count(4));
            add(
                Component::Cn,
                format!("starrocks/cn-ubuntu:{}", tag(cn_offset)),
                cn_replicas,
            );
        }
        if flags & 8 != 0 {
            add(Component::FeProxy, "nginx:1.27".to_string(), Some(count(6)));
        }
        self.generation += 1;
        DesiredCluster {
            generation: self.generation,
            components,
            invalid: (flags >> 6 == 2)
                .then(|| "spec.starRocksBeSpec.replicas: must be >= 0, got -1".to_string()),
        }
    }

    fn new_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("uid-{}", self.next_uid)
    }

    /// Reads one operation and builds its event, updating the harness's world.
    fn next_event(&mut self, input: &mut Input<'_>) -> Event {
        match input.byte() % op::COUNT {
            op::SPEC => Event::SpecChanged {
                spec: self.render_spec(input),
            },
            op::ACK => match self.pending.pop_front() {
                Some((component, template_hash, replicas, image)) => {
                    let uid = self.new_uid();
                    let object = self.objects.entry(component).or_insert(Object {
                        uid,
                        generation: 1,
                        hash: template_hash.clone(),
                        image: String::new(),
                        replicas: replicas.unwrap_or(1),
                    });
                    let replicas = replicas.unwrap_or(object.replicas);
                    if object.hash != template_hash || object.replicas != replicas {
                        object.generation += 1;
                        object.hash = template_hash.clone();
                        object.replicas = replicas;
                    }
                    object.image = image;
                    Event::ApplyFinished {
                        component,
                        template_hash,
                        generation: object.generation,
                        uid: Some(object.uid.clone()),
                    }
                }
                None => Event::Resync,
            },
            op::FAIL => match self.pending.pop_front() {
                Some((component, template_hash, _, _)) => Event::ApplyFailed {
                    component,
                    template_hash,
                    reason: "injected 500".to_string(),
                },
                None => Event::Resync,
            },
            op::ROLLED_OUT => {
                let component = input.component();
                match self.objects.get(&component) {
                    Some(object) => Event::Observed {
                        component,
                        observation: object.rolled_out(),
                    },
                    None => Event::ComponentRemoved {
                        component,
                        uid: self.deleted.get(&component).cloned(),
                    },
                }
            }
            op::OBSERVE => self.observe(input),
            op::REMOVE => {
                let component = input.component();
                let flags = input.byte();
                let uid = if flags & 1 != 0 {
                    self.objects.remove(&component).map(|o| {
                        self.deleted.insert(component, o.uid.clone());
                        o.uid
                    })
                } else if flags & 2 != 0 {
                    self.deleted.get(&component).cloned()
                } else {
                    None
                };
                Event::ComponentRemoved { component, uid }
            }
            op::PAUSE => Event::Paused,
            op::RESUME => Event::Resumed,
            op::RESTART => {
                let flags = input.byte();
                self.pending.clear();
                let observations = self
                    .objects
                    .iter()
                    .map(|(c, o)| {
                        let mut observation = o.rolled_out();
                        if flags & 2 == 0 {
                            // The controller has not caught up with the last write yet.
                            observation.observed_generation = Some(o.generation - 1);
                            observation.current_revision = Some("previous".to_string());
                            observation.ready_replicas = 0;
                        }
                        (*c, observation)
                    })
                    .collect();
                Event::Restarted {
                    spec: self.spec.clone(),
                    observations,
                    paused: flags & 1 != 0,
                }
            }
            op::STRAY_ACK => {
                let component = input.component();
                let generation = i64::from(input.byte());
                let template_hash = self
                    .spec
                    .get(component)
                    .map_or_else(|| "stray".to_string(), |d| d.template_hash.clone());
                let uid = self.objects.get(&component).map(|o| o.uid.clone());
                Event::ApplyFinished {
                    component,
                    template_hash,
                    generation,
                    uid,
                }
            }
            op::REPEAT => self.last_event.clone().unwrap_or(Event::Resync),
            _ => Event::Resync,
        }
    }

    /// An observation that is not a finished rollout, or of an object the operator did not
    /// create (adoption), or stale.
    fn observe(&mut self, input: &mut Input<'_>) -> Event {
        let component = input.component();
        let a = input.byte();
        let b = input.byte();
        let object = match self.objects.get(&component) {
            Some(object) => object.clone(),
            None if b & 128 != 0 => {
                // Someone else's object: adopted, at the spec's template or a foreign one.
                let (hash, image) = match self.spec.get(component) {
                    Some(d) if a & 128 == 0 => (d.template_hash.clone(), d.image.clone()),
                    _ => (
                        format!("{}:foreign", component.suffix()),
                        format!("starrocks/{}-ubuntu:{}", component.suffix(), VERSIONS[0]),
                    ),
                };
                let object = Object {
                    uid: format!("uid-adopted-{}", component.suffix()),
                    generation: 1,
                    hash,
                    image,
                    replicas: 1,
                };
                self.objects.insert(component, object.clone());
                object
            }
            None => {
                return Event::ComponentRemoved {
                    component,
                    uid: None,
                };
            }
        };
        let mut o = object.rolled_out();
        o.observed_generation = match a & 3 {
            0 => None,
            1 => Some(object.generation - 1),
            2 => Some(object.generation),
            _ => Some(object.generation + 1),
        };
        if a & 4 != 0 {
            o.current_revision = Some("previous".to_string());
        }
        if a & 8 != 0 {
            o.update_revision = None;
        }
        if a & 16 != 0 {
            o.ready_endpoints = 0;
        }
        if a & 32 != 0 {
            o.template_hash = None;
        }
        if a & 64 != 0 {
            o.generation -= 1;
        }
        o.status_replicas = i32::from(b & 3);
        o.ready_replicas = i32::from((b >> 2) & 3);
        o.updated_replicas = i32::from((b >> 4) & 3);
        Event::Observed {
            component,
            observation: o,
        }
    }

    /// Feeds one event, checks the step, journals it and runs the actions on the world.
    fn feed(&mut self, event: Event) {
        match &event {
            Event::SpecChanged { spec } => self.spec = spec.clone(),
            Event::Observed {
                component,
                observation,
            } => self.note_observation(*component, observation),
            Event::Paused => self.paused = true,
            Event::Resumed => self.paused = false,
            Event::Restarted {
                spec,
                observations,
                paused,
            } => {
                self.spec = spec.clone();
                self.paused = *paused;
                for (component, observation) in observations {
                    self.note_observation(*component, observation);
                }
            }
            Event::ComponentRemoved { .. }
            | Event::ApplyFinished { .. }
            | Event::ApplyFailed { .. }
            | Event::Resync => {}
        }
        let step = self.machine.handle(&event);
        let context = || format!("after {:?} in {}", event.kind(), step.before);
        let changed = step.before != step.after;
        let status_writes = step
            .actions
            .iter()
            .filter(|a| matches!(a, Action::WriteStatus { .. }))
            .count();
        assert_eq!(
            status_writes,
            usize::from(changed),
            "{}: one status write exactly when the state changes: {:?}",
            context(),
            step.actions
        );
        let mut applied = Vec::new();
        for action in &step.actions {
            match action {
                Action::Apply {
                    component,
                    template_hash,
                    replicas,
                } => {
                    let c = *component;
                    assert!(!self.paused, "{}: {c} applied while paused", context());
                    assert!(
                        !applied.contains(&c),
                        "{}: {c} applied twice in one step",
                        context()
                    );
                    applied.push(c);
                    let Some(want) = self.spec.get(c) else {
                        panic!("{}: {c} applied but not in the spec", context());
                    };
                    assert_eq!(
                        (template_hash, replicas),
                        (&want.template_hash, &want.replicas),
                        "{}: {c} applied with something else than the latest spec",
                        context()
                    );
                    assert!(
                        c == Component::Fe || self.fe_seen_rolled_out || self.others_seen,
                        "{}: {c} applied on first deployment before FE was ever seen rolled out",
                        context()
                    );
                    let allowed: &[Component] = match &step.after {
                        LifecycleState::Creating => &[Component::Fe],
                        LifecycleState::UpgradingBe(_) => &[Component::Be],
                        LifecycleState::UpgradingCn(_) => &[Component::Cn],
                        LifecycleState::UpgradingFe(_) => &[Component::Fe, Component::FeProxy],
                        LifecycleState::Steady => &Component::ALL,
                        LifecycleState::Starting
                        | LifecycleState::WaitingFe
                        | LifecycleState::Paused
                        | LifecycleState::Blocked(_) => &[],
                    };
                    assert!(
                        allowed.contains(&c),
                        "{}: {c} applied in {}",
                        context(),
                        step.after
                    );
                    self.applies += 1;
                    self.pending.push_back((
                        c,
                        template_hash.clone(),
                        *replicas,
                        want.image.clone(),
                    ));
                }
                Action::Delete { component } => {
                    let c = *component;
                    assert!(!self.paused, "{}: {c} deleted while paused", context());
                    assert!(c != Component::Fe, "{}: FE deleted", context());
                    assert!(
                        self.spec.get(c).is_none(),
                        "{}: {c} deleted while the spec has it",
                        context()
                    );
                    if let Some(object) = self.objects.remove(&c) {
                        self.deleted.insert(c, object.uid);
                    }
                }
                Action::WriteStatus { state } => assert_eq!(
                    state,
                    &step.after,
                    "{}: the status write is not the new state",
                    context()
                ),
                Action::EmitEvent { .. } => {}
            }
        }
        let seq = self.records.len() as u64;
        let time =
            DateTime::<Utc>::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap_or_default();
        self.records
            .push(Record::new(seq, time, event.clone(), step));
        self.last_event = Some(event);
    }

    fn note_observation(&mut self, component: Component, observation: &ComponentObservation) {
        if component == Component::Fe {
            if shows_rolled_out(observation) {
                self.fe_seen_rolled_out = true;
            }
        } else {
            self.others_seen = true;
        }
    }

    /// Replays the journal, whole and trimmed to a checkpoint, and round-trips it through JSON.
    fn check_replay(&self) {
        let same = |replayed: &Machine, how: &str| {
            assert_eq!(
                replayed.state(),
                self.machine.state(),
                "{how}: the final state differs"
            );
            assert_eq!(
                replayed.knowledge(),
                self.machine.knowledge(),
                "{how}: the final knowledge differs"
            );
        };
        match journal::replay(&self.records) {
            Ok(replayed) => same(&replayed, "replay"),
            Err(d) => panic!("replaying the journal diverged: {d}"),
        }
        // Retention: the first half is dropped and the first kept record carries the
        // knowledge the dropped ones led to.
        let keep = self.records.len() / 2;
        let head = match journal::replay(&self.records[..keep]) {
            Ok(head) => head,
            Err(d) => panic!("replaying the journal's head diverged: {d}"),
        };
        let mut tail = self.records[keep..].to_vec();
        if let Some(first) = tail.first_mut() {
            first.checkpoint = Some(Box::new(head.knowledge().clone()));
            match journal::replay(&tail) {
                Ok(replayed) => same(&replayed, "replay from a checkpoint"),
                Err(d) => panic!("replaying from a checkpoint diverged: {d}"),
            }
        }
        let mut decoded = Vec::new();
        for record in self.records.iter().chain(tail.first()) {
            let json = match serde_json::to_vec(record) {
                Ok(json) => json,
                Err(e) => panic!("record {} does not encode: {e}", record.seq),
            };
            match serde_json::from_slice::<Record>(&json) {
                Ok(back) => {
                    assert_eq!(&back, record, "record {} changed through JSON", record.seq);
                    decoded.push(back);
                }
                Err(e) => panic!("record {} does not decode: {e}", record.seq),
            }
        }
        decoded.truncate(self.records.len());
        if let Err(d) = journal::replay(&decoded) {
            panic!("replaying the decoded journal diverged: {d}");
        }
    }
}
