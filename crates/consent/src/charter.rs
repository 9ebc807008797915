//! The federation's charter, enforced ("never sell our shoppers' personal
//! information"; no "Big Brother" inference): by default the node refuses
//! consent requests whose purposes sell data or insights, and any request to
//! infer, derive or profile a special category (GDPR Art. 9). Only the
//! operator relaxes it, in the governance file's `[charter]` table; members
//! see which charter runs on their transparency page.

use crate::model::ConsentRequest;
use crate::vocabulary::Vocabulary;
use serde::{Deserialize, Serialize};

/// Purposes the charter forbids by default.
pub const SELLING_PURPOSES: &[&str] = &["sell-data-to-third-parties", "sell-insights-from-data"];
/// Processing operations that make something new out of data: with a
/// special category, forbidden by default.
pub const INFERRING_PROCESSING: &[&str] = &["infer", "derive", "profiling"];

/// The governance file's `[charter]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Charter {
    /// Refuse requests to sell members' data or insights from it
    /// (`sell-data-to-third-parties`, `sell-insights-from-data`).
    pub no_selling: bool,
    /// Refuse requests to infer, derive or profile a special category
    /// (GDPR Art. 9: health, beliefs, biometrics…).
    pub no_special_category_inference: bool,
}

impl Default for Charter {
    fn default() -> Self {
        Self {
            no_selling: true,
            no_special_category_inference: true,
        }
    }
}

impl Charter {
    /// Why the charter refuses the request, if it does.
    pub fn refusal(&self, v: &Vocabulary, r: &ConsentRequest) -> Option<&'static str> {
        if self.no_selling
            && r.purposes
                .iter()
                .any(|p| SELLING_PURPOSES.contains(&p.as_str()))
        {
            return Some("this node's charter forbids selling members' data or insights from it");
        }
        if self.no_special_category_inference
            && r.processing
                .iter()
                .any(|p| INFERRING_PROCESSING.contains(&p.as_str()))
            && r.categories.iter().any(|c| v.is_special(c))
        {
            return Some(
                "this node's charter forbids inferring, deriving or profiling a special category (GDPR Art. 9)",
            );
        }
        None
    }

    /// The charter in plain language, for members.
    pub fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(if self.no_selling {
            "No organisation may ask to sell your data, or insights drawn from it: this node refuses such requests.".to_owned()
        } else {
            "This node's operator allows organisations to ask to sell your data or insights from it (you can still refuse).".to_owned()
        });
        out.push(if self.no_special_category_inference {
            "No organisation may ask to infer, derive or profile sensitive facts about you (health, beliefs, and other special categories).".to_owned()
        } else {
            "This node's operator allows organisations to ask to infer or derive sensitive facts about you (you can still refuse).".to_owned()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_forbid_and_toml_relaxes() {
        let c = Charter::default();
        assert!(c.no_selling && c.no_special_category_inference);
        let relaxed: Charter = serde_json::from_str(r#"{"no_selling": false}"#).unwrap();
        assert!(!relaxed.no_selling);
        assert!(relaxed.no_special_category_inference);
        assert!(serde_json::from_str::<Charter>(r#"{"no_selling": false, "x": 1}"#).is_err());
    }
}
