//! `--url-ttl` against the real binary: presigned upload, part and download URLs work within
//! their lifetime and get S3's 403 "Request has expired" after it, each refusal counted; the
//! batch API's `expires_at` says when they die.

mod common;

use std::time::Duration;

use common::testsupport::{ALICE, Hubsim, TempDir, seed};
use common::{batch_upload, client, part_urls, payload, put, resolve_url};
use serde_json::json;

/// The `exp` query parameter of a presigned URL.
fn exp_of(url: &str) -> u64 {
    let q = url.split_once('?').expect("query").1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("exp="))
        .expect("exp")
        .parse()
        .expect("numeric exp")
}

fn assert_expired(status: u16, headers: &reqwest::header::HeaderMap, body: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["content-type"], "application/xml");
    assert!(
        body.contains("<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{body}"
    );
    assert!(body.contains("<X-Amz-Expires>1</X-Amz-Expires>"), "{body}");
}

#[tokio::test]
async fn urls_work_within_the_ttl_and_are_refused_after_it() {
    let data = TempDir::new("hubsim-ttl");
    seed(data.path(), "hf", "alice/m1", &["--lfs-file", "w.bin=3000"]);
    let hub = Hubsim::start_in(
        "hf",
        data,
        &[
            "--url-ttl",
            "1s",
            "--multipart-threshold",
            "2KiB",
            "--part-size",
            "1KiB",
        ],
    );
    let (early, late, big) = (payload(100, 1), payload(100, 2), payload(2500, 3));
    let objects = batch_upload(&hub.url, "alice/m1", ALICE, &[&early, &late, &big]).await;
    let href = |i: usize| objects[i]["actions"]["upload"]["href"].as_str().unwrap().to_string();
    let parts = part_urls(&objects[2]["actions"]["upload"]);
    let cdn = client()
        .get(resolve_url(&hub.url, "alice/m1", "w.bin"))
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();

    // expires_at is the expiry the URLs carry, one TTL from now.
    let exp = exp_of(&href(0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now..=now + 2).contains(&exp), "exp {exp}, now {now}");
    for o in &objects {
        assert_eq!(o["actions"]["upload"]["expires_at"], hubsim::util::iso8601(exp));
    }
    assert!(parts.iter().all(|p| exp_of(p) == exp));

    // Within the TTL.
    assert_eq!(put(&href(0), early).await.0, 200);
    assert_eq!(put(&parts[0], big[..1024].to_vec()).await.0, 200);
    let got = client().get(&cdn).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().len(), 3000);

    // After it (URLs live at most TTL + 1 s).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, headers, body) = put(&href(1), late).await;
    assert_expired(status, &headers, &body);
    let (status, headers, body) = put(&parts[1], big[1024..2048].to_vec()).await;
    assert_expired(status, &headers, &body);
    let resp = client().get(&cdn).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    assert_expired(status, &headers, &resp.text().await.unwrap());
    let done = client()
        .post(href(2))
        .json(&json!({"oid": objects[2]["oid"], "parts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 403);
    assert!(done.text().await.unwrap().contains("Request has expired"));

    let s = hub.stats();
    assert_eq!(s["refused"], json!({"expired_url": 4, "bad_signature": 0}));
    assert_eq!(s["requests"]["upload"], json!({"200": 1, "403": 1}));
    assert_eq!(s["requests"]["part"], json!({"200": 1, "403": 1}));
    assert_eq!(s["requests"]["download"], json!({"200": 1, "403": 1}));
    assert_eq!(s["requests"]["complete"], json!({"403": 1}));
    assert_eq!(s["multipart"]["parts"], 1);
}

#[tokio::test]
async fn forged_signatures_are_not_expired_urls() {
    let data = TempDir::new("hubsim-ttl-sig");
    seed(data.path(), "hf", "alice/m1", &["--files", "1"]);
    let hub = Hubsim::start_in("hf", data, &[]);
    let object = payload(100, 4);
    let objects = batch_upload(&hub.url, "alice/m1", ALICE, &[&object]).await;
    let upload = &objects[0]["actions"]["upload"];
    let href = upload["href"].as_str().unwrap();
    // The default lifetime is a day, and expires_at says so.
    let exp = exp_of(href);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 86_390..=now + 86_401).contains(&exp), "exp {exp}, now {now}");
    assert_eq!(upload["expires_at"], hubsim::util::iso8601(exp));
    // Pushing the expiry out breaks the signature.
    let forged = href.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    let (status, headers, body) = put(&forged, object.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(headers["content-type"], "application/xml");
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");
    assert_eq!(put(href, object).await.0, 200);
    let s = hub.stats();
    assert_eq!(s["refused"], json!({"expired_url": 0, "bad_signature": 1}));
}
