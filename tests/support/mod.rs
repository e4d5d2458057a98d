//! Shared set-up of the operator's integration tests: an embedded simulated cluster, the
//! operator as a task with a sled journal in a temporary directory, and the checks.

#![allow(dead_code)]

use kube::ResourceExt;
use kube_sim::SimOptions;
use starrocks_model::component::Tier;
use starrocks_model::journal::Record;
use starrocks_operator::controller::ControllerConfig;
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::embedded::{Embedded, RunningOperator, retag_patch, steady_at};
use starrocks_operator::journal::{JournalStore, OpenOptions, Recovery, SledJournal};
use starrocks_operator::witness::{self, TemplateWrite};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Upper bound of one phase (a first deployment or a rollout).
pub const PHASE: Duration = Duration::from_secs(60);

/// The upgrade order and the downgrade order.
pub const UPGRADE: [Tier; 3] = [Tier::Be, Tier::Cn, Tier::Fe];
pub const DOWNGRADE: [Tier; 3] = [Tier::Fe, Tier::Be, Tier::Cn];

/// Rules with a wrong order (FE first in both directions), to show the checks can fail.
pub fn fe_first_rules() -> starrocks_model::Rules {
    fn fe_first(_: starrocks_model::Direction) -> [Tier; 3] {
        [Tier::Fe, Tier::Be, Tier::Cn]
    }
    starrocks_model::Rules {
        order: fe_first,
        ..starrocks_model::Rules::default()
    }
}

/// `kubectl kustomize <dir>` (relative to the repository root); `None`, with a notice, when
/// kubectl is not installed.
pub fn kustomize(dir: &str) -> Option<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = match std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(root.join(dir))
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("NOTICE: kubectl is not installed; skipping the check of {dir}");
            return None;
        }
        Err(e) => panic!("running kubectl kustomize {dir}: {e}"),
    };
    assert!(
        output.status.success(),
        "kubectl kustomize {dir} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("kubectl prints UTF-8"))
}

/// Sends tracing output to libtest's captured output, which is printed only for a failing
/// test. The filter is `RUST_LOG`, by default the operator's and kube-runtime's debug events
/// (which include every watch error) and the simulator's info. The runtime's threads inherit
/// the test thread's capture, so each test shows its own operator's log.
pub fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,starrocks_operator=debug,kube_runtime=debug,kube_sim=info",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Fast simulated pods: Ready 100 ms after creation.
pub fn sim_options() -> SimOptions {
    SimOptions {
        pod_ready_delay: Duration::from_millis(100),
        ..SimOptions::default()
    }
}

/// Short intervals so that resyncs and retries happen within a test.
pub fn test_config() -> ControllerConfig {
    ControllerConfig {
        resync: Duration::from_millis(400),
        progress_requeue: Duration::from_millis(500),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(800),
        ..ControllerConfig::default()
    }
}

pub struct Env {
    pub embedded: Embedded,
    pub dir: tempfile::TempDir,
    pub journal: Option<Arc<SledJournal>>,
    pub operator: Option<RunningOperator>,
    pub config: ControllerConfig,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(sim_options(), test_config()).await
    }

    pub async fn start_with(options: SimOptions, config: ControllerConfig) -> Env {
        let mut env = Env::without_operator(options, config).await;
        env.start_operator();
        env
    }

    /// The simulator and the journal directory, the operator not started yet.
    pub async fn without_operator(options: SimOptions, config: ControllerConfig) -> Env {
        capture_logs();
        let embedded = Embedded::start(options).await.expect("simulator starts");
        embedded
            .ensure_namespace("starrocks")
            .await
            .expect("namespace");
        let dir = tempfile::tempdir().expect("temp dir");
        Env {
            embedded,
            dir,
            journal: None,
            operator: None,
            config,
        }
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    /// Opens the journal (moving a corrupt one aside) and starts the operator.
    pub fn start_operator(&mut self) -> Option<Recovery> {
        let (journal, recovery) =
            SledJournal::open(self.journal_path(), OpenOptions::default()).expect("journal opens");
        let journal = Arc::new(journal);
        self.operator = Some(
            self.embedded
                .spawn_operator(journal.clone(), self.config.clone()),
        );
        self.journal = Some(journal);
        recovery
    }

    /// Kills the operator task wherever it is, and closes the journal once nothing of the
    /// dead operator holds it.
    pub async fn kill_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.kill().await;
        }
        self.close_journal().await;
    }

    async fn close_journal(&mut self) {
        let Some(mut journal) = self.journal.take() else {
            return;
        };
        for _ in 0..500 {
            match Arc::try_unwrap(journal) {
                Ok(j) => {
                    drop(j);
                    return;
                }
                Err(still_shared) => {
                    journal = still_shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        panic!("the killed operator's journal handle was never released");
    }

    pub fn journal(&self) -> &SledJournal {
        self.journal.as_deref().expect("journal open")
    }

    /// Every record of the cluster's log.
    pub fn records(&self, cluster: &StarRocksCluster) -> Vec<Record> {
        let uid = cluster.metadata.uid.clone().expect("uid");
        self.journal().read(&uid).expect("journal reads")
    }

    /// Creates every object of a manifest (ConfigMaps, Secrets, the cluster) and returns the
    /// cluster.
    pub async fn create(&self, yaml: &str) -> StarRocksCluster {
        self.embedded
            .sim
            .create_from_yaml(yaml)
            .expect("manifest applies");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).expect("yaml");
        let doc = docs
            .into_iter()
            .find(|d| d["kind"] == "StarRocksCluster")
            .expect("a StarRocksCluster in the manifest");
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = doc["metadata"]["name"].as_str().expect("name");
        self.get(ns, name).await
    }

    pub async fn get(&self, ns: &str, name: &str) -> StarRocksCluster {
        let api = kube::Api::<StarRocksCluster>::namespaced(self.embedded.client.clone(), ns);
        retry(|| api.get(name)).await
    }

    /// Waits until the cluster is Steady and running at `generation`.
    pub async fn steady(&self, cluster: &StarRocksCluster, generation: i64) -> StarRocksCluster {
        let ns = cluster.namespace().expect("ns");
        let name = cluster.name_any();
        let cluster = self
            .embedded
            .wait_for(
                &ns,
                &name,
                &format!("{name} Steady at generation {generation}"),
                PHASE,
                |c| steady_at(c, generation),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}; {}", self.operator_view(cluster)));
        // Every order check follows a Steady: let the witness see every write up to here.
        assert!(
            self.embedded.wait_for_witness(PHASE).await,
            "the witness did not catch up with the simulator within {PHASE:?}"
        );
        cluster
    }

    /// What the operator knows of `cluster`, for a timeout's message: which of its caches are
    /// not synced yet, whether its task still runs, how many reconciles it started, and the
    /// cluster's journal records (the operator's log is printed with the failing test's output).
    pub fn operator_view(&self, cluster: &StarRocksCluster) -> String {
        let Some(op) = &self.operator else {
            return "no operator running".into();
        };
        let records = match (&self.journal, &cluster.metadata.uid) {
            (Some(journal), Some(uid)) => match journal.read(uid) {
                Ok(records) => records
                    .iter()
                    .map(|r| format!("{} {} -> {}", r.event.kind(), r.before, r.after))
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => format!("unreadable: {e}"),
            },
            _ => "no journal".into(),
        };
        format!(
            "operator: unsynced caches {:?}, task finished {}, {} reconciles started; journal of {}: [{}]",
            op.context.caches.unsynced(),
            op.is_finished(),
            op.context.reconcile_count(),
            cluster.name_any(),
            records
        )
    }

    /// Waits until the lifecycle state is `state`.
    pub async fn state(&self, cluster: &StarRocksCluster, state: &str) -> StarRocksCluster {
        let ns = cluster.namespace().expect("ns");
        let name = cluster.name_any();
        self.embedded
            .wait_for(&ns, &name, &format!("{name} in {state}"), PHASE, |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.lifecycle.as_ref())
                    .and_then(|l| l.state.as_deref())
                    == Some(state)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; {}", self.operator_view(cluster)))
    }

    pub async fn patch(&self, cluster: &StarRocksCluster, patch: serde_json::Value) -> i64 {
        let ns = cluster.namespace().expect("ns");
        let name = cluster.name_any();
        let c = retry(|| self.embedded.patch_cluster(&ns, &name, patch.clone())).await;
        c.metadata.generation.expect("generation")
    }

    /// Sets the image tag of every StarRocks component the cluster has. Returns the new
    /// generation.
    pub async fn set_tag(&self, cluster: &StarRocksCluster, tag: &str) -> i64 {
        self.patch(cluster, retag_patch(cluster, tag)).await
    }

    /// Template writes of the cluster after resource version `since`.
    pub fn writes_since(&self, cluster: &StarRocksCluster, since: u64) -> Vec<TemplateWrite> {
        witness::template_writes(
            &self.embedded.sim.audit(),
            &cluster.namespace().expect("ns"),
            &cluster.name_any(),
        )
        .into_iter()
        .filter(|w| w.resource_version > since)
        .collect()
    }

    /// Asserts the tier order of the writes, and that each of `expected` tiers was written.
    pub fn assert_order(
        &self,
        cluster: &StarRocksCluster,
        writes: &[TemplateWrite],
        order: &[Tier],
    ) {
        let samples = self.embedded.samples();
        let violations = witness::check_tier_order(writes, &samples, &cluster.name_any(), order);
        // On failure, the watched workload states from the first write on: what the witness
        // had to go by.
        let first = writes.iter().map(|w| w.resource_version).min().unwrap_or(0);
        let watched: Vec<String> = samples
            .iter()
            .filter(|s| s.resource_version >= first)
            .map(|s| {
                format!(
                    "  rv {:>6}  {:<24} generation {:>3}  rolled out {}",
                    s.resource_version, s.name, s.generation, s.rolled_out
                )
            })
            .collect();
        assert!(
            violations.is_empty(),
            "order violated:\n{violations:#?}\ntimeline:\n{}\nwatched states since the first write:\n{}",
            witness::timeline(writes),
            watched.join("\n")
        );
    }

    pub fn assert_first_deployment(&self, cluster: &StarRocksCluster) {
        let violations = witness::check_first_deployment(
            &self.embedded.sim.audit(),
            &self.embedded.samples(),
            &cluster.namespace().expect("ns"),
            &cluster.name_any(),
        );
        assert!(
            violations.is_empty(),
            "first deployment order violated: {violations:#?}"
        );
    }

    /// The cluster's journal replays with no divergence under today's model.
    pub fn assert_replays(&self, cluster: &StarRocksCluster) -> usize {
        let records = self.records(cluster);
        assert!(!records.is_empty(), "the journal has records");
        if let Err(d) = starrocks_model::journal::replay(&records) {
            panic!("the journal of {} diverges: {d}", cluster.name_any());
        }
        records.len()
    }

    /// Creates the demo cluster (3 FE, 3 BE, 1 CN), waits for Steady and checks FE went first.
    pub async fn deploy_demo(&self) -> StarRocksCluster {
        let cluster = self.create(&example("starrocks-cluster-demo.yaml")).await;
        self.steady(&cluster, 1).await;
        self.assert_first_deployment(&cluster);
        cluster
    }

    /// Sets every image to `tag`, waits for Steady and asserts the rollout's order; returns
    /// the rollout's template writes.
    pub async fn roll_to(
        &self,
        cluster: &StarRocksCluster,
        tag: &str,
        order: &[Tier],
    ) -> Vec<TemplateWrite> {
        let mark = self.embedded.sim.resource_version();
        let generation = self.set_tag(cluster, tag).await;
        self.steady(cluster, generation).await;
        let writes = self.writes_since(cluster, mark);
        self.assert_order(cluster, &writes, order);
        writes
    }

    /// Sets every image to `first`, and once the rollout has reached CN, to `second`; waits
    /// for Steady and asserts the upgrade order of the writes made before the second change
    /// and of the writes to `second`. Returns both sets of writes.
    pub async fn change_mid_rollout(
        &self,
        cluster: &StarRocksCluster,
        first: &str,
        second: &str,
    ) -> (Vec<TemplateWrite>, Vec<TemplateWrite>) {
        let start = self.embedded.sim.resource_version();
        self.set_tag(cluster, first).await;
        self.state(cluster, "UpgradingCn").await;
        let change = self.embedded.sim.resource_version();
        let generation = self.set_tag(cluster, second).await;
        self.steady(cluster, generation).await;
        let before: Vec<_> = self
            .writes_since(cluster, start)
            .into_iter()
            .filter(|w| w.resource_version <= change)
            .collect();
        self.assert_order(cluster, &before, &UPGRADE);
        let suffix = format!(":{second}");
        let after: Vec<_> = self
            .writes_since(cluster, change)
            .into_iter()
            .filter(|w| w.images.iter().all(|i| i.ends_with(&suffix)))
            .collect();
        self.assert_order(cluster, &after, &UPGRADE);
        (before, after)
    }

    pub async fn shutdown(mut self) {
        if let Some(op) = self.operator.take() {
            op.stop().await;
        }
        self.embedded.shutdown().await;
    }
}

/// Retries a request of the test itself through injected faults (up to 50 times).
pub async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> F,
) -> T {
    let mut last = String::new();
    for _ in 0..50 {
        match call().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a test request kept failing: {last}");
}

/// The example manifests under `deploy/examples/`, by file name.
pub fn examples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("example reads"),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn example(file: &str) -> String {
    examples()
        .into_iter()
        .find(|(f, _)| f == file)
        .map(|(_, y)| y)
        .unwrap_or_else(|| panic!("no example {file}"))
}

/// An operator instance under leader election (Lease `starrocks-operator-leader` in
/// `lease_namespace`, 2 s duration), with its own journal.
pub struct Instance {
    pub readiness: Arc<starrocks_operator::leader::Readiness>,
    pub task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

pub fn spawn_elected(
    client: kube::Client,
    config: ControllerConfig,
    identity: &str,
    lease_namespace: &str,
) -> Instance {
    use starrocks_operator::controller::Operator;
    use starrocks_operator::leader::{LeaderElection, Readiness, run_elected};
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) =
        SledJournal::open(dir.path().join("journal"), OpenOptions::default()).unwrap();
    let journal = Arc::new(journal);
    let readiness = Arc::new(Readiness::default());
    let metrics = Arc::new(starrocks_operator::metrics::Metrics::new());
    let election = LeaderElection {
        lease_name: "starrocks-operator-leader".into(),
        namespace: lease_namespace.into(),
        identity: identity.into(),
        duration: Duration::from_secs(2),
        grace: Duration::from_secs(1),
    };
    let build = {
        let client = client.clone();
        let identity = identity.to_string();
        move || {
            Operator::new(
                client.clone(),
                journal.clone(),
                config.clone(),
                identity.clone().into(),
                metrics.clone(),
            )
        }
    };
    let task = tokio::spawn({
        let readiness = readiness.clone();
        async move {
            if let Err(e) =
                run_elected(client, election, readiness, build, std::future::pending()).await
            {
                eprintln!("leader election ended: {e}");
            }
        }
    });
    Instance {
        readiness,
        task,
        _dir: dir,
    }
}
