//! The `kube-sim` binary writes a kubeconfig that a client can use, and preloads YAML.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn binary_serves_and_writes_kubeconfig() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("out.yaml");
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crd.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--preload")
        .arg(&crds)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kube-sim");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(t) = std::fs::read_to_string(&kubeconfig)
            && t.contains("server: http://127.0.0.1:")
        {
            break t;
        }
        assert!(Instant::now() < deadline, "kubeconfig not written");
        std::thread::sleep(Duration::from_millis(20));
    };
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap_or_default()
        .to_string();
    let port = server.rsplit(':').next().unwrap_or_default().to_string();
    assert_ne!(port, "0", "the real port is written");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let kc = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = kube::Api::all(client);
        crds.get("starrocksclusters.starrocks.com").await.map(|_| ()).map_err(|e| e.to_string())
    });
    let _ = child.kill();
    let _ = child.wait();
    result.expect("the preloaded CRD is served");
}
