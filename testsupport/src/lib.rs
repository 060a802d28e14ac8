//! Test support shared by every Rust end-to-end test: start real `hubsim` processes on port 0,
//! seed synthetic repos, find the workspace's binaries, and a recording server that stands in for
//! "another host" (never for a hub).

mod recorder;
pub use recorder::{Recorder, Reply, Seen};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Test users of every hub started here: (name, token, writes).
pub const USERS: &[(&str, &str, bool)] = &[
    ("alice", "hf_alice_write_token", true),
    ("bob", "hf_bob_write_token", true),
    ("carol", "hf_carol_read_token", false),
];
/// alice's token.
pub const ALICE: &str = "hf_alice_write_token";
/// bob's token.
pub const BOB: &str = "hf_bob_write_token";
/// carol's read-only token.
pub const CAROL: &str = "hf_carol_read_token";

/// The directory holding the workspace's binaries (`target/debug`), from the test executable's
/// location (`target/debug/deps/...`), or `$HUBMIGRATE_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HUBMIGRATE_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// Path of a workspace binary; panics with a clear message when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let n: u128 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running hubsim, killed on drop.
pub struct Hubsim {
    pub url: String,
    pub flavor: String,
    child: Child,
    data: TempDir,
}

impl Hubsim {
    /// Starts `hubsim serve --flavor FLAVOR` with the test users and `extra` flags.
    pub fn start(flavor: &str, extra: &[&str]) -> Hubsim {
        Self::start_in(flavor, TempDir::new(&format!("hubsim-{flavor}")), extra)
    }

    /// Starts a hub on an existing data directory (for instance one prepared with [`seed`]).
    pub fn start_in(flavor: &str, data: TempDir, extra: &[&str]) -> Hubsim {
        let mut cmd = Command::new(bin("hubsim"));
        cmd.args(["serve", "--flavor", flavor, "--port", "0", "--data"])
            .arg(data.path());
        for (name, token, writes) in USERS {
            cmd.arg(if *writes { "--user" } else { "--read-user" })
                .arg(format!("{name}={token}"));
        }
        cmd.args(["--org", "acme=alice"]).args(extra);
        cmd.env("HUBSIM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn hubsim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("hubsim URL line");
        let url = line.trim().to_string();
        assert!(url.starts_with("http://"), "hubsim did not print its URL: {line:?}");
        Hubsim {
            url,
            flavor: flavor.into(),
            child,
            data,
        }
    }

    /// The hub's data directory.
    pub fn data(&self) -> &Path {
        self.data.path()
    }

    /// What the hub did since it started: `GET /_hubsim/stats` (requests by route class and
    /// status, bytes, injected faults, refused URLs, commits, multipart parts; see
    /// docs/hubsim.md). Panics when the hub does not answer 200 with JSON.
    pub fn stats(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect to hubsim");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("read timeout");
        // HTTP/1.0: the answer is never chunked and the connection closes after it.
        write!(tcp, "GET /_hubsim/stats HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send stats request");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).expect("read stats answer");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP answer from hubsim");
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(status, "200", "hubsim stats: {head}");
        serde_json::from_slice(&raw[split + 4..]).expect("hubsim stats JSON")
    }
}

impl Drop for Hubsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One file of a seeded repo, from `hubsim seed --manifest`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SeededFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub lfs: bool,
}

/// Runs `hubsim seed` into `data` and returns the seeded files.
pub fn seed(data: &Path, flavor: &str, repo: &str, args: &[&str]) -> Vec<SeededFile> {
    let manifest = data.join(format!("manifest-{}.json", repo.replace('/', "_")));
    let status = Command::new(bin("hubsim"))
        .args(["seed", "--flavor", flavor, "--repo", repo, "--data"])
        .arg(data)
        .arg("--manifest")
        .arg(&manifest)
        .args(args)
        .env("HUBSIM_LOG", "warn")
        .status()
        .expect("run hubsim seed");
    assert!(status.success(), "hubsim seed failed");
    serde_json::from_slice(&std::fs::read(&manifest).expect("manifest")).expect("manifest json")
}

/// A running kubesim (the Kubernetes API stand-in), killed on drop, with the kubeconfig it wrote.
pub struct Kubesim {
    pub url: String,
    pub kubeconfig: PathBuf,
    child: Child,
    dir: TempDir,
}

impl Kubesim {
    /// Starts `kubesim serve --port 0` with its kubelet running pods from the workspace's binaries.
    pub fn start() -> Kubesim {
        Kubesim::start_with(&[])
    }

    /// [`Kubesim::start`] with extra `kubesim serve` arguments, e.g.
    /// `&["--pod-start-delay", "45s"]` (every pod `ContainerCreating` that long) or
    /// `&["--unschedulable-pods", "hubmigrate.dev/migration=m"]` (those pods never scheduled;
    /// without a selector value: every pod).
    pub fn start_with(args: &[&str]) -> Kubesim {
        let dir = TempDir::new("kubesim");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(bin("kubesim"))
            .args(["serve", "--port", "0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--bin-dir")
            .arg(bin_dir())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubesim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("kubesim URL line");
        let url = line.trim().to_string();
        assert!(url.starts_with("http://"), "kubesim did not print its URL: {line:?}");
        Kubesim {
            url,
            kubeconfig,
            child,
            dir,
        }
    }

    /// Runs the real `kubectl` against this API server; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("kubectl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The directory kubesim stores its objects and logs in.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Kubesim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
