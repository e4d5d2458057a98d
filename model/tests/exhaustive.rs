//! A bounded exhaustive check: breadth-first search over every interleaving of the world
//! model's moves for a 1 FE / 1 BE / 1 CN cluster, with state deduplication, through a first
//! deployment, an upgrade, a second change arriving at any point of it, and a downgrade, with
//! a pause and an operator crash (journal kept or lost) allowed at any step. Properties 1, 2,
//! 3 and 6 are asserted in every reachable state.

mod world;

use starrocks_model::plan::Rules;
use starrocks_model::{Component, Direction, Tier};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use world::{Choice, JournalFate, Operator, SpecChoice, World};

/// The scripted spec sequence: first deployment, an upgrade, a second upgrade that can arrive
/// mid-rollout, and a downgrade back to the first version.
fn specs() -> [SpecChoice; 4] {
    [
        SpecChoice::simple(1), // 3.3.2
        SpecChoice::simple(3), // 3.4.1
        SpecChoice::simple(4), // latest
        SpecChoice::simple(1), // back to 3.3.2
    ]
}

#[derive(Clone)]
struct Node {
    world: World,
    path: Vec<Choice>,
    spec_index: usize,
    pauses: u8,
    crashes: u8,
    depth: usize,
}

struct Search {
    states: usize,
    /// States in which the operator is Steady on a world that matches the newest spec: the
    /// bound covers whole rollouts when this is above zero.
    converged: usize,
    per_level: Vec<usize>,
    max_depth: usize,
    violation: Option<String>,
}

fn fingerprint(node: &Node, op: &Operator) -> u64 {
    let mut h = DefaultHasher::new();
    node.world.objects.hash(&mut h);
    node.world.spec.hash(&mut h);
    node.world.paused.hash(&mut h);
    node.world.fe_passed_gate.hash(&mut h);
    node.world.inbox.hash(&mut h);
    node.world.next_uid.hash(&mut h);
    op.machine.state().hash(&mut h);
    op.machine.knowledge().hash(&mut h);
    node.spec_index.hash(&mut h);
    node.pauses.hash(&mut h);
    node.crashes.hash(&mut h);
    h.finish()
}

/// The moves of the search, coarser than the random tests' so that whole rollouts fit in
/// the bound: a workload controller reconciles until it waits for a pod; one pod becomes
/// ready and the controller publishes it; the operator observes a component now (and the observation it took before stays
/// in the inbox, to be delivered later, stale); a stale observation is delivered; the next
/// spec; one pause and its resume; one crash, with the journal kept or lost.
fn moves(node: &Node) -> Vec<Choice> {
    let w = &node.world;
    let mut out = Vec::new();
    for i in 0..w.inbox.len() {
        out.push(Choice::Deliver(i));
    }
    for c in [Component::Fe, Component::Be, Component::Cn] {
        if let Some(obj) = w.objects.get(&c) {
            let mut stepped = obj.clone();
            stepped.controller_step();
            if stepped != *obj {
                out.push(Choice::Reconcile(c));
            }
            let mut readied = obj.clone();
            if readied.pod_ready(&w.images) {
                out.push(Choice::ReadyAndReconcile(c));
            }
            out.push(Choice::Observe(c));
        }
    }
    if node.spec_index + 1 < specs().len() {
        out.push(Choice::Spec(specs()[node.spec_index + 1].clone()));
    }
    if !w.paused && node.pauses == 0 {
        out.push(Choice::Pause);
    }
    if w.paused {
        out.push(Choice::Resume);
    }
    if node.crashes == 0 {
        out.push(Choice::Crash(JournalFate::Intact));
        out.push(Choice::Crash(JournalFate::Lost));
    }
    out
}

/// Where a search starts: an empty cluster (first deployment), or the cluster running the
/// first spec (its upgrade, a second change and a downgrade).
#[derive(Clone, Copy, Debug)]
enum Root {
    Empty,
    Running,
}

fn search(rules: Rules, root: Root, max_depth: usize, max_states: usize) -> Search {
    let mut op = Operator::unjournaled(rules);
    let mut world = World::new();
    world.set_spec(&specs()[0], &mut op);
    if let Root::Running = root {
        world
            .settle(&mut op, 100)
            .expect("the first deployment settles");
    }
    let start = root;
    let root = Node {
        world,
        path: Vec::new(),
        spec_index: 0,
        pauses: 0,
        crashes: 0,
        depth: 0,
    };
    let mut seen = HashSet::new();
    seen.insert(fingerprint(&root, &op));
    let mut queue = VecDeque::new();
    queue.push_back((root, op));
    let mut result = Search {
        states: 1,
        converged: 0,
        per_level: vec![1],
        max_depth: 0,
        violation: None,
    };
    while let Some((node, op)) = queue.pop_front() {
        result.max_depth = result.max_depth.max(node.depth);
        if node.depth >= max_depth {
            continue;
        }
        for m in moves(&node) {
            let mut next = node.clone();
            let mut next_op = op.fork();
            next.depth += 1;
            match &m {
                Choice::Spec(_) => next.spec_index += 1,
                Choice::Pause => next.pauses += 1,
                Choice::Crash(_) => next.crashes += 1,
                _ => {}
            }
            next.world.play(&m, &mut next_op);
            next.path.push(m.clone());
            if let Some(v) = next
                .world
                .violations()
                .into_iter()
                .find(|v| [0, 1, 2, 3, 6].contains(&v.property))
            {
                result.violation = Some(format!(
                    "property {} at depth {} after {:?}: {}",
                    v.property, next.depth, next.path, v.message
                ));
                return result;
            }
            if seen.insert(fingerprint(&next, &next_op)) {
                result.states += 1;
                let rolled = matches!(start, Root::Empty) || next.spec_index > 0;
                if rolled
                    && next_op.state() == starrocks_model::LifecycleState::Steady
                    && next.world.converged()
                {
                    result.converged += 1;
                }
                if result.per_level.len() <= next.depth {
                    result.per_level.push(0);
                }
                result.per_level[next.depth] += 1;
                if result.states >= max_states {
                    return result;
                }
                queue.push_back((next, next_op));
            }
        }
    }
    result
}

fn depth() -> usize {
    std::env::var("EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn check(root: Root) {
    let depth = depth();
    let result = search(Rules::default(), root, depth, 50_000_000);
    println!(
        "exhaustive from {root:?}: {} distinct states explored to depth {} (bound {depth}), {} of them Steady on a converged cluster",
        result.states, result.max_depth, result.converged
    );
    println!("new states per level: {:?}", result.per_level);
    assert_eq!(result.violation, None);
    assert!(
        result.converged > 0,
        "the bound does not cover a whole rollout"
    );
}

/// First deployment, with a second spec, a pause and a crash anywhere in it.
#[test]
fn every_interleaving_of_a_first_deployment_keeps_the_order() {
    check(Root::Empty);
}

/// Upgrade of a running cluster, a second change arriving anywhere in it, a downgrade, a
/// pause and a crash anywhere.
#[test]
fn every_interleaving_of_an_upgrade_keeps_the_order() {
    check(Root::Running);
}

#[test]
fn exhaustive_search_catches_fe_first_upgrades() {
    fn fe_first(_: Direction) -> [Tier; 3] {
        [Tier::Fe, Tier::Be, Tier::Cn]
    }
    let rules = Rules {
        order: fe_first,
        ..Rules::default()
    };
    let result = search(rules, Root::Running, 8, 5_000_000);
    let violation = result.violation.expect("FE-first must be found");
    println!("exhaustive found: {violation}");
    assert!(violation.starts_with("property 2"));
}
