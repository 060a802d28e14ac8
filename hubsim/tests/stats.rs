//! `GET /_hubsim/stats` against the real binary: requests by class and status, bytes both ways,
//! commits, multipart parts (re-sent ones included), injected faults, and the loopback rule.

mod common;

use std::io::{Read, Write};

use common::testsupport::{ALICE, Hubsim, TempDir, seed};
use common::{batch_upload, client, part_urls, payload, put, resolve_url};
use serde_json::{Value, json};

/// Sum of a `{"status": n}` map.
fn total(codes: &Value) -> u64 {
    codes
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

#[tokio::test]
async fn counts_requests_bytes_and_commits() {
    let data = TempDir::new("hubsim-stats");
    let files = seed(
        data.path(),
        "hf",
        "alice/m1",
        &["--files", "1", "--file-size", "1000", "--lfs-file", "w.bin=3000"],
    );
    let hub = Hubsim::start_in("hf", data, &[]);
    let before = hub.stats();
    assert_eq!(before["requests"]["resolve"], json!({}));
    assert_eq!(before["bytes"], json!({"received": 0, "sent": 0}));
    assert_eq!(before["commits"], 0);

    let http = client();
    let small = files.iter().find(|f| !f.lfs).expect("a regular file");
    let url = resolve_url(&hub.url, "alice/m1", &small.path);
    let full = http.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.bytes().await.unwrap().len() as u64, small.size);
    let part = http.get(&url).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().len(), 100);
    let redirect = http
        .get(resolve_url(&hub.url, "alice/m1", "w.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    let cdn = redirect.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(http.get(&cdn).send().await.unwrap().bytes().await.unwrap().len(), 3000);

    let ndjson = concat!(
        r#"{"key":"header","value":{"summary":"add a file","description":""}}"#,
        "\n",
        r#"{"key":"file","value":{"path":"new.txt","content":"aGVsbG8=","encoding":"base64"}}"#,
        "\n"
    );
    let commit = http
        .post(format!("{}/api/models/alice/m1/commit/main", hub.url))
        .bearer_auth(ALICE)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(commit.status(), 200);
    let commit_answer = commit.bytes().await.unwrap().len() as u64;

    let s = hub.stats();
    assert_eq!(s["requests"]["resolve"], json!({"200": 1, "206": 1, "302": 1}));
    assert_eq!(s["requests"]["download"], json!({"200": 1}));
    assert_eq!(s["requests"]["commit"], json!({"200": 1}));
    assert_eq!(s["commits"], 1);
    let route = &s["bytes_by_route"];
    assert_eq!(route["resolve"]["sent"], small.size + 100);
    assert_eq!(route["download"]["sent"], 3000);
    assert_eq!(
        route["commit"],
        json!({"received": ndjson.len(), "sent": commit_answer})
    );
    assert_eq!(s["bytes"]["received"], ndjson.len());
    assert_eq!(s["bytes"]["sent"], small.size + 100 + 3000 + commit_answer);
    // Reading the stats is not counted.
    let again = hub.stats();
    assert_eq!(again["requests"], s["requests"]);
    assert_eq!(again["bytes"], s["bytes"]);
}

#[tokio::test]
async fn multipart_parts_show_resends() {
    let data = TempDir::new("hubsim-stats-mp");
    seed(data.path(), "hf", "alice/m1", &["--files", "1"]);
    let hub = Hubsim::start_in("hf", data, &["--multipart-threshold", "2KiB", "--part-size", "1KiB"]);
    let object = payload(2500, 1);
    let objects = batch_upload(&hub.url, "alice/m1", ALICE, &[&object]).await;
    let upload = &objects[0]["actions"]["upload"];
    let urls = part_urls(upload);
    assert_eq!(urls.len(), 3);
    let mut etags = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let chunk = object[i * 1024..((i + 1) * 1024).min(object.len())].to_vec();
        let (status, headers, _) = put(url, chunk).await;
        assert_eq!(status, 200);
        etags.push(headers["etag"].to_str().unwrap().to_string());
    }
    // Part 2 again, as a client retrying it would.
    let (status, headers, _) = put(&urls[1], object[1024..2048].to_vec()).await;
    assert_eq!(status, 200);
    etags[1] = headers["etag"].to_str().unwrap().to_string();
    let parts: Vec<Value> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"partNumber": i + 1, "etag": e}))
        .collect();
    let done = client()
        .post(upload["href"].as_str().unwrap())
        .json(&json!({"oid": objects[0]["oid"], "parts": parts}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);

    let s = hub.stats();
    assert_eq!(
        s["multipart"],
        json!({"parts": 4, "part_bytes": 2500 + 1024, "completed": 1})
    );
    assert_eq!(s["requests"]["part"], json!({"200": 4}));
    assert_eq!(s["requests"]["lfs_batch"], json!({"200": 1}));
    assert_eq!(s["requests"]["complete"], json!({"200": 1}));
    assert_eq!(s["commits"], 0);
}

#[tokio::test]
async fn injected_5xx_are_counted() {
    let hub = Hubsim::start("hf", &["--fail-5xx", "1.0"]);
    for _ in 0..3 {
        let resp = client()
            .get(format!("{}/api/whoami-v2", hub.url))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_server_error(), "{}", resp.status());
    }
    let s = hub.stats();
    assert_eq!(s["faults"]["5xx"], 3);
    assert_eq!(s["faults"]["429"], 0);
    assert_eq!(total(&s["requests"]["api"]), 3);
    assert!(
        s["requests"]["api"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| ["500", "502", "503"].contains(&k.as_str()))
    );
}

#[tokio::test]
async fn truncated_downloads_are_counted_with_the_bytes_really_sent() {
    let data = TempDir::new("hubsim-stats-cut");
    let files = seed(
        data.path(),
        "hf",
        "alice/m1",
        &["--files", "1", "--file-size", "200KiB"],
    );
    let hub = Hubsim::start_in("hf", data, &["--truncate", "1.0"]);
    let resp = client()
        .get(resolve_url(&hub.url, "alice/m1", &files[0].path))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "the body is cut short");
    let s = hub.stats();
    assert_eq!(s["faults"]["truncated"], 1);
    assert_eq!(s["requests"]["resolve"], json!({"200": 1}));
    assert!(s["bytes_by_route"]["resolve"]["sent"].as_u64().unwrap() < 200 * 1024);
}

#[tokio::test]
async fn every_flavor_serves_stats() {
    for flavor in ["ms", "git"] {
        let hub = Hubsim::start(flavor, &[]);
        let resp = client()
            .get(format!("{}/no/such/route/here", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{flavor}");
        let s = hub.stats();
        assert_eq!(total(&s["requests"]["unknown"]), 1, "{flavor}: {s}");
        for key in ["bytes", "bytes_by_route", "faults", "refused", "commits", "multipart"] {
            assert!(!s[key].is_null(), "{flavor}: no {key} in {s}");
        }
    }
}

/// This machine's address on its default route, if it has one that is not loopback.
fn outside_address() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the local address of the route.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    ["8.8.8.8:53", "192.0.2.1:9"].iter().find_map(|target| {
        probe.connect(target).ok()?;
        let ip = probe.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

/// Status of a raw `GET /_hubsim/stats` to `host:port`.
fn stats_status(addr: std::net::SocketAddr) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    write!(tcp, "GET /_hubsim/stats HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).unwrap();
    raw.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn stats_are_refused_to_other_peers() {
    let Some(ip) = outside_address() else {
        eprintln!("no non-loopback address on this machine: skipped (is_loopback has unit tests)");
        return;
    };
    let hub = Hubsim::start("hf", &["--bind", "0.0.0.0"]);
    let port: u16 = hub.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(stats_status(std::net::SocketAddr::new(ip, port)), "403");
    assert_eq!(stats_status(([127, 0, 0, 1], port).into()), "200");
}
