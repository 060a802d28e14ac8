//! Hub clients and transfer primitives shared by the coordinator and the workers: repo
//! references, manifests, the Hugging Face and ModelScope clients behind one [`hub::Hub`] type,
//! streaming hashes, retries and secret redaction.

pub mod error;
pub mod git;
pub mod hashing;
pub mod http;
pub mod manifest;
pub mod parallel;
pub mod redact;
pub mod reporef;

pub use error::{Error, Result};
pub mod hf;
pub mod hub;
pub mod lfs;
pub mod ms;
pub mod transfer;
