//! End to end: `migrate-coord inventory` against hubsim, both flavors: an organisation with public
//! and private models and datasets of known sizes; what another user's token sees; listings read
//! across several pages; an owner with no repos, an invalid owner, a refused token and an
//! unreachable hub.

mod common;
use common::*;
use serde_json::Value;

/// One seeded repo: (id, type, private, files, bytes).
type Expected = (String, &'static str, bool, u64, u64);

/// Seeds acme's five repos (plus one of alice's own, which acme's inventory must not show) and
/// starts the hub.
fn acme(flavor: &str) -> (Hubsim, Vec<Expected>) {
    let data = TempDir::new(&format!("inventory-{flavor}"));
    let repos: [(&str, &str, bool, &[&str]); 5] = [
        (
            "acme/m-public",
            "model",
            false,
            &["--files", "3", "--lfs-files", "1", "--lfs-size", "100KiB"],
        ),
        (
            "acme/m-private",
            "model",
            true,
            &["--files", "2", "--lfs-file", "w/x.bin=50KiB"],
        ),
        ("acme/m-third", "model", false, &["--files", "1", "--file-size", "10"]),
        ("acme/d-public", "dataset", false, &["--files", "4"]),
        (
            "acme/d-private",
            "dataset",
            true,
            &["--lfs-files", "2", "--lfs-size", "200KiB"],
        ),
    ];
    let mut expected = Vec::new();
    for (id, kind, private, extra) in repos {
        let mut args = vec!["--repo-type", kind];
        args.extend_from_slice(extra);
        if private {
            args.push("--private");
        }
        let files = seed(data.path(), flavor, id, &args);
        let bytes = files.iter().map(|f| f.size).sum();
        expected.push((id.to_string(), kind, private, files.len() as u64, bytes));
    }
    seed(data.path(), flavor, "alice/own", &["--files", "1"]);
    expected.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    (Hubsim::start_in(flavor, data, &[]), expected)
}

fn token_var(flavor: &str) -> &'static str {
    if flavor == "ms" { "MODELSCOPE_TOKEN" } else { "HF_TOKEN" }
}

fn inventory(hub: &Hubsim, owner: &str, token: Option<&str>, extra: &[&str]) -> Run {
    let mut args = vec![
        "inventory",
        "--platform",
        &hub.flavor,
        "--owner",
        owner,
        "--endpoint",
        &hub.url,
    ];
    args.extend_from_slice(extra);
    let env: Vec<(&str, &str)> = token.map(|t| (token_var(&hub.flavor), t)).into_iter().collect();
    let run = coord(&args, &env);
    for (_, t, _) in USERS {
        assert!(!run.output().contains(t), "a token was printed:\n{}", run.output());
    }
    run
}

/// The JSON rows as `Expected` tuples, after checking the commit fields.
fn rows(run: &Run) -> Vec<Expected> {
    assert_code(run, 0);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| {
            let commit = r["last_commit"].as_str().unwrap_or_default();
            assert!(
                commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{r}"
            );
            let date = r["last_commit_date"].as_str().unwrap_or_default();
            assert!(date.len() == 20 && date.ends_with('Z') && date.starts_with("20"), "{r}");
            let kind = if r["type"] == "model" { "model" } else { "dataset" };
            let private = match r["visibility"].as_str() {
                Some("private") => true,
                Some("public") => false,
                other => panic!("visibility {other:?}"),
            };
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                kind,
                private,
                r["files"].as_u64().unwrap_or(0),
                r["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn counts_sizes_privacy_and_paging(flavor: &str) {
    let (hub, expected) = acme(flavor);
    let all = inventory(&hub, "acme", Some(ALICE), &["--json"]);
    assert_eq!(rows(&all), expected, "{}", all.output());

    // Three models and two datasets, two per page: the listings take two pages and one.
    let paged = inventory(&hub, "acme", Some(ALICE), &["--json", "--page-size", "2"]);
    assert_eq!(rows(&paged), expected);
    let one = inventory(&hub, "acme", Some(ALICE), &["--json", "--page-size", "1"]);
    assert_eq!(rows(&one), expected);

    let public: Vec<Expected> = expected.iter().filter(|e| !e.2).cloned().collect();
    let bob = inventory(&hub, "acme", Some(BOB), &["--json", "--page-size", "2"]);
    assert_eq!(rows(&bob), public, "another user's token sees public repos only");
    let anonymous = inventory(&hub, "acme", None, &["--json"]);
    assert_eq!(rows(&anonymous), public);

    let datasets = inventory(&hub, "acme", Some(ALICE), &["--json", "--repo-type", "dataset"]);
    let only: Vec<Expected> = expected.iter().filter(|e| e.1 == "dataset").cloned().collect();
    assert_eq!(rows(&datasets), only);

    let text = inventory(&hub, "acme", Some(ALICE), &[]);
    assert_code(&text, 0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("VISIBILITY"),
        "{}",
        text.stdout
    );
    let type_col = lines[0].find("TYPE").unwrap();
    for l in &lines[1..6] {
        assert!(
            l.starts_with("acme/") && l[type_col..].starts_with(['m', 'd']),
            "{}",
            text.stdout
        );
    }
    let files: u64 = expected.iter().map(|e| e.3).sum();
    let total = lines.last().unwrap();
    assert!(total.starts_with("TOTAL: 5 repos (2 private)"), "{}", text.stdout);
    assert!(
        total.split_whitespace().any(|w| w == files.to_string()),
        "{}",
        text.stdout
    );
}

#[test]
fn hf_inventory_counts_sizes_privacy_and_paging() {
    counts_sizes_privacy_and_paging("hf");
}

#[test]
fn ms_inventory_counts_sizes_privacy_and_paging() {
    counts_sizes_privacy_and_paging("ms");
}

#[test]
fn empty_and_invalid_owners_refused_tokens_and_dead_hubs() {
    for flavor in ["hf", "ms"] {
        let hub = Hubsim::start(flavor, &[]);
        let empty = inventory(&hub, "bob", Some(BOB), &[]);
        assert_code(&empty, 0);
        assert!(
            empty.stderr.contains(&format!("no repos found for bob on {}", hub.url)),
            "{}",
            empty.output()
        );
        let json = inventory(&hub, "bob", Some(BOB), &["--json"]);
        assert_code(&json, 0);
        assert_eq!(json.stdout.trim(), "[]");

        for bad in ["bad owner", "a/b", "../etc", ""] {
            let run = inventory(&hub, bad, Some(BOB), &[]);
            assert_code(&run, 2);
            assert!(run.stderr.contains("invalid owner name"), "{}", run.output());
        }

        let refused = inventory(&hub, "acme", Some("hf_not_a_token"), &[]);
        assert_code(&refused, 2);
        assert!(!refused.output().contains("hf_not_a_token"), "{}", refused.output());
    }

    let unknown = coord(&["inventory", "--platform", "gitlab", "--owner", "acme"], &[]);
    assert_code(&unknown, 2);

    let dead = {
        let hub = Hubsim::start("hf", &[]);
        hub.url.clone()
    };
    let down = coord(
        &["inventory", "--platform", "hf", "--owner", "acme", "--endpoint", &dead],
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&down, 1);
    assert!(down.stderr.contains("listing the repos of acme"), "{}", down.output());
}
