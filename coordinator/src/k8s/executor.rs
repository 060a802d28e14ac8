//! The Kubernetes executor: each chunk attempt is a Job (see [`super::job`]). Creating and
//! deleting Jobs happens in background tasks; one watcher keeps the Jobs' outcomes in a shared
//! map that the run loop polls through [`WorkerHandle::exited`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

use super::job::{JobParams, LABEL_ATTEMPT, LABEL_CHUNK, LABEL_MIGRATION, job_for_chunk, job_name};
use crate::crd::Migration;
use crate::executor::{Executor, WorkerHandle};

/// What is known of a Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Succeeded,
    Failed(String),
}

type States = Arc<Mutex<HashMap<String, JobState>>>;

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
    uid: String,
    params: JobParams,
    states: States,
    watcher: tokio::task::JoinHandle<()>,
}

impl KubeExecutor {
    /// An executor for `migration` (whose `uid` owns the Jobs); watches its Jobs from now on.
    pub fn new(jobs: Api<Job>, migration: Migration, uid: String, params: JobParams) -> Self {
        let states: States = Arc::default();
        let name = migration.metadata.name.clone().unwrap_or_default();
        let cfg = watcher::Config::default().labels(&format!("{LABEL_MIGRATION}={name}"));
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
            uid,
            params,
            states,
            watcher,
        }
    }

    /// The Jobs a previous controller started for this Migration: (chunk, attempt, state), the
    /// latest attempt of each chunk.
    pub async fn existing(&self) -> Result<Vec<(u32, u32, JobState, String)>, kube::Error> {
        let name = self.migration.metadata.name.clone().unwrap_or_default();
        let list = self
            .jobs
            .list(&ListParams::default().labels(&format!("{LABEL_MIGRATION}={name}")))
            .await?;
        let mut latest: HashMap<u32, (u32, JobState, String)> = HashMap::new();
        for j in list.items {
            let labels = j.metadata.labels.clone().unwrap_or_default();
            let (Some(c), Some(a)) = (
                labels.get(LABEL_CHUNK).and_then(|v| v.parse::<u32>().ok()),
                labels.get(LABEL_ATTEMPT).and_then(|v| v.parse::<u32>().ok()),
            ) else {
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
        }
    }
}

impl Drop for KubeExecutor {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A worker Job.
pub struct KubeWorker {
    name: String,
    jobs: Api<Job>,
    states: States,
}

impl Executor for KubeExecutor {
    type Worker = KubeWorker;

    fn launch(&self, chunk: u32, attempt: u32) -> anyhow::Result<KubeWorker> {
        let job = job_for_chunk(&self.migration, &self.uid, chunk, attempt, &self.params);
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
}
