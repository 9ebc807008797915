//! Shared test world: a co-op issuer, a member's credential, a marketplace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_credentials::schema::COOP_MEMBERSHIP;
use me2b_credentials::*;
use me2b_crypto::SeededRandom;
use me2b_domain::OrgId;
use std::collections::BTreeSet;

pub const FEDERATION: &str = "Federation of Dutch Co-ops";
pub const NOW: Epoch = Epoch::new(2900);

pub struct World {
    pub rng: SeededRandom,
    pub issuer: IssuerKeyPair,
    pub keys: IssuerKeys,
    pub status: StatusLists,
    pub verifier: VerifierId,
}

pub fn world(seed: u64) -> World {
    let rng = SeededRandom::new(seed);
    let bbs = default_bbs();
    let key_id = IssuerKeyId::new("coop-a-2025-1").unwrap();
    let issuer = IssuerKeyPair::generate(bbs, key_id.clone(), &rng).unwrap();
    let mut keys = IssuerKeys::new();
    keys.insert(key_id.clone(), *issuer.public_key());
    let mut status = StatusLists::new();
    status.insert(key_id, StatusList::new());
    World {
        rng,
        issuer,
        keys,
        status,
        verifier: VerifierId::new("market.example").unwrap(),
    }
}

pub fn claims(rng: &SeededRandom, status_index: u32) -> Claims {
    Claims {
        issuer: OrgId::generate(rng),
        credential_type: ClaimText::new(COOP_MEMBERSHIP).unwrap(),
        federation: ClaimText::new(FEDERATION).unwrap(),
        member_since: MemberSince::new(2019).unwrap(),
        tier: ClaimText::new("standard").unwrap(),
        region: ClaimText::new("NL-NH").unwrap(),
        validity_epoch: NOW.plus(1),
        status_index: StatusIndex::new(status_index),
        interests: Interests::new(vec![
            ClaimText::new("cycling").unwrap(),
            ClaimText::new("organic food").unwrap(),
        ])
        .unwrap(),
    }
}

impl World {
    pub fn credential(&self, status_index: u32) -> Credential {
        self.issuer
            .issue(default_bbs(), claims(&self.rng, status_index))
            .unwrap()
    }

    pub fn challenge(&self) -> Challenge {
        Challenge::coop_membership(
            &self.rng,
            self.verifier.clone(),
            FEDERATION,
            [self.issuer.key_id().clone()],
        )
        .unwrap()
    }

    pub fn present(&self, credential: &Credential, challenge: &Challenge) -> Presentation {
        self.present_with(credential, challenge, &challenge.claims_to_disclose())
    }

    pub fn present_with(
        &self,
        credential: &Credential,
        challenge: &Challenge,
        disclose: &BTreeSet<ClaimName>,
    ) -> Presentation {
        credential
            .present(
                default_bbs(),
                self.issuer.public_key(),
                challenge.nonce(),
                challenge.verifier_id(),
                disclose,
                &self.rng,
            )
            .unwrap()
    }

    pub fn verify(
        &self,
        challenge: &Challenge,
        presentation: &Presentation,
    ) -> Result<VerifiedClaims, CredentialError> {
        verify_presentation(
            default_bbs(),
            challenge,
            presentation,
            &self.keys,
            &self.status,
            NOW,
        )
    }

    /// The presentation's JSON, edited, parsed back.
    pub fn edit(
        &self,
        presentation: &Presentation,
        f: impl FnOnce(&mut serde_json::Value),
    ) -> Result<Presentation, CredentialError> {
        let mut v: serde_json::Value = serde_json::from_str(&presentation.to_json()).unwrap();
        f(&mut v);
        Presentation::parse(serde_json::to_string(&v).unwrap().as_bytes())
    }
}
