//! Paper opt-out codes: 95 random bits a member keeps on a printed card and
//! anyone (the member, shop staff) types back to withdraw the member's
//! marketing consents without logging in. 19 characters of Crockford's
//! base32 (no I, L, O or U) and one check character, in five groups of four:
//! `7K3Q-M2XD-…`.
//!
//! The check character is Damm's algorithm over the quasigroup
//! `x ∘ y = 2·x + y` in GF(32) (polynomial x⁵ + x² + 1). In characteristic 2
//! `(c∘x)∘y = (c∘y)∘x` gives `3·(x + y) = 0`, so `x = y`: the quasigroup is
//! totally anti-symmetric, and Damm's check catches every single mistyped
//! character and every swap of two neighbouring different characters,
//! including the check character itself (the tests below try them all).
//! Unlike Luhn mod 32 (the recovery code's), it has no blind pair.

use crate::CryptoError;
use me2b_domain::Random;
use secrecy::{ExposeSecret, SecretString};

use crate::crockford::{self, ALPHABET};
const DATA_CHARS: usize = 19;
const CODE_CHARS: usize = DATA_CHARS + 1;
/// Random bits a code carries.
pub const OPTOUT_CODE_BITS: usize = DATA_CHARS * 5;

/// A paper opt-out code, normalised (20 characters, no dashes). `Debug` hides it.
pub struct OptOutCode(SecretString);

impl std::fmt::Debug for OptOutCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OptOutCode(<secret>)")
    }
}

fn value(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u8)
}

/// `2·x` in GF(32) with the reduction polynomial x⁵ + x² + 1.
fn times2(x: u8) -> u8 {
    let y = x << 1;
    if y & 0x20 != 0 {
        (y ^ 0x25) & 0x1f
    } else {
        y
    }
}

/// The quasigroup operation `x ∘ y = 2·x + y` (addition is XOR).
fn op(x: u8, y: u8) -> u8 {
    times2(x) ^ y
}

/// Damm's interim digit over `data` (values 0..32).
fn interim(data: impl IntoIterator<Item = u8>) -> u8 {
    data.into_iter().fold(0, op)
}

/// The check character: the `c` with `interim ∘ c = 0`, that is `c = 2·interim`.
fn check_char(data: &[u8]) -> u8 {
    let i = interim(data.iter().map(|c| value(*c).unwrap_or(0)));
    ALPHABET[times2(i) as usize]
}

/// Whether a normalised code's characters (check included) fold to 0.
fn checks(code: &[u8]) -> bool {
    code.iter().all(|c| value(*c).is_some())
        && interim(code.iter().map(|c| value(*c).unwrap_or(0))) == 0
}

impl OptOutCode {
    /// A fresh code: 95 bits from `rng`.
    pub fn generate(rng: &dyn Random) -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; DATA_CHARS]);
        rng.fill(bytes.as_mut());
        // One character per byte, its low five bits: each is uniform.
        let mut data = zeroize::Zeroizing::new(Vec::with_capacity(CODE_CHARS));
        for b in bytes.iter() {
            data.push(ALPHABET[(b & 31) as usize]);
        }
        let check = check_char(&data);
        data.push(check);
        Self(SecretString::from(
            String::from_utf8_lossy(&data).into_owned(),
        ))
    }

    /// A typed code: case, spaces and dashes ignored, O read as 0 and I or L
    /// as 1. Refused when it has the wrong length or its check character does
    /// not match (a typo, told apart from an unknown code).
    pub fn parse(typed: &str) -> Result<Self, CryptoError> {
        let out = crockford::normalise(typed, CODE_CHARS).ok_or(CryptoError::OptOutCodeMistyped)?;
        if out.len() != CODE_CHARS || !checks(out.as_bytes()) {
            return Err(CryptoError::OptOutCodeMistyped);
        }
        Ok(Self(SecretString::from(out)))
    }

    /// The normalised code: what is hashed.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The code as printed: five groups of four.
    pub fn display(&self) -> String {
        crockford::grouped(self.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;
    use proptest::prelude::*;

    #[test]
    fn the_quasigroup_is_totally_anti_symmetric() {
        // Every row and column a permutation (single errors), and
        // (c∘x)∘y ≠ (c∘y)∘x for x ≠ y (neighbour swaps): all 32³ cases.
        for x in 0..32u8 {
            let row: std::collections::BTreeSet<u8> = (0..32).map(|y| op(x, y)).collect();
            let col: std::collections::BTreeSet<u8> = (0..32).map(|y| op(y, x)).collect();
            assert_eq!(row.len(), 32);
            assert_eq!(col.len(), 32);
        }
        for c in 0..32u8 {
            for x in 0..32u8 {
                for y in 0..32u8 {
                    if x != y {
                        assert_ne!(op(op(c, x), y), op(op(c, y), x), "{c} {x} {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn codes_round_trip_and_carry_enough_bits() {
        const { assert!(OPTOUT_CODE_BITS >= 80) };
        let rng = SeededRandom::new(7);
        let c = OptOutCode::generate(&rng);
        let shown = c.display();
        assert_eq!(shown.len(), 24);
        assert_eq!(shown.matches('-').count(), 4);
        let back = OptOutCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(back.expose(), c.expose());
        assert!(!format!("{c:?}").contains(c.expose()));
        // Two codes differ.
        assert_ne!(OptOutCode::generate(&rng).expose(), c.expose());
    }

    #[test]
    fn every_single_error_and_neighbour_swap_is_caught() {
        let rng = SeededRandom::new(11);
        for _ in 0..50 {
            let code = OptOutCode::generate(&rng);
            let b = code.expose().as_bytes().to_vec();
            for i in 0..b.len() {
                for a in ALPHABET.iter() {
                    if *a == b[i] {
                        continue;
                    }
                    let mut t = b.clone();
                    t[i] = *a;
                    let typed = String::from_utf8(t).unwrap();
                    assert!(OptOutCode::parse(&typed).is_err(), "{typed}");
                }
            }
            for i in 0..b.len() - 1 {
                if b[i] == b[i + 1] {
                    continue;
                }
                let mut t = b.clone();
                t.swap(i, i + 1);
                let typed = String::from_utf8(t).unwrap();
                assert!(OptOutCode::parse(&typed).is_err(), "{typed}");
            }
        }
    }

    #[test]
    fn wrong_lengths_and_characters_are_refused() {
        let rng = SeededRandom::new(3);
        let c = OptOutCode::generate(&rng).expose().to_owned();
        assert!(OptOutCode::parse(&c[..19]).is_err());
        assert!(OptOutCode::parse(&format!("{c}0")).is_err());
        assert!(OptOutCode::parse(&format!("{}U", &c[..19])).is_err());
        assert!(OptOutCode::parse("").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = OptOutCode::parse(&s);
        }
    }
}
