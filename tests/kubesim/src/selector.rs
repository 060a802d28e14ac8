//! Label selectors (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) and field
//! selectors (`metadata.name=x`, `status.phase!=Running`), parsed and matched as the API server
//! does, including its refusal of field labels a resource does not support.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::util::{get_path, labels};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default)]
pub struct LabelSelector(Vec<Requirement>);

fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    let (prefix, name) = k.rsplit_once('/').unwrap_or(("", k));
    let ok_name = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok_name && (k.rsplit_once('/').is_none() || !prefix.is_empty())
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn bad(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {why} (in selector {sel:?})"))
}

impl LabelSelector {
    /// Parses `?labelSelector=`; malformed selectors are a 400.
    pub fn parse(sel: &str) -> ApiResult<LabelSelector> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for term in split_top(sel) {
            let t = term.trim();
            if t.is_empty() {
                return Err(bad(sel, "found '', expected: identifier"));
            }
            let req = if let Some(k) = t.strip_prefix('!') {
                Requirement {
                    key: k.trim().into(),
                    op: Op::DoesNotExist,
                    values: vec![],
                }
            } else if let Some((k, rest)) = split_set_op(t) {
                let (op, list) = rest;
                let inner = list
                    .trim()
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(|| bad(sel, "expected a parenthesised list of values"))?;
                let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
                Requirement {
                    key: k.trim().into(),
                    op,
                    values,
                }
            } else if let Some((k, v)) = t.split_once("!=") {
                Requirement {
                    key: k.trim().into(),
                    op: Op::NotEq,
                    values: vec![v.trim().into()],
                }
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                Requirement {
                    key: k.trim().into(),
                    op: Op::Eq,
                    values: vec![v.trim().into()],
                }
            } else {
                Requirement {
                    key: t.into(),
                    op: Op::Exists,
                    values: vec![],
                }
            };
            if !valid_key(&req.key) {
                return Err(bad(sel, &format!("invalid label key {:?}", req.key)));
            }
            if let Some(v) = req.values.iter().find(|v| !valid_value(v)) {
                return Err(bad(sel, &format!("invalid label value: {v:?}")));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Builds a selector from a `LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::Eq,
                values: vec![v.as_str().unwrap_or("").into()],
            });
        }
        for e in sel["matchExpressions"].as_array().into_iter().flatten() {
            let op = match e["operator"].as_str().unwrap_or("") {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                _ => Op::DoesNotExist,
            };
            let values = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            reqs.push(Requirement {
                key: e["key"].as_str().unwrap_or("").into(),
                op,
                values,
            });
        }
        LabelSelector(reqs)
    }

    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's labels match.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = labels(obj);
        let get = |k: &str| labels.iter().find(|(lk, _)| lk == k).map(|(_, v)| v.as_str());
        self.0.iter().all(|r| match r.op {
            Op::Eq => get(&r.key) == Some(r.values[0].as_str()),
            Op::NotEq => get(&r.key) != Some(r.values[0].as_str()),
            Op::In => get(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
            Op::NotIn => get(&r.key).is_none_or(|v| !r.values.iter().any(|x| x == v)),
            Op::Exists => get(&r.key).is_some(),
            Op::DoesNotExist => get(&r.key).is_none(),
        })
    }
}

fn split_set_op(t: &str) -> Option<(&str, (Op, &str))> {
    for (word, op) in [(" notin ", Op::NotIn), (" in ", Op::In)] {
        if let Some(i) = t.find(word) {
            return Some((&t[..i], (op, &t[i + word.len()..])));
        }
        let compact = word.trim_end();
        if let Some(i) = t.find(&format!("{compact}(")) {
            return Some((&t[..i], (op, &t[i + compact.len()..])));
        }
    }
    None
}

/// A parsed field selector; only `=`, `==` and `!=` exist.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `?fieldSelector=`, refusing fields outside `metadata.name`, `metadata.namespace`
    /// and the resource's own `allowed` ones (400, like the API server).
    pub fn parse(sel: &str, allowed: &[String], kind: &str, api_version: &str) -> ApiResult<FieldSelector> {
        let mut terms = Vec::new();
        for t in sel.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{sel}'; can't understand '{t}'"
                )));
            };
            let field = field.trim();
            if !(field == "metadata.name" || field == "metadata.namespace" || allowed.iter().any(|a| a == field)) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}; {api_version} {kind} supports only metadata.name and \
                     metadata.namespace{}",
                    if allowed.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", allowed.join(", "))
                    }
                )));
            }
            terms.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, want)| {
            let have = match get_path(obj, field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "labels": labels}})
    }

    #[test]
    fn label_selectors() {
        let o = obj(json!({"app": "a", "tier": "web"}));
        for (sel, want) in [
            ("app=a", true),
            ("app==a,tier=web", true),
            ("app!=a", false),
            ("app in (a, b)", true),
            ("tier notin (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing!=x", true),
            ("hubmigrate.dev/chunk", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a=b=c").is_err());
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "x"}, "status": {"phase": "Running"}});
        let allowed = vec!["status.phase".to_string()];
        let s = FieldSelector::parse("metadata.name=x,status.phase!=Failed", &allowed, "Pod", "v1").unwrap();
        assert!(s.matches(&o));
        assert!(FieldSelector::parse("spec.foo=x", &allowed, "Pod", "v1").is_err());
    }
}
