//! The gRPC state and service: who may register, which tasks a rerun gets, reopened uploads.

use super::*;
use pb::coordinator_client::CoordinatorClient;

fn task(path: &str, first_part: u32) -> pb::FileTask {
    pb::FileTask {
        path: path.into(),
        size: 100,
        lfs: true,
        slice: (first_part > 0).then(|| pb::Slice {
            part_size: 10,
            first_part,
            urls: vec!["u".into(); 5],
            upload: 0,
        }),
        ..Default::default()
    }
}

fn reported(shared: &Shared, attempt: u32, path: &str, first_part: u32) {
    shared.apply(pb::WorkerEvent {
        migration_id: "m".into(),
        chunk_id: 0,
        attempt,
        event: Some(pb::worker_event::Event::File(pb::FileResult {
            path: path.into(),
            size: 100,
            first_part,
            etags: vec!["e".into(); 5],
            ..Default::default()
        })),
    });
}

#[test]
fn a_retried_chunk_is_not_sent_what_it_reported() {
    let tasks = vec![vec![
        task("a.bin", 1),
        task("a.bin", 6),
        task("b.bin", 0),
        task("c.bin", 0),
    ]];
    let (shared, _events) = Shared::new("m".into(), Default::default(), Default::default(), tasks, 1, 1, 1);
    let mut listener = shared.subscribe();
    shared.start_attempt(0, 1);
    reported(&shared, 1, "a.bin", 6);
    reported(&shared, 1, "b.bin", 0);
    assert_eq!(shared.bytes_done(), 50 + 100, "a slice counts its own bytes");
    assert_eq!(listener.try_recv().map(|r| r.first_part).ok(), Some(6));
    assert!(shared.busy(), "the listener has a slice to deal with");
    shared.work(false);
    shared.start_attempt(0, 2);
    let again: Vec<pb::TaskKey> = shared.tasks_for(0).iter().map(|t| t.key()).collect();
    assert_eq!(
        again,
        vec![pb::TaskKey::new("a.bin", 1), pb::TaskKey::new("c.bin", 0)],
        "what was reported is left out"
    );
    // A stale attempt is not heard, and a result already in is not copied twice.
    reported(&shared, 1, "a.bin", 1);
    reported(&shared, 2, "a.bin", 6);
    assert_eq!(listener.try_recv().map(|r| r.first_part).ok(), Some(0));
    assert!(listener.try_recv().is_err());
    assert!(!shared.busy());
}

#[test]
fn a_reopened_upload_sends_its_slices_again_under_the_new_urls() {
    let tasks = vec![vec![task("b.bin", 0), task("a.bin", 1)], vec![task("a.bin", 6)]];
    let (shared, mut events) = Shared::new("m".into(), Default::default(), Default::default(), tasks, 1, 1, 1);
    let _listener = shared.subscribe();
    shared.start_attempt(0, 1);
    reported(&shared, 1, "a.bin", 1);
    reported(&shared, 1, "b.bin", 0);
    assert_eq!(shared.bytes_done(), 150);
    let upload = super::super::multipart::Upload {
        path: "a.bin".into(),
        sha256: String::new(),
        size: 100,
        parts: 10,
        part_size: 10,
        urls: (1..=10).map(|n| format!("new-{n}")).collect(),
        complete: "done".into(),
        verify: None,
        generation: 1,
    };
    shared.reopen("a.bin", Some(&upload));
    assert_eq!(shared.bytes_done(), 100, "the void slice no longer counts");
    let told: Vec<u32> = std::iter::from_fn(|| match events.try_recv() {
        Ok(Event::Reopened { chunk }) => Some(chunk),
        _ => None,
    })
    .collect();
    assert_eq!(told, vec![0, 1], "both holders run again");
    let first = shared.tasks_for(0);
    assert_eq!(first.len(), 1, "only the slice: b.bin is in");
    let slice = first[0].slice.clone().unwrap();
    assert_eq!(slice.urls, ["new-1", "new-2", "new-3", "new-4", "new-5"]);
    assert_eq!((slice.first_part, slice.upload), (1, 1));
    let second = shared.tasks_for(1)[0].slice.clone().unwrap();
    assert_eq!((second.first_part, second.urls[0].as_str()), (6, "new-6"));
    assert!(shared.has_unreported(0, true) && shared.has_unreported(1, true));
    // A report for the old opening is not heard; one for the new is.
    reported(&shared, 1, "a.bin", 1);
    assert_eq!(shared.bytes_done(), 100, "generation 0 is void");
    shared.apply(pb::WorkerEvent {
        migration_id: "m".into(),
        chunk_id: 0,
        attempt: 1,
        event: Some(pb::worker_event::Event::File(pb::FileResult {
            path: "a.bin".into(),
            first_part: 1,
            upload: 1,
            etags: vec!["e".into(); 5],
            ..Default::default()
        })),
    });
    assert_eq!(shared.missing(&Default::default()), Some(pb::TaskKey::new("a.bin", 6)));
    assert_eq!(shared.bytes_done(), 150);
    // The store holds the object now: its slices are dropped, nothing is missing.
    shared.reopen("a.bin", None);
    assert_eq!(shared.missing(&Default::default()), None);
}

/// A result whose size or hash differs from the manifest's, or whose inline content does not
/// hash to it, is not recorded: the chunk fails (retryable), naming the file.
#[tokio::test]
async fn results_that_differ_from_the_manifest_are_not_recorded() {
    let content = b"hello\n".to_vec();
    let lfs = pb::FileTask {
        path: "w.bin".into(),
        size: 100,
        sha256: "a".repeat(64),
        lfs: true,
        ..Default::default()
    };
    let regular = pb::FileTask {
        path: "r.txt".into(),
        size: content.len() as u64,
        git_oid: hubmigrate_hub::hashing::git_blob_id(&content),
        ..Default::default()
    };
    let (shared, mut events) = Shared::new("m".into(), side(), side(), vec![vec![lfs, regular]], 1, 1, 1);
    shared.start_attempt(0, 1);
    let send = |f: pb::FileResult| {
        shared.apply(pb::WorkerEvent {
            migration_id: "m".into(),
            chunk_id: 0,
            attempt: 1,
            event: Some(pb::worker_event::Event::File(f)),
        })
    };
    let uploaded = |size: u64, sha: &str| pb::FileResult {
        path: "w.bin".into(),
        size,
        sha256: sha.into(),
        outcome: pb::FileOutcome::Uploaded as i32,
        ..Default::default()
    };
    let inline = |bytes: &[u8]| pb::FileResult {
        path: "r.txt".into(),
        size: content.len() as u64,
        content: bytes.to_vec(),
        outcome: pb::FileOutcome::Inline as i32,
        ..Default::default()
    };
    let failed = |events: &mut mpsc::UnboundedReceiver<Event>| match events.try_recv() {
        Ok(Event::Failed { error, retryable, .. }) => {
            assert!(retryable);
            error
        }
        other => panic!("expected the chunk to fail, got {other:?}"),
    };
    send(uploaded(100, &"b".repeat(64)));
    assert!(failed(&mut events).contains("w.bin: the bytes read hash to sha256"));
    send(uploaded(99, &"a".repeat(64)));
    assert!(failed(&mut events).contains("99 bytes"));
    send(inline(b"hellO\n"));
    assert!(failed(&mut events).contains("r.txt: the bytes read are git blob"));
    assert!(shared.results().is_empty(), "nothing that differs is recorded");

    send(uploaded(100, &"a".repeat(64)));
    send(inline(&content));
    assert!(events.try_recv().is_err(), "matching results fail nothing");
    assert_eq!(shared.results().len(), 2);
}

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

/// Calls without their chunk's secret are refused; a worker speaks only for its own chunk; a
/// chunk goes only to the attempt started.
#[tokio::test]
async fn calls_without_the_chunks_secret_are_refused() {
    let task = |path: &str| pb::FileTask {
        path: path.into(),
        size: 3,
        sha256: "a".repeat(64),
        git_oid: String::new(),
        lfs: true,
        slice: None,
        source_lfs: true,
    };
    let chunks = vec![vec![task("x.bin")], vec![task("y.bin")]];
    let (shared, _events) = Shared::new("m-test".into(), side(), side(), chunks, 1, 1, 1);
    let registry = Arc::new(Registry::default());
    registry.add(shared.clone(), "the-secret".into());
    let (addr, server) = serve(registry, ([127, 0, 0, 1], 0).into(), None).await.unwrap();
    let mut client = CoordinatorClient::connect(format!("http://{addr}")).await.unwrap();
    let metadata = |md: &mut tonic::metadata::MetadataMap, as_chunk: u32, secret: Option<&str>| {
        md.insert(pb::MIGRATION_HEADER, "m-test".parse().unwrap());
        md.insert(pb::CHUNK_HEADER, as_chunk.into());
        if let Some(s) = secret {
            md.insert(pb::SECRET_HEADER, s.parse().unwrap());
        }
    };
    let register = |as_chunk: u32, secret: Option<&str>, chunk: u32, attempt: u32| {
        let mut req = tonic::Request::new(pb::RegisterRequest {
            migration_id: "m-test".into(),
            chunk_id: chunk,
            attempt,
            worker: "test".into(),
        });
        metadata(req.metadata_mut(), as_chunk, secret);
        req
    };
    let (s0, s1) = (chunk_secret("the-secret", 0), chunk_secret("the-secret", 1));
    assert_ne!(s0, s1);
    let no_secret = client.register(register(0, None, 0, 1)).await.unwrap_err();
    assert_eq!(no_secret.code(), tonic::Code::Unauthenticated);
    let wrong = client.register(register(0, Some("guess"), 0, 1)).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let migration_secret = client
        .register(register(0, Some("the-secret"), 0, 1))
        .await
        .unwrap_err();
    assert_eq!(
        migration_secret.code(),
        tonic::Code::Unauthenticated,
        "only a chunk's secret"
    );
    let other_chunks = client.register(register(0, Some(&s1), 0, 1)).await.unwrap_err();
    assert_eq!(
        other_chunks.code(),
        tonic::Code::Unauthenticated,
        "chunk 1's secret is not chunk 0's"
    );
    let not_started = client.register(register(0, Some(&s0), 0, 1)).await.unwrap_err();
    assert_eq!(
        not_started.code(),
        tonic::Code::FailedPrecondition,
        "no attempt was started yet"
    );
    shared.start_attempt(0, 1);
    shared.start_attempt(1, 1);
    let a = client
        .register(register(0, Some(&s0), 0, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((a.chunk_id, a.files.len(), a.files[0].path.as_str()), (0, 1, "x.bin"));
    let across = client.register(register(1, Some(&s1), 0, 1)).await.unwrap_err();
    assert_eq!(
        across.code(),
        tonic::Code::PermissionDenied,
        "chunk 1 asked for chunk 0's files"
    );
    let stale = client.register(register(0, Some(&s0), 0, 2)).await.unwrap_err();
    assert_eq!(
        stale.code(),
        tonic::Code::FailedPrecondition,
        "only the started attempt may register"
    );

    // Chunk 1's worker reports chunk 0's file as done: ignored. Its own file counts.
    let result = |chunk: u32, path: &str| pb::WorkerEvent {
        migration_id: "m-test".into(),
        chunk_id: chunk,
        attempt: 1,
        event: Some(pb::worker_event::Event::File(pb::FileResult {
            path: path.into(),
            size: 3,
            sha256: "a".repeat(64),
            outcome: pb::FileOutcome::Uploaded as i32,
            ..Default::default()
        })),
    };
    let mut req = tonic::Request::new(futures_util::stream::iter([result(0, "x.bin"), result(1, "y.bin")]));
    metadata(req.metadata_mut(), 1, Some(&s1));
    let mut commands = client.report(req).await.unwrap().into_inner();
    while commands.message().await.unwrap().is_some() {}
    let results = shared.results();
    assert!(results.contains_key(&pb::TaskKey::new("y.bin", 0)), "{results:?}");
    assert!(
        !results.contains_key(&pb::TaskKey::new("x.bin", 0)),
        "chunk 1 spoke for chunk 0: {results:?}"
    );
    server.abort();
}

#[test]
fn connections_follow_each_chunks_bytes() {
    let sized = |sizes: &[u64]| -> Vec<pb::FileTask> {
        sizes
            .iter()
            .map(|&size| pb::FileTask {
                size,
                ..Default::default()
            })
            .collect()
    };
    // One chunk of 1.5 GiB, one of 400 MiB, one of 200 MiB, one of a few small files.
    let tasks = vec![
        sized(&[1536 << 20]),
        sized(&[200 << 20, 200 << 20]),
        sized(&[200 << 20]),
        sized(&[4096; 10]),
    ];
    assert_eq!(chunk_streams(&tasks, 8), vec![8, 3, 2, 1]);
    // Equal chunks all get the full count; a chunk of nothing still gets one connection.
    assert_eq!(chunk_streams(&[sized(&[10]), sized(&[10])], 4), vec![4, 4]);
    assert_eq!(chunk_streams(&[sized(&[]), sized(&[0])], 4), vec![1, 1]);
    // A slice counts for its bytes (5 parts of 10), not its file's (1000).
    let mut slice = task("big.bin", 1);
    slice.size = 1000;
    assert_eq!(chunk_streams(&[vec![slice], sized(&[200])], 8), vec![2, 8]);
}
