//! Self-authorising URLs, like the presigned S3 and CDN URLs the real hubs hand out: the LFS
//! batch API returns upload and download hrefs that carry an expiry and an HMAC-SHA256 signature
//! instead of the caller's token (the official clients send no Authorization to them). The key
//! is random per process, so URLs die with the server.

use sha2::{Digest, Sha256};

use crate::util::{now_secs, random_hex};

/// Signs and checks URL parameters.
pub struct Signer {
    key: Vec<u8>,
}

/// How long handed-out URLs stay valid.
pub const URL_TTL_SECS: u64 = 24 * 3600;

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn new() -> Self {
        Signer {
            key: random_hex(32).into_bytes(),
        }
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

    /// Returns `exp=..&sig=..` for the given fields (joined with `|`), valid for [`URL_TTL_SECS`].
    pub fn sign(&self, fields: &[&str]) -> (u64, String) {
        let exp = now_secs() + URL_TTL_SECS;
        (exp, self.mac(&format!("{}|{exp}", fields.join("|"))))
    }

    /// Checks a signature produced by [`Signer::sign`] for the same fields.
    pub fn verify(&self, fields: &[&str], exp: u64, sig: &str) -> bool {
        if exp < now_secs() {
            return false;
        }
        let want = self.mac(&format!("{}|{exp}", fields.join("|")));
        // Constant-time comparison: the signature is the credential of these URLs.
        want.len() == sig.len() && want.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_fields() {
        let s = Signer::new();
        let (exp, sig) = s.sign(&["upload", "abc", "12"]);
        assert!(s.verify(&["upload", "abc", "12"], exp, &sig));
        assert!(!s.verify(&["upload", "abc", "13"], exp, &sig));
        assert!(!s.verify(&["upload", "abc", "12"], exp + 1, &sig));
        assert!(!Signer::new().verify(&["upload", "abc", "12"], exp, &sig));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let s = Signer { key: b"Jefe".to_vec() };
        assert_eq!(
            s.mac("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
