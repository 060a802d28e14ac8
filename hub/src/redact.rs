//! Keeps secrets out of logs, errors and reports: credentials in URLs and signatures in query
//! strings are replaced before a URL is ever shown.

/// A token that never prints: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token; empty strings are treated as absent by callers.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The token itself, for an Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A URL fit for logs: `user:password@` and the whole query string are replaced.
pub fn url(u: &str) -> String {
    let (base, query) = match u.split_once('?') {
        Some((b, _)) => (b, "?***"),
        None => (u, ""),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, String::new()));
            let host = host
                .rsplit_once('@')
                .map(|(_, h)| format!("***@{h}"))
                .unwrap_or_else(|| host.to_string());
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    format!("{base}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(url("https://u:tok@host/a/b?sig=x"), "https://***@host/a/b?***");
        assert_eq!(url("http://127.0.0.1:8/x"), "http://127.0.0.1:8/x");
        assert_eq!(
            format!("{:?} {}", Secret::new("hf_x"), Secret::new("hf_x")),
            "Secret(***) ***"
        );
    }
}
