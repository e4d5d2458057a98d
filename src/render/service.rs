//! Services of a component: the user-facing `<cluster>-<x>-service` and the headless
//! `<cluster>-<x>-search` the StatefulSet's pods resolve each other through.
//!
//! Source: upstream `BuildExternalService`, `getFeServicePorts`/`getBeServicePorts`/
//! `getCnServicePorts`, `mergePort` and `MakeSearchService`.

use crate::crd::StarRocksService;
use crate::render::config::ConfigFile;
use crate::render::names;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use starrocks_model::component::Component;
use std::collections::BTreeMap;

/// One default Service port: name, port (= container port) and application protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultPort {
    /// Port name, e.g. `query`.
    pub name: &'static str,
    /// Port number from the config file or its default.
    pub port: i32,
    /// `mysql` for FE's query port.
    pub app_protocol: Option<&'static str>,
}

/// The default ports of the user-facing Service. FE: `http`, `rpc`, `query`, `edit-log`;
/// BE: `be`, `webserver`, `heartbeat`, `brpc`; CN: `thrift`, `webserver`, `heartbeat`,
/// `brpc`; FE proxy: `http-port` 8080.
pub fn default_ports(c: Component, conf: &ConfigFile) -> Vec<DefaultPort> {
    let p = |name, key: &str| DefaultPort {
        name,
        port: conf.port(key),
        app_protocol: None,
    };
    match c {
        Component::Fe => vec![
            p("http", "http_port"),
            p("rpc", "rpc_port"),
            DefaultPort {
                app_protocol: Some("mysql"),
                ..p("query", "query_port")
            },
            p("edit-log", "edit_log_port"),
        ],
        Component::Be | Component::Cn => vec![
            if c == Component::Be {
                p("be", "be_port")
            } else {
                p("thrift", "thrift_port")
            },
            p("webserver", "webserver_port"),
            p("heartbeat", "heartbeat_service_port"),
            p("brpc", "brpc_port"),
        ],
        Component::FeProxy => vec![DefaultPort {
            name: "http-port",
            port: super::feproxy::PROXY_PORT,
            app_protocol: None,
        }],
    }
}

fn service_port(name: &str, port: i32, target: i32, app_protocol: Option<String>) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".to_string()),
        app_protocol,
        ..Default::default()
    }
}

/// The user-facing Service: type, load-balancer fields, annotations and labels from `svc`;
/// default ports overridden by name (non-zero `port`, `containerPort`, `nodePort`).
pub fn user_service(
    cluster: &str,
    namespace: &str,
    c: Component,
    svc: Option<&StarRocksService>,
    shared_labels: Option<&BTreeMap<String, String>>,
    conf: &ConfigFile,
    owner: &OwnerReference,
) -> Service {
    let svc_type = svc
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "ClusterIP".to_string());
    let overrides = svc.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let ports = default_ports(c, conf)
        .into_iter()
        .map(|d| {
            let o = overrides.iter().find(|o| o.name.as_deref() == Some(d.name));
            let nz = |v: Option<i32>| v.filter(|n| *n != 0);
            let port = o.and_then(|o| nz(o.port)).unwrap_or(d.port);
            let target = o.and_then(|o| nz(o.container_port)).unwrap_or(d.port);
            let app = o
                .and_then(|o| o.app_protocol.clone())
                .or(d.app_protocol.map(str::to_string));
            ServicePort {
                node_port: o.and_then(|o| nz(o.node_port)),
                ..service_port(d.name, port, target, app)
            }
        })
        .collect();
    let mut labels = svc.and_then(|s| s.labels.clone()).unwrap_or_default();
    labels.extend(names::object_labels(cluster, c, shared_labels));
    let lb = svc_type == "LoadBalancer";
    Service {
        metadata: ObjectMeta {
            name: Some(names::service_name(cluster, c)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: svc
                .and_then(|s| s.annotations.clone())
                .filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(svc_type.clone()),
            selector: Some(names::selector_labels(cluster, c)),
            ports: Some(ports),
            load_balancer_ip: svc
                .and_then(|s| s.load_balancer_ip.clone())
                .filter(|ip| lb && !ip.is_empty()),
            load_balancer_source_ranges: svc
                .and_then(|s| s.load_balancer_source_ranges.clone())
                .filter(|_| lb),
            external_traffic_policy: svc.and_then(|s| s.external_traffic_policy.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The headless Service of a StatefulSet (`clusterIP: None`, `publishNotReadyAddresses:
/// true`, so that pods resolve each other before they are ready, which FE needs to form its
/// quorum). Port: FE `query-port` (appProtocol `mysql`), BE/CN `heartbeat`. `None` for the FE
/// proxy.
pub fn search_service(
    cluster: &str,
    namespace: &str,
    c: Component,
    shared_labels: Option<&BTreeMap<String, String>>,
    conf: &ConfigFile,
    owner: &OwnerReference,
) -> Option<Service> {
    let name = names::search_service_name(cluster, c)?;
    let port = match c {
        Component::Fe => {
            let q = conf.port("query_port");
            service_port("query-port", q, q, Some("mysql".to_string()))
        }
        _ => {
            let h = conf.port("heartbeat_service_port");
            service_port("heartbeat", h, h, None)
        }
    };
    Some(Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: Some(names::object_labels(cluster, c, shared_labels)),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            selector: Some(names::selector_labels(cluster, c)),
            ports: Some(vec![port]),
            publish_not_ready_addresses: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    })
}
