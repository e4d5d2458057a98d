//! A small world model of one StarRocks cluster on Kubernetes, and an operator harness that
//! drives a lifecycle [`Machine`] through it.
//!
//! The world holds the workloads (StatefulSet-like objects with pods), executes the operator's
//! applies at once (the API server bumps `metadata.generation` and stores the template; the
//! status lags until a controller step), rolls pods one at a time in reverse ordinal order
//! waiting for readiness, makes pods ready (never, for an image containing `bad`), and delivers
//! observations to the operator late, twice or out of order. The checkers judge every apply
//! against the world's truth, not against what the operator believed.

#![allow(dead_code)]

use chrono::DateTime;
use starrocks_model::journal::{self, Record};
use starrocks_model::{
    Action, Component, ComponentObservation, DesiredCluster, DesiredComponent, Direction, Event,
    LifecycleState, Machine, Rules, Step, version,
};
use std::collections::BTreeMap;

/// StarRocks versions the generators pick from, oldest first.
pub const VERSIONS: [&str; 5] = ["3.2.0", "3.3.2", "3.3-latest", "3.4.1", "latest"];

/// A pod: the revision (template hash) it runs and whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pod {
    pub revision: String,
    pub ready: bool,
}

/// One workload object with the StatefulSet controller's semantics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    pub uid: u32,
    pub generation: i64,
    pub hash: String,
    pub image: String,
    pub replicas: i32,
    pub observed_generation: Option<i64>,
    pub update_revision: Option<String>,
    pub current_revision: Option<String>,
    pub status_ready: i32,
    pub status_updated: i32,
    pub status_pods: i32,
    pub pods: Vec<Pod>,
}

impl Workload {
    fn new(uid: u32, hash: &str, image: &str, replicas: i32) -> Workload {
        Workload {
            uid,
            generation: 1,
            hash: hash.to_string(),
            image: image.to_string(),
            replicas,
            observed_generation: None,
            update_revision: None,
            current_revision: None,
            status_ready: 0,
            status_updated: 0,
            status_pods: 0,
            pods: Vec::new(),
        }
    }

    /// One reconcile of the workload controller (Parallel pod management, RollingUpdate):
    /// observe a new generation, else create or remove one pod, else walk the pods from the
    /// highest ordinal down, replacing the first outdated one and stopping at an updated pod
    /// that is not ready (the StatefulSet controller's rolling update); then
    /// publish status. `currentRevision` moves to `updateRevision` only when every pod is
    /// updated and ready, as the StatefulSet controller does.
    pub fn controller_step(&mut self) {
        if self.observed_generation != Some(self.generation) {
            self.observed_generation = Some(self.generation);
            self.update_revision = Some(self.hash.clone());
            if self.current_revision.is_none() {
                self.current_revision = Some(self.hash.clone());
            }
        } else {
            let update = self.hash.clone();
            if (self.pods.len() as i32) < self.replicas {
                self.pods.push(Pod {
                    revision: update,
                    ready: false,
                });
            } else if (self.pods.len() as i32) > self.replicas {
                self.pods.pop();
            } else {
                // RollingUpdate from the highest ordinal down: an outdated pod is replaced
                // whatever its health; an updated pod that is not ready holds the rollout.
                for pod in self.pods.iter_mut().rev() {
                    if pod.revision != update {
                        *pod = Pod {
                            revision: update,
                            ready: false,
                        };
                        break;
                    }
                    if !pod.ready {
                        break;
                    }
                }
            }
        }
        let update = self.update_revision.clone();
        self.status_ready = self.pods.iter().filter(|p| p.ready).count() as i32;
        self.status_pods = self.pods.len() as i32;
        self.status_updated = self
            .pods
            .iter()
            .filter(|p| Some(&p.revision) == update.as_ref())
            .count() as i32;
        if self.pods.len() as i32 == self.replicas
            && self
                .pods
                .iter()
                .all(|p| p.ready && Some(&p.revision) == update.as_ref())
        {
            self.current_revision = update;
        }
    }

    /// The kubelet: the first not-ready pod whose image is good becomes ready.
    pub fn pod_ready(&mut self, images: &BTreeMap<String, String>) -> bool {
        for pod in &mut self.pods {
            let bad = images.get(&pod.revision).is_none_or(|i| i.contains("bad"));
            if !pod.ready && !bad {
                pod.ready = true;
                return true;
            }
        }
        false
    }

    /// What a cache would show now.
    pub fn snapshot(&self) -> ComponentObservation {
        ComponentObservation {
            uid: Some(format!("uid-{}", self.uid)),
            generation: self.generation,
            observed_generation: self.observed_generation,
            current_revision: self.current_revision.clone(),
            update_revision: self.update_revision.clone(),
            replicas: self.replicas,
            status_replicas: self.status_pods,
            ready_replicas: self.status_ready,
            updated_replicas: self.status_updated,
            ready_endpoints: self.pods.iter().filter(|p| p.ready).count() as u32,
            template_hash: Some(self.hash.clone()),
            image: Some(self.image.clone()),
        }
    }

    /// The truth: the workload carries `hash` and has finished rolling it out.
    pub fn rolled_out_at(&self, hash: &str) -> bool {
        self.hash == hash
            && self.observed_generation == Some(self.generation)
            && self.update_revision.as_deref() == Some(hash)
            && self.current_revision == self.update_revision
            && self.pods.len() as i32 == self.replicas
            && self.pods.iter().all(|p| p.ready && p.revision == hash)
    }

    /// The truth of the rollout gate.
    pub fn gate_passes(&self) -> bool {
        self.rolled_out_at(&self.hash) && self.pods.iter().any(|p| p.ready)
    }
}

/// What a generated spec looks like.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecChoice {
    pub version: usize,
    /// Per component (FE, BE, CN, proxy) a config salt: a different salt is a config change.
    pub salt: [u8; 4],
    pub fe_replicas: i32,
    pub be_replicas: i32,
    pub with_cn: bool,
    pub with_proxy: bool,
    /// A component whose image never becomes ready.
    pub bad: Option<Component>,
    pub invalid: bool,
    pub without_fe: bool,
}

impl SpecChoice {
    /// A plain valid spec at `version` with FE, BE and CN of one replica each.
    pub fn simple(version: usize) -> SpecChoice {
        SpecChoice {
            version,
            salt: [0; 4],
            fe_replicas: 1,
            be_replicas: 1,
            with_cn: true,
            with_proxy: false,
            bad: None,
            invalid: false,
            without_fe: false,
        }
    }

    pub fn render(&self, generation: i64) -> DesiredCluster {
        let tag = VERSIONS[self.version % VERSIONS.len()];
        let mut components = BTreeMap::new();
        let mut add = |c: Component, replicas: i32, salt: u8| {
            let suffix = if self.bad == Some(c) { "-bad" } else { "" };
            let image = match c {
                Component::FeProxy => format!("nginx:1.27{suffix}"),
                _ => format!("starrocks/{}-ubuntu:{tag}{suffix}", c.suffix()),
            };
            components.insert(
                c,
                DesiredComponent {
                    template_hash: format!("{}:{image}#{salt}", c.suffix()),
                    image,
                    replicas: Some(replicas),
                },
            );
        };
        if !self.without_fe {
            add(Component::Fe, self.fe_replicas, self.salt[0]);
        }
        add(Component::Be, self.be_replicas, self.salt[1]);
        if self.with_cn {
            add(Component::Cn, 1, self.salt[2]);
        }
        if self.with_proxy {
            add(Component::FeProxy, 1, self.salt[3]);
        }
        DesiredCluster {
            generation,
            components,
            invalid: self
                .invalid
                .then(|| "spec.starRocksBeSpec.replicas: must be >= 0, got -1".to_string()),
        }
    }
}

/// What happens to the journal when the operator crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JournalFate {
    Intact,
    Lost,
    /// The last n records are lost.
    Truncated(usize),
}

/// One move of the world.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Choice {
    /// Deliver and remove the inbox entry at this index (modulo its length).
    Deliver(usize),
    /// Deliver the inbox entry at this index and keep it: a duplicate.
    Duplicate(usize),
    /// Put what the cache would show of a component now into the inbox.
    Snapshot(Component),
    Controller(Component),
    /// The controller reconciles until it has nothing more to do without a pod becoming ready.
    Reconcile(Component),
    /// The operator observes the component as it is now; the previous observation of it still
    /// waiting in the inbox (if any) stays there, to arrive late. At most one waits per
    /// component.
    Observe(Component),
    /// A pod becomes ready and the controller reconciles on it at once.
    ReadyAndReconcile(Component),
    PodReady(Component),
    Spec(SpecChoice),
    Pause,
    Resume,
    Crash(JournalFate),
    /// The operator dies right after its next apply lands, before it records the result.
    CrashDuringApply(JournalFate),
    Resync,
    FailNextApply,
}

/// A property violation seen by a checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The property number of the issue (1 first deployment, 2 upgrade order, 3 downgrade
    /// order, 6 paused); 0 for an apply of a template that is not the latest spec's.
    pub property: u8,
    pub message: String,
}

/// The operator under test: rules, an option to ignore the pause annotation (a deliberately
/// wrong policy), the machine and its journal.
pub struct Operator {
    pub rules: Rules,
    pub ignore_pause: bool,
    pub machine: Machine,
    pub journal: Vec<Record>,
    pub seq: u64,
    /// Replay failures seen when restoring from the journal after a crash.
    pub replay_failures: Vec<String>,
    /// Whether records are kept. Without them (the exhaustive search, which branches the
    /// operator), an intact journal is modelled by restoring the machine's state and knowledge
    /// directly: what replaying it gives, as the replay property proves.
    pub keep_journal: bool,
}

impl Operator {
    pub fn new(rules: Rules, ignore_pause: bool) -> Operator {
        Operator {
            rules,
            ignore_pause,
            machine: Machine::with_rules(rules),
            journal: Vec::new(),
            seq: 0,
            replay_failures: Vec::new(),
            keep_journal: true,
        }
    }

    /// An operator without a journal, for branching searches.
    pub fn unjournaled(rules: Rules) -> Operator {
        Operator {
            keep_journal: false,
            ..Operator::new(rules, false)
        }
    }

    /// A copy of this operator (its machine restored from state and knowledge), without the
    /// journal.
    pub fn fork(&self) -> Operator {
        Operator {
            rules: self.rules,
            ignore_pause: self.ignore_pause,
            machine: Machine::restore(
                self.rules,
                self.machine.state(),
                self.machine.knowledge().clone(),
            ),
            journal: Vec::new(),
            seq: self.seq,
            replay_failures: Vec::new(),
            keep_journal: false,
        }
    }

    /// Feeds an event, journals the step, returns the actions.
    pub fn feed(&mut self, event: Event) -> Vec<Action> {
        let event = if self.ignore_pause {
            match event {
                Event::Paused => Event::Resync,
                Event::Restarted {
                    spec, observations, ..
                } => Event::Restarted {
                    spec,
                    observations,
                    paused: false,
                },
                other => other,
            }
        } else {
            event
        };
        let step: Step = self.machine.handle(&event);
        let time = DateTime::from_timestamp(1_700_000_000 + self.seq as i64, 0)
            .expect("a fixed timestamp in range");
        let actions = step.actions.clone();
        if self.keep_journal {
            self.journal.push(Record::new(self.seq, time, event, step));
        }
        self.seq += 1;
        actions
    }

    /// A crash: the process and its in-flight work are gone; the journal is kept, lost or
    /// truncated; the new process restores from what is left by replaying it.
    pub fn crash(&mut self, fate: JournalFate) {
        if !self.keep_journal {
            self.machine = match fate {
                JournalFate::Intact => Machine::restore(
                    self.rules,
                    self.machine.state(),
                    self.machine.knowledge().clone(),
                ),
                _ => Machine::with_rules(self.rules),
            };
            return;
        }
        match fate {
            JournalFate::Intact => {}
            JournalFate::Lost => self.journal.clear(),
            JournalFate::Truncated(n) => {
                let keep = self.journal.len().saturating_sub(n);
                self.journal.truncate(keep);
            }
        }
        self.seq = self.journal.last().map_or(0, |r| r.seq + 1);
        self.machine = match journal::replay_with(self.rules, &self.journal, |_, _| {}) {
            Ok(machine) => machine,
            Err(divergence) => {
                self.replay_failures.push(divergence.to_string());
                Machine::with_rules(self.rules)
            }
        };
    }

    pub fn state(&self) -> LifecycleState {
        self.machine.state()
    }

    /// The journal as a compact timeline, for failure messages.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for r in &self.journal {
            let event = match &r.event {
                Event::Observed {
                    component,
                    observation: o,
                } => format!(
                    "observed {component} gen {} obs {:?} cur {:?} upd {:?} pods {} ready {} updated {} of {} ep {} tpl {:?}",
                    o.generation,
                    o.observed_generation,
                    o.current_revision,
                    o.update_revision,
                    o.status_replicas,
                    o.ready_replicas,
                    o.updated_replicas,
                    o.replicas,
                    o.ready_endpoints,
                    o.template_hash
                ),
                Event::SpecChanged { spec } => format!(
                    "spec gen {}: {:?}",
                    spec.generation,
                    spec.components
                        .iter()
                        .map(|(c, d)| format!("{c}={}", d.template_hash))
                        .collect::<Vec<_>>()
                ),
                Event::Restarted { .. } => "restarted".to_string(),
                other => format!("{other:?}"),
            };
            let applies: Vec<String> = r
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Apply {
                        component,
                        template_hash,
                        ..
                    } => Some(format!("apply {component} {template_hash}")),
                    Action::Delete { component } => Some(format!("delete {component}")),
                    _ => None,
                })
                .collect();
            out.push_str(&format!(
                "#{} {event}\n    {} -> {} {applies:?}\n",
                r.seq, r.before, r.after
            ));
        }
        out
    }
}

/// The world of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct World {
    pub objects: BTreeMap<Component, Workload>,
    /// Template hash to image, for every template ever specified.
    pub images: BTreeMap<String, String>,
    pub spec: DesiredCluster,
    pub paused: bool,
    pub fe_passed_gate: bool,
    pub inbox: Vec<Event>,
    pub fail_next_apply: bool,
    pub next_uid: u32,
    pub violations: Vec<(u8, String)>,
    pub applies: usize,
    /// The UID of the last deleted object per component.
    pub deleted: BTreeMap<Component, u32>,
    pub crash_during_apply: Option<JournalFate>,
}

impl World {
    pub fn new() -> World {
        World {
            objects: BTreeMap::new(),
            images: BTreeMap::new(),
            spec: DesiredCluster::default(),
            paused: false,
            fe_passed_gate: false,
            inbox: Vec::new(),
            fail_next_apply: false,
            next_uid: 1,
            violations: Vec::new(),
            applies: 0,
            deleted: BTreeMap::new(),
            crash_during_apply: None,
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .iter()
            .map(|(property, message)| Violation {
                property: *property,
                message: message.clone(),
            })
            .collect()
    }

    fn violate(&mut self, property: u8, message: String) {
        self.violations.push((property, message));
    }

    /// A new spec: the CR changes and the operator's CR watch delivers it at once.
    pub fn set_spec(&mut self, choice: &SpecChoice, op: &mut Operator) {
        let spec = choice.render(self.spec.generation + 1);
        self.install_spec(spec, op);
    }

    pub fn install_spec(&mut self, spec: DesiredCluster, op: &mut Operator) {
        for d in spec.components.values() {
            self.images.insert(d.template_hash.clone(), d.image.clone());
        }
        self.spec = spec.clone();
        self.feed(op, Event::SpecChanged { spec });
    }

    /// Plays one choice.
    pub fn play(&mut self, choice: &Choice, op: &mut Operator) {
        match choice {
            Choice::Deliver(i) | Choice::Duplicate(i) => {
                if self.inbox.is_empty() {
                    return;
                }
                let i = i % self.inbox.len();
                let event = if matches!(choice, Choice::Deliver(_)) {
                    self.inbox.remove(i)
                } else {
                    self.inbox[i].clone()
                };
                self.feed(op, event);
            }
            Choice::Snapshot(c) => {
                let event = match self.objects.get(c) {
                    Some(w) => Event::Observed {
                        component: *c,
                        observation: w.snapshot(),
                    },
                    None => Event::ComponentRemoved {
                        component: *c,
                        uid: self.deleted.get(c).map(|u| format!("uid-{u}")),
                    },
                };
                self.inbox.push(event);
            }
            Choice::Controller(c) => {
                if let Some(w) = self.objects.get_mut(c) {
                    w.controller_step();
                }
                self.note_fe_gate();
            }
            Choice::ReadyAndReconcile(c) => {
                self.play(&Choice::PodReady(*c), op);
                self.play(&Choice::Reconcile(*c), op);
            }
            Choice::Observe(c) => {
                let Some(obj) = self.objects.get(c) else {
                    return;
                };
                let now = obj.snapshot();
                let held =
                    |e: &Event| matches!(e, Event::Observed { component, .. } if component == c);
                if !self.inbox.iter().any(held) {
                    self.inbox.push(Event::Observed {
                        component: *c,
                        observation: now.clone(),
                    });
                }
                self.feed(
                    op,
                    Event::Observed {
                        component: *c,
                        observation: now,
                    },
                );
            }
            Choice::Reconcile(c) => {
                if let Some(w) = self.objects.get_mut(c) {
                    loop {
                        let before = w.clone();
                        w.controller_step();
                        if *w == before {
                            break;
                        }
                    }
                }
                self.note_fe_gate();
            }
            Choice::PodReady(c) => {
                if let Some(w) = self.objects.get_mut(c) {
                    w.pod_ready(&self.images);
                }
                self.note_fe_gate();
            }
            Choice::Spec(s) => self.set_spec(s, op),
            Choice::Pause => {
                self.paused = true;
                self.feed(op, Event::Paused);
            }
            Choice::Resume => {
                self.paused = false;
                self.feed(op, Event::Resumed);
            }
            Choice::Crash(fate) => self.restart(op, *fate),
            Choice::CrashDuringApply(fate) => self.crash_during_apply = Some(*fate),
            Choice::Resync => self.feed(op, Event::Resync),
            Choice::FailNextApply => self.fail_next_apply = true,
        }
    }

    fn note_fe_gate(&mut self) {
        if self
            .objects
            .get(&Component::Fe)
            .is_some_and(|w| w.gate_passes())
        {
            self.fe_passed_gate = true;
        }
    }

    /// Feeds an event and runs the actions, as the shell does: all actions of the step, then
    /// their results (apply generations or failures) fed back at once, before anything else.
    /// With `crash_during_apply` set, the process dies right after the next apply landed and
    /// before its result was recorded.
    fn feed(&mut self, op: &mut Operator, event: Event) {
        let mut pending = std::collections::VecDeque::from([event]);
        let mut handled = 0;
        while let Some(event) = pending.pop_front() {
            handled += 1;
            if handled > 1_000 {
                self.violate(
                    5,
                    format!("the operator loops: 1,000 steps on one event, last {event:?}"),
                );
                return;
            }
            for action in op.feed(event) {
                let result = self.execute(&action);
                if matches!(action, Action::Apply { .. })
                    && let Some(fate) = self.crash_during_apply.take()
                {
                    self.restart(op, fate);
                    return;
                }
                pending.extend(result);
            }
        }
    }

    /// The operator process dies and a new one adopts the cluster from a fresh listing.
    fn restart(&mut self, op: &mut Operator, fate: JournalFate) {
        op.crash(fate);
        // Nothing from the old watches arrives any more.
        self.inbox.clear();
        let observations = self
            .objects
            .iter()
            .map(|(c, w)| (*c, w.snapshot()))
            .collect();
        self.feed(
            op,
            Event::Restarted {
                spec: self.spec.clone(),
                observations,
                paused: self.paused,
            },
        );
    }

    /// Runs one action of the operator, judging it first; returns the result to feed back.
    fn execute(&mut self, action: &Action) -> Option<Event> {
        match action {
            Action::Apply {
                component,
                template_hash,
                replicas,
            } => {
                self.check_apply(*component, template_hash);
                self.applies += 1;
                if std::mem::take(&mut self.fail_next_apply) {
                    return Some(Event::ApplyFailed {
                        component: *component,
                        template_hash: template_hash.clone(),
                        reason: "injected 500".to_string(),
                    });
                }
                let image = self.images.get(template_hash).cloned().unwrap_or_default();
                let replicas = replicas.unwrap_or(1);
                let (generation, uid) = match self.objects.get_mut(component) {
                    Some(w) => {
                        if w.hash != *template_hash || w.replicas != replicas {
                            w.generation += 1;
                            w.hash = template_hash.clone();
                            w.image = image;
                            w.replicas = replicas;
                        }
                        (w.generation, w.uid)
                    }
                    None => {
                        let uid = self.next_uid;
                        self.next_uid += 1;
                        let w = Workload::new(uid, template_hash, &image, replicas);
                        self.objects.insert(*component, w);
                        (1, uid)
                    }
                };
                Some(Event::ApplyFinished {
                    component: *component,
                    template_hash: template_hash.clone(),
                    generation,
                    uid: Some(format!("uid-{uid}")),
                })
            }
            Action::Delete { component } => {
                if self.paused {
                    self.violate(6, format!("{component} deleted while paused"));
                }
                if let Some(gone) = self.objects.remove(component) {
                    self.deleted.insert(*component, gone.uid);
                }
                None
            }
            Action::WriteStatus { .. } | Action::EmitEvent { .. } => None,
        }
    }

    /// The checkers, against the world's truth before the apply lands.
    fn check_apply(&mut self, component: Component, hash: &str) {
        if self.paused {
            self.violate(6, format!("{component} applied while paused"));
        }
        let Some(target) = self.spec.get(component).cloned() else {
            self.violate(0, format!("{component} applied but not in the spec"));
            return;
        };
        if target.template_hash != hash {
            self.violate(
                0,
                format!(
                    "{component} applied at {hash}, the latest spec has {}",
                    target.template_hash
                ),
            );
        }
        let existing = self.objects.get(&component).cloned();
        let Some(existing) = existing else {
            if component != Component::Fe && !self.fe_passed_gate {
                self.violate(1, format!("{component} created before the FE gate passed"));
            }
            return;
        };
        if existing.hash == hash || !component.is_versioned() {
            return;
        }
        let votes: Vec<(String, String, String)> = [Component::Fe, Component::Be, Component::Cn]
            .into_iter()
            .filter_map(|c| {
                let w = self.objects.get(&c)?;
                let d = self.spec.get(c)?;
                (w.hash != d.template_hash)
                    .then(|| (c.to_string(), w.image.clone(), d.image.clone()))
            })
            .collect();
        let direction = version::direction(
            votes
                .iter()
                .map(|(n, f, t)| (n.as_str(), f.as_str(), t.as_str())),
        );
        let (objects, spec) = (&self.objects, &self.spec);
        let done = |c: Component| -> bool {
            match (objects.get(&c), spec.get(c)) {
                (Some(w), Some(d)) => w.rolled_out_at(&d.template_hash),
                _ => true,
            }
        };
        let mut found = Vec::new();
        match direction {
            Err(mixed) => {
                found.push((2, format!("{component} template changed under {mixed}")));
                found.push((3, format!("{component} template changed under {mixed}")));
            }
            Ok(Direction::Upgrade) => {
                let waits: &[Component] = match component {
                    Component::Fe => &[Component::Be, Component::Cn],
                    Component::Cn => &[Component::Be],
                    _ => &[],
                };
                for w in waits {
                    if !done(*w) {
                        found.push((
                            2,
                            format!("upgrade: {component} template changed while the {w} rollout is incomplete"),
                        ));
                    }
                }
            }
            Ok(Direction::Downgrade) => {
                let waits: &[Component] = match component {
                    Component::Be => &[Component::Fe],
                    Component::Cn => &[Component::Fe, Component::Be],
                    _ => &[],
                };
                for w in waits {
                    if !done(*w) {
                        found.push((
                            3,
                            format!("downgrade: {component} template changed while the {w} rollout is incomplete"),
                        ));
                    }
                }
            }
        }
        self.violations.extend(found);
    }

    /// Whether the world matches the spec: every component rolled out at its template with
    /// its replicas, nothing extra.
    pub fn converged(&self) -> bool {
        self.spec.components.len() == self.objects.len()
            && self.spec.components.iter().all(|(c, d)| {
                self.objects.get(c).is_some_and(|w| {
                    w.rolled_out_at(&d.template_hash) && Some(w.replicas) == d.replicas
                })
            })
    }

    /// The world stops changing: a fair scheduler runs every controller, readies every pod,
    /// delivers every observation and resyncs, round after round. Returns the number of rounds
    /// it took for the operator to be Steady on a converged world, or `None` within `bound`.
    pub fn settle(&mut self, op: &mut Operator, bound: usize) -> Option<usize> {
        for round in 0..bound {
            for c in Component::ALL {
                self.play(&Choice::Controller(c), op);
                while self
                    .objects
                    .get(&c)
                    .is_some_and(|w| w.pods.iter().any(|p| !p.ready))
                {
                    let before = self.objects.get(&c).cloned();
                    self.play(&Choice::PodReady(c), op);
                    if self.objects.get(&c).cloned() == before {
                        break;
                    }
                }
                // The controller publishes the readiness it just saw.
                self.play(&Choice::Controller(c), op);
                self.play(&Choice::Snapshot(c), op);
            }
            while !self.inbox.is_empty() {
                self.play(&Choice::Deliver(0), op);
            }
            self.play(&Choice::Resync, op);
            if op.state() == LifecycleState::Steady && self.converged() && self.inbox.is_empty() {
                return Some(round);
            }
        }
        None
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}
