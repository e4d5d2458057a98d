//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use kube_sim::{Sim, SimOptions};

/// A fast simulator: pods ready after 1 simulated second, clock 100x (10 ms real).
pub fn fast() -> SimOptions {
    SimOptions {
        pod_ready_delay: Duration::from_secs(1),
        clock_speed: 100.0,
        ..Default::default()
    }
}

pub async fn start(options: SimOptions) -> (Sim, kube::Client) {
    let sim = Sim::start(options).await.expect("sim starts");
    let config = kube::Config::new(sim.url().parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    (sim, client)
}

/// Polls `f` every 10 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
