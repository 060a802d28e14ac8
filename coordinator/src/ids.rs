//! Random identifiers and the per-migration secret, from the operating system's secure random
//! source (`getrandom`: the `getrandom(2)` syscall on Linux).

/// `n` random bytes as hex. Panics only if the OS has no random source at all (then nothing
/// secret can be made, and going on would be worse).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_and_not_constant() {
        let a = super::random_hex(24);
        assert_eq!(a.len(), 48);
        assert_ne!(a, super::random_hex(24));
        // 24 random bytes are never one repeated byte (a zeroed buffer would be).
        assert!(a.as_bytes().chunks(2).any(|c| c != &a.as_bytes()[..2]), "{a}");
    }
}
