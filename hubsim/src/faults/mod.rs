//! Fault injection and bandwidth limits for `hubsim serve`.
//!
//! Misbehaving-hub knobs live here so that handlers stay oblivious to them:
//! - [`throttle`]: socket-level byte-rate limits (`--conn-rate`,
//!   `--total-rate`) through [`ThrottledListener`], covering uploads and
//!   downloads alike;
//! - [`middleware`]: request-level faults (`--latency`, `--api-403`,
//!   `--fail-429`, `--fail-5xx`) through the [`inject`] axum middleware;
//! - [`body`]: download-body faults (`--truncate`, `--corrupt`) through
//!   [`wrap_download`], which download handlers apply to their streams.

pub mod body;
pub mod middleware;
pub mod throttle;

// The re-exports are this module's whole API. Should the module be declared
// privately (or from the binary), any re-export the crate does not name,
// e.g. types only seen in signatures such as `DownloadStream` or
// `ThrottledStream`, would warn as unused and fail `-D warnings`.
#[allow(unused_imports)]
pub use body::{DownloadStream, wrap_download};
#[allow(unused_imports)]
pub use middleware::{FaultConfig, FaultCtx, FaultStats, Faults, inject};
#[allow(unused_imports)]
pub use throttle::{RateLimits, ThrottledListener, ThrottledStream, TokenBucket};
