//! The Kubernetes side of the end-to-end tests: kubesim with the CRD applied, a tokens Secret and
//! a controller process; Migrations written as a user would write them.

use std::time::{Duration, Instant};

use super::*;

/// kubesim with the CRD, a `hub-tokens` Secret (alice's token for both hubs, labelled as a tokens
/// Secret) and a controller that allows the test's hubs as endpoints.
pub struct Cluster {
    pub k: Kubesim,
    pub controller: std::process::Child,
    /// The controller's TMPDIR: where its scratch clones go.
    pub scratch: TempDir,
    /// The hub URLs the controller allows besides the public hubs (`--allowed-endpoint`).
    pub allowed: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.controller.kill();
        let _ = self.controller.wait();
    }
}

impl Cluster {
    /// Starts (again) `migrate-coord controller` against this kubesim, serving gRPC on `grpc`.
    pub fn start_controller(&self, grpc: &str) -> std::process::Child {
        controller(&self.k, grpc, self.scratch.path(), &self.allowed)
    }
}

/// `migrate-coord controller` against `k`, serving gRPC on `grpc`, allowing `allowed` hubs.
fn controller(k: &Kubesim, grpc: &str, scratch: &std::path::Path, allowed: &[String]) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-coord"));
    cmd.args(["controller", "--grpc-listen", grpc, "--namespace", "default"]);
    for url in allowed {
        cmd.args(["--allowed-endpoint", url]);
    }
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", &k.kubeconfig)
        .env("TMPDIR", scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A cluster whose controller serves gRPC on a free port and allows `hubs`.
pub fn cluster(hubs: &[&Hubsim]) -> Cluster {
    cluster_on("127.0.0.1:0", hubs)
}

/// A cluster whose controller serves gRPC on `grpc` and allows `hubs`.
pub fn cluster_on(grpc: &str, hubs: &[&Hubsim]) -> Cluster {
    cluster_with(grpc, &[], hubs)
}

/// A cluster on a kubesim started with `kubesim_args` (e.g. `--pod-start-delay 45s`).
pub fn cluster_with(grpc: &str, kubesim_args: &[&str], hubs: &[&Hubsim]) -> Cluster {
    let k = Kubesim::start_with(kubesim_args);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let (ok, _, err) = k.kubectl(&["apply", "-f", root.join("deploy/crd.yaml").to_str().unwrap()], None);
    assert!(ok, "CRD: {err}");
    let secret = tokens_secret(
        "hub-tokens",
        &format!("  HF_TOKEN: {ALICE}\n  MODELSCOPE_TOKEN: {ALICE}\n  TARGET_TOKEN: {ALICE}\n"),
    );
    let (ok, _, err) = k.kubectl(&["apply", "-f", "-"], Some(&secret));
    assert!(ok, "secret: {err}");
    let scratch = TempDir::new("controller-tmp");
    let allowed: Vec<String> = hubs.iter().map(|h| h.url.clone()).collect();
    let controller = controller(&k, grpc, scratch.path(), &allowed);
    Cluster {
        k,
        controller,
        scratch,
        allowed,
    }
}

/// A Secret named `name` opted in as a tokens Secret, with `string_data` (YAML lines, indented
/// two spaces).
pub fn tokens_secret(name: &str, string_data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    hubmigrate.dev/tokens: \"true\"\nstringData:\n{string_data}"
    )
}

/// A Migration between two hubs (parallel, up to 4 Jobs, 1 MiB chunks).
pub fn migration(name: &str, source: &str, dest: &str, hf: &str, ms: &str) -> String {
    format!(
        "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: {name}\nspec:\n  source: {source}\n  dest: {dest}\n  parallel: true\n  maxWorkers: 4\n  chunkSize: 1MiB\n  tokensSecret: hub-tokens\n  endpoints:\n    huggingface: {hf}\n    modelscope: {ms}\n"
    )
}

/// Waits (at most 90 s) for the Migration to reach one of `want`; returns it.
pub fn wait_phase(k: &Kubesim, name: &str, want: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let (_, phase, _) = k.kubectl(&["get", "migration", name, "-o", "jsonpath={.status.phase}"], None);
        if want.contains(&phase.as_str()) {
            return phase;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{name} stuck in phase {phase:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A Migration's status field, through kubectl.
pub fn field(k: &Kubesim, name: &str, path: &str) -> String {
    let (_, v, _) = k.kubectl(&["get", "migration", name, "-o", &format!("jsonpath={{{path}}}")], None);
    v
}

/// Waits for the Migration `name` to end and asserts it ended `Succeeded` (else shows its
/// condition) with no mismatched file.
pub fn assert_verified(k: &Kubesim, name: &str) {
    let phase = wait_phase(k, name, &["Succeeded", "Failed"]);
    assert_eq!(
        phase,
        "Succeeded",
        "{}",
        field(k, name, ".status.conditions[0].message")
    );
    assert_eq!(field(k, name, ".status.verification.mismatched"), "0", "{name}");
}

/// A free loopback address for a controller's gRPC: fixed across a restart, as a Service is.
pub fn free_grpc_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Applies each `(name, manifest, needle)` Migration, then asserts that each ends `Failed` with a
/// one-line, bounded condition containing `needle`, and none of `secrets` in it.
pub fn assert_refused(k: &Kubesim, cases: &[(&str, String, &str)], secrets: &[&str]) {
    for (name, yaml, _) in cases {
        let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "{name}: {out}{err}");
    }
    for (name, _, needle) in cases {
        assert_eq!(wait_phase(k, name, &["Succeeded", "Failed"]), "Failed", "{name}");
        let message = field(k, name, ".status.conditions[0].message");
        assert!(message.contains(needle), "{name}: expected {needle:?} in {message:?}");
        assert!(
            !message.contains('\n') && message.chars().count() <= 400,
            "{name}: {message:?}"
        );
        assert!(!message.contains("Status {"), "{name}: a debug rendering: {message:?}");
        for s in secrets {
            assert!(!message.contains(s), "{name}: a secret in the status: {message:?}");
        }
    }
}

/// The CA of the controller's gRPC certificate, from its Secret (`hubmigrate-grpc-tls`).
pub fn controller_ca(k: &Kubesim) -> String {
    let (ok, b64, err) = k.kubectl(
        &[
            "get",
            "secret",
            "hubmigrate-grpc-tls",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        None,
    );
    assert!(ok, "{err}");
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap();
    String::from_utf8(pem).unwrap()
}
