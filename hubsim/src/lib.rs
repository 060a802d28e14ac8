//! hubsim: a local hub that speaks the Hugging Face, ModelScope and Git LFS protocols well enough
//! that the official clients, `git` and `git-lfs` work against it unchanged. Repos are real bare
//! git repositories; LFS objects live in a content-addressed store verified on every upload.

pub mod auth;
pub mod repo;
pub mod store;
pub mod util;
