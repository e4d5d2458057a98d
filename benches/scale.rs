//! Scale benchmark: one operator process against the simulator with 1, 100 and 1,000
//! StarRocksClusters (3 FE, 3 BE, 1 CN each). A bench binary, not a test.
//!
//! The simulator runs in this process; the operator is the real binary (`starrocks-operator
//! run`) in a child process, so its memory and CPU are its own:
//! - time until every cluster is Steady and running, against the pod-readiness floor (two
//!   readiness delays: FE, then BE and CN). Target: within 1.2 times the floor at 1,000;
//! - peak (`VmHWM`) and steady (`VmRSS` after a settle period) resident memory of the
//!   operator. Target: under 150 MiB at 1,000 clusters;
//! - API requests per cluster (the simulator's audit log; this binary creates and polls
//!   through the store, not HTTP, so every request is the operator's);
//! - CPU seconds per reconcile (`/proc/<pid>/stat` utime + stime over the reconciles counted
//!   on the operator's `/metrics`).
//!
//! Run: `cargo bench --bench scale` (`SCALE_CLUSTERS=1,100,1000`, `SCALE_POD_READY_SECONDS=10`).
//! Linux only (reads `/proc`).

use kube_sim::{Sim, SimOptions};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEMO: &str = include_str!("../deploy/examples/starrocks-cluster-demo.yaml");

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// User plus system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // The clock tick (USER_HZ) is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sum of `starrocks_operator_reconciles_total` from the operator's `/metrics`.
fn reconciles(port: u16) -> f64 {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with("starrocks_operator_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn steady(sim: &Sim, namespace: &str, name: &str) -> bool {
    sim.object("starrocks.com", "starrocksclusters", namespace, name)
        .is_some_and(|c| {
            c.pointer("/status/lifecycle/state")
                .and_then(|v| v.as_str())
                == Some("Steady")
                && c.pointer("/status/phase").and_then(|v| v.as_str()) == Some("running")
        })
}

struct Row {
    clusters: usize,
    seconds: f64,
    floor: f64,
    peak_mib: f64,
    steady_mib: f64,
    requests_per_cluster: f64,
    cpu_ms_per_reconcile: f64,
}

async fn run(
    clusters: usize,
    ready: Duration,
    port: u16,
) -> Result<Row, Box<dyn std::error::Error>> {
    let sim = Sim::start(SimOptions {
        pod_ready_delay: ready,
        watch_window: 200_000,
        ..SimOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    sim.create_from_yaml(&starrocks_operator::crd::generate::crd_yaml()?)?;
    let namespaces = clusters.div_ceil(100);
    for n in 0..namespaces {
        sim.create_from_yaml(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scale-{n}\n"
        ))?;
    }
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_starrocks-operator"))
        .args(["run", "--journal"])
        .arg(dir.path().join("journal"))
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.clear_audit();
    let started = Instant::now();
    let mut names = Vec::new();
    for i in 0..clusters {
        let ns = format!("scale-{}", i / 100);
        let name = format!("c{i}");
        let yaml = DEMO
            .replace("name: demo", &format!("name: {name}"))
            .replace("namespace: starrocks", &format!("namespace: {ns}"));
        sim.create_from_yaml(&yaml)?;
        names.push((ns, name));
    }
    let deadline = started + Duration::from_secs(600);
    let mut pending: Vec<_> = names.clone();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|(ns, name)| !steady(&sim, ns, name));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    if !pending.is_empty() {
        eprintln!(
            "{} of {clusters} clusters not Steady after 600 s",
            pending.len()
        );
    }
    let requests = sim.audit().len();
    // Settle: resyncs only.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (peak, rss) = memory_kib(pid);
    let cpu = cpu_seconds(pid);
    let reconciled = reconciles(port);
    let _ = child.kill();
    let _ = child.wait();
    sim.shutdown().await;
    Ok(Row {
        clusters,
        seconds,
        floor: 2.0 * ready.as_secs_f64(),
        peak_mib: peak as f64 / 1024.0,
        steady_mib: rss as f64 / 1024.0,
        requests_per_cluster: requests as f64 / clusters as f64,
        cpu_ms_per_reconcile: 1000.0 * cpu / reconciled.max(1.0),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::var("SCALE_CLUSTERS")
        .unwrap_or_else(|_| "1,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ready = Duration::from_secs_f64(
        std::env::var("SCALE_POD_READY_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10.0),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "| clusters | all Steady (s) | floor (s) | ratio | peak RSS (MiB) | steady RSS (MiB) | API requests / cluster | CPU ms / reconcile |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, clusters) in sizes.into_iter().enumerate() {
        let row = rt.block_on(run(clusters, ready, 18080 + i as u16))?;
        println!(
            "| {} | {:.1} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} |",
            row.clusters,
            row.seconds,
            row.floor,
            row.seconds / row.floor,
            row.peak_mib,
            row.steady_mib,
            row.requests_per_cluster,
            row.cpu_ms_per_reconcile
        );
    }
    Ok(())
}
