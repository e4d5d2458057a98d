//! The change-driven controllers (StatefulSet, kubelet, EndpointSlice) leave nothing undone
//! that a full scan would do. After random writes (sets created, scaled, updated and deleted,
//! pods deleted and relabelled, Services created, reselected and deleted, EndpointSlices
//! deleted) interleaved with passes, the loop is run until a pass writes nothing; then a pass
//! of new controllers, which remember nothing and so look at and reconcile every object, must
//! write nothing either. Runs with a long event history and with one so short that most passes
//! find theirs compacted (and fall back to looking at everything).
//!
//! Case count: proptest's default (256), raised by `PROPTEST_CASES`.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use kube_sim::SimOptions;
use kube_sim::clock::SimClock;
use kube_sim::controllers;
use kube_sim::endpoints::{EndpointSliceController, SERVICE_NAME_LABEL};
use kube_sim::gc;
use kube_sim::kubelet::Kubelet;
use kube_sim::resources::Registry;
use kube_sim::statefulset::StatefulSetController;
use kube_sim::store::Store;

const MANAGER: &str = "test";

#[derive(Debug, Clone)]
enum Op {
    CreateSet {
        ns: u8,
        set: u8,
        replicas: u8,
        parallel: bool,
    },
    Scale {
        ns: u8,
        set: u8,
        replicas: u8,
    },
    Image {
        ns: u8,
        set: u8,
        version: u8,
    },
    DeleteSet {
        ns: u8,
        set: u8,
    },
    DeletePod {
        ns: u8,
        set: u8,
        ordinal: u8,
    },
    RelabelPod {
        ns: u8,
        set: u8,
        ordinal: u8,
        tier: u8,
    },
    PutService {
        ns: u8,
        svc: u8,
        set: Option<u8>,
        tier: Option<u8>,
    },
    DeleteService {
        ns: u8,
        svc: u8,
    },
    DeleteSlice {
        ns: u8,
        svc: u8,
    },
    Pass,
}

fn op() -> impl Strategy<Value = Op> {
    let ns = 0u8..2;
    let set = 0u8..3;
    prop_oneof![
        1 => (ns.clone(), set.clone(), 0u8..4, any::<bool>()).prop_map(
            |(ns, set, replicas, parallel)| Op::CreateSet {
                ns,
                set,
                replicas,
                parallel
            }
        ),
        1 => (ns.clone(), set.clone(), 0u8..4).prop_map(|(ns, set, replicas)| Op::Scale {
            ns,
            set,
            replicas
        }),
        1 => (ns.clone(), set.clone(), 0u8..3).prop_map(|(ns, set, version)| Op::Image {
            ns,
            set,
            version
        }),
        1 => (ns.clone(), set.clone()).prop_map(|(ns, set)| Op::DeleteSet { ns, set }),
        1 => (ns.clone(), set.clone(), 0u8..3).prop_map(|(ns, set, ordinal)| Op::DeletePod {
            ns,
            set,
            ordinal
        }),
        1 => (ns.clone(), set.clone(), 0u8..3, 0u8..2).prop_map(|(ns, set, ordinal, tier)| {
            Op::RelabelPod {
                ns,
                set,
                ordinal,
                tier,
            }
        }),
        1 => (
            ns.clone(),
            0u8..3,
            proptest::option::of(set.clone()),
            proptest::option::of(0u8..2)
        )
            .prop_map(|(ns, svc, set, tier)| Op::PutService { ns, svc, set, tier }),
        1 => (ns.clone(), 0u8..3).prop_map(|(ns, svc)| Op::DeleteService { ns, svc }),
        1 => (ns, 0u8..3).prop_map(|(ns, svc)| Op::DeleteSlice { ns, svc }),
        // As many passes as writes: most writes then meet controllers that went idle.
        8 => Just(Op::Pass),
    ]
}

struct Loop {
    gc: gc::GarbageCollector,
    sts: StatefulSetController,
    kubelet: Kubelet,
    eps: EndpointSliceController,
    clock: SimClock,
    opts: SimOptions,
}

impl Loop {
    fn pass(&mut self, store: &mut Store) {
        self.gc.pass(store, &self.clock);
        self.sts.pass(store, &self.clock, &self.opts);
        self.kubelet
            .pass(store, &self.clock, self.opts.pod_ready_delay, &[]);
        self.eps.pass(store, &self.clock);
    }

    fn new(clock: SimClock, opts: SimOptions) -> Loop {
        Loop {
            gc: gc::GarbageCollector::default(),
            sts: StatefulSetController::default(),
            kubelet: Kubelet::default(),
            eps: EndpointSliceController::default(),
            clock,
            opts,
        }
    }
}

fn set_name(set: u8) -> String {
    format!("s{set}")
}

fn get(store: &Store, group: &str, plural: &str, ns: u8, name: &str) -> Option<Value> {
    store.get(group, plural, &format!("ns{ns}"), name).cloned()
}

/// Deletes an object if it exists.
fn delete(store: &mut Store, clock: &SimClock, group: &str, plural: &str, ns: u8, name: &str) {
    let _ = controllers::delete(store, clock, group, plural, &format!("ns{ns}"), name);
}

/// Applies one write; writes that do not apply (the object is missing, or exists) are skipped.
fn apply(store: &mut Store, clock: &SimClock, op: &Op) {
    match *op {
        Op::CreateSet {
            ns,
            set,
            replicas,
            parallel,
        } => {
            let labels = json!({"set": set_name(set), "tier": "0"});
            let sts = json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": set_name(set), "namespace": format!("ns{ns}")},
                "spec": {
                    "replicas": replicas, "serviceName": set_name(set),
                    "podManagementPolicy": if parallel { "Parallel" } else { "OrderedReady" },
                    "selector": {"matchLabels": {"set": set_name(set)}},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                        {"name": "c", "image": "img:0", "ports": [{"name": "p", "containerPort": 80}]}
                    ]}},
                },
            });
            let _ =
                controllers::create_as(store, clock, "apps", "statefulsets", sts, MANAGER, None);
        }
        Op::Scale { ns, set, replicas } => {
            if let Some(mut sts) = get(store, "apps", "statefulsets", ns, &set_name(set)) {
                sts["spec"]["replicas"] = json!(replicas);
                let _ = controllers::update_as(store, clock, "apps", "statefulsets", sts, MANAGER);
            }
        }
        Op::Image { ns, set, version } => {
            if let Some(mut sts) = get(store, "apps", "statefulsets", ns, &set_name(set)) {
                sts["spec"]["template"]["spec"]["containers"][0]["image"] =
                    json!(format!("img:{version}"));
                let _ = controllers::update_as(store, clock, "apps", "statefulsets", sts, MANAGER);
            }
        }
        Op::DeleteSet { ns, set } => {
            delete(store, clock, "apps", "statefulsets", ns, &set_name(set))
        }
        Op::DeletePod { ns, set, ordinal } => {
            let pod = format!("{}-{ordinal}", set_name(set));
            delete(store, clock, "", "pods", ns, &pod);
        }
        Op::RelabelPod {
            ns,
            set,
            ordinal,
            tier,
        } => {
            let name = format!("{}-{ordinal}", set_name(set));
            if let Some(mut pod) = get(store, "", "pods", ns, &name) {
                pod["metadata"]["labels"]["tier"] = json!(tier.to_string());
                let _ = controllers::update_as(store, clock, "", "pods", pod, MANAGER);
            }
        }
        Op::PutService { ns, svc, set, tier } => {
            let mut selector = serde_json::Map::new();
            if let Some(set) = set {
                selector.insert("set".into(), json!(set_name(set)));
            }
            if let Some(tier) = tier {
                selector.insert("tier".into(), json!(tier.to_string()));
            }
            let name = format!("svc{svc}");
            let spec = json!({"selector": selector, "ports": [{"name": "p", "port": 80, "targetPort": "p"}]});
            match get(store, "", "services", ns, &name) {
                Some(mut old) => {
                    old["spec"]["selector"] = spec["selector"].clone();
                    let _ = controllers::update_as(store, clock, "", "services", old, MANAGER);
                }
                None => {
                    let obj = json!({
                        "apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "namespace": format!("ns{ns}")},
                        "spec": spec,
                    });
                    let _ =
                        controllers::create_as(store, clock, "", "services", obj, MANAGER, None);
                }
            }
        }
        Op::DeleteService { ns, svc } => {
            delete(store, clock, "", "services", ns, &format!("svc{svc}"))
        }
        Op::DeleteSlice { ns, svc } => {
            let service = format!("svc{svc}");
            let slices: Vec<String> = store
                .list(
                    "discovery.k8s.io",
                    "endpointslices",
                    Some(&format!("ns{ns}")),
                )
                .into_iter()
                .filter(|s| s["metadata"]["labels"][SERVICE_NAME_LABEL] == service.as_str())
                .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
                .collect();
            for name in slices {
                delete(
                    store,
                    clock,
                    "discovery.k8s.io",
                    "endpointslices",
                    ns,
                    &name,
                );
            }
        }
        Op::Pass => {}
    }
}

/// What was written after `rv`: `(type, namespace/name)` of each change.
fn written_after(store: &Store, rv: u64) -> Vec<String> {
    store
        .changes_since(rv)
        .into_iter()
        .flatten()
        .map(|ev| {
            let (ns, name) = kube_sim::store::obj_key(ev.object.meta());
            format!(
                "{} {}/{}/{ns}/{name}",
                ev.kind.as_str(),
                ev.group,
                ev.plural
            )
        })
        .collect()
}

fn run(ops: &[Op], window: usize) -> Result<(), TestCaseError> {
    let clock = SimClock::new(1.0);
    let opts = SimOptions {
        pod_ready_delay: Duration::ZERO,
        observed_generation_lag: Duration::ZERO,
        ..Default::default()
    };
    let mut store = Store::new(Registry::builtin(), window);
    for ns in 0..2 {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns{ns}")}});
        controllers::create_as(&mut store, &clock, "", "namespaces", obj, MANAGER, None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let mut l = Loop::new(clock, opts.clone());
    for op in ops {
        match op {
            Op::Pass => l.pass(&mut store),
            _ => apply(&mut store, &clock, op),
        }
    }
    let mut quiet = false;
    for _ in 0..100 {
        let before = store.current_rv();
        l.pass(&mut store);
        if store.current_rv() == before {
            quiet = true;
            break;
        }
    }
    prop_assert!(quiet, "the loop did not settle in 100 passes");
    let before = store.current_rv();
    Loop::new(clock, opts).pass(&mut store);
    prop_assert_eq!(
        written_after(&store, before),
        Vec::<String>::new(),
        "controllers without memory found work that change-driven passes left undone"
    );
    Ok(())
}

proptest! {
    #[test]
    fn fresh_controllers_find_nothing_left_undone(
        ops in proptest::collection::vec(op(), 1..60),
        short_history in any::<bool>(),
    ) {
        run(&ops, if short_history { 3 } else { 100_000 })?;
    }
}
