//! A repo card (README.md) and its YAML front matter: the license it names, and the same card
//! naming another, edited as text so that everything else in it stays byte for byte.

/// Where the front matter is, when the card opens with one: its YAML is `card[start..end]`, and
/// `card[end..]` starts with the closing `---` line.
fn front_matter(card: &str) -> Option<(usize, usize)> {
    let rest = card.strip_prefix("---\n").or_else(|| card.strip_prefix("---\r\n"))?;
    let start = card.len() - rest.len();
    let mut at = start;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((start, at));
        }
        at += line.len();
    }
    None
}

/// The license the card's front matter names (`license:`, a string or the first of a list).
pub fn license(card: &str) -> Option<String> {
    let (start, end) = front_matter(card)?;
    let v: serde_json::Value = serde_yaml_ng::from_str(&card[start..end]).ok()?;
    crate::license::of_card(&v)
}

/// Whether `line` starts one of `keys` at the top level of the front matter.
fn starts_key(line: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(" :"))
    })
}

/// The card with its front matter naming `id` as its license (and `name` as `license_name`,
/// for `other`): the `license`, `license_name` and `license_link` keys it had are replaced, the
/// rest is kept as it was. A card without front matter gets one.
pub fn with_license(card: &str, id: &str, name: Option<&str>) -> String {
    let mut head = format!("license: {id}\n");
    if let Some(n) = name {
        head.push_str(&format!("license_name: {}\n", serde_json::Value::from(n)));
    }
    let Some((start, end)) = front_matter(card) else {
        let sep = if card.is_empty() { "" } else { "\n" };
        return format!("---\n{head}---\n{sep}{card}");
    };
    const KEYS: [&str; 3] = ["license", "license_name", "license_link"];
    let mut kept = String::new();
    let mut dropping = false;
    for line in card[start..end].split_inclusive('\n') {
        let top_level = !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty();
        if top_level {
            dropping = starts_key(line, &KEYS);
        }
        if !dropping {
            kept.push_str(line);
        }
    }
    format!("{}{head}{kept}{}", &card[..start], &card[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_license_is_read_from_the_front_matter() {
        assert_eq!(
            license("---\nlicense: mit\nlanguage: en\n---\n# x\n").as_deref(),
            Some("mit")
        );
        assert_eq!(
            license("---\nlicense:\n  - cc-by-4.0\n---\n").as_deref(),
            Some("cc-by-4.0")
        );
        assert_eq!(license("# no front matter\nlicense: mit\n"), None);
        assert_eq!(license("---\nlanguage: en\n---\n"), None);
        assert_eq!(
            license("---\nlicense: mit\n"),
            None,
            "an unclosed block is no front matter"
        );
    }

    #[test]
    fn a_new_license_replaces_the_old_and_keeps_the_rest() {
        let card = "---\nlanguage: en\nlicense:\n- Apache License 2.0\nlicense_link: x\ntags:\n- a\n---\n\n# Model\nlicense: stays\n";
        let out = with_license(card, "apache-2.0", None);
        assert_eq!(
            out,
            "---\nlicense: apache-2.0\nlanguage: en\ntags:\n- a\n---\n\n# Model\nlicense: stays\n"
        );
        assert_eq!(license(&out).as_deref(), Some("apache-2.0"));
    }

    #[test]
    fn a_card_without_front_matter_gets_one() {
        assert_eq!(
            with_license("# Model\n", "mit", None),
            "---\nlicense: mit\n---\n\n# Model\n"
        );
        assert_eq!(with_license("", "mit", None), "---\nlicense: mit\n---\n");
        let other = with_license("# M\n", "other", Some("Proprietary \"v1\""));
        assert_eq!(license(&other).as_deref(), Some("other"));
        assert!(other.contains("license_name: \"Proprietary \\\"v1\\\"\"\n"), "{other}");
    }
}
