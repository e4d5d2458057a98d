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
//! - reconciles per cluster (counted on the operator's `/metrics`), the operator's CPU seconds
//!   (`/proc/<pid>/stat` utime + stime) and CPU milliseconds per reconcile; all three include
//!   the 10 s settle period after the last cluster is Steady;
//! - the simulator's CPU seconds over the same span (this process: the simulator's API server
//!   and control loop, on CPUs apart from the operator's, see below; the bench's own work is
//!   creating the clusters and a count under the store lock every 100 ms);
//! - on stderr: where the time above the floor went. For each step of a first deployment
//!   (clusters created, FE StatefulSet created, FE ready, the FE Service's first ready
//!   endpoint, BE StatefulSet created, BE and CN ready, Steady, each as the store showed it to
//!   a 100 ms poll), how long it took over the clusters (p50, p90, max; a readiness step less
//!   the delay), and the times of the cluster that was Steady last. The steps from a tier
//!   ready (with its Service's endpoint: the operator's gate waits for both) to the next
//!   StatefulSet are the operator's (its watch, queue, reconcile and applies); those from a
//!   StatefulSet to its pods ready, and on to their endpoints, are the simulator's beyond the
//!   delay. `SCALE_STAGES_CSV=<file>` writes each cluster's times; `SCALE_AUDIT_CSV=<file>`
//!   writes each API request (seconds since the clusters were created, verb, resource,
//!   subresource, namespace, name, code), from which a cluster's reconciles can be read as
//!   runs of requests;
//! - on stderr: how busy the whole machine's CPU was until every cluster was Steady (from
//!   `/proc/stat`; near 100% means the run was bound by CPU, not by waiting); and per
//!   cluster: the API requests by verb, resource and subresource, the Events by reason, and
//!   all writes to the simulator's store (the requests' and the simulated controllers'), in
//!   all and by type.
//!
//! The simulator and the operator run on CPUs of their own (`sched_setaffinity`): the operator
//! on the last CPU this process may use, the simulator (this process: its API server, control
//! loop and this bench's polling) on the others; `SCALE_PIN=0` leaves both free to share every
//! CPU, and a machine with one CPU shares it. In a real cluster the API server, etcd and the
//! controller manager run on machines of their own; sharing the cores, the operator's threads
//! preempted the simulator's control loop while it held the store's lock (a probe of its
//! thread's `/proc/thread-self/schedstat` found it runnable but not running for about a fifth
//! of every second of the second burst), and every request and controller waited behind it.
//!
//! The simulator in this process allocates with mimalloc: at 1,000 clusters glibc's `malloc`
//! and `free` were a fifth of its CPU, and mimalloc took the simulator's CPU seconds down by
//! about a fifth (47.7 and 49.5 s to 38.7 and 40.9 s). The simulator stands in for the API
//! server, etcd and the controller manager, which in a real cluster run elsewhere; its CPU is a
//! cost of the bench, and the operator's own figures do not change. The operator keeps glibc's
//! allocator (see `src/main.rs`: mimalloc raised its resident memory).
//!
//! Run: `cargo bench --bench scale` (`SCALE_CLUSTERS=1,100,1000`, `SCALE_POD_READY_SECONDS=10`,
//! `SCALE_DEADLINE_SECONDS=600`: how long to wait for every cluster to be Steady before
//! measuring anyway). `SCALE_OPERATOR_WRAPPER`, e.g. `heaptrack -o /tmp/op`, runs the operator
//! under a profiler (whitespace-separated command put before the operator's); memory and CPU
//! are then read from the operator process below the wrapper, which is killed (SIGKILL) at
//! the end, so that a heap profiler's "leaked" figure is the steady-state heap.
//! `SCALE_WATCH_WINDOW=200000`: how many changes the simulator retains for watches (and its
//! controllers); the default keeps the whole run's history, so no watch of the operator gets
//! `410 Gone`; the simulator's peak resident memory (its objects and this history) is printed
//! on stderr.
//! `SCALE_LOCK_PROBE=1` samples the simulator's store lock every 100 us and prints the share
//! of samples that found it held, per second, until all are Steady (the simulator's requests,
//! watches and controllers take turns on that lock).
//! `SCALE_SIM_LOG=<filter>` logs the simulator (tracing's `EnvFilter` syntax) on stderr:
//! `kube_sim::controllers=debug` gives the length and writes of each pass of its control loop.
//! `SCALE_KEEP_JOURNAL=<dir>` copies each run's journal and operator log to `<dir>/<clusters>/`
//! (for `starrocks-operator replay --journal <dir>/<clusters>/journal`).
//! Linux only (reads `/proc`).

use kube_sim::jsonpath::JsonPath;
use kube_sim::{Sim, SimOptions};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The parent pid of a process (`/proc/<pid>/stat` field 4).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The operator process: `root` itself, or (under a wrapper) the descendant of `root` that
/// runs the operator binary; `root` when none is found yet.
fn operator_pid(root: u32) -> u32 {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_starrocks-operator"));
    let binary = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let is_below_root = |mut pid: u32| {
        while let Some(parent) = parent_pid(pid) {
            if parent == root {
                return true;
            }
            if parent <= 1 {
                return false;
            }
            pid = parent;
        }
        false
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return root;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary)
                && is_below_root(pid)
        })
        .unwrap_or(root)
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

/// Busy and total CPU time of the whole machine so far, in clock ticks (the first line of
/// `/proc/stat`: idle and iowait are not busy; guest time is already in user and nice).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The machine's online CPUs (the `cpuN` lines of `/proc/stat`, whose first line
/// [`machine_ticks`] reads), whatever this process's affinity.
fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count()
}

/// Where the two processes run (see the module documentation): CPU numbers.
struct Placement {
    simulator: Vec<usize>,
    operator: usize,
}

/// Splits the CPUs this process may use: the last for the operator, the rest for the
/// simulator. `None` with fewer than two, or when `SCALE_PIN=0`.
///
/// # Errors
/// The OS error of `sched_getaffinity(2)`.
fn placement() -> std::io::Result<Option<Placement>> {
    if std::env::var("SCALE_PIN").as_deref() == Ok("0") {
        return Ok(None);
    }
    let allowed = sched_getaffinity(Pid::from_raw(0))?;
    let mut cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    match cpus.pop() {
        Some(operator) if !cpus.is_empty() => Ok(Some(Placement {
            simulator: cpus,
            operator,
        })),
        _ => Ok(None),
    }
}

/// The set of the given CPUs.
///
/// # Errors
/// `EINVAL` for a CPU number beyond the set's size (none that [`placement`] finds).
fn cpu_set(cpus: &[usize]) -> std::io::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    Ok(set)
}

/// A loopback port free at the time of the call (for the operator's HTTP server), so that
/// runs beside other users of the machine do not collide.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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

/// The stages of a first deployment, in order, as the simulator's store shows them.
const STAGES: [&str; 6] = [
    "FE StatefulSet created",
    "FE ready",
    "FE endpoint ready",
    "BE StatefulSet created",
    "BE and CN ready",
    "Steady",
];

/// When one cluster first reached each stage, in seconds since the clusters were created:
/// FE created, FE ready, the FE Service's first ready endpoint, BE created, BE ready, CN
/// ready, Steady.
type Reached = [Option<f64>; 7];

/// When each cluster first reached each of [`STAGES`], as the 100 ms poll saw it, by
/// namespace and name.
#[derive(Default)]
struct Stages {
    reached: std::collections::HashMap<String, std::collections::HashMap<String, Reached>>,
    /// The resourceVersion of the StatefulSets read so far.
    seen_rv: u64,
    /// The resourceVersion of the EndpointSlices read so far.
    seen_slices_rv: u64,
    /// The resourceVersion of the clusters read so far.
    seen_clusters_rv: u64,
    /// The clusters Steady and running as last read, by namespace and name.
    steady: std::collections::HashSet<(String, String)>,
}

impl Stages {
    /// The slots of cluster `name` in `namespace`, made on first sight (looked up by `&str`:
    /// no allocation once made).
    fn of(&mut self, namespace: &str, name: &str) -> &mut Reached {
        if !self.reached.contains_key(namespace) {
            self.reached
                .insert(namespace.to_string(), Default::default());
        }
        let in_ns = self
            .reached
            .get_mut(namespace)
            .expect("inserted above if missing");
        if !in_ns.contains_key(name) {
            in_ns.insert(name.to_string(), Default::default());
        }
        in_ns.get_mut(name).expect("inserted above if missing")
    }

    /// Records what the store shows now, at `t` seconds; returns how many clusters are Steady
    /// and running. Reads only the StatefulSets, EndpointSlices and clusters that changed since
    /// the last poll (the bench deletes none), without copying objects and, but for a changed
    /// cluster's key, without allocating (`JsonPath::at`, not `Value::pointer`, which
    /// allocates per token): the poll holds the store's lock, and must not load the simulator
    /// it measures (with `Value::pointer`, polling the clusters alone was about 1 s of CPU
    /// under the lock in a 1,000-cluster run, `perf record`; reading all 3,000 StatefulSets
    /// every poll added about 2 s of the simulator's CPU, and reading all clusters every poll
    /// was 2.4% of its CPU in the second burst).
    fn poll(&mut self, sim: &Sim, t: f64) -> usize {
        self.seen_rv = sim.visit_changed("apps", "statefulsets", self.seen_rv, |s| {
            let str_at = |path: &str| s.at(path).and_then(|v| v.as_str()).unwrap_or("");
            let Some((cluster, tier)) = str_at("/metadata/name").rsplit_once('-') else {
                return;
            };
            let (created, ready) = match tier {
                "fe" => (0, 1),
                "be" => (3, 4),
                "cn" => (3, 5),
                _ => return,
            };
            let slots = self.of(str_at("/metadata/namespace"), cluster);
            if slots[ready].is_some() {
                return;
            }
            slots[created].get_or_insert(t);
            let count = |path: &str| s.at(path).and_then(|v| v.as_i64()).unwrap_or(0);
            if count("/spec/replicas") > 0
                && count("/status/readyReplicas") == count("/spec/replicas")
            {
                slots[ready] = Some(t);
            }
        });
        // The FE Service's first ready endpoint: the operator's FE gate waits for it too.
        self.seen_slices_rv = sim.visit_changed(
            "discovery.k8s.io",
            "endpointslices",
            self.seen_slices_rv,
            |s| {
                let service = s
                    .at("/metadata/labels/kubernetes.io~1service-name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let Some(cluster) = service.strip_suffix("-fe-service") else {
                    return;
                };
                let ready =
                    s.at("/endpoints")
                        .and_then(|v| v.as_array())
                        .is_some_and(|endpoints| {
                            endpoints.iter().any(|e| {
                                e.at("/conditions/ready").and_then(|r| r.as_bool()) != Some(false)
                            })
                        });
                if ready {
                    let namespace = s
                        .at("/metadata/namespace")
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    self.of(namespace, cluster)[2].get_or_insert(t);
                }
            },
        );
        let mut steady = std::mem::take(&mut self.steady);
        self.seen_clusters_rv = sim.visit_changed(
            "starrocks.com",
            "starrocksclusters",
            self.seen_clusters_rv,
            |c| {
                let str_at = |path: &str| c.at(path).and_then(|v| v.as_str()).unwrap_or("");
                let key = (
                    str_at("/metadata/namespace").to_string(),
                    str_at("/metadata/name").to_string(),
                );
                if str_at("/status/lifecycle/state") == "Steady"
                    && str_at("/status/phase") == "running"
                {
                    self.of(&key.0, &key.1)[6].get_or_insert(t);
                    steady.insert(key);
                } else {
                    steady.remove(&key);
                }
            },
        );
        self.steady = steady;
        self.steady.len()
    }

    /// Each cluster's times of [`STAGES`] (BE and CN ready: the later of the two).
    fn clusters(&self) -> impl Iterator<Item = (String, [Option<f64>; 6])> + '_ {
        self.reached.iter().flat_map(|(ns, in_ns)| {
            in_ns.iter().map(move |(name, r)| {
                let workers = r[4].zip(r[5]).map(|(be, cn)| be.max(cn));
                (
                    format!("{ns}/{name}"),
                    [r[0], r[1], r[2], r[3], workers, r[6]],
                )
            })
        })
    }

    /// On stderr: for each step between two stages, the seconds it took (p50, p90, max over
    /// the clusters that reached both; a readiness step less the pod-readiness delay `ready`),
    /// and the stages of the cluster that was Steady last: where a first deployment spends the
    /// time above the floor, in the simulated control plane (a StatefulSet to its pods ready,
    /// beyond the delay) or in the operator (a tier ready to the next tier's StatefulSet, and
    /// to Steady). Each time is that of the first poll that saw it: up to 0.1 s late.
    fn report(&self, ready: f64) {
        // (from the latest of these stages, to this one, less, what)
        let steps: [(&[usize], usize, f64, &str); 6] = [
            (&[], 0, 0.0, "clusters created -> FE StatefulSet (operator)"),
            (
                &[0],
                1,
                ready,
                "FE StatefulSet -> FE ready, less the delay (simulator)",
            ),
            (
                &[1],
                2,
                0.0,
                "FE ready -> the FE Service's first ready endpoint (simulator; negative when it came first)",
            ),
            (
                &[1, 2],
                3,
                0.0,
                "FE ready and its endpoint -> BE StatefulSet (operator)",
            ),
            (
                &[3],
                4,
                ready,
                "BE StatefulSet -> BE and CN ready, less the delay (simulator)",
            ),
            (&[4], 5, 0.0, "BE and CN ready -> Steady (operator)"),
        ];
        let clusters: Vec<(String, [Option<f64>; 6])> = self.clusters().collect();
        for (from, to, less, what) in steps {
            let mut took: Vec<f64> = clusters
                .iter()
                .filter_map(|(_, s)| {
                    let since = from
                        .iter()
                        .try_fold(0.0_f64, |latest, &f| Some(latest.max(s[f]?)))?;
                    Some(s[to]? - since - less)
                })
                .collect();
            if took.is_empty() {
                continue;
            }
            took.sort_by(f64::total_cmp);
            let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
            eprintln!(
                "  {what}: p50 {:.2} s, p90 {:.2} s, max {:.2} s",
                at(0.5),
                at(0.9),
                at(1.0)
            );
        }
        let last = clusters
            .iter()
            .filter_map(|(k, s)| Some((s[5]?, k, s)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, key, stages)) = last {
            let path: Vec<String> = STAGES
                .iter()
                .zip(stages)
                .map(|(name, t)| match t {
                    Some(t) => format!("{name} {t:.1} s"),
                    None => format!("{name} -"),
                })
                .collect();
            eprintln!("  the last cluster Steady ({key}): {}", path.join(", "));
        }
        if let Ok(path) = std::env::var("SCALE_STAGES_CSV") {
            let mut csv = format!("cluster,{}\n", STAGES.join(","));
            for (key, stages) in &clusters {
                let times: Vec<String> = stages
                    .iter()
                    .map(|t| t.map(|t| format!("{t:.2}")).unwrap_or_default())
                    .collect();
                csv.push_str(&format!("{key},{}\n", times.join(",")));
            }
            if let Err(e) = std::fs::write(&path, csv) {
                eprintln!("  could not write {path}: {e}");
            }
        }
    }
}

/// Samples the simulator's store lock every 100 us on a thread of its own until the flag is
/// set; the thread returns the share of samples that found it held, per second.
fn lock_probe(
    sim: &Sim,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<f64>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = sim.store_probe();
    let flag = stop.clone();
    let sampler = std::thread::spawn(move || {
        let start = Instant::now();
        let mut shares = Vec::new();
        let (mut samples, mut held) = (0u32, 0u32);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if probe.locked() {
                held += 1;
            }
            samples += 1;
            if start.elapsed().as_secs() as usize > shares.len() {
                shares.push(f64::from(held) / f64::from(samples.max(1)));
                (samples, held) = (0, 0);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        shares
    });
    (stop, sampler)
}

/// One progress line on stderr: where the clusters are (Steady, with an FE StatefulSet,
/// with a BE StatefulSet), pods created and ready, and API requests so far.
fn progress(sim: &Sim, started: Instant, clusters: usize, steady: usize) {
    let sts_of = |tier: &'static str| {
        sim.count("apps", "statefulsets", move |s| {
            s.at("/metadata/name")
                .and_then(|v| v.as_str())
                .is_some_and(|n| n.ends_with(tier))
        })
    };
    let pods = sim.count("", "pods", |_| true);
    let ready = sim.count("", "pods", |p| {
        p.at("/status/conditions")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    eprintln!(
        "{:>6.1} s: {} of {clusters} Steady, FE StatefulSets {}, BE {}, pods {pods} ({ready} ready), requests {}",
        started.elapsed().as_secs_f64(),
        steady,
        sts_of("-fe"),
        sts_of("-be"),
        sim.audit_len(),
    );
}

struct Row {
    clusters: usize,
    seconds: f64,
    floor: f64,
    peak_mib: f64,
    steady_mib: f64,
    requests_per_cluster: f64,
    reconciles_per_cluster: f64,
    cpu_seconds: f64,
    cpu_ms_per_reconcile: f64,
    sim_cpu_seconds: f64,
}

async fn run(
    clusters: usize,
    ready: Duration,
    deadline: Duration,
    window: usize,
    operator_cpus: Option<CpuSet>,
) -> Result<Row, Box<dyn std::error::Error>> {
    let port = free_port()?;
    let sim = Sim::start(SimOptions {
        pod_ready_delay: ready,
        watch_window: window,
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
    let wrapper = std::env::var("SCALE_OPERATOR_WRAPPER").unwrap_or_default();
    let mut command = wrapper
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    command.push(env!("CARGO_BIN_EXE_starrocks-operator").to_string());
    let mut operator = Command::new(&command[0]);
    if let Some(set) = operator_cpus {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook runs in the child between `fork` and `exec`, and only makes one
        // system call (`sched_setaffinity(2)`, async-signal-safe) on a set it owns.
        unsafe {
            operator.pre_exec(move || Ok(sched_setaffinity(Pid::from_raw(0), &set)?));
        }
    }
    let mut child: Child = operator
        .args(&command[1..])
        .args(["run", "--journal"])
        .arg(dir.path().join("journal"))
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("operator.log"))?)
        .spawn()?;
    let wrapped = command.len() > 1;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.clear_audit();
    let probe = std::env::var_os("SCALE_LOCK_PROBE").map(|_| lock_probe(&sim));
    let started = Instant::now();
    let started_utc = chrono::Utc::now();
    let sim_cpu_before = cpu_seconds(std::process::id());
    let machine_before = machine_ticks();
    let rv_before = sim.resource_version();
    let writes_before: std::collections::BTreeMap<_, _> =
        sim.writes_by_type().into_iter().collect();
    for i in 0..clusters {
        let ns = format!("scale-{}", i / 100);
        let name = format!("c{i}");
        let yaml = DEMO
            .replace("name: demo", &format!("name: {name}"))
            .replace("namespace: starrocks", &format!("namespace: {ns}"));
        sim.create_from_yaml(&yaml)?;
    }
    let deadline_at = started + deadline;
    let mut steady = 0;
    let mut stages = Stages::default();
    let mut next_progress = started;
    while steady < clusters && Instant::now() < deadline_at {
        if Instant::now() >= next_progress {
            progress(&sim, started, clusters, steady);
            next_progress += Duration::from_secs(5);
        }
        if let Some(exit) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default();
            return Err(format!("the operator exited early ({exit}):\n{log}").into());
        }
        steady = stages.poll(&sim, started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let machine_after = machine_ticks();
    stages.report(ready.as_secs_f64());
    if let Some((stop, sampler)) = probe {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let shares = sampler.join().unwrap_or_default();
        let line: Vec<String> = shares
            .iter()
            .enumerate()
            .map(|(s, share)| format!("{s}s {:.0}%", share * 100.0))
            .collect();
        eprintln!("  store lock held, by second: {}", line.join(", "));
    }
    if steady < clusters {
        eprintln!(
            "{} of {clusters} clusters not Steady after {} s",
            clusters - steady,
            deadline.as_secs()
        );
    }
    // Whether the run was bound by CPU: how busy the whole machine was until all were Steady.
    let (busy, total) = (
        machine_after.0 - machine_before.0,
        machine_after.1 - machine_before.1,
    );
    eprintln!(
        "  machine CPU busy until all Steady: {:.0}% of {} cores",
        100.0 * busy as f64 / total.max(1) as f64,
        machine_cpus(),
    );
    // The simulator's memory (this process; the stored objects, then the retained watch history).
    eprintln!(
        "  simulator peak RSS: {:.0} MiB (watch history: {window} events)",
        memory_kib(std::process::id()).0 as f64 / 1024.0
    );
    let audit = sim.audit();
    let requests = audit.len();
    if let Ok(path) = std::env::var("SCALE_AUDIT_CSV") {
        // Each API request, in seconds since the clusters were created (as the stages are).
        let mut csv = String::from("seconds,verb,resource,subresource,namespace,name,code\n");
        for e in &audit {
            let at = (e.time - started_utc).as_seconds_f64();
            csv.push_str(&format!(
                "{at:.4},{},{},{},{},{},{}\n",
                e.verb,
                e.resource,
                e.subresource.as_deref().unwrap_or_default(),
                e.namespace.as_deref().unwrap_or_default(),
                e.name.as_deref().unwrap_or_default(),
                e.code
            ));
        }
        std::fs::write(&path, csv)?;
    }
    // Where the requests went, on stderr: per cluster, by verb, resource and subresource.
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for e in &audit {
        let sub = e
            .subresource
            .as_deref()
            .map_or(String::new(), |s| format!("/{s}"));
        *by_kind
            .entry(format!("{} {}{sub}", e.verb, e.resource))
            .or_default() += 1;
    }
    for (kind, n) in &by_kind {
        eprintln!("  {kind}: {:.2} / cluster", *n as f64 / clusters as f64);
    }
    // The Events' reasons: repeats of a reason within a cluster are one Event with a series.
    let reasons = sim.tally("events.k8s.io", "events", |e| {
        e["reason"].as_str().unwrap_or_default().to_string()
    });
    for (reason, n) in reasons {
        eprintln!(
            "  Events {reason}: {:.2} / cluster",
            n as f64 / clusters as f64
        );
    }
    // Every write moves the one resourceVersion counter: the API requests' writes plus the
    // simulated controllers' (pods, workload and EndpointSlice status), all under the store
    // lock.
    eprintln!(
        "  store writes (API and simulated controllers): {:.2} / cluster",
        (sim.resource_version() - rv_before) as f64 / clusters as f64
    );
    for ((group, plural), n) in sim.writes_by_type() {
        let n = n - writes_before
            .get(&(group.clone(), plural.clone()))
            .unwrap_or(&0);
        if n > 0 {
            let group = if group.is_empty() { "core" } else { &group };
            eprintln!(
                "    {plural} ({group}): {:.2} / cluster",
                n as f64 / clusters as f64
            );
        }
    }
    // Settle: resyncs only.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pid = operator_pid(child.id());
    let sim_cpu = cpu_seconds(std::process::id()) - sim_cpu_before;
    let (peak, rss) = memory_kib(pid);
    let cpu = cpu_seconds(pid);
    let reconciled = reconciles(port);
    if wrapped {
        // Under a wrapper: kill the operator itself, so that what a heap profiler reports as
        // leaked is what the operator held at steady state; the wrapper then ends.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    } else {
        let _ = child.kill();
    }
    let _ = child.wait();
    if let Ok(keep) = std::env::var("SCALE_KEEP_JOURNAL") {
        // For `starrocks-operator replay --journal <dir>/<clusters>/journal`.
        let to = std::path::Path::new(&keep).join(clusters.to_string());
        std::fs::create_dir_all(&to)?;
        let copied = Command::new("cp")
            .arg("-r")
            .arg(dir.path().join("journal"))
            .arg(dir.path().join("operator.log"))
            .arg(&to)
            .status()?;
        if !copied.success() {
            return Err(
                format!("copying the journal to {} failed ({copied})", to.display()).into(),
            );
        }
    }
    sim.shutdown().await;
    Ok(Row {
        clusters,
        seconds,
        floor: 2.0 * ready.as_secs_f64(),
        peak_mib: peak as f64 / 1024.0,
        steady_mib: rss as f64 / 1024.0,
        requests_per_cluster: requests as f64 / clusters as f64,
        reconciles_per_cluster: reconciled / clusters as f64,
        cpu_seconds: cpu,
        cpu_ms_per_reconcile: 1000.0 * cpu / reconciled.max(1.0),
        sim_cpu_seconds: sim_cpu,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The simulator's own logs, on stderr, when asked: e.g. `kube_sim::controllers=debug` for
    // the length and writes of every pass of its control loop.
    if let Ok(filter) = std::env::var("SCALE_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
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
    let deadline = Duration::from_secs(
        std::env::var("SCALE_DEADLINE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
    );
    let window = std::env::var("SCALE_WATCH_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    // Before the runtime, so that its threads (and the simulator's control loop) inherit it.
    let placement = placement()?;
    match &placement {
        Some(p) => {
            sched_setaffinity(Pid::from_raw(0), &cpu_set(&p.simulator)?)?;
            eprintln!(
                "simulator on CPUs {:?}, operator on CPU {} (SCALE_PIN=0: both on all)",
                p.simulator, p.operator
            );
        }
        None => eprintln!("simulator and operator share the CPUs"),
    }
    let operator_cpus = placement
        .as_ref()
        .map(|p| cpu_set(&[p.operator]))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "| clusters | all Steady (s) | floor (s) | ratio | peak RSS (MiB) | steady RSS (MiB) | API requests / cluster | reconciles / cluster | operator CPU (s) | CPU ms / reconcile | simulator CPU (s) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for clusters in sizes {
        let row = rt.block_on(run(clusters, ready, deadline, window, operator_cpus))?;
        println!(
            "| {} | {:.1} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |",
            row.clusters,
            row.seconds,
            row.floor,
            row.seconds / row.floor,
            row.peak_mib,
            row.steady_mib,
            row.requests_per_cluster,
            row.reconciles_per_cluster,
            row.cpu_seconds,
            row.cpu_ms_per_reconcile,
            row.sim_cpu_seconds
        );
    }
    Ok(())
}
