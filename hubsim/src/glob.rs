//! Glob matching with the semantics of `.gitattributes` patterns, used to decide which paths are
//! tracked by LFS: `*` and `?` stop at `/`, `**` spans directories, `[...]` classes, and a
//! pattern without a `/` matches the file name at any depth.

/// True when `path` matches the gitattributes-style `pattern`.
pub fn matches_attr(pattern: &str, path: &str) -> bool {
    let anchored = pattern.contains('/');
    let pat = pattern.strip_prefix('/').unwrap_or(pattern);
    if !anchored {
        let name = path.rsplit('/').next().unwrap_or(path);
        return glob(pat.as_bytes(), name.as_bytes());
    }
    glob(pat.as_bytes(), path.as_bytes())
}

/// Full-string glob match where `*`/`?` do not cross `/` and `**` does.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            // `**/` matches zero or more directories; a trailing `**` matches everything.
            let rest = &p[2..];
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && glob(rest, &s[i..]))
        }
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && s[0] != b'/' && glob(&p[1..], &s[1..]),
        Some(b'[') => match (class_end(p), s.first()) {
            (Some(end), Some(&c)) if c != b'/' => in_class(&p[1..end], c) && glob(&p[end + 1..], &s[1..]),
            (None, Some(&c)) => c == b'[' && glob(&p[1..], &s[1..]),
            _ => false,
        },
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob(&p[1..], &s[1..]),
    }
}

fn class_end(p: &[u8]) -> Option<usize> {
    let start = if p.get(1) == Some(&b'!') || p.get(1) == Some(&b'^') {
        2
    } else {
        1
    };
    let mut i = start + usize::from(p.get(start) == Some(&b']'));
    while i < p.len() {
        if p[i..].starts_with(b"[:") {
            // A POSIX class such as `[:space:]` inside the brackets.
            let close = p[i + 2..].windows(2).position(|w| w == b":]")?;
            i += close + 4;
            continue;
        }
        if p[i] == b']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn in_class(class: &[u8], c: u8) -> bool {
    let (neg, body) = match class.first() {
        Some(b'!') | Some(b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < body.len() {
        if body[i..].starts_with(b"[:") {
            let close = body[i + 2..].windows(2).position(|w| w == b":]").unwrap_or(body.len());
            let name = &body[i + 2..(i + 2 + close).min(body.len())];
            hit |= match name {
                b"space" => c.is_ascii_whitespace(),
                b"digit" => c.is_ascii_digit(),
                b"alpha" => c.is_ascii_alphabetic(),
                b"alnum" => c.is_ascii_alphanumeric(),
                b"upper" => c.is_ascii_uppercase(),
                b"lower" => c.is_ascii_lowercase(),
                _ => false,
            };
            i += close + 4;
            continue;
        }
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    hit != neg
}

/// Escapes a literal path into a gitattributes pattern that matches exactly it, the way
/// `git lfs track` writes one (spaces become `[[:space:]]`, glob characters get a backslash).
pub fn escape_attr_path(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 8);
    if !path.contains('/') {
        s.push('/'); // anchor at the root, so it does not match the name in subfolders
    }
    for c in path.chars() {
        match c {
            ' ' => s.push_str("[[:space:]]"),
            '*' | '?' | '[' | ']' | '\\' | '!' | '#' => {
                s.push('\\');
                s.push(c);
            }
            c => s.push(c),
        }
    }
    s
}

/// Appends a `filter=lfs` rule for each path in `paths` that no rule of `attrs` covers yet (the
/// Hub does this on commit); `None` when every path is covered already.
pub fn add_lfs_rules(attrs: &str, paths: &[String]) -> Option<String> {
    let mut out = attrs.to_string();
    for p in paths {
        if !lfs_tracked(&out, p) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!(
                "{} filter=lfs diff=lfs merge=lfs -text\n",
                escape_attr_path(p)
            ));
        }
    }
    (out != attrs).then_some(out)
}

/// True when `.gitattributes` content routes `path` through the LFS filter (last match wins).
pub fn lfs_tracked(gitattributes: &str, path: &str) -> bool {
    let mut tracked = false;
    for line in gitattributes.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let Some(pattern) = parts.next() else {
            continue;
        };
        if !matches_attr(pattern, path) {
            continue;
        }
        for attr in parts {
            match attr {
                "filter=lfs" => tracked = true,
                "-filter" | "!filter" => tracked = false,
                a if a.starts_with("filter=") => tracked = false,
                _ => {}
            }
        }
    }
    tracked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_patterns() {
        assert!(matches_attr("*.bin", "a/b/model.bin"));
        assert!(!matches_attr("*.bin", "a/b/model.bin.txt"));
        assert!(matches_attr("saved_model/**/*", "saved_model/x/y/z.pb"));
        assert!(matches_attr("*.tar.*", "x.tar.gz"));
        assert!(matches_attr("*tfevents*", "logs/events.out.tfevents.1"));
        // `[1]` is a character class, so the literal name needs escaping (see escape_attr_path).
        assert!(!matches_attr(
            "dir with space/ünï [1].bin",
            "dir with space/ünï [1].bin"
        ));
        assert!(matches_attr("/top.bin", "top.bin"));
        assert!(matches_attr("data/*.csv", "data/a.csv") && !matches_attr("data/*.csv", "data/x/a.csv"));
        assert!(matches_attr("data/**", "data/x/a.csv"));
        assert!(matches_attr("file[0-9].txt", "file7.txt") && !matches_attr("file[!0-9].txt", "file7.txt"));
    }

    #[test]
    fn escaped_paths_match_themselves_only() {
        for p in ["dir with space/ünï [1].bin", "top level.bin", "a/b*c?.bin", "#x!.bin"] {
            let pat = escape_attr_path(p);
            assert!(matches_attr(&pat, p), "{pat} vs {p}");
            assert!(!matches_attr(&pat, &format!("sub/{p}")), "{pat} anchored");
        }
        assert!(!matches_attr(&escape_attr_path("a b.bin"), "axb.bin"));
    }

    #[test]
    fn last_rule_wins() {
        let attrs = "*.bin filter=lfs diff=lfs merge=lfs -text\nsmall.bin -filter\n";
        assert!(lfs_tracked(attrs, "x/model.bin"));
        assert!(!lfs_tracked(attrs, "small.bin"));
        assert!(!lfs_tracked(attrs, "readme.md"));
    }
}
