//! Benchmarks of the lifecycle machine: event dispatch with a realistic mix (the events a
//! first deployment and an upgrade of a 3 FE / 3 BE / 1 CN cluster produce in the world model:
//! mostly observations, some apply results, a few spec changes) and the observation diff.

#[path = "../tests/world/mod.rs"]
mod world;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use starrocks_model::{Component, Event, Machine, diff};
use std::hint::black_box;
use world::{Choice, Operator, SpecChoice, World};

/// The events of one realistic lifecycle, as journaled.
fn recorded_events() -> Vec<Event> {
    let mut op = Operator::new(Default::default(), false);
    let mut world = World::new();
    let mut first = SpecChoice::simple(1);
    first.fe_replicas = 3;
    first.be_replicas = 3;
    world.set_spec(&first, &mut op);
    world
        .settle(&mut op, 200)
        .expect("first deployment settles");
    let mut upgrade = first.clone();
    upgrade.version = 3;
    world.set_spec(&upgrade, &mut op);
    world.settle(&mut op, 200).expect("upgrade settles");
    for c in Component::ALL {
        world.play(&Choice::Snapshot(c), &mut op);
    }
    op.journal.iter().map(|r| r.event.clone()).collect()
}

fn dispatch(c: &mut Criterion) {
    let events = recorded_events();
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("lifecycle_mix", |b| {
        b.iter(|| {
            let mut machine = Machine::new();
            for e in &events {
                black_box(machine.handle(black_box(e)));
            }
        })
    });
    group.finish();
}

fn observation_diff(c: &mut Criterion) {
    let events = recorded_events();
    let observations: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Observed {
                component,
                observation,
            } => Some((*component, observation.clone())),
            _ => None,
        })
        .collect();
    let mut before = starrocks_model::ClusterObservation::new();
    let mut after = starrocks_model::ClusterObservation::new();
    for (c, o) in &observations {
        before.insert(*c, o.clone());
    }
    after.clone_from(&before);
    if let Some(be) = after.get_mut(&Component::Be) {
        be.ready_replicas -= 1;
    }
    let mut group = c.benchmark_group("diff");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_component_changed", |b| {
        b.iter(|| black_box(diff(black_box(&before), black_box(&after))))
    });
    group.bench_function("unchanged", |b| {
        b.iter(|| black_box(diff(black_box(&before), black_box(&before))))
    });
    group.finish();
}

criterion_group!(benches, dispatch, observation_diff);
criterion_main!(benches);
