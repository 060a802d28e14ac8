//! Listings that come in pages linked by `Link: <...>; rel="next"` headers (the Hub's tree and
//! repo listings): followed only on the hub's own origin, a bounded number of times, never in a
//! loop.

use reqwest::header::LINK;

use crate::error::{Error, Result};
use crate::http::same_origin;

/// Follows a listing's `Link: <...>; rel="next"` pages: only on the hub's own origin (the next
/// page gets the token), at most `max` pages, and never the same page twice (a cursor that
/// repeats would loop for ever).
pub(crate) struct Pages {
    origin: String,
    what: String,
    max: usize,
    seen: std::collections::HashSet<String>,
}

impl Pages {
    pub(crate) fn new(endpoint: &str, what: &str, max: usize) -> Self {
        Pages {
            origin: endpoint.to_string(),
            what: what.to_string(),
            max,
            seen: Default::default(),
        }
    }

    /// The next page's URL from the headers of the page just read, or `None` at the end.
    pub(crate) fn next(&mut self, headers: &reqwest::header::HeaderMap) -> Result<Option<String>> {
        let Some(next) = headers.get(LINK).and_then(|v| v.to_str().ok()).and_then(next_link) else {
            return Ok(None);
        };
        if !same_origin(&next, &self.origin) {
            return Err(Error::Protocol(format!(
                "{}: the next page is on another host ({}), which would receive the token",
                self.what,
                crate::redact::url(&next)
            )));
        }
        let key = reqwest::Url::parse(&next)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| next.clone());
        if !self.seen.insert(key) {
            return Err(Error::Protocol(format!(
                "{}: the next page repeats a page already read",
                self.what
            )));
        }
        // The first page plus every next one seen.
        if self.seen.len() + 1 > self.max {
            return Err(Error::Protocol(format!(
                "{} goes on past {} pages",
                self.what, self.max
            )));
        }
        Ok(Some(next))
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find(|p| p.contains("rel=\"next\"")).and_then(|p| {
        let start = p.find('<')? + 1;
        let end = p.find('>')?;
        Some(p[start..end].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn link(url: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LINK, HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")).unwrap());
        h
    }

    #[test]
    fn pages_stay_on_the_origin_end_and_never_repeat() {
        assert_eq!(
            next_link("<http://h/api?cursor=abc>; rel=\"next\"").as_deref(),
            Some("http://h/api?cursor=abc")
        );
        assert_eq!(next_link("<http://h/x>; rel=\"prev\""), None);
        let mut p = Pages::new("http://h", "the listing", 3);
        assert_eq!(p.next(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            p.next(&link("http://h:80/a?c=1")).unwrap().as_deref(),
            Some("http://h:80/a?c=1")
        );
        let e = p.next(&link("http://h/a?c=1")).unwrap_err().to_string();
        assert!(e.contains("repeats"), "{e}");
        let e = p.next(&link("http://evil.example/a?c=2")).unwrap_err().to_string();
        assert!(e.contains("another host"), "{e}");
        assert!(p.next(&link("http://h/a?c=2")).is_ok());
        let e = p.next(&link("http://h/a?c=3")).unwrap_err().to_string();
        assert!(e.contains("past 3 pages"), "{e}");
    }
}
