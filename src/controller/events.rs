//! Kubernetes Events about clusters (`events.k8s.io/v1`), with series counting.
//!
//! The same occurrence repeated within [`SERIES_WINDOW`] (same cluster, type, action, reason
//! and note) is not a new Event: the first one's `series` gets its count and last observed time
//! (the Kubernetes API reference, `events.k8s.io/v1` Event: "series is data about the Event
//! series this event represents").
//!
//! Why not kube-runtime's `Recorder`: it keeps a whole copy of every Event it published in the
//! last 6 minutes (about 1.5 KiB each, with the hash table) and scans all of them on every
//! publish. After a start with 1,000 clusters that was 13 MiB of the operator's heap (heaptrack),
//! and a scan of thousands of entries per Event under one lock. This publisher remembers per
//! series only the Event's name, its count and when it was last seen, and sweeps expired series
//! at most every [`SWEEP_EVERY`]. Its key also includes the note, which `Recorder`'s leaves out
//! (so a repeat with a different message there patches the count of the old message).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use starrocks_model::action::EventType;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a repeat still counts into the first Event's series: 6 minutes (as client-go's
/// and kube-runtime's recorders).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How often at most expired series are forgotten: every 30 s.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The Event's `type`.
fn type_name(event_type: EventType) -> &'static str {
    match event_type {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What identifies a series: the object (namespace, name, uid) and the event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    event_type: EventType,
    action: String,
    reason: String,
    note: String,
}

/// What a repeat needs of the series' first Event.
#[derive(Debug, Clone)]
struct Seen {
    /// `metadata.name` of the Event.
    event: String,
    /// Occurrences so far (1 before any repeat).
    count: i32,
    /// When it last occurred.
    last: Instant,
}

#[derive(Debug)]
struct Series {
    seen: HashMap<SeriesKey, Seen>,
    swept: Instant,
}

/// Publishes Events as the `reporter` (`reportingController`, `reportingInstance`). Shared by
/// every reconcile; cheap to call concurrently (the lock is never held across a request).
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
    series: Mutex<Series>,
}

impl EventPublisher {
    /// A publisher that remembers no series yet.
    pub fn new(client: Client, reporter: Reporter) -> EventPublisher {
        EventPublisher {
            client,
            reporter,
            series: Mutex::new(Series {
                seen: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Publishes one occurrence about `regarding`: a new Event (named `<object>.<hex
    /// nanoseconds>`, in the object's namespace or `default`), or, for a repeat within
    /// [`SERIES_WINDOW`], a merge patch of the first one's `series`.
    ///
    /// # Errors
    /// The API error of the create or patch (the caller decides whether losing an Event
    /// matters); the series is then left as it was.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event_type: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let key = SeriesKey {
            namespace: regarding.namespace.clone(),
            name: regarding.name.clone(),
            uid: regarding.uid.clone(),
            event_type,
            action: action.to_string(),
            reason: reason.to_string(),
            note: note.to_string(),
        };
        let now = Instant::now();
        let repeat = self.repeat_of(&key, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let stamp = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let (event, count) = match repeat {
            Some(seen) => {
                let count = seen.count + 1;
                let patch = serde_json::json!({
                    "series": EventSeries { count, last_observed_time: stamp },
                });
                events
                    .patch(&seen.event, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                (seen.event, count)
            }
            None => {
                let event = self.event(regarding, &key, stamp);
                let created = events.create(&PostParams::default(), &event).await?;
                (created.metadata.name.unwrap_or_default(), 1)
            }
        };
        let last = Instant::now();
        crate::lock(&self.series)
            .seen
            .insert(key, Seen { event, count, last });
        Ok(())
    }

    /// How many series are remembered.
    pub fn remembered(&self) -> usize {
        crate::lock(&self.series).seen.len()
    }

    /// The series `key` continues, if it was seen within the window; forgets expired series
    /// first when the last sweep is older than [`SWEEP_EVERY`].
    fn repeat_of(&self, key: &SeriesKey, now: Instant) -> Option<Seen> {
        let mut series = crate::lock(&self.series);
        if now.duration_since(series.swept) >= SWEEP_EVERY {
            series
                .seen
                .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
            // A burst (a start with many clusters) must not pin its table for good.
            if series.seen.capacity() > 4 * series.seen.len().max(64) {
                series.seen.shrink_to_fit();
            }
            series.swept = now;
        }
        series
            .seen
            .get(key)
            .filter(|s| now.duration_since(s.last) < SERIES_WINDOW)
            .cloned()
    }

    /// The first Event of the series `key` about `regarding`.
    fn event(&self, regarding: &ObjectReference, key: &SeriesKey, stamp: MicroTime) -> Event {
        let object = regarding
            .name
            .clone()
            .unwrap_or_else(|| self.reporter.controller.clone());
        let nanos = stamp.0.as_nanosecond();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{nanos:x}")),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(stamp),
            type_: Some(type_name(key.event_type).to_string()),
            action: Some(key.action.clone()),
            reason: Some(key.reason.clone()),
            note: Some(key.note.clone()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Event::default()
        }
    }
}
