//! The hubmigrate coordinator: resolves a migration, plans it, runs one worker per chunk over
//! gRPC, commits once and verifies every file (see ../shared/DESIGN.md, The flow of one migration).

pub mod batch;
pub mod cli;
pub mod config;
pub mod crd;
pub mod envfile;
pub mod eta;
pub mod executor;
pub mod finish;
pub mod gitflow;
pub mod inventory;
pub mod k8s;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod run;
pub mod secret;
pub mod server;
pub mod split;
pub mod tokens;
pub mod transfer;
pub mod verify;
