//! The Event publisher against the simulator: a repeat within the series window counts into
//! the first Event, a different note or reason is a new Event.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::events::Reporter;
use kube_sim::SimOptions;
use starrocks_model::action::EventType;
use starrocks_operator::controller::events::EventPublisher;
use starrocks_operator::embedded::Embedded;

fn cluster(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("starrocks.com/v1".into()),
        kind: Some("StarRocksCluster".into()),
        name: Some(name.into()),
        namespace: Some("starrocks".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

#[tokio::test]
async fn repeats_count_into_one_event_and_new_notes_are_new_events() {
    let embedded = Embedded::start(SimOptions::default())
        .await
        .expect("simulator starts");
    embedded
        .ensure_namespace("starrocks")
        .await
        .expect("namespace");
    let reporter = Reporter {
        controller: "starrocks-operator".into(),
        instance: Some("test-0".into()),
    };
    let publisher = EventPublisher::new(embedded.client.clone(), reporter);
    let a = cluster("a");
    let publish = |regarding, reason, note| {
        let publisher = &publisher;
        async move {
            publisher
                .publish(regarding, EventType::Warning, "Reconcile", reason, note)
                .await
                .expect("published");
        }
    };
    for _ in 0..3 {
        publish(&a, "Invalid", "spec.feSpec.replicas: must be at least 1").await;
    }
    publish(&a, "Invalid", "spec.beSpec.image: empty").await;
    publish(&a, "Steady", "spec.beSpec.image: empty").await;
    publish(
        &cluster("b"),
        "Invalid",
        "spec.feSpec.replicas: must be at least 1",
    )
    .await;

    let events: Api<Event> = Api::namespaced(embedded.client.clone(), "starrocks");
    let mut listed = events
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    listed.sort_by_key(|e| e.metadata.name.clone());
    assert_eq!(listed.len(), 4, "one Event per series: {listed:#?}");
    let count = |name: &str, reason: &str, note: &str| {
        let matching: Vec<&Event> = listed
            .iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
                    && e.note.as_deref() == Some(note)
            })
            .collect();
        assert_eq!(matching.len(), 1, "{name} {reason} {note}: {listed:#?}");
        matching[0].series.as_ref().map_or(1, |s| s.count)
    };
    assert_eq!(
        count("a", "Invalid", "spec.feSpec.replicas: must be at least 1"),
        3
    );
    assert_eq!(count("a", "Invalid", "spec.beSpec.image: empty"), 1);
    assert_eq!(count("a", "Steady", "spec.beSpec.image: empty"), 1);
    assert_eq!(
        count("b", "Invalid", "spec.feSpec.replicas: must be at least 1"),
        1
    );
    for e in &listed {
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("starrocks-operator")
        );
        assert_eq!(e.reporting_instance.as_deref(), Some("test-0"));
        assert_eq!(e.action.as_deref(), Some("Reconcile"));
    }
    assert_eq!(publisher.remembered(), 4);
    embedded.shutdown().await;
}
