//! Property tests of the rollout order, over random sequences of world moves: spec changes at
//! any time (upgrades, downgrades, config and replica changes, components added and removed,
//! bad images, invalid specs), observations delivered late, twice or out of order, apply
//! failures, pauses, and operator crashes with the journal intact, lost or truncated.
//!
//! Each property is its own test. `PROPTEST_CASES` raises the case count (default 1,000).
//! The `wrong_*` tests run deliberately wrong policies and assert the checkers catch them.

mod world;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use starrocks_model::journal;
use starrocks_model::plan::{OrderFn, Rules};
use starrocks_model::{
    Component, ComponentObservation, Direction, GateFailure, LastApply, LifecycleState, Tier,
};
use world::{Choice, JournalFate, Operator, SpecChoice, World};

const SETTLE_BOUND: usize = 200;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn component() -> impl Strategy<Value = Component> {
    prop_oneof![
        Just(Component::Fe),
        Just(Component::Be),
        Just(Component::Cn),
        Just(Component::FeProxy)
    ]
}

fn spec_choice() -> impl Strategy<Value = SpecChoice> {
    (
        0..world::VERSIONS.len(),
        prop::array::uniform4(0u8..2),
        1..=3i32,
        1..=3i32,
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.1, component()),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.03),
    )
        .prop_map(
            |(
                version,
                salt,
                fe_replicas,
                be_replicas,
                with_cn,
                with_proxy,
                bad,
                invalid,
                without_fe,
            )| {
                SpecChoice {
                    version,
                    salt,
                    fe_replicas,
                    be_replicas,
                    with_cn,
                    with_proxy,
                    bad,
                    invalid,
                    without_fe,
                }
            },
        )
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        10 => (0usize..8).prop_map(Choice::Deliver),
        1 => (0usize..8).prop_map(Choice::Duplicate),
        6 => component().prop_map(Choice::Snapshot),
        6 => component().prop_map(Choice::Controller),
        6 => component().prop_map(Choice::PodReady),
        2 => spec_choice().prop_map(Choice::Spec),
        1 => Just(Choice::Pause),
        1 => Just(Choice::Resume),
        1 => prop_oneof![
            Just(JournalFate::Intact),
            Just(JournalFate::Lost),
            (1usize..6).prop_map(JournalFate::Truncated)
        ]
        .prop_map(Choice::Crash),
        1 => Just(Choice::Resync),
        1 => Just(Choice::FailNextApply),
    ]
}

/// A case: the first spec (first deployment), whether the first deployment settles before the
/// random moves (so that half the cases start their moves from a running cluster), then the
/// random moves.
fn case() -> impl Strategy<Value = Case> {
    (
        spec_choice(),
        any::<bool>(),
        prop::collection::vec(choice(), 0..120),
    )
        .prop_map(|(first, settle_first, moves)| Case {
            first,
            settle_first,
            moves,
        })
}

#[derive(Debug, Clone)]
struct Case {
    first: SpecChoice,
    settle_first: bool,
    moves: Vec<Choice>,
}

/// What one case produced.
struct Outcome {
    world: World,
    op: Operator,
    settled_in: Option<usize>,
}

/// Plays a case, then lets the world settle on a valid, good spec at the newest version
/// (never a mixed or downgrade direction from wherever the case left the cluster).
fn run(rules: Rules, ignore_pause: bool, case: &Case) -> Outcome {
    let mut op = Operator::new(rules, ignore_pause);
    let mut world = World::new();
    world.set_spec(&case.first, &mut op);
    if case.settle_first {
        world.settle(&mut op, SETTLE_BOUND);
    }
    let moves = &case.moves;
    for m in moves {
        world.play(m, &mut op);
    }
    let mut last = SpecChoice::simple(world::VERSIONS.len() - 1);
    if let Some(c) = moves.iter().rev().find_map(|m| match m {
        Choice::Spec(s) => Some(s.clone()),
        _ => None,
    }) {
        last.with_proxy = c.with_proxy;
        last.with_cn = c.with_cn;
        last.salt = c.salt;
        last.be_replicas = c.be_replicas;
        last.fe_replicas = c.fe_replicas;
    }
    quiesce(&mut world, &mut op);
    world.set_spec(&last, &mut op);
    let settled_in = world.settle(&mut op, SETTLE_BOUND);
    Outcome {
        world,
        op,
        settled_in,
    }
}

/// Ends a case's disturbances before it settles: resumes a paused cluster and stops failing
/// applies.
fn quiesce(world: &mut World, op: &mut Operator) {
    if world.paused {
        world.play(&Choice::Resume, op);
    }
    world.fail_next_apply = false;
}

fn violations_of(outcome: &Outcome, property: u8) -> Vec<String> {
    outcome
        .world
        .violations()
        .into_iter()
        .filter(|v| v.property == property)
        .map(|v| v.message)
        .collect()
}

/// Fails the case when the checkers saw a violation of `property`, with the journal timeline.
fn holds(outcome: &Outcome, property: u8) -> Result<(), TestCaseError> {
    let v = violations_of(outcome, property);
    prop_assert!(v.is_empty(), "{}\n{}", v.join("; "), outcome.op.trace());
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Property 1: no BE, CN or FE proxy object is created before the FE gate passed.
    #[test]
    fn first_deployment_creates_fe_first(case in case()) {
        holds(&run(Rules::default(), false, &case), 1)?;
    }

    /// Property 2: on upgrade, FE's template never changes while a BE or CN rollout of the
    /// same or an earlier spec is incomplete, and CN never before BE is complete.
    #[test]
    fn upgrade_rolls_be_then_cn_then_fe(case in case()) {
        let out = run(Rules::default(), false, &case);
        holds(&out, 2)?;
        // Property 0: applies always follow the latest spec.
        holds(&out, 0)?;
    }

    /// Property 3: on downgrade, BE and CN wait for FE, and CN for BE.
    #[test]
    fn downgrade_rolls_fe_then_be_then_cn(case in case()) {
        holds(&run(Rules::default(), false, &case), 3)?;
    }

    /// Property 4: replaying the journal reproduces the recorded states and actions, record
    /// for record, after crashes with the journal intact, lost or truncated.
    #[test]
    fn journal_replay_reproduces_every_record(case in case()) {
        let out = run(Rules::default(), false, &case);
        prop_assert!(out.op.replay_failures.is_empty(), "{:?}", out.op.replay_failures);
        let replayed = journal::replay(&out.op.journal);
        prop_assert!(replayed.is_ok(), "{}", replayed.err().map(|d| d.to_string()).unwrap_or_default());
        if let Ok(machine) = replayed {
            prop_assert_eq!(machine.state(), out.op.state());
            prop_assert_eq!(machine.knowledge(), out.op.machine.knowledge());
        }
    }

    /// Property 5: once the world stops changing and pods become ready, the cluster reaches
    /// Steady, on a world that matches the spec, within a bounded number of rounds.
    #[test]
    fn reaches_steady_when_the_world_settles(case in case()) {
        let out = run(Rules::default(), false, &case);
        holds(&out, 5)?;
        prop_assert!(
            out.settled_in.is_some(),
            "not Steady after {SETTLE_BOUND} rounds: state {}, waiting on {:?}\nworld {:?}\nknowledge {:?}",
            out.op.state(),
            out.op.machine.waiting_on(),
            out.world.objects.iter().map(|(c, w)| (c, &w.hash, w.uid, w.replicas)).collect::<Vec<_>>(),
            out.op.machine.knowledge()
        );
    }

    /// Property 6: nothing is applied or deleted while paused.
    #[test]
    fn nothing_is_applied_while_paused(case in case()) {
        holds(&run(Rules::default(), false, &case), 6)?;
    }

    /// Property 7: a first deployment is never called an upgrade. With the first spec only
    /// (no spec change; crashes, lost journals, duplicates, late observations and failed
    /// applies allowed), the machine never enters UpgradingBe, UpgradingCn or UpgradingFe.
    #[test]
    fn first_deployment_is_not_an_upgrade(
        first in spec_choice(),
        moves in prop::collection::vec(choice(), 0..120),
    ) {
        let upgrading = |s: &LifecycleState| s.rollout().is_some();
        let mut op = Operator::new(Rules::default(), false);
        let mut world = World::new();
        world.set_spec(&first, &mut op);
        let mut seen = Vec::new();
        for m in moves.iter().filter(|m| !matches!(m, Choice::Spec(_))) {
            world.play(m, &mut op);
            if upgrading(&op.state()) {
                seen.push(format!("{} after {m:?}", op.state().name()));
            }
        }
        quiesce(&mut world, &mut op);
        world.settle(&mut op, SETTLE_BOUND);
        // The settle phase has no crash: the journal holds every record since the last one.
        seen.extend(
            op.journal
                .iter()
                .filter(|r| upgrading(&r.after))
                .map(|r| format!("record {}: {}", r.seq, r.after.name())),
        );
        prop_assert!(seen.is_empty(), "{}\n{}", seen.join("; "), op.trace());
    }

    /// After Steady, a resync decides nothing: no apply, no status write.
    #[test]
    fn steady_resync_decides_nothing(case in case()) {
        let mut out = run(Rules::default(), false, &case);
        prop_assume!(out.settled_in.is_some());
        let applies = out.world.applies;
        out.world.play(&Choice::Resync, &mut out.op);
        for c in Component::ALL {
            out.world.play(&Choice::Snapshot(c), &mut out.op);
        }
        while !out.world.inbox.is_empty() {
            out.world.play(&Choice::Deliver(0), &mut out.op);
        }
        prop_assert_eq!(out.world.applies, applies);
        prop_assert_eq!(out.op.state(), LifecycleState::Steady);
    }
}

/// Runs a wrong policy over deterministic random cases and returns the first violation of
/// `property` found (shrunk), or `None` when every case passed.
fn find_violation(rules: Rules, ignore_pause: bool, property: u8) -> Option<String> {
    let config = Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&case(), |case| {
        holds(&run(rules, ignore_pause, &case), property)
    });
    result.err().map(|e| e.to_string())
}

fn fe_first(_: Direction) -> [Tier; 3] {
    [Tier::Fe, Tier::Be, Tier::Cn]
}

fn upgrade_order_always(_: Direction) -> [Tier; 3] {
    [Tier::Be, Tier::Cn, Tier::Fe]
}

/// The gate as upstream's `waitForFullRollout` has it: no observedGeneration conditions (1
/// and 2), so a status written before the controller saw the new template passes.
fn gate_without_observed_generation(
    obs: Option<&ComponentObservation>,
    target: &str,
    _last: Option<&LastApply>,
) -> Result<(), GateFailure> {
    let obs = obs.ok_or(GateFailure::Missing)?;
    if obs.template_hash.as_deref() != Some(target) {
        return Err(GateFailure::TemplateNotApplied {
            want: target.to_string(),
            have: obs.template_hash.clone(),
        });
    }
    let mut pretend = obs.clone();
    pretend.observed_generation = Some(obs.generation);
    starrocks_model::gate::check_rolled_out(&pretend)
}

fn gate_always_open(
    _: Option<&ComponentObservation>,
    _: &str,
    _: Option<&LastApply>,
) -> Result<(), GateFailure> {
    Ok(())
}

fn rules(gate: starrocks_model::plan::GateFn, order: OrderFn) -> Rules {
    Rules { gate, order }
}

#[test]
fn wrong_policy_fe_first_on_upgrade_is_caught() {
    let found = find_violation(rules(starrocks_model::gate, fe_first), false, 2);
    let found = found.expect("an FE-first upgrade must violate property 2");
    println!("caught: {found}");
    assert!(found.contains("upgrade:"));
}

#[test]
fn wrong_policy_upgrade_order_on_downgrade_is_caught() {
    let found = find_violation(rules(starrocks_model::gate, upgrade_order_always), false, 3);
    let found = found.expect("BE-first on downgrade must violate property 3");
    println!("caught: {found}");
    assert!(found.contains("downgrade:"));
}

#[test]
fn wrong_policy_gate_without_observed_generation_is_caught() {
    let order = starrocks_model::plan::starrocks_order;
    let found = find_violation(rules(gate_without_observed_generation, order), false, 2);
    let found = found.expect("a gate without observedGeneration must let FE go early");
    println!("caught: {found}");
}

#[test]
fn wrong_policy_open_gate_creates_be_before_fe_is_up() {
    let order = starrocks_model::plan::starrocks_order;
    let found = find_violation(rules(gate_always_open, order), false, 1);
    let found = found.expect("an open gate must create BE/CN before FE is up");
    println!("caught: {found}");
    assert!(found.contains("created before the FE gate passed"));
}

#[test]
fn wrong_policy_applying_while_paused_is_caught() {
    let found = find_violation(Rules::default(), true, 6);
    let found = found.expect("ignoring the pause annotation must violate property 6");
    println!("caught: {found}");
    assert!(found.contains("while paused"));
}
