//! Command-line interface of the `starrocks-operator` binary.

use crate::journal::replay::ReplaySource;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The `starrocks-operator` command line.
#[derive(Debug, Parser)]
#[command(name = "starrocks-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of the operator binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator against the cluster of the in-cluster config or the kubeconfig
    /// (`KUBECONFIG`, `~/.kube/config`).
    Run(RunArgs),
    /// Run the operator against an embedded simulated cluster through the first deployment
    /// and an upgrade of `deploy/examples/starrocks-cluster-demo.yaml`, and check StarRocks'
    /// order in the simulator's audit log; exits 1 if the order was wrong. No set-up needed.
    Demo(DemoArgs),
    /// Print the version of the lifecycle model and its journal record format.
    Version,
    /// Print the StarRocksCluster CustomResourceDefinition as YAML (the content of
    /// `crds/starrocks.com_starrocksclusters.yaml`).
    Crd,
    /// Re-run a journal through today's lifecycle model and print the timeline; exits 1 at the
    /// first record where today's model decides differently, 2 when the journal cannot be read.
    Replay(ReplayArgs),
    /// Work with the operator's journal.
    Journal {
        /// What to do with the journal.
        #[command(subcommand)]
        command: JournalCommand,
    },
}

/// Arguments of `replay`: a journal directory or a JSON Lines export.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["journal", "file"]))]
pub struct ReplayArgs {
    /// The journal directory (the operator's `--journal`). Stop the operator or copy the
    /// directory first: a running operator holds its lock.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Only this cluster's log (`NAMESPACE/NAME` or the cluster's UID); every cluster's log
    /// by default.
    #[arg(long, value_name = "NS/NAME", requires = "journal")]
    pub cluster: Option<String>,
    /// A JSON Lines export (`journal export`) instead of a journal directory.
    #[arg(long, value_name = "FILE", conflicts_with = "journal")]
    pub file: Option<PathBuf>,
}

impl ReplayArgs {
    /// Where to read the records from.
    pub fn source(&self) -> ReplaySource {
        match (&self.journal, &self.file) {
            (Some(dir), _) => ReplaySource::Journal {
                dir: dir.clone(),
                cluster: self.cluster.clone(),
            },
            (None, Some(file)) => ReplaySource::File(file.clone()),
            // clap requires one of the two; an empty path then fails with "cannot open".
            (None, None) => ReplaySource::File(PathBuf::new()),
        }
    }
}

/// The `journal` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write one cluster's log to standard output as JSON Lines (one record per line), for
    /// `replay --file`.
    Export {
        /// The journal directory (the operator's `--journal`).
        #[arg(long, value_name = "DIR")]
        journal: PathBuf,
        /// The cluster: `NAMESPACE/NAME` or the cluster's UID.
        #[arg(long, value_name = "NS/NAME")]
        cluster: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (for a terminal).
    Text,
    /// One JSON object per line (for log collectors in a cluster).
    Json,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch only this namespace (all namespaces by default).
    #[arg(long, env = "STARROCKS_OPERATOR_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// The journal directory (created if missing; a corrupt one is moved aside).
    #[arg(
        long,
        env = "STARROCKS_OPERATOR_JOURNAL",
        value_name = "DIR",
        default_value = "/var/lib/starrocks-operator/journal"
    )]
    pub journal: PathBuf,
    /// Journal records kept per cluster (older ones are dropped, with a checkpoint so the
    /// rest still replays).
    #[arg(
        long,
        env = "STARROCKS_OPERATOR_JOURNAL_RETENTION",
        default_value_t = 10_000
    )]
    pub journal_retention: usize,
    /// Address of the HTTP server: `/healthz`, `/readyz`, `/journal`.
    #[arg(
        long,
        env = "STARROCKS_OPERATOR_HTTP_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub http_addr: std::net::SocketAddr,
    /// Log format.
    #[arg(long, env = "STARROCKS_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds between resyncs of a cluster with nothing in progress.
    #[arg(long, env = "STARROCKS_OPERATOR_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,
    /// How many clusters are reconciled at once; the others wait in the queue. Bounds the
    /// memory of API requests in flight (about 50 KiB each).
    #[arg(long, env = "STARROCKS_OPERATOR_MAX_CONCURRENT_RECONCILES", default_value_t = 128,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// Run only while holding a Lease, so that several replicas can run with one active.
    #[arg(long, env = "STARROCKS_OPERATOR_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "STARROCKS_OPERATOR_LEASE_NAME",
        default_value = "starrocks-operator-leader"
    )]
    pub lease_name: String,
    /// Namespace of the Lease: the operator's own (`POD_NAMESPACE` from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Seconds a Lease stays valid without renewal: how long a standby waits after the
    /// leader died.
    #[arg(long, env = "STARROCKS_OPERATOR_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the journal (kept afterwards for `replay`); a fresh temporary
    /// directory by default.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Simulated seconds from a pod's creation to Ready.
    #[arg(long, default_value_t = 1.0)]
    pub pod_ready_seconds: f64,
}
