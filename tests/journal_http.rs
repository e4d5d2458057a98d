//! The journal's HTTP routes (`starrocks_operator::journal::http`), served on a local port and
//! read with a minimal HTTP/1.1 client, on logs produced by driving the lifecycle model through
//! the creation and upgrade of a 3 FE / 3 BE / 1 CN cluster.

#[path = "../model/tests/world/mod.rs"]
mod world;

use starrocks_model::Rules;
use starrocks_model::journal::Record;
use starrocks_operator::journal::http::{JournalListing, ListedCluster, NDJSON, router};
use starrocks_operator::journal::{ClusterKey, JournalStore, OpenOptions, SledJournal, jsonl};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use world::{Operator, SpecChoice, World};

/// The journal of a create and an upgrade.
fn lifecycle_log() -> Vec<Record> {
    let mut op = Operator::new(Rules::default(), false);
    let mut world = World::new();
    let mut spec = SpecChoice::simple(1);
    spec.fe_replicas = 3;
    spec.be_replicas = 3;
    world.set_spec(&spec, &mut op);
    world.settle(&mut op, 200).expect("the deployment settles");
    spec.version = 3;
    world.set_spec(&spec, &mut op);
    world.settle(&mut op, 200).expect("the upgrade settles");
    op.journal
}

fn cluster_a() -> ClusterKey {
    ClusterKey::new("uid-a", "starrocks", "a")
}

fn cluster_b() -> ClusterKey {
    ClusterKey::new("uid-b", "analytics", "b")
}

/// A journal with the full log under cluster A and its first 5 records under cluster B.
fn journal(dir: &tempfile::TempDir, log: &[Record]) -> Arc<dyn JournalStore + Send + Sync> {
    let (journal, _) =
        SledJournal::open(dir.path().join("journal"), OpenOptions::default()).expect("open");
    for batch in log.chunks(7) {
        journal.append(&cluster_a(), batch).expect("append A");
    }
    journal.append(&cluster_b(), &log[..5]).expect("append B");
    Arc::new(journal)
}

/// Serves the router over `store` on a free local port.
async fn serve(store: Arc<dyn JournalStore + Send + Sync>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router(store)).await });
    addr
}

/// A response: status code, headers (names lowercased) and body (de-chunked).
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`, read to the end of the stream.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut pending = request.as_bytes();
    while !pending.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(pending) {
            Ok(n) => pending = &pending[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("writing the request: {e}"),
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream.readable().await.expect("readable");
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status code in {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    } else if let Some(length) = reply.header("content-length") {
        assert_eq!(length.parse::<usize>().ok(), Some(reply.body.len()));
    }
    reply
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = std::str::from_utf8(&raw[..end]).expect("a UTF-8 chunk size");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .expect("a hexadecimal chunk size");
        raw = &raw[end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[tokio::test]
async fn export_serves_the_log_as_journal_export_writes_it() {
    let log = lifecycle_log();
    assert!(log.len() > 20, "a realistic log: {} records", log.len());
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = serve(journal(&dir, &log)).await;

    let reply = get(addr, "/journal/starrocks/a").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some(NDJSON));
    let mut expected = Vec::new();
    jsonl::export(&log, &mut expected).expect("export");
    assert!(
        reply.body == expected,
        "the body is `journal export`'s bytes"
    );
    assert_eq!(jsonl::import(&reply.body[..], "http").expect("import"), log);

    let reply = get(addr, "/journal/analytics/b").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        jsonl::import(&reply.body[..], "http").expect("import"),
        log[..5]
    );
}

#[tokio::test]
async fn listing_names_every_cluster_with_its_sequence_numbers() {
    let log = lifecycle_log();
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = serve(journal(&dir, &log)).await;

    let reply = get(addr, "/journal").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let listing: JournalListing = serde_json::from_slice(&reply.body).expect("a listing");
    let last = log.last().expect("a record").seq;
    assert_eq!(
        listing.clusters,
        vec![
            ListedCluster {
                namespace: "analytics".into(),
                name: "b".into(),
                uid: "uid-b".into(),
                first_seq: Some(0),
                last_seq: Some(4),
            },
            ListedCluster {
                namespace: "starrocks".into(),
                name: "a".into(),
                uid: "uid-a".into(),
                first_seq: Some(0),
                last_seq: Some(last),
            },
        ]
    );
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        json["clusters"][0]["firstSeq"], 0,
        "camelCase fields: {json}"
    );
}

#[tokio::test]
async fn an_unknown_cluster_is_404_naming_the_known_ones() {
    let log = lifecycle_log();
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = serve(journal(&dir, &log)).await;

    let reply = get(addr, "/journal/starrocks/missing").await;
    assert_eq!(reply.status, 404);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        reply.headers
    );
    let text = reply.text();
    for wanted in [
        "starrocks/missing",
        &cluster_a().to_string(),
        &cluster_b().to_string(),
    ] {
        assert!(text.contains(wanted), "{wanted:?} in {text:?}");
    }
}

#[tokio::test]
async fn an_empty_journal_lists_nothing_and_says_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (journal, _) =
        SledJournal::open(dir.path().join("journal"), OpenOptions::default()).expect("open");
    let addr = serve(Arc::new(journal)).await;

    let reply = get(addr, "/journal").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let listing: JournalListing = serde_json::from_slice(&reply.body).expect("a listing");
    assert!(listing.clusters.is_empty());

    let reply = get(addr, "/journal/starrocks/a").await;
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("it has: none"), "{}", reply.text());
}
