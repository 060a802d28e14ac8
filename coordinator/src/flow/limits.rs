//! What the hubs only recommend, said in the plan before any byte moves (issue #14): the Hugging
//! Face Hub's repo size advice (storage-limits.md: under 100,000 files, under 10,000 entries per
//! folder) and its request quota for anonymous readers (rate-limits.md: 3,000 resolves per IP
//! address per 5 minutes), which a large source read without a token runs into; and what they
//! refuse (a file larger than the destination's largest object), an error before anything moves.

use std::collections::HashMap;

use hubmigrate_hub::reporef::Platform;

/// Files a Hugging Face repo should stay under.
pub const HF_REPO_FILES: usize = 100_000;
/// Entries (files and folders) a Hugging Face folder should stay under.
pub const HF_FOLDER_ENTRIES: usize = 10_000;
/// Resolves an anonymous reader gets per IP address and 5-minute window.
pub const HF_ANONYMOUS_RESOLVES: usize = 3_000;

/// One line per file the destination would refuse: `files` (path, size) of the objects to
/// upload, against the destination's largest object (`max_object`).
pub fn refusals(files: &[(&str, u64)], max_object: Option<u64>) -> Vec<String> {
    let Some(max) = max_object else {
        return Vec::new();
    };
    files
        .iter()
        .filter(|(_, size)| *size > max)
        .map(|(path, size)| {
            format!("{path} is {size} bytes: the destination takes objects of at most {max} bytes over the LFS path")
        })
        .collect()
}

/// One line per recommendation `paths` (every file of the migration) would exceed at a
/// `dest` destination, and for a Hugging Face source read without a token (`anonymous_source`)
/// with more files than an anonymous reader may fetch in one window.
pub fn warnings(paths: &[&str], source: Platform, anonymous_source: bool, dest: Platform) -> Vec<String> {
    let mut out = Vec::new();
    if source == Platform::Hf && anonymous_source && paths.len() > HF_ANONYMOUS_RESOLVES {
        out.push(format!(
            "the source is read without a token: the Hub lets an anonymous reader fetch {HF_ANONYMOUS_RESOLVES} files per 5 minutes per IP address ({} files here, so the run waits for the quota); set HUBMIGRATE_SOURCE_TOKEN to read as a user",
            paths.len()
        ));
    }
    if dest != Platform::Hf {
        return out;
    }
    if paths.len() > HF_REPO_FILES {
        out.push(format!(
            "{} files: the Hub recommends under {HF_REPO_FILES} files a repo",
            paths.len()
        ));
    }
    // Entries of each folder: its files and its direct subfolders.
    let mut entries: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for p in paths {
        let mut child = *p;
        while let Some((parent, _)) = child.rsplit_once('/') {
            entries.entry(parent).or_default().insert(child);
            child = parent;
        }
        entries.entry("").or_default().insert(child);
    }
    let mut crowded: Vec<(&str, usize)> = entries
        .iter()
        .map(|(f, e)| (*f, e.len()))
        .filter(|(_, n)| *n > HF_FOLDER_ENTRIES)
        .collect();
    crowded.sort();
    for (folder, n) in crowded {
        let name = if folder.is_empty() { "the repo's root" } else { folder };
        out.push(format!(
            "{name} has {n} entries: the Hub recommends under {HF_FOLDER_ENTRIES} per folder"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowded_folders_and_large_repos_are_named_for_hugging_face_only() {
        let names: Vec<String> = (0..10_001).map(|i| format!("data/train/{i}.json")).collect();
        let mut paths: Vec<&str> = names.iter().map(String::as_str).collect();
        paths.push("README.md");
        let w = warnings(&paths, Platform::Ms, false, Platform::Hf);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("data/train has 10001 entries"), "{w:?}");
        assert!(warnings(&paths, Platform::Hf, false, Platform::Ms).is_empty());
        // 10,000 entries exactly, and folders counted once as entries of their parent.
        let names: Vec<String> = (0..10_000).map(|i| format!("d{i}/x")).collect();
        let paths: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(warnings(&paths, Platform::Hf, false, Platform::Hf).is_empty());
    }

    #[test]
    fn objects_over_the_destinations_largest_are_refused() {
        let files = [
            ("small.bin", 10),
            ("edge.bin", 50_000_000_000),
            ("huge.bin", 50_000_000_001),
        ];
        let refused = refusals(&files, Some(50_000_000_000));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].starts_with("huge.bin is 50000000001 bytes"), "{refused:?}");
        assert!(
            refusals(&files, None).is_empty(),
            "no documented limit, nothing refused"
        );
    }

    #[test]
    fn a_large_source_read_anonymously_is_warned_of() {
        let names: Vec<String> = (0..3_001).map(|i| format!("f{i}")).collect();
        let paths: Vec<&str> = names.iter().map(String::as_str).collect();
        let w = warnings(&paths, Platform::Hf, true, Platform::Ms);
        assert!(w.len() == 1 && w[0].contains("HUBMIGRATE_SOURCE_TOKEN"), "{w:?}");
        assert!(warnings(&paths, Platform::Hf, false, Platform::Ms).is_empty());
        assert!(warnings(&paths[..3_000], Platform::Hf, true, Platform::Ms).is_empty());
    }
}
