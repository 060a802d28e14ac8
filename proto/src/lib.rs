//! The gRPC protocol between the coordinator and its workers (`proto/migration.proto`): the
//! generated messages and the `Coordinator` service's client and server, plus the metadata key
//! that carries the per-migration secret.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("hubmigrate.v1");

/// Metadata key of the per-migration secret every call carries.
pub const SECRET_HEADER: &str = "x-hubmigrate-secret";
/// Metadata key naming the migration a call is for (one server may serve several).
pub const MIGRATION_HEADER: &str = "x-hubmigrate-migration";
