//! What an organisation publishes, parsed ("parse, don't validate") and checked
//! against the taxonomy, the rule checker and the sensitive-topic policy.

use crate::rule::{self, SensitivePolicy};
use crate::taxonomy::{Taxonomy, TopicIdx, TopicSet};
use crate::OfferError;
use me2b_domain::record::When;
use me2b_domain::text::{Label, LongText};
use me2b_domain::{ConsentRequestId, OfferId, OrgId, Timestamp};
use serde::{Deserialize, Serialize};

/// Most topics on one offer (or one partner's part).
pub const MAX_TOPICS_PER_OFFER: usize = 16;
/// Most coalition partners besides the publisher.
pub const MAX_PARTNERS: usize = 4;
/// Longest validity window.
pub const MAX_VALIDITY_DAYS: i64 = 366;
/// Format version of the stored offer body.
pub const OFFER_FORMAT: u8 = 1;

const DAY_MS: i64 = 86_400_000;

/// How often one member may be shown an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// 1 to 100 showings …
    pub impressions: u32,
    /// … per this many days (1 to 365).
    pub per_days: u32,
}

/// A coalition partner's part of a bundle, as the publisher proposes it. The
/// partner must endorse it before the bundle reaches any vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerInput {
    pub org: OrgId,
    pub title: Label,
    pub text: LongText,
    pub topics: Vec<String>,
}

/// An offer as an organisation submits it (`POST /v1/org/offers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    pub title: Label,
    pub text: LongText,
    /// Topic slugs of the taxonomy (1 to 16). Members match on these.
    pub topics: Vec<String>,
    /// Optional targeting rule in CEL over the documented context
    /// (`GET /v1/offers/context`), evaluated inside each vault.
    #[serde(default)]
    pub rule: Option<String>,
    /// Start of validity (RFC 3339); now when absent.
    #[serde(default)]
    pub valid_from: Option<When>,
    /// End of validity (RFC 3339), at most 366 days after the start.
    pub valid_until: When,
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    /// Partners whose parts form one bundle with this offer.
    #[serde(default)]
    pub coalition: Vec<PartnerInput>,
    /// Required to target a sensitive topic (GDPR Art. 9). Such an offer is only
    /// ever matched for members who explicitly consented to each of its
    /// sensitive topics.
    #[serde(default)]
    pub explicit_consent: bool,
    /// One of this organisation's consent requests: what a member may choose to
    /// share on accepting (e.g. contact details for a follow-up).
    #[serde(default)]
    pub contact_request: Option<ConsentRequestId>,
}

/// A partner's part as stored, with its endorsement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartnerPart {
    pub org: OrgId,
    pub org_name: String,
    pub title: String,
    pub text: String,
    pub topics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub endorsed_at: Option<Timestamp>,
}

/// An offer as published in the catalogue that every vault receives alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedOffer {
    /// Format version of this body.
    pub v: u8,
    pub id: OfferId,
    pub org: OrgId,
    pub org_name: String,
    pub title: String,
    pub text: String,
    pub topics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[schema(value_type = i64)]
    pub valid_from: Timestamp,
    #[schema(value_type = i64)]
    pub valid_until: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCap>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coalition: Vec<PartnerPart>,
    #[serde(default)]
    pub explicit_consent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_request: Option<ConsentRequestId>,
    #[schema(value_type = i64)]
    pub published_at: Timestamp,
}

impl PublishedOffer {
    /// Every topic of the bundle: the publisher's and each partner's.
    pub fn all_topics(&self) -> impl Iterator<Item = &str> {
        self.topics
            .iter()
            .chain(self.coalition.iter().flat_map(|p| p.topics.iter()))
            .map(String::as_str)
    }

    /// Whether every partner endorsed its part.
    pub fn fully_endorsed(&self) -> bool {
        self.coalition.iter().all(|p| p.endorsed_at.is_some())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, OfferError> {
        let o: Self = serde_json::from_slice(b).map_err(|_| OfferError::Corrupt("offer body"))?;
        if o.v != OFFER_FORMAT {
            return Err(OfferError::Corrupt("offer format version"));
        }
        Ok(o)
    }
}

/// Resolves topic slugs, refusing unknown ones and, unless the offer is flagged
/// `explicit_consent`, sensitive ones (directly or through a sensitive parent).
pub fn resolve_topics(
    taxonomy: &Taxonomy,
    slugs: &[String],
    explicit_consent: bool,
    via: &'static str,
) -> Result<Vec<TopicIdx>, OfferError> {
    if slugs.is_empty() || slugs.len() > MAX_TOPICS_PER_OFFER {
        return Err(OfferError::invalid(
            "topics",
            format!("an offer names 1 to {MAX_TOPICS_PER_OFFER} topics"),
        ));
    }
    let mut out = Vec::with_capacity(slugs.len());
    for s in slugs {
        let idx = taxonomy
            .by_slug(s)
            .ok_or_else(|| OfferError::UnknownTopic(s.chars().take(64).collect()))?;
        if let Some(category) = taxonomy.sensitive_category(idx) {
            if !explicit_consent {
                let inherited = taxonomy.get(idx).is_some_and(|t| !t.own_sensitive);
                return Err(OfferError::SensitiveTopic {
                    topic: s.clone(),
                    category: category.to_owned(),
                    via: if inherited {
                        "through its parent topic"
                    } else {
                        via
                    },
                });
            }
        }
        if !out.contains(&idx) {
            out.push(idx);
        }
    }
    Ok(out)
}

/// Checks an offer and turns it into what the catalogue carries.
pub fn validate(
    input: OfferInput,
    id: OfferId,
    org: OrgId,
    org_name: &str,
    partner_names: &dyn Fn(OrgId) -> Option<String>,
    taxonomy: &Taxonomy,
    now: Timestamp,
) -> Result<PublishedOffer, OfferError> {
    let own = resolve_topics(
        taxonomy,
        &input.topics,
        input.explicit_consent,
        "an offer topic",
    )?;
    if input.coalition.len() > MAX_PARTNERS {
        return Err(OfferError::invalid(
            "coalition",
            format!("a bundle has at most {MAX_PARTNERS} partners"),
        ));
    }
    let mut all = TopicSet::default();
    for t in &own {
        all.insert(*t);
    }
    let mut coalition = Vec::with_capacity(input.coalition.len());
    for p in input.coalition {
        if p.org == org || coalition.iter().any(|c: &PartnerPart| c.org == p.org) {
            return Err(OfferError::invalid(
                "coalition",
                "each partner is another organisation, listed once",
            ));
        }
        let name = partner_names(p.org)
            .ok_or_else(|| OfferError::invalid("coalition", "unknown partner organisation"))?;
        for t in resolve_topics(
            taxonomy,
            &p.topics,
            input.explicit_consent,
            "a coalition partner's topic",
        )? {
            all.insert(t);
        }
        coalition.push(PartnerPart {
            org: p.org,
            org_name: name,
            title: p.title.into(),
            text: p.text.into(),
            topics: p.topics,
            endorsed_at: None,
        });
    }
    let sensitive = all.iter().any(|t| taxonomy.is_sensitive(t));
    if input.explicit_consent && !sensitive {
        return Err(OfferError::invalid(
            "explicit_consent",
            "only offers on a sensitive topic need explicit consent; remove the flag",
        ));
    }
    if let Some(src) = &input.rule {
        rule::check(
            src,
            taxonomy,
            SensitivePolicy {
                explicit_consent: input.explicit_consent,
                offer_topics: &all,
            },
        )?;
    }
    let valid_from = input.valid_from.map(When::timestamp).unwrap_or(now);
    let valid_until = input.valid_until.timestamp();
    if valid_until <= now || valid_until <= valid_from {
        return Err(OfferError::invalid(
            "valid_until",
            "must be in the future and after valid_from",
        ));
    }
    if valid_until.unix_millis() - valid_from.unix_millis() > MAX_VALIDITY_DAYS * DAY_MS {
        return Err(OfferError::invalid(
            "valid_until",
            format!("an offer is valid for at most {MAX_VALIDITY_DAYS} days"),
        ));
    }
    if let Some(cap) = input.frequency_cap {
        if !(1..=100).contains(&cap.impressions) || !(1..=365).contains(&cap.per_days) {
            return Err(OfferError::invalid(
                "frequency_cap",
                "impressions 1 to 100 per 1 to 365 days",
            ));
        }
    }
    Ok(PublishedOffer {
        v: OFFER_FORMAT,
        id,
        org,
        org_name: org_name.to_owned(),
        title: input.title.into(),
        text: input.text.into(),
        topics: input.topics,
        rule: input.rule,
        valid_from,
        valid_until,
        frequency_cap: input.frequency_cap,
        coalition,
        explicit_consent: input.explicit_consent,
        contact_request: input.contact_request,
        published_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleErrorKind;

    fn tax() -> Taxonomy {
        Taxonomy::shipped().unwrap()
    }

    fn input(topics: &[&str], rule: Option<&str>) -> OfferInput {
        serde_json::from_value(serde_json::json!({
            "title": "10% off",
            "text": "For members",
            "topics": topics,
            "rule": rule,
            "valid_until": "2027-06-01T00:00:00Z",
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_000_000_000)
    }

    fn org(n: u8) -> OrgId {
        OrgId::from_slice(&[n; 16]).unwrap()
    }

    fn names(o: OrgId) -> Option<String> {
        (o == org(2) || o == org(3)).then(|| format!("Partner {}", o.as_bytes()[0]))
    }

    fn publish(i: OfferInput) -> Result<PublishedOffer, OfferError> {
        validate(
            i,
            OfferId::from_slice(&[9; 16]).unwrap(),
            org(1),
            "Co-op",
            &names,
            &tax(),
            now(),
        )
    }

    #[test]
    fn a_plain_offer_is_published() {
        let o = publish(input(&["cycling"], Some("region == \"NL-NH\""))).unwrap();
        assert_eq!(o.topics, vec!["cycling"]);
        assert_eq!(o.valid_from, now());
        let back = PublishedOffer::from_bytes(&o.to_bytes()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn sensitive_targeting_is_refused_by_topic_parent_rule_and_partner() {
        // Direct topic.
        let e = publish(input(&["pregnancy-and-maternity"], None)).unwrap_err();
        assert!(
            matches!(e, OfferError::SensitiveTopic { ref category, .. } if category == "health"),
            "{e}"
        );
        // A topic that is sensitive through its parent.
        let e = publish(input(&["diabetes"], None)).unwrap_err();
        assert!(
            matches!(
                e,
                OfferError::SensitiveTopic {
                    via: "through its parent topic",
                    ..
                }
            ),
            "{e}"
        );
        // The rule names a sensitive topic although the offer's topics do not.
        let e = publish(input(&["food"], Some("\"halal-food\" in interests"))).unwrap_err();
        assert!(
            matches!(e, OfferError::Rule(ref r) if r.kind == RuleErrorKind::SensitiveTopic),
            "{e}"
        );
        // A coalition partner's part is sensitive.
        let mut i = input(&["cycling"], None);
        i.coalition.push(PartnerInput {
            org: org(2),
            title: Label::try_from("Partner deal").unwrap(),
            text: LongText::try_from("x").unwrap(),
            topics: vec!["babies-and-toddlers".into()],
        });
        let e = publish(i).unwrap_err();
        assert!(
            matches!(
                e,
                OfferError::SensitiveTopic {
                    via: "a coalition partner's topic",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn explicit_consent_offers_may_target_sensitive_topics() {
        let mut i = input(&["diabetes"], Some("\"diabetes\" in interests"));
        i.explicit_consent = true;
        assert!(publish(i).is_ok());
        let mut i = input(&["cycling"], None);
        i.explicit_consent = true;
        assert!(matches!(
            publish(i),
            Err(OfferError::Invalid {
                field: "explicit_consent",
                ..
            })
        ));
    }

    #[test]
    fn bad_offers_are_refused_with_the_field() {
        assert!(matches!(
            publish(input(&[], None)),
            Err(OfferError::Invalid {
                field: "topics",
                ..
            })
        ));
        assert!(matches!(
            publish(input(&["no-such-topic"], None)),
            Err(OfferError::UnknownTopic(_))
        ));
        let mut i = input(&["cycling"], None);
        i.valid_until = When::from(Timestamp::from_unix_millis(1));
        assert!(matches!(
            publish(i),
            Err(OfferError::Invalid {
                field: "valid_until",
                ..
            })
        ));
        let mut i = input(&["cycling"], None);
        i.frequency_cap = Some(FrequencyCap {
            impressions: 0,
            per_days: 7,
        });
        assert!(matches!(
            publish(i),
            Err(OfferError::Invalid {
                field: "frequency_cap",
                ..
            })
        ));
        let mut i = input(&["cycling"], None);
        i.coalition.push(PartnerInput {
            org: org(1),
            title: Label::try_from("Self").unwrap(),
            text: LongText::try_from("x").unwrap(),
            topics: vec!["cycling".into()],
        });
        assert!(matches!(
            publish(i),
            Err(OfferError::Invalid {
                field: "coalition",
                ..
            })
        ));
        let e = publish(input(&["cycling"], Some("region == 1"))).unwrap_err();
        assert!(matches!(e, OfferError::Rule(ref r) if r.kind == RuleErrorKind::Type));
        let unknown_field = serde_json::from_value::<OfferInput>(serde_json::json!({
            "title": "t", "text": "x", "topics": ["cycling"], "valid_until": "2027-01-01T00:00:00Z", "target_email": "x"
        }));
        assert!(unknown_field.is_err());
    }
}
