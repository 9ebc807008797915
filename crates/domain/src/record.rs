//! Vault records: what a member keeps in their personal data store.
//!
//! [`RecordContent`] is the one parser of record input: the API deserialises
//! untrusted JSON straight into it, and every field is a validated newtype, so a
//! value of this type is always well formed. The same JSON is what gets encrypted
//! at rest (inside a versioned envelope, see `me2b-crypto`).

use crate::text::{Label, LongText, Slug};
use crate::{DomainError, Timestamp};
use serde::{Deserialize, Serialize};

/// Largest number of items on one receipt.
pub const MAX_RECEIPT_ITEMS: usize = 500;
/// Largest amount in minor units (one hundred million in major units).
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000;

/// The kinds of record a vault holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    ProfileAttribute,
    Interest,
    Receipt,
    Note,
    OfferHistory,
    Credential,
    Intent,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProfileAttribute => "profile_attribute",
            Self::Interest => "interest",
            Self::Receipt => "receipt",
            Self::Note => "note",
            Self::OfferHistory => "offer_history",
            Self::Credential => "credential",
            Self::Intent => "intent",
        }
    }
}

/// A record's content. Tagged by `kind` in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordContent {
    ProfileAttribute(ProfileAttribute),
    Interest(Interest),
    Receipt(Receipt),
    Note(Note),
    OfferHistory(OfferHistory),
    Credential(CredentialRecord),
    Intent(IntentRecord),
}

impl RecordContent {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::ProfileAttribute(_) => RecordKind::ProfileAttribute,
            Self::Interest(_) => RecordKind::Interest,
            Self::Receipt(_) => RecordKind::Receipt,
            Self::Note(_) => RecordKind::Note,
            Self::OfferHistory(_) => RecordKind::OfferHistory,
            Self::Credential(_) => RecordKind::Credential,
            Self::Intent(_) => RecordKind::Intent,
        }
    }

    /// Parses untrusted JSON into a record.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising these types cannot fail: no maps with non-string keys, no
        // custom serialisers that error.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One attribute of the member's profile, e.g. `given_name`, `birth_year`, `region`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileAttribute {
    pub name: Slug,
    pub value: Label,
}

/// An interest, by topic slug of the shipped taxonomy (`GET /v1/taxonomy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Interest {
    pub topic: Slug,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Label>,
    /// Declared by the member (the default), or suggested from their receipts and accepted.
    #[serde(default, skip_serializing_if = "InterestSource::is_declared")]
    pub source: InterestSource,
    /// For a sensitive topic (GDPR Art. 9): the member explicitly consents to
    /// offers flagged `explicit_consent` on this topic being matched in their
    /// vault. Without it, sensitive interests never take part in matching.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit_consent: bool,
}

impl InterestSource {
    pub fn is_declared(&self) -> bool {
        *self == Self::Declared
    }
}

/// Where an interest came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterestSource {
    #[default]
    Declared,
    /// Suggested inside the vault from the member's own receipts, then accepted.
    FromReceipts,
}

/// The member's own record of offers: what was shown, dismissed, marked not
/// relevant and accepted. Kept in the vault only; organisations never see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferHistory {
    /// Per offer: the days (since the Unix epoch) it was shown, most recent last.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub shown: std::collections::BTreeMap<crate::OfferId, Vec<i64>>,
    #[serde(default)]
    pub dismissed: std::collections::BTreeSet<crate::OfferId>,
    /// Offers marked not relevant; their topics are suppressed.
    #[serde(default)]
    pub not_relevant: std::collections::BTreeSet<crate::OfferId>,
    /// Topics suppressed because the member marked an offer on them not relevant.
    #[serde(default)]
    pub suppressed_topics: std::collections::BTreeSet<Slug>,
    #[serde(default)]
    pub accepted: std::collections::BTreeSet<crate::OfferId>,
    /// Suggested interests the member rejected: never suggested again.
    #[serde(default)]
    pub rejected_suggestions: std::collections::BTreeSet<Slug>,
}

/// A purchase receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub merchant: Label,
    #[schema(max_items = 500)]
    pub items: ReceiptItems,
    pub total: Money,
    /// When the purchase happened (RFC 3339).
    pub purchased_at: When,
}

/// A credential a co-op issued into the member's vault (`me2b-credentials`
/// parses and checks `credential`). Its BBS signature never leaves the vault:
/// presentations carry zero-knowledge proofs instead. Never disclosed through
/// consent, which has no category for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRecord {
    /// The issuing organisation's name, for the member's eyes.
    pub issuer: Label,
    /// The credential as `me2b-credentials` serialises it (JSON).
    pub credential: LongText,
}

/// One of the member's intents (requests for proposal), as `me2b-intents`
/// keeps it: its one-time pseudonym, the secret that proves the member
/// published it, what was asked and what was accepted. The intents the node
/// stores name no member: this record is the only link between a member and
/// their intents, and it is sealed under the member's key. Never disclosed
/// through consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentRecord {
    /// The intent as `me2b-intents` serialises it (JSON).
    pub intent: LongText,
}

/// A free note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Label>,
    pub text: LongText,
}

/// One line of a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptItem {
    pub name: Label,
    /// Product category, e.g. `food.organic`.
    pub category: Slug,
    pub quantity: Quantity,
    pub unit_price: Money,
}

/// Between 1 and [`MAX_RECEIPT_ITEMS`] items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "Vec<ReceiptItem>", into = "Vec<ReceiptItem>")]
#[schema(value_type = Vec<ReceiptItem>)]
pub struct ReceiptItems(Vec<ReceiptItem>);

impl ReceiptItems {
    pub fn as_slice(&self) -> &[ReceiptItem] {
        &self.0
    }
}

impl TryFrom<Vec<ReceiptItem>> for ReceiptItems {
    type Error = DomainError;
    fn try_from(v: Vec<ReceiptItem>) -> Result<Self, Self::Error> {
        if v.is_empty() || v.len() > MAX_RECEIPT_ITEMS {
            return Err(DomainError::invalid("items", "must hold 1 to 500 items"));
        }
        Ok(Self(v))
    }
}

impl From<ReceiptItems> for Vec<ReceiptItem> {
    fn from(v: ReceiptItems) -> Self {
        v.0
    }
}

/// A whole number of units, 1 to 100,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schema(value_type = u32)]
pub struct Quantity(u32);

impl TryFrom<u32> for Quantity {
    type Error = DomainError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (1..=100_000).contains(&v) {
            Ok(Self(v))
        } else {
            Err(DomainError::invalid("quantity", "must be 1 to 100000"))
        }
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// An amount of money: minor units (cents) and an ISO 4217 currency code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    #[schema(value_type = i64, minimum = 0, maximum = 10_000_000_000_i64)]
    pub minor: Amount,
    pub currency: Currency,
}

/// A non-negative amount in minor units, at most [`MAX_AMOUNT_MINOR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

impl TryFrom<i64> for Amount {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        if (0..=MAX_AMOUNT_MINOR).contains(&v) {
            Ok(Self(v))
        } else {
            Err(DomainError::invalid(
                "amount",
                "must be 0 to 10000000000 minor units",
            ))
        }
    }
}

impl From<Amount> for i64 {
    fn from(a: Amount) -> i64 {
        a.0
    }
}

/// Three upper-case letters, e.g. `EUR`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Z]{3}$")]
pub struct Currency(String);

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err(DomainError::invalid(
                "currency",
                "must be an ISO 4217 code like EUR",
            ))
        }
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

/// A point in time given as RFC 3339 text, e.g. `2026-11-23T10:00:00Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = DateTime, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-")]
pub struct When(Timestamp);

impl When {
    pub fn timestamp(self) -> Timestamp {
        self.0
    }
}

impl From<Timestamp> for When {
    fn from(t: Timestamp) -> Self {
        Self(t)
    }
}

impl TryFrom<String> for When {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Timestamp::parse_rfc3339(&s)
            .filter(|t| (0..=253_402_300_799_000).contains(&t.unix_millis()))
            .map(Self)
            // Any field may hold a `When` (a receipt's `purchased_at`, an offer's
            // `valid_until` …): the field's name comes from where it is parsed.
            .ok_or(DomainError::invalid(
                "time",
                "must be an RFC 3339 date-time between 1970 and 9999, e.g. 2026-11-23T10:00:00Z",
            ))
    }
}

impl From<When> for String {
    fn from(w: When) -> String {
        w.0.to_rfc3339()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn receipt_json() -> serde_json::Value {
        serde_json::json!({
            "kind": "receipt",
            "merchant": "Corner Co-op",
            "items": [{"name": "Oat milk", "category": "food.dairy-alternatives", "quantity": 2,
                       "unit_price": {"minor": 189, "currency": "EUR"}}],
            "total": {"minor": 378, "currency": "EUR"},
            "purchased_at": "2026-11-20T17:03:00Z"
        })
    }

    #[test]
    fn parses_each_kind() {
        let cases = [
            serde_json::json!({"kind": "profile_attribute", "name": "region", "value": "Utrecht"}),
            serde_json::json!({"kind": "interest", "topic": "cycling"}),
            serde_json::json!({"kind": "note", "text": "remember the bike shop"}),
            receipt_json(),
        ];
        for case in cases {
            let bytes = serde_json::to_vec(&case).unwrap();
            let rec = RecordContent::from_json(&bytes).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&rec.to_json()).unwrap();
            assert_eq!(back, case);
        }
    }

    #[test]
    fn rejects_unknown_fields_wrong_types_and_bad_values() {
        let mut unknown = receipt_json();
        unknown["loyalty_card"] = serde_json::json!("123");
        let mut negative = receipt_json();
        negative["total"]["minor"] = serde_json::json!(-1);
        let mut no_items = receipt_json();
        no_items["items"] = serde_json::json!([]);
        let bad = [
            unknown,
            negative,
            no_items,
            serde_json::json!({"kind": "note"}),
            serde_json::json!({"kind": "note", "text": 5}),
            serde_json::json!({"kind": "diary", "text": "x"}),
            serde_json::json!({"kind": "profile_attribute", "name": "Bad Name", "value": "x"}),
            serde_json::json!({"kind": "interest", "topic": "cycling", "extra": 1}),
        ];
        for case in bad {
            let bytes = serde_json::to_vec(&case).unwrap();
            assert!(RecordContent::from_json(&bytes).is_err(), "{case}");
        }
    }

    #[test]
    fn a_bad_time_does_not_name_a_field_it_may_not_be() {
        // `When` is also an offer's `valid_from` and `valid_until`.
        let e = When::try_from("next tuesday".to_owned()).unwrap_err();
        assert!(!e.to_string().contains("purchased_at"), "{e}");
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn parse_errors_never_echo_the_value() {
        let e = RecordContent::from_json(
            br#"{"kind":"profile_attribute","name":"x","value":"secret\nvalue"}"#,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    fn label() -> impl Strategy<Value = String> {
        "[A-Za-z0-9 éß-]{0,10}[A-Za-z0-9]"
    }
    fn slug() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9_.:-]{0,20}"
    }

    fn content() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            (slug(), label()).prop_map(|(n, v)| serde_json::json!({"kind":"profile_attribute","name":n,"value":v})),
            slug().prop_map(|t| serde_json::json!({"kind":"interest","topic":t})),
            (proptest::option::of(label()), "[\\PC\n]{0,40}[a-z]")
                .prop_map(|(title, text)| match title {
                    Some(t) => serde_json::json!({"kind":"note","title":t,"text":text}),
                    None => serde_json::json!({"kind":"note","text":text}),
                }),
            (label(), proptest::collection::vec((label(), slug(), 1u32..100, 0i64..100_000), 1..5), 0i64..1_000_000, 0i64..4_000_000_000)
                .prop_map(|(m, items, total, secs)| {
                    let items: Vec<_> = items.into_iter().map(|(n, c, q, p)| serde_json::json!({
                        "name": n, "category": c, "quantity": q, "unit_price": {"minor": p, "currency": "EUR"}})).collect();
                    serde_json::json!({"kind":"receipt","merchant":m,"items":items,
                        "total":{"minor":total,"currency":"EUR"},
                        "purchased_at": Timestamp::from_unix_millis(secs * 1000).to_rfc3339()})
                }),
        ]
    }

    proptest! {
        #[test]
        fn valid_records_round_trip(v in content()) {
            let bytes = serde_json::to_vec(&v).unwrap();
            let rec = RecordContent::from_json(&bytes).unwrap();
            let again = RecordContent::from_json(&rec.to_json()).unwrap();
            prop_assert_eq!(again, rec);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = RecordContent::from_json(&bytes);
        }

        #[test]
        fn mutated_json_never_panics(v in content(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            if let Ok(rec) = RecordContent::from_json(&bytes) {
                // Whatever parses must survive its own round trip.
                prop_assert_eq!(RecordContent::from_json(&rec.to_json()).ok(), Some(rec));
            }
        }
    }
}
