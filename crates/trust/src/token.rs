//! One-time loyalty redemption tokens as the member shows them at a till:
//! 20 symbols of Crockford's base32 (100 random bits) in groups of four,
//! `7KQ2-M9XH-C3DF-0RTV-A8BE`. Upper-case letters, digits and `-` only, so a
//! QR code holds it in alphanumeric mode, and a cashier can type it: case,
//! spaces and the letters Crockford reads as digits (`O` → 0, `I`/`L` → 1) are
//! forgiven. Only its SHA-256 is stored.

use me2b_domain::Random;
use zeroize::Zeroizing;

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in a token (5 bits each: 100 bits).
pub const SYMBOLS: usize = 20;

/// A redemption token's text. Its `Debug` hides it.
pub struct TokenText(Zeroizing<String>);

impl std::fmt::Debug for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenText(<secret>)")
    }
}

impl TokenText {
    /// A fresh token: 100 random bits.
    pub fn generate(rng: &dyn Random) -> Self {
        let mut bytes = Zeroizing::new([0u8; SYMBOLS]);
        rng.fill(bytes.as_mut());
        let mut s = String::with_capacity(SYMBOLS + SYMBOLS / 4);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
        Self(Zeroizing::new(s))
    }

    /// The text as shown (groups of four).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: the SHA-256 of the canonical symbols.
    pub fn hash(&self) -> [u8; 32] {
        canonical(&self.0).map_or([0; 32], |c| me2b_crypto::hash_token(&c))
    }
}

/// The canonical 20 symbols of what a till sent, or `None` if it cannot be
/// a token. Dashes and spaces are ignored, case is not significant, and O, I
/// and L read as 0, 1 and 1.
pub fn canonical(text: &str) -> Option<Zeroizing<String>> {
    if text.len() > 64 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(SYMBOLS));
    for c in text.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == SYMBOLS).then_some(out)
}

/// The SHA-256 under which a submitted token would be stored, or `None` if
/// the text cannot be a token.
pub fn hash_submitted(text: &str) -> Option<[u8; 32]> {
    canonical(text).map(|c| me2b_crypto::hash_token(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug)]
    struct Counter(std::sync::atomic::AtomicU8);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(7, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn tokens_read_back_forgivingly_and_hide_in_debug() {
        let t = TokenText::generate(&Counter(std::sync::atomic::AtomicU8::new(0)));
        let text = t.expose().to_owned();
        assert_eq!(text.len(), 24);
        assert_eq!(text.matches('-').count(), 4);
        assert!(!format!("{t:?}").contains(&text));
        assert_eq!(hash_submitted(&text), Some(t.hash()));
        let sloppy = text.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(hash_submitted(&sloppy), Some(t.hash()));
        assert_eq!(hash_submitted(&text[..20]), None);
        assert_eq!(hash_submitted(&format!("{text}X")), None);
        assert_eq!(hash_submitted("UUUU-UUUU-UUUU-UUUU-UUUU"), None);
        assert_eq!(hash_submitted(""), None);
        // QR alphanumeric mode: digits, upper case and '-'.
        assert!(text
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in ".{0,80}") {
            if let Some(c) = canonical(&s) {
                prop_assert_eq!(c.len(), SYMBOLS);
                prop_assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
            }
        }
    }
}
