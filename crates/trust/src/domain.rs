//! Typed pseudonymisation domains and the parties that ask a transcryptor.
//!
//! On the wire (requests to a transcryptor, standing-rule patterns) a domain
//! is its name: `trust:origin`, `trust:research`, `trust:loyalty` or
//! `coop:<organisation id>`. Inside the trust it is a [`Domain`].

use crate::policy::{COOP_PREFIX, LOYALTY};
use crate::pseudonym::{ORIGIN, RESEARCH};
use crate::TrustError;
use me2b_domain::OrgId;
use std::fmt;
use std::str::FromStr;

/// A pseudonymisation domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Where enrolment pseudonyms live; no one can decrypt it and nothing is
    /// ever moved into it.
    Origin,
    /// The trust's pooled receipts.
    Research,
    /// The cross-co-op loyalty ledger.
    Loyalty,
    /// One co-op's pseudonyms: only that co-op holds its keys.
    Coop(OrgId),
}

impl Domain {
    /// The co-op whose domain this is.
    pub fn coop(&self) -> Option<OrgId> {
        match self {
            Domain::Coop(o) => Some(*o),
            _ => None,
        }
    }

    /// The trust's own domains whose keys the node holds (never the origin,
    /// never a co-op's).
    pub fn is_trusts_own(&self) -> bool {
        matches!(self, Domain::Research | Domain::Loyalty)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Origin => f.write_str(ORIGIN),
            Domain::Research => f.write_str(RESEARCH),
            Domain::Loyalty => f.write_str(LOYALTY),
            Domain::Coop(o) => write!(f, "{COOP_PREFIX}{o}"),
        }
    }
}

impl FromStr for Domain {
    type Err = TrustError;
    fn from_str(s: &str) -> Result<Self, TrustError> {
        match s {
            ORIGIN => Ok(Domain::Origin),
            RESEARCH => Ok(Domain::Research),
            LOYALTY => Ok(Domain::Loyalty),
            _ => s
                .strip_prefix(COOP_PREFIX)
                .and_then(|o| o.parse().ok())
                .map(Domain::Coop)
                .ok_or(TrustError::Invalid(
                    "a domain is trust:origin, trust:research, trust:loyalty or coop:<organisation id>",
                )),
        }
    }
}

/// Who asks a transcryptor: the trust (the node), or one co-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Requester {
    Trust,
    Coop(OrgId),
}

impl Requester {
    /// Whether this party may have a key share for `domain`: the trust for
    /// its own domains, a co-op for its own domain, no one for the origin.
    pub fn may_hold_keys_of(&self, domain: Domain) -> bool {
        match (self, domain) {
            (Requester::Trust, d) => d.is_trusts_own(),
            (Requester::Coop(o), Domain::Coop(d)) => *o == d,
            (Requester::Coop(_), _) => false,
        }
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requester::Trust => f.write_str("trust"),
            Requester::Coop(o) => write!(f, "{o}"),
        }
    }
}

impl FromStr for Requester {
    type Err = TrustError;
    fn from_str(s: &str) -> Result<Self, TrustError> {
        if s == "trust" {
            return Ok(Requester::Trust);
        }
        s.parse()
            .map(Requester::Coop)
            .map_err(|_| TrustError::Invalid("a requester is `trust` or an organisation id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_requesters_round_trip_and_keys_go_to_their_owners_only() {
        let a: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        let b: OrgId = "6f1c1e2a-0000-4000-8000-000000000002".parse().unwrap();
        for d in [
            Domain::Origin,
            Domain::Research,
            Domain::Loyalty,
            Domain::Coop(a),
        ] {
            assert_eq!(d.to_string().parse::<Domain>().unwrap(), d);
        }
        assert!("coop:a".parse::<Domain>().is_err());
        assert!("trust:other".parse::<Domain>().is_err());
        for r in [Requester::Trust, Requester::Coop(a)] {
            assert_eq!(r.to_string().parse::<Requester>().unwrap(), r);
        }
        let trust = Requester::Trust;
        assert!(trust.may_hold_keys_of(Domain::Research));
        assert!(trust.may_hold_keys_of(Domain::Loyalty));
        assert!(
            !trust.may_hold_keys_of(Domain::Coop(a)),
            "the node never holds a co-op's keys"
        );
        assert!(!trust.may_hold_keys_of(Domain::Origin));
        let coop = Requester::Coop(a);
        assert!(coop.may_hold_keys_of(Domain::Coop(a)));
        assert!(!coop.may_hold_keys_of(Domain::Coop(b)));
        assert!(!coop.may_hold_keys_of(Domain::Research));
        assert!(!coop.may_hold_keys_of(Domain::Origin));
    }
}
