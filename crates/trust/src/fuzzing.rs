//! The bodies of the `transcription_request` and `signed_grant` fuzz targets
//! (`fuzz/`), shared with the crate's own tests so that CI runs them on stable
//! Rust too.
//!
//! * [`transcription_request`]: bytes as a transcryptor reads a request body
//!   (`TranscryptRequest` JSON: domains, requester, an optional grant, and
//!   ciphertexts with their keys, whose points libpep decodes), then the
//!   transcryptor's own decision and work ([`Transcryptor::handle`]).
//! * [`signed_grant`]: a member's consent grant as a transcryptor checks it
//!   (JSON, the hex signature, the node's key, [`Policy::check`]).

use crate::link::pep_rng;
use crate::policy::{check_domain, Grant, Policy, SignedGrant, COOP_PREFIX, MEMBER_REQUEST};
use crate::pseudonym::{setup, Federation, Transcryptor, ORIGIN};
use crate::wire::{Item, TranscryptRequest};
use crate::TrustError;
use me2b_crypto::{Keyring, MasterKey};
use me2b_domain::Random;
use std::sync::OnceLock;

/// The time every grant is checked at (Unix ms).
pub const NOW_MS: i64 = 1_790_000_000_000;

/// Not random: a fixed byte stream, for the fixture and the transcryptor's rng.
#[derive(Debug)]
struct FixedBytes(u8);

impl Random for FixedBytes {
    fn fill(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0.wrapping_add(i as u8);
        }
    }
}

/// The fixed world: a one-transcryptor federation under the standard policy,
/// with grants signed by the node's key: a member's sharing consent between
/// two co-ops, and a member's own request to move out of the origin.
#[derive(Debug)]
pub struct Fixture {
    pub federation: Federation,
    pub transcryptor: Transcryptor,
    pub policy: Policy,
    /// The node's keys, which sign grants.
    pub keys: Keyring,
    /// A valid grant from `coop:a` to `coop:b`, signed.
    pub grant: SignedGrant,
    /// A valid member-request grant from the origin to `coop:a`, signed.
    pub member_grant: SignedGrant,
}

/// The shared fixture (built once).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys = Keyring::derive(&MasterKey::from_bytes([0x6a; 32]));
        let policy = Policy::standard(Some(keys.verifying_key()));
        let mut rng = pep_rng(&FixedBytes(3));
        let (federation, mut secrets) = setup(1, &mut rng);
        let secrets = secrets.remove(0);
        let transcryptor = Transcryptor::with_policy(secrets, policy.clone());
        let grant = Grant {
            v: 1,
            consent: "share_1".into(),
            purpose: "cross-sell".into(),
            from: "coop:a".into(),
            to: "coop:b".into(),
            expires_at_ms: NOW_MS + 86_400_000,
        }
        .sign(&keys);
        let member_grant = Grant {
            v: 1,
            consent: MEMBER_REQUEST.into(),
            purpose: "card".into(),
            from: ORIGIN.into(),
            to: "coop:a".into(),
            expires_at_ms: NOW_MS + 60_000,
        }
        .sign(&keys);
        Fixture {
            federation,
            transcryptor,
            policy,
            keys,
            grant,
            member_grant,
        }
    })
}

/// A valid request for the fixture (a seed for the fuzzer): `n` enrolment
/// pseudonyms from the origin to `coop:a` with the member's request, or
/// (`cross_coop`) from `coop:a` to `coop:b` with the member's sharing grant.
pub fn sample_request(n: usize, cross_coop: bool) -> Vec<u8> {
    let f = fixture();
    let mut rng = pep_rng(&FixedBytes(9));
    let items = (0..n)
        .map(|_| Item {
            ct: f.federation.enrol(&mut rng),
            key: f.federation.origin_key(),
        })
        .collect();
    let (from, to, grant) = if cross_coop {
        ("coop:a", "coop:b", f.grant.clone())
    } else {
        (ORIGIN, "coop:a", f.member_grant.clone())
    };
    serde_json::to_vec(&TranscryptRequest {
        requester: "trust".into(),
        from: from.into(),
        to: to.into(),
        grant: Some(grant),
        items,
    })
    .unwrap_or_default()
}

/// What a fuzz body observed.
#[derive(Debug)]
pub enum Outcome {
    /// Parsed and served (a request) or verified (a grant).
    Accepted,
    /// Not JSON of the right shape.
    Malformed,
    /// Parsed, then refused with this error.
    Refused(TrustError),
    /// A property that must hold for every input did not: a bug.
    InvariantBroken(&'static str),
}

/// The transcription request body. Must never panic.
pub fn transcription_request(data: &[u8]) -> Outcome {
    let Ok(req) = serde_json::from_slice::<TranscryptRequest>(data) else {
        return Outcome::Malformed;
    };
    // One spelling per value: what parsed writes out and parses back the same.
    let Ok(json) = serde_json::to_vec(&req) else {
        return Outcome::InvariantBroken("a parsed request does not serialise");
    };
    match serde_json::from_slice::<TranscryptRequest>(&json) {
        Ok(again) if serde_json::to_vec(&again).ok().as_deref() == Some(json.as_slice()) => {}
        _ => return Outcome::InvariantBroken("a parsed request does not round-trip"),
    }
    let _ = req.describe();
    // What the transcryptor's HTTP front checks before logging the request.
    if let Err(e) = check_domain(&req.from).and_then(|()| check_domain(&req.to)) {
        return Outcome::Refused(e);
    }
    let f = fixture();
    let mut rng = pep_rng(&FixedBytes(11));
    match f.transcryptor.handle(&req, NOW_MS, &mut rng) {
        Ok(items) if items.len() != req.items.len() => {
            Outcome::InvariantBroken("a request was answered with a different number of items")
        }
        Ok(_) => match may_pass(f, &req.from, &req.to, req.grant.as_ref()) {
            Ok(()) => Outcome::Accepted,
            Err(what) => Outcome::InvariantBroken(what),
        },
        Err(e) => Outcome::Refused(e),
    }
}

/// The signed grant body. The first byte picks what the rest is: `0` a
/// signed grant as sent; `1` a grant the node's key really signs; otherwise
/// edits of the fixture's valid grant. Must never panic.
pub fn signed_grant(data: &[u8]) -> Outcome {
    let f = fixture();
    let key = f.keys.verifying_key();
    let Some((&mode, rest)) = data.split_first() else {
        return Outcome::Malformed;
    };
    match mode % 3 {
        0 => {
            let Ok(g) = serde_json::from_slice::<SignedGrant>(rest) else {
                return Outcome::Malformed;
            };
            decide(f, &g)
        }
        1 => {
            let Ok(grant) = serde_json::from_slice::<Grant>(rest) else {
                return Outcome::Malformed;
            };
            let v = grant.v;
            let signed = grant.sign(&f.keys);
            // What the node signed verifies, after a trip through JSON too.
            let again = serde_json::to_vec(&signed)
                .ok()
                .and_then(|j| serde_json::from_slice::<SignedGrant>(&j).ok());
            match (signed.verify(&key), again.map(|g| g.verify(&key)), v) {
                (Ok(()), Some(Ok(())), 1) => decide(f, &signed),
                (Err(TrustError::BadGrant), Some(Err(TrustError::BadGrant)), v) if v != 1 => {
                    Outcome::Refused(TrustError::BadGrant)
                }
                _ => Outcome::InvariantBroken("a grant the node signed did not verify as signed"),
            }
        }
        _ => {
            let Ok(original) = serde_json::to_vec(&f.grant) else {
                return Outcome::InvariantBroken("the fixture's grant does not serialise");
            };
            let mut bytes = original;
            for edit in rest.chunks(3) {
                let [hi, lo, value] = edit else { break };
                let n = bytes.len().max(1);
                let at = (usize::from(*hi) << 8 | usize::from(*lo)) % n;
                match value {
                    0 => bytes.truncate(at),
                    1..=3 => bytes.insert(at.min(bytes.len()), value.wrapping_mul(29)),
                    _ => {
                        if let Some(b) = bytes.get_mut(at) {
                            *b = *value;
                        }
                    }
                }
            }
            let Ok(g) = serde_json::from_slice::<SignedGrant>(&bytes) else {
                return Outcome::Malformed;
            };
            // Only the grant itself and the signature's bytes count (hex case
            // and JSON spacing may change).
            let same = g.grant == f.grant.grant
                && hex::decode(&g.signature).ok() == hex::decode(&f.grant.signature).ok();
            match (g.verify(&key), same) {
                (Ok(()), true) => decide(f, &g),
                (Err(_), true) => Outcome::InvariantBroken("the valid grant was refused"),
                (Ok(()), false) => Outcome::InvariantBroken("an edited grant verified"),
                (Err(e), false) => Outcome::Refused(e),
            }
        }
    }
}

/// The transcryptor's decision on the grant's own pair.
fn decide(f: &Fixture, g: &SignedGrant) -> Outcome {
    let (from, to) = (g.grant.from.as_str(), g.grant.to.as_str());
    match f.policy.check(from, to, Some(g), NOW_MS) {
        Ok(()) => match may_pass(f, from, to, Some(g)) {
            Ok(()) => Outcome::Accepted,
            Err(what) => Outcome::InvariantBroken(what),
        },
        Err(e) => Outcome::Refused(e),
    }
}

/// What must hold when the policy let `from` → `to` through with `grant`:
/// nothing goes into the origin or stays in its domain; out of the origin only
/// with the member's own request, and co-op → co-op only with a member's
/// sharing consent (a member request never opens a co-op pair), each signed by
/// the node's key for exactly this pair and in force; anything else only by a
/// standing rule, which needs no grant.
fn may_pass(
    f: &Fixture,
    from: &str,
    to: &str,
    grant: Option<&SignedGrant>,
) -> Result<(), &'static str> {
    if to == ORIGIN || from == to {
        return Err("a request into the origin, or within one domain, was served");
    }
    let granted = |member_request: bool| {
        grant.is_some_and(|g| {
            g.verify(&f.keys.verifying_key()).is_ok()
                && g.grant.from == from
                && g.grant.to == to
                && g.grant.expires_at_ms > NOW_MS
                && (g.grant.consent == MEMBER_REQUEST) == member_request
        })
    };
    let coops = from.starts_with(COOP_PREFIX) && to.starts_with(COOP_PREFIX);
    let fine = if from == ORIGIN {
        granted(true)
    } else if coops {
        granted(false)
    } else {
        f.policy.check(from, to, None, NOW_MS).is_ok()
    };
    if fine {
        Ok(())
    } else {
        Err("a pair was opened that the grant and the rules do not allow")
    }
}
