//! The real `kubectl` against the simulator: `apply -f`, `apply --server-side`, `get` (with
//! printer columns and `-o yaml`), `get -w`, `patch`, `delete`, `rollout status statefulset`,
//! `wait --for=condition`. Skipped (with a printed reason) only when kubectl is missing and `CI`
//! is unset.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_sim::Sim;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is required in CI but was not found on PATH"
        );
        println!("SKIPPED: kubectl not found on PATH (and CI is unset)");
    }
    found
}

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(sim: &Sim) -> Kubectl {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Kubectl {
            kubeconfig,
            cache: dir.path().join("cache"),
            _dir: dir,
        }
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.arg("30")
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("run kubectl"))
            .await
            .expect("join")
    }

    /// Runs kubectl and returns stdout, failing the test on a non-zero exit.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stdout}\n{stderr}"
        );
        stdout
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_rollout_patch_delete() {
    if !kubectl_available() {
        return;
    }
    let (sim, _client) = common::start(common::fast()).await;
    let k = Kubectl::new(&sim);
    let web = fixture("web.yaml");
    let web = web.to_str().unwrap_or_default();
    let out = k.ok(&["apply", "-f", web]).await;
    assert!(
        out.contains("statefulset.apps/web created") && out.contains("service/web created"),
        "{out}"
    );
    let out = k.ok(&["apply", "-f", web]).await;
    assert!(out.contains("statefulset.apps/web unchanged"), "{out}");
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=20s"])
        .await;
    let out = k.ok(&["get", "sts", "web"]).await;
    assert!(out.contains("2/2"), "{out}");
    let out = k.ok(&["get", "pods"]).await;
    assert!(
        out.contains("web-0") && out.contains("web-1") && out.contains("Running"),
        "{out}"
    );
    let yaml = k.ok(&["get", "sts", "web", "-o", "yaml"]).await;
    assert!(
        yaml.contains("generation: 1") && yaml.contains("updateRevision: web-"),
        "{yaml}"
    );
    // Strategic merge patch of one container's image (merged by name).
    let out = k
        .ok(&[
            "patch",
            "sts",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}"#,
        ])
        .await;
    assert!(out.contains("patched"), "{out}");
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=20s"])
        .await;
    let image = k
        .ok(&[
            "get",
            "pod",
            "web-0",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, "nginx:2");
    let ports = k
        .ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}",
        ])
        .await;
    assert_eq!(
        ports, "80",
        "strategic merge kept the other container fields"
    );
    let generation = k
        .ok(&["get", "sts", "web", "-o", "jsonpath={.metadata.generation}"])
        .await;
    assert_eq!(generation, "2");
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web-1",
        "--timeout=20s",
    ])
    .await;
    let slices = k
        .ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[0].endpoints[*].conditions.ready}",
        ])
        .await;
    assert_eq!(slices, "true true");
    let out = k.ok(&["delete", "-f", web]).await;
    assert!(out.contains("deleted"), "{out}");
    let out = k.run(&["get", "sts", "web"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agents: Vec<String> = sim
        .audit()
        .into_iter()
        .filter_map(|e| e.user_agent)
        .collect();
    assert!(
        agents.iter().any(|a| a.starts_with("kubectl")),
        "the audit log names kubectl as user agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_crd_printer_columns_server_side_apply_wait_and_watch() {
    if !kubectl_available() {
        return;
    }
    let (sim, _client) = common::start(common::fast()).await;
    let k = Kubectl::new(&sim);
    let crd = fixture("crd.yaml");
    let cr = fixture("cr.yaml");
    k.ok(&["apply", "-f", crd.to_str().unwrap_or_default()])
        .await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/starrocksclusters.starrocks.com",
        "--timeout=10s",
    ])
    .await;
    let out = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            cr.to_str().unwrap_or_default(),
        ])
        .await;
    assert!(out.contains("serverside-applied"), "{out}");
    let mf = k
        .ok(&[
            "get",
            "src",
            "demo",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[0].manager}",
        ])
        .await;
    assert_eq!(mf, "kubectl");
    k.ok(&[
        "patch",
        "src",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"running","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ])
    .await;
    let table = k.ok(&["get", "src"]).await;
    let header = table.lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("PHASE") && header.contains("AGE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("demo") && l.contains("running")),
        "{table}"
    );
    k.ok(&["wait", "--for=condition=Ready", "src/demo", "--timeout=10s"])
        .await;
    // `get -w` prints the current state, then changes, until its timeout.
    let watch = {
        let kubeconfig = k.kubeconfig.clone();
        let cache = k.cache.clone();
        tokio::task::spawn_blocking(move || {
            Command::new("timeout")
                .arg("3")
                .arg("kubectl")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args(["get", "src", "-w"])
                .output()
                .expect("kubectl get -w")
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    k.ok(&[
        "patch",
        "src",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"reconciling"}}"#,
    ])
    .await;
    let out = watch.await.expect("join");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("running") && text.contains("reconciling"),
        "{text}"
    );
    // An invalid object is rejected with the API server's message.
    let out = k
        .run(&[
            "patch",
            "src",
            "demo",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":0}}"#,
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("spec.replicas") && err.contains("greater than or equal to 1"),
        "{err}"
    );
    // kubectl asks for server-side field validation (fieldValidation=Strict): unknown fields fail.
    let typo = fixture("cr-unknown-field.yaml");
    let out = k
        .run(&["apply", "-f", typo.to_str().unwrap_or_default()])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("unknown field \"spec.replcas\""), "{err}");
    let out = k
        .ok(&[
            "apply",
            "--validate=false",
            "-f",
            typo.to_str().unwrap_or_default(),
        ])
        .await;
    assert!(out.contains("created"), "{out}");
    let pruned = k
        .ok(&["get", "src", "typo", "-o", "jsonpath={.spec}"])
        .await;
    assert!(
        !pruned.contains("replcas"),
        "without strict validation the field is pruned: {pruned}"
    );
    k.ok(&["delete", "src", "demo"]).await;
    let out = k.ok(&["get", "src"]).await;
    assert!(!out.contains("demo"), "{out}");
}
