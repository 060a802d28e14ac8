//! kubesim: a Kubernetes API-server stand-in for tests on machines without a cluster. It is
//! correct when the real `kubectl` and kube-rs work against it unchanged, and it is as strict as
//! a real API server wherever the project's code depends on the server's behaviour (status
//! isolation, generation, optimistic concurrency, server-side apply, garbage collection, watch
//! resumption and expiry, selectors). A stand-in kubelet runs Job pods as local processes.

pub mod api;
pub mod apply;
pub mod cli;
pub mod controllers;
pub mod delete;
pub mod discovery;
pub mod error;
pub mod gc;
pub mod jobs;
pub mod kinds;
pub mod kubelet;
pub mod list;
pub mod logs;
pub mod objects;
pub mod patch;
pub mod proto;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod serve;
pub mod state;
pub mod store;
pub mod table;
pub mod util;
pub mod validate;
pub mod views;
pub mod watch;
pub mod workloads;
