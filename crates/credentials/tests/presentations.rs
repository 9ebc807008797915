//! Issuing, presenting and verifying: the promo-code flow, replays, tampering,
//! expiry, revocation, bad input, and unlinkability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use me2b_credentials::presentation::MAX_PRESENTATION_BYTES;
use me2b_credentials::*;
use std::collections::{BTreeSet, HashSet};

fn code(r: Result<impl std::fmt::Debug, CredentialError>) -> &'static str {
    r.expect_err("expected an error").code()
}

#[test]
fn a_member_proves_membership_and_the_verifier_learns_only_what_it_asked() {
    let w = world(1);
    let credential = w.credential(17);
    credential
        .verify(default_bbs(), w.issuer.public_key())
        .unwrap();
    let challenge = w.challenge();
    let p = w.present(&credential, &challenge);
    let wire = p.to_json();
    let parsed = Presentation::parse(wire.as_bytes()).unwrap();
    assert_eq!(parsed, p);
    let verified = w.verify(&challenge, &parsed).unwrap();
    let names: Vec<ClaimName> = verified.disclosed().keys().copied().collect();
    assert_eq!(
        names,
        [
            ClaimName::CredentialType,
            ClaimName::Federation,
            ClaimName::ValidityEpoch
        ]
    );
    assert_eq!(verified.get(ClaimName::Federation), Some(FEDERATION));
    assert_eq!(verified.get(ClaimName::StatusIndex), None);
    // Nothing undisclosed is in the wire form.
    for hidden in [
        credential.claims.issuer.to_string(),
        "organic food".to_owned(),
        "cycling".to_owned(),
        "standard".to_owned(),
        "NL-NH".to_owned(),
        "member_since".to_owned(),
        "status_index".to_owned(),
    ] {
        assert!(!wire.contains(&hidden), "`{hidden}` leaked");
    }
}

#[test]
fn a_member_may_disclose_more_than_asked() {
    let w = world(2);
    let credential = w.credential(1);
    let challenge = w.challenge();
    let mut disclose = challenge.claims_to_disclose();
    disclose.insert(ClaimName::MemberSince);
    disclose.insert(ClaimName::Interest3); // an empty slot
    let p = w.present_with(&credential, &challenge, &disclose);
    let verified = w.verify(&challenge, &p).unwrap();
    assert_eq!(verified.get(ClaimName::MemberSince), Some("2019"));
    assert_eq!(verified.get(ClaimName::Interest3), Some(""));
}

#[test]
fn credentials_round_trip_through_the_vault_format_and_detect_edits() {
    let w = world(3);
    let credential = w.credential(5);
    let json = serde_json::to_string(&credential).unwrap();
    let back: Credential = serde_json::from_str(&json).unwrap();
    assert_eq!(back, credential);
    back.verify(default_bbs(), w.issuer.public_key()).unwrap();
    let mut edited = back.clone();
    edited.claims.tier = ClaimText::new("gold").unwrap();
    assert_eq!(
        code(edited.verify(default_bbs(), w.issuer.public_key())),
        "signature_invalid"
    );
    assert!(serde_json::from_str::<Credential>(
        &json.replace("\"claims\"", "\"extra\":1,\"claims\"")
    )
    .is_err());
}

#[test]
fn a_presentation_for_another_nonce_is_a_replay() {
    let w = world(4);
    let credential = w.credential(1);
    let first = w.challenge();
    let p = w.present(&credential, &first);
    w.verify(&first, &p).unwrap();
    let second = w.challenge();
    assert_ne!(first.nonce(), second.nonce());
    assert_eq!(code(w.verify(&second, &p)), "wrong_challenge");
}

#[test]
fn a_presentation_for_another_verifier_is_a_replay() {
    let w = world(5);
    let credential = w.credential(1);
    let challenge = w.challenge();
    let p = w.present(&credential, &challenge);
    let other = Challenge::with_nonce(
        *challenge.nonce(),
        VerifierId::new("other.example").unwrap(),
    )
    .accept_key(w.issuer.key_id().clone())
    .require_value(ClaimName::Federation, FEDERATION)
    .unwrap();
    assert_eq!(code(w.verify(&other, &p)), "wrong_challenge");
}

#[test]
fn rewriting_the_echoed_challenge_does_not_help_a_replay() {
    let w = world(6);
    let credential = w.credential(1);
    let old = w.challenge();
    let p = w.present(&credential, &old);
    let new = w.challenge();
    let forged = w
        .edit(&p, |v| {
            v["nonce"] = new.nonce().to_hex().into();
        })
        .unwrap();
    assert_eq!(code(w.verify(&new, &forged)), "proof_invalid");
    let other_verifier =
        Challenge::with_nonce(*old.nonce(), VerifierId::new("other.example").unwrap())
            .accept_key(w.issuer.key_id().clone());
    let forged = w
        .edit(&p, |v| {
            v["verifier_id"] = "other.example".into();
        })
        .unwrap();
    assert_eq!(code(w.verify(&other_verifier, &forged)), "proof_invalid");
}

#[test]
fn tampering_with_a_disclosed_claim_is_detected() {
    let w = world(7);
    let credential = w.credential(1);
    let challenge = w.challenge();
    let p0 = w.present(&credential, &challenge);
    // A later expiry.
    let later = w
        .edit(&p0, |v| v["disclosed"]["validity_epoch"] = "9999".into())
        .unwrap();
    assert_eq!(code(w.verify(&challenge, &later)), "proof_invalid");
    // Another federation, to pass another verifier's check.
    let other_fed = Challenge::coop_membership(
        &w.rng,
        w.verifier.clone(),
        "Other Federation",
        [w.issuer.key_id().clone()],
    )
    .unwrap();
    let p = w.present(&credential, &other_fed);
    assert_eq!(code(w.verify(&other_fed, &p)), "claim_mismatch");
    let forged = w
        .edit(&p, |v| {
            v["disclosed"]["federation"] = "Other Federation".into()
        })
        .unwrap();
    assert_eq!(code(w.verify(&other_fed, &forged)), "proof_invalid");
    // Adding a claim that was not proven shifts the hidden/disclosed split.
    let added = w.edit(&p, |v| v["disclosed"]["tier"] = "gold".into());
    assert_eq!(code(added), "malformed_proof");
    // A flipped bit inside the proof.
    let mut bytes = p0.proof().as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let flipped = w
        .edit(&p0, |v| v["proof"] = URL_SAFE_NO_PAD.encode(&bytes).into())
        .unwrap();
    assert_eq!(code(w.verify(&challenge, &flipped)), "proof_invalid");
    w.verify(&challenge, &p0).unwrap();
}

#[test]
fn issuers_must_be_accepted_and_known() {
    let w = world(8);
    let credential = w.credential(1);
    let challenge = Challenge::new(&w.rng, w.verifier.clone())
        .require_value(ClaimName::Federation, FEDERATION)
        .unwrap();
    let p = w.present(&credential, &challenge);
    assert_eq!(code(w.verify(&challenge, &p)), "unknown_issuer");
    let challenge = challenge.accept_key(w.issuer.key_id().clone());
    let p = w.present(&credential, &challenge);
    let empty = IssuerKeys::new();
    let r = verify_presentation(default_bbs(), &challenge, &p, &empty, &w.status, NOW);
    assert_eq!(code(r), "unknown_issuer");
    // Another issuer's key under this key id: the proof does not verify.
    let imposter =
        IssuerKeyPair::generate(default_bbs(), w.issuer.key_id().clone(), &w.rng).unwrap();
    let mut keys = IssuerKeys::new();
    keys.insert(w.issuer.key_id().clone(), *imposter.public_key());
    let r = verify_presentation(default_bbs(), &challenge, &p, &keys, &w.status, NOW);
    assert_eq!(code(r), "proof_invalid");
}

#[test]
fn required_claims_must_be_disclosed_with_the_required_values() {
    let w = world(9);
    let credential = w.credential(1);
    let challenge = w.challenge().require_claim(ClaimName::Region);
    let mut disclose = challenge.claims_to_disclose();
    disclose.remove(&ClaimName::Region);
    let p = w.present_with(&credential, &challenge, &disclose);
    assert_eq!(
        w.verify(&challenge, &p).unwrap_err(),
        CredentialError::MissingClaim(ClaimName::Region)
    );
    let mut disclose = challenge.claims_to_disclose();
    disclose.remove(&ClaimName::ValidityEpoch);
    let p = w.present_with(&credential, &challenge, &disclose);
    assert_eq!(
        w.verify(&challenge, &p).unwrap_err(),
        CredentialError::MissingClaim(ClaimName::ValidityEpoch)
    );
    let challenge = w
        .challenge()
        .require_value(ClaimName::Tier, "gold")
        .unwrap();
    let p = w.present(&credential, &challenge);
    assert_eq!(
        w.verify(&challenge, &p).unwrap_err(),
        CredentialError::ClaimMismatch(ClaimName::Tier)
    );
}

#[test]
fn expired_credentials_are_refused() {
    let w = world(10);
    let mut claims = claims(&w.rng, 1);
    claims.validity_epoch = Epoch::new(NOW.get() - 1);
    let expired = w.issuer.issue(default_bbs(), claims.clone()).unwrap();
    let challenge = w.challenge();
    let p = w.present(&expired, &challenge);
    assert_eq!(code(w.verify(&challenge, &p)), "expired");
    claims.validity_epoch = NOW;
    let last_epoch = w.issuer.issue(default_bbs(), claims).unwrap();
    let p = w.present(&last_epoch, &challenge);
    w.verify(&challenge, &p).unwrap();
}

#[test]
fn revocation_is_checked_when_the_challenge_asks_for_it() {
    let mut w = world(11);
    let credential = w.credential(4242);
    let challenge = w.challenge().require_status_check();
    assert!(challenge
        .claims_to_disclose()
        .contains(&ClaimName::StatusIndex));
    let p = w.present(&credential, &challenge);
    let verified = w.verify(&challenge, &p).unwrap();
    assert_eq!(verified.get(ClaimName::StatusIndex), Some("4242"));

    let mut list = StatusList::new();
    list.revoke(StatusIndex::new(4242)).unwrap();
    // The verifier gets the list in its published, encoded form.
    let list = StatusList::decode(&list.encode()).unwrap();
    w.status.insert(w.issuer.key_id().clone(), list);
    let p = w.present(&credential, &challenge);
    assert_eq!(code(w.verify(&challenge, &p)), "revoked");

    // Without a status check the index stays hidden and revocation is not seen:
    // short validity epochs bound how long that lasts (LINKABILITY.md).
    let plain = w.challenge();
    assert!(!plain.claims_to_disclose().contains(&ClaimName::StatusIndex));
    let p = w.present(&credential, &plain);
    w.verify(&plain, &p).unwrap();

    let r = verify_presentation(
        default_bbs(),
        &challenge,
        &w.present(&credential, &challenge),
        &w.keys,
        &StatusLists::new(),
        NOW,
    );
    assert_eq!(code(r), "status_unavailable");

    // An index the list does not have.
    let far = w.credential(131_072);
    let p = w.present(&far, &challenge);
    assert_eq!(code(w.verify(&challenge, &p)), "status_index_out_of_range");
}

#[test]
fn truncated_and_extended_proofs_are_told_apart() {
    let w = world(12);
    let credential = w.credential(1);
    let challenge = w.challenge();
    let p = w.present(&credential, &challenge);
    let proof = p.proof().as_bytes().to_vec();
    let with_proof = |bytes: &[u8]| {
        let b64 = URL_SAFE_NO_PAD.encode(bytes);
        w.edit(&p, |v| v["proof"] = b64.into())
    };
    // One hidden message less (a whole scalar cut).
    let mut cut = proof.clone();
    cut.drain(cut.len() - 64..cut.len() - 32);
    assert_eq!(code(with_proof(&cut)), "truncated_proof");
    // Cut inside a scalar, or shorter than the fixed part.
    assert_eq!(
        code(with_proof(&proof[..proof.len() - 5])),
        "truncated_proof"
    );
    assert_eq!(code(with_proof(&proof[..100])), "truncated_proof");
    assert_eq!(code(with_proof(&[])), "truncated_proof");
    // Longer than the hidden messages need.
    let mut longer = proof.clone();
    longer.extend_from_slice(&proof[proof.len() - 32..]);
    assert_eq!(code(with_proof(&longer)), "malformed_proof");
    // Right length, not a proof.
    assert_eq!(
        code(with_proof(&vec![0x11; proof.len()])),
        "malformed_proof"
    );
    assert_eq!(with_proof(&proof).unwrap(), p);
}

#[test]
fn malformed_and_oversized_inputs_get_distinct_errors() {
    let w = world(13);
    let credential = w.credential(1);
    let challenge = w.challenge();
    let p = w.present(&credential, &challenge);
    let wire = p.to_json();
    let mut codes = BTreeSet::new();
    let mut expect = |r: Result<Presentation, CredentialError>, c: &'static str| {
        assert_eq!(code(r), c);
        codes.insert(c);
    };

    expect(Presentation::parse(b""), "malformed_presentation");
    expect(Presentation::parse(b"not json"), "malformed_presentation");
    expect(Presentation::parse(b"[1,2,3]"), "malformed_presentation");
    expect(
        Presentation::parse(&[0xff, 0xfe, 0x00]),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| v["extra"] = 1.into()),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| {
            v.as_object_mut().unwrap().remove("proof");
        }),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| v["disclosed"]["nickname"] = "x".into()),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| v["disclosed"]["federation"] = 5.into()),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| v["nonce"] = "ABCD".into()),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| {
            v["nonce"] = challenge.nonce().to_hex().to_uppercase().into()
        }),
        "malformed_presentation",
    );
    // A duplicate claim (serde_json would silently keep the last one).
    let dup = wire.replacen(
        "\"federation\":",
        "\"federation\":\"Somewhere else\",\"federation\":",
        1,
    );
    assert_ne!(dup, wire);
    expect(
        Presentation::parse(dup.as_bytes()),
        "malformed_presentation",
    );
    // Duplicate top-level field.
    let dup = wire.replacen("{", "{\"verifier_id\":\"x\",", 1);
    expect(
        Presentation::parse(dup.as_bytes()),
        "malformed_presentation",
    );
    expect(
        w.edit(&p, |v| v["schema_version"] = 3.into()),
        "unsupported_schema",
    );
    expect(
        w.edit(&p, |v| v["issuer_key_id"] = "no spaces allowed".into()),
        "invalid_identifier",
    );
    expect(
        w.edit(&p, |v| v["verifier_id"] = "".into()),
        "invalid_identifier",
    );
    expect(
        w.edit(&p, |v| v["disclosed"]["validity_epoch"] = "02901".into()),
        "invalid_claim",
    );
    expect(
        w.edit(&p, |v| v["proof"] = "not*base64".into()),
        "malformed_proof",
    );
    expect(
        w.edit(&p, |v| {
            let s = v["proof"].as_str().unwrap().to_owned();
            v["proof"] = format!("{s}==").into();
        }),
        "malformed_proof",
    );
    expect(
        w.edit(&p, |v| {
            v["proof"] = URL_SAFE_NO_PAD.encode([1u8; 40]).into()
        }),
        "truncated_proof",
    );
    let mut big = wire.clone().into_bytes();
    big.resize(MAX_PRESENTATION_BYTES + 1, b' ');
    expect(Presentation::parse(&big), "oversized_input");
    // Just under the limit is read (whitespace is fine).
    big.truncate(MAX_PRESENTATION_BYTES);
    assert_eq!(Presentation::parse(&big).unwrap(), p);

    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        [
            "invalid_claim",
            "invalid_identifier",
            "malformed_presentation",
            "malformed_proof",
            "oversized_input",
            "truncated_proof",
            "unsupported_schema",
        ]
    );
}

#[test]
fn challenges_round_trip_and_are_parsed_strictly() {
    let w = world(14);
    let c = w
        .challenge()
        .require_claim(ClaimName::Region)
        .require_status_check();
    let json = c.to_json();
    assert_eq!(Challenge::parse(json.as_bytes()).unwrap(), c);
    let extra = json.replacen("{", "{\"x\":1,", 1);
    assert_eq!(
        code(Challenge::parse(extra.as_bytes())),
        "malformed_presentation"
    );
    let bad_value = json.replace("coop-membership", "coop-membership\\n");
    assert_eq!(
        code(Challenge::parse(bad_value.as_bytes())),
        "invalid_claim"
    );
    let big = vec![b' '; MAX_PRESENTATION_BYTES + 1];
    assert_eq!(code(Challenge::parse(&big)), "oversized_input");
}

/// All `n`-byte windows of `bytes`.
fn windows(bytes: &[u8], n: usize) -> HashSet<&[u8]> {
    bytes.windows(n).collect()
}

#[test]
fn two_presentations_of_one_credential_are_unlinkable() {
    let w = world(15);
    let credential = w.credential(99);
    let c1 = w.challenge();
    let c2 = w.challenge();
    let p1 = w.present(&credential, &c1);
    let p2 = w.present(&credential, &c2);
    w.verify(&c1, &p1).unwrap();
    w.verify(&c2, &p2).unwrap();
    // Same disclosures, same issuer key, same verifier: that is all they share.
    assert_eq!(p1.disclosed(), p2.disclosed());
    let (a, b) = (p1.proof().as_bytes(), p2.proof().as_bytes());
    assert_eq!(a.len(), b.len());
    let shared = windows(a, 8).intersection(&windows(b, 8)).count();
    assert_eq!(shared, 0, "the two proofs share an 8-byte sequence");

    // Beyond the proof: remove what is allowed to be equal (disclosed claims,
    // issuer key id, verifier id, schema version, field names) from the wire
    // forms; the rest (nonce and proof) shares no 8-byte sequence either.
    let strip = |p: &Presentation| -> Vec<u8> {
        let mut s = p.to_json();
        for (name, value) in p.disclosed() {
            s = s.replace(name.as_str(), "").replace(value.as_str(), "");
        }
        for fixed in [
            p.issuer_key_id().as_str(),
            p.verifier_id().as_str(),
            "schema_version",
            "issuer_key_id",
            "verifier_id",
            "disclosed",
            "nonce",
            "proof",
        ] {
            s = s.replace(fixed, "");
        }
        s.retain(|ch| !matches!(ch, '{' | '}' | '"' | ':' | ','));
        s.into_bytes()
    };
    let (s1, s2) = (strip(&p1), strip(&p2));
    assert!(windows(&s1, 8).is_disjoint(&windows(&s2, 8)));

    // And no 8 bytes of the signature (a correlation handle) appear in a proof.
    let sig = credential.signature.as_bytes();
    assert!(windows(sig, 8).is_disjoint(&windows(a, 8)));
    assert!(windows(sig, 8).is_disjoint(&windows(b, 8)));

    // Even for the same nonce, two proofs differ everywhere.
    let p3 = w.present(&credential, &c1);
    assert!(windows(a, 8).is_disjoint(&windows(p3.proof().as_bytes(), 8)));
}

/// Issue 12: one key, the federation's, signs two co-ops' credentials. A
/// challenge that names no co-op gets presentations that differ only in
/// their proofs; one that names co-op A makes the member disclose the issuer,
/// and refuses co-op B's member and a presentation that hides the issuer.
#[test]
fn the_issuing_coop_stays_hidden_unless_the_challenge_names_it() {
    let w = world(21);
    let (a, b) = (
        me2b_domain::OrgId::generate(&w.rng),
        me2b_domain::OrgId::generate(&w.rng),
    );
    let mut claims_a = claims(&w.rng, 5);
    claims_a.issuer = a;
    let mut claims_b = claims_a.clone();
    claims_b.issuer = b;
    let cred_a = w.issuer.issue(default_bbs(), claims_a).unwrap();
    let cred_b = w.issuer.issue(default_bbs(), claims_b).unwrap();

    let any = w.challenge();
    assert!(!any.claims_to_disclose().contains(&ClaimName::Issuer));
    let (pa, pb) = (w.present(&cred_a, &any), w.present(&cred_b, &any));
    let without_proof = |p: &Presentation| {
        let mut v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        v.as_object_mut().unwrap().remove("proof");
        v
    };
    assert_eq!(without_proof(&pa), without_proof(&pb));
    assert_eq!(pa.proof().as_bytes().len(), pb.proof().as_bytes().len());
    let (va, vb) = (w.verify(&any, &pa).unwrap(), w.verify(&any, &pb).unwrap());
    assert_eq!(va, vb);
    assert_eq!(va.issuer(), None);

    let named = w.challenge().require_issuer_in([a]);
    assert_eq!(Challenge::parse(named.to_json().as_bytes()).unwrap(), named);
    assert!(named.claims_to_disclose().contains(&ClaimName::Issuer));
    let pa = w.present(&cred_a, &named);
    assert_eq!(w.verify(&named, &pa).unwrap().issuer(), Some(a));
    let pb = w.present(&cred_b, &named);
    assert_eq!(code(w.verify(&named, &pb)), "claim_mismatch");
    let hidden = w.present_with(&cred_a, &named, &any.claims_to_disclose());
    assert_eq!(code(w.verify(&named, &hidden)), "missing_claim");
    // A named co-op in another spelling is not the claim's one spelling.
    let upper = named
        .to_json()
        .replace(&a.to_string(), &a.to_string().to_uppercase());
    assert_eq!(code(Challenge::parse(upper.as_bytes())), "invalid_claim");
}
