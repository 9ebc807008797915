//! Validated text newtypes for untrusted input ("parse, don't validate").

use crate::DomainError;
use serde::{Deserialize, Serialize};

fn check_text(
    field: &'static str,
    s: &str,
    max_chars: usize,
    allow_newlines: bool,
) -> Result<(), DomainError> {
    if s.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max_chars {
        return Err(DomainError::invalid(field, "is too long"));
    }
    let bad = s
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        return Err(DomainError::invalid(field, "contains control characters"));
    }
    Ok(())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $newlines:expr, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, pattern = $pattern)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_text($field, &s, $max, $newlines)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = DomainError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        /// Redacted: the value may be personal data.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}(<{} chars>)", stringify!($name), self.0.chars().count())
            }
        }
    };
}

text_type!(
    /// A short single-line text: a name, a merchant, an item, a value.
    Label,
    "label",
    200,
    false,
    // No control character (Unicode Cc), and one that is not white space.
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
);
text_type!(
    /// A free text of up to 20,000 characters, newlines allowed.
    LongText,
    "text",
    20_000,
    true,
    // No control character but tab and line breaks, and one that is not white space.
    "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"
);

/// A machine name: 1 to 64 characters of `a-z 0-9 _ - . :`, starting with a letter
/// or digit. Used for attribute names, categories and topics.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_.:-]{0,63}$")]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok_first = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | ':')
        });
        if !ok_first || !ok_rest || s.len() > 64 {
            return Err(DomainError::invalid(
                "name",
                "must be 1-64 characters of a-z, 0-9, _ - . : starting with a letter or digit",
            ));
        }
        Ok(Self(s))
    }
}

impl TryFrom<&str> for Slug {
    type Error = DomainError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::try_from(s.to_owned())
    }
}

impl From<Slug> for String {
    fn from(v: Slug) -> String {
        v.0
    }
}

impl std::fmt::Debug for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_reject_empty_control_and_long_text() {
        assert!(Label::try_from("Corner Co-op").is_ok());
        assert!(Label::try_from("  ").is_err());
        assert!(Label::try_from("a\nb").is_err());
        assert!(Label::try_from("x".repeat(201)).is_err());
        assert!(LongText::try_from("line one\nline two").is_ok());
        assert!(LongText::try_from("bell\u{7}").is_err());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let l = Label::try_from("Alice Example").unwrap_or_else(|_| unreachable!());
        assert!(!format!("{l:?}").contains("Alice"));
    }

    #[test]
    fn slugs() {
        assert!(Slug::try_from("food.organic").is_ok());
        assert!(Slug::try_from("Food").is_err());
        assert!(Slug::try_from("").is_err());
        assert!(Slug::try_from("-x").is_err());
        assert!(Slug::try_from("a".repeat(65)).is_err());
    }
}
