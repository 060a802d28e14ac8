//! Custom resources against their structural `openAPIV3Schema`, as the API server treats them:
//! unknown fields are pruned (and reported, for `fieldValidation=Strict|Warn`), defaults are
//! applied, `null` in a non-nullable field is dropped, and types, `required`, `enum`, lengths,
//! item counts and numeric bounds are validated (422). Not implemented: `pattern`, `format`,
//! CEL rules (`x-kubernetes-validations`) and list-type uniqueness.

use serde_json::{Map, Value};

use crate::error::FieldError;

/// What checking an object against a schema found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Fields pruned because the schema does not declare them (`spec.foo`).
    pub unknown: Vec<String>,
    /// Validation errors.
    pub errors: Vec<FieldError>,
}

/// Prunes, defaults and validates a custom resource in place.
pub fn process(obj: &mut Value, schema: &Value) -> Outcome {
    let mut out = Outcome::default();
    let Some(map) = obj.as_object_mut() else {
        return out;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        if k == "apiVersion" || k == "kind" || k == "metadata" {
            continue;
        }
        match props.and_then(|p| p.get(&k)) {
            Some(s) => {
                let v = map.get_mut(&k).expect("present");
                if v.is_null() && s["nullable"].as_bool() != Some(true) {
                    map.remove(&k);
                } else {
                    walk(v, s, &k, &mut out);
                }
            }
            None if preserve || props.is_none() => {}
            None => {
                map.remove(&k);
                out.unknown.push(k);
            }
        }
    }
    defaults_and_required(map, schema, "", &mut out);
    out
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => type_name(v) == "integer",
        "number" => v.is_number(),
        _ => true,
    }
}

fn walk(v: &mut Value, s: &Value, path: &str, out: &mut Outcome) {
    if v.is_null() {
        return;
    }
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(v.is_string() || type_name(v) == "integer") {
            out.errors.push(FieldError::invalid(
                path,
                &Value::String(type_name(v).into()),
                &format!("{path} in body must be of type integer or string: {:?}", type_name(v)),
            ));
        }
        return;
    }
    if let Some(ty) = s["type"].as_str()
        && !type_ok(v, ty)
    {
        out.errors.push(FieldError::invalid(
            path,
            &Value::String(type_name(v).into()),
            &format!("{path} in body must be of type {ty}: {:?}", type_name(v)),
        ));
        return;
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map(String::from).unwrap_or(a.to_string()))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        out.errors.push(FieldError::unsupported(path, v, &refs));
    }
    match v {
        Value::Object(map) => object(map, s, path, out),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = s["maxItems"].as_u64().filter(|m| n > *m) {
                out.errors.push(FieldError {
                    kind: "FieldValueTooMany",
                    field: path.into(),
                    message: format!("Too many: {n}: must have at most {max} items"),
                });
            }
            if let Some(min) = s["minItems"].as_u64().filter(|m| n < *m) {
                out.errors.push(FieldError {
                    kind: "FieldValueInvalid",
                    field: path.into(),
                    message: format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                });
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(max) = s["maxLength"].as_u64().filter(|m| n > *m) {
                out.errors.push(FieldError {
                    kind: "FieldValueTooLong",
                    field: path.into(),
                    message: format!("Too long: may not be more than {max} bytes"),
                });
            }
            if let Some(min) = s["minLength"].as_u64().filter(|m| n < *m) {
                out.errors.push(FieldError::invalid(
                    path,
                    &Value::String(text.clone()),
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
            // The API server's patterns are Go's RE2, which the regex crate speaks.
            if let Some(pattern) = s["pattern"].as_str()
                && !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
            {
                out.errors.push(FieldError::invalid(
                    path,
                    &Value::String(text.clone()),
                    &format!("{path} in body should match '{pattern}'"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_min = s["exclusiveMinimum"].as_bool() == Some(true);
            let excl_max = s["exclusiveMaximum"].as_bool() == Some(true);
            if let Some(min) = s["minimum"].as_f64()
                && (x < min || (excl_min && x == min))
            {
                let cmp = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.errors.push(FieldError::invalid(
                    path,
                    &Value::Number(n.clone()),
                    &format!("{path} in body should be {cmp} {min}"),
                ));
            }
            if let Some(max) = s["maximum"].as_f64()
                && (x > max || (excl_max && x == max))
            {
                let cmp = if excl_max { "less than" } else { "less than or equal to" };
                out.errors.push(FieldError::invalid(
                    path,
                    &Value::Number(n.clone()),
                    &format!("{path} in body should be {cmp} {max}"),
                ));
            }
        }
        _ => {}
    }
}

fn object(map: &mut Map<String, Value>, s: &Value, path: &str, out: &mut Outcome) {
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties");
    let preserve = s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let embedded = s["x-kubernetes-embedded-resource"].as_bool() == Some(true);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let child = join(path, &k);
        if embedded && (k == "apiVersion" || k == "kind" || k == "metadata") {
            continue;
        }
        let sub = props.and_then(|p| p.get(&k)).or(additional.filter(|a| a.is_object()));
        match sub {
            Some(cs) => {
                let v = map.get_mut(&k).expect("present");
                if v.is_null() && cs["nullable"].as_bool() != Some(true) {
                    map.remove(&k);
                } else {
                    walk(v, cs, &child, out);
                }
            }
            None if preserve || additional.and_then(Value::as_bool) == Some(true) => {}
            None if props.is_none() && additional.is_none() => {
                // A schema without properties (e.g. `type: object` only) keeps nothing, like a
                // real server, unless unknown fields are preserved.
                map.remove(&k);
                out.unknown.push(child);
            }
            None => {
                map.remove(&k);
                out.unknown.push(child);
            }
        }
    }
    defaults_and_required(map, s, path, out);
    let n = map.len() as u64;
    if let Some(max) = s["maxProperties"].as_u64().filter(|m| n > *m) {
        out.errors.push(FieldError {
            kind: "FieldValueTooMany",
            field: path.into(),
            message: format!("Too many: {n}: must have at most {max} items"),
        });
    }
}

fn defaults_and_required(map: &mut Map<String, Value>, s: &Value, path: &str, out: &mut Outcome) {
    for (k, ps) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
        if !map.contains_key(k)
            && let Some(d) = ps.get("default")
        {
            let mut d = d.clone();
            walk(&mut d, ps, &join(path, k), &mut Outcome::default());
            map.insert(k.clone(), d);
        }
    }
    for r in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(r) {
            out.errors.push(FieldError::required(join(path, r), ""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["source"], "properties": {
                "source": {"type": "string", "minLength": 1},
                "parallel": {"type": "integer", "default": 4, "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "endpoints": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "maybe": {"type": "string", "nullable": true},
                "size": {"type": "string", "pattern": "^[0-9]+(Mi|Gi)?$"}
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }})
    }

    #[test]
    fn prunes_defaults_and_validates() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"source": "s", "bogus": 1, "endpoints": {"hf": "u"}, "extra": {"any": 1}, "maybe": null, "size": "4Mi"},
            "status": {"phase": "P", "junk": true}, "top": 1});
        let out = process(&mut o, &schema());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.unknown, vec!["spec.bogus", "status.junk", "top"]);
        assert_eq!(o["spec"]["parallel"], 4);
        assert_eq!(o["spec"]["extra"]["any"], 1);
        assert!(o["spec"]["maybe"].is_null() && o["spec"].get("maybe").is_some());

        let mut bad = json!({"spec": {"parallel": "x", "mode": "c", "size": "lots"}});
        let out = process(&mut bad, &schema());
        let fields: Vec<&str> = out.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.mode", "spec.parallel", "spec.size", "spec.source"]);
        let size = out.errors.iter().find(|e| e.field == "spec.size").unwrap();
        assert!(
            size.message.contains("should match '^[0-9]+(Mi|Gi)?$'"),
            "{}",
            size.message
        );
    }
}
