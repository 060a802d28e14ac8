//! Tokens go only to the host they were issued for. Each case points a client at a recording
//! server "A" (the hub the token is for) that sends it on to a second recording server "B"
//! (another host) by a `Link` page, a redirect or an LFS action; B must never see the token.

use futures_util::StreamExt;
use hubmigrate_hub::git::GitClient;
use hubmigrate_hub::git::local::{GitAuth, Remote, ls_remote};
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use hubmigrate_testsupport::{Recorder, Reply};
use serde_json::json;

const TOKEN: &str = "hf_token_for_host_a_only";

fn hf(endpoint: &str) -> Hub {
    Hub::new(Platform::Hf, endpoint, Some(Secret::new(TOKEN))).unwrap()
}

fn model(text: &str) -> RepoRef {
    RepoRef::parse(text, RepoType::Model).unwrap()
}

/// B: answers everything with `reply`, recording what reaches it.
fn other_host(reply: fn() -> Reply) -> Recorder {
    Recorder::start(move |_| reply())
}

fn assert_no_token(b: &Recorder) {
    let leaked = b.credentials_seen(TOKEN);
    assert!(leaked.is_empty(), "another host received credentials: {leaked:?}");
}

#[tokio::test]
async fn a_listing_page_on_another_host_is_not_followed() {
    let b = other_host(|| Reply::json(json!([])));
    let next = format!("{}/api/models/acme/m/tree/main?cursor=2", b.url);
    let a = Recorder::start(move |_| {
        Reply::json(json!([{"type": "file", "path": "a.txt", "size": 1, "oid": "x"}]))
            .header("link", &format!("<{next}>; rel=\"next\""))
    });
    let hub = hf(&a.url);
    let err = hub.list(&model("hf:acme/m"), "main").await.unwrap_err().to_string();
    assert!(err.contains("another host"), "{err}");
    assert_eq!(a.seen().len(), 1, "A was asked for its first page only");
    assert!(b.seen().is_empty(), "B was asked for a page: {:?}", b.seen());
}

#[tokio::test]
async fn a_listing_cursor_that_repeats_stops_the_listing() {
    let a = Recorder::start(|seen| {
        // Page 1 links to page 2, which links to page 2 again.
        let next = if seen.path.contains("cursor") {
            seen.path.clone()
        } else {
            format!("{}?cursor=2", seen.path)
        };
        Reply::json(json!([{"type": "file", "path": "a.txt", "size": 1, "oid": "x"}])).header(
            "link",
            &format!("<http://{}{next}>; rel=\"next\"", seen.header("host").unwrap()),
        )
    });
    let hub = hf(&a.url);
    let err = hub.list(&model("hf:acme/m"), "main").await.unwrap_err().to_string();
    assert!(err.contains("repeats"), "{err}");
    assert_eq!(a.seen().len(), 2);
}

#[tokio::test]
async fn a_download_redirected_to_another_host_carries_no_token() {
    let b = other_host(|| Reply::new(200).body(b"hello".to_vec()));
    let cdn = format!("{}/cdn/blob", b.url);
    let a = Recorder::start(move |_| Reply::redirect(302, &cdn));
    let hub = hf(&a.url);
    let body = hub
        .download(&model("hf:acme/m"), "main", "a.txt", None, 0, 5)
        .await
        .unwrap();
    let bytes: Vec<u8> = body.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(bytes, b"hello");
    assert!(
        a.seen()[0].header("authorization").is_some(),
        "A, the hub, gets the token"
    );
    assert_eq!(b.seen().len(), 1, "the CDN served the bytes");
    assert_no_token(&b);
}

/// An LFS file is resolved once: its ranges go straight to where A sent the first, without
/// the token.
#[tokio::test]
async fn an_lfs_file_is_resolved_once_and_its_ranges_go_to_the_cdn_without_the_token() {
    let b = other_host(|| Reply::new(200).body(b"hello".to_vec()));
    let cdn = format!("{}/cdn/blob", b.url);
    let a = Recorder::start(move |_| Reply::redirect(302, &cdn));
    let hub = hf(&a.url);
    let oid = "a".repeat(64);
    for _ in 0..3 {
        let body = hub
            .download(&model("hf:acme/m"), "main", "w.bin", Some((&oid, 5)), 0, 5)
            .await
            .unwrap();
        let bytes: Vec<u8> = body.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(bytes, b"hello");
    }
    assert_eq!(a.seen().len(), 1, "A, the hub, resolved the file once: {:?}", a.seen());
    assert!(a.seen()[0].header("authorization").is_some(), "A gets the token");
    // The resolve's own 1-byte read, then the three ranges.
    assert_eq!(b.seen().len(), 4, "{:?}", b.seen());
    assert_no_token(&b);
}

#[tokio::test]
async fn an_lfs_verify_action_on_another_host_gets_no_token() {
    let b = other_host(|| Reply::new(200));
    let hub = hf("http://127.0.0.1:9");
    hub.verify_upload(&format!("{}/verify", b.url), "ab", 1).await.unwrap();
    assert_eq!(b.seen().len(), 1);
    assert_no_token(&b);

    let a = Recorder::start(|_| Reply::new(200));
    let hub = hf(&a.url);
    hub.verify_upload(&format!("{}/verify", a.url), "ab", 1).await.unwrap();
    assert!(
        a.seen()[0].header("authorization").is_some(),
        "the hub's own verify gets the token"
    );
}

#[tokio::test]
async fn the_gitlab_api_token_does_not_follow_a_redirect_to_another_host() {
    let b = other_host(|| Reply::json(json!({"username": "mallory"})));
    let to_b = format!("{}/api/v4/user", b.url);
    let a = Recorder::start(move |_| Reply::redirect(302, &to_b));
    let git = GitClient::new(&a.url, "oauth2", Some(Secret::new(TOKEN))).unwrap();
    let _ = git.whoami().await;
    assert!(
        a.seen()[0].header("authorization").is_some(),
        "A, the git host, gets the token: {:?}",
        a.seen()
    );
    assert!(!b.seen().is_empty(), "a plain redirect is followed (without the token)");
    assert_no_token(&b);
}

#[tokio::test]
async fn a_credential_in_a_request_body_is_not_resent_to_another_host() {
    for status in [307, 308] {
        let b = other_host(|| Reply::json(json!({})));
        let to_b = format!("{}/api/v4/projects/acme%2Fm", b.url);
        let a = Recorder::start(move |_| Reply::redirect(status, &to_b));
        let git = GitClient::new(&a.url, "oauth2", Some(Secret::new(TOKEN))).unwrap();
        let import = Secret::new(format!("https://oauth2:{TOKEN}@source.example/acme/m.git"));
        let err = git
            .configure_pull_mirror(&model("https://git.example/acme/m.git"), &import)
            .await;
        assert!(err.is_err(), "a {status} to another host is not followed");
        assert_eq!(a.seen().len(), 1);
        assert!(b.seen().is_empty(), "{status}: B received {:?}", b.seen());
    }
}

#[tokio::test]
async fn git_sends_its_token_only_to_the_remote_host() {
    // B answers as a protocol v2 server, so git goes on to POST `ls-refs` to it.
    let b = other_host(|| {
        let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
        let body = format!(
            "{}0000{}{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt("version 2\n"),
            pkt("ls-refs\n"),
            pkt("fetch\n")
        );
        Reply::new(200)
            .header("content-type", "application/x-git-upload-pack-advertisement")
            .body(body.into_bytes())
    });
    let to_b = b.url.clone();
    let a = Recorder::start(move |seen| {
        if seen.header("authorization").is_none() {
            return Reply::new(401).header("www-authenticate", "Basic realm=\"git\"");
        }
        Reply::redirect(302, &format!("{to_b}{}", seen.path))
    });
    let remote = Remote {
        url: format!("{}/acme/m.git", a.url),
        auth: GitAuth {
            username: "oauth2".into(),
            token: Some(Secret::new(TOKEN)),
        },
    };
    let err = ls_remote(&remote).await.unwrap_err().to_string();
    assert!(b.seen().is_empty(), "git followed the redirect: {:?}", b.seen());
    assert!(!err.contains(TOKEN), "{err}");
    assert!(
        a.seen().iter().any(|s| s.header("authorization").is_some()),
        "git authenticated to A: {:?}",
        a.seen()
    );
    assert_no_token(&b);
}
