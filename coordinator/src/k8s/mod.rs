//! Kubernetes: the pieces the controller and the Kubernetes executor are built from. `job`
//! turns a chunk into a Job spec (a pure function, unit-tested); the controller and executor that
//! create and watch those Jobs are issue #4's remaining work.

pub mod job;
