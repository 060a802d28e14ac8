//! hubsim: a local hub that speaks the Hugging Face, ModelScope and Git LFS protocols well enough
//! that the official clients, `git` and `git-lfs` work against it unchanged. Repos are real bare
//! git repositories; LFS objects live in a content-addressed store verified on every upload.

pub(crate) mod auth;
pub mod cli;
pub(crate) mod faults;
pub(crate) mod githttp;
pub mod gitlab;
pub(crate) mod glob;
pub(crate) mod hf;
pub(crate) mod http;
pub(crate) mod lfs_api;
pub(crate) mod ms;
pub(crate) mod presigned;
pub(crate) mod quota;
pub(crate) mod repo;
pub mod seed;
pub mod serve;
pub(crate) mod sign;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod store;
pub mod util;
