//! `migrate-coord batch`: many migrations, a few at a time. Each repo is one ordinary `run`; a
//! destination that exists is verified first and skipped when it matches (an interrupted earlier
//! run fails that check and is completed). One failure does not stop the others; a table and a
//! JSON report close the batch.

use std::time::Instant;

use futures_util::StreamExt;
use hubmigrate_hub::Error;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use serde::Serialize;

use crate::cli::{BatchArgs, OnExisting, RunArgs};
use crate::env::Env;
use crate::error::exit;
use crate::fmt::{bytes, duration};
use crate::report::Report;

/// One line of the batch: a source and, when given, its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub dest: Option<String>,
}

/// How one repo ended.
#[derive(Debug, Serialize)]
pub struct RepoOutcome {
    pub source: String,
    pub dest: String,
    /// `migrated`, `skipped`, `completed`, `mismatch`, `failed`, `bad-input`.
    pub status: String,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    code: i32,
}

/// Parses `SOURCE [DEST]` lines; every malformed line is named (1-based), nothing runs then.
pub fn parse_lines(text: &str) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [s] => out.push(Entry {
                source: s.to_string(),
                dest: None,
            }),
            [s, d] => out.push(Entry {
                source: s.to_string(),
                dest: Some(d.to_string()),
            }),
            _ => bad.push(format!("line {}: expected `SOURCE [DEST]`, got {line:?}", i + 1)),
        }
    }
    if !bad.is_empty() {
        return Err(Error::Input(format!("malformed batch file:\n  {}", bad.join("\n  "))));
    }
    if out.is_empty() {
        return Err(Error::Input("the batch names no repos".into()));
    }
    Ok(out)
}

/// A bare `NS/NAME` source lives on the hub that is not `--to`.
fn source_ref(source: &str, to: Option<&str>) -> Result<String, Error> {
    if source.contains(':') {
        return Ok(source.to_string());
    }
    let to = to.ok_or_else(|| Error::Input(format!("{source}: say which hub it goes to with --to, or give a DEST")))?;
    let from = match Platform::parse(to)? {
        Platform::Hf => "ms",
        Platform::Ms => "hf",
        Platform::Git => return Err(Error::Input("--to takes hf or ms".into())),
    };
    Ok(format!("{from}:{source}"))
}

/// Runs the batch; exit 0 only when every repo migrated, verified or was skipped as complete.
pub async fn batch(args: &BatchArgs, env: &Env, log_format: &'static str) -> i32 {
    let entries = match entries(args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let started = Instant::now();
    let runs = entries.iter().map(|e| one(args, env, e, log_format));
    let mut outcomes: Vec<RepoOutcome> = futures_util::stream::iter(runs)
        .buffered(args.max_repos as usize)
        .collect()
        .await;
    outcomes.sort_by_key(|o| o.code);
    eprint!("{}", table(&outcomes, started.elapsed()));
    if let Some(path) = &args.report {
        let doc = serde_json::json!({
            "repos": outcomes,
            "succeeded": outcomes.iter().filter(|o| o.code == exit::OK).count(),
            "failed": outcomes.iter().filter(|o| o.code != exit::OK).count(),
            "seconds": started.elapsed().as_secs_f64(),
        });
        if let Err(e) = std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap_or_default()) {
            eprintln!("error: cannot write the report {}: {e}", path.display());
            return exit::FAILURE;
        }
    }
    match outcomes.iter().map(|o| o.code).max().unwrap_or(exit::OK) {
        exit::OK => exit::OK,
        _ => exit::FAILURE,
    }
}

fn entries(args: &BatchArgs) -> Result<Vec<Entry>, Error> {
    let raw = match &args.from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?;
            parse_lines(&text)?
        }
        None => args
            .source
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| Entry {
                source: s.to_string(),
                dest: None,
            })
            .collect(),
    };
    let mut bad = Vec::new();
    let mut out = Vec::new();
    for e in raw {
        match source_ref(&e.source, args.to.as_deref()).and_then(|s| {
            RepoRef::parse(&s, RepoType::Model)?;
            if let Some(d) = &e.dest {
                RepoRef::parse(d, RepoType::Model)?;
            }
            Ok(s)
        }) {
            Ok(source) => out.push(Entry { source, dest: e.dest }),
            Err(err) => bad.push(format!("{}: {err}", e.source)),
        }
    }
    if !bad.is_empty() {
        return Err(Error::Input(format!("bad repos in the batch:\n  {}", bad.join("\n  "))));
    }
    if out.is_empty() {
        return Err(Error::Input("the batch names no repos".into()));
    }
    Ok(out)
}

async fn one(args: &BatchArgs, env: &Env, e: &Entry, log_format: &'static str) -> RepoOutcome {
    let run = RunArgs {
        source: e.source.clone(),
        dest: e.dest.clone(),
        to: if e.dest.is_none() { args.to.clone() } else { None },
        repo_type: args.repo_type,
        source_endpoint: args.source_endpoint.clone(),
        dest_endpoint: args.dest_endpoint.clone(),
        parallel: args.parallel,
        max_workers: args.max_workers,
        worker_bin: args.worker_bin.clone(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut status = None;
    if args.on_existing == OnExisting::Skip {
        match existing_and_complete(&run, env).await {
            Ok(Some(report)) => return outcome(report, "skipped", exit::OK, started),
            Ok(None) => {}
            Err(true) => status = Some("completed"),
            Err(false) => {}
        }
    }
    let named_dest = planned_dest(&run);
    let mut done = super::run::run(&run, env, log_format).await;
    if done.report.dest.is_empty() {
        done.report.dest = named_dest;
    }
    let code = done.code();
    let status = match (code, status) {
        (exit::OK, Some(s)) => s,
        (exit::OK, None) => "migrated",
        (exit::MISMATCH, _) => "mismatch",
        (exit::BAD_INPUT, _) => "bad-input",
        _ => "failed",
    };
    outcome(done.report, status, code, started)
}

/// The destination as the batch names it (`--to` resolved), for the table.
fn planned_dest(run: &RunArgs) -> String {
    let to = run.to.as_deref().and_then(|t| Platform::parse(t).ok());
    match (&run.dest, to, RepoRef::parse(&run.source, RepoType::Model)) {
        (Some(d), _, _) => hubmigrate_hub::redact::url(d),
        (None, Some(p), Ok(s)) => s.on(p).to_string(),
        _ => String::new(),
    }
}

/// `Ok(Some)` when the destination exists and verifies (skip it); `Err(true)` when it exists
/// but does not verify (an interrupted run to complete); otherwise the run goes ahead.
async fn existing_and_complete(run: &RunArgs, env: &Env) -> Result<Option<Report>, bool> {
    let Ok(mut sides) = crate::flow::resolve::sides(run, env) else {
        return Err(false);
    };
    match sides.dest.hub.repo_state(&sides.dest.repo).await {
        Ok(Some(_)) => {}
        _ => return Ok(None),
    }
    let mut report = Report::started(&run.source, run.dest.as_deref());
    match super::verify::check(&mut sides, None, false, &mut report).await {
        Ok(()) => {
            tracing::info!(source = %sides.source.repo, dest = %sides.dest.repo, "destination exists and matches: skipped");
            Ok(Some(report))
        }
        _ => {
            tracing::warn!(source = %sides.source.repo, dest = %sides.dest.repo, "destination exists but does not match the source: completing it");
            Err(true)
        }
    }
}

fn outcome(r: Report, status: &str, code: i32, started: Instant) -> RepoOutcome {
    RepoOutcome {
        source: r.source,
        dest: r.dest,
        status: status.into(),
        files: r.files,
        bytes: r.bytes,
        seconds: started.elapsed().as_secs_f64(),
        verified: r.verified,
        error: r.error,
        code,
    }
}

/// The closing table.
fn table(outcomes: &[RepoOutcome], took: std::time::Duration) -> String {
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .map(|o| {
            [
                format!("{} -> {}", o.source, o.dest),
                o.status.clone(),
                o.files.to_string(),
                bytes(o.bytes),
                duration(std::time::Duration::from_secs_f64(o.seconds)),
                if o.verified { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let head = ["repo", "status", "files", "bytes", "time", "verified"];
    let mut s = crate::fmt::table(head, &rows, &[]);
    let ok = outcomes.iter().filter(|o| o.code == exit::OK).count();
    s.push_str(&format!(
        "{ok} of {} repos done in {}\n",
        outcomes.len(),
        duration(took)
    ));
    for o in outcomes.iter().filter(|o| o.error.is_some()) {
        s.push_str(&format!("  {}: {}\n", o.source, o.error.as_deref().unwrap_or("")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_their_errors() {
        let e = parse_lines("# org backup\nhf:acme/a ms:alice/a2\n\nacme/b   # same name\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dest.as_deref(), Some("ms:alice/a2"));
        assert_eq!(e[1].source, "acme/b");
        let err = parse_lines("a/b\nx y z\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_lines("# nothing\n").is_err());
        assert_eq!(source_ref("acme/b", Some("ms")).unwrap(), "hf:acme/b");
        assert!(source_ref("acme/b", None).is_err());
    }
}
