//! Start options of the simulator.

use std::time::Duration;

/// How the simulator behaves. `Default`: pods ready 2 s after creation, no observedGeneration
/// lag, real-time clock, 10 000 retained watch events, any free port.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Simulated time from a pod's creation to Running and Ready.
    pub pod_ready_delay: Duration,
    /// Simulated time a workload controller takes before `status.observedGeneration` catches up
    /// with a new `metadata.generation`.
    pub observed_generation_lag: Duration,
    /// Clock speed: 1.0 is real time; 100.0 makes the delays above pass 100x faster.
    pub clock_speed: f64,
    /// Number of retained watch events; a watch from an older resourceVersion gets 410 Gone.
    pub watch_window: usize,
    /// TCP port on 127.0.0.1 (0: chosen by the OS).
    pub port: u16,
    /// Real time between watch bookmarks (when the client allows them).
    pub bookmark_interval: Duration,
    /// Real time between controller passes when nothing changed (they also run on every write).
    pub resync_interval: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            pod_ready_delay: Duration::from_secs(2),
            observed_generation_lag: Duration::ZERO,
            clock_speed: 1.0,
            watch_window: 10_000,
            port: 0,
            bookmark_interval: Duration::from_secs(1),
            resync_interval: Duration::from_millis(20),
        }
    }
}
