//! The access rule of a transcryptor: which (from-domain, to-domain) pairs it
//! transcrypts, and the consent grants that open a co-op → co-op pair.
//!
//! Standing pairs are configured per transcryptor (patterns like `coop:*`).
//! A pair from one co-op's domain into another's is never standing: it needs a
//! [`SignedGrant`], signed by the node when a member consented to that sharing,
//! naming exactly that pair, a purpose and an expiry. Nothing is ever
//! transcrypted into [`ORIGIN`].
//!
//! Both refusals hold twice over. [`Policy::check`] decides a co-op → co-op
//! pair (grant or nothing) and a pair into the origin (never) before it reads
//! the standing rules, whatever they say. And the configuration
//! ([`Policy::allow`], [`Policy::from_file`]) refuses a rule that could match
//! a co-op domain on both sides or the origin as its target, and any pattern
//! that is not a domain or a domain prefix ending in one `*`.

use crate::pseudonym::ORIGIN;
use crate::TrustError;
use me2b_crypto::NodeVerifyingKey;
use serde::{Deserialize, Serialize};

/// The prefix of every co-op's pseudonymisation domain.
pub const COOP_PREFIX: &str = "coop:";
/// The prefix of the trust's own domains.
const TRUST_PREFIX: &str = "trust:";
/// The trust's loyalty domain: the ledger is keyed by pseudonyms in it.
pub const LOYALTY: &str = "trust:loyalty";
/// A grant's `consent` when it attests a member's own request, made in their
/// session, for their pseudonym to leave the origin domain (a card, a
/// forward, their own view of the trust, an erasure).
pub const MEMBER_REQUEST: &str = "member-request";

/// Longest domain name accepted.
const MAX_DOMAIN: usize = 80;

fn domain_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:.".contains(&b)
}

fn matches(pattern: &str, domain: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => domain.starts_with(prefix) && domain.len() > prefix.len(),
        None => pattern == domain,
    }
}

/// Checks a domain name: `coop:<id>` or `trust:<name>` (a non-empty id or
/// name), lowercase ASCII.
pub fn check_domain(d: &str) -> Result<(), TrustError> {
    let body = d
        .strip_prefix(COOP_PREFIX)
        .or_else(|| d.strip_prefix(TRUST_PREFIX));
    let ok =
        d.len() <= MAX_DOMAIN && body.is_some_and(|b| !b.is_empty()) && d.bytes().all(domain_byte);
    if ok {
        Ok(())
    } else {
        Err(TrustError::Invalid(
            "a domain is `coop:<id>` or `trust:<name>` in lowercase ASCII",
        ))
    }
}

/// A standing-rule pattern: a domain, or a prefix of domain characters ending
/// in one `*` (which matches any non-empty rest). Nothing else: no `*`
/// elsewhere, no uppercase, spaces or control characters.
fn check_pattern(p: &str) -> Result<(), TrustError> {
    let ok = match p.strip_suffix('*') {
        Some(prefix) => prefix.len() < MAX_DOMAIN && prefix.bytes().all(domain_byte),
        None => check_domain(p).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(TrustError::Invalid(
            "a rule's pattern is a domain, or a domain prefix ending in one `*`",
        ))
    }
}

/// Whether a (checked) pattern could match some co-op domain.
fn could_match_coop(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => COOP_PREFIX.starts_with(prefix) || prefix.starts_with(COOP_PREFIX),
        None => p.starts_with(COOP_PREFIX),
    }
}

/// Whether a (checked) pattern could match the origin domain (counting a
/// prefix that is the whole origin name, to stay on the safe side).
fn could_match_origin(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => ORIGIN.starts_with(prefix),
        None => p == ORIGIN,
    }
}

/// A transcryptor's access rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    standing: Vec<(String, String)>,
    grant_key: Option<NodeVerifyingKey>,
}

/// The stored form of a policy (TOML or JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Standing (from, to) pairs; `*` at the end of a pattern matches any suffix.
    #[serde(default)]
    pub allow: Vec<[String; 2]>,
    /// The node's Ed25519 public key (hex) that signs consent grants.
    #[serde(default)]
    pub grant_key: Option<String>,
}

impl Policy {
    pub fn deny_all() -> Self {
        Self {
            standing: Vec::new(),
            grant_key: None,
        }
    }

    /// The pairs the trust needs to work: issuing each co-op's pseudonym
    /// (origin → co-op), storing receipts (co-op → research, origin →
    /// research) and the loyalty ledger (co-op → loyalty, origin → loyalty).
    /// Co-op → co-op only with a grant signed by `grant_key`.
    pub fn standard(grant_key: Option<NodeVerifyingKey>) -> Self {
        let mut p = Self {
            standing: Vec::new(),
            grant_key,
        };
        for (from, to) in [
            (ORIGIN, "coop:*"),
            (ORIGIN, crate::pseudonym::RESEARCH),
            (ORIGIN, LOYALTY),
            ("coop:*", crate::pseudonym::RESEARCH),
            ("coop:*", LOYALTY),
        ] {
            p.standing.push((from.to_owned(), to.to_owned()));
        }
        p
    }

    pub fn from_file(f: &PolicyFile) -> Result<Self, TrustError> {
        let grant_key = match &f.grant_key {
            Some(h) => {
                let bytes = hex::decode(h)
                    .map_err(|_| TrustError::Invalid("grant_key is 64 hex characters"))?;
                Some(
                    NodeVerifyingKey::from_bytes(&bytes)
                        .map_err(|_| TrustError::Invalid("grant_key is not an Ed25519 key"))?,
                )
            }
            None => None,
        };
        let mut p = Self {
            standing: Vec::new(),
            grant_key,
        };
        for [from, to] in &f.allow {
            p.allow(from, to)?;
        }
        Ok(p)
    }

    pub fn to_file(&self) -> PolicyFile {
        PolicyFile {
            allow: self
                .standing
                .iter()
                .map(|(a, b)| [a.clone(), b.clone()])
                .collect(),
            grant_key: self.grant_key.map(|k| hex::encode(k.to_bytes())),
        }
    }

    /// Adds a standing pair. Refused: a pattern that is not a domain or a
    /// domain prefix ending in `*`; a target that could match the origin
    /// domain; and a rule that could match a co-op domain on both sides
    /// (co-op → co-op needs a member's consent, through a grant; a wildcard
    /// such as `*` → `coop:*` would stand in for it).
    pub fn allow(&mut self, from: &str, to: &str) -> Result<(), TrustError> {
        check_pattern(from)?;
        check_pattern(to)?;
        if could_match_origin(to) {
            return Err(TrustError::Invalid(
                "nothing may be transcrypted into the origin domain",
            ));
        }
        if could_match_coop(from) && could_match_coop(to) {
            return Err(TrustError::Invalid(
                "co-op to co-op transcription needs a member's consent grant, never a standing rule (no rule may match a co-op domain on both sides)",
            ));
        }
        self.standing.push((from.to_owned(), to.to_owned()));
        Ok(())
    }

    /// Decides one request. `now_ms` is the caller's clock (Unix ms).
    ///
    /// Into the origin: never. Co-op → co-op: only with a valid grant for
    /// exactly that pair. Both are decided before the standing rules are
    /// read, so no rule can open them. Everything else: a standing rule.
    pub fn check(
        &self,
        from: &str,
        to: &str,
        grant: Option<&SignedGrant>,
        now_ms: i64,
    ) -> Result<(), TrustError> {
        let refused = || TrustError::TranscryptionRefused {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        check_domain(from)?;
        check_domain(to)?;
        if to == ORIGIN || from == to {
            return Err(refused());
        }
        // Out of the origin: only for a member's own request, attested by a
        // grant for exactly this pair (and then a standing rule as well).
        if from == ORIGIN {
            let (Some(g), Some(key)) = (grant, self.grant_key.as_ref()) else {
                return Err(refused());
            };
            if g.grant.consent != MEMBER_REQUEST || g.grant.from != from || g.grant.to != to {
                return Err(refused());
            }
            if g.grant.expires_at_ms <= now_ms {
                return Err(TrustError::GrantExpired);
            }
            g.verify(key)?;
        }
        let cross_coop = from.starts_with(COOP_PREFIX) && to.starts_with(COOP_PREFIX);
        if !cross_coop {
            return if self
                .standing
                .iter()
                .any(|(f, t)| matches(f, from) && matches(t, to))
            {
                Ok(())
            } else {
                Err(refused())
            };
        }
        let (Some(g), Some(key)) = (grant, self.grant_key.as_ref()) else {
            return Err(refused());
        };
        if g.grant.consent == MEMBER_REQUEST || g.grant.from != from || g.grant.to != to {
            return Err(refused());
        }
        if g.grant.expires_at_ms <= now_ms {
            return Err(TrustError::GrantExpired);
        }
        g.verify(key)
    }
}

/// A member's consent to share one co-op's receipts with another, as the node
/// attests it to the transcryptors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Format version.
    pub v: u8,
    /// The sharing consent's id.
    pub consent: String,
    pub purpose: String,
    pub from: String,
    pub to: String,
    pub expires_at_ms: i64,
}

/// A grant and the node's Ed25519 signature over it (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedGrant {
    pub grant: Grant,
    pub signature: String,
}

impl Grant {
    /// The bytes signed: a domain tag and the grant's JSON.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut m = b"me2b/trust-grant/v1\0".to_vec();
        m.extend(serde_json::to_vec(self).unwrap_or_default());
        m
    }

    /// Signs with the node's key.
    pub fn sign(self, keys: &me2b_crypto::Keyring) -> SignedGrant {
        let signature = hex::encode(keys.sign(&self.signing_bytes()));
        SignedGrant {
            grant: self,
            signature,
        }
    }
}

impl SignedGrant {
    pub fn verify(&self, key: &NodeVerifyingKey) -> Result<(), TrustError> {
        if self.grant.v != 1 {
            return Err(TrustError::BadGrant);
        }
        let sig = hex::decode(&self.signature).map_err(|_| TrustError::BadGrant)?;
        key.verify(&self.grant.signing_bytes(), &sig)
            .map_err(|_| TrustError::BadGrant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_crypto::{Keyring, MasterKey};

    fn keys(b: u8) -> Keyring {
        Keyring::derive(&MasterKey::from_bytes([b; 32]))
    }

    fn grant(from: &str, to: &str, exp: i64) -> Grant {
        Grant {
            v: 1,
            consent: "share_1".into(),
            purpose: "cross-sell".into(),
            from: from.into(),
            to: to.into(),
            expires_at_ms: exp,
        }
    }

    fn member_request(to: &str, exp: i64, by: &Keyring) -> SignedGrant {
        Grant {
            v: 1,
            consent: MEMBER_REQUEST.into(),
            purpose: "card".into(),
            from: ORIGIN.into(),
            to: to.into(),
            expires_at_ms: exp,
        }
        .sign(by)
    }

    /// Out of the origin only for a member's own request, attested by the
    /// node for exactly that pair, unexpired; a sharing consent's grant does
    /// not count, and a member's request never opens co-op to co-op.
    #[test]
    fn out_of_the_origin_only_for_a_members_request() {
        let node = keys(1);
        let p = Policy::standard(Some(node.verifying_key()));
        assert!(p.check(ORIGIN, "coop:a1", None, 0).is_err(), "no grant");
        let asked = member_request("coop:a1", 1000, &node);
        assert!(p.check(ORIGIN, "coop:a1", Some(&asked), 999).is_ok());
        assert_eq!(
            p.check(ORIGIN, "coop:a1", Some(&asked), 1000),
            Err(TrustError::GrantExpired)
        );
        assert!(
            p.check(ORIGIN, "coop:b2", Some(&asked), 0).is_err(),
            "another pair"
        );
        assert!(p
            .check(ORIGIN, crate::pseudonym::RESEARCH, Some(&asked), 0)
            .is_err());
        let forged = member_request("coop:a1", 1000, &keys(2));
        assert_eq!(
            p.check(ORIGIN, "coop:a1", Some(&forged), 0),
            Err(TrustError::BadGrant)
        );
        let sharing = grant(ORIGIN, "coop:a1", 1000).sign(&node);
        assert!(
            p.check(ORIGIN, "coop:a1", Some(&sharing), 0).is_err(),
            "a consent grant is not a member's request"
        );
        let mut as_sharing = member_request("coop:b", 1000, &node);
        as_sharing.grant.from = "coop:a".into();
        assert!(p.check("coop:a", "coop:b", Some(&as_sharing), 0).is_err());
        let asked_ab = Grant {
            v: 1,
            consent: MEMBER_REQUEST.into(),
            purpose: "card".into(),
            from: "coop:a".into(),
            to: "coop:b".into(),
            expires_at_ms: 1000,
        }
        .sign(&node);
        assert!(
            p.check("coop:a", "coop:b", Some(&asked_ab), 0).is_err(),
            "a member's request never stands in for a sharing consent"
        );
        assert!(Policy::standard(None)
            .check(ORIGIN, "coop:a1", Some(&asked), 0)
            .is_err());
    }

    #[test]
    fn standing_pairs_and_never_into_origin() {
        let node = keys(1);
        let p = Policy::standard(Some(node.verifying_key()));
        let asked = member_request("coop:a1", i64::MAX, &node);
        assert!(p.check(ORIGIN, "coop:a1", Some(&asked), 0).is_ok());
        assert!(p
            .check("coop:a1", crate::pseudonym::RESEARCH, None, 0)
            .is_ok());
        assert!(p.check("coop:a1", LOYALTY, None, 0).is_ok());
        assert!(p.check("coop:a1", ORIGIN, None, 0).is_err());
        assert!(p
            .check(crate::pseudonym::RESEARCH, "coop:a1", None, 0)
            .is_err());
        assert!(p.check("coop:a1", "coop:b2", None, 0).is_err());
        assert!(p.check("coop:", "coop:b2", None, 0).is_err());
        assert!(p.check("COOP:A", "coop:b2", None, 0).is_err());
        let mut q = Policy::deny_all();
        assert!(q.allow("coop:*", ORIGIN).is_err());
        assert!(q.allow("coop:*", "trust:*").is_err());
        assert!(q.allow("coop:a", "coop:*").is_err());
        assert!(q.check(ORIGIN, "coop:a", None, 0).is_err());
        assert!(q
            .check(
                ORIGIN,
                "coop:a",
                Some(&member_request("coop:a", i64::MAX, &node)),
                0
            )
            .is_err());
    }

    #[test]
    fn a_grant_opens_exactly_its_pair_until_it_expires() {
        let node = keys(1);
        let p = Policy::standard(Some(node.verifying_key()));
        let g = grant("coop:a", "coop:b", 1000).sign(&node);
        assert!(p.check("coop:a", "coop:b", Some(&g), 999).is_ok());
        assert_eq!(
            p.check("coop:a", "coop:b", Some(&g), 1000),
            Err(TrustError::GrantExpired)
        );
        assert!(p.check("coop:a", "coop:c", Some(&g), 0).is_err());
        assert!(p.check("coop:b", "coop:a", Some(&g), 0).is_err());
        // Signed by another key, or tampered with: refused.
        let forged = grant("coop:a", "coop:b", 1000).sign(&keys(2));
        assert_eq!(
            p.check("coop:a", "coop:b", Some(&forged), 0),
            Err(TrustError::BadGrant)
        );
        let mut tampered = g.clone();
        tampered.grant.expires_at_ms = i64::MAX;
        assert_eq!(
            p.check("coop:a", "coop:b", Some(&tampered), 0),
            Err(TrustError::BadGrant)
        );
        // A grant never opens a pair into the origin or out of research.
        let into_origin = grant("coop:a", ORIGIN, 1000).sign(&node);
        assert!(p.check("coop:a", ORIGIN, Some(&into_origin), 0).is_err());
        // Without a configured grant key, no grant is honoured.
        let none = Policy::standard(None);
        assert!(none.check("coop:a", "coop:b", Some(&g), 0).is_err());
    }

    proptest::proptest! {
        /// Arbitrary domain names never panic the rule, and nothing is ever
        /// allowed into the origin domain, with or without a grant.
        #[test]
        fn arbitrary_domains_never_reach_the_origin(from in "\\PC{0,90}", to in "\\PC{0,90}") {
            let node = keys(1);
            let p = Policy::standard(Some(node.verifying_key()));
            let g = grant(&from, ORIGIN, i64::MAX).sign(&node);
            proptest::prop_assert!(p.check(&from, ORIGIN, Some(&g), 0).is_err());
            if p.check(&from, &to, None, 0).is_ok() {
                proptest::prop_assert!(check_domain(&from).is_ok() && check_domain(&to).is_ok());
                proptest::prop_assert!(to != ORIGIN && from != to);
                proptest::prop_assert!(!(from.starts_with(COOP_PREFIX) && to.starts_with(COOP_PREFIX)));
            }
        }
    }

    /// The finding of issue 12: a standing rule with wildcard patterns let a
    /// co-op → co-op transcription through without a consent grant. An
    /// operator (or an attacker who can edit a transcryptor file) tries every
    /// rule that could open such a pair, or a pair into the origin.
    #[test]
    fn wildcard_rules_never_open_coop_to_coop_or_the_origin() {
        let attacks: &[(&str, &str)] = &[
            ("*", "coop:*"),
            ("coop:*", "*"),
            ("*", "*"),
            ("c*", "co*"),
            ("coop*", "coop*"),
            ("coop:*", "coop*"),
            ("coop:a*", "coop:b*"),
            ("*", "coop:b"),
            ("coop:a", "c*"),
            ("coop:*", "t*"),
            ("coop:*", "trust:o*"),
            ("coop:*", "trust:origin*"),
            ("*", "trust:*"),
            ("COOP:*", "coop:*"),
            ("coop:*", "COOP:*"),
            (" *", "coop:*"),
            ("*\n", "coop:*"),
            ("**", "coop:**"),
            ("coop:*b", "*"),
            ("*coop:*", "coop:*"),
            ("co\u{0}op:*", "coop:*"),
            ("coop:\u{202e}*", "coop:*"),
        ];
        for (from, to) in attacks {
            let mut file = Policy::standard(None).to_file();
            file.allow.push([(*from).to_owned(), (*to).to_owned()]);
            assert!(
                Policy::from_file(&file).is_err(),
                "the configuration accepted the rule {from:?} -> {to:?}"
            );
            let mut p = Policy::standard(None);
            let _ = p.allow(from, to);
            for (a, b) in [
                ("coop:a", "coop:b"),
                ("coop:b", "coop:a"),
                ("coop:a", ORIGIN),
                ("trust:research", ORIGIN),
            ] {
                assert!(
                    p.check(a, b, None, 0).is_err(),
                    "{a} -> {b} went through without a grant after the rule {from:?} -> {to:?}"
                );
            }
        }
    }

    /// Whatever the standing rules hold (even rules the configuration would
    /// refuse), co-op → co-op needs a grant and nothing reaches the origin:
    /// `check` decides those before it reads the rules.
    #[test]
    fn coop_to_coop_and_the_origin_are_decided_before_the_rules() {
        let node = keys(1);
        let mut p = Policy::standard(Some(node.verifying_key()));
        p.standing.push(("*".to_owned(), "*".to_owned()));
        p.standing.push(("coop:a".to_owned(), "coop:b".to_owned()));
        p.standing
            .push(("trust:research".to_owned(), ORIGIN.to_owned()));
        assert!(p.check("coop:a", "coop:b", None, 0).is_err());
        assert!(p.check("coop:a", ORIGIN, None, 0).is_err());
        assert!(p.check("trust:research", ORIGIN, None, 0).is_err());
        // The grant still opens its own pair.
        let g = grant("coop:a", "coop:b", 1000).sign(&node);
        assert!(p.check("coop:a", "coop:b", Some(&g), 0).is_ok());
        assert!(p.check("coop:b", "coop:a", Some(&g), 0).is_err());
    }

    /// Patterns an attacker would write: arbitrary text, domain-like text
    /// with `*` anywhere, and prefixes of the co-op and trust domains.
    fn pattern() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "\\PC{0,24}",
            "[a-z:*. -]{0,14}",
            "(coop:|trust:|c|co|coo|coop|t|tr|trust|trust:o|trust:origin|)[a-z0-9:*.]{0,6}\\*?",
            Just("*".to_owned()),
        ]
    }

    proptest::proptest! {
        /// Whatever rules the configuration accepts from arbitrary patterns,
        /// no co-op → co-op pair opens without a grant, nothing reaches the
        /// origin, and what was accepted round-trips through the file.
        #[test]
        fn arbitrary_patterns_never_open_coop_to_coop_or_the_origin(
            rules in proptest::collection::vec((pattern(), pattern()), 0..6),
            a in "[a-z0-9]{1,8}",
            b in "[a-z0-9]{1,8}",
            other in "(coop:|trust:)[a-z0-9]{1,8}",
        ) {
            let mut p = Policy::standard(None);
            for (from, to) in &rules {
                if p.allow(from, to).is_ok() {
                    proptest::prop_assert!(!(could_match_coop(from) && could_match_coop(to)));
                    proptest::prop_assert!(!matches(to, ORIGIN));
                }
            }
            let (ca, cb) = (format!("coop:{a}"), format!("coop:{b}"));
            proptest::prop_assert!(p.check(&ca, &cb, None, 0).is_err());
            proptest::prop_assert!(p.check(&ca, ORIGIN, None, 0).is_err());
            proptest::prop_assert!(p.check(&other, ORIGIN, None, 0).is_err());
            proptest::prop_assert_eq!(Policy::from_file(&p.to_file()).unwrap(), p);
        }

        /// Even rules the configuration would refuse, placed in the policy
        /// directly: `check` refuses co-op → co-op without a grant and
        /// anything into the origin before it reads them.
        #[test]
        fn no_standing_rule_opens_coop_to_coop_or_the_origin(
            rules in proptest::collection::vec((pattern(), pattern()), 0..6),
            from in "(coop:|trust:)[a-z0-9]{1,8}",
            a in "[a-z0-9]{1,8}",
            b in "[a-z0-9]{1,8}",
        ) {
            let mut p = Policy::standard(None);
            p.standing.extend(rules);
            p.standing.push(("*".to_owned(), "*".to_owned()));
            let (ca, cb) = (format!("coop:{a}"), format!("coop:{b}"));
            proptest::prop_assert!(p.check(&from, ORIGIN, None, 0).is_err());
            proptest::prop_assert!(p.check(&ca, &cb, None, 0).is_err());
        }
    }

    #[test]
    fn policy_files_round_trip() {
        let node = keys(1);
        let p = Policy::standard(Some(node.verifying_key()));
        let f = p.to_file();
        assert_eq!(Policy::from_file(&f).unwrap(), p);
        let bad = PolicyFile {
            allow: vec![["coop:*".into(), ORIGIN.into()]],
            grant_key: None,
        };
        assert!(Policy::from_file(&bad).is_err());
    }
}
