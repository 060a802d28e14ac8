//! Git LFS pointers (spec v1): the three-line text git stores in place of an LFS file.

/// Pointers are small; any blob at least this large is content, not a pointer.
pub const MAX_POINTER_SIZE: u64 = 1024;

/// What a pointer points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    pub oid: String,
    pub size: u64,
}

/// Parses a pointer blob; `None` for anything that is not a well-formed v1 pointer.
pub fn parse(blob: &[u8]) -> Option<Pointer> {
    if blob.len() as u64 >= MAX_POINTER_SIZE {
        return None;
    }
    let text = std::str::from_utf8(blob).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?;
    if !version.starts_with("version https://git-lfs.github.com/spec/v1")
        && !version.starts_with("version https://hawser.github.com/spec/v1")
    {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        let (k, v) = line.split_once(' ')?;
        match k {
            "oid" => {
                let hex = v.strip_prefix("sha256:")?;
                let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                oid = ok.then(|| hex.to_string());
            }
            "size" => size = v.parse().ok(),
            _ => {}
        }
    }
    Some(Pointer { oid: oid?, size: size? })
}

/// The canonical pointer text for an object.
pub fn render(oid: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip_and_content_is_not_a_pointer() {
        let oid = "a".repeat(64);
        let text = render(&oid, 1234);
        assert_eq!(
            parse(text.as_bytes()),
            Some(Pointer {
                oid: oid.clone(),
                size: 1234
            })
        );
        assert_eq!(text.len(), 125 + 4);
        assert_eq!(parse(b"hello"), None);
        assert_eq!(parse(render("A".repeat(64).as_str(), 1).as_bytes()), None);
        assert_eq!(parse(text.replace("size 1234\n", "").as_bytes()), None);
        let mut big = text.into_bytes();
        big.resize(2048, b' ');
        assert_eq!(parse(&big), None);
    }
}
