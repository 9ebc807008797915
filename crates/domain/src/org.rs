//! Organisations (co-ops and brands) and the roles their API keys carry.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What kind of organisation this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Coop,
    Brand,
    Verifier,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coop => "coop",
            Self::Brand => "brand",
            Self::Verifier => "verifier",
        }
    }
}

impl FromStr for OrgKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "coop" => Ok(Self::Coop),
            "brand" => Ok(Self::Brand),
            "verifier" => Ok(Self::Verifier),
            _ => Err(DomainError::invalid(
                "kind",
                "must be coop, brand or verifier",
            )),
        }
    }
}

/// A scoped role carried by an API key. An organisation's key can only do what its
/// roles allow; reaching member data additionally needs the member's consent.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manage the organisation's own keys and settings.
    Admin,
    /// Ask members for consent and read consented data.
    Consent,
    /// Publish offers.
    Offers,
    /// Issue and verify credentials.
    Credentials,
    /// Ask the data trust aggregate questions.
    Insights,
    /// A shop's desk: types a member's paper opt-out code, which withdraws
    /// their marketing consents. Reads nothing.
    #[serde(rename = "optout-desk")]
    OptoutDesk,
    /// Vouches that another organisation holds a certification of the
    /// federation's list (`POST /v1/org/attestations`). Only the operator
    /// names a certifier (`me2b org create --roles certifier`): no API
    /// gives a key this role, so a co-op cannot certify itself or others.
    Certifier,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Consent,
        Role::Offers,
        Role::Credentials,
        Role::Insights,
        Role::OptoutDesk,
        Role::Certifier,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Consent => "consent",
            Self::Offers => "offers",
            Self::Credentials => "credentials",
            Self::Insights => "insights",
            Self::OptoutDesk => "optout-desk",
            Self::Certifier => "certifier",
        }
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(DomainError::invalid(
            "role",
            "must be one of admin, consent, offers, credentials, insights, optout-desk, certifier",
        ))
    }
}

/// A non-empty, sorted, de-duplicated set of roles, stored as `a,b,c`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "Vec<Role>", into = "Vec<Role>")]
#[schema(value_type = Vec<Role>)]
pub struct Roles(Vec<Role>);

impl Roles {
    pub fn contains(&self, r: Role) -> bool {
        self.0.contains(&r)
    }
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
    pub fn from_stored(s: &str) -> Result<Self, DomainError> {
        s.split(',')
            .map(Role::from_str)
            .collect::<Result<Vec<_>, _>>()
            .and_then(Self::try_from)
    }
}

impl TryFrom<Vec<Role>> for Roles {
    type Error = DomainError;
    fn try_from(mut v: Vec<Role>) -> Result<Self, Self::Error> {
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(DomainError::invalid("roles", "must name at least one role"));
        }
        Ok(Self(v))
    }
}

impl From<Roles> for Vec<Role> {
    fn from(r: Roles) -> Self {
        r.0
    }
}

/// The certifications an organisation's credential may carry (credential
/// schema 2): the federation's list, so that a value means the same to every
/// issuer and no issuer can coin a value that tags one organisation.
pub const CERTIFICATIONS: [&str; 7] = [
    "fair-trade",
    "organic",
    "b-corp",
    "repair-certified",
    "halal",
    "kosher",
    "medical-device",
];

/// The claims an intent's audience may ask organisations to prove.
pub const AUDIENCE_CLAIMS: [&str; 2] = ["certification", "federation_member"];

/// Whether a certification, named as an intent's audience, would tell the
/// organisations that see the intent a special category (GDPR Art. 9) about
/// the member who asks: religion (halal, kosher) or health (medical devices).
/// Organisations may hold such a certification; an audience may not name it.
pub fn certification_is_sensitive(c: &str) -> bool {
    matches!(c, "halal" | "kosher" | "medical-device")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_dedupe() {
        let r = Roles::try_from(vec![Role::Offers, Role::Admin, Role::Offers]).unwrap();
        assert_eq!(r.to_stored(), "admin,offers");
        assert_eq!(Roles::from_stored("admin,offers").unwrap(), r);
        assert!(Roles::from_stored("root").is_err());
        assert_eq!(
            Roles::from_stored("certifier").unwrap().to_stored(),
            "certifier"
        );
        assert!(Roles::try_from(vec![]).is_err());
    }
}
