//! hubsim: a local hub that speaks the Hugging Face, ModelScope and Git LFS protocols well enough
//! that the official clients, `git` and `git-lfs` work against it unchanged. Repos are real bare
//! git repositories; LFS objects live in a content-addressed store verified on every upload.

pub mod auth;
pub mod cli;
pub mod faults;
pub mod githttp;
pub mod gitlab;
pub mod glob;
pub mod hf;
pub mod http;
pub mod lfs_api;
pub mod ms;
pub mod presigned;
pub mod repo;
pub mod seed;
pub mod serve;
pub mod sign;
pub mod state;
pub mod stats;
pub mod store;
pub mod util;
