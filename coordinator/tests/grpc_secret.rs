//! The coordinator's gRPC service refuses calls without the per-migration secret, and hands a
//! chunk only to the attempt it started.

use hubmigrate_proto as pb;
use migrate_coord::flow::transfer::grpc::{Registry, Shared, serve};
use pb::coordinator_client::CoordinatorClient;
use std::sync::Arc;

fn side() -> pb::Side {
    pb::Side {
        platform: "hf".into(),
        endpoint: "http://127.0.0.1:9".into(),
        repo_type: "model".into(),
        repo_id: "a/b".into(),
        revision: "main".into(),
        username: String::new(),
    }
}

#[tokio::test]
async fn calls_without_the_secret_are_refused() {
    let task = pb::FileTask {
        path: "x.bin".into(),
        size: 3,
        sha256: "a".repeat(64),
        git_oid: String::new(),
        lfs: true,
        slice: None,
        source_lfs: true,
    };
    let (shared, _events) = Shared::new("m-test".into(), side(), side(), vec![vec![task]], 1, 1);
    let registry = Arc::new(Registry::default());
    registry.add(shared.clone(), "the-secret".into());
    let (addr, server) = serve(registry, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut client = CoordinatorClient::connect(format!("http://{addr}")).await.unwrap();
    let register = |secret: Option<&str>, attempt: u32| {
        let mut req = tonic::Request::new(pb::RegisterRequest {
            migration_id: "m-test".into(),
            chunk_id: 0,
            attempt,
            worker: "test".into(),
        });
        req.metadata_mut()
            .insert(pb::MIGRATION_HEADER, "m-test".parse().unwrap());
        if let Some(s) = secret {
            req.metadata_mut().insert(pb::SECRET_HEADER, s.parse().unwrap());
        }
        req
    };
    let no_secret = client.register(register(None, 1)).await.unwrap_err();
    assert_eq!(no_secret.code(), tonic::Code::Unauthenticated);
    let wrong = client.register(register(Some("guess"), 1)).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let not_started = client.register(register(Some("the-secret"), 1)).await.unwrap_err();
    assert_eq!(
        not_started.code(),
        tonic::Code::FailedPrecondition,
        "no attempt was started yet"
    );
    shared.start_attempt(0, 1);
    let a = client
        .register(register(Some("the-secret"), 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((a.chunk_id, a.files.len()), (0, 1));
    let stale = client.register(register(Some("the-secret"), 2)).await.unwrap_err();
    assert_eq!(
        stale.code(),
        tonic::Code::FailedPrecondition,
        "only the started attempt may register"
    );
    server.abort();
}
