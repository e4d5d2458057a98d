//! Pure rendering of every Kubernetes object a `StarRocksCluster` owns: spec and referenced
//! config content in, typed k8s-openapi objects out. No client, no clock, no randomness: an
//! unchanged input renders byte-identical objects.
//!
//! Entry points:
//! - [`referenced_config_maps`]: the ConfigMaps the reconciler must read into [`ConfigInputs`].
//! - [`render_cluster`]: validate and render everything, per component ([`RenderedCluster`]).
//! - [`desired_cluster`]: the facts the lifecycle model needs, from the same render; never
//!   fails (an invalid spec gives `DesiredCluster::invalid`).
//!
//! Per component the objects are (names as upstream, so existing clusters are adopted):
//! FE/BE/CN: Services `<c>-<x>-service` and `<c>-<x>-search`, StatefulSet `<c>-<x>`,
//! PodDisruptionBudget `<c>-<x>-pdb`, and for CN with `autoScalingPolicy` the HPA
//! `<c>-cn-autoscaler`. FE proxy: ConfigMap and Deployment `<c>-fe-proxy`, Service
//! `<c>-fe-proxy-service`, PodDisruptionBudget `<c>-fe-proxy-pdb`.
//!
//! # Differences from upstream's rendering (adoption)
//!
//! Immutable StatefulSet fields are identical to upstream's (`selector`, `serviceName`,
//! `podManagementPolicy: Parallel` by default, `volumeClaimTemplates`), so adopting a cluster
//! created by the upstream operator updates its StatefulSets in place; no StatefulSet, PVC or
//! Service is recreated. The pod templates do differ, so adoption rolls every pod once (through
//! the ordered rollout, one pod at a time per StatefulSet):
//! - the `starrocks.com/template-hash` annotation is added (required: it is how config
//!   changes roll pods);
//! - volumes of `configMaps`/`secrets` mounts and of the FE proxy's ConfigMap are named
//!   `<name>-<4 hex of sha256>`; upstream uses its own 4-character object hash;
//! - upstream also sets `metadata.name`/`namespace` inside the pod template; this operator
//!   does not (Kubernetes ignores them, but they are part of the template);
//! - the FE proxy's `nginx.conf` is this operator's own text (same behaviour: health endpoint,
//!   FE upstream, 307 redirects followed to BE/CN), so the proxy pods also roll once.
//!
//! Other differences: a PodDisruptionBudget per component (new); the CN HPA is always
//! `autoscaling/v2` and targets the StarRocksCluster's scale subresource (upstream since its
//! PR #662; `autoScalingPolicy.version` is kept but not acted on); the headless `-search`
//! Service carries the operator and shared labels only (upstream copies the user-facing
//! Service's annotations and labels onto it); upstream's `app.starrocks.components/hash`
//! annotations are not rendered; a referenced ConfigMap that does not exist blocks the
//! cluster instead of silently falling back to default ports; [`crate::validate`] rejects
//! specs that upstream would turn into objects the API server or the kubelet rejects.

pub mod config;
pub mod extras;
pub mod feproxy;
pub mod hash;
pub mod names;
pub mod pod;
pub mod service;
pub mod workload;

use crate::crd::{ComponentSpec, GROUP, KIND, StarRocksCluster, VERSION};
use crate::validate::{self, ValidationError};
use config::ConfigFile;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use starrocks_model::component::Component;
use starrocks_model::spec::{DesiredCluster, DesiredComponent};
use std::collections::{BTreeMap, BTreeSet};

/// Why a cluster could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The spec failed [`validate::validate`]; nothing is rendered.
    #[error("invalid spec: {}", validate::describe(.0))]
    Invalid(Vec<ValidationError>),
    /// A ConfigMap the spec references is not in the [`ConfigInputs`] (not found in the
    /// namespace). `field` is the referencing field path.
    #[error("{field}: ConfigMap {name:?} not found")]
    MissingConfigMap {
        /// Path of the referencing field, e.g. `spec.starRocksFeSpec.configMapInfo.configMapName`.
        field: String,
        /// Name of the ConfigMap.
        name: String,
    },
    /// Server-assigned metadata the objects need is missing (e.g. `metadata.uid`, needed for
    /// owner references). Not expected for objects read from the API server.
    #[error("{0} is required to render owned objects")]
    MissingMetadata(&'static str),
    /// A rendered object could not be serialized (for hashing or output).
    #[error("serializing rendered objects: {0}")]
    Serialize(String),
}

/// The content of the ConfigMaps a cluster references, by ConfigMap name (its `data`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigInputs {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl ConfigInputs {
    /// No ConfigMaps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the `data` of ConfigMap `name`.
    pub fn insert(&mut self, name: impl Into<String>, data: BTreeMap<String, String>) {
        self.config_maps.insert(name.into(), data);
    }

    /// Collects the `data` of each ConfigMap by `metadata.name` (nameless ones are skipped).
    pub fn from_config_maps<'a>(maps: impl IntoIterator<Item = &'a ConfigMap>) -> Self {
        let mut inputs = Self::new();
        for cm in maps {
            if let Some(name) = &cm.metadata.name {
                inputs.insert(name.clone(), cm.data.clone().unwrap_or_default());
            }
        }
        inputs
    }

    /// The `data` of ConfigMap `name`, if present.
    pub fn get(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config_maps.get(name)
    }
}

/// Names of every ConfigMap the spec references (`configMapInfo.configMapName` and
/// `configMaps[].name` of FE, BE and CN): the reconciler reads these into [`ConfigInputs`]
/// and watches them, since their content is hashed into the pod templates.
pub fn referenced_config_maps(cluster: &StarRocksCluster) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, spec) in starrocks_components(cluster) {
        if let Some((name, _)) = spec
            .load
            .config_map_info
            .as_ref()
            .and_then(|i| i.reference())
        {
            out.insert(name.to_string());
        }
        for m in spec.config_maps.iter().flatten() {
            if !m.name.is_empty() {
                out.insert(m.name.clone());
            }
        }
    }
    out
}

/// The StarRocks components present in the spec with their component spec and user env.
fn starrocks_components(cluster: &StarRocksCluster) -> Vec<(Component, &ComponentSpec)> {
    let s = &cluster.spec;
    let mut out = Vec::new();
    if let Some(fe) = &s.star_rocks_fe_spec {
        out.push((Component::Fe, &fe.component));
    }
    if let Some(be) = &s.star_rocks_be_spec {
        out.push((Component::Be, &be.component));
    }
    if let Some(cn) = &s.star_rocks_cn_spec {
        out.push((Component::Cn, &cn.component));
    }
    out
}

fn field_prefix(c: Component) -> &'static str {
    match c {
        Component::Fe => "spec.starRocksFeSpec",
        Component::Be => "spec.starRocksBeSpec",
        Component::Cn => "spec.starRocksCnSpec",
        Component::FeProxy => "spec.starRocksFeProxySpec",
    }
}

/// The workload of a component.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// FE, BE, CN.
    StatefulSet(Box<StatefulSet>),
    /// FE proxy.
    Deployment(Box<Deployment>),
}

/// Every object of one component, in apply order: ConfigMaps, Services, workload, PDB, HPA.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentObjects {
    /// The component.
    pub component: Component,
    /// ConfigMaps rendered by the operator (the FE proxy's `nginx.conf`).
    pub config_maps: Vec<ConfigMap>,
    /// User-facing Service, then the headless search Service (FE/BE/CN).
    pub services: Vec<Service>,
    /// StatefulSet or Deployment.
    pub workload: Workload,
    /// PodDisruptionBudget (`maxUnavailable: 1`).
    pub pdb: PodDisruptionBudget,
    /// CN HPA when `autoScalingPolicy` is set.
    pub hpa: Option<HorizontalPodAutoscaler>,
    /// Template hash, image and replicas, as the model sees them.
    pub desired: DesiredComponent,
}

impl ComponentObjects {
    /// The objects as JSON values with `apiVersion` and `kind`, in apply order; the form a
    /// server-side apply body takes.
    ///
    /// # Errors
    /// [`RenderError::Serialize`] if an object cannot be serialized (not expected).
    pub fn to_json(&self) -> Result<Vec<serde_json::Value>, RenderError> {
        let ser = |r: Result<serde_json::Value, serde_json::Error>| {
            r.map_err(|e| RenderError::Serialize(e.to_string()))
        };
        let mut out = Vec::new();
        for cm in &self.config_maps {
            out.push(ser(serde_json::to_value(cm))?);
        }
        for svc in &self.services {
            out.push(ser(serde_json::to_value(svc))?);
        }
        out.push(match &self.workload {
            Workload::StatefulSet(s) => ser(serde_json::to_value(s))?,
            Workload::Deployment(d) => ser(serde_json::to_value(d))?,
        });
        out.push(ser(serde_json::to_value(&self.pdb))?);
        if let Some(hpa) = &self.hpa {
            out.push(ser(serde_json::to_value(hpa))?);
        }
        Ok(out)
    }
}

/// Everything rendered from one generation of a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedCluster {
    /// `metadata.generation` rendered (0 when unset).
    pub generation: i64,
    /// Objects per component present in the spec.
    pub components: BTreeMap<Component, ComponentObjects>,
}

impl RenderedCluster {
    /// The facts the lifecycle model decides on, from this render.
    pub fn desired(&self) -> DesiredCluster {
        DesiredCluster {
            generation: self.generation,
            components: self
                .components
                .iter()
                .map(|(c, o)| (*c, o.desired.clone()))
                .collect(),
            invalid: None,
        }
    }

    /// The objects of one component, if the spec has it.
    pub fn component(&self, c: Component) -> Option<&ComponentObjects> {
        self.components.get(&c)
    }

    /// Every object of every component (components in [`Component::ALL`] order), as JSON.
    ///
    /// # Errors
    /// [`RenderError::Serialize`] (not expected).
    pub fn to_json(&self) -> Result<Vec<serde_json::Value>, RenderError> {
        let mut out = Vec::new();
        for objs in self.components.values() {
            out.extend(objs.to_json()?);
        }
        Ok(out)
    }
}

/// The desired state for the model: the render's [`RenderedCluster::desired`], or, when the
/// spec is invalid or references a missing ConfigMap, a `DesiredCluster` with no components
/// and `invalid` naming the field and the problem.
pub fn desired_cluster(cluster: &StarRocksCluster, inputs: &ConfigInputs) -> DesiredCluster {
    desired_from_render(cluster, &render_cluster(cluster, inputs))
}

/// [`desired_cluster`] from a render already made of `cluster` (the reconciler renders once
/// and uses the objects too).
pub fn desired_from_render(
    cluster: &StarRocksCluster,
    rendered: &Result<RenderedCluster, RenderError>,
) -> DesiredCluster {
    match rendered {
        Ok(r) => r.desired(),
        Err(e) => DesiredCluster {
            generation: cluster.metadata.generation.unwrap_or(0),
            components: BTreeMap::new(),
            invalid: Some(e.to_string()),
        },
    }
}

/// The controller owner reference to `cluster` that every rendered object carries.
///
/// # Errors
/// [`RenderError::MissingMetadata`] without `metadata.name` or `metadata.uid`.
pub fn owner_reference(cluster: &StarRocksCluster) -> Result<OwnerReference, RenderError> {
    Ok(OwnerReference {
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.to_string(),
        name: cluster
            .metadata
            .name
            .clone()
            .ok_or(RenderError::MissingMetadata("metadata.name"))?,
        uid: cluster
            .metadata
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or(RenderError::MissingMetadata("metadata.uid"))?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Resolved config of one StarRocks component: the parsed file and what is hashed.
struct ResolvedConfig {
    file: ConfigFile,
    /// `(label, content)` pairs hashed into the pod template, in a fixed order.
    hashed: Vec<(String, String)>,
}

fn resolve_config(
    c: Component,
    spec: &ComponentSpec,
    inputs: &ConfigInputs,
) -> Result<ResolvedConfig, RenderError> {
    let mut hashed = Vec::new();
    let mut file = ConfigFile::default();
    if let Some((name, key)) = spec
        .load
        .config_map_info
        .as_ref()
        .and_then(|i| i.reference())
    {
        let data = inputs
            .get(name)
            .ok_or_else(|| RenderError::MissingConfigMap {
                field: format!("{}.configMapInfo.configMapName", field_prefix(c)),
                name: name.to_string(),
            })?;
        // A missing key means the image's default config, as upstream treats it.
        let text = data.get(key).cloned().unwrap_or_default();
        file = ConfigFile::parse(&text);
        hashed.push((format!("configMapInfo:{name}/{key}"), text));
    }
    for (i, m) in spec.config_maps.iter().flatten().enumerate() {
        let data = inputs
            .get(&m.name)
            .ok_or_else(|| RenderError::MissingConfigMap {
                field: format!("{}.configMaps[{i}].name", field_prefix(c)),
                name: m.name.clone(),
            })?;
        for (k, v) in data {
            hashed.push((format!("configMaps:{}/{k}", m.name), v.clone()));
        }
    }
    Ok(ResolvedConfig { file, hashed })
}

fn with_hash(
    mut template: PodTemplateSpec,
    hashed: &[(String, String)],
) -> Result<(PodTemplateSpec, String), RenderError> {
    let pairs: Vec<(&str, &str)> = hashed
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let h = hash::template_hash(&template, &pairs)
        .map_err(|e| RenderError::Serialize(e.to_string()))?;
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::TEMPLATE_HASH_ANNOTATION.to_string(), h.clone());
    Ok((template, h))
}

/// Validates `cluster` and renders every object it owns.
///
/// `inputs` must hold every ConfigMap of [`referenced_config_maps`]. The cluster must carry
/// `metadata.uid` (for owner references); `metadata.generation` is copied into
/// [`RenderedCluster::generation`] (0 when unset).
///
/// # Errors
/// [`RenderError::Invalid`] with every validation error; [`RenderError::MissingConfigMap`];
/// [`RenderError::MissingMetadata`]; [`RenderError::Serialize`] (not expected).
pub fn render_cluster(
    cluster: &StarRocksCluster,
    inputs: &ConfigInputs,
) -> Result<RenderedCluster, RenderError> {
    let valid = validate::validate(cluster).map_err(RenderError::Invalid)?;
    let (name, ns) = (valid.name, valid.namespace);
    let owner = owner_reference(cluster)?;
    let spec = &cluster.spec;
    let mut configs = BTreeMap::new();
    for (c, cs) in starrocks_components(cluster) {
        configs.insert(c, resolve_config(c, cs, inputs)?);
    }
    let empty = ConfigFile::default();
    let fe_conf = configs.get(&Component::Fe).map_or(&empty, |r| &r.file);
    let mut components = BTreeMap::new();

    for (c, cs) in starrocks_components(cluster) {
        let resolved = configs
            .get(&c)
            .ok_or(RenderError::MissingMetadata("spec"))?;
        let user_env: Option<&[EnvVar]> = match c {
            Component::Fe => spec
                .star_rocks_fe_spec
                .as_ref()
                .and_then(|s| s.fe_env_vars.as_deref()),
            Component::Be => spec
                .star_rocks_be_spec
                .as_ref()
                .and_then(|s| s.be_env_vars.as_deref()),
            Component::Cn => spec
                .star_rocks_cn_spec
                .as_ref()
                .and_then(|s| s.cn_env_vars.as_deref()),
            Component::FeProxy => None,
        };
        let template = pod::starrocks_pod_template(&pod::StarRocksPodInputs {
            cluster: name,
            namespace: ns,
            component: c,
            spec: cs,
            user_env,
            own_conf: &resolved.file,
            fe_conf,
        });
        let (template, template_hash) = with_hash(template, &resolved.hashed)?;
        let policy = match c {
            Component::Cn => spec
                .star_rocks_cn_spec
                .as_ref()
                .and_then(|s| s.auto_scaling_policy.as_ref()),
            _ => None,
        };
        // With an autoscaler, the HPA writes `.spec.starRocksCnSpec.replicas` through the scale
        // subresource; until it has, start from minReplicas.
        let replicas = match policy {
            Some(p) => cs
                .load
                .replicas
                .unwrap_or(p.min_replicas.unwrap_or(1).max(1)),
            None => cs.load.replicas.unwrap_or(1),
        };
        let shared = cs.load.shared_labels.as_ref();
        let mut services = vec![service::user_service(
            name,
            ns,
            c,
            cs.load.service.as_ref(),
            shared,
            &resolved.file,
            &owner,
        )];
        services.extend(service::search_service(
            name,
            ns,
            c,
            shared,
            &resolved.file,
            &owner,
        ));
        let sts = workload::stateful_set(name, ns, c, cs, replicas, template, &owner);
        components.insert(
            c,
            ComponentObjects {
                component: c,
                config_maps: Vec::new(),
                services,
                workload: Workload::StatefulSet(Box::new(sts)),
                pdb: extras::pdb(name, ns, c, shared, &owner),
                hpa: policy.map(|p| extras::hpa(name, ns, p, shared, &owner)),
                desired: DesiredComponent {
                    template_hash,
                    image: cs.load.image.clone(),
                    replicas: Some(replicas),
                },
            },
        );
    }

    if let Some(proxy) = &spec.star_rocks_fe_proxy_spec {
        let c = Component::FeProxy;
        let conf = feproxy::nginx_conf(
            name,
            ns,
            fe_conf.port("http_port"),
            proxy
                .resolver
                .as_deref()
                .unwrap_or(feproxy::DEFAULT_RESOLVER),
        );
        let shared = proxy.load.shared_labels.as_ref();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(names::workload_name(name, c)),
                namespace: Some(ns.to_string()),
                labels: Some(names::object_labels(name, c, shared)),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("nginx.conf".to_string(), conf.clone())])),
            ..Default::default()
        };
        let (template, template_hash) = with_hash(
            feproxy::pod_template(name, proxy),
            &[("nginx.conf".to_string(), conf)],
        )?;
        let replicas = proxy.load.replicas.unwrap_or(1);
        let image = template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|ct| ct.image.clone())
            .unwrap_or_else(|| feproxy::DEFAULT_PROXY_IMAGE.to_string());
        let deploy = workload::deployment(name, ns, &proxy.load, replicas, template, &owner);
        components.insert(
            c,
            ComponentObjects {
                component: c,
                config_maps: vec![cm],
                services: vec![service::user_service(
                    name,
                    ns,
                    c,
                    proxy.load.service.as_ref(),
                    shared,
                    &ConfigFile::default(),
                    &owner,
                )],
                workload: Workload::Deployment(Box::new(deploy)),
                pdb: extras::pdb(name, ns, c, shared, &owner),
                hpa: None,
                desired: DesiredComponent {
                    template_hash,
                    image,
                    replicas: Some(replicas),
                },
            },
        );
    }

    Ok(RenderedCluster {
        generation: cluster.metadata.generation.unwrap_or(0),
        components,
    })
}
