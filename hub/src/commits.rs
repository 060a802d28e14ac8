//! How a long list of files is cut into commits a hub accepts: the size of each commit adapts
//! to the time the last one took (like huggingface_hub's uploader), within a file count and an
//! inline byte budget; a commit the server timed out is a signal to send less, not to resend.

use crate::Error;
use crate::hub::CommitFile;

/// Files of the first commit of a series (huggingface_hub's uploader starts near 250).
pub const COMMIT_START: usize = 250;
/// Fewest files a commit is cut to while it takes too long.
pub const COMMIT_MIN: usize = 20;
/// Most files in one commit.
pub const COMMIT_MAX: usize = 1000;
/// The time a commit should take (the Hub's timeout is 60 s).
pub const COMMIT_TARGET: std::time::Duration = std::time::Duration::from_secs(40);
/// Most inline (regular file) bytes in one commit.
pub const COMMIT_INLINE: u64 = 64 << 20;

/// The end of the commit that starts at `start` with at most `size` files and
/// [`COMMIT_INLINE`] inline bytes (at least one file).
pub(crate) fn batch_end(files: &[CommitFile], start: usize, size: usize) -> usize {
    let mut inline = 0u64;
    let mut end = start;
    while end < files.len() && end - start < size.max(1) {
        if let CommitFile::Inline { content, .. } = &files[end] {
            inline += content.len() as u64;
            if inline > COMMIT_INLINE && end > start {
                break;
            }
        }
        end += 1;
    }
    end
}

/// The size of the next commit after one of `sent` files (of at most `size`) took `took`.
pub(crate) fn next_size(sent: usize, size: usize, took: std::time::Duration) -> usize {
    let next = if took > COMMIT_TARGET {
        sent / 2
    } else if took < COMMIT_TARGET / 2 && sent >= size {
        size * 2
    } else {
        size
    };
    next.clamp(COMMIT_MIN, COMMIT_MAX)
}

/// The server (or its gateway) gave up on the request: 504, or 408.
pub(crate) fn is_timeout(e: &Error) -> bool {
    let e = match e {
        Error::Exhausted { last, .. } => last.as_ref(),
        e => e,
    };
    matches!(e, Error::Http { status: 504 | 408, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_cut_by_file_count_and_inline_bytes() {
        let lfs = |i: usize| CommitFile::Lfs {
            path: format!("w{i}.bin"),
            sha256: "a".repeat(64),
            size: 1,
        };
        let files: Vec<CommitFile> = (0..10).map(lfs).collect();
        assert_eq!(batch_end(&files, 0, 4), 4);
        assert_eq!(batch_end(&files, 8, 4), 10);
        assert_eq!(batch_end(&files, 10, 4), 10);
        let big = |i: usize| CommitFile::Inline {
            path: format!("r{i}"),
            content: vec![0; (COMMIT_INLINE / 2 + 1) as usize],
        };
        let files: Vec<CommitFile> = (0..3).map(big).collect();
        // Two halves and a byte are over the inline cap: one file a commit, never none.
        assert_eq!(batch_end(&files, 0, 100), 1);
        assert_eq!(batch_end(&files, 1, 100), 2);
    }

    #[test]
    fn the_commit_size_follows_the_time_a_commit_took() {
        use std::time::Duration;
        assert_eq!(next_size(250, 250, Duration::from_secs(5)), 500);
        assert_eq!(next_size(600, 600, Duration::from_secs(1)), COMMIT_MAX);
        assert_eq!(next_size(250, 250, Duration::from_secs(30)), 250);
        assert_eq!(next_size(250, 250, Duration::from_secs(50)), 125);
        assert_eq!(next_size(30, 30, Duration::from_secs(59)), COMMIT_MIN);
        // A short last part says nothing about a full one.
        assert_eq!(next_size(7, 250, Duration::from_millis(10)), 250);
    }
}
