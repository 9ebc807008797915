//! Crockford's base32 as members type it: the alphabet, the normalisation of
//! a typed code and its grouping for display (recovery and opt-out codes).

/// Crockford's base32 alphabet (no I, L, O, U).
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A typed code normalised: case, spaces and dashes ignored, O read as 0 and
/// I or L as 1. None when a character is outside the alphabet or there are
/// more than `max` characters.
pub(crate) fn normalise(typed: &str, max: usize) -> Option<String> {
    let mut out = String::with_capacity(max);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        if out.len() == max {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// `s` in groups of four, joined by dashes.
pub(crate) fn grouped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}
