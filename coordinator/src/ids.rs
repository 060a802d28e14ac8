//! Random identifiers and the per-migration secret, from the OS's randomness (via the standard
//! library's randomly seeded hasher, mixed with the clock and process id).

use std::hash::{BuildHasher, Hasher};

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut out = String::with_capacity(n * 2);
    let mut i: u64 = 0;
    while out.len() < n * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    out.truncate(n * 2);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct() {
        let a = super::random_hex(24);
        assert_eq!(a.len(), 48);
        assert_ne!(a, super::random_hex(24));
    }
}
