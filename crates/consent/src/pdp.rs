//! The policy decision point: one pure function, deny by default.

use crate::model::ConsentRecord;
use crate::vocabulary::{Section, Vocabulary, EXPLICIT_CONSENT};
use me2b_domain::{ConsentId, MemberId, OrgId, Timestamp};
use serde::Serialize;

/// Purposes covered by a Global Privacy Control opt-out: sale and sharing of
/// data, and marketing by or for third parties.
pub const GPC_PURPOSES: &[&str] = &[
    "sell-data-to-third-parties",
    "sell-insights-from-data",
    "advertising",
    "personalised-advertising",
    "targeted-advertising",
];

/// Processing covered by a Global Privacy Control opt-out whatever the
/// purpose: giving the member's data to others ("do not sell or share"),
/// cross-selling between co-ops included.
pub const GPC_PROCESSING: &[&str] = &["share"];

/// One access question.
#[derive(Clone, Copy, Debug)]
pub struct AccessQuery<'a> {
    pub org: OrgId,
    pub member: MemberId,
    pub purpose: &'a str,
    pub category: &'a str,
    pub processing: &'a str,
    pub at: Timestamp,
    /// For a cross-sell delivery, the co-op whose receipts go to `org`; None
    /// for every other access. Only a record made for exactly that pair
    /// permits it, and such a record permits nothing else.
    pub cross_sell_from: Option<OrgId>,
}

/// Why access was denied, most specific first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    UnknownTerm,
    NoConsent,
    Refused,
    Withdrawn,
    Expired,
    PurposeNotConsented,
    CategoryNotConsented,
    ProcessingNotConsented,
    SpecialCategoryNeedsExplicitConsent,
    GpcOptOut,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Permit { consent: ConsentId },
    Deny { reason: DenyReason },
}

impl Decision {
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit { .. })
    }
}

/// Why one record does not permit `q`, or None if it does.
fn check(
    v: &Vocabulary,
    r: &ConsentRecord,
    q: &AccessQuery<'_>,
    gpc_since: Option<Timestamp>,
) -> Option<DenyReason> {
    use crate::model::ConsentStatus::*;
    if r.controller != q.org || r.subject != q.member || r.cross_sell_from != q.cross_sell_from {
        return Some(DenyReason::NoConsent);
    }
    match r.status {
        Refused => return Some(DenyReason::Refused),
        Withdrawn if r.withdrawn_at.is_some_and(|w| w <= q.at) => {
            return Some(DenyReason::Withdrawn)
        }
        _ => {}
    }
    if q.at < r.given_at {
        return Some(DenyReason::NoConsent);
    }
    if q.at >= r.expires_at {
        return Some(DenyReason::Expired);
    }
    if !r.purposes.iter().any(|p| p == q.purpose) {
        return Some(DenyReason::PurposeNotConsented);
    }
    if !r
        .categories
        .iter()
        .any(|c| v.category_within(q.category, c))
    {
        return Some(DenyReason::CategoryNotConsented);
    }
    if !r.processing.iter().any(|p| p == q.processing) {
        return Some(DenyReason::ProcessingNotConsented);
    }
    if v.is_special(q.category) && r.legal_basis != EXPLICIT_CONSENT {
        return Some(DenyReason::SpecialCategoryNeedsExplicitConsent);
    }
    // A GPC signal opts out of sale/sharing and third-party marketing for every
    // consent given before it; a consent given after it is the member's later word.
    let gpc_covers = GPC_PURPOSES.contains(&q.purpose) || GPC_PROCESSING.contains(&q.processing);
    if gpc_covers && gpc_since.is_some_and(|g| r.given_at <= g) {
        return Some(DenyReason::GpcOptOut);
    }
    None
}

/// Decides `q` from the member's consent records with the organisation and the
/// member's GPC opt-out time. Deny by default: only a record in force that covers
/// the purpose, the category (or a parent of it), the processing and, for a
/// special category, explicit consent, permits.
pub fn decide(
    v: &Vocabulary,
    records: &[ConsentRecord],
    gpc_since: Option<Timestamp>,
    q: &AccessQuery<'_>,
) -> Decision {
    if v.term(Section::Purpose, q.purpose).is_none()
        || v.term(Section::Category, q.category).is_none()
        || v.term(Section::Processing, q.processing).is_none()
    {
        return Decision::Deny {
            reason: DenyReason::UnknownTerm,
        };
    }
    let mut best: Option<(Timestamp, DenyReason)> = None;
    let mut permit: Option<(Timestamp, ConsentId)> = None;
    for r in records {
        match check(v, r, q, gpc_since) {
            None => {
                if permit.is_none_or(|(t, _)| r.given_at > t) {
                    permit = Some((r.given_at, r.id));
                }
            }
            Some(reason) => {
                // Report the reason from the most recent answer of the member.
                if reason != DenyReason::NoConsent && best.is_none_or(|(t, _)| r.given_at >= t) {
                    best = Some((r.given_at, reason));
                }
            }
        }
    }
    match (permit, best) {
        (Some((_, consent)), _) => Decision::Permit { consent },
        (None, Some((_, reason))) => Decision::Deny { reason },
        (None, None) => Decision::Deny {
            reason: DenyReason::NoConsent,
        },
    }
}
