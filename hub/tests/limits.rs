//! What a hub answers is read into memory only up to a cap: a recording server answers with
//! more than that and the client refuses it instead of holding it.

use hubmigrate_hub::http::MAX_BODY;
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use hubmigrate_testsupport::{Recorder, Reply};

#[tokio::test]
async fn a_listing_page_larger_than_the_cap_is_refused() {
    // A valid JSON array, one byte past the cap.
    let mut page = vec![b' '; MAX_BODY + 1];
    page[0] = b'[';
    page[MAX_BODY] = b']';
    let page = std::sync::Arc::new(page);
    let hub = Recorder::start(move |_| {
        Reply::new(200)
            .header("content-type", "application/json")
            .body(page.to_vec())
    });
    let hf = Hub::new(Platform::Hf, &hub.url, Some(Secret::new("t"))).unwrap();
    let repo = RepoRef::parse("hf:acme/m", RepoType::Model).unwrap();
    let err = hf.list(&repo, "main").await.unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");

    // The same page within the cap is read.
    let ok = Recorder::start(|_| Reply::json(serde_json::json!([])));
    let hf = Hub::new(Platform::Hf, &ok.url, Some(Secret::new("t"))).unwrap();
    assert!(hf.list(&repo, "main").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_error_answer_of_any_size_gives_a_short_message() {
    let hub = Recorder::start(|_| Reply::new(400).body(vec![b'x'; 8 << 20]));
    let hf = Hub::new(Platform::Hf, &hub.url, Some(Secret::new("t"))).unwrap();
    let repo = RepoRef::parse("hf:acme/m", RepoType::Model).unwrap();
    let err = hf.list(&repo, "main").await.unwrap_err().to_string();
    assert!(err.contains("400") && err.len() < 4096, "{} bytes", err.len());
}

/// An answer whose headers come at once but whose body trickles in (one byte every 100 ms, so
/// the read timeout never fires) ends at the deadline with an error that says so.
#[tokio::test]
async fn a_trickling_answer_ends_at_its_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/x", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..1000 {
            if sock.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let resp = reqwest::get(&url).await.unwrap();
    let started = std::time::Instant::now();
    let err = hubmigrate_hub::http::body_capped_within("reading x", resp, MAX_BODY, std::time::Duration::from_secs(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out") && err.contains("reading x"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    server.abort();
}
