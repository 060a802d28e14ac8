//! Hub clients and transfer primitives shared by the coordinator and the workers: repo
//! references, manifests, the Hugging Face, ModelScope and Git LFS host clients behind one
//! [`Hub`] type, streaming hashes, retries and secret redaction.
//!
//! | module | owns |
//! |---|---|
//! | [`hub`] | [`Hub`]: one type for "a hub", dispatching to a client; [`hub::Hub::capabilities`] |
//! | [`types`] | the shared vocabulary (identities, upload actions, commit files, capabilities) |
//! | [`hf`], [`ms`], [`git`] | one client per platform |
//! | [`lfs`] | the Git LFS batch API both HF and git hosts speak |
//! | [`http`] | the HTTP client, the one retry loop, URL encoding |
//! | [`quota`] | the hubs' request quotas: `RateLimit` headers, pacing, long waits announced |
//! | [`body`], [`resume`], [`parallel`], [`hashing`] | bytes on the wire: ranged bodies, streamed PUTs, resuming and parallel reads, hashing as bytes pass |
//! | [`reporef`], [`manifest`], [`redact`], [`error`] | references, listings, secrets, the error type |

pub(crate) mod body;
pub mod card;
pub mod commits;
pub mod error;
pub mod git;
pub mod hashing;
pub(crate) mod hf;
pub mod http;
pub mod hub;
pub(crate) mod lfs;
pub mod license;
pub mod manifest;
pub mod ms;
pub(crate) mod pages;
pub mod parallel;
pub mod quota;
pub mod readback;
pub mod redact;
pub mod reporef;
pub mod resume;
pub(crate) mod types;

pub use error::{Error, Result};
pub use hub::Hub;
