//! The shipped DPV subset (`vocabulary/dpv-subset.json`).

use crate::ConsentError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One vocabulary term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Term {
    /// Stable short id used in the API and in stored records.
    pub id: String,
    /// The DPV IRI.
    pub iri: String,
    pub label: String,
    /// One plain-language sentence.
    pub explanation: String,
    /// Personal-data categories only: a GDPR Art. 9 special category.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub special: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize)]
struct File {
    format: u32,
    source: String,
    purposes: Vec<Term>,
    categories: Vec<Term>,
    processing: Vec<Term>,
    legal_bases: Vec<Term>,
}

/// The vocabulary the node accepts.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Vocabulary {
    pub source: String,
    pub purposes: Vec<Term>,
    pub categories: Vec<Term>,
    pub processing: Vec<Term>,
    pub legal_bases: Vec<Term>,
    #[serde(skip)]
    index: HashMap<(Section, String), usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    Purpose,
    Category,
    Processing,
    LegalBasis,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Purpose => "purpose",
            Section::Category => "personal-data category",
            Section::Processing => "processing operation",
            Section::LegalBasis => "legal basis",
        }
    }
}

/// The shipped file, compiled into the binary.
pub const SHIPPED: &str = include_str!("../vocabulary/dpv-subset.json");

/// The legal basis required for special categories.
pub const EXPLICIT_CONSENT: &str = "explicitly-expressed-consent";
/// The ordinary consent legal basis.
pub const CONSENT: &str = "consent";

impl Vocabulary {
    /// The vocabulary shipped with this build.
    pub fn shipped() -> Result<Self, ConsentError> {
        Self::parse(SHIPPED)
    }

    pub fn parse(text: &str) -> Result<Self, ConsentError> {
        let f: File =
            serde_json::from_str(text).map_err(|e| ConsentError::Vocabulary(e.to_string()))?;
        if f.format != 1 {
            return Err(ConsentError::Vocabulary(format!(
                "unsupported format {}",
                f.format
            )));
        }
        let mut v = Vocabulary {
            source: f.source,
            purposes: f.purposes,
            categories: f.categories,
            processing: f.processing,
            legal_bases: f.legal_bases,
            index: HashMap::new(),
        };
        for (section, terms) in [
            (Section::Purpose, &v.purposes),
            (Section::Category, &v.categories),
            (Section::Processing, &v.processing),
            (Section::LegalBasis, &v.legal_bases),
        ] {
            for (i, t) in terms.iter().enumerate() {
                if v.index.insert((section, t.id.clone()), i).is_some() {
                    return Err(ConsentError::Vocabulary(format!("duplicate id {}", t.id)));
                }
            }
        }
        for required in [EXPLICIT_CONSENT, CONSENT] {
            if !v
                .index
                .contains_key(&(Section::LegalBasis, required.to_owned()))
            {
                return Err(ConsentError::Vocabulary(format!(
                    "legal basis {required} missing"
                )));
            }
        }
        Ok(v)
    }

    pub fn term(&self, section: Section, id: &str) -> Option<&Term> {
        let i = *self.index.get(&(section, id.to_owned()))?;
        match section {
            Section::Purpose => self.purposes.get(i),
            Section::Category => self.categories.get(i),
            Section::Processing => self.processing.get(i),
            Section::LegalBasis => self.legal_bases.get(i),
        }
    }

    /// Checks that `id` is a known term of `section`.
    pub fn require(&self, section: Section, id: &str) -> Result<&Term, ConsentError> {
        self.term(section, id)
            .ok_or_else(|| ConsentError::UnknownTerm {
                kind: section.name(),
                id: id.chars().take(80).collect(),
            })
    }

    /// Whether a category (or any of its ancestors) is a special category.
    pub fn is_special(&self, category: &str) -> bool {
        let mut cur = self.term(Section::Category, category);
        let mut depth = 0;
        while let Some(t) = cur {
            if t.special {
                return true;
            }
            depth += 1;
            if depth > 16 {
                break;
            }
            cur = t
                .parent
                .as_deref()
                .and_then(|p| self.term(Section::Category, p));
        }
        false
    }

    /// Whether `category` is `ancestor` or one of its descendants.
    pub fn category_within(&self, category: &str, ancestor: &str) -> bool {
        let mut cur = Some(category.to_owned());
        let mut depth = 0;
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            depth += 1;
            if depth > 16 {
                return false;
            }
            cur = self
                .term(Section::Category, &c)
                .and_then(|t| t.parent.clone());
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_vocabulary_loads_and_marks_special_categories() {
        let v = Vocabulary::shipped().unwrap();
        assert!(v.purposes.len() >= 10);
        assert!(v.categories.iter().any(|c| c.special));
        assert!(v
            .categories
            .iter()
            .filter(|c| c.special)
            .all(|c| c.special_category.is_some()));
        for t in v
            .purposes
            .iter()
            .chain(&v.categories)
            .chain(&v.processing)
            .chain(&v.legal_bases)
        {
            assert!(t.iri.starts_with("https://w3id.org/dpv"), "{}", t.iri);
            assert!(!t.explanation.is_empty() && !t.label.is_empty());
            if let Some(p) = &t.parent {
                assert!(
                    v.term(Section::Category, p).is_some(),
                    "{} has unknown parent {p}",
                    t.id
                );
            }
        }
        assert!(v.is_special("health"));
        assert!(v.require(Section::Purpose, "no-such-purpose").is_err());
    }
}
