//! The kubelet stand-in: pods become Running and Ready after the configured delay; pods whose
//! image matches a failure pattern never become ready or crash-loop.
//!
//! Pod status shape from the Kubernetes docs "Pod Lifecycle" (phase, conditions `PodScheduled`,
//! `Initialized`, `ContainersReady`, `Ready`; container states `waiting`/`running`,
//! `restartCount`, reason `CrashLoopBackOff`).

use crate::jsonpath::JsonPath;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers;
use crate::state::Access;
use crate::store::{EventKind, Store};

/// Field manager of kubelet status writes.
pub const KUBELET: &str = "kubelet";

/// How pods with a matching image fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFailure {
    /// Running, containers running, but never Ready (a failing readiness probe).
    NeverReady,
    /// Running, container waiting in `CrashLoopBackOff` with a growing `restartCount`.
    CrashLoop,
}

/// Whether `image` matches `pattern`: `*` is a wildcard; without `*` it is a substring match.
pub fn image_matches(pattern: &str, image: &str) -> bool {
    if !pattern.contains('*') {
        return image.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = image;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Per-pod timers of the stand-in, and the resourceVersion of each pod whose last pass was a
/// no-op in a state that no longer depends on time (started, not crash-looping), with the
/// failure patterns of that pass: such a pod is skipped while both are unchanged. A pod whose
/// last pass was a no-op before it started is skipped, while unchanged, until its start time.
/// Only the pods that changed since the last pass (read from the store's history), those due
/// to start, and those crash-looping are looked at.
#[derive(Debug, Default)]
pub struct Kubelet {
    seen: HashMap<String, Instant>,
    idle: HashMap<String, u64>,
    starting: HashMap<String, u64>,
    failures: Vec<(String, PodFailure)>,
    changes: controllers::Changes,
    pending: controllers::Pending,
    /// Pods waiting to start, by the real instant their start is due: queued again then (a
    /// change before that queues them anyway).
    due: BTreeMap<Instant, Vec<(String, String)>>,
}

impl Kubelet {
    /// One pass over the pods that changed since the last pass and those left waiting (all
    /// pods on the first pass, after the failure patterns change, and when the store's history
    /// since the last pass is gone).
    pub fn pass(
        &mut self,
        access: &mut impl Access,
        clock: &SimClock,
        delay: Duration,
        failures: &[(String, PodFailure)],
    ) {
        let store = access.store();
        if self.failures != failures {
            self.failures = failures.to_vec();
            self.idle.clear();
            self.starting.clear();
            self.changes.reset();
        }
        let later = self.due.split_off(&Instant::now());
        for key in std::mem::replace(&mut self.due, later)
            .into_values()
            .flatten()
        {
            self.pending.push(key);
        }
        match self.changes.read(store) {
            Some(changes) => {
                for ev in changes.filter(|ev| ev.group.is_empty() && ev.plural == "pods") {
                    if ev.kind == EventKind::Deleted
                        && let Some(uid) =
                            ev.object.meta().at("/metadata/uid").and_then(Value::as_str)
                        && !store.has_uid(uid)
                    {
                        self.seen.remove(uid);
                        self.idle.remove(uid);
                        self.starting.remove(uid);
                    }
                    self.pending.push(crate::store::obj_key(ev.object.meta()));
                }
            }
            None => {
                self.seen.retain(|uid, _| store.has_uid(uid));
                self.idle.retain(|uid, _| store.has_uid(uid));
                self.starting.retain(|uid, _| store.has_uid(uid));
                for pod in store.list("", "pods", None) {
                    self.pending.push(crate::store::obj_key(pod));
                }
            }
        }
        for (ns, name) in self.pending.take() {
            access.checkpoint();
            let store = access.store();
            let Some(pod) = store.get_shared("", "pods", &ns, &name) else {
                continue;
            };
            let uid = pod
                .at("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let rv = controllers::rv_of(&pod);
            if self.starting.get(&uid) == Some(&rv)
                && let Some(since) = self.seen.get(&uid)
                && !clock.elapsed(*since, delay)
            {
                let at = *since + clock.real(delay);
                self.due.entry(at).or_default().push((ns, name));
                continue;
            }
            // Idle pods, and pods being deleted, wait for their next change.
            if self.idle.get(&uid) == Some(&rv) || pod.at("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let since = *self.seen.entry(uid.clone()).or_insert_with(Instant::now);
            let started = clock.elapsed(since, delay);
            let images: Vec<String> = pod
                .at("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect();
            let failure = failures
                .iter()
                .find(|(p, _)| images.iter().any(|i| image_matches(p, i)))
                .map(|(_, f)| *f);
            // Crash loops restart once per ready delay (at least every 10 ms of simulated time).
            let restarts = match failure {
                Some(PodFailure::CrashLoop) if started => {
                    let period = delay.max(Duration::from_millis(10)).as_secs_f64();
                    let sim_elapsed = clock.sim_secs_since(since);
                    ((sim_elapsed - delay.as_secs_f64()) / period)
                        .floor()
                        .max(0.0) as i64
                        + 1
                }
                _ => 0,
            };
            let mark = controllers::Mark::new(store);
            let status = desired_status(&pod, store, started, failure, restarts);
            if let Some(status) = status {
                controllers::log_err(
                    "kubelet status",
                    // The pod is given up (it is read again below), so that the write can
                    // be made in the stored pod rather than a copy.
                    controllers::set_status(store, clock, "", "pods", pod, status, KUBELET),
                );
            }
            if mark.no_op(store) {
                if !started {
                    self.starting.insert(uid.clone(), rv);
                } else if failure != Some(PodFailure::CrashLoop) {
                    self.idle.insert(uid.clone(), rv);
                }
            }
            // Visited again when due if it is waiting to start, next pass if crash-looping or
            // written (then its change queues it anyway); not while idle.
            let now_rv = store.get("", "pods", &ns, &name).map(controllers::rv_of);
            if !started && now_rv == Some(rv) {
                let at = since + clock.real(delay);
                self.due.entry(at).or_default().push((ns, name));
            } else if now_rv.is_some() && self.idle.get(&uid) != now_rv.as_ref() {
                self.pending.push((ns, name));
            }
        }
    }
}

fn condition(old: &Value, ty: &str, ok: bool, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev = old
        .at("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty && c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned());
    json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": prev.unwrap_or(json!(now))})
}

fn desired_status(
    pod: &Value,
    store: &mut Store,
    started: bool,
    failure: Option<PodFailure>,
    restarts: i64,
) -> Option<Value> {
    let empty = json!({});
    let old_status = pod.get("status").unwrap_or(&empty);
    if matches!(old_status["phase"].as_str(), Some("Failed" | "Succeeded")) {
        return None;
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ready = started && failure.is_none();
    let containers: Vec<Value> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let prev_started = old_status["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == c["name"])
                .and_then(|s| s.at("/state/running/startedAt").cloned())
                .unwrap_or(json!(now));
            let state = match (started, failure) {
                (false, _) => json!({"waiting": {"reason": "ContainerCreating"}}),
                (true, Some(PodFailure::CrashLoop)) => json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}),
                (true, _) => json!({"running": {"startedAt": prev_started}}),
            };
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "restartCount": restarts,
                "started": started && failure != Some(PodFailure::CrashLoop), "state": state,
            })
        })
        .collect();
    let pod_ip = match old_status.get("podIP").and_then(Value::as_str) {
        Some(ip) => ip.to_string(),
        None if started => store.next_ip(244),
        None => String::new(),
    };
    let mut status = json!({
        "phase": if started { "Running" } else { "Pending" },
        "conditions": [
            condition(pod, "PodScheduled", true, &now),
            condition(pod, "Initialized", true, &now),
            condition(pod, "ContainersReady", ready, &now),
            condition(pod, "Ready", ready, &now),
        ],
        "hostIP": "10.0.0.1",
        "containerStatuses": containers,
        "qosClass": "BestEffort",
        "startTime": old_status.get("startTime").cloned().unwrap_or(json!(now)),
    });
    if let Some(m) = status.as_object_mut()
        && !pod_ip.is_empty()
    {
        m.insert("podIP".into(), json!(pod_ip));
        m.insert("podIPs".into(), json!([{"ip": pod_ip}]));
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_substring() {
        assert!(image_matches("be:3.3", "starrocks/be:3.3.2"));
        assert!(image_matches("starrocks/*:bad*", "starrocks/fe:bad-1"));
        assert!(!image_matches("starrocks/*:bad*", "starrocks/fe:3.3"));
        assert!(image_matches("*:3.4", "x/fe:3.4"));
        assert!(!image_matches("*:3.4", "x/fe:3.4.1"));
    }
}
