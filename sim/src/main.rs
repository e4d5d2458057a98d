//! `kube-sim`: runs the simulated API server until Ctrl-C and writes a kubeconfig for it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Command line of the simulator binary.
#[derive(Debug, Parser)]
#[command(
    name = "kube-sim",
    about = "An in-process Kubernetes API server and workload simulator"
)]
struct Cli {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "kube-sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Seconds from pod creation to Ready (simulated time).
    #[arg(long, default_value_t = 2.0)]
    pod_ready_delay: f64,
    /// Seconds of observedGeneration lag (simulated time).
    #[arg(long, default_value_t = 0.0)]
    observed_generation_lag: f64,
    /// Clock speed (1.0 real time).
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
    /// YAML files whose objects are created at start (e.g. CRDs).
    #[arg(long = "preload")]
    preload: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let options = kube_sim::SimOptions {
        port: cli.port,
        pod_ready_delay: Duration::from_secs_f64(cli.pod_ready_delay.max(0.0)),
        observed_generation_lag: Duration::from_secs_f64(cli.observed_generation_lag.max(0.0)),
        clock_speed: cli.clock_speed,
        ..Default::default()
    };
    let sim = kube_sim::Sim::start(options).await?;
    for path in &cli.preload {
        let text = std::fs::read_to_string(path)?;
        let n = sim.create_from_yaml(&text)?;
        println!("preloaded {n} object(s) from {}", path.display());
    }
    sim.write_kubeconfig(&cli.kubeconfig)?;
    println!(
        "kube-sim listening on {}; kubeconfig written to {}",
        sim.url(),
        cli.kubeconfig.display()
    );
    println!(
        "try: kubectl --kubeconfig {} get ns",
        cli.kubeconfig.display()
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
