//! Licenses between hubs, carried and never invented. Hugging Face names a repo's license in its
//! model card's front matter with its own ids (hub-docs `repositories-licenses.md`: mostly SPDX
//! ids in lower case, `apache-2.0`, `cc-by-nc-4.0`, and some of its own, `llama3`, `openrail`,
//! `other`); the Hub refuses any other value. ModelScope keeps a `License` field: SPDX ids in its
//! current SDK (`Apache-2.0`, `CC-BY-NC-4.0`, `Other`), display names in older repos (`Apache
//! License 2.0`). A license maps to the destination's name for it, or to the destination's
//! "other" with the reason, for the plan to report.

use serde_json::Value;

pub use hubmigrate_common::HF_LICENSE_IDS as HF_IDS;

/// Hugging Face ids that are SPDX licenses, with the SPDX spelling (ModelScope's `License`).
const SPDX: &[(&str, &str)] = &[
    ("apache-2.0", "Apache-2.0"),
    ("mit", "MIT"),
    ("afl-3.0", "AFL-3.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsl-1.0", "BSL-1.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-3-clause-clear", "BSD-3-Clause-Clear"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc-by-2.0", "CC-BY-2.0"),
    ("cc-by-2.5", "CC-BY-2.5"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("cc-by-nc-2.0", "CC-BY-NC-2.0"),
    ("cc-by-nc-3.0", "CC-BY-NC-3.0"),
    ("cc-by-nc-4.0", "CC-BY-NC-4.0"),
    ("cc-by-nd-4.0", "CC-BY-ND-4.0"),
    ("cc-by-nc-nd-3.0", "CC-BY-NC-ND-3.0"),
    ("cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0"),
    ("cc-by-nc-sa-2.0", "CC-BY-NC-SA-2.0"),
    ("cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0"),
    ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"),
    ("cdla-sharing-1.0", "CDLA-Sharing-1.0"),
    ("cdla-permissive-1.0", "CDLA-Permissive-1.0"),
    ("cdla-permissive-2.0", "CDLA-Permissive-2.0"),
    ("wtfpl", "WTFPL"),
    ("ecl-2.0", "ECL-2.0"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("etalab-2.0", "etalab-2.0"),
    ("eupl-1.1", "EUPL-1.1"),
    ("eupl-1.2", "EUPL-1.2"),
    ("agpl-3.0", "AGPL-3.0"),
    ("gpl-2.0", "GPL-2.0"),
    ("gpl-3.0", "GPL-3.0"),
    ("lgpl-2.1", "LGPL-2.1"),
    ("lgpl-3.0", "LGPL-3.0"),
    ("isc", "ISC"),
    ("lppl-1.3c", "LPPL-1.3c"),
    ("ms-pl", "MS-PL"),
    ("mpl-2.0", "MPL-2.0"),
    ("odc-by", "ODC-By-1.0"),
    ("odbl", "ODbL-1.0"),
    ("osl-3.0", "OSL-3.0"),
    ("postgresql", "PostgreSQL"),
    ("ofl-1.1", "OFL-1.1"),
    ("ncsa", "NCSA"),
    ("unlicense", "Unlicense"),
    ("zlib", "Zlib"),
    ("pddl", "PDDL-1.0"),
];

/// ModelScope display names (its older SDK's `Licenses`) and the Hugging Face id each names.
const DISPLAY: &[(&str, &str)] = &[
    ("apache license 2.0", "apache-2.0"),
    ("apache license, version 2.0", "apache-2.0"),
    ("mit license", "mit"),
];

/// A license for the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// The source's license under the destination's name for it.
    Same(String),
    /// The destination's "other", and why: the source's license has no name there.
    Other { value: String, reason: String },
}

impl Mapped {
    /// The value to write at the destination.
    pub fn value(&self) -> &str {
        match self {
            Mapped::Same(v) | Mapped::Other { value: v, .. } => v,
        }
    }
}

/// The license a Hugging Face card's front matter (`cardData`) names: `license`, a string or a
/// list (then its first entry).
pub fn of_card(card: &Value) -> Option<String> {
    let l = &card["license"];
    let id = l.as_str().or_else(|| l.as_array()?.first()?.as_str())?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Whether the Hugging Face Hub takes `id` as a card's `license`.
pub fn is_hf_id(id: &str) -> bool {
    HF_IDS.contains(&id)
}

/// ModelScope's `License` for a Hugging Face license id: its SPDX id, or `Other` for the Hub's
/// own licenses (`llama3`, `openrail`, ...), whose terms travel in the repo's files.
pub fn to_modelscope(hf: &str) -> Mapped {
    let id = hf.trim().to_ascii_lowercase();
    if let Some((_, spdx)) = SPDX.iter().find(|(h, _)| *h == id) {
        return Mapped::Same((*spdx).to_string());
    }
    Mapped::Other {
        value: "Other".into(),
        reason: if id == "other" || id == "unknown" {
            format!("the source's license is {hf:?}")
        } else {
            format!("{hf} has no SPDX id, the names ModelScope takes")
        },
    }
}

/// A Hugging Face license id for ModelScope's `License` (an SPDX id in any case, or a display
/// name of its older SDK), or `other` when the Hub has no id for it.
pub fn to_hf(ms: &str) -> Mapped {
    let lower = ms.trim().to_ascii_lowercase();
    if let Some((_, id)) = DISPLAY.iter().find(|(d, _)| *d == lower) {
        return Mapped::Same((*id).to_string());
    }
    if let Some((id, _)) = SPDX.iter().find(|(_, spdx)| spdx.to_ascii_lowercase() == lower) {
        return Mapped::Same((*id).to_string());
    }
    if is_hf_id(&lower) && lower != "other" && lower != "unknown" {
        return Mapped::Same(lower);
    }
    Mapped::Other {
        value: "other".into(),
        reason: format!("{ms:?} is not one of the Hugging Face Hub's license ids"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_map_to_spdx_and_back() {
        assert_eq!(to_modelscope("cc-by-nc-4.0"), Mapped::Same("CC-BY-NC-4.0".into()));
        assert_eq!(to_modelscope("apache-2.0"), Mapped::Same("Apache-2.0".into()));
        for (hf, _) in SPDX {
            assert!(is_hf_id(hf), "{hf} is not a Hub id");
            let ms = to_modelscope(hf);
            assert_eq!(to_hf(ms.value()), Mapped::Same((*hf).to_string()), "{hf}");
        }
    }

    #[test]
    fn licenses_without_a_name_at_the_destination_become_other_with_a_reason() {
        let Mapped::Other { value, reason } = to_modelscope("llama3") else {
            panic!("llama3 has no SPDX id")
        };
        assert_eq!(value, "Other");
        assert!(reason.contains("llama3"), "{reason}");
        assert!(matches!(to_hf("Proprietary-1.0"), Mapped::Other { value, .. } if value == "other"));
        assert!(matches!(to_hf("Other"), Mapped::Other { .. }));
    }

    #[test]
    fn modelscope_spellings_reach_hub_ids() {
        assert_eq!(to_hf("MIT"), Mapped::Same("mit".into()));
        assert_eq!(to_hf("Apache License 2.0"), Mapped::Same("apache-2.0".into()));
        assert_eq!(to_hf("apache-2.0"), Mapped::Same("apache-2.0".into()));
        assert_eq!(to_hf("ODbL-1.0"), Mapped::Same("odbl".into()));
    }

    #[test]
    fn a_card_names_its_license_as_a_string_or_a_list() {
        assert_eq!(of_card(&serde_json::json!({"license": "mit"})), Some("mit".into()));
        assert_eq!(
            of_card(&serde_json::json!({"license": ["cc-by-4.0", "mit"]})),
            Some("cc-by-4.0".into())
        );
        assert_eq!(of_card(&serde_json::json!({"language": "en"})), None);
        assert_eq!(of_card(&Value::Null), None);
    }
}
