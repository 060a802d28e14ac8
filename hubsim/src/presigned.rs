//! Checking the presigned URLs a hub handed out (`sign.rs` makes them) and refusing bad ones the
//! way the stores behind the real hubs do. The CDN origin stands in for S3 (the Hub's LFS
//! uploads and parts, `X-Amz-Expires=86400`) and answers its XML errors: `AccessDenied` /
//! "Request has expired" for a URL used after `--url-ttl`, `SignatureDoesNotMatch` for a forged
//! one. Every refusal is counted in the hub's stats where it is decided, here.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::{hv, param, query_pairs};
use crate::sign::UrlError;
use crate::state::Hub;
use crate::stats::Event;
use crate::util::{iso8601, now_secs, random_hex};

/// The query parameters of a URL whose signature checked out.
pub struct Signed {
    q: Vec<(String, String)>,
}

/// A presigned URL that was refused: why, and the expiry it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub why: UrlError,
    pub exp: u64,
}

impl Signed {
    /// A query parameter (empty when absent).
    pub fn get(&self, k: &str) -> &str {
        param(&self.q, k).unwrap_or("")
    }

    /// Checks `exp` and `sig` of `query` against the signed `fields` (computed from the query),
    /// counting a refusal in the hub's stats.
    pub fn check(hub: &Hub, query: Option<&str>, fields: impl Fn(&Signed) -> Vec<String>) -> Result<Signed, Refused> {
        let s = Signed { q: query_pairs(query) };
        let exp: u64 = s.get("exp").parse().unwrap_or(0);
        let f = fields(&s);
        let refs: Vec<&str> = f.iter().map(String::as_str).collect();
        match hub.signer.verify(&refs, exp, s.get("sig")) {
            Ok(()) => Ok(s),
            Err(why) => {
                hub.stats.note(match why {
                    UrlError::Expired => Event::ExpiredUrl,
                    UrlError::BadSignature => Event::BadSignature,
                });
                tracing::warn!(?why, exp, "presigned URL refused");
                Err(Refused { why, exp })
            }
        }
    }
}

/// S3's timestamp form (`2026-01-02T03:04:05Z`).
fn s3_time(secs: u64) -> String {
    iso8601(secs).replace(".000Z", "Z")
}

/// The body S3 answers a refused presigned request with.
pub fn s3_error_body(ttl_secs: u64, refused: Refused, request_id: &str) -> String {
    let detail = match refused.why {
        UrlError::Expired => format!(
            "<Code>AccessDenied</Code><Message>Request has expired</Message>\
             <X-Amz-Expires>{}</X-Amz-Expires><Expires>{}</Expires><ServerTime>{}</ServerTime>",
            ttl_secs,
            s3_time(refused.exp),
            s3_time(now_secs())
        ),
        UrlError::BadSignature => "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated \
             does not match the signature you provided. Check your key and signing method.</Message>"
            .to_string(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>{detail}<RequestId>{request_id}</RequestId>\
         <HostId>hubsim</HostId></Error>"
    )
}

/// The object store's answer to a refused presigned URL: 403 with S3's XML error.
pub fn s3_refusal(hub: &Hub, refused: Refused) -> Response {
    let request_id = random_hex(8).to_ascii_uppercase();
    let mut resp = (
        StatusCode::FORBIDDEN,
        s3_error_body(hub.signer.ttl_secs(), refused, &request_id),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv("application/xml"));
    h.insert("x-amz-request-id", hv(&request_id));
    resp
}

/// The message of a refusal on the hub's own origin (the multipart completion URL).
pub fn message(refused: Refused) -> &'static str {
    match refused.why {
        UrlError::Expired => "Request has expired",
        UrlError::BadSignature => "The request signature does not match",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_body_is_s3s() {
        let refused = Refused {
            why: UrlError::Expired,
            exp: 1_700_000_000,
        };
        let body = s3_error_body(86_400, refused, "ABC");
        assert!(body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"));
        assert!(body.contains("<Message>Request has expired</Message>"), "{body}");
        assert!(body.contains("<Expires>2023-11-14T22:13:20Z</Expires>"), "{body}");
        assert!(body.contains("<X-Amz-Expires>86400</X-Amz-Expires>"), "{body}");
        assert!(body.ends_with("<RequestId>ABC</RequestId><HostId>hubsim</HostId></Error>"));
    }
}
