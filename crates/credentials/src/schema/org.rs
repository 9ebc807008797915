//! The organisation schema (version 2, [`ClaimName::ORG`]): the claims of an
//! organisation's attestation, encoded as the member schema's are
//! ([`ClaimSet`]).

use super::{ClaimName, ClaimSet, ClaimText, ClaimValue, Epoch};
use me2b_domain::OrgId;
use serde::{Deserialize, Serialize};

/// The credential type of an organisation's attestation (schema version 2).
pub const ORG_ATTESTATION: &str = "org-attestation";

/// The claims of an organisation's attestation (schema version 2): who
/// vouches, for which organisation, until when, and what. Every field is a
/// checked type; nothing describes a person.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgClaims {
    /// The organisation that vouches (the `credentials` role).
    pub issuer: OrgId,
    pub federation: ClaimText,
    /// The organisation it is about: a presentation discloses it, so a
    /// credential lent to another organisation proves nothing for it.
    pub subject: OrgId,
    pub validity_epoch: Epoch,
    /// A certification of the federation's list.
    pub certification: Option<ClaimText>,
    pub federation_member: bool,
}

impl OrgClaims {
    /// The canonical value of one claim (empty for a claim of schema 1).
    pub fn value(&self, name: ClaimName) -> ClaimValue {
        ClaimValue(match name {
            ClaimName::Issuer => self.issuer.to_string(),
            ClaimName::CredentialType => ORG_ATTESTATION.to_owned(),
            ClaimName::Federation => self.federation.0.clone(),
            ClaimName::Subject => self.subject.to_string(),
            ClaimName::ValidityEpoch => self.validity_epoch.0.to_string(),
            ClaimName::Certification => self
                .certification
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            ClaimName::FederationMember => self.federation_member.to_string(),
            _ => String::new(),
        })
    }
}

impl ClaimSet for OrgClaims {
    fn value(&self, name: ClaimName) -> ClaimValue {
        OrgClaims::value(self, name)
    }
}
