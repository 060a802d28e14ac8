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
