//! The Kubernetes observer: a Migration's status subresource and Events. The observer updates a
//! typed [`MigrationStatus`] in memory; one writer task patches it to the API server (at once on
//! a phase change, at most every two seconds for progress) and publishes the Events, so the
//! pipeline never waits on the API server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource};
use serde_json::json;
use tokio::sync::Notify;

use super::crd::{Condition, Migration, MigrationStatus, Phase};
use crate::cli::RunArgs;
use crate::flow::transfer::Snapshot;
use crate::flow::{Observer, Planned, Step};
use crate::fmt::duration;

/// The condition that says whether the started workers run.
const WORKERS: &str = "WorkersRunning";
/// Progress is written at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// A message from anywhere (a hub's answer included) is cut to this many characters.
const MAX_MESSAGE: usize = 400;

#[derive(Default)]
struct State {
    status: MigrationStatus,
    dirty: bool,
    urgent: bool,
    events: Vec<(EventType, String, String, Phase)>,
    closed: bool,
    /// When the transfer began, for the rate behind the ETA.
    transfer_started: Option<Instant>,
}

/// Writes one Migration's status and Events.
#[derive(Clone)]
pub struct StatusWriter {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

/// A message fit for a status: one line, printable, bounded.
pub fn sanitize(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out: String = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > MAX_MESSAGE {
        out = out.chars().take(MAX_MESSAGE - 1).collect();
        out.push('…');
    }
    out
}

/// The `Ready` condition of `phase`.
pub fn condition(phase: Phase, reason: &str, message: &str) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: if phase == Phase::Succeeded { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: sanitize(message),
        last_transition_time: super::rfc3339_now(),
    }
}

impl StatusWriter {
    /// Starts the writer task for `mig`, from its current status.
    pub fn start(api: Api<Migration>, mig: &Migration, recorder: Recorder) -> (Self, tokio::task::JoinHandle<()>) {
        let mut status = mig.status.clone().unwrap_or_default();
        status.observed_generation = mig.metadata.generation;
        if status.start_time.is_none() {
            status.start_time = Some(super::rfc3339_now());
        }
        let state = Arc::new(Mutex::new(State {
            status,
            dirty: true,
            urgent: true,
            ..Default::default()
        }));
        let writer = StatusWriter {
            state: state.clone(),
            wake: Arc::new(Notify::new()),
        };
        let (name, obj) = (mig.metadata.name.clone().unwrap_or_default(), mig.object_ref(&()));
        let wake = writer.wake.clone();
        let task = tokio::spawn(async move {
            let mut last = Instant::now() - PROGRESS_EVERY;
            loop {
                let (patch, events, closed) = {
                    let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
                    let due = g.dirty && (g.urgent || g.closed || last.elapsed() >= PROGRESS_EVERY);
                    let patch = due.then(|| g.status.clone());
                    if due {
                        g.dirty = false;
                        g.urgent = false;
                    }
                    (patch, std::mem::take(&mut g.events), g.closed)
                };
                if let Some(status) = patch {
                    last = Instant::now();
                    let body = json!({ "status": status });
                    if let Err(e) = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                        .await
                    {
                        tracing::warn!(migration = %name, error = %crate::error::kube_message(&e), "cannot write status");
                    }
                }
                for (type_, reason, note, phase) in events {
                    let ev = Event {
                        type_,
                        reason,
                        note: Some(note),
                        action: format!("{phase:?}"),
                        secondary: None,
                    };
                    if let Err(e) = recorder.publish(&ev, &obj).await {
                        tracing::debug!(error = %e, "cannot publish an event");
                    }
                }
                if closed {
                    let g = state.lock().unwrap_or_else(|e| e.into_inner());
                    if !g.dirty && g.events.is_empty() {
                        return;
                    }
                    continue;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(PROGRESS_EVERY) => {}
                }
            }
        });
        (writer, task)
    }

    fn update(&self, urgent: bool, f: impl FnOnce(&mut State)) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
        g.dirty = true;
        g.urgent |= urgent;
        drop(g);
        if urgent {
            self.wake.notify_one();
        }
    }

    /// Enters `phase` (condition, Event, log line).
    pub fn phase(&self, phase: Phase, reason: &str, note: &str) {
        tracing::info!(?phase, reason, note, "phase");
        self.update(true, |g| {
            g.status.phase = phase;
            g.status.conditions = vec![condition(phase, reason, note)];
            if matches!(phase, Phase::Succeeded | Phase::Failed) {
                g.status.finish_time = Some(super::rfc3339_now());
                g.status.detail = None;
                g.status.chunks_running = 0;
            }
            let type_ = if phase == Phase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            };
            g.events.push((type_, reason.into(), sanitize(note), phase));
        });
    }

    /// Changes the status with `f` (written with the next progress update).
    pub fn set(&self, f: impl FnOnce(&mut MigrationStatus)) {
        self.update(false, |g| f(&mut g.status));
    }

    /// Writes what is left and stops the writer; `task` is the one [`StatusWriter::start`] gave.
    pub async fn close(self, task: tokio::task::JoinHandle<()>) {
        self.update(true, |g| g.closed = true);
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
}

/// The pipeline's observer on a cluster.
pub struct KubeObserver(pub StatusWriter);

impl Observer for KubeObserver {
    fn step(&mut self, step: Step, note: &str) {
        let (phase, reason) = match step {
            Step::Planning => (Phase::Planning, "Planning"),
            Step::Preparing => (Phase::Planning, "Preparing"),
            Step::Transferring => (Phase::Transferring, "Transferring"),
            Step::Committing => (Phase::Committing, "Committing"),
            Step::Verifying => (Phase::Verifying, "Verifying"),
        };
        if step == Step::Transferring {
            self.0.update(false, |g| g.transfer_started = Some(Instant::now()));
        }
        self.0.phase(phase, reason, note);
    }

    fn planned(&mut self, p: &Planned, _args: &RunArgs) {
        let (total, chunks, eta) = (p.bytes_moved(), p.plan.chunks.len() as u32, duration(p.eta));
        self.0.set(|s| {
            s.bytes_total = total;
            s.chunks_total = chunks;
            s.bytes_done = 0;
            s.progress = Some("0%".into());
            s.eta = Some(eta);
        });
    }

    fn progress(&mut self, snap: &Snapshot) {
        let snap = snap.clone();
        self.0.update(false, |g| {
            let s = &mut g.status;
            s.bytes_done = snap.bytes_done;
            let pct = (snap.bytes_done * 100).checked_div(s.bytes_total).unwrap_or(100);
            s.progress = Some(format!("{}%", pct.min(100)));
            s.chunks_running = snap.running as u32;
            s.chunks_succeeded = snap.finished as u32;
            let secs = g.transfer_started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            let rate = snap.bytes_done as f64 / secs.max(0.001);
            if rate > 0.0 {
                let left = s.bytes_total.saturating_sub(snap.bytes_done) as f64 / rate;
                s.eta = Some(duration(Duration::from_secs_f64(left)));
            }
            s.detail = waiting_detail(&snap.waiting);
            // A second condition says whether every started worker runs (and why not).
            let (status, reason, message) = match &s.detail {
                Some(d) => ("False", "WorkersPending", d.clone()),
                None => ("True", "WorkersRunning", format!("{} worker(s) running", snap.running)),
            };
            s.conditions.retain(|c| c.type_ != WORKERS);
            s.conditions.push(Condition {
                type_: WORKERS.into(),
                status: status.into(),
                reason: reason.into(),
                message,
                last_transition_time: super::rfc3339_now(),
            });
        });
    }
}

/// `2 worker(s) waiting: ContainerCreating (chunks 0, 3)`, or nothing when none waits.
fn waiting_detail(waiting: &[(u32, String)]) -> Option<String> {
    let first = waiting.first()?;
    let chunks: Vec<String> = waiting.iter().take(5).map(|(c, _)| c.to_string()).collect();
    let more = if waiting.len() > 5 { ", ..." } else { "" };
    Some(sanitize(&format!(
        "{} worker(s) waiting: {} (chunk {}{more})",
        waiting.len(),
        first.1,
        chunks.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_bounded_line() {
        let m = sanitize("a\nb\t\u{1b}[31mred\u{1b}[0m   c");
        assert!(!m.contains('\n') && !m.contains('\u{1b}'), "{m:?}");
        assert!(sanitize(&"x".repeat(5000)).chars().count() <= MAX_MESSAGE);
    }

    #[test]
    fn waiting_workers_are_named_with_their_reason() {
        assert_eq!(waiting_detail(&[]), None);
        let d = waiting_detail(&[(0, "ContainerCreating".into()), (3, "ContainerCreating".into())]);
        assert_eq!(
            d.as_deref(),
            Some("2 worker(s) waiting: ContainerCreating (chunk 0, 3)")
        );
    }
}
