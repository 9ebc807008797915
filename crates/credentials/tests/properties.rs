//! Property tests: random claim sets and disclosure choices round-trip through
//! issuing, presenting, the wire format and verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_credentials::*;
use me2b_crypto::SeededRandom;
use me2b_domain::OrgId;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn issuer() -> &'static IssuerKeyPair {
    static I: OnceLock<IssuerKeyPair> = OnceLock::new();
    I.get_or_init(|| {
        IssuerKeyPair::generate(
            default_bbs(),
            IssuerKeyId::new("coop-prop-1").unwrap(),
            &SeededRandom::new(77),
        )
        .unwrap()
    })
}

fn text() -> impl Strategy<Value = ClaimText> {
    "\\PC{1,24}".prop_filter_map("not a valid claim text", |s| ClaimText::new(&s).ok())
}

prop_compose! {
    fn claims()(
        org in any::<[u8; 16]>(),
        credential_type in text(),
        federation in text(),
        year in 1800u16..=9999,
        tier in text(),
        region in text(),
        epoch in any::<u32>(),
        status in any::<u32>(),
        interests in proptest::collection::vec(text(), 0..=4),
    ) -> Claims {
        Claims {
            issuer: OrgId::from_slice(&org).unwrap(),
            credential_type,
            federation,
            member_since: MemberSince::new(year).unwrap(),
            tier,
            region,
            validity_epoch: Epoch::new(epoch),
            status_index: StatusIndex::new(status),
            interests: Interests::new(interests).unwrap(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn any_claims_and_any_disclosure_round_trip(
        claims in claims(),
        mask in any::<u16>(),
        seed in any::<u64>(),
        verifier in "[a-z0-9.:/_-]{1,40}",
    ) {
        let rng = SeededRandom::new(seed);
        let bbs = default_bbs();
        let issuer = issuer();
        let credential = issuer.issue(bbs, claims.clone()).unwrap();
        // The vault's JSON form round-trips.
        let stored: Credential = serde_json::from_str(&serde_json::to_string(&credential).unwrap()).unwrap();
        prop_assert_eq!(&stored, &credential);
        stored.verify(bbs, issuer.public_key()).unwrap();

        let disclose: BTreeSet<ClaimName> = ClaimName::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect();
        let mut challenge = Challenge::new(&rng, VerifierId::new(&verifier).unwrap())
            .accept_key(issuer.key_id().clone());
        // Require, with their values, the claims the member discloses anyway.
        for name in &disclose {
            challenge = challenge.require_value(*name, claims.value(*name).as_str()).unwrap();
        }
        let mut disclose = disclose;
        disclose.insert(ClaimName::ValidityEpoch);
        let p = credential
            .present(bbs, issuer.public_key(), challenge.nonce(), challenge.verifier_id(), &disclose, &rng)
            .unwrap();
        let parsed = Presentation::parse(p.to_json().as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &p);
        let mut keys = IssuerKeys::new();
        keys.insert(issuer.key_id().clone(), *issuer.public_key());
        let verified = verify_presentation(
            bbs, &challenge, &parsed, &keys, &StatusLists::new(), Epoch::new(0),
        ).unwrap();
        let got: BTreeSet<ClaimName> = verified.disclosed().keys().copied().collect();
        prop_assert_eq!(&got, &disclose);
        for name in &disclose {
            let expected = claims.value(*name);
            prop_assert_eq!(verified.get(*name), Some(expected.as_str()));
        }
        // A fresh nonce is a replay; the same presentation under the same
        // challenge but a later epoch is expired when the epoch has passed.
        let other = Challenge::new(&rng, VerifierId::new(&verifier).unwrap())
            .accept_key(issuer.key_id().clone());
        prop_assert_eq!(
            verify_presentation(bbs, &other, &parsed, &keys, &StatusLists::new(), Epoch::new(0)).unwrap_err(),
            CredentialError::WrongChallenge
        );
        if let Some(next) = claims.validity_epoch.get().checked_add(1) {
            prop_assert_eq!(
                verify_presentation(bbs, &challenge, &parsed, &keys, &StatusLists::new(), Epoch::new(next)).unwrap_err(),
                CredentialError::Expired
            );
        }
    }

    /// A challenge is untrusted input on the member's side: any bytes give an
    /// answer, never a panic.
    #[test]
    fn the_challenge_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        let _ = Challenge::parse(&bytes);
    }

    /// A real challenge with one byte changed either fails with a code or
    /// parses into something that writes and reads back the same.
    #[test]
    fn mutated_challenges_fail_cleanly_or_round_trip(pos in any::<prop::sample::Index>(), byte in any::<u8>(), status in any::<bool>()) {
        let verifier = VerifierId::new("fair-market").unwrap();
        let mut c = Challenge::coop_membership(
            &SeededRandom::new(7),
            verifier,
            "Fair Economy Federation",
            [issuer().key_id().clone()],
        )
        .unwrap()
        .require_claim(ClaimName::Tier);
        if status {
            c = c.require_status_check();
        }
        let mut bytes = c.to_json().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        // A refusal is an answer (with a code by construction); what this
        // checks is that nothing panics and that what parses is stable.
        if let Ok(parsed) = Challenge::parse(&bytes) {
            let again = Challenge::parse(parsed.to_json().as_bytes()).unwrap();
            prop_assert_eq!(again, parsed);
        }
    }

    #[test]
    fn status_lists_round_trip(indexes in proptest::collection::btree_set(0u32..131_072, 0..64)) {
        let mut list = StatusList::new();
        for i in &indexes {
            list.revoke(StatusIndex::new(*i)).unwrap();
        }
        let back = StatusList::decode(&list.encode()).unwrap();
        prop_assert_eq!(&back, &list);
        for i in (0u32..131_072).step_by(997).chain(indexes.iter().copied()) {
            prop_assert_eq!(back.get(StatusIndex::new(i)).unwrap(), indexes.contains(&i));
        }
    }
}
