//! Reading ModelScope's answers: the payload of either envelope ([`data`]), requests whose
//! failures keep the legacy envelope's business code ([`Failure`], sent through the crate's one
//! retry loop), the "already exists" classification of repo creation, visibility from repo info,
//! hub messages made fit for one log line, and the multipart form body of dataset creation.

use serde_json::Value;

use super::MsClient;
use crate::error::{Error, Result};
use crate::http::{random_u64, retry_after};
use crate::redact::Secret;

/// Business codes meaning "the repo already exists" (model cn, dataset cn, international).
const CODES_EXISTS: [i64; 3] = [10010101001, 10020101001, 10010202004];

/// The payload of either envelope: `Data` (legacy), `data` (OpenAPI), or the body itself.
pub(super) fn data(v: &Value) -> &Value {
    v.get("Data").or_else(|| v.get("data")).unwrap_or(v)
}

/// A failed request with the legacy envelope's business code, when the answer had one.
pub(super) struct Failure {
    pub(super) error: Error,
    pub(super) code: Option<i64>,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        f.error
    }
}

impl MsClient {
    /// Sends the request `build` makes and reads its JSON answer, retrying while `retryable`
    /// says so, through the crate's one retry loop ([`crate::http::Http::send_with`]: bounded,
    /// jittered, honouring `Retry-After`). Unlike [`crate::http::Http::send`] the failure keeps
    /// the legacy envelope's business code, and a `200` whose envelope says `Success: false` is
    /// a failure too.
    pub(super) async fn send_coded(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
        retryable: impl Fn(&Error, Option<i64>) -> bool,
    ) -> Result<Value, Failure> {
        self.http
            .send_with(
                what,
                build,
                |resp| async move { self.read_coded(what, resp).await.map_err(|f| (f.error, f.code)) },
                |err, code| retryable(err, *code),
            )
            .await
            .map_err(|(error, code)| Failure { error, code })
    }

    /// The JSON answer of a response, or its failure with the business code.
    async fn read_coded(&self, what: &str, resp: reqwest::Response) -> Result<Value, Failure> {
        let status = resp.status();
        let ra = retry_after(&resp);
        let header_msg = resp
            .headers()
            .get("x-error-message")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = crate::http::text_capped(what, resp)
            .await
            .map_err(|error| Failure { error, code: None })?;
        let json: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        let code = json.as_ref().and_then(|v| {
            let c = v.get("Code")?;
            c.as_i64().or_else(|| c.as_str()?.trim().parse().ok())
        });
        let envelope_failed = json.as_ref().is_some_and(|v| {
            v.get("Success").and_then(Value::as_bool) == Some(false)
                || v.get("success").and_then(Value::as_bool) == Some(false)
                || code.is_some_and(|c| c != 200)
        });
        if status.is_success() && !envelope_failed {
            return json.ok_or_else(|| Failure {
                error: Error::Protocol(format!("{what}: the answer is not JSON")),
                code: None,
            });
        }
        let body_msg = json.as_ref().and_then(|v| {
            ["Message", "message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
        });
        let mut message = header_msg
            .or(body_msg)
            .unwrap_or_else(|| text.chars().take(300).collect());
        if message.trim().is_empty() {
            message = status.canonical_reason().unwrap_or("error").to_string();
        }
        if let Some(c) = code.filter(|c| *c != i64::from(status.as_u16())) {
            message = format!("{message} (code {c})");
        }
        Err(Failure {
            error: Error::Http {
                what: what.to_string(),
                status: status.as_u16(),
                message: one_line(&message, self.token.as_ref()),
                retry_after: ra,
            },
            code,
        })
    }
}

/// Does a create-repo failure mean "it exists already"?
pub(super) fn already_exists(status: u16, code: Option<i64>, message: &str) -> bool {
    if status == 409 || code.is_some_and(|c| CODES_EXISTS.contains(&c)) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    status == 400
        && [
            "exist",
            "already",
            "can not be used",
            "not available",
            "已被注册",
            "已存在",
            "名称不可用",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// `private` from legacy repo info: `Visibility` 5 is public, 1 and 3 (internal) private.
/// Unknown visibility counts as private: never publish what might be private.
pub(super) fn private_of(d: &Value) -> bool {
    let vis = d
        .get("Visibility")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()));
    match vis {
        Some(5) => false,
        Some(_) => true,
        None => match d.get("Private").or_else(|| d.get("private")).and_then(Value::as_bool) {
            Some(p) => p,
            None => {
                tracing::warn!("repo info without Visibility: treating the repo as private");
                true
            }
        },
    }
}

/// A hub message fit for one log line: whitespace collapsed, URLs redacted, the token (should a
/// hub ever echo it) removed, and at most 300 characters.
pub(super) fn one_line(msg: &str, token: Option<&Secret>) -> String {
    let mut out = msg
        .split_whitespace()
        .map(|w| {
            if w.contains("://") {
                crate::redact::url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(t) = token.map(Secret::expose).filter(|t| t.len() >= 4) {
        out = out.replace(t, "***");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

/// A `multipart/form-data` body of text fields.
pub(super) fn multipart_body(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

/// A fresh multipart boundary that none of `values` contains.
pub(super) fn boundary(values: &[&str]) -> String {
    loop {
        let b = format!("hubmigrate-{:016x}{:016x}", random_u64(), random_u64());
        if !values.iter().any(|v| v.contains(&b)) {
            return b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_visibility() {
        assert!(!private_of(&json!({"Visibility": 5})));
        assert!(private_of(&json!({"Visibility": 1})));
        assert!(private_of(&json!({"Visibility": 3})));
        assert!(private_of(&json!({"Visibility": "1"})));
        assert!(!private_of(&json!({"private": false})));
        assert!(private_of(&json!({})));
    }

    #[test]
    fn exists_classification() {
        assert!(already_exists(400, Some(10010101001), "该名称已被注册使用，请重新命名"));
        assert!(already_exists(400, None, "该名称已被注册使用，请重新命名"));
        assert!(already_exists(400, None, "name is already in use"));
        assert!(already_exists(409, None, "DuplicateEntity"));
        assert!(!already_exists(403, None, "no permission"));
        assert!(!already_exists(400, None, "invalid Visibility 7"));
    }

    #[test]
    fn multipart_encoding() {
        let body = multipart_body("XyZ", &[("Owner", "alice"), ("Visibility", "5")]);
        assert_eq!(
            body,
            "--XyZ\r\nContent-Disposition: form-data; name=\"Owner\"\r\n\r\nalice\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"Visibility\"\r\n\r\n5\r\n--XyZ--\r\n"
        );
        let b = boundary(&["alice", "ds"]);
        assert!(b.starts_with("hubmigrate-") && b.len() == 11 + 32);
        assert_ne!(b, boundary(&[]));
    }

    #[test]
    fn messages_are_one_line_and_secret_free() {
        let t = Secret::new("ms-secret-token");
        let m = one_line(
            "bad\n token ms-secret-token at https://lfs.x/obj?sig=abc\tend",
            Some(&t),
        );
        assert_eq!(m, "bad token *** at https://lfs.x/obj?*** end");
        assert!(one_line(&"x".repeat(1000), None).chars().count() <= 301);
    }
}
