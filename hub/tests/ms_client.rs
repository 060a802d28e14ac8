//! The ModelScope client against a real `hubsim --flavor ms` (build it first:
//! `cargo build -p hubsim`).

use bytes::Bytes;
use futures_util::StreamExt;
use hubmigrate_hub::error::Error;
use hubmigrate_hub::hashing::ByteStream;
use hubmigrate_hub::hub::{CommitFile, UploadAction};
use hubmigrate_hub::manifest::FileEntry;
use hubmigrate_hub::ms::MsClient;
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{RepoRef, RepoType};
use hubmigrate_testsupport::{ALICE, BOB, CAROL, Hubsim, TempDir, seed};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(hub: &Hubsim, token: &str) -> MsClient {
    MsClient::new(&hub.url, Some(Secret::new(token))).unwrap()
}

fn model(id: &str) -> RepoRef {
    RepoRef::parse(&format!("ms:{id}"), RepoType::Model).unwrap()
}

fn dataset(id: &str) -> RepoRef {
    RepoRef::parse(&format!("ms:{id}"), RepoType::Dataset).unwrap()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn once(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(data)) }))
}

async fn collect(s: ByteStream) -> Vec<u8> {
    s.map(|c| c.unwrap().to_vec()).concat().await
}

/// Deterministic binary content.
fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn find<'a>(files: &'a [FileEntry], path: &str) -> &'a FileEntry {
    files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} not listed"))
}

#[tokio::test]
async fn whoami_and_tokens() {
    let hub = Hubsim::start("ms", &[]);
    let me = client(&hub, ALICE).whoami().await.unwrap();
    assert_eq!(me.name, "alice");
    assert!(me.can_write);
    assert_eq!(client(&hub, CAROL).whoami().await.unwrap().name, "carol");

    let bad = "ms-not-a-valid-token";
    match client(&hub, bad).whoami().await {
        Err(Error::Auth(m)) => {
            assert!(m.contains("/openapi/v1/users/me"), "{m}");
            assert!(!m.contains(bad) && !m.contains('\n'), "{m}");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    match MsClient::new(&hub.url, None).unwrap().whoami().await {
        Err(Error::Auth(m)) => assert!(m.contains("MODELSCOPE_TOKEN"), "{m}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_repos_and_permissions() {
    let hub = Hubsim::start("ms", &[]);
    let alice = client(&hub, ALICE);
    for (repo, private) in [
        (model("alice/pub-model"), false),
        (model("alice/priv-model"), true),
        (dataset("alice/pub-ds"), false),
        (dataset("alice/priv-ds"), true),
        (model("acme/org-model"), true),
    ] {
        assert_eq!(alice.repo_state(&repo).await.unwrap(), None, "{repo}");
        assert!(alice.create_repo(&repo, private, None).await.unwrap(), "{repo}");
        assert!(!alice.create_repo(&repo, private, None).await.unwrap(), "{repo}");
        // The second create does not change visibility.
        assert!(!alice.create_repo(&repo, !private, None).await.unwrap(), "{repo}");
        let st = alice.repo_state(&repo).await.unwrap().expect("exists");
        assert_eq!(st.private, private, "{repo}");
        let m = alice.manifest(&repo, None).await.unwrap();
        assert_eq!(m.private, private);
        // A new repo holds .gitattributes, and a model ModelScope's template card too.
        let mut made: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        made.sort();
        let expected: &[&str] = if repo.repo_type == RepoType::Model {
            &[".gitattributes", "README.md"]
        } else {
            &[".gitattributes"]
        };
        assert_eq!(made, expected, "{repo}");
    }
    // Private repos are invisible to others; public ones are not.
    let bob = client(&hub, BOB);
    assert_eq!(bob.repo_state(&model("alice/priv-model")).await.unwrap(), None);
    assert!(!bob.repo_state(&dataset("alice/pub-ds")).await.unwrap().unwrap().private);
    match bob.manifest(&model("alice/priv-model"), None).await {
        Err(Error::Input(m)) => assert!(m.contains("not found"), "{m}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    // Bob may not create in alice's namespace, nor carol (read-only) in her own.
    for (c, repo) in [
        (&bob, model("alice/bobs")),
        (&bob, dataset("alice/bobs-ds")),
        (&client(&hub, CAROL), model("carol/mine")),
    ] {
        match c.create_repo(&repo, false, None).await {
            Err(Error::Auth(m)) => {
                assert!(!m.contains(BOB) && !m.contains(CAROL), "{m}");
            }
            other => panic!("expected an auth error for {repo}, got {other:?}"),
        }
    }
    // Bob cannot write into alice's repo either.
    let objs = [(sha(b"x"), 1)];
    assert!(matches!(
        bob.prepare_uploads(&model("alice/pub-model"), "master", &objs).await,
        Err(Error::Auth(_))
    ));
    let f = [CommitFile::Inline {
        path: "x".into(),
        content: b"x".to_vec(),
    }];
    assert!(matches!(
        bob.commit(&model("alice/pub-model"), "master", "m", &f).await,
        Err(Error::Auth(_))
    ));
    // Studios have no file API.
    let studio = RepoRef {
        repo_type: RepoType::Space,
        ..model("alice/s")
    };
    assert!(matches!(
        alice.create_repo(&studio, false, None).await,
        Err(Error::Input(_))
    ));
}

/// Uploads `lfs` through the batch API and commits them with `inline`; returns the commit.
async fn upload(c: &MsClient, repo: &RepoRef, inline: &[(&str, Vec<u8>)], lfs: &[(&str, Vec<u8>)]) -> String {
    let objects: Vec<(String, u64)> = lfs.iter().map(|(_, d)| (sha(d), d.len() as u64)).collect();
    let actions = c.prepare_uploads(repo, "master", &objects).await.unwrap();
    assert_eq!(actions.len(), lfs.len());
    for ((_, d), a) in lfs.iter().zip(actions) {
        match a {
            UploadAction::Basic { href, verify, .. } => {
                assert!(verify.is_none());
                assert_eq!(c.put(&href, d.len() as u64, once(d.clone())).await.unwrap(), None);
                c.verify_upload(&href, &sha(d), d.len() as u64).await.unwrap();
            }
            UploadAction::Present => {}
            other => panic!("unexpected action {other:?}"),
        }
    }
    // Everything is stored now.
    let again = c.prepare_uploads(repo, "master", &objects).await.unwrap();
    assert!(again.iter().all(|a| *a == UploadAction::Present));
    let mut files: Vec<CommitFile> = inline
        .iter()
        .map(|(p, d)| CommitFile::Inline {
            path: (*p).into(),
            content: d.clone(),
        })
        .collect();
    files.extend(lfs.iter().map(|(p, d)| CommitFile::Lfs {
        path: (*p).into(),
        sha256: sha(d),
        size: d.len() as u64,
    }));
    c.commit(repo, "master", "migrate", &files).await.unwrap()
}

#[tokio::test]
async fn upload_list_and_download() {
    let hub = Hubsim::start("ms", &[]);
    let alice = client(&hub, ALICE);
    let inline: Vec<(&str, Vec<u8>)> = vec![
        ("README.md", b"# hello\n".to_vec()),
        ("dir with space/ünï [1]+&=%.txt", content(5000, 1)),
        ("empty.txt", Vec::new()),
    ];
    let lfs: Vec<(&str, Vec<u8>)> = vec![
        ("weights/mödel 1.bin", content(1_500_000, 2)),
        ("weights/small.safetensors", content(70_000, 3)),
    ];
    for repo in [model("alice/up"), dataset("alice/up-ds")] {
        assert!(alice.create_repo(&repo, true, None).await.unwrap());
        let commit = upload(&alice, &repo, &inline, &lfs).await;
        assert_eq!(commit.len(), 40, "{commit}");

        let m = alice.manifest(&repo, None).await.unwrap();
        assert_eq!(m.commit, commit);
        assert!(m.private);
        assert_eq!(m.files.len(), inline.len() + lfs.len() + 1);
        find(&m.files, ".gitattributes");
        for (p, d) in &inline {
            let f = find(&m.files, p);
            assert_eq!(
                (f.size, f.lfs, f.sha256.as_deref()),
                (d.len() as u64, false, Some(sha(d).as_str())),
                "{p}"
            );
        }
        for (p, d) in &lfs {
            let f = find(&m.files, p);
            assert_eq!(
                (f.size, f.lfs, f.sha256.as_deref()),
                (d.len() as u64, true, Some(sha(d).as_str())),
                "{p}"
            );
        }
        // Same listing by commit id and by branch.
        let by_branch = alice.manifest(&repo, Some("master")).await.unwrap();
        assert_eq!(by_branch.commit, commit);
        let mut a = alice.list(&repo, &commit).await.unwrap();
        let mut b = by_branch.files.clone();
        a.sort_by(|x, y| x.path.cmp(&y.path));
        b.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(a, b);

        // Ranged downloads: an LFS file (redirected to the CDN, 206) and a regular file
        // (served whole, Range ignored).
        for (p, d) in [&lfs[0], &inline[1]] {
            for (off, len) in [(0, d.len()), (1, 10), (4000, 999), (d.len() - 7, 7)] {
                let got = collect(alice.download(&repo, &commit, p, off as u64, len as u64).await.unwrap()).await;
                assert_eq!(got, d[off..off + len], "{p} {off}+{len}");
            }
            assert!(
                collect(alice.download(&repo, &commit, p, 3, 0).await.unwrap())
                    .await
                    .is_empty()
            );
        }
        // A missing file is an error, not an empty stream.
        assert!(alice.download(&repo, &commit, "nope.txt", 0, 1).await.is_err());
        // Committing nothing returns the head.
        assert_eq!(alice.commit(&repo, "master", "nothing", &[]).await.unwrap(), commit);
    }
    // A second repo reusing the objects: they are stored globally already.
    let other = model("alice/up2");
    alice.create_repo(&other, false, None).await.unwrap();
    let objects: Vec<(String, u64)> = lfs.iter().map(|(_, d)| (sha(d), d.len() as u64)).collect();
    let actions = alice.prepare_uploads(&other, "master", &objects).await.unwrap();
    assert!(actions.iter().all(|a| *a == UploadAction::Present));
    assert!(alice.complete_multipart("http://x/", &objects[0].0, &[]).await.is_err());
    // Unknown revision / repo: input errors.
    assert!(matches!(
        alice.manifest(&model("alice/up"), Some("no-such-branch")).await,
        Err(Error::Input(_))
    ));
    assert!(matches!(
        alice.manifest(&model("alice/nothing-here"), None).await,
        Err(Error::Input(_))
    ));
}

#[tokio::test]
async fn listings_past_the_truncation_and_pages() {
    let data = TempDir::new("ms-many");
    let many = seed(data.path(), "ms", "alice/many", &["--files", "3100"]);
    let ds = seed(
        data.path(),
        "ms",
        "alice/many-ds",
        &[
            "--repo-type",
            "dataset",
            "--files",
            "450",
            "--lfs-files",
            "3",
            "--lfs-size",
            "10KiB",
        ],
    );
    let hub = Hubsim::start_in("ms", data, &[]);
    let alice = client(&hub, ALICE);
    for (repo, seeded) in [(model("alice/many"), &many), (dataset("alice/many-ds"), &ds)] {
        let m = alice.manifest(&repo, None).await.unwrap();
        let mut got: Vec<(String, u64, String, bool)> = m
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size, f.sha256.clone().unwrap(), f.lfs))
            .collect();
        let mut want: Vec<(String, u64, String, bool)> = seeded
            .iter()
            .map(|f| (f.path.clone(), f.size, f.sha256.clone(), f.lfs))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "{repo}");
        assert_eq!(got, want, "{repo}");
    }
    assert_eq!(many.len(), 3101);
    assert_eq!(ds.len(), 454);
}

#[tokio::test]
async fn large_commit_goes_in_batches() {
    let hub = Hubsim::start("ms", &[]);
    let alice = client(&hub, ALICE);
    let repo = model("alice/batched");
    alice.create_repo(&repo, false, None).await.unwrap();
    let files: Vec<CommitFile> = (0..600)
        .map(|i| CommitFile::Inline {
            path: format!("d{}/f-{i}.txt", i % 7),
            content: format!("file {i}\n").into_bytes(),
        })
        .collect();
    let commit = alice.commit(&repo, "master", "many files", &files).await.unwrap();
    let listed = alice.list(&repo, &commit).await.unwrap();
    assert_eq!(listed.len(), 600 + 2, "the files, .gitattributes and the template card");
    for f in &files {
        let CommitFile::Inline { path, content } = f else {
            unreachable!()
        };
        let e = find(&listed, path);
        assert_eq!(e.size, content.len() as u64);
        assert_eq!(e.sha256.as_deref(), Some(sha(content).as_str()));
    }
    // Three commits, in order, on top of the initial one.
    let url = format!(
        "{}/api/v1/models/alice/batched/commits?Ref=master&PageNumber=1&PageSize=10",
        hub.url
    );
    let v: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = v["Data"]["Commit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles[..3],
        [
            "many files (batch 3/3)",
            "many files (batch 2/3)",
            "many files (batch 1/3)"
        ]
    );
    assert_eq!(v["Data"]["Commit"][0]["Id"].as_str(), Some(commit.as_str()));
    assert_eq!(titles.len(), 4);
}

/// A one-request HTTP server that records the request head it got.
async fn spy() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "body cut");
            buf.extend_from_slice(&chunk[..n]);
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        head
    });
    (url, task)
}

#[tokio::test]
async fn credentials_only_go_to_the_endpoint_host() {
    // A presigned href on another origin gets no credentials.
    let hub = Hubsim::start("ms", &[]);
    let alice = client(&hub, ALICE);
    let (foreign, task) = spy().await;
    alice
        .put(&format!("{foreign}/upload/x?sig=1"), 3, once(b"abc".to_vec()))
        .await
        .unwrap();
    let head = task.await.unwrap();
    assert!(head.starts_with("put /upload/x?sig=1 "), "{head}");
    assert!(head.contains("content-length: 3"), "{head}");
    assert!(!head.contains("authorization") && !head.contains("cookie"), "{head}");
    assert!(!head.contains(&ALICE.to_ascii_lowercase()), "{head}");

    // The endpoint's own host gets both forms.
    let (own, task) = spy().await;
    let c = MsClient::new(&own, Some(Secret::new(ALICE))).unwrap();
    c.put(&format!("{own}/lfs/x"), 3, once(b"abc".to_vec())).await.unwrap();
    let head = task.await.unwrap();
    let t = ALICE.to_ascii_lowercase();
    assert!(head.contains(&format!("authorization: bearer {t}")), "{head}");
    assert!(head.contains(&format!("cookie: m_session_id={t}")), "{head}");
}

#[tokio::test]
async fn survives_injected_faults() {
    let data = TempDir::new("ms-faults");
    let many = seed(data.path(), "ms", "alice/many", &["--files", "3100"]);
    let hub = Hubsim::start_in("ms", data, &["--fail-5xx", "0.15", "--fail-429", "0.05"]);
    let alice = client(&hub, ALICE);
    let m = alice.manifest(&model("alice/many"), None).await.unwrap();
    assert_eq!(m.files.len(), many.len());
    let repo = model("alice/flaky");
    assert!(alice.create_repo(&repo, false, None).await.unwrap());
    let files: Vec<CommitFile> = (0..600)
        .map(|i| CommitFile::Inline {
            path: format!("f-{i}.txt"),
            content: vec![b'a' + (i % 26) as u8; i],
        })
        .collect();
    let commit = alice.commit(&repo, "master", "flaky", &files).await.unwrap();
    assert_eq!(alice.list(&repo, &commit).await.unwrap().len(), 600 + 2);
}

#[tokio::test]
async fn refused_listings_keep_their_status() {
    // An API that refuses listings (an org locked by its storage quota) must surface as HTTP
    // 403, so that callers can fall back to git.
    let data = TempDir::new("ms-403");
    seed(data.path(), "ms", "alice/locked", &["--files", "3"]);
    let hub = Hubsim::start_in("ms", data, &["--api-403"]);
    let err = client(&hub, ALICE)
        .manifest(&model("alice/locked"), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert!(!err.to_string().contains('\n'));
}
