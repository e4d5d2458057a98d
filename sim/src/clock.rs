//! The simulator's clock: wall-clock timestamps for objects, and a speed factor for the
//! simulated delays (pod readiness, observedGeneration lag), so that a delay of seconds in the
//! demo takes milliseconds in tests.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// A clock whose delays pass `speed` times faster than real time.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    speed: f64,
}

impl SimClock {
    /// A clock with the given speed (values <= 0 or non-finite are treated as 1.0).
    pub fn new(speed: f64) -> SimClock {
        SimClock {
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// Wall-clock now (object timestamps are real time; only delays are scaled).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Wall-clock now as RFC 3339 with second precision (`metav1.Time`).
    pub fn now_rfc3339(&self) -> String {
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Wall-clock now with microseconds (`metav1.MicroTime`).
    pub fn now_micro(&self) -> String {
        Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Whether a simulated delay has passed since the real instant `since`.
    pub fn elapsed(&self, since: Instant, delay: Duration) -> bool {
        since.elapsed().as_secs_f64() * self.speed >= delay.as_secs_f64()
    }

    /// Simulated seconds since the real instant `since`.
    pub fn sim_secs_since(&self, since: Instant) -> f64 {
        since.elapsed().as_secs_f64() * self.speed
    }

    /// The real time a simulated delay takes.
    pub fn real(&self, delay: Duration) -> Duration {
        Duration::from_secs_f64(delay.as_secs_f64() / self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_scales_delays() {
        let c = SimClock::new(100.0);
        assert_eq!(c.real(Duration::from_secs(2)), Duration::from_millis(20));
        let start = Instant::now() - Duration::from_millis(30);
        assert!(c.elapsed(start, Duration::from_secs(2)));
        assert!(!c.elapsed(Instant::now(), Duration::from_secs(2)));
        assert_eq!(
            SimClock::new(-1.0).real(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
