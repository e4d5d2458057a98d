//! `starrocks-operator run`: logging, the client, the journal, the HTTP server and the
//! controller (under leader election when asked), until SIGINT or SIGTERM.

use crate::cli::{LogFormat, RunArgs};
use crate::controller::{ControllerConfig, Operator};
use crate::journal::{JournalError, JournalStore, OpenOptions, Retention, SledJournal};
use crate::leader::{LeaderElection, LeaderError, Readiness, run_elected};
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// Why the operator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable cluster configuration.
    #[error(
        "no Kubernetes configuration: {0}; run in a pod with a service account, or set KUBECONFIG"
    )]
    Config(#[source] kube::Error),
    /// The journal could not be opened (locked by another process, or not writable).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}; pass another --http-addr")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`). JSON lines carry the
/// reconcile span's fields (cluster, state, action).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// What the HTTP handlers read.
#[derive(Clone)]
struct Shared {
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

/// The HTTP endpoints: `/healthz` (the process serves), `/readyz` (see [`Readiness`]),
/// `/metrics` (Prometheus text format) and the journal export under `/journal` (see
/// [`crate::journal::http`]).
pub fn router(
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    journal: Arc<dyn JournalStore + Send + Sync>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<Shared>| async move {
                if s.readiness.ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move {
                match s.metrics.encode() {
                    Ok(text) => (
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }),
        )
        .with_state(Shared { readiness, metrics })
        .merge(crate::journal::http::router(journal))
}

/// Runs the operator until SIGINT or SIGTERM.
///
/// # Errors
/// [`RunError`] when the configuration, the journal, the HTTP address or the Lease is
/// unusable.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    init_logging(args.log_format);
    let client = kube::Client::try_default()
        .await
        .map_err(RunError::Config)?;
    let options = OpenOptions {
        retention: Some(Retention::new(args.journal_retention)),
        ..OpenOptions::default()
    };
    let (journal, recovery) = SledJournal::open(&args.journal, options)?;
    if let Some(recovery) = recovery {
        tracing::error!(%recovery, "journal recovered");
    }
    let journal: Arc<dyn JournalStore + Send + Sync> = Arc::new(journal);
    let config = ControllerConfig {
        namespace: args.namespace.clone(),
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        max_concurrent_reconciles: args.max_concurrent_reconciles,
        ..ControllerConfig::default()
    };
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        format!(
            "starrocks-operator-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        )
    });
    let reporter = kube::runtime::events::Reporter {
        controller: crate::render::names::FIELD_MANAGER.to_string(),
        instance: Some(identity.clone()),
    };
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: args.http_addr,
            source,
        })?;
    let app = router(readiness.clone(), metrics.clone(), journal.clone());
    let http = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(
        namespace = ?args.namespace,
        journal = %args.journal.display(),
        http = %args.http_addr,
        leader_election = args.leader_election,
        "starting"
    );
    let build = {
        let (client, journal, metrics) = (client.clone(), journal.clone(), metrics.clone());
        move || {
            Operator::new(
                client.clone(),
                journal.clone(),
                config.clone(),
                reporter.clone(),
                metrics.clone(),
            )
        }
    };
    let result = if args.leader_election {
        let election = LeaderElection {
            lease_name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity,
            duration: Duration::from_secs(args.lease_seconds.max(2)),
            grace: Duration::from_secs((args.lease_seconds / 3).max(1)),
        };
        run_elected(client, election, readiness, build, shutdown_signal())
            .await
            .map_err(RunError::from)
    } else {
        let operator = build();
        readiness.set_caches(operator.context().caches.clone());
        operator.run(shutdown_signal()).await;
        Ok(())
    };
    http.abort();
    tracing::info!("stopped");
    result
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what the kubelet sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
