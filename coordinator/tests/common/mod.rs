//! Shared pieces of the end-to-end tests: run `migrate-coord` as a user would (its environment
//! cleared but for what the test gives it), and read hubs back through their HTTP APIs.

#![allow(dead_code)]

pub mod git;
pub mod k8s;

use std::process::{Command, Output};

pub use hubmigrate_testsupport::*;

/// The result of one `migrate-coord` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<serde_json::Value>,
}

impl Run {
    /// Everything the run printed.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `migrate-coord ARGS` with only `env` (plus PATH) in its environment, writing a report.
pub fn migrate(args: &[&str], env: &[(&str, &str)]) -> Run {
    let worker = bin("migrate-worker");
    let worker = worker.to_str().expect("utf-8 path");
    reported(&[args, &["--worker-bin", worker]].concat(), env)
}

/// `migrate-coord run --source SOURCE --to HUB` between two hubs (HF_TOKEN and MODELSCOPE_TOKEN
/// are alice's), plus `extra` flags.
pub fn run_to(source: &str, to: &str, from: &Hubsim, into: &Hubsim, extra: &[&str]) -> Run {
    let env = [("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)];
    run_from(source, ["--to", to], from, into, extra, &env)
}

/// `migrate-coord run --source SOURCE --dest DEST` between two hubs with alice's token on both
/// sides (the source's given in `HUBMIGRATE_SOURCE_TOKEN`, so one platform's pair reads it too),
/// plus `extra` flags.
pub fn run_between(source: &str, dest: &str, from: &Hubsim, into: &Hubsim, extra: &[&str]) -> Run {
    let env = [
        ("HF_TOKEN", ALICE),
        ("MODELSCOPE_TOKEN", ALICE),
        ("HUBMIGRATE_SOURCE_TOKEN", ALICE),
    ];
    run_from(source, ["--dest", dest], from, into, extra, &env)
}

/// `migrate-coord run --source SOURCE` to the destination `to` names (`--to HUB` or `--dest
/// REF`) between two hubs, with `env`.
fn run_from(source: &str, to: [&str; 2], from: &Hubsim, into: &Hubsim, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let args = [
        "run",
        "--source",
        source,
        to[0],
        to[1],
        "--source-endpoint",
        &from.url,
        "--dest-endpoint",
        &into.url,
    ];
    migrate(&[&args[..], extra].concat(), env)
}

/// Runs `migrate-coord ARGS --report FILE` (commands without workers: verify, cleanup).
pub fn reported(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = TempDir::new("report");
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate-coord"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path());
    cmd.args(args).arg("--report").arg(&report);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run migrate-coord");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
    }
}

/// Runs a `plan`/`validate-tokens` style command (no report, no worker).
pub fn coord(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate-coord"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run migrate-coord");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: None,
    }
}

/// Runs `curl ARGS`, handing it `token` (if any) as an `Authorization` header through its config
/// on stdin, never on its command line.
pub fn curl(args: &[&str], token: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["--config", "-"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut stdin = child.stdin.take().expect("curl's stdin");
    if let Some(t) = token {
        writeln!(stdin, "header = \"Authorization: Bearer {t}\"").expect("curl's config");
    }
    drop(stdin);
    child.wait_with_output().expect("curl")
}

/// GETs a JSON document from a hub with a token.
pub fn get_json(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let out = curl(&["-s", "-w", "\n%{http_code}", url], token);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// sha256 of what `url` serves to `token` (redirects followed; a hub's injected 5xx answers
/// retried).
pub fn served_sha256(url: &str, token: &str) -> String {
    use sha2::{Digest, Sha256};
    let dir = TempDir::new("dl");
    let file = dir.path().join("body");
    let file = file.to_str().expect("a UTF-8 temporary path");
    let out = curl(
        &["-sfL", "--retry", "5", "--retry-delay", "0", "-o", file, url],
        Some(token),
    );
    assert!(out.status.success(), "download of {url} failed");
    hex::encode(Sha256::digest(std::fs::read(file).expect("downloaded body")))
}

/// POSTs an NDJSON commit to `main` of `repo` (`models/ns/name`) on an HF-flavored hub as
/// `token`; returns the HTTP status.
pub fn hf_commit(hub: &Hubsim, repo: &str, ndjson: &str, token: &str) -> u16 {
    let url = format!("{}/api/{repo}/commit/main", hub.url);
    post(&url, "application/x-ndjson", ndjson, token)
}

/// POSTs `body` of `content_type` to `url` as `token`; returns the HTTP status.
pub fn post(url: &str, content_type: &str, body: &str, token: &str) -> u16 {
    let header = format!("Content-Type: {content_type}");
    let out = curl(
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            &header,
            "--data-binary",
            body,
            url,
        ],
        Some(token),
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Asserts that `hub` serves each of `files` of `repo` (`ns/name`, a model) byte for byte.
pub fn assert_served(hub: &Hubsim, repo: &str, files: &[&SeededFile]) {
    for f in files {
        let url = format!("{}/{repo}/resolve/main/{}", hub.url, f.path);
        assert_eq!(served_sha256(&url, ALICE), f.sha256, "{}", f.path);
    }
}

/// Whether an HF-flavored hub shows `repo` (`models/ns/name`) to `token`, and whether it is private.
pub fn hf_repo(hub: &Hubsim, repo: &str, token: &str) -> Option<bool> {
    let (code, v) = get_json(&format!("{}/api/{repo}", hub.url), Some(token));
    (code == 200).then(|| v["private"].as_bool().unwrap_or(false))
}

/// Whether an ms-flavored hub has `repo` (`models/ns/name`), and whether it is private.
pub fn ms_repo(hub: &Hubsim, repo: &str, token: &str) -> Option<bool> {
    let (code, v) = get_json(&format!("{}/api/v1/{repo}", hub.url), Some(token));
    (code == 200).then(|| v["Data"]["Visibility"].as_i64().unwrap_or(5) != 5)
}

/// The requests `hub` answered in route class `class` (e.g. `resolve`, `upload`, `lfs_batch`),
/// whatever their status.
pub fn answered(hub: &Hubsim, class: &str) -> u64 {
    hub.stats()["requests"][class]
        .as_object()
        .map(|m| m.values().filter_map(|n| n.as_u64()).sum())
        .unwrap_or(0)
}

/// The titles of a Hugging Face hub's commits on `main` of model `repo`, newest first.
pub fn commit_titles(hub: &Hubsim, repo: &str) -> Vec<String> {
    let (status, v) = get_json(&format!("{}/api/models/{repo}/commits/main", hub.url), Some(ALICE));
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The report's `files`, `bytes_uploaded`, `verified`.
pub fn summary(run: &Run) -> (u64, u64, bool) {
    let r = run
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no report; output:\n{}", run.output()));
    (
        r["files"].as_u64().unwrap_or(0),
        r["bytes_uploaded"].as_u64().unwrap_or(0),
        r["verified"].as_bool().unwrap_or(false),
    )
}

/// Asserts the run exited with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(run.code, code, "unexpected exit code; output:\n{}", run.output());
}

/// Flips one byte in the middle of LFS object `oid` in the hubsim store under `data` (same size:
/// every listing still names the old sha256, only the bytes differ).
pub fn damage_object(data: &std::path::Path, oid: &str) {
    let stored = data.join("lfs/objects").join(&oid[0..2]).join(&oid[2..4]).join(oid);
    let mut bytes = std::fs::read(&stored).expect("the object in the store");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
}
