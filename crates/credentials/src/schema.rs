//! The credential schema: a versioned, ordered list of claims, and how claims
//! become BBS messages.
//!
//! # Schema version 1
//!
//! | index | claim | value |
//! | --- | --- | --- |
//! | 0 | `issuer` | the issuing co-op's organisation id (lowercase hyphenated UUID); an ordinary, hideable claim: the federation's key signs every co-op's credentials |
//! | 1 | `credential_type` | e.g. `coop-membership` |
//! | 2 | `federation` | the federation of co-ops, the same for every credential of its key |
//! | 3 | `member_since` | year, four digits |
//! | 4 | `tier` | membership tier, e.g. `standard` |
//! | 5 | `region` | e.g. an ISO 3166-2 code such as `NL-NH` |
//! | 6 | `validity_epoch` | last epoch (week, see [`Epoch`]) in which the credential is valid, decimal; fixed by the federation's [`ValidityPeriod`], never per credential |
//! | 7 | `status_index` | the credential's entry in the federation's status list, decimal |
//! | 8–11 | `interest_1` … `interest_4` | declared interests (topics of the interest taxonomy); the empty string for an empty slot |
//!
//! Every credential has all twelve messages (empty interest slots included), so the
//! message count, and therefore the proof size, says nothing about the member.
//!
//! Text values are 1–64 bytes of UTF-8 without control characters or surrounding
//! whitespace. Numbers are decimal without leading zeros. Every value has exactly
//! one accepted spelling, so a disclosed value maps to exactly one message.
//!
//! **Message encoding**: message *i* is `name_i || "=" || value_i` in UTF-8 (for
//! example `federation=F`). **Header**: the BBS header of every signature and proof
//! is [`CredentialSchema::header`], `me2b/credential/schema/1`, so a signature made
//! under one schema version never verifies under another.

use crate::CredentialError;
use me2b_domain::{OrgId, Random, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

mod org;
pub use org::{OrgClaims, ORG_ATTESTATION};

/// A credential schema version: 1 (members' co-op memberships) or 2
/// (organisations' attestations, see [`ClaimName::ORG`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct SchemaVersion(u16);

impl SchemaVersion {
    pub const V1: Self = Self(1);
    /// Organisations' attestations.
    pub const V2: Self = Self(2);

    /// A version this build knows.
    pub fn new(v: u16) -> Result<Self, CredentialError> {
        if v == 1 || v == 2 {
            Ok(Self(v))
        } else {
            Err(CredentialError::UnsupportedSchema)
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for SchemaVersion {
    type Error = CredentialError;
    fn try_from(v: u16) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<SchemaVersion> for u16 {
    fn from(v: SchemaVersion) -> u16 {
        v.0
    }
}

/// The claims of schema version 1, in message order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimName {
    Issuer,
    CredentialType,
    Federation,
    MemberSince,
    Tier,
    Region,
    ValidityEpoch,
    StatusIndex,
    #[serde(rename = "interest_1")]
    Interest1,
    #[serde(rename = "interest_2")]
    Interest2,
    #[serde(rename = "interest_3")]
    Interest3,
    #[serde(rename = "interest_4")]
    Interest4,
    /// Schema 2: the organisation the attestation is about (its id).
    Subject,
    /// Schema 2: a certification of the federation's list, or empty.
    Certification,
    /// Schema 2: `true` or `false`.
    FederationMember,
}

/// Number of declared-interest slots.
pub const INTEREST_SLOTS: usize = 4;

impl ClaimName {
    /// All claims of schema version 1, in message order.
    pub const ALL: [ClaimName; 12] = [
        ClaimName::Issuer,
        ClaimName::CredentialType,
        ClaimName::Federation,
        ClaimName::MemberSince,
        ClaimName::Tier,
        ClaimName::Region,
        ClaimName::ValidityEpoch,
        ClaimName::StatusIndex,
        ClaimName::Interest1,
        ClaimName::Interest2,
        ClaimName::Interest3,
        ClaimName::Interest4,
    ];

    /// The claims of schema version 2 (an organisation's attestation), in
    /// message order. Nothing in it describes a person.
    pub const ORG: [ClaimName; 7] = [
        ClaimName::Issuer,
        ClaimName::CredentialType,
        ClaimName::Federation,
        ClaimName::Subject,
        ClaimName::ValidityEpoch,
        ClaimName::Certification,
        ClaimName::FederationMember,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issuer => "issuer",
            Self::CredentialType => "credential_type",
            Self::Federation => "federation",
            Self::MemberSince => "member_since",
            Self::Tier => "tier",
            Self::Region => "region",
            Self::ValidityEpoch => "validity_epoch",
            Self::StatusIndex => "status_index",
            Self::Interest1 => "interest_1",
            Self::Interest2 => "interest_2",
            Self::Interest3 => "interest_3",
            Self::Interest4 => "interest_4",
            Self::Subject => "subject",
            Self::Certification => "certification",
            Self::FederationMember => "federation_member",
        }
    }

    /// The claim of this exact name (of either schema), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::ORG)
            .find(|c| c.as_str() == s)
    }

    fn interest_slot(self) -> Option<usize> {
        match self {
            Self::Interest1 => Some(0),
            Self::Interest2 => Some(1),
            Self::Interest3 => Some(2),
            Self::Interest4 => Some(3),
            _ => None,
        }
    }
}

impl fmt::Display for ClaimName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema: its version and its ordered claims.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CredentialSchema {
    version: SchemaVersion,
    claims: &'static [ClaimName],
}

impl CredentialSchema {
    /// Schema version 1 (see the module documentation).
    pub fn v1() -> Self {
        Self {
            version: SchemaVersion::V1,
            claims: &ClaimName::ALL,
        }
    }

    /// Schema version 2: an organisation's attestation ([`ClaimName::ORG`]).
    pub fn org() -> Self {
        Self {
            version: SchemaVersion::V2,
            claims: &ClaimName::ORG,
        }
    }

    /// The schema of a known version ([`SchemaVersion`] only holds known
    /// versions: 1 and 2).
    pub fn for_version(version: SchemaVersion) -> Self {
        Self {
            version,
            claims: if version == SchemaVersion::V2 {
                &ClaimName::ORG
            } else {
                &ClaimName::ALL
            },
        }
    }

    pub fn version(&self) -> SchemaVersion {
        self.version
    }

    /// The claims in message order.
    pub fn claims(&self) -> &'static [ClaimName] {
        self.claims
    }

    /// L: the number of BBS messages of every credential of this schema.
    pub fn message_count(&self) -> usize {
        self.claims.len()
    }

    /// The message index of a claim.
    pub fn index_of(&self, name: ClaimName) -> Option<usize> {
        self.claims.iter().position(|c| *c == name)
    }

    /// The BBS header: `me2b/credential/schema/<version>`.
    pub fn header(&self) -> Vec<u8> {
        format!("me2b/credential/schema/{}", self.version.0).into_bytes()
    }

    /// The BBS message of one claim: `name || "=" || value`.
    pub fn encode_message(name: ClaimName, value: &ClaimValue) -> Vec<u8> {
        let mut m = Vec::with_capacity(name.as_str().len() + 1 + value.0.len());
        m.extend_from_slice(name.as_str().as_bytes());
        m.push(b'=');
        m.extend_from_slice(value.0.as_bytes());
        m
    }
}

/// The claims a credential signs (a member's [`Claims`], an organisation's
/// [`OrgClaims`]): each claim's canonical value, and from them the BBS
/// messages of a schema, the one encoding signing, verifying and presenting
/// share.
pub trait ClaimSet {
    /// The canonical value of one claim (empty for a claim not of its
    /// schema).
    fn value(&self, name: ClaimName) -> ClaimValue;

    /// The BBS messages, in the schema's order.
    fn messages(&self, schema: &CredentialSchema) -> Vec<Vec<u8>> {
        schema
            .claims()
            .iter()
            .map(|&name| CredentialSchema::encode_message(name, &self.value(name)))
            .collect()
    }
}

/// A claim value in its one canonical spelling, checked against its claim.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClaimValue(String);

impl ClaimValue {
    /// Parses untrusted text as the value of claim `name`.
    pub fn parse(name: ClaimName, s: &str) -> Result<Self, CredentialError> {
        let invalid = |reason| CredentialError::InvalidClaim {
            claim: name.as_str(),
            reason,
        };
        match name {
            ClaimName::Issuer | ClaimName::Subject => {
                let id = OrgId::from_str(s).map_err(|_| invalid("must be an organisation id"))?;
                if id.to_string() != s {
                    return Err(invalid("must be a lowercase hyphenated UUID"));
                }
            }
            ClaimName::MemberSince => {
                MemberSince::parse(s)?;
            }
            ClaimName::ValidityEpoch | ClaimName::StatusIndex => {
                parse_canonical_u32(s).ok_or_else(|| invalid("must be a decimal number"))?;
            }
            ClaimName::CredentialType
            | ClaimName::Federation
            | ClaimName::Tier
            | ClaimName::Region => {
                check_text(s).map_err(invalid)?;
            }
            ClaimName::Interest1
            | ClaimName::Interest2
            | ClaimName::Interest3
            | ClaimName::Interest4
            | ClaimName::Certification => {
                if !s.is_empty() {
                    check_text(s).map_err(invalid)?;
                }
            }
            ClaimName::FederationMember => {
                if s != "true" && s != "false" {
                    return Err(invalid("must be true or false"));
                }
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClaimValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claim values can be personal data: logs get their size only.
        write!(f, "ClaimValue(<{} bytes>)", self.0.len())
    }
}

fn parse_canonical_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Maximum bytes of a text claim.
pub const MAX_TEXT_BYTES: usize = 64;

fn check_text(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_TEXT_BYTES {
        return Err("must be at most 64 bytes");
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if s.trim() != s {
        return Err("must not start or end with whitespace");
    }
    Ok(())
}

/// Text of a claim: 1–64 bytes of UTF-8, no control characters, no surrounding
/// whitespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClaimText(String);

impl ClaimText {
    pub fn new(s: &str) -> Result<Self, CredentialError> {
        check_text(s).map_err(|reason| CredentialError::InvalidClaim {
            claim: "text",
            reason,
        })?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClaimText {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<ClaimText> for String {
    fn from(t: ClaimText) -> String {
        t.0
    }
}

impl fmt::Debug for ClaimText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimText(<{} bytes>)", self.0.len())
    }
}

/// The year membership began (1800–9999).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct MemberSince(u16);

impl MemberSince {
    pub fn new(year: u16) -> Result<Self, CredentialError> {
        if (1800..=9999).contains(&year) {
            Ok(Self(year))
        } else {
            Err(CredentialError::InvalidClaim {
                claim: "member_since",
                reason: "must be a year from 1800 to 9999",
            })
        }
    }

    fn parse(s: &str) -> Result<Self, CredentialError> {
        let invalid = CredentialError::InvalidClaim {
            claim: "member_since",
            reason: "must be a four-digit year",
        };
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid);
        }
        let year: u16 = s.parse().map_err(|_| invalid.clone())?;
        Self::new(year)
    }

    pub fn year(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for MemberSince {
    type Error = CredentialError;
    fn try_from(v: u16) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<MemberSince> for u16 {
    fn from(v: MemberSince) -> u16 {
        v.0
    }
}

/// Seconds in one validity epoch: one week. Epoch 0 starts at the Unix epoch.
pub const EPOCH_LENGTH_SECONDS: i64 = 7 * 24 * 60 * 60;

/// A validity epoch: a week-long period, numbered from the Unix epoch. Short
/// epochs with re-issuance are the default way credentials expire (see
/// `LINKABILITY.md`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(u32);

impl Epoch {
    pub const fn new(n: u32) -> Self {
        Self(n)
    }

    /// The epoch containing `t` (times before 1970 fall in epoch 0).
    pub fn containing(t: Timestamp) -> Self {
        let secs = t.unix_millis().div_euclid(1000);
        let n = secs.div_euclid(EPOCH_LENGTH_SECONDS).max(0);
        Self(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// `n` epochs later (saturating).
    pub fn plus(self, n: u32) -> Self {
        Self(self.0.saturating_add(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The federation's validity period: how long credentials last, set once for
/// the whole federation and never chosen per credential (an issuer that could
/// choose an expiry per member could tag that member with it).
///
/// Periods are `weeks` weeks long and aligned to epoch 0 (period *k* is the
/// epochs `k·weeks … (k+1)·weeks − 1`). A credential issued during period *k*
/// is valid through the last epoch of period *k + 1*: between one and two
/// periods. So every credential issued in one period carries the same
/// `validity_epoch`, and at any moment the valid credentials carry one of two
/// values (issued this period, or the one before). Renewal is due once a
/// period and never makes every credential expire at the same instant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ValidityPeriod {
    weeks: u32,
}

impl ValidityPeriod {
    /// The default: periods of four weeks (credentials last four to eight).
    pub const DEFAULT_WEEKS: u32 = 4;
    /// The longest period: short validity with renewal is how credentials
    /// expire (see `LINKABILITY.md`).
    pub const MAX_WEEKS: u32 = 26;

    /// A period of `weeks` weeks, 1 to [`Self::MAX_WEEKS`].
    pub fn weeks(weeks: u32) -> Result<Self, CredentialError> {
        if (1..=Self::MAX_WEEKS).contains(&weeks) {
            Ok(Self { weeks })
        } else {
            Err(CredentialError::InvalidPeriod)
        }
    }

    /// The period's length in weeks.
    pub fn get(self) -> u32 {
        self.weeks
    }

    /// The validity epoch of every credential issued at `issued`: the last
    /// epoch of the period after the one containing `issued`.
    pub fn validity_epoch(self, issued: Timestamp) -> Epoch {
        let weeks = u64::from(self.weeks);
        let period = u64::from(Epoch::containing(issued).get()) / weeks;
        Epoch(u32::try_from((period + 2) * weeks - 1).unwrap_or(u32::MAX))
    }
}

impl Default for ValidityPeriod {
    fn default() -> Self {
        Self {
            weeks: Self::DEFAULT_WEEKS,
        }
    }
}

/// An entry of the federation's status list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatusIndex(u32);

impl StatusIndex {
    pub const fn new(i: u32) -> Self {
        Self(i)
    }

    /// A uniformly random index below `list_len` (rejection sampling), so that an
    /// index says nothing about the order of issuance. The issuer draws again if
    /// the index is already taken.
    pub fn random(rng: &dyn Random, list_len: usize) -> Result<Self, CredentialError> {
        let bound = u32::try_from(list_len).map_err(|_| CredentialError::InvalidStatusListSize)?;
        if bound == 0 {
            return Err(CredentialError::InvalidStatusListSize);
        }
        // Largest multiple of `bound` that fits in u32's range, as u64.
        let zone = (u64::from(u32::MAX) + 1) / u64::from(bound) * u64::from(bound);
        loop {
            let mut b = [0u8; 4];
            rng.fill(&mut b);
            let v = u64::from(u32::from_be_bytes(b));
            if v < zone {
                return Ok(Self((v % u64::from(bound)) as u32));
            }
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Up to [`INTEREST_SLOTS`] declared interests, in slot order.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, Debug)]
#[serde(try_from = "Vec<ClaimText>", into = "Vec<ClaimText>")]
pub struct Interests(Vec<ClaimText>);

impl Interests {
    pub fn new(interests: Vec<ClaimText>) -> Result<Self, CredentialError> {
        if interests.len() > INTEREST_SLOTS {
            return Err(CredentialError::InvalidClaim {
                claim: "interests",
                reason: "at most 4 interests",
            });
        }
        Ok(Self(interests))
    }

    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn as_slice(&self) -> &[ClaimText] {
        &self.0
    }
}

impl TryFrom<Vec<ClaimText>> for Interests {
    type Error = CredentialError;
    fn try_from(v: Vec<ClaimText>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<Interests> for Vec<ClaimText> {
    fn from(i: Interests) -> Self {
        i.0
    }
}

/// The credential type of a co-op membership.
pub const COOP_MEMBERSHIP: &str = "coop-membership";

/// The federation's name unless the node is configured with another.
pub const DEFAULT_FEDERATION: &str = "Fair Economy Federation";

impl ClaimText {
    /// [`DEFAULT_FEDERATION`] (a valid claim text; a unit test checks it).
    pub fn default_federation() -> Self {
        Self(DEFAULT_FEDERATION.to_owned())
    }
}

/// The claims of one credential (schema version 1). Every field is a checked type.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub issuer: OrgId,
    pub credential_type: ClaimText,
    pub federation: ClaimText,
    pub member_since: MemberSince,
    pub tier: ClaimText,
    pub region: ClaimText,
    pub validity_epoch: Epoch,
    pub status_index: StatusIndex,
    #[serde(default)]
    pub interests: Interests,
}

impl Claims {
    /// The canonical value of one claim.
    pub fn value(&self, name: ClaimName) -> ClaimValue {
        ClaimValue(match name {
            ClaimName::Issuer => self.issuer.to_string(),
            ClaimName::CredentialType => self.credential_type.0.clone(),
            ClaimName::Federation => self.federation.0.clone(),
            ClaimName::MemberSince => self.member_since.0.to_string(),
            ClaimName::Tier => self.tier.0.clone(),
            ClaimName::Region => self.region.0.clone(),
            ClaimName::ValidityEpoch => self.validity_epoch.0.to_string(),
            ClaimName::StatusIndex => self.status_index.0.to_string(),
            ClaimName::Interest1
            | ClaimName::Interest2
            | ClaimName::Interest3
            | ClaimName::Interest4 => name
                .interest_slot()
                .and_then(|i| self.interests.0.get(i))
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            // Not claims of schema version 1.
            ClaimName::Subject | ClaimName::Certification | ClaimName::FederationMember => {
                String::new()
            }
        })
    }
}

impl ClaimSet for Claims {
    fn value(&self, name: ClaimName) -> ClaimValue {
        Claims::value(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_round_trip_and_follow_message_order() {
        let schema = CredentialSchema::v1();
        assert_eq!(schema.message_count(), 12);
        for (i, name) in ClaimName::ALL.into_iter().enumerate() {
            assert_eq!(ClaimName::parse(name.as_str()), Some(name));
            assert_eq!(schema.index_of(name), Some(i));
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{}\"", name.as_str()));
        }
        assert_eq!(ClaimName::parse("Issuer"), None);
        assert_eq!(schema.header(), b"me2b/credential/schema/1");
    }

    #[test]
    fn values_have_one_spelling() {
        assert!(ClaimValue::parse(ClaimName::ValidityEpoch, "2900").is_ok());
        assert!(ClaimValue::parse(ClaimName::ValidityEpoch, "0").is_ok());
        for bad in ["02900", "+1", "", " 1", "4294967296", "1e3"] {
            assert!(
                ClaimValue::parse(ClaimName::ValidityEpoch, bad).is_err(),
                "{bad}"
            );
        }
        assert!(ClaimValue::parse(ClaimName::MemberSince, "2019").is_ok());
        for bad in ["219", "20190", "1799", "+201"] {
            assert!(
                ClaimValue::parse(ClaimName::MemberSince, bad).is_err(),
                "{bad}"
            );
        }
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert!(ClaimValue::parse(ClaimName::Issuer, id).is_ok());
        assert!(ClaimValue::parse(ClaimName::Issuer, &id.to_uppercase()).is_err());
        assert!(ClaimValue::parse(ClaimName::Issuer, &id.replace('-', "")).is_err());
        assert!(ClaimValue::parse(ClaimName::Tier, "").is_err());
        assert!(ClaimValue::parse(ClaimName::Interest2, "").is_ok());
        assert!(ClaimValue::parse(ClaimName::Tier, "gold\n").is_err());
        assert!(ClaimValue::parse(ClaimName::Tier, " gold").is_err());
        assert!(ClaimValue::parse(ClaimName::Tier, &"x".repeat(65)).is_err());
        assert!(ClaimValue::parse(ClaimName::Region, "Noord-Holland é").is_ok());
    }

    #[test]
    fn epochs_are_weeks_from_the_unix_epoch() {
        assert_eq!(Epoch::containing(Timestamp::from_unix_millis(0)).get(), 0);
        let week_ms = EPOCH_LENGTH_SECONDS * 1000;
        assert_eq!(
            Epoch::containing(Timestamp::from_unix_millis(week_ms - 1)).get(),
            0
        );
        assert_eq!(
            Epoch::containing(Timestamp::from_unix_millis(week_ms)).get(),
            1
        );
        assert_eq!(Epoch::containing(Timestamp::from_unix_millis(-5)).get(), 0);
    }

    #[test]
    fn one_validity_epoch_per_period() {
        let week_ms = EPOCH_LENGTH_SECONDS * 1000;
        let p = ValidityPeriod::default();
        assert_eq!(p.get(), 4);
        // Period 739 is weeks 2956..=2959; its credentials last through 2963.
        let start = 2956 * week_ms;
        let epochs: std::collections::BTreeSet<u32> =
            [0, 1, week_ms, 3 * week_ms + 5, 4 * week_ms - 1]
                .iter()
                .map(|d| {
                    p.validity_epoch(Timestamp::from_unix_millis(start + d))
                        .get()
                })
                .collect();
        assert_eq!(epochs.into_iter().collect::<Vec<_>>(), vec![2963]);
        assert_eq!(
            p.validity_epoch(Timestamp::from_unix_millis(start + 4 * week_ms))
                .get(),
            2967
        );
        assert_eq!(p.validity_epoch(Timestamp::from_unix_millis(-1)).get(), 7);
        let one = ValidityPeriod::weeks(1).unwrap();
        assert_eq!(
            one.validity_epoch(Timestamp::from_unix_millis(start)).get(),
            2957
        );
        for bad in [0, 27, u32::MAX] {
            assert_eq!(
                ValidityPeriod::weeks(bad),
                Err(CredentialError::InvalidPeriod)
            );
        }
        assert!(ValidityPeriod::weeks(26).is_ok());
        // Never before the issue, whatever the time.
        for t in [0i64, 1, 1_790_000_000_000, i64::MAX / 2] {
            for w in [1, 4, 26] {
                let p = ValidityPeriod::weeks(w).unwrap();
                let issued = Timestamp::from_unix_millis(t);
                assert!(p.validity_epoch(issued) >= Epoch::containing(issued));
            }
        }
    }

    #[test]
    fn the_default_federation_is_a_valid_claim() {
        assert_eq!(
            ClaimText::new(DEFAULT_FEDERATION).unwrap(),
            ClaimText::default_federation()
        );
    }

    #[derive(Debug)]
    struct Counter(std::sync::atomic::AtomicU32);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            let v = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (v as u8).wrapping_mul(31).wrapping_add(i as u8);
            }
        }
    }

    #[test]
    fn random_status_indexes_stay_below_the_bound() {
        let rng = Counter(Default::default());
        for bound in [1usize, 7, 131_072] {
            for _ in 0..50 {
                assert!((StatusIndex::random(&rng, bound).unwrap().get() as usize) < bound);
            }
        }
        assert!(StatusIndex::random(&rng, 0).is_err());
    }
}
