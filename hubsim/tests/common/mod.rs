//! Shared by hubsim's integration tests: the workspace's test support (which starts the real
//! `hubsim` binary, built by cargo for these tests) and a few requests every test makes.

// testsupport starts hubsim's binary rather than linking hubsim, so hubsim does not depend on
// it; the module is included by path. Each test uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "../../../testsupport/src/lib.rs"]
pub mod testsupport;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Lowercase hex sha256.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `len` bytes of a pattern that differs by `salt`.
pub fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// `{url}/{repo}/resolve/main/{path}`, with the path's segments percent-encoded.
pub fn resolve_url(url: &str, repo: &str, path: &str) -> String {
    let enc: Vec<String> = path
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string())
        .collect();
    format!("{url}/{repo}/resolve/main/{}", enc.join("/"))
}

/// An LFS batch upload request for `objects` (bytes) to HF repo `repo`, offering multipart;
/// returns the response's objects.
pub async fn batch_upload(url: &str, repo: &str, token: &str, objects: &[&[u8]]) -> Vec<Value> {
    let objs: Vec<Value> = objects
        .iter()
        .map(|o| json!({"oid": sha256(o), "size": o.len()}))
        .collect();
    let resp = client()
        .post(format!("{url}/{repo}.git/info/lfs/objects/batch"))
        .bearer_auth(token)
        .header("accept", "application/vnd.git-lfs+json")
        .json(&json!({"operation": "upload", "transfers": ["basic", "multipart"], "objects": objs}))
        .send()
        .await
        .expect("batch");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("batch JSON");
    v["objects"].as_array().expect("objects").clone()
}

/// The part URLs of a multipart upload action, in order.
pub fn part_urls(upload: &Value) -> Vec<String> {
    let header = upload["header"].as_object().expect("multipart header");
    let mut parts: Vec<(&String, &Value)> = header
        .iter()
        .filter(|(k, _)| k.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    parts.sort_by_key(|(k, _)| k.parse::<u32>().unwrap_or(0));
    parts
        .into_iter()
        .map(|(_, v)| v.as_str().expect("part URL").to_string())
        .collect()
}

/// A `PUT` of `body` to a presigned URL: (status, headers, body text).
pub async fn put(url: &str, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = client().put(url).body(body).send().await.expect("PUT");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}
