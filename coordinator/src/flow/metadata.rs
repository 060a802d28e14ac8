//! What the destination repo gets besides the source's files, decided with the plan: its
//! visibility (a gated source's copy is private: a public copy would hand its files to anyone,
//! past the gate) and its license, carried under the name the destination has for it and never
//! invented (docs/metadata.md). ModelScope keeps the license in a `License` field set when the
//! repo is created; Hugging Face reads it from README.md's front matter, which is rewritten on
//! its way when the source's card does not name a license the Hub takes.

use std::collections::HashMap;

use hubmigrate_hub::card;
use hubmigrate_hub::hashing::git_blob_id;
use hubmigrate_hub::license::{self, Mapped};
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_hub::reporef::Platform;
use hubmigrate_proto as pb;

/// The card a Hugging Face repo reads its license from.
pub const CARD: &str = "README.md";

/// The destination's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub private: bool,
    /// The destination's `License` field (ModelScope), when it has one.
    pub license: Option<String>,
    /// The license README.md must name at a Hugging Face destination, when the source keeps
    /// its license elsewhere.
    pub card: Option<CardLicense>,
    /// What the plan says of it: how the license travels, or why it cannot.
    pub notes: Vec<String>,
}

/// The license README.md must name at a Hugging Face destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardLicense {
    /// The source's license under the Hub's id (`name`: the original, for `other`).
    Named { id: String, name: Option<String> },
    /// The source names none: only a license the card itself names that the Hub refuses is
    /// mapped.
    Unnamed,
}

/// Decides the destination's metadata from the source's manifest.
pub fn carried(manifest: &Manifest, source: Platform, dest: Platform) -> Carried {
    let mut c = Carried {
        private: manifest.copy_private(),
        ..Default::default()
    };
    if manifest.gated && !manifest.private {
        c.notes
            .push("the source is gated: its copy is created private (grant access there as you see fit)".into());
    }
    let named = manifest.license.as_deref();
    match (dest, named) {
        (Platform::Ms, Some(l)) => {
            let mapped = if source == Platform::Ms {
                Mapped::Same(l.to_string())
            } else {
                license::to_modelscope(l)
            };
            c.notes.push(match &mapped {
                Mapped::Same(v) if v == l => format!("license {l}"),
                Mapped::Same(v) => format!("license {l} -> {v}"),
                Mapped::Other { value, reason } => format!("license {l} -> {value}: {reason}"),
            });
            c.license = Some(mapped.value().to_string());
        }
        (Platform::Ms, None) => {
            c.notes.push(
                "license not determined: the source names none; the copy's License is Other (never guessed)".into(),
            );
        }
        (Platform::Hf, Some(l)) if source != Platform::Hf => {
            let mapped = license::to_hf(l);
            c.notes.push(match &mapped {
                Mapped::Same(v) => format!("license {l} -> {v} in {CARD}'s front matter"),
                Mapped::Other { value, reason } => {
                    format!("license {l} -> {value} (license_name {l:?}) in {CARD}'s front matter: {reason}")
                }
            });
            let (id, name) = card_license(l, &mapped);
            c.card = Some(CardLicense::Named { id, name });
        }
        (Platform::Hf, None) if source != Platform::Hf => {
            c.notes.push(format!(
                "license not determined: the source names none; {CARD} travels as it is (a license it names that the Hub refuses is mapped)"
            ));
            c.card = Some(CardLicense::Unnamed);
        }
        _ => {}
    }
    c
}

/// What a card names for `original`, mapped: the Hub's id, and `license_name` for `other`.
fn card_license(original: &str, mapped: &Mapped) -> (String, Option<String>) {
    let name = matches!(mapped, Mapped::Other { .. }).then(|| original.to_string());
    (mapped.value().to_string(), name)
}

/// The card `text` naming the license the destination reads, when it must change: it names no
/// license the Hub takes, and there is one to name (nothing is invented).
pub fn rewritten_card(c: &Carried, text: &str) -> Option<String> {
    let wanted = c.card.as_ref()?;
    let named = card::license(text);
    if named.as_deref().is_some_and(license::is_hf_id) {
        return None;
    }
    let (id, name) = match wanted {
        CardLicense::Named { id, name } => (id.clone(), name.clone()),
        CardLicense::Unnamed => {
            let l = named?;
            card_license(&l, &license::to_hf(&l))
        }
    };
    Some(card::with_license(text, &id, name.as_deref()))
}

/// Points README.md's front matter at the license the destination must read, when the source's
/// card names none it takes: the result's content, size and hashes become the rewritten card's
/// (what the commit writes and verification expects). Returns the source card's sha256 when the
/// card was rewritten. A source without README.md keeps none.
pub fn rewrite_card(c: &Carried, results: &mut HashMap<String, pb::FileResult>) -> Option<String> {
    let r = results.get_mut(CARD)?;
    let new = rewritten_card(c, std::str::from_utf8(&r.content).ok()?)?.into_bytes();
    let before = std::mem::replace(&mut r.sha256, hubmigrate_hub::hashing::sha256_hex(&new));
    r.git_oid = git_blob_id(&new);
    r.size = new.len() as u64;
    r.content = new;
    Some(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubmigrate_hub::reporef::{RepoRef, RepoType};

    fn manifest(private: bool, gated: bool, license: Option<&str>) -> Manifest {
        Manifest {
            repo: RepoRef::parse("hf:a/b", RepoType::Model).unwrap(),
            commit: "c".into(),
            private,
            gated,
            license: license.map(str::to_string),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_gated_source_makes_a_private_copy() {
        let c = carried(&manifest(false, true, Some("llama3")), Platform::Hf, Platform::Ms);
        assert!(c.private);
        assert_eq!(c.license.as_deref(), Some("Other"));
        assert!(c.notes.iter().any(|n| n.contains("gated")), "{:?}", c.notes);
        assert!(
            c.notes.iter().any(|n| n.contains("llama3 has no SPDX id")),
            "{:?}",
            c.notes
        );
        assert!(!carried(&manifest(false, false, None), Platform::Hf, Platform::Ms).private);
    }

    #[test]
    fn licenses_are_mapped_or_reported_never_invented() {
        let c = carried(
            &manifest(false, false, Some("cc-by-nc-4.0")),
            Platform::Hf,
            Platform::Ms,
        );
        assert_eq!(c.license.as_deref(), Some("CC-BY-NC-4.0"));
        let c = carried(&manifest(false, false, None), Platform::Hf, Platform::Ms);
        assert_eq!(c.license, None);
        assert!(c.notes[0].starts_with("license not determined"), "{:?}", c.notes);
        let c = carried(&manifest(false, false, Some("MIT")), Platform::Ms, Platform::Hf);
        assert_eq!(
            c.card,
            Some(CardLicense::Named {
                id: "mit".into(),
                name: None
            })
        );
        let c = carried(&manifest(false, false, Some("Proprietary")), Platform::Ms, Platform::Hf);
        assert_eq!(
            c.card,
            Some(CardLicense::Named {
                id: "other".into(),
                name: Some("Proprietary".into())
            })
        );
        // Hugging Face to Hugging Face: the card travels as it is.
        assert_eq!(
            carried(&manifest(false, false, Some("mit")), Platform::Hf, Platform::Hf).card,
            None
        );
    }

    #[test]
    fn the_card_is_rewritten_only_when_it_names_no_license_the_hub_takes() {
        let c = carried(&manifest(false, false, Some("MIT")), Platform::Ms, Platform::Hf);
        let result = |content: &str| pb::FileResult {
            path: CARD.into(),
            size: content.len() as u64,
            sha256: hubmigrate_hub::hashing::sha256_hex(content.as_bytes()),
            content: content.as_bytes().to_vec(),
            ..Default::default()
        };
        let mut results = HashMap::from([(CARD.to_string(), result("---\nlicense: MIT\n---\n# M\n"))]);
        let before = rewrite_card(&c, &mut results).expect("rewritten");
        assert_eq!(
            before,
            hubmigrate_hub::hashing::sha256_hex(b"---\nlicense: MIT\n---\n# M\n")
        );
        let r = &results[CARD];
        assert_eq!(r.content, b"---\nlicense: mit\n---\n# M\n");
        assert_eq!(
            (r.size, r.sha256.clone()),
            (r.content.len() as u64, hubmigrate_hub::hashing::sha256_hex(&r.content))
        );
        assert_eq!(r.git_oid, git_blob_id(&r.content));
        let mut kept = HashMap::from([(CARD.to_string(), result("---\nlicense: apache-2.0\n---\n"))]);
        assert_eq!(rewrite_card(&c, &mut kept), None, "a card naming a Hub id keeps it");
        // No license at the source: a card naming one the Hub refuses is still mapped.
        let none = carried(&manifest(false, false, None), Platform::Ms, Platform::Hf);
        let mut display = HashMap::from([(CARD.to_string(), result("---\nlicense: Apache License 2.0\n---\n"))]);
        assert!(rewrite_card(&none, &mut display).is_some());
        assert_eq!(display[CARD].content, b"---\nlicense: apache-2.0\n---\n");
        let mut bare = HashMap::from([(CARD.to_string(), result("# M\n"))]);
        assert_eq!(rewrite_card(&none, &mut bare), None, "nothing is invented");
    }
}
