//! Scale measurement of the control loop (ignored by default; run in release mode):
//! `cargo test --release -p kube-sim --test scale -- --ignored --nocapture`.
//!
//! Loads N StatefulSets (3 replicas each) with their Services (with selectors) and PDBs in 10
//! namespaces, converges the control loop (no readiness delay) and times each of the five passes
//! on the converging passes and on steady-state passes (nothing left to do).

use std::time::{Duration, Instant};

use serde_json::json;

use kube_sim::SimOptions;
use kube_sim::clock::SimClock;
use kube_sim::controllers;
use kube_sim::deployment::DeploymentController;
use kube_sim::endpoints::EndpointSliceController;
use kube_sim::gc;
use kube_sim::kubelet::Kubelet;
use kube_sim::resources::Registry;
use kube_sim::statefulset::StatefulSetController;
use kube_sim::store::Store;

const NAMESPACES: usize = 10;

fn load(store: &mut Store, clock: &SimClock, n: usize) {
    for i in 0..NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns{i}")}});
        controllers::create_as(store, clock, "", "namespaces", ns, "bench", None).unwrap();
    }
    for i in 0..n {
        let ns = format!("ns{}", i % NAMESPACES);
        let name = format!("c{i}-be");
        let labels = json!({"app": "starrocks", "cluster": format!("c{i}"), "component": "be"});
        let sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": 3, "serviceName": format!("{name}-search"),
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                    {"name": "be", "image": "starrocks/be-ubuntu:3.3.2", "ports": [{"name": "heartbeat", "containerPort": 9050}]}
                ]}},
            },
        });
        controllers::create_as(store, clock, "apps", "statefulsets", sts, "bench", None).unwrap();
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("{name}-service"), "namespace": ns},
            "spec": {"selector": labels, "ports": [{"name": "heartbeat", "port": 9050, "targetPort": "heartbeat"}]},
        });
        controllers::create_as(store, clock, "", "services", svc, "bench", None).unwrap();
        let pdb = json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": format!("{name}-pdb"), "namespace": ns},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        });
        controllers::create_as(
            store,
            clock,
            "policy",
            "poddisruptionbudgets",
            pdb,
            "bench",
            None,
        )
        .unwrap();
    }
}

struct Loop {
    gc: gc::GarbageCollector,
    sts: StatefulSetController,
    deploy: DeploymentController,
    kubelet: Kubelet,
    eps: EndpointSliceController,
    clock: SimClock,
    opts: SimOptions,
}

impl Loop {
    /// One control-loop pass; the time of each of the five passes.
    fn pass(&mut self, store: &mut Store) -> [Duration; 5] {
        let t0 = Instant::now();
        self.gc.pass(store, &self.clock);
        let t1 = Instant::now();
        self.sts.pass(store, &self.clock, &self.opts);
        let t2 = Instant::now();
        self.deploy.pass(store, &self.clock);
        let t3 = Instant::now();
        self.kubelet
            .pass(store, &self.clock, self.opts.pod_ready_delay, &[]);
        let t4 = Instant::now();
        self.eps.pass(store, &self.clock);
        let t5 = Instant::now();
        [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]
    }
}

fn fmt(d: &[Duration; 5]) -> String {
    let total: Duration = d.iter().sum();
    format!(
        "gc {:>9.2?} sts {:>9.2?} deploy {:>9.2?} kubelet {:>9.2?} eps {:>9.2?} total {:>9.2?}",
        d[0], d[1], d[2], d[3], d[4], total
    )
}

fn measure(n: usize) {
    let opts = SimOptions {
        pod_ready_delay: Duration::ZERO,
        ..Default::default()
    };
    let clock = SimClock::new(1.0);
    let mut store = Store::new(Registry::builtin(), 10_000);
    load(&mut store, &clock, n);
    let mut l = Loop {
        gc: gc::GarbageCollector::default(),
        sts: StatefulSetController::default(),
        deploy: DeploymentController,
        kubelet: Kubelet::default(),
        eps: EndpointSliceController::default(),
        clock,
        opts,
    };
    eprintln!("N = {n} StatefulSets ({} pods):", 3 * n);
    let start = Instant::now();
    let mut converging = 0;
    loop {
        let before = store.current_rv();
        let d = l.pass(&mut store);
        converging += 1;
        eprintln!("  converging pass {converging:>2}: {}", fmt(&d));
        if store.current_rv() == before || converging >= 30 {
            break;
        }
    }
    eprintln!(
        "  converged in {converging} passes, {:.2?}",
        start.elapsed()
    );
    assert_eq!(store.list("", "pods", None).len(), 3 * n);
    let ready = store
        .list("", "pods", None)
        .into_iter()
        .filter(|p| controllers::pod_ready(p))
        .count();
    assert_eq!(ready, 3 * n);
    assert_eq!(
        store.list("discovery.k8s.io", "endpointslices", None).len(),
        n
    );
    let mut steady = Vec::new();
    for _ in 0..3 {
        let before = store.current_rv();
        steady.push(l.pass(&mut store));
        assert_eq!(store.current_rv(), before, "steady pass wrote");
    }
    steady.sort_by_key(|d| d.iter().sum::<Duration>());
    eprintln!("  steady pass (median of 3): {}", fmt(&steady[1]));
}

#[test]
#[ignore = "scale measurement; run in release mode with --ignored --nocapture"]
fn control_loop_scale_300() {
    measure(300);
}

#[test]
#[ignore = "scale measurement; run in release mode with --ignored --nocapture"]
fn control_loop_scale_3000() {
    measure(3000);
}
