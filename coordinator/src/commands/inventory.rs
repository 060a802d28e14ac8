//! `migrate-coord inventory`: every repo of one owner (user or organisation) on one hub, with its
//! visibility, file count, total bytes and head commit (id and date), as an aligned table with a
//! totals line or as a JSON array. The owner listing is paged by the hub client; the files of
//! each repo come from its ordinary file listing, a few repos at a time.

use futures_util::StreamExt;
use hubmigrate_hub::hub::{Hub, ListedRepo};
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use serde::Serialize;

use crate::cli::{InventoryArgs, InventoryHub, InventoryType};
use crate::env::Env;
use crate::error::exit;
use crate::flow::resolve::{endpoint, token};
use crate::fmt::bytes;

/// One repo of the inventory.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Row {
    /// `namespace/name`.
    pub id: String,
    /// `model` or `dataset`.
    #[serde(rename = "type")]
    pub repo_type: &'static str,
    /// `public` or `private`.
    pub visibility: &'static str,
    pub files: u64,
    pub bytes: u64,
    /// The head commit of the default branch.
    pub last_commit: Option<String>,
    /// When that commit was made (RFC 3339, UTC), where the hub tells.
    pub last_commit_date: Option<String>,
    /// Why the repo's files could not be listed (the row's numbers are then zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs the command; the exit code: 0 listed (also when the owner has no repos), 1 a hub error,
/// 2 bad input or a refused token.
pub async fn inventory(args: &InventoryArgs, env: &Env) -> i32 {
    let platform = match args.platform {
        InventoryHub::Hf => Platform::Hf,
        InventoryHub::Ms => Platform::Ms,
    };
    if let Err(e) = check_owner(platform, &args.owner) {
        eprintln!("error: {e}");
        return exit::BAD_INPUT;
    }
    let url = endpoint(platform, args.endpoint.as_deref(), None, env);
    let hub = match Hub::new(
        platform,
        &url,
        token(platform, platform.token_var(), env, true).map(|(t, _)| t),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let types: &[RepoType] = match args.repo_type {
        Some(InventoryType::Model) => &[RepoType::Model],
        Some(InventoryType::Dataset) => &[RepoType::Dataset],
        None => &[RepoType::Model, RepoType::Dataset],
    };
    let page_size = args.page_size.map_or(default_page_size(platform), |p| p as usize);
    let mut listed = Vec::new();
    for t in types {
        match hub.list_repos(&args.owner, *t, page_size).await {
            Ok(mut repos) => listed.append(&mut repos),
            Err(e) => {
                eprintln!("error: {e}");
                return if e.is_user_error() || matches!(e.status(), Some(401)) {
                    exit::BAD_INPUT
                } else {
                    exit::FAILURE
                };
            }
        }
    }
    if listed.is_empty() {
        if args.json {
            println!("[]");
        }
        eprintln!("no repos found for {} on {url}", args.owner);
        return exit::OK;
    }
    tracing::info!(owner = %args.owner, repos = listed.len(), "listing the files of every repo");
    let mut rows: Vec<Row> = futures_util::stream::iter(listed)
        .map(|l| row(&hub, l))
        .buffer_unordered(args.concurrency as usize)
        .collect()
        .await;
    rows.sort_by(|a, b| (a.repo_type, &a.id).cmp(&(b.repo_type, &b.id)));
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        }
    } else {
        print!("{}", table(&rows));
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    for r in &failed {
        eprintln!("error: {}: {}", r.id, r.error.as_deref().unwrap_or_default());
    }
    if failed.is_empty() { exit::OK } else { exit::FAILURE }
}

/// Repos per listing request: huggingface.js asks the Hub for 500; ModelScope's listings
/// take at most 50.
fn default_page_size(platform: Platform) -> usize {
    match platform {
        Platform::Ms => 50,
        _ => 500,
    }
}

/// An owner is one namespace segment, by the same rule as repo ids.
fn check_owner(platform: Platform, owner: &str) -> Result<(), String> {
    let probe = RepoRef::parse(&format!("{}:{owner}/x", platform.as_str()), RepoType::Model);
    match probe {
        Ok(r) if r.namespace == owner && !r.explicit_type => Ok(()),
        _ => Err(format!(
            "invalid owner name {owner:?}: a user or organisation name has letters, digits, '.', '_' and '-'"
        )),
    }
}

/// The inventory row of one repo: its files at the default branch's head, and that commit's date.
async fn row(hub: &Hub, listed: ListedRepo) -> Row {
    let repo = &listed.repo;
    let mut row = Row {
        id: repo.id(),
        repo_type: repo.repo_type.as_str(),
        visibility: if listed.private { "private" } else { "public" },
        files: 0,
        bytes: 0,
        last_commit: None,
        last_commit_date: None,
        error: None,
    };
    let manifest = match hub.manifest(repo, None).await {
        Ok(m) => m,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    row.files = manifest.files.len() as u64;
    row.bytes = manifest.files.iter().map(|f| f.size).sum();
    row.last_commit_date = match hub.head_time(repo, &manifest.commit).await {
        Ok(t) => t.and_then(rfc3339),
        Err(e) => {
            tracing::warn!(repo = %repo, error = %e, "the head commit's date is unknown");
            None
        }
    };
    row.last_commit = Some(manifest.commit);
    row
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-23T08:00:00Z`).
fn rfc3339(secs: i64) -> Option<String> {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_string())
}

/// The text table: one aligned line per repo, then (after a blank line) the totals.
fn table(rows: &[Row]) -> String {
    use crate::fmt::Align::{Left, Right};
    let header = ["ID", "TYPE", "VISIBILITY", "FILES", "SIZE", "LAST COMMIT", "DATE"];
    let mut lines: Vec<[String; 7]> = Vec::new();
    for r in rows {
        let commit = match (&r.error, &r.last_commit) {
            (Some(_), _) => "(error)".to_string(),
            (None, Some(c)) => c.chars().take(12).collect(),
            (None, None) => "-".to_string(),
        };
        lines.push([
            r.id.clone(),
            r.repo_type.to_string(),
            r.visibility.to_string(),
            r.files.to_string(),
            bytes(r.bytes),
            commit,
            r.last_commit_date.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let private = rows.iter().filter(|r| r.visibility == "private").count();
    let files: u64 = rows.iter().map(|r| r.files).sum();
    let total: u64 = rows.iter().map(|r| r.bytes).sum();
    lines.push([
        format!("TOTAL: {} repos ({private} private)", rows.len()),
        String::new(),
        String::new(),
        files.to_string(),
        bytes(total),
        String::new(),
        String::new(),
    ]);
    // Numbers align right, text left.
    let text = crate::fmt::table(header, &lines, &[Left, Left, Left, Right, Right, Left, Left]);
    let body = text.trim_end_matches('\n');
    match body.rsplit_once('\n') {
        Some((rows, totals)) => format!("{rows}\n\n{totals}\n"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, private: bool, files: u64, size: u64) -> Row {
        Row {
            id: id.into(),
            repo_type: "model",
            visibility: if private { "private" } else { "public" },
            files,
            bytes: size,
            last_commit: Some("0123456789abcdef0123".into()),
            last_commit_date: Some("2026-11-23T08:00:00Z".into()),
            error: None,
        }
    }

    #[test]
    fn owners() {
        assert!(check_owner(Platform::Hf, "acme").is_ok());
        assert!(check_owner(Platform::Ms, "my-org.v2_x").is_ok());
        for bad in ["", "a/b", "bad name", "../x", "datasets/acme", "-x", "ü"] {
            assert!(check_owner(Platform::Hf, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn table_is_aligned_with_totals() {
        let t = table(&[row("acme/a", false, 3, 2048), row("acme/longer-name", true, 12, 5)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("ID") && lines[0].contains("VISIBILITY"));
        let col = lines[0].find("TYPE").unwrap();
        assert_eq!(lines[1].find("model"), Some(col), "{t}");
        assert_eq!(lines[2].find("model"), Some(col), "{t}");
        assert!(lines[1].contains("0123456789ab  2026-11-23T08:00:00Z"), "{t}");
        assert!(
            lines[4].starts_with("TOTAL: 2 repos (1 private)") && lines[4].contains("15"),
            "{t}"
        );
        assert!(lines[4].contains("2.0 KiB"), "{t}");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(1_795_420_800).as_deref(), Some("2026-11-23T08:00:00Z"));
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
    }
}
