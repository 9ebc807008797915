//! What members and organisations send and see. Every input is parsed into a
//! checked value before anything is stored; every view names no member and
//! shows no time finer than the hour.

use crate::IntentError;
use me2b_domain::org::{certification_is_sensitive, OrgKind, Role, CERTIFICATIONS};
use me2b_domain::{ConsentId, ConsentRequestId, OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One hour in milliseconds: every time organisations see is a whole hour.
pub const HOUR_MS: i64 = 3_600_000;
/// One week in milliseconds: the publishing quota's and the counts' period.
pub const WEEK_MS: i64 = 7 * 24 * HOUR_MS;
/// The longest text of an intent.
pub const MAX_TEXT_CHARS: usize = 500;
/// The longest terms of an answer.
pub const MAX_TERMS_CHARS: usize = 2_000;
/// The longest reason of a report.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest credential presentation a member attaches on accepting.
pub const MAX_PRESENTATION_CHARS: usize = 16_000;
/// The furthest deadline, in days.
pub const MAX_DEADLINE_DAYS: u32 = 30;
/// The furthest validity of an answer, in days.
pub const MAX_VALIDITY_DAYS: i64 = 365;
/// The largest amount, in cents.
pub const MAX_AMOUNT_CENTS: u64 = 1_000_000_000;
/// Topics or areas in one subscription.
pub const MAX_SUBSCRIPTION_TERMS: usize = 50;

/// What a member is told before publishing, in plain words.
pub const FREE_TEXT_WARNING: &str = "Organisations see your intent without your name, but they see every word of it. Do not write your name, address, e-mail, phone number, or anything only you would write: a detail like that can tell them who you are, or that two of your intents are yours.";

/// What an organisation may ask to receive when its answer is accepted:
/// contact details only (DPV categories), never a special category.
pub const CONTACT_CATEGORIES: [&str; 8] = [
    "name",
    "email-address",
    "telephone-number",
    "postal-code",
    "physical-address",
    "region",
    "country",
    "language",
];

/// The start of the hour `t` is in.
pub fn floor_hour(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(t.unix_millis().div_euclid(HOUR_MS) * HOUR_MS)
}

/// The first whole hour after `t`.
pub fn next_hour(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(floor_hour(t).unix_millis() + HOUR_MS)
}

/// The week `t` is in (weeks since the epoch).
pub fn week_of(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(WEEK_MS)
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, pattern = "^[0-9a-f]{32}$")]
        pub struct $name(pub [u8; 16]);

        impl $name {
            pub fn generate(rng: &dyn me2b_domain::Random) -> Self {
                let mut b = [0u8; 16];
                rng.fill(&mut b);
                Self(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IntentError;
            fn from_str(s: &str) -> Result<Self, IntentError> {
                let mut b = [0u8; 16];
                if s.len() != 32 || hex::decode_to_slice(s, &mut b).is_err() {
                    return Err(IntentError::Invalid("an id is 32 hexadecimal digits"));
                }
                Ok(Self(b))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IntentError;
            fn try_from(s: String) -> Result<Self, IntentError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
    };
}

random_id!(
    /// An intent's one-time pseudonym: 16 random bytes, drawn afresh for each
    /// intent, never derived from the member.
    IntentId
);
random_id!(
    /// An answer's id: 16 random bytes.
    AnswerId
);

/// Who may answer an intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// Every organisation.
    Any,
    /// Co-operatives only.
    Coops,
    /// Organisations whose API key holds this role (e.g. `credentials`: the
    /// federation's credential issuers).
    Role { role: Role },
    /// Only organisations that proved, with a credential another
    /// organisation issued them, `claim = value`: `certification` with a
    /// certification of the federation's list (not one that would tell a
    /// special category about you, such as `halal`), or `federation_member`
    /// with `true`. With `issuer`, only a credential from that organisation
    /// counts. Other organisations never see the intent.
    Credential {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        issuer: Option<OrgId>,
        claim: String,
        value: String,
    },
}

impl Audience {
    /// Whether an organisation of `kind`, answering with a key holding
    /// `roles`, that proved the audience keys `proven`, may answer.
    pub fn allows(
        &self,
        kind: OrgKind,
        roles: &me2b_domain::org::Roles,
        proven: &[String],
    ) -> bool {
        match self {
            Self::Any => true,
            Self::Coops => kind == OrgKind::Coop,
            Self::Role { role } => roles.contains(*role),
            Self::Credential { .. } => self.key().is_some_and(|k| proven.contains(&k)),
        }
    }

    /// A credential audience's key, as the node stores it with the intent:
    /// `claim=value`, or `claim=value@issuer`. None for every other audience.
    pub fn key(&self) -> Option<String> {
        match self {
            Self::Credential {
                issuer,
                claim,
                value,
            } => Some(audience_key(claim, value, *issuer)),
            _ => None,
        }
    }

    /// A credential audience's claim, checked: one organisations' credentials
    /// carry, with a value of the federation's list, naming no special
    /// category. Every other audience passes.
    pub fn check(&self) -> Result<(), IntentError> {
        let Self::Credential { claim, value, .. } = self else {
            return Ok(());
        };
        match claim.as_str() {
            "certification" if certification_is_sensitive(value) => {
                Err(IntentError::SensitiveClaim)
            }
            "certification" if CERTIFICATIONS.contains(&value.as_str()) => Ok(()),
            "federation_member" if value == "true" => Ok(()),
            _ => Err(IntentError::UnknownClaim),
        }
    }

    /// The audience in plain words, e.g. "only organisations certified
    /// fair-trade by Fietsdelers".
    pub fn describe(&self, issuer_name: Option<&str>) -> String {
        let by = issuer_name.map(|n| format!(" by {n}")).unwrap_or_default();
        match self {
            Self::Any => "any organisation".to_owned(),
            Self::Coops => "co-operatives only".to_owned(),
            Self::Role { role } => format!("only organisations with the {} role", role.as_str()),
            Self::Credential { claim, value, .. } if claim == "certification" => {
                format!("only organisations certified {value}{by}")
            }
            Self::Credential { .. } => format!("only members of the federation{by}"),
        }
    }
}

/// The key of a credential audience, or of what an organisation proved.
pub fn audience_key(claim: &str, value: &str, issuer: Option<OrgId>) -> String {
    match issuer {
        Some(i) => format!("{claim}={value}@{i}"),
        None => format!("{claim}={value}"),
    }
}

/// An amount of money in cents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[schema(maximum = 1_000_000_000_u64)]
    pub amount_cents: u64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// A budget range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[schema(maximum = 1_000_000_000_u64)]
    pub min_cents: u64,
    /// At least `min_cents`.
    #[schema(maximum = 1_000_000_000_u64)]
    pub max_cents: u64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

fn check_currency(c: &str) -> Result<(), IntentError> {
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(IntentError::Invalid(
            "a currency is a three-letter ISO 4217 code, e.g. EUR",
        ))
    }
}

impl Budget {
    pub fn check(&self) -> Result<(), IntentError> {
        check_currency(&self.currency)?;
        if self.min_cents > self.max_cents || self.max_cents > MAX_AMOUNT_CENTS {
            return Err(IntentError::Invalid(
                "a budget has min_cents <= max_cents <= 1,000,000,000",
            ));
        }
        Ok(())
    }
}

impl Price {
    pub fn check(&self) -> Result<(), IntentError> {
        check_currency(&self.currency)?;
        if self.amount_cents > MAX_AMOUNT_CENTS {
            return Err(IntentError::Invalid(
                "a price is at most 1,000,000,000 cents",
            ));
        }
        Ok(())
    }
}

/// A free text: trimmed, not empty, within `max` characters, no control
/// characters but newlines.
pub fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    empty: IntentError,
) -> Result<String, IntentError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(empty);
    }
    if t.chars().count() > max {
        return Err(IntentError::TooLong { field, max });
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(IntentError::Invalid("a text contains control characters"));
    }
    Ok(t.to_owned())
}

/// What a member publishes (untrusted input).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentInput {
    /// A taxonomy topic's slug (not a sensitive one).
    pub topic: String,
    /// What you are looking for, up to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub text: String,
    pub budget: Budget,
    /// One of the trust's area codes, e.g. `NL-UT`.
    pub region: String,
    /// Days until the intent and its unaccepted answers are deleted (1 to 30).
    #[schema(minimum = 1, maximum = 30)]
    pub deadline_days: u32,
    pub audience: Audience,
    /// True once the member read [`FREE_TEXT_WARNING`].
    #[serde(default)]
    pub acknowledge_free_text_warning: bool,
}

/// What the node stores of an intent besides its indexed fields (versioned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentBody {
    pub v: u8,
    pub text: String,
    pub budget: Budget,
    pub audience: Audience,
}

/// Open, or closed (accepted or withdrawn: organisations cannot tell which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    Open,
    Closed,
}

/// An intent as an organisation sees it: no member, times to the hour.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrgIntentView {
    pub id: IntentId,
    pub topic: String,
    pub region: String,
    pub text: String,
    pub budget: Budget,
    pub audience: Audience,
    /// The hour it was published (Unix ms, a whole hour): the boundary of the
    /// batch in which it reached organisations, shared by the whole batch.
    pub published_at: i64,
    /// The hour it is deleted (Unix ms, a whole hour).
    pub deadline: i64,
    pub status: IntentStatus,
    /// Whether this organisation may answer it.
    pub may_answer: bool,
    /// Whether this organisation answered it.
    pub answered: bool,
}

/// An organisation's answer (untrusted input).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = IntentAnswerInput)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub price: Price,
    /// Terms of the proposal, up to 2,000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub terms: String,
    /// Until when the proposal stands (Unix ms; rounded down to the hour).
    pub valid_until: i64,
    /// What the organisation asks to receive if accepted (contact categories);
    /// the member chooses which of them to disclose.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub asks: Vec<String>,
}

/// What the node stores of an answer besides its indexed fields (versioned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub v: u8,
    pub price: Price,
    pub terms: String,
    pub asks: Vec<String>,
}

/// Where an organisation's answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    /// The intent is open.
    Open,
    /// The intent closed and this answer was not accepted (the organisation
    /// learns nothing more: not whether another answer was accepted).
    Closed,
    /// The member accepted this answer: see `contact`.
    Accepted,
}

/// What an accepted organisation receives: the consent the member made for
/// this contact alone (read its data through `POST /v1/org/data-access` with
/// the request id) and, if the member chose, a credential presentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The consent request made for this contact (none when the member
    /// disclosed no category).
    pub consent_request_id: Option<ConsentRequestId>,
    /// The member's pseudonym for this contact only (random; not the one
    /// the organisation knows them by elsewhere).
    pub subject: String,
    /// A credential presentation the member chose to show (verify it with
    /// `POST /v1/org/credentials/verify`).
    pub presentation: Option<String>,
}

/// The sealed delivery of an accepted answer (versioned).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Delivery {
    pub v: u8,
    pub contact: Contact,
}

/// An answer as its organisation sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrgAnswerView {
    pub answer_id: AnswerId,
    pub intent_id: IntentId,
    pub price: Price,
    pub terms: String,
    pub asks: Vec<String>,
    pub valid_until: i64,
    /// The hour it was made.
    pub created_at: i64,
    pub status: AnswerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

/// The secret that proves a member published an intent: kept only in their
/// vault; the node stores its SHA-256. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OwnerSecret(pub String);

impl fmt::Debug for OwnerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerSecret(<redacted>)")
    }
}

/// What the member accepted (in their vault).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedAnswer {
    pub answer_id: AnswerId,
    #[schema(value_type = String)]
    pub org: OrgId,
    pub org_name: String,
    pub price: Price,
    pub terms: String,
    pub disclosed: Vec<String>,
    pub consent_id: Option<ConsentId>,
    pub presented_credential: bool,
}

/// A member's intent as their vault keeps it (versioned JSON in an
/// `intent` record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberIntent {
    pub v: u8,
    pub id: IntentId,
    pub secret: OwnerSecret,
    pub topic: String,
    pub region: String,
    pub text: String,
    pub budget: Budget,
    pub audience: Audience,
    pub published_at: i64,
    pub deadline: i64,
    #[serde(default)]
    pub withdrawn: bool,
    #[serde(default)]
    pub accepted: Option<AcceptedAnswer>,
}

/// Where a member's intent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberIntentStatus {
    Open,
    Withdrawn,
    Accepted,
}

/// An answer as the member sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberAnswerView {
    pub answer_id: AnswerId,
    #[schema(value_type = String)]
    pub org_id: OrgId,
    pub org_name: String,
    pub org_kind: OrgKind,
    pub price: Price,
    pub terms: String,
    pub asks: Vec<String>,
    pub valid_until: i64,
    pub created_at: i64,
    pub accepted: bool,
}

/// A member's intent with its answers, as the member sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberIntentView {
    pub id: IntentId,
    pub topic: String,
    pub region: String,
    pub text: String,
    pub budget: Budget,
    pub audience: Audience,
    pub published_at: i64,
    /// When it is deleted: its days count from the batch that showed it to
    /// organisations.
    pub deadline: i64,
    /// The hour from which organisations see it (a batch boundary); none
    /// while it waits for a batch with other members' intents.
    pub visible_from: Option<i64>,
    pub status: MemberIntentStatus,
    pub answers: Vec<MemberAnswerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<AcceptedAnswer>,
}

/// What a member accepts (untrusted input).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    pub answer_id: AnswerId,
    /// Which of the categories the answer asks for to disclose (possibly
    /// none).
    #[serde(default)]
    pub disclose: Vec<String>,
    /// A credential presentation to show the organisation (from
    /// `POST /v1/me/credentials/{id}/present`).
    #[serde(default)]
    pub presentation: Option<String>,
}

/// A member's report of an answer (untrusted input).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A report as the operator sees it: the organisation and what it answered;
/// no member, no intent.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub answer_id: AnswerId,
    #[schema(value_type = String)]
    pub org: OrgId,
    pub reason: String,
    pub price: Price,
    pub terms: String,
    pub at: i64,
}

/// What an organisation follows (untrusted input).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Taxonomy topics; an intent on a topic within one of them matches.
    #[schema(min_items = 1, max_items = 50)]
    pub topics: Vec<String>,
    /// Area codes; none: every area.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub regions: Vec<String>,
}

/// One topic's released count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountBin {
    pub topic: String,
    pub count: i64,
}

/// The noisy counts of intents published in the last full week, per
/// top-level topic (an intent counts in its topic's):
/// one release per week, charged to the intents' pool once (by the first
/// organisation that asks in the week) and shown to every organisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntentCounts {
    pub v: u8,
    /// The counted intents were published from this hour (Unix ms) …
    pub published_from: i64,
    /// … to before this one.
    pub published_to: i64,
    /// Top-level topics whose noisy count reached `min_cohort`; others are
    /// withheld.
    pub bins: Vec<CountBin>,
    pub epsilon: f64,
    pub noise_scale: f64,
    /// The node's minimum cohort plus a margin, so that noise alone rarely
    /// shows a topic nobody asked about.
    pub min_cohort: u64,
    pub mechanism: String,
    pub pool: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hours_round_down_and_up() {
        let t = Timestamp::from_unix_millis(5 * HOUR_MS + 1);
        assert_eq!(floor_hour(t).unix_millis(), 5 * HOUR_MS);
        assert_eq!(next_hour(t).unix_millis(), 6 * HOUR_MS);
        let on = Timestamp::from_unix_millis(5 * HOUR_MS);
        assert_eq!(floor_hour(on), on);
        assert_eq!(next_hour(on).unix_millis(), 6 * HOUR_MS);
    }

    #[test]
    fn audiences() {
        let offers = me2b_domain::org::Roles::try_from(vec![Role::Offers]).unwrap();
        assert!(Audience::Any.allows(OrgKind::Brand, &offers, &[]));
        assert!(Audience::Coops.allows(OrgKind::Coop, &offers, &[]));
        assert!(!Audience::Coops.allows(OrgKind::Brand, &offers, &[]));
        assert!(Audience::Any.allows(OrgKind::Brand, &offers, &[]));
        let issuers = Audience::Role {
            role: Role::Credentials,
        };
        assert!(!issuers.allows(OrgKind::Coop, &offers, &[]));
        let x: OrgId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        let fair = |issuer| Audience::Credential {
            issuer,
            claim: "certification".into(),
            value: "fair-trade".into(),
        };
        assert!(!fair(None).allows(OrgKind::Coop, &offers, &[]));
        assert!(fair(None).allows(
            OrgKind::Brand,
            &offers,
            &["certification=fair-trade".into()]
        ));
        let by_x = format!("certification=fair-trade@{x}");
        assert!(!fair(Some(x)).allows(
            OrgKind::Brand,
            &offers,
            &["certification=fair-trade".into()]
        ));
        assert!(fair(Some(x)).allows(OrgKind::Brand, &offers, &[by_x]));
        assert_eq!(
            fair(Some(x)).describe(Some("Fietsdelers")),
            "only organisations certified fair-trade by Fietsdelers"
        );
        let member = Audience::Credential {
            issuer: None,
            claim: "federation_member".into(),
            value: "true".into(),
        };
        assert_eq!(member.describe(None), "only members of the federation");
        assert!(member.check().is_ok() && fair(None).check().is_ok());
        let with = |claim: &str, value: &str| Audience::Credential {
            issuer: None,
            claim: claim.into(),
            value: value.into(),
        };
        assert!(matches!(
            with("certification", "halal").check(),
            Err(IntentError::SensitiveClaim)
        ));
        for (c, v) in [
            ("certification", "made-up"),
            ("tier", "gold"),
            ("federation_member", "false"),
        ] {
            assert!(
                matches!(with(c, v).check(), Err(IntentError::UnknownClaim)),
                "{c}"
            );
        }
    }

    #[test]
    fn texts_are_trimmed_bounded_and_never_echoed() {
        assert_eq!(
            check_text("text", "  a bike ", 10, IntentError::Empty).unwrap(),
            "a bike"
        );
        assert!(matches!(
            check_text("text", " \n ", 10, IntentError::Empty),
            Err(IntentError::Empty)
        ));
        let e = check_text("text", "secret words here", 5, IntentError::Empty).unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert!(check_text("text", "bell\u{7}", 10, IntentError::Empty).is_err());
    }

    proptest! {
        #[test]
        fn ids_parse_only_32_hex_digits_and_round_trip(s in "\\PC{0,40}", b in any::<[u8; 16]>()) {
            let ok = s.len() == 32 && s.bytes().all(|c| c.is_ascii_hexdigit());
            prop_assert_eq!(s.parse::<IntentId>().is_ok(), ok);
            let id = IntentId(b);
            prop_assert_eq!(id.to_string().parse::<IntentId>().unwrap(), id);
            prop_assert_eq!(s.parse::<AnswerId>().is_ok(), ok);
        }
    }
}
