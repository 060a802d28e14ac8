//! A download that resumes with `Range` after a cut connection or a short body, a bounded
//! number of times, through any hub.

use std::sync::Arc;

use futures_util::StreamExt;

use crate::hashing::ByteStream;
use crate::http::RetryPolicy;
use crate::hub::Hub;
use crate::reporef::RepoRef;

/// What to download: a file of a repo at a commit.
#[derive(Clone)]
struct Source {
    hub: Hub,
    repo: RepoRef,
    commit: String,
    path: String,
    object: Option<(String, u64)>,
}

struct Resume {
    src: Arc<Source>,
    current: Option<ByteStream>,
    offset: u64,
    left: u64,
    failures: u32,
    retry: RetryPolicy,
}

/// Streams `len` bytes of a file from `offset`, reopening the download at the current position
/// when the connection breaks or the body ends early (at most `retry.attempts` times in a row
/// without progress). The bytes are each read once: callers hash them as they pass.
/// `object` is the LFS object (sha256, size) behind `path`, when it is one.
pub fn open_resuming(
    hub: &Hub,
    repo: &RepoRef,
    commit: &str,
    path: &str,
    object: Option<(&str, u64)>,
    offset: u64,
    len: u64,
) -> ByteStream {
    let state = Resume {
        src: Arc::new(Source {
            hub: hub.clone(),
            repo: repo.clone(),
            commit: commit.into(),
            path: path.into(),
            object: object.map(|(o, s)| (o.to_string(), s)),
        }),
        current: None,
        offset,
        left: len,
        failures: 0,
        retry: RetryPolicy::default(),
    };
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            if st.left == 0 {
                return None;
            }
            let stream = match st.current.as_mut() {
                Some(s) => s,
                None => match st
                    .src
                    .hub
                    .download(
                        &st.src.repo,
                        &st.src.commit,
                        &st.src.path,
                        st.src.object.as_ref().map(|(o, s)| (o.as_str(), *s)),
                        st.offset,
                        st.left,
                    )
                    .await
                {
                    Ok(s) => st.current.insert(s),
                    Err(e) if e.is_retryable() && st.failures + 1 < st.retry.attempts => {
                        st.failures += 1;
                        if let Err(e) = st.retry.pause(&st.src.path, st.failures, e).await {
                            return Some((Err(std::io::Error::other(e.to_string())), None));
                        }
                        continue;
                    }
                    Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                },
            };
            let failure = match stream.next().await {
                Some(Ok(b)) => {
                    st.offset += b.len() as u64;
                    st.left = st.left.saturating_sub(b.len() as u64);
                    st.failures = 0;
                    return Some((Ok(b), Some(st)));
                }
                Some(Err(e)) => e.to_string(),
                None => format!("body ended {} bytes early", st.left),
            };
            st.current = None;
            st.failures += 1;
            if st.failures >= st.retry.attempts {
                let msg = format!("download of {} kept failing: {failure}", st.src.path);
                return Some((Err(std::io::Error::other(msg)), None));
            }
            tracing::debug!(path = %st.src.path, offset = st.offset, %failure, "resuming download");
            tokio::time::sleep(st.retry.delay(st.failures, None)).await;
        }
    }))
}
