//! The Kubernetes executor: each chunk attempt is a Job (see [`super::job`]). Creating and
//! deleting Jobs happens in background tasks; one watcher keeps the Jobs' outcomes in a shared
//! map that the run loop polls through [`WorkerHandle::exited`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

use super::crd::Migration;
use super::job::{JobParams, LABEL_MIGRATION, chunk_attempt, job_for_chunk, job_name};
use crate::error::Result;
use crate::flow::transfer::executor::{Executor, WorkerHandle};

/// What is known of a Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Succeeded,
    Failed(String),
}

type States = Arc<Mutex<HashMap<String, JobState>>>;
/// Why a Job's pod is Pending, by Job name (absent: not Pending, or not known).
type Waiting = Arc<Mutex<HashMap<String, String>>>;

/// Why a pod is not running yet: its container's waiting reason (`ContainerCreating`,
/// `ImagePullBackOff: ...`), or why it is not scheduled (`Unschedulable: 0/3 nodes ...`).
fn pending_reason(pod: &Pod) -> Option<String> {
    let st = pod.status.as_ref()?;
    if st.phase.as_deref() != Some("Pending") {
        return None;
    }
    let unscheduled = st
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    let waiting = st
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.clone());
    let (reason, message) = match (unscheduled, waiting) {
        (Some(c), _) => (c.reason.clone(), c.message.clone()),
        (None, Some(w)) => (w.reason, w.message),
        (None, None) => (Some("Pending".into()), None),
    };
    let reason = reason.unwrap_or_else(|| "Pending".into());
    Some(match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{reason}: {m}"),
        None => reason,
    })
}

/// Keeps `waiting` current from the migration's pods, until aborted.
fn watch_pods(pods: Api<Pod>, selector: String, migration: String, waiting: Waiting) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = watcher::watcher(pods, watcher::Config::default().labels(&selector)).boxed();
        while let Some(ev) = stream.next().await {
            let (pod, gone) = match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => (p, false),
                Ok(watcher::Event::Delete(p)) => (p, true),
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch interrupted; resuming");
                    continue;
                }
            };
            let Some((c, a)) = chunk_attempt(&pod.metadata) else {
                continue;
            };
            let job = job_name(&migration, c, a);
            let mut g = waiting.lock().unwrap_or_else(|e| e.into_inner());
            match pending_reason(&pod).filter(|_| !gone) {
                Some(why) => g.insert(job, why),
                None => g.remove(&job),
            };
        }
    })
}

fn state_of(job: &Job) -> JobState {
    let st = job.status.clone().unwrap_or_default();
    let failed_condition = st
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    if st.succeeded.unwrap_or(0) > 0 {
        JobState::Succeeded
    } else if let Some(c) = failed_condition {
        JobState::Failed(
            c.message
                .unwrap_or_else(|| c.reason.unwrap_or_else(|| "the Job failed".into())),
        )
    } else {
        JobState::Active
    }
}

/// Starts worker Jobs for one Migration.
pub struct KubeExecutor {
    jobs: Api<Job>,
    migration: Migration,
    params: JobParams,
    states: States,
    waiting: Waiting,
    watchers: [tokio::task::JoinHandle<()>; 2],
}

impl KubeExecutor {
    /// An executor for `migration` (which owns the Jobs); watches its Jobs from now on.
    pub fn new(jobs: Api<Job>, pods: Api<Pod>, migration: Migration, params: JobParams) -> Self {
        let states: States = Arc::default();
        let waiting: Waiting = Arc::default();
        let name = migration.metadata.name.clone().unwrap_or_default();
        let selector = format!("{LABEL_MIGRATION}={name}");
        let pod_watcher = watch_pods(pods, selector.clone(), name.clone(), waiting.clone());
        let cfg = watcher::Config::default().labels(&selector);
        let (w_jobs, w_states) = (jobs.clone(), states.clone());
        let watcher = tokio::spawn(async move {
            let mut stream = watcher::watcher(w_jobs, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let jobs: Vec<Job> = match ev {
                    Ok(watcher::Event::Apply(j)) | Ok(watcher::Event::InitApply(j)) => vec![j],
                    Ok(watcher::Event::Delete(j)) => {
                        if let Some(n) = j.metadata.name {
                            w_states
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(n, JobState::Failed("the Job was deleted".into()));
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "job watch interrupted; resuming");
                        continue;
                    }
                };
                let mut g = w_states.lock().unwrap_or_else(|e| e.into_inner());
                for j in jobs {
                    if let Some(n) = j.metadata.name.clone() {
                        g.insert(n, state_of(&j));
                    }
                }
            }
        });
        KubeExecutor {
            jobs,
            migration,
            params,
            states,
            waiting,
            watchers: [watcher, pod_watcher],
        }
    }

    /// The Jobs a previous controller started for this Migration: (chunk, attempt, state), the
    /// latest attempt of each chunk. Only Jobs this very Migration owns (by UID) count: a
    /// Migration deleted and created again under its name does not adopt its predecessor's.
    pub async fn existing(&self) -> Result<Vec<(u32, u32, JobState, String)>, kube::Error> {
        let name = self.migration.metadata.name.clone().unwrap_or_default();
        let list = self
            .jobs
            .list(&ListParams::default().labels(&format!("{LABEL_MIGRATION}={name}")))
            .await?;
        let mut latest: HashMap<u32, (u32, JobState, String)> = HashMap::new();
        let uid = self.migration.metadata.uid.clone().unwrap_or_default();
        for j in list.items {
            let owned = j.metadata.owner_references.iter().flatten().any(|o| o.uid == uid);
            if !owned {
                continue;
            }
            let Some((c, a)) = chunk_attempt(&j.metadata) else {
                continue;
            };
            let jn = j.metadata.name.clone().unwrap_or_default();
            if latest.get(&c).is_none_or(|(prev, _, _)| a > *prev) {
                latest.insert(c, (a, state_of(&j), jn));
            }
        }
        Ok(latest.into_iter().map(|(c, (a, s, n))| (c, a, s, n)).collect())
    }

    /// A handle on an existing Job.
    pub fn handle(&self, job: String) -> KubeWorker {
        KubeWorker {
            name: job,
            jobs: self.jobs.clone(),
            states: self.states.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl Drop for KubeExecutor {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

/// A worker Job.
pub struct KubeWorker {
    name: String,
    jobs: Api<Job>,
    states: States,
    waiting: Waiting,
}

impl Executor for KubeExecutor {
    type Worker = KubeWorker;

    fn launch(&self, chunk: u32, attempt: u32) -> Result<KubeWorker> {
        let job = job_for_chunk(&self.migration, chunk, attempt, &self.params);
        let name = job_name(
            self.migration.metadata.name.as_deref().unwrap_or_default(),
            chunk,
            attempt,
        );
        let (jobs, states, n) = (self.jobs.clone(), self.states.clone(), name.clone());
        states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), JobState::Active);
        tokio::spawn(async move {
            match jobs.create(&PostParams::default(), &job).await {
                Ok(_) => tracing::info!(job = %n, chunk, attempt, "job created"),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::info!(job = %n, "job exists already; following it")
                }
                Err(e) => {
                    tracing::warn!(job = %n, error = %e, "cannot create the job");
                    states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(n, JobState::Failed(format!("cannot create the Job: {e}")));
                }
            }
        });
        Ok(self.handle(name))
    }
}

impl WorkerHandle for KubeWorker {
    fn exited(&mut self) -> Option<bool> {
        match self.states.lock().unwrap_or_else(|e| e.into_inner()).get(&self.name) {
            Some(JobState::Succeeded) => Some(true),
            Some(JobState::Failed(_)) => Some(false),
            _ => None,
        }
    }

    fn kill(&mut self) {
        let (jobs, name) = (self.jobs.clone(), self.name.clone());
        tokio::spawn(async move {
            let _ = jobs.delete(&name, &DeleteParams::background()).await;
        });
    }

    fn last_words(&self) -> Option<String> {
        match self.states.lock().unwrap_or_else(|e| e.into_inner()).get(&self.name) {
            Some(JobState::Failed(why)) => Some(why.clone()),
            _ => None,
        }
    }

    fn waiting(&self) -> Option<String> {
        let pending = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(&self.name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn a_pending_pod_says_why() {
        let creating = pod(serde_json::json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "worker", "image": "w", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(pending_reason(&creating).as_deref(), Some("ContainerCreating"));
        let unschedulable = pod(serde_json::json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu."}]}));
        assert_eq!(
            pending_reason(&unschedulable).as_deref(),
            Some("Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.")
        );
        assert_eq!(pending_reason(&pod(serde_json::json!({"phase": "Running"}))), None);
    }
}
