//! The journal over HTTP, so that a cluster's log can be pulled out of a running operator
//! (whose journal directory is locked while it runs, see [`JournalError::Locked`]).
//!
//! - `GET /journal`: the clusters the journal has a log for, as JSON ([`JournalListing`]).
//! - `GET /journal/{namespace}/{name}`: the log of the latest cluster of that name, as JSON
//!   Lines (`application/x-ndjson`): the same bytes `starrocks-operator journal export`
//!   writes, readable by `replay --file` and [`jsonl::import`].
//!
//! Errors are plain text: 404 for a cluster without a log (the message lists the clusters the
//! journal has), 500 when the store fails. The store's calls block (sled reads from disk), so
//! they run on tokio's blocking pool.

use super::replay::select_cluster;
use super::{ClusterLog, JournalError, JournalStore, jsonl};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The media type of a JSON Lines export.
pub const NDJSON: &str = "application/x-ndjson";

/// The store the router serves.
type Store = Arc<dyn JournalStore + Send + Sync>;

/// The body of `GET /journal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalListing {
    /// Every cluster with a log, ordered by namespace, name and UID.
    pub clusters: Vec<ListedCluster>,
}

/// One cluster of `GET /journal` (camelCase in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedCluster {
    /// `metadata.namespace` of the StarRocksCluster.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`; the log's key.
    pub uid: String,
    /// Sequence number of the oldest record held (records before it were dropped by
    /// retention); `null` for an empty log.
    pub first_seq: Option<u64>,
    /// Sequence number of the newest record; `null` for an empty log.
    pub last_seq: Option<u64>,
}

impl From<ClusterLog> for ListedCluster {
    fn from(log: ClusterLog) -> ListedCluster {
        ListedCluster {
            namespace: log.cluster.namespace,
            name: log.cluster.name,
            uid: log.cluster.uid,
            first_seq: log.seqs.map(|(first, _)| first),
            last_seq: log.seqs.map(|(_, last)| last),
        }
    }
}

/// The journal's HTTP routes (see the module documentation) over `store`; mount it in the
/// operator's HTTP server. Each request reads the store on tokio's blocking pool, so the
/// router must be served from within a tokio runtime.
pub fn router(store: Arc<dyn JournalStore + Send + Sync>) -> Router {
    Router::new()
        .route("/journal", get(list))
        .route("/journal/{namespace}/{name}", get(export))
        .with_state(store)
}

async fn list(State(store): State<Store>) -> Response {
    match blocking(store, |store| store.clusters()).await {
        Ok(clusters) => {
            let mut clusters: Vec<ListedCluster> =
                clusters.into_iter().map(ListedCluster::from).collect();
            // The store sorts by `ClusterKey`, whose order starts with the UID.
            clusters.sort_by(|a, b| {
                (&a.namespace, &a.name, &a.uid).cmp(&(&b.namespace, &b.name, &b.uid))
            });
            Json(JournalListing { clusters }).into_response()
        }
        Err(response) => response,
    }
}

async fn export(
    State(store): State<Store>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let selector = format!("{namespace}/{name}");
    let body = blocking(store, move |store| {
        let cluster = select_cluster(store, &selector)?;
        let records = store.read(&cluster.uid)?;
        let mut body = Vec::new();
        jsonl::export(&records, &mut body)?;
        Ok(body)
    })
    .await;
    match body {
        Ok(body) => ([(CONTENT_TYPE, NDJSON)], body).into_response(),
        Err(response) => response,
    }
}

/// Runs `call` on the store on tokio's blocking pool; an error becomes its response.
async fn blocking<T: Send + 'static>(
    store: Store,
    call: impl FnOnce(&(dyn JournalStore + Send + Sync)) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(move || call(&*store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error_response(&error)),
        Err(join) => {
            tracing::warn!(error = %join, "journal HTTP request: the store call did not finish");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "the journal read did not finish; see the operator's log\n",
            )
                .into_response())
        }
    }
}

/// A plain-text response for `error`: 404 for an unknown cluster, 400 for a malformed name,
/// 500 (also logged) for a failing store.
fn error_response(error: &JournalError) -> Response {
    let status = match error {
        JournalError::UnknownCluster { .. } => StatusCode::NOT_FOUND,
        JournalError::BadClusterName(_) => StatusCode::BAD_REQUEST,
        _ => {
            tracing::warn!(error = %error, "journal HTTP request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, format!("{error}\n")).into_response()
}
