//! NDJSON commits to the Hub, sized to its limits (crate::commits): the adaptive series of
//! commits and the lines each one carries.

use base64::Engine;
use serde_json::{Value, json};

use super::HfClient;
use crate::commits::{COMMIT_START, batch_end, is_timeout, next_size};
use crate::error::{Error, Result};
use crate::http::enc;
use crate::reporef::RepoRef;
use crate::types::CommitFile;

impl HfClient {
    /// Writes `files` to `branch` in as few commits as the Hub's limits allow; returns the last
    /// commit id. The Hub times a commit out after 60 s and recommends 50-100 files a commit, so
    /// like huggingface_hub's uploader the commit size adapts: it starts at [`COMMIT_START`](crate::commits::COMMIT_START)
    /// files, doubles while a commit takes under half of [`COMMIT_TARGET`](crate::commits::COMMIT_TARGET), halves above it
    /// (between [`COMMIT_MIN`](crate::commits::COMMIT_MIN) and [`COMMIT_MAX`](crate::commits::COMMIT_MAX) files, at most [`COMMIT_INLINE`](crate::commits::COMMIT_INLINE) bytes inline),
    /// and a commit the server timed out (504) is sent again at half its size. Each commit after
    /// the first names its parent, so a writer in between is noticed, not overwritten. A repo
    /// that fits in one commit gets one, with `message` as is; otherwise each says its part.
    pub async fn commit(
        &self,
        repo: &RepoRef,
        branch: &str,
        message: &str,
        files: std::sync::Arc<[CommitFile]>,
    ) -> Result<String> {
        let mut size = COMMIT_START;
        // Below the smallest commit the server timed out: growth stops there.
        let mut ceiling = usize::MAX;
        let (mut start, mut part) = (0, 0);
        let mut head: Option<String> = None;
        loop {
            let end = batch_end(&files, start, size);
            let whole = start == 0 && end == files.len();
            let summary = if whole {
                message.to_string()
            } else {
                format!(
                    "{message} (part {}, files {}-{} of {})",
                    part + 1,
                    start + 1,
                    end,
                    files.len()
                )
            };
            let began = std::time::Instant::now();
            match self
                .commit_batch(repo, branch, &summary, head.as_deref(), files.clone(), start..end)
                .await
            {
                Ok(oid) => {
                    let took = began.elapsed();
                    tracing::info!(%repo, commit = %oid, files = end - start, ms = took.as_millis() as u64, "committed a part");
                    head = Some(oid);
                    size = next_size(end - start, size, took).min(ceiling);
                    (start, part) = (end, part + 1);
                }
                Err(e) if is_timeout(&e) && end - start > 1 => {
                    ceiling = end - start - 1;
                    size = ((end - start) / 2).max(1);
                    tracing::warn!(%repo, files = end - start, next = size, "the Hub timed the commit out: sending it in smaller parts");
                }
                Err(e) => return Err(e),
            }
            if start >= files.len() {
                return head.ok_or_else(|| Error::Protocol("no commit was made".into()));
            }
        }
    }

    /// One NDJSON commit of `files[range]`; returns the new commit id.
    async fn commit_batch(
        &self,
        repo: &RepoRef,
        branch: &str,
        summary: &str,
        parent: Option<&str>,
        files: std::sync::Arc<[CommitFile]>,
        range: std::ops::Range<usize>,
    ) -> Result<String> {
        let mut value = json!({"summary": summary, "description": ""});
        if let Some(p) = parent {
            value["parentCommit"] = json!(p);
        }
        let header = json!({"key": "header", "value": value}).to_string();
        let url = format!("{}/commit/{}", self.api(repo), enc(branch));
        // The NDJSON body is encoded line by line as it is sent (again for a retry), so the
        // files' contents are held once, not once more as base64 in one body. A timed-out commit
        // is not sent again as it is: the caller halves it.
        let resp = self
            .http
            .send_retrying(
                "committing to the destination",
                || {
                    self.auth(self.http.client.post(&url))
                        .header("content-type", "application/x-ndjson")
                        .body(reqwest::Body::wrap_stream(ndjson_lines(
                            header.clone(),
                            files.clone(),
                            range.clone(),
                        )))
                },
                |e| e.is_retryable() && !is_timeout(e),
            )
            .await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| Error::Protocol(format!("commit answer: {}", e.without_url())))?;
        v["commitOid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Protocol("commit answer without commitOid".into()))
    }
}

/// The commit's NDJSON, one line per item, encoded only when the body is read.
fn ndjson_lines(
    header: String,
    files: std::sync::Arc<[CommitFile]>,
    range: std::ops::Range<usize>,
) -> impl futures_util::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let lines = std::iter::once(None).chain(range.map(Some));
    futures_util::StreamExt::map(futures_util::stream::iter(lines), move |i| {
        let mut line = match i {
            None => header.clone(),
            Some(i) => commit_line(&files[i]),
        };
        line.push('\n');
        Ok(bytes::Bytes::from(line))
    })
}

/// One file of a commit as an NDJSON line (base64 written straight into the line).
fn commit_line(f: &CommitFile) -> String {
    match f {
        CommitFile::Inline { path, content } => {
            let path = Value::String(path.clone()).to_string();
            let mut line = String::with_capacity(path.len() + content.len().div_ceil(3) * 4 + 64);
            line.push_str(r#"{"key":"file","value":{"path":"#);
            line.push_str(&path);
            line.push_str(r#","encoding":"base64","content":""#);
            base64::engine::general_purpose::STANDARD.encode_string(content, &mut line);
            line.push_str(r#""}}"#);
            line
        }
        CommitFile::Lfs { path, sha256, size } => {
            json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": sha256, "size": size}})
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_lines_are_the_json_the_hub_reads() {
        let f = CommitFile::Inline {
            path: "dir/a \"b\".json".into(),
            content: b"{\"x\": 1}\n".to_vec(),
        };
        let v: Value = serde_json::from_str(&super::commit_line(&f)).unwrap();
        assert_eq!(v["value"]["path"], "dir/a \"b\".json");
        use base64::Engine;
        let back = base64::engine::general_purpose::STANDARD
            .decode(v["value"]["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, b"{\"x\": 1}\n");
        assert_eq!(
            (v["key"].as_str(), v["value"]["encoding"].as_str()),
            (Some("file"), Some("base64"))
        );
    }
}
