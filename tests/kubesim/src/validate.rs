//! Validation every object gets, worded like the API server's: names (DNS subdomain, DNS label,
//! DNS-1035 label), label and annotation keys and values, owner references, finalizers, and
//! resource quantities (`500m`, `4Gi`; `30GB` is refused as it is by a real server).

use serde_json::Value;

use crate::error::FieldError;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
                                 and must start and end with an alphanumeric character (e.g. 'my-name',  or \
                                 '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                                     characters, '-' or '.', and must start and end with an alphanumeric character \
                                     (e.g. 'example.com', regex used for validation is \
                                     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an \
                           alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or \
                           'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and \
                             end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex \
                             used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
                               or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
                               'my_value',  or '12345', regex used for validation is \
                               '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 label (namespaces).
pub fn is_dns_label(s: &str) -> bool {
    is_label(s)
}

/// RFC 1123 subdomain (most object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// DNS-1035 label (Service names).
pub fn is_dns1035(s: &str) -> bool {
    is_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Errors of a qualified name (`prefix/name`), as label and annotation keys must be.
pub fn qualified_name_errors(field: &str, key: &str) -> Vec<FieldError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut errs = Vec::new();
    let v = Value::String(key.into());
    if let Some(p) = prefix
        && (p.is_empty() || !is_dns_subdomain(p))
    {
        errs.push(FieldError::invalid(
            field,
            &v,
            &format!("prefix part {DNS1123_SUBDOMAIN_MSG}"),
        ));
    }
    if name.len() > 63 {
        errs.push(FieldError::invalid(
            field,
            &v,
            "name part must be no more than 63 characters",
        ));
    } else if !is_qualified_name_part(name) {
        errs.push(FieldError::invalid(field, &v, QUALIFIED_MSG));
    }
    errs
}

/// Errors of a label value.
pub fn label_value_errors(field: &str, value: &str) -> Vec<FieldError> {
    let v = Value::String(value.into());
    if value.len() > 63 {
        vec![FieldError::invalid(field, &v, "must be no more than 63 characters")]
    } else if !value.is_empty() && !is_qualified_name_part(value) {
        vec![FieldError::invalid(field, &v, LABEL_VALUE_MSG)]
    } else {
        vec![]
    }
}

/// Which rule an object name follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
}

/// Errors of `metadata` common to every object.
pub fn metadata_errors(obj: &Value, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = &obj["metadata"];
    if let Some(name) = meta["name"].as_str() {
        let (ok, msg) = match rule {
            NameRule::Subdomain => (is_dns_subdomain(name), DNS1123_SUBDOMAIN_MSG),
            NameRule::Label => (is_dns_label(name), DNS1123_LABEL_MSG),
            NameRule::Dns1035 => (is_dns1035(name), DNS1035_MSG),
        };
        if !ok {
            errs.push(FieldError::invalid("metadata.name", &meta["name"], msg));
        }
    }
    for (k, v) in meta["labels"].as_object().into_iter().flatten() {
        errs.extend(qualified_name_errors("metadata.labels", k));
        match v.as_str() {
            Some(s) => errs.extend(label_value_errors("metadata.labels", s)),
            None => errs.push(FieldError::invalid(
                "metadata.labels",
                v,
                "label values must be strings",
            )),
        }
    }
    let mut total = 0;
    for (k, v) in meta["annotations"].as_object().into_iter().flatten() {
        errs.extend(qualified_name_errors("metadata.annotations", k));
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > 256 * 1024 {
        errs.push(FieldError {
            kind: "FieldValueTooLong",
            field: "metadata.annotations".into(),
            message: "Too long: must have at most 262144 bytes".into(),
        });
    }
    let mut controllers = 0;
    for (i, r) in meta["ownerReferences"].as_array().into_iter().flatten().enumerate() {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r[f].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("metadata.ownerReferences[{i}].{f}"), ""));
            }
        }
        if r["controller"].as_bool() == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            &meta["ownerReferences"],
            "Only one reference can have Controller set to true",
        ));
    }
    for (i, f) in meta["finalizers"].as_array().into_iter().flatten().enumerate() {
        let s = f.as_str().unwrap_or_default();
        let field = format!("metadata.finalizers[{i}]");
        if !s.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&s) {
            errs.push(FieldError::invalid(
                field,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        } else {
            errs.extend(qualified_name_errors(&field, s));
        }
    }
    errs
}

/// Parses a resource quantity (`100m`, `1.5Gi`, `2e3`, `64Mi`) to its value; `None` if invalid.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    if num.is_empty() || num == "." {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

fn quantity_value(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Errors of a container's `resources`: valid quantities, requests not above limits.
pub fn resources_errors(field: &str, res: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for part in ["requests", "limits"] {
        for (name, q) in res[part].as_object().into_iter().flatten() {
            let f = format!("{field}.{part}[{name}]");
            if quantity_value(q).is_none() {
                errs.push(FieldError::invalid(
                    &f,
                    q,
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                ));
            } else if quantity_value(q).is_some_and(|x| x < 0.0) {
                errs.push(FieldError::invalid(&f, q, "must be greater than or equal to 0"));
            }
            let standard = ["cpu", "memory", "ephemeral-storage"].contains(&name.as_str())
                || name.starts_with("hugepages-")
                || name.contains('/');
            if !standard {
                errs.push(FieldError::invalid(
                    format!("{field}.{part}[{name}]"),
                    &Value::String(name.clone()),
                    "must be a standard resource type or fully qualified",
                ));
            }
        }
    }
    for (name, req) in res["requests"].as_object().into_iter().flatten() {
        if let (Some(r), Some(l)) = (quantity_value(req), res["limits"].get(name).and_then(quantity_value))
            && r > l
        {
            errs.push(FieldError::invalid(
                format!("{field}.requests"),
                req,
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    res["limits"][name].as_str().unwrap_or("")
                ),
            ));
        }
    }
    errs
}

/// Errors of an environment variable name.
pub fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_labels() {
        assert!(is_dns_subdomain("m1-chunk-0.x"));
        assert!(!is_dns_subdomain("Bad_Name"));
        assert!(is_dns1035("svc-1"));
        assert!(!is_dns1035("1svc"));
        let obj = json!({"metadata": {"name": "ok", "labels": {"hubmigrate.dev/migration": "m1", "bad key": "x",
                                                               "v": "a/b"}}});
        let errs = metadata_errors(&obj, NameRule::Subdomain);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("4Gi"), Some(4.0 * 1024f64.powi(3)));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("30GB"), None);
        let errs = resources_errors(
            "r",
            &json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
        );
        assert_eq!(errs.len(), 1);
    }
}
