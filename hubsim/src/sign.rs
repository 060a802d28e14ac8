//! Self-authorising URLs, like the presigned S3 and CDN URLs the real hubs hand out: the LFS
//! batch API returns upload and download hrefs that carry an expiry and an HMAC-SHA256 signature
//! instead of the caller's token (the official clients send no Authorization to them). The key
//! is random per process, so URLs die with the server; `--url-ttl` says how long they live.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::util::{now_secs, random_hex};

/// Signs and checks URL parameters.
pub struct Signer {
    key: Vec<u8>,
    ttl_secs: u64,
}

/// How long handed-out URLs stay valid unless `--url-ttl` says otherwise (S3's presigned LFS
/// upload URLs on the Hub carry `X-Amz-Expires=86400`).
pub const DEFAULT_URL_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// The signature does not match the fields (tampered, or signed by another process).
    BadSignature,
    /// Genuine but past its expiry.
    Expired,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new(DEFAULT_URL_TTL)
    }
}

impl Signer {
    /// A signer with a fresh random key whose URLs live `ttl` (whole seconds, at least one).
    pub fn new(ttl: Duration) -> Self {
        let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        Signer {
            key: random_hex(32).into_bytes(),
            ttl_secs: ttl_secs.max(1),
        }
    }

    /// The lifetime of the URLs this signer hands out, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// HMAC-SHA256 (RFC 2104) of `msg`, hex.
    fn mac(&self, msg: &str) -> String {
        const BLOCK: usize = 64;
        let mut k = if self.key.len() > BLOCK {
            Sha256::digest(&self.key).to_vec()
        } else {
            self.key.clone()
        };
        k.resize(BLOCK, 0);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(msg.as_bytes())
            .finalize();
        hex::encode(Sha256::new().chain_update(&opad).chain_update(inner).finalize())
    }

    /// Returns the expiry (Unix seconds) and signature of the given fields (joined with `|`).
    /// The URL works while the clock's whole seconds have not passed the expiry: for at least
    /// the TTL and less than one second longer.
    pub fn sign(&self, fields: &[&str]) -> (u64, String) {
        let exp = self.expiry();
        (exp, self.sign_until(fields, exp))
    }

    /// The expiry of a URL signed now (Unix seconds).
    pub fn expiry(&self) -> u64 {
        now_secs() + self.ttl_secs
    }

    /// The signature of `fields` with an expiry from [`Signer::expiry`], for URLs that are
    /// handed out together and must say the same `expires_at`.
    pub fn sign_until(&self, fields: &[&str], exp: u64) -> String {
        self.mac(&format!("{}|{exp}", fields.join("|")))
    }

    /// Checks a signature produced by [`Signer::sign`] for the same fields, then its expiry
    /// (so an edited expiry reads as a bad signature, never as "expired").
    pub fn verify(&self, fields: &[&str], exp: u64, sig: &str) -> Result<(), UrlError> {
        let want = self.mac(&format!("{}|{exp}", fields.join("|")));
        // Constant-time comparison: the signature is the credential of these URLs.
        let same = want.len() == sig.len() && want.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            Err(UrlError::BadSignature)
        } else if exp < now_secs() {
            Err(UrlError::Expired)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_fields() {
        let s = Signer::default();
        let (exp, sig) = s.sign(&["upload", "abc", "12"]);
        assert_eq!(s.verify(&["upload", "abc", "12"], exp, &sig), Ok(()));
        assert_eq!(
            s.verify(&["upload", "abc", "13"], exp, &sig),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            s.verify(&["upload", "abc", "12"], exp + 1, &sig),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            Signer::default().verify(&["upload", "abc", "12"], exp, &sig),
            Err(UrlError::BadSignature)
        );
    }

    #[test]
    fn urls_expire_after_the_ttl() {
        let s = Signer::new(Duration::from_millis(1500));
        assert_eq!(s.ttl_secs(), 2, "rounded up to whole seconds");
        let (exp, _) = s.sign(&["x"]);
        assert!((now_secs() + 1..=now_secs() + 2).contains(&exp));
        // A genuine signature whose expiry has passed is "expired", not "bad".
        let past = now_secs() - 1;
        let sig = s.mac(&format!("x|{past}"));
        assert_eq!(s.verify(&["x"], past, &sig), Err(UrlError::Expired));
        assert_eq!(Signer::new(Duration::ZERO).ttl_secs(), 1);
        assert_eq!(Signer::default().ttl_secs(), 86_400);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let s = Signer {
            key: b"Jefe".to_vec(),
            ttl_secs: 1,
        };
        assert_eq!(
            s.mac("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
