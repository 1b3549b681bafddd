//! Keyed hashing of redacted values: HMAC-SHA-256 under the operator's key, so the same e-mail
//! hashes to the same text on every record (flows still join on it) while nobody without the key
//! can test a guess against the store.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a hashed value starts with.
pub const PREFIX: &str = "hmac:";

/// Hex digits of the digest kept (128 bits).
const KEPT_HEX: usize = 32;

/// An HMAC key, never printed.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

impl HashKey {
    /// A key of these bytes (a file's contents without its final line break); at least
    /// [`MIN_KEY_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, String> {
        let mut bytes = bytes.into();
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the redaction hash key has {} bytes; give at least {MIN_KEY_LEN} (e.g. `openssl rand -hex 32`)",
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// `hmac:` and the first 32 hex digits of HMAC-SHA-256(key, `text`).
    pub fn hash(&self, text: &str) -> String {
        // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(text.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("{PREFIX}{}", &digest[..KEPT_HEX])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_hashes_alike_and_another_key_hashes_otherwise() {
        let a = HashKey::new("0123456789abcdef-key-a").unwrap();
        let b = HashKey::new("0123456789abcdef-key-b").unwrap();
        let h = a.hash("alice@example.com");
        assert_eq!(h, a.hash("alice@example.com"));
        assert_ne!(h, a.hash("bob@example.com"));
        assert_ne!(h, b.hash("alice@example.com"));
        assert!(h.starts_with("hmac:") && h.len() == 5 + 32, "{h}");
        assert!(!h.contains("alice"));
    }

    #[test]
    fn a_short_key_is_refused_and_a_final_line_break_is_not_part_of_it() {
        assert!(HashKey::new("short").unwrap_err().contains("at least 16"));
        let with_break = HashKey::new("0123456789abcdef\n").unwrap();
        let without = HashKey::new("0123456789abcdef").unwrap();
        assert_eq!(with_break.hash("x"), without.hash("x"));
        assert_eq!(format!("{with_break:?}"), "HashKey(<redacted>)");
    }
}
