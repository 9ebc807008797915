//! Interest suggestions derived from the member's own receipts, inside the vault.
//!
//! Receipt item categories map to topics (`taxonomy/category-map.tsv`). A topic
//! is suggested once the member is not already interested in it and has not
//! rejected it; the member accepts or rejects each one. Sensitive topics are
//! never derived, whatever the receipts say: a co-op must never infer a
//! pregnancy from nappies.

use crate::taxonomy::Taxonomy;
use me2b_domain::record::RecordContent;
use serde::Serialize;
use std::collections::BTreeMap;

/// A suggested interest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub topic: String,
    pub name: String,
    pub path: String,
    /// How many of the member's receipts carry items in this topic.
    pub receipts: u32,
}

/// Suggestions from a member's records, most supported first.
pub fn suggest<'a>(
    records: impl IntoIterator<Item = &'a RecordContent>,
    taxonomy: &Taxonomy,
) -> Vec<Suggestion> {
    let records: Vec<&RecordContent> = records.into_iter().collect();
    let mut held = Vec::new();
    let mut rejected = Vec::new();
    for r in &records {
        match r {
            RecordContent::Interest(i) => held.push(i.topic.as_str().to_owned()),
            RecordContent::OfferHistory(h) => {
                rejected.extend(h.rejected_suggestions.iter().map(|s| s.as_str().to_owned()))
            }
            _ => {}
        }
    }
    let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
    for r in &records {
        let RecordContent::Receipt(receipt) = r else {
            continue;
        };
        let mut on_this = Vec::new();
        for item in receipt.items.as_slice() {
            let Some(t) = taxonomy.topic_for_category(item.category.as_str()) else {
                continue;
            };
            if taxonomy.is_sensitive(t) || on_this.contains(&t.index()) {
                continue;
            }
            on_this.push(t.index());
        }
        for t in on_this {
            *counts.entry(t).or_default() += 1;
        }
    }
    let mut out: Vec<Suggestion> = counts
        .into_iter()
        .filter_map(|(i, n)| {
            let topic = taxonomy.topics().get(i)?;
            let known = held.contains(&topic.slug) || rejected.contains(&topic.slug);
            (!known).then(|| Suggestion {
                topic: topic.slug.clone(),
                name: topic.name.clone(),
                path: topic.path.clone(),
                receipts: n,
            })
        })
        .collect();
    out.sort_by(|a, b| b.receipts.cmp(&a.receipts).then(a.topic.cmp(&b.topic)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_domain::record::{Interest, InterestSource, OfferHistory, Receipt};
    use me2b_domain::text::Slug;

    fn receipt(categories: &[&str]) -> RecordContent {
        let items: Vec<serde_json::Value> = categories
            .iter()
            .map(|c| serde_json::json!({"name": "item", "category": c, "quantity": 1, "unit_price": {"minor": 100, "currency": "EUR"}}))
            .collect();
        let v = serde_json::json!({
            "kind": "receipt", "merchant": "Corner Co-op", "items": items,
            "total": {"minor": 100, "currency": "EUR"}, "purchased_at": "2026-11-01T10:00:00Z"
        });
        let r: RecordContent = serde_json::from_value(v).unwrap();
        assert!(matches!(r, RecordContent::Receipt(Receipt { .. })));
        r
    }

    #[test]
    fn suggests_from_receipts_but_never_sensitive_held_or_rejected_topics() {
        let t = Taxonomy::shipped().unwrap();
        let mut h = OfferHistory::default();
        h.rejected_suggestions
            .insert(Slug::try_from("repair").unwrap());
        let records = vec![
            receipt(&[
                "food.organic.apples",
                "food.organic.bread",
                "baby.nappies",
                "pharmacy.insulin",
            ]),
            receipt(&["food.organic", "bike.repair", "food.halal"]),
            receipt(&["sports.cycling"]),
            RecordContent::Interest(Interest {
                topic: Slug::try_from("cycling").unwrap(),
                note: None,
                source: InterestSource::Declared,
                explicit_consent: false,
            }),
            RecordContent::OfferHistory(h),
        ];
        let s = suggest(&records, &t);
        let topics: Vec<(&str, u32)> = s.iter().map(|s| (s.topic.as_str(), s.receipts)).collect();
        assert_eq!(topics, vec![("organic", 2)]);
    }
}
