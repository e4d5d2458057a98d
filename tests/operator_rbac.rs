//! Least privilege, proven: the operator runs against the simulator with RBAC enforced from the
//! rendered install manifests (`kubectl kustomize deploy/base` and the single-namespace overlay)
//! under its ServiceAccount, through a first deployment and an upgrade, with leader election
//! on. Any 403 fails. Removing one rule from the manifests makes the scenario fail.
//!
//! Skipped with a notice when kubectl is not installed (it renders the kustomizations).

mod support;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::time::Duration;
use support::{Env, UPGRADE, example};

const TOKEN: &str = "starrocks-operator-token";

fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let yaml = support::kustomize(dir)?;
    Some(serde_saphyr::from_multiple(&yaml).expect("kubectl kustomize prints YAML"))
}

/// The RBAC objects (and the namespaces and ServiceAccount they name) of a rendered install.
fn rbac_objects(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "Namespace"
                        | "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .cloned()
        .collect()
}

/// Removes `verb` from every rule of every (Cluster)Role that grants it on `resource`.
fn without_verb(docs: &[Value], resource: &str, verb: &str) -> Vec<Value> {
    let mut docs = docs.to_vec();
    for d in &mut docs {
        if !matches!(d["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in d["rules"].as_array_mut().into_iter().flatten() {
            let grants = rule["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r == resource));
            if grants && let Some(verbs) = rule["verbs"].as_array_mut() {
                verbs.retain(|v| v != verb);
            }
        }
    }
    docs
}

/// Starts a simulator with the RBAC objects loaded and the operator running under its
/// ServiceAccount's token; returns the environment and the operator instance.
async fn start(rbac: &[Value], namespace: Option<&str>) -> (Env, support::Instance) {
    let config = starrocks_operator::controller::ControllerConfig {
        namespace: namespace.map(str::to_string),
        ..support::test_config()
    };
    let env = Env::without_operator(support::sim_options(), config.clone()).await;
    let yaml: Vec<String> = rbac.iter().map(|d| d.to_string()).collect();
    // Namespaces may exist already (`starrocks` does): create the rest one by one.
    for doc in yaml {
        let _ = env.embedded.sim.create_from_yaml(&doc);
    }
    env.embedded
        .sim
        .add_service_account_token(TOKEN, "starrocks-operator", "starrocks-operator");
    let kubeconfig =
        Kubeconfig::from_yaml(&env.embedded.sim.kubeconfig_yaml_with_token(TOKEN)).unwrap();
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    let client = kube::Client::try_from(client_config).unwrap();
    let operator = support::spawn_elected(client, config, "operator-0", "starrocks-operator");
    (env, operator)
}

fn forbidden(env: &Env) -> Vec<String> {
    env.embedded
        .sim
        .audit()
        .iter()
        .filter(|e| e.code == 403 || e.code == 401)
        .map(|e| {
            format!(
                "{} {} {:?} {:?} -> {}",
                e.verb, e.resource, e.subresource, e.name, e.code
            )
        })
        .collect()
}

async fn create_and_upgrade(env: &Env) {
    let cluster = env.deploy_demo().await;
    env.roll_to(&cluster, "3.3.5", &UPGRADE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_needs_no_more_than_its_manifests_grant() {
    for (dir, namespace) in [
        ("deploy/base", None),
        ("deploy/overlays/single-namespace", Some("starrocks")),
    ] {
        let Some(docs) = kustomize(dir) else { return };
        let rbac = rbac_objects(&docs);
        assert!(!rbac.is_empty(), "{dir} renders RBAC objects");
        let (env, operator) = start(&rbac, namespace).await;
        create_and_upgrade(&env).await;
        let denied = forbidden(&env);
        assert!(denied.is_empty(), "{dir}: requests denied: {denied:#?}");
        operator.task.abort();
        env.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_one_rule_breaks_the_operator() {
    let Some(docs) = kustomize("deploy/base") else {
        return;
    };
    // Without `patch` on StatefulSets no server-side apply of FE can land.
    let rbac = without_verb(&rbac_objects(&docs), "statefulsets", "patch");
    let (env, operator) = start(&rbac, None).await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    let name = kube::ResourceExt::name_any(&cluster);
    let reached = env
        .embedded
        .wait_for("starrocks", &name, "Steady", Duration::from_secs(5), |c| {
            starrocks_operator::embedded::steady_at(c, 1)
        })
        .await;
    assert!(
        reached.is_err(),
        "the cluster cannot reach Steady without the rule"
    );
    let denied = forbidden(&env);
    assert!(
        denied.iter().any(|d| d.starts_with("patch statefulsets")),
        "the missing rule shows as 403s: {denied:#?}"
    );
    operator.task.abort();
    env.shutdown().await;
}
