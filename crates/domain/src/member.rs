//! Member sign-up input: e-mail address and passphrase.

use crate::DomainError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A normalised e-mail address (trimmed, lower-cased). Personal data: its `Debug`
/// hides it, and it is only ever stored as a keyed hash plus ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_lowercase();
        let err = || DomainError::invalid("email", "is not a valid e-mail address");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = s.split_once('@').ok_or_else(err)?;
        if local.is_empty()
            || local.len() > 64
            || domain.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(err());
        }
        // An address mail can be sent to (so that a sign-up never fails
        // later, at sending): a dot-atom local part and a host name, ASCII.
        if !Self::dot_atom(local) || !Self::host_name(domain) {
            return Err(err());
        }
        Ok(Self(s))
    }

    /// RFC 5322 `dot-atom-text`, ASCII: atoms of letters, digits and
    /// ``!#$%&'*+/=?^_`{|}~-``, joined by single dots.
    fn dot_atom(local: &str) -> bool {
        local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
        })
    }

    /// A DNS host name, ASCII (IDNs in their `xn--` form): labels of 1 to
    /// 63 letters, digits and hyphens, not starting or ending with a hyphen,
    /// 253 characters at most.
    fn host_name(domain: &str) -> bool {
        domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A passphrase: 10 to 1,024 characters. Held in a `SecretString`, zeroed on drop.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl Passphrase {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(DomainError::invalid(
                "passphrase",
                "must be at least 10 characters",
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(DomainError::invalid(
                "passphrase",
                "must be at most 1024 characters",
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Passphrase::parse(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        let e = Email::parse("  Alice@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "alice@example.org");
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "a@b",
            "a b@c.d",
            "a@@b.c",
            "a@b.c.",
            "x@evil.example!!",
            "a..b@example.org",
            ".a@example.org",
            "a.@example.org",
            "a\"b@example.org",
            "a(b)@example.org",
            "a@-example.org",
            "a@exa_mple.org",
            "a@example..org",
            "ana@exämple.org",
            "änä@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{e:?}").contains("alice"));
        for good in [
            "a.b+tag@sub.example.org",
            "o'neil@xn--exmple-cua.org",
            "x_y@a-b.c0",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn passphrases_have_bounds_and_hide() {
        assert!(Passphrase::parse("short".into()).is_err());
        let p = Passphrase::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        assert!(Passphrase::parse("x".repeat(1025)).is_err());
    }

    proptest! {
        #[test]
        fn email_parser_never_panics(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()).ok(), Some(e.clone()));
            }
        }
    }
}
