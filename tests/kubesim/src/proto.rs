//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which `kubectl create
//! secret|configmap|namespace` send. kubesim decodes the `k8s\0` envelope and those three kinds
//! (metadata names, labels, annotations, owner references, finalizers, and the kinds' own fields)
//! into JSON; other kinds are refused with 415, and `kubectl create ... --dry-run=client -o yaml |
//! kubectl apply -f -` sends them as JSON instead. Responses are always JSON, which every client
//! accepts.

use base64::Engine;
use serde_json::{Map, Value, json};

/// One decoded field: number and value.
enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push(Field::Varint(num, varint(buf, &mut pos)?)),
            1 => pos += 8,
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                out.push(Field::Bytes(num, &buf[pos..end]));
                pos = end;
            }
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A `map<string, string|bytes>` entry.
fn entry(b: &[u8], bytes: bool) -> Option<(String, Value)> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => k = String::from_utf8_lossy(x).into_owned(),
            Field::Bytes(2, x) if bytes => v = Value::String(base64::engine::general_purpose::STANDARD.encode(x)),
            Field::Bytes(2, x) => v = text(x),
            _ => {}
        }
    }
    Some((k, v))
}

fn owner_reference(b: &[u8]) -> Option<Value> {
    let mut r = Map::new();
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => r.insert("kind".into(), text(x)),
            Field::Bytes(3, x) => r.insert("name".into(), text(x)),
            Field::Bytes(4, x) => r.insert("uid".into(), text(x)),
            Field::Bytes(5, x) => r.insert("apiVersion".into(), text(x)),
            Field::Varint(6, x) => r.insert("controller".into(), json!(x != 0)),
            Field::Varint(7, x) => r.insert("blockOwnerDeletion".into(), json!(x != 0)),
            _ => None,
        };
    }
    Some(Value::Object(r))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut owners, mut finalizers) = (Map::new(), Map::new(), Vec::new(), Vec::new());
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => {
                m.insert("name".into(), text(x));
            }
            Field::Bytes(2, x) => {
                m.insert("generateName".into(), text(x));
            }
            Field::Bytes(3, x) => {
                m.insert("namespace".into(), text(x));
            }
            Field::Bytes(6, x) => {
                m.insert("resourceVersion".into(), text(x));
            }
            Field::Bytes(11, x) => {
                let (k, v) = entry(x, false)?;
                labels.insert(k, v);
            }
            Field::Bytes(12, x) => {
                let (k, v) = entry(x, false)?;
                annotations.insert(k, v);
            }
            Field::Bytes(13, x) => owners.push(owner_reference(x)?),
            Field::Bytes(14, x) => finalizers.push(text(x)),
            _ => {}
        }
    }
    for (k, v) in [
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
    ] {
        if v.as_object().is_some_and(|o| !o.is_empty()) {
            m.insert(k.into(), v);
        }
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Some(Value::Object(m))
}

fn secret_or_configmap(raw: &[u8], secret: bool) -> Option<Value> {
    let mut obj = Map::new();
    let (mut data, mut other) = (Map::new(), Map::new());
    for f in fields(raw)? {
        match (secret, f) {
            (_, Field::Bytes(1, x)) => {
                obj.insert("metadata".into(), object_meta(x)?);
            }
            (true, Field::Bytes(2, x)) | (false, Field::Bytes(3, x)) => {
                let (k, v) = entry(x, true)?;
                if secret {
                    data.insert(k, v)
                } else {
                    other.insert(k, v)
                };
            }
            (true, Field::Bytes(4, x)) | (false, Field::Bytes(2, x)) => {
                let (k, v) = entry(x, false)?;
                if secret {
                    other.insert(k, v)
                } else {
                    data.insert(k, v)
                };
            }
            (true, Field::Bytes(3, x)) => {
                obj.insert("type".into(), text(x));
            }
            (true, Field::Varint(5, x)) | (false, Field::Varint(4, x)) => {
                obj.insert("immutable".into(), json!(x != 0));
            }
            _ => {}
        }
    }
    let (data_key, other_key) = if secret {
        ("data", "stringData")
    } else {
        ("data", "binaryData")
    };
    if !data.is_empty() {
        obj.insert(data_key.into(), Value::Object(data));
    }
    if !other.is_empty() {
        obj.insert(other_key.into(), Value::Object(other));
    }
    Some(Value::Object(obj))
}

/// Decodes a protobuf request body into JSON, or explains why it cannot.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(b"k8s\x00")
        .ok_or("not a Kubernetes protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for f in fields(envelope).ok_or("malformed protobuf envelope")? {
        match f {
            Field::Bytes(1, tm) => {
                for t in fields(tm).ok_or("malformed TypeMeta")? {
                    match t {
                        Field::Bytes(1, x) => api_version = String::from_utf8_lossy(x).into_owned(),
                        Field::Bytes(2, x) => kind = String::from_utf8_lossy(x).into_owned(),
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, x) => raw = x,
            _ => {}
        }
    }
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret_or_configmap(raw, true),
        ("v1", "ConfigMap") => secret_or_configmap(raw, false),
        ("v1", "Namespace") => fields(raw).map(|fs| {
            let mut o = Map::new();
            for f in fs {
                if let Field::Bytes(1, x) = f
                    && let Some(m) = object_meta(x)
                {
                    o.insert("metadata".into(), m);
                }
            }
            Value::Object(o)
        }),
        _ => {
            return Err(format!(
                "kubesim decodes protobuf only for v1 Secret, ConfigMap and Namespace, not {api_version} {kind}; send \
                 JSON (e.g. kubectl create ... --dry-run=client -o yaml | kubectl apply -f -)"
            ));
        }
    }
    .ok_or_else(|| format!("malformed protobuf {kind}"))?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u32, b: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_secret() {
        let meta = [
            ld(1, b"tok"),
            ld(3, b"default"),
            ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()),
        ]
        .concat();
        let secret = [
            ld(1, &meta),
            ld(2, &[ld(1, b"HF_TOKEN"), ld(2, b"abc")].concat()),
            ld(3, b"Opaque"),
        ]
        .concat();
        let envelope = [ld(1, &[ld(1, b"v1"), ld(2, b"Secret")].concat()), ld(2, &secret)].concat();
        let body = [b"k8s\x00".as_slice(), &envelope].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "tok");
        assert_eq!(v["metadata"]["labels"]["app"], "x");
        assert_eq!(v["data"]["HF_TOKEN"], "YWJj");
        assert_eq!(v["type"], "Opaque");
    }
}
