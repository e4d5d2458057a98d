//! Benchmark of the simulator through kube::Client: GET and server-side-apply requests per
//! second (sequential and 8 concurrent clients), and the latency from a write to the watch event
//! reaching a client. Run with `cargo bench -p kube-sim --bench api_throughput`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const GETS: usize = 2000;
const APPLIES: usize = 1000;
const LATENCY_SAMPLES: usize = 300;
const CONCURRENCY: usize = 8;

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = kube_sim::Sim::start(kube_sim::SimOptions::default()).await?;
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse()?))?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "bench"}, "data": {"k": "v"}}))?;
    cms.create(&PostParams::default(), &cm).await?;

    // GET, sequential.
    let t = Instant::now();
    for _ in 0..GETS {
        cms.get("bench").await?;
    }
    let get_seq = rate(GETS, t.elapsed());

    // GET, concurrent.
    let t = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let cms = cms.clone();
            tokio::spawn(async move {
                for _ in 0..GETS / CONCURRENCY {
                    cms.get("bench").await?;
                }
                Ok::<(), kube::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let get_par = rate(GETS, t.elapsed());

    // Server-side apply, each a real change.
    let pp = PatchParams::apply("bench").force();
    let t = Instant::now();
    for i in 0..APPLIES {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"}, "data": {"k": i.to_string()}});
        cms.patch("bench", &pp, &Patch::Apply(&cfg)).await?;
    }
    let apply_seq = rate(APPLIES, t.elapsed());

    // Server-side apply, concurrent, one object per client.
    let t = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|c| {
            let cms = cms.clone();
            let pp = pp.clone();
            tokio::spawn(async move {
                for i in 0..APPLIES / CONCURRENCY {
                    let name = format!("bench-{c}");
                    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": i.to_string()}});
                    cms.patch(&name, &pp, &Patch::Apply(&cfg)).await?;
                }
                Ok::<(), kube::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let apply_par = rate(APPLIES, t.elapsed());

    // Write-to-watch-event latency.
    let rv = cms
        .get("bench")
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = cms
        .watch(&WatchParams::default().fields("metadata.name=bench"), &rv)
        .await?
        .boxed();
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let value = format!("lat-{i}");
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"}, "data": {"k": value}});
        let t = Instant::now();
        cms.patch("bench", &pp, &Patch::Apply(&cfg)).await?;
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Modified(o)))
                    if o.data.as_ref().and_then(|d| d.get("k")) == Some(&value) =>
                {
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err("watch ended".into()),
            }
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    println!("kube-sim benchmark (kube::Client over HTTP on 127.0.0.1, controllers running)");
    println!(
        "GET                 sequential: {get_seq:>8.0} req/s   {CONCURRENCY} concurrent: {get_par:>8.0} req/s"
    );
    println!(
        "server-side apply   sequential: {apply_seq:>8.0} req/s   {CONCURRENCY} concurrent: {apply_par:>8.0} req/s"
    );
    println!(
        "write -> watch event (apply round trip included): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  (n={LATENCY_SAMPLES})",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
    sim.shutdown().await;
    Ok(())
}
