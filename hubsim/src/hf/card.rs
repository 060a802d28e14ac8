//! Repo cards: README.md's YAML front matter, which the Hub reads as the repo's `cardData` (and
//! `license:` tags) and validates: `POST /api/validate-yaml`, and every commit that writes the
//! root README.md (a card naming a license the Hub does not know is refused). Texts as the Hub
//! writes them (huggingface_hub's tests match `"license" must be one of`).

use serde_json::{Value, json};

/// What validation found: errors refuse the card, warnings only inform.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The warning of a card without metadata.
const NO_METADATA: &str = "empty or missing yaml metadata in repo card";

/// The front matter's YAML, when the card opens with a closed `---` block.
fn front_matter(card: &str) -> Option<&str> {
    let rest = card.strip_prefix("---\n").or_else(|| card.strip_prefix("---\r\n"))?;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some(&rest[..at]);
        }
        at += line.len();
    }
    None
}

/// The card's metadata as JSON (`cardData`), when it has valid front matter.
pub fn card_data(card: &[u8]) -> Option<Value> {
    let yaml = front_matter(std::str::from_utf8(card).ok()?)?;
    let v: Value = serde_yaml_ng::from_str(yaml).ok()?;
    v.is_object().then_some(v)
}

/// The `license:<id>` tags the Hub derives from a card's metadata.
pub fn license_tags(card: &Value) -> Vec<String> {
    let l = &card["license"];
    let ids: Vec<&str> = match l {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().map(|id| format!("license:{id}")).collect()
}

/// Validates a card's metadata as the Hub does.
pub fn validate(card: &str) -> Verdict {
    let mut v = Verdict::default();
    let Some(yaml) = front_matter(card) else {
        v.warnings.push(NO_METADATA.into());
        return v;
    };
    let meta: Value = match serde_yaml_ng::from_str(yaml) {
        Ok(m) => m,
        Err(e) => {
            v.errors.push(format!("Invalid YAML in README.md: {e}"));
            return v;
        }
    };
    match &meta {
        Value::Null => v.errors.push("The YAML metadata of your README.md is invalid.".into()),
        Value::Object(m) => {
            if let Some(l) = m.get("license")
                && !license_ok(l)
            {
                let mut allowed: Vec<&str> = hubmigrate_common::HF_LICENSE_IDS.to_vec();
                allowed.push("array");
                v.errors
                    .push(format!("\"license\" must be one of [{}]", allowed.join(", ")));
            }
        }
        Value::Array(_) => v.errors.push("\"value\" must be of type object".into()),
        _ => v.errors.push("The YAML metadata of your README.md is invalid.".into()),
    }
    v
}

/// A card's `license`: one of the Hub's ids, or a list of them.
fn license_ok(l: &Value) -> bool {
    let known = |s: &str| hubmigrate_common::HF_LICENSE_IDS.contains(&s);
    match l {
        Value::String(s) => known(s),
        Value::Array(a) => a.iter().all(|x| x.as_str().is_some_and(known)),
        _ => false,
    }
}

/// The answer of `POST /api/validate-yaml`: JSON `{errors, warnings}` (400 when there are
/// errors), or, for clients asking `text/plain` (`RepoCard.validate`), one `- Error: ` line each.
pub fn answer(verdict: &Verdict, plain: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = if verdict.errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    if plain {
        let text: String = verdict
            .errors
            .iter()
            .map(|e| format!("- Error: {e}\n"))
            .chain(verdict.warnings.iter().map(|w| format!("- Warning: {w}\n")))
            .collect();
        return (status, text).into_response();
    }
    let help = "https://huggingface.co/docs/hub/model-cards#model-card-metadata";
    let body = json!({
        "errors": verdict.errors.iter().map(|m| json!({"message": m, "type": "error"})).collect::<Vec<_>>(),
        "warnings": verdict.warnings.iter().map(|m| json!({"message": m, "help": help})).collect::<Vec<_>>(),
    });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_validated_as_the_hub_does() {
        assert_eq!(validate("---\nlicense: mit\n---\n# x\n"), Verdict::default());
        assert_eq!(validate("---\nlicense: [mit, apache-2.0]\n---\n").errors.len(), 0);
        let bad = validate("---\nlicense: MIT\n---\n");
        assert!(
            bad.errors[0].starts_with("\"license\" must be one of [apache-2.0, mit,"),
            "{bad:?}"
        );
        assert!(bad.errors[0].ends_with("unknown, other, array]"), "{bad:?}");
        assert_eq!(validate("# no metadata\n").warnings, vec![NO_METADATA.to_string()]);
        assert!(validate("---\nlicense: [\n---\n").errors[0].starts_with("Invalid YAML"));
        assert_eq!(
            validate("---\n- a\n---\n").errors,
            vec!["\"value\" must be of type object"]
        );
    }

    #[test]
    fn card_data_and_license_tags() {
        let d = card_data(b"---\nlicense: cc-by-4.0\nlanguage: en\n---\n").unwrap();
        assert_eq!(d, json!({"license": "cc-by-4.0", "language": "en"}));
        assert_eq!(license_tags(&d), vec!["license:cc-by-4.0"]);
        assert_eq!(card_data(b"# none\n"), None);
    }
}
