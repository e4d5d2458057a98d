//! The FE proxy: an nginx Deployment in front of FE, its ConfigMap (`nginx.conf`) and pod
//! template.
//!
//! Why it exists (upstream `feproxy` controller): Stream Load clients send to FE, which answers
//! with a 307 redirect to a BE/CN address that is only reachable inside the cluster. The proxy
//! asks FE with the request headers only, then follows the redirect itself and sends the body
//! to the BE/CN, so that clients outside the cluster need to reach only the proxy.

use crate::crd::{FeProxySpec, MountInfo};
use crate::render::names;
use crate::render::pod::{self, PROBE_PERIOD_SECONDS};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use starrocks_model::component::Component;

/// Port nginx listens on, and the port of the `http-port` Service port (upstream default).
pub const PROXY_PORT: i32 = 8080;
/// Image used when `starRocksFeProxySpec.image` is empty (upstream default).
pub const DEFAULT_PROXY_IMAGE: &str = "nginx:1.24.0";
/// DNS resolver nginx uses when `resolver` is not set (upstream default).
pub const DEFAULT_RESOLVER: &str = "kube-dns.kube-system.svc.cluster.local";
/// Where the ConfigMap holding `nginx.conf` is mounted.
pub const NGINX_CONF_DIR: &str = "/etc/nginx";
/// Health endpoint served by nginx itself.
pub const HEALTH_PATH: &str = "/nginx/health";
/// uid/gid of the `nginx` user of the official image, which the container runs as.
pub const NGINX_ID: i64 = 101;

/// The `nginx.conf` of the proxy. `fe_http_port` is FE's `http_port`; `resolver` the DNS
/// server nginx re-resolves the FE Service with (every 10 s, so FE pod changes are followed).
pub fn nginx_conf(cluster: &str, namespace: &str, fe_http_port: i32, resolver: &str) -> String {
    let fe = format!(
        "http://{}.{namespace}.svc.cluster.local:{fe_http_port}",
        names::service_name(cluster, Component::Fe)
    );
    let fe_search =
        names::search_service_name(cluster, Component::Fe).unwrap_or_else(|| cluster.to_string());
    format!(
        r#"# Rendered by starrocks-operator for StarRocksCluster {namespace}/{cluster}. Do not edit:
# changes are overwritten. Forwards HTTP to FE and follows FE's 307 redirects to BE/CN.
pid /tmp/nginx.pid;
worker_processes 4;

events {{
  worker_connections 256;
}}

http {{
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  client_max_body_size 0;
  underscores_in_headers on;
  ignore_invalid_headers off;
  proxy_read_timeout 600s;
  client_body_temp_path /tmp/client_temp;
  proxy_temp_path /tmp/proxy_temp;
  fastcgi_temp_path /tmp/fastcgi_temp;
  uwsgi_temp_path /tmp/uwsgi_temp;
  scgi_temp_path /tmp/scgi_temp;

  server {{
    listen {PROXY_PORT};
    resolver {resolver} valid=10s;
    proxy_intercept_errors on;
    recursive_error_pages on;
    proxy_set_header Host $host;
    proxy_set_header Expect $http_expect;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    location = {HEALTH_PATH} {{
      access_log off;
      return 200;
    }}

    # Loads: FE decides from the headers where the data goes; the body is sent after the redirect.
    location ~ ^/api/[^/]+/[^/]+/_stream_load$ {{
      set $starrocks_fe "{fe}";
      proxy_pass $starrocks_fe;
      proxy_pass_request_body off;
      error_page 307 = @starrocks_redirect;
    }}

    location = /api/transaction/load {{
      set $starrocks_fe "{fe}";
      proxy_pass $starrocks_fe;
      proxy_pass_request_body off;
      error_page 307 = @starrocks_redirect;
    }}

    location / {{
      set $starrocks_fe "{fe}";
      proxy_pass $starrocks_fe;
      error_page 307 = @starrocks_redirect;
    }}

    # A redirect to another FE (through {fe_search}) still carries headers only; a redirect to
    # a BE or CN gets the body.
    location @starrocks_redirect {{
      if ($upstream_http_location ~ "{fe_search}") {{
        rewrite ^ /_starrocks_redirect_fe last;
      }}
      rewrite ^ /_starrocks_redirect_data last;
    }}

    location /_starrocks_redirect_fe {{
      internal;
      set $starrocks_target $upstream_http_location;
      proxy_pass $starrocks_target;
      proxy_pass_request_body off;
      error_page 307 = @starrocks_redirect;
    }}

    location /_starrocks_redirect_data {{
      internal;
      set $starrocks_target $upstream_http_location;
      proxy_pass $starrocks_target;
      proxy_pass_request_body on;
      error_page 307 = @starrocks_redirect;
    }}
  }}
}}
"#
    )
}

/// The `configMaps`-style mount of the nginx ConfigMap (`<cluster>-fe-proxy` at `/etc/nginx`).
pub fn nginx_mount(cluster: &str) -> MountInfo {
    MountInfo {
        name: names::workload_name(cluster, Component::FeProxy),
        mount_path: NGINX_CONF_DIR.to_string(),
        sub_path: None,
    }
}

/// The proxy's pod template, without the template-hash annotation.
pub fn pod_template(cluster: &str, spec: &FeProxySpec) -> PodTemplateSpec {
    let load = &spec.load;
    let c = Component::FeProxy;
    let mut vols = Vec::new();
    let mut mounts = Vec::new();
    // Storage volumes of the proxy are plain volumes (a Deployment has no claim templates):
    // emptyDir, hostPath, or an existing claim named like the volume.
    let pseudo = crate::crd::ComponentSpec {
        load: crate::crd::LoadSpec {
            storage_volumes: load.storage_volumes.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let (sv_vols, sv_mounts) = storage_only(&pseudo);
    vols.extend(sv_vols);
    mounts.extend(sv_mounts);
    let cm = nginx_mount(cluster);
    let vol_name = pod::mount_volume_name(&cm);
    vols.push(pod::config_map_volume(&vol_name, &cm.name));
    mounts.push(k8s_openapi::api::core::v1::VolumeMount {
        name: vol_name,
        mount_path: cm.mount_path.clone(),
        ..Default::default()
    });
    let image = if load.image.is_empty() || load.image.starts_with(':') {
        DEFAULT_PROXY_IMAGE.to_string()
    } else {
        load.image.clone()
    };
    let liveness = load
        .liveness_probe_failure_seconds
        .unwrap_or(pod::DEFAULT_LIVENESS_FAILURE_SECONDS);
    let readiness = load
        .readiness_probe_failure_seconds
        .unwrap_or(pod::DEFAULT_READINESS_FAILURE_SECONDS);
    debug_assert_eq!(PROBE_PERIOD_SECONDS, 5);
    let container = Container {
        name: "nginx".to_string(),
        image: Some(image),
        ports: Some(vec![ContainerPort {
            name: Some("http-port".to_string()),
            container_port: PROXY_PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        resources: pod::resources(load),
        image_pull_policy: Some(
            load.image_pull_policy
                .clone()
                .unwrap_or_else(|| "IfNotPresent".to_string()),
        ),
        volume_mounts: Some(mounts),
        liveness_probe: pod::http_probe(liveness, PROXY_PORT, HEALTH_PATH),
        readiness_probe: pod::http_probe(readiness, PROXY_PORT, HEALTH_PATH),
        lifecycle: load.lifecycle.clone(),
        security_context: Some(SecurityContext {
            run_as_user: Some(NGINX_ID),
            run_as_group: Some(NGINX_ID),
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod::pod_labels(cluster, c, load)),
            annotations: load.annotations.clone().filter(|a| !a.is_empty()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(vols),
            service_account_name: load.service_account.clone().filter(|s| !s.is_empty()),
            automount_service_account_token: Some(false),
            affinity: load.affinity.clone(),
            tolerations: load.tolerations.clone(),
            topology_spread_constraints: load.topology_spread_constraints.clone(),
            image_pull_secrets: load.image_pull_secrets.clone(),
            node_selector: load.node_selector.clone(),
            scheduler_name: load.scheduler_name.clone().filter(|s| !s.is_empty()),
            share_process_namespace: load.share_process_namespace,
            ..Default::default()
        }),
    }
}

fn storage_only(
    spec: &crate::crd::ComponentSpec,
) -> (
    Vec<k8s_openapi::api::core::v1::Volume>,
    Vec<k8s_openapi::api::core::v1::VolumeMount>,
) {
    // FE proxy has no default volumes; FE's profile would add fe-meta/fe-log, so take only the
    // storage-volume prefix of what `pod::volumes` renders.
    let n = spec.load.storage_volumes.as_ref().map_or(0, Vec::len);
    let (mut v, mut m) = pod::volumes(Component::FeProxy, spec);
    v.truncate(n);
    m.truncate(n);
    (v, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_conf_points_at_fe_and_resolver() {
        let conf = nginx_conf("demo", "prod", 8031, "10.0.0.10");
        assert!(conf.contains("\"http://demo-fe-service.prod.svc.cluster.local:8031\""));
        assert!(conf.contains("resolver 10.0.0.10 valid=10s;"));
        assert!(conf.contains("listen 8080;"));
        assert!(conf.contains("demo-fe-search"));
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }
}
