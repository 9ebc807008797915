//! The body of the `presentation_parser` fuzz target (`fuzz/`), shared with the
//! crate's own tests so that CI runs it on stable Rust too.

use crate::bbs::{default_bbs, Bbs};
use crate::credential::{IssuerKeyId, IssuerKeyPair};
use crate::presentation::{Nonce, Presentation, VerifierId};
use crate::schema::{ClaimName, ClaimText, Claims, Epoch, Interests, MemberSince, StatusIndex};
use crate::status::StatusList;
use crate::verifier::{verify_presentation, Challenge, IssuerKeys, StatusLists};
use crate::CredentialError;
use me2b_domain::{OrgId, Random};
use std::sync::OnceLock;

/// The fixed world the fuzz target verifies against.
#[derive(Debug)]
pub struct Fixture {
    pub issuer: IssuerKeyPair,
    pub challenge: Challenge,
    pub keys: IssuerKeys,
    pub status: StatusLists,
    pub epoch: Epoch,
}

/// Not random: a fixed byte stream for the fixture's key and nonce only.
#[derive(Debug)]
struct FixedBytes(u8);

impl Random for FixedBytes {
    fn fill(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0.wrapping_add(i as u8);
        }
    }
}

fn build() -> Result<Fixture, CredentialError> {
    let bbs = default_bbs();
    let key_id = IssuerKeyId::new("fuzz-issuer-1")?;
    let issuer = IssuerKeyPair::generate(bbs, key_id.clone(), &FixedBytes(7))?;
    let challenge = Challenge::with_nonce(
        Nonce::from_bytes([0x42; 32]),
        VerifierId::new("fuzz.verifier")?,
    )
    .accept_key(key_id.clone())
    .require_value(ClaimName::CredentialType, crate::schema::COOP_MEMBERSHIP)?
    .require_value(ClaimName::Federation, "F")?
    .require_status_check();
    let mut keys = IssuerKeys::new();
    keys.insert(key_id.clone(), *issuer.public_key());
    let mut list = StatusList::new();
    list.revoke(StatusIndex::new(13))?;
    let mut status = StatusLists::new();
    status.insert(key_id, list);
    Ok(Fixture {
        issuer,
        challenge,
        keys,
        status,
        epoch: Epoch::new(2900),
    })
}

/// The shared fixture (built once).
pub fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| build().ok()).as_ref()
}

/// A valid presentation for the fixture's challenge (a seed for the fuzzer).
pub fn sample_presentation(rng: &dyn Random) -> Result<Vec<u8>, CredentialError> {
    let f = fixture().ok_or(CredentialError::BbsFailure("fixture"))?;
    let bbs = default_bbs();
    let claims = Claims {
        issuer: OrgId::generate(rng),
        credential_type: ClaimText::new(crate::schema::COOP_MEMBERSHIP)?,
        federation: ClaimText::new("F")?,
        member_since: MemberSince::new(2019)?,
        tier: ClaimText::new("standard")?,
        region: ClaimText::new("NL-NH")?,
        validity_epoch: Epoch::new(2901),
        status_index: StatusIndex::new(12),
        interests: Interests::new(vec![ClaimText::new("bikes")?])?,
    };
    let credential = f.issuer.issue(bbs, claims)?;
    let p = credential.present(
        bbs,
        f.issuer.public_key(),
        f.challenge.nonce(),
        f.challenge.verifier_id(),
        &f.challenge.claims_to_disclose(),
        rng,
    )?;
    Ok(p.to_json().into_bytes())
}

/// What the fuzz body observed.
#[derive(Debug)]
pub enum Outcome {
    /// Parsed and verified against the fixed challenge.
    Verified,
    /// Rejected with this error (by the parser or the verifier).
    Rejected(CredentialError),
    /// A property that must hold for every input did not: a bug.
    InvariantBroken(&'static str),
}

/// The fuzz body: parse arbitrary bytes; if they parse, check that the wire form
/// round-trips, then verify against the fixed challenge. Must never panic.
pub fn presentation_parser(data: &[u8]) -> Outcome {
    let presentation = match Presentation::parse(data) {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(e),
    };
    // The wire format has one spelling per value: re-encoding a parsed
    // presentation gives bytes that parse to the same presentation.
    match Presentation::parse(presentation.to_json().as_bytes()) {
        Ok(again) if again == presentation => {}
        _ => return Outcome::InvariantBroken("a parsed presentation does not round-trip"),
    }
    let Some(f) = fixture() else {
        return Outcome::InvariantBroken("the fixture could not be built");
    };
    let bbs: &dyn Bbs = default_bbs();
    match verify_presentation(
        bbs,
        &f.challenge,
        &presentation,
        &f.keys,
        &f.status,
        f.epoch,
    ) {
        Ok(verified) => {
            if verified.disclosed() != presentation.disclosed() {
                return Outcome::InvariantBroken("verified claims differ from the disclosed ones");
            }
            Outcome::Verified
        }
        Err(e) => Outcome::Rejected(e),
    }
}
