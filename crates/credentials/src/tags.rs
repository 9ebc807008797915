//! The values of `tier` and `region` a co-op may vouch for: names from lists
//! the federation sets, never free text. A free value (64 bytes, homoglyphs,
//! zero-width characters) would let an issuer write a tag for one member
//! into a credential, which every verifier that asks for the claim then sees.
//!
//! * A [`Tier`] is one of the federation's tiers (`[credentials] tiers` in
//!   the governance file; default `member`, `supporting`, `founding`).
//! * A [`Region`] is one of the data trust's area codes (`[trust] areas`;
//!   ISO 3166-2 subdivisions such as `NL-NH` by default): the trust's own
//!   granularity, so a credential says no more about where a member lives
//!   than a receipt may.
//!
//! * `member_since` is a year of the federation's coarse list: every
//!   `member_since_step`th year from `member_since_from` (`[credentials]`;
//!   default every fifth year from 2000), up to the current year. Any year
//!   from 1800 to 9999 would let an issuer write an implausible year as a
//!   tag (the adversarial review read 1801, 4242, 9876 and 9999 back).
//!
//! Both are ASCII only and parsed once ("parse, don't validate"): the
//! list ([`FederationTags`]) turns untrusted text into a value or a refusal.

use crate::schema::MemberSince;
use crate::CredentialError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Longest tier name, in bytes.
pub const MAX_TIER_BYTES: usize = 32;
/// Longest area code, in bytes (the trust's bound).
pub const MAX_REGION_BYTES: usize = 8;

/// A membership tier's name: 1–32 lowercase ASCII letters, digits and
/// hyphens. Only one of the federation's list is issued.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tier(String);

impl Tier {
    /// The form of a tier name (not whether the federation has it).
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TIER_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(CredentialError::InvalidClaim {
                claim: "tier",
                reason: "a tier is 1 to 32 lowercase ASCII letters, digits and hyphens",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An area code: 1–8 ASCII letters, digits and hyphens (e.g. `NL-NH`).
/// Only one of the trust's areas is issued.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// The form of an area code (not whether the trust has it).
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_REGION_BYTES
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(CredentialError::InvalidClaim {
                claim: "region",
                reason: "a region is one of the trust's area codes: 1 to 8 ASCII letters, digits and hyphens",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_impls {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = CredentialError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(t: $t) -> String {
                t.0
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0)
            }
        }
    };
}
text_impls!(Tier);
text_impls!(Region);

/// The default tiers of a federation.
pub const DEFAULT_TIERS: [&str; 3] = ["member", "supporting", "founding"];

/// The tiers and regions the federation lets its co-ops vouch for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationTags {
    tiers: BTreeSet<Tier>,
    regions: BTreeSet<Region>,
    /// The first year of the `member_since` list, and its step.
    since_from: u16,
    since_step: u16,
}

/// The default first year of the `member_since` list.
pub const DEFAULT_MEMBER_SINCE_FROM: u16 = 2000;
/// The default step of the `member_since` list (years).
pub const DEFAULT_MEMBER_SINCE_STEP: u16 = 5;

/// Why a value is not one of the federation's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagRefusal {
    /// Not of a tier's or an area code's form (e.g. not ASCII).
    Form(CredentialError),
    UnknownTier,
    UnknownRegion,
    UnknownMemberSince,
}

impl FederationTags {
    /// The lists (each non-empty, each name of its form).
    pub fn new(
        tiers: impl IntoIterator<Item = impl AsRef<str>>,
        regions: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, CredentialError> {
        let tiers = tiers
            .into_iter()
            .map(|t| Tier::parse(t.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let regions = regions
            .into_iter()
            .map(|r| Region::parse(r.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if tiers.is_empty() || regions.is_empty() {
            return Err(CredentialError::InvalidClaim {
                claim: "tier",
                reason: "the federation lists at least one tier and one region",
            });
        }
        Ok(Self {
            tiers,
            regions,
            since_from: DEFAULT_MEMBER_SINCE_FROM,
            since_step: DEFAULT_MEMBER_SINCE_STEP,
        })
    }

    /// The `member_since` list: every `step`th year from `from` (1900 to
    /// 2100, step 1 to 50).
    pub fn with_member_since(mut self, from: u16, step: u16) -> Result<Self, CredentialError> {
        if !(1900..=2100).contains(&from) || !(1..=50).contains(&step) {
            return Err(CredentialError::InvalidClaim {
                claim: "member_since",
                reason: "the federation's list starts 1900 to 2100, in steps of 1 to 50 years",
            });
        }
        self.since_from = from;
        self.since_step = step;
        Ok(self)
    }

    /// A `member_since` year of the federation's list, no later than
    /// `this_year`.
    pub fn member_since(&self, year: u16, this_year: u16) -> Result<MemberSince, TagRefusal> {
        let listed = year >= self.since_from
            && year <= this_year
            && (year - self.since_from).is_multiple_of(self.since_step);
        if !listed {
            return Err(TagRefusal::UnknownMemberSince);
        }
        MemberSince::new(year).map_err(TagRefusal::Form)
    }

    /// The years of the `member_since` list up to `this_year`.
    pub fn member_since_years(&self, this_year: u16) -> Vec<u16> {
        (self.since_from..=this_year.max(self.since_from))
            .step_by(usize::from(self.since_step))
            .filter(|y| *y <= this_year)
            .collect()
    }

    /// A tier of the federation's list, from untrusted text.
    pub fn tier(&self, raw: &str) -> Result<Tier, TagRefusal> {
        let t = Tier::parse(raw).map_err(TagRefusal::Form)?;
        if self.tiers.contains(&t) {
            Ok(t)
        } else {
            Err(TagRefusal::UnknownTier)
        }
    }

    /// One of the trust's areas, from untrusted text.
    pub fn region(&self, raw: &str) -> Result<Region, TagRefusal> {
        let r = Region::parse(raw).map_err(TagRefusal::Form)?;
        if self.regions.contains(&r) {
            Ok(r)
        } else {
            Err(TagRefusal::UnknownRegion)
        }
    }

    pub fn tiers(&self) -> impl Iterator<Item = &Tier> {
        self.tiers.iter()
    }

    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter()
    }
}

/// The default tiers and the trust's default areas (the Dutch provinces).
impl Default for FederationTags {
    fn default() -> Self {
        let regions = [
            "NL-DR", "NL-FL", "NL-FR", "NL-GE", "NL-GR", "NL-LI", "NL-NB", "NL-NH", "NL-OV",
            "NL-UT", "NL-ZE", "NL-ZH",
        ];
        Self {
            tiers: DEFAULT_TIERS
                .iter()
                .map(|t| Tier((*t).to_owned()))
                .collect(),
            regions: regions.iter().map(|r| Region((*r).to_owned())).collect(),
            since_from: DEFAULT_MEMBER_SINCE_FROM,
            since_step: DEFAULT_MEMBER_SINCE_STEP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn member_since_is_a_year_of_the_coarse_list_up_to_now() {
        let f = FederationTags::default();
        for ok in [2000, 2005, 2020, 2025] {
            assert!(f.member_since(ok, 2026).is_ok(), "{ok}");
        }
        for tag in [1801, 1999, 2019, 2030, 4242, 9876, 9999] {
            assert_eq!(
                f.member_since(tag, 2026),
                Err(TagRefusal::UnknownMemberSince),
                "{tag}"
            );
        }
        assert_eq!(
            f.member_since_years(2026),
            vec![2000, 2005, 2010, 2015, 2020, 2025]
        );
        let yearly = FederationTags::default()
            .with_member_since(2010, 1)
            .unwrap();
        assert!(yearly.member_since(2019, 2026).is_ok());
        assert!(FederationTags::default()
            .with_member_since(1800, 5)
            .is_err());
        assert!(FederationTags::default()
            .with_member_since(2000, 0)
            .is_err());
    }

    #[test]
    fn only_listed_ascii_names_pass() {
        let f = FederationTags::default();
        assert_eq!(f.tier("member").unwrap().as_str(), "member");
        assert_eq!(f.region("NL-NH").unwrap().as_str(), "NL-NH");
        assert_eq!(f.tier("gold"), Err(TagRefusal::UnknownTier));
        assert!(matches!(f.tier("gold-TAG-0001"), Err(TagRefusal::Form(_))));
        assert_eq!(f.region("TAG-0002"), Err(TagRefusal::UnknownRegion));
        // Homoglyphs (Cyrillic о), zero-width characters, case and spaces.
        for t in [
            "memb\u{043e}r",
            "member\u{200b}",
            "Member",
            " member",
            "member ",
            "",
        ] {
            assert!(matches!(f.tier(t), Err(TagRefusal::Form(_))), "{t:?}");
        }
        for r in [
            "NL-N\u{041d}",
            "NL-NH\u{200d}",
            "NL NH",
            "Noord-Holland",
            "",
        ] {
            assert!(f.region(r).is_err(), "{r:?}");
        }
        assert!(FederationTags::new(["member"], Vec::<String>::new()).is_err());
        assert!(FederationTags::new(["gold\u{200b}"], ["NL-NH"]).is_err());
    }

    proptest! {
        /// Whatever text comes in, what passes is one of the listed names,
        /// byte for byte.
        #[test]
        fn nothing_but_listed_names_pass(raw in "\\PC{0,40}") {
            let f = FederationTags::default();
            if let Ok(t) = f.tier(&raw) {
                prop_assert!(DEFAULT_TIERS.contains(&t.as_str()));
                prop_assert_eq!(t.as_str(), raw.as_str());
            }
            if let Ok(r) = f.region(&raw) {
                prop_assert!(f.regions().any(|x| x == &r));
                prop_assert_eq!(r.as_str(), raw.as_str());
            }
        }
    }
}
