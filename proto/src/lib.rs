//! gRPC messages between coordinator and workers. Filled in by the pipeline issue (#3).
