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
    let args = [
        "run",
        "--source",
        source,
        "--to",
        to,
        "--source-endpoint",
        &from.url,
        "--dest-endpoint",
        &into.url,
    ];
    migrate(
        &[&args[..], extra].concat(),
        &[("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)],
    )
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

/// GETs a JSON document from a hub with a token.
pub fn get_json(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut args = vec!["-s", "-w", "\n%{http_code}"];
    let header;
    if let Some(t) = token {
        header = format!("Authorization: Bearer {t}");
        args.push("-H");
        args.push(&header);
    }
    args.push(url);
    let out = Command::new("curl").args(&args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
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
