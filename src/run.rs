//! `starrocks-operator run`: logging, the client, the journal, the HTTP server and the
//! controller, until SIGINT or SIGTERM.

use crate::cli::{LogFormat, RunArgs};
use crate::controller::{Context, ControllerConfig, Operator};
use crate::journal::{JournalError, JournalStore, OpenOptions, Retention, SledJournal};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
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
}

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`).
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

/// The HTTP endpoints: `/healthz` (the process serves), `/readyz` (caches synced) and the
/// journal export under `/journal` (see [`crate::journal::http`]).
pub fn router(ctx: Arc<Context>, _journal: Arc<dyn JournalStore + Send + Sync>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(ctx): State<Arc<Context>>| async move {
                if ctx.caches.ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
                }
            }),
        )
        .with_state(ctx)
}

/// Runs the operator until SIGINT or SIGTERM.
///
/// # Errors
/// [`RunError`] when the configuration, the journal or the HTTP address is unusable.
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
        ..ControllerConfig::default()
    };
    let reporter = kube::runtime::events::Reporter {
        controller: crate::render::names::FIELD_MANAGER.to_string(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let operator = Operator::new(client, journal.clone(), config, reporter);
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: args.http_addr,
            source,
        })?;
    let app = router(operator.context(), journal);
    let http = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(namespace = ?args.namespace, journal = %args.journal.display(), http = %args.http_addr, "starting");
    operator.run(shutdown_signal()).await;
    http.abort();
    tracing::info!("stopped");
    Ok(())
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
