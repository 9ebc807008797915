//! The official IETF CFRG BBS test vectors for BLS12-381-SHA-256
//! (`tests/fixtures/bbs-bls12-381-sha-256/`), run through the project's `Bbs`
//! trait, implemented by `RawZkryptiumBbs` (zkryptium's own API).
//!
//! Proof *generation* is checked by round trip, not byte for byte: zkryptium's
//! `proof_gen` draws its blinding scalars from its own RNG, so the draft's mocked
//! randomness cannot be injected through its public API. Every proof vector is
//! checked for verification.
//!
//! Every fixture file is enumerated and must be consumed: a missing, extra or
//! unreadable vector fails the test instead of being skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bls12_381_plus::elliptic_curve::hash2curve::{ExpandMsg, ExpandMsgXmd, Expander};
use bls12_381_plus::Scalar;
use me2b_credentials::bbs::{Bbs, BbsProof, BbsPublicKey, BbsSignature, RawZkryptiumBbs};
use me2b_credentials::BbsSecretKey;
use me2b_domain::Random;
use serde_json::Value;
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const API_ID: &[u8] = b"BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_H2G_HM2S_";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bbs-bls12-381-sha-256")
}

fn load(rel: &str) -> Value {
    let path = dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("vector {rel} is not JSON: {e}"))
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field `{key}` missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field `{key}` is not hex: {e}"))
}

fn hex_list(v: &Value, key: &str) -> Vec<Vec<u8>> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("vector field `{key}` missing"))
        .iter()
        .map(|m| hex::decode(m.as_str().unwrap()).unwrap())
        .collect()
}

fn files(sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir().join(sub))
        .unwrap_or_else(|e| panic!("fixture folder {sub} missing: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn impls() -> Vec<(&'static str, Box<dyn Bbs>)> {
    vec![("RawZkryptiumBbs", Box::new(RawZkryptiumBbs))]
}

/// The draft's mocked random scalars: `expand_message_xmd(seed, dst, 48 * count)`,
/// replayed as the byte stream a `Random` returns. A `Bbs` that draws scalars from it turns each 48
/// bytes into `OS2IP(bytes) mod r`, so it sees exactly the draft's mocked scalars.
#[derive(Debug)]
struct MockedRng(Mutex<(Vec<u8>, usize)>);

fn expand(seed: &[u8], dst: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ExpandMsgXmd::<Sha256>::expand_message(&[seed], &[dst], len)
        .unwrap()
        .fill_bytes(&mut out);
    out
}

impl MockedRng {
    fn new(count: usize) -> Self {
        let m = load("mockedRng.json");
        let bytes = expand(&hex_field(&m, "seed"), &hex_field(&m, "dst"), 48 * count);
        Self(Mutex::new((bytes, 0)))
    }
    fn fully_used(&self) -> bool {
        let g = self.0.lock().unwrap();
        g.1 == g.0.len()
    }
}

impl Random for MockedRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut g = self.0.lock().unwrap();
        let (bytes, pos) = &mut *g;
        let end = *pos + buf.len();
        assert!(
            end <= bytes.len(),
            "the proof asked for more randomness than mocked"
        );
        buf.copy_from_slice(&bytes[*pos..end]);
        *pos = end;
    }
}

fn scalars_of(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(48)
        .map(|c| hex::encode(Scalar::from_okm(c.try_into().unwrap()).to_be_bytes()))
        .collect()
}

#[test]
fn all_fixture_files_are_present() {
    let mut top = files(".");
    top.sort();
    assert_eq!(
        top,
        [
            "MapMessageToScalarAsHash.json",
            "generators.json",
            "h2s.json",
            "keypair.json",
            "messages.json",
            "mockedRng.json"
        ]
    );
    assert_eq!(files("signature").len(), 10);
    assert_eq!(files("proof").len(), 15);
    assert!(
        dir().join("../README.md").exists(),
        "the fixtures' licence note"
    );
}

#[test]
fn keypair() {
    let v = load("keypair.json");
    for (name, bbs) in impls() {
        let sk = bbs
            .key_gen(
                &hex_field(&v, "keyMaterial"),
                &hex_field(&v, "keyInfo"),
                Some(&hex_field(&v, "keyDst")),
            )
            .unwrap();
        assert_eq!(
            hex::encode(*sk.to_bytes()),
            v["keyPair"]["secretKey"].as_str().unwrap(),
            "{name}: KeyGen"
        );
        assert_eq!(
            bbs.public_key(&sk).unwrap().to_hex(),
            v["keyPair"]["publicKey"].as_str().unwrap(),
            "{name}: SkToPk"
        );
        assert_eq!(
            bbs.key_gen(&[0u8; 31], b"", None).unwrap_err().code(),
            "key_material_too_short"
        );
    }
}

#[test]
fn generators() {
    let v = load("generators.json");
    let msg_gens: Vec<&str> = v["MsgGenerators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(msg_gens.len(), 10);
    for (name, bbs) in impls() {
        let g = bbs.generators(msg_gens.len() + 1).unwrap();
        assert_eq!(hex::encode(g.p1), v["P1"].as_str().unwrap(), "{name}: P1");
        assert_eq!(
            hex::encode(g.generators[0]),
            v["Q1"].as_str().unwrap(),
            "{name}: Q1"
        );
        let got: Vec<String> = g.generators[1..].iter().map(hex::encode).collect();
        assert_eq!(got, msg_gens, "{name}: H_1..H_10");
    }
}

#[test]
fn hash_to_scalar() {
    let v = load("h2s.json");
    assert_eq!(hex_field(&v, "dst"), [API_ID, b"H2S_"].concat());
    for (name, bbs) in impls() {
        let s = bbs
            .hash_to_scalar(&hex_field(&v, "message"), &hex_field(&v, "dst"))
            .unwrap();
        assert_eq!(hex::encode(s), v["scalar"].as_str().unwrap(), "{name}");
    }
}

#[test]
fn map_message_to_scalar_as_hash() {
    let v = load("MapMessageToScalarAsHash.json");
    // The trait uses the ciphersuite's own dst: check it is the vector's.
    assert_eq!(
        hex_field(&v, "dst"),
        [API_ID, b"MAP_MSG_TO_SCALAR_AS_HASH_"].concat()
    );
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for (name, bbs) in impls() {
        for c in cases {
            let s = bbs.map_message_to_scalar(&hex_field(c, "message")).unwrap();
            assert_eq!(hex::encode(s), c["scalar"].as_str().unwrap(), "{name}");
        }
    }
}

#[test]
fn messages_fixture_is_the_one_the_vectors_sign() {
    let text = std::fs::read_to_string(dir().join("messages.json")).unwrap();
    let list: Vec<String> = serde_json::from_str(&text).unwrap();
    let v = load("signature/signature004.json");
    let signed: Vec<String> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(list, signed);
}

#[test]
fn mocked_random_scalars() {
    let v = load("mockedRng.json");
    let count = v["count"].as_u64().unwrap() as usize;
    assert_eq!(
        hex_field(&v, "dst"),
        [API_ID, b"MOCK_RANDOM_SCALARS_DST_"].concat()
    );
    let rng = MockedRng::new(count);
    let mut bytes = vec![0u8; 48 * count];
    rng.fill(&mut bytes);
    assert!(rng.fully_used());
    let expected: Vec<String> = v["mockedScalars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(scalars_of(&bytes), expected);
}

#[test]
fn signature_vectors() {
    let names = files("signature");
    let mut ran = 0;
    let (mut valid, mut invalid) = (0, 0);
    for file in &names {
        let v = load(&format!("signature/{file}"));
        let expect_valid = v["result"]["valid"]
            .as_bool()
            .unwrap_or_else(|| panic!("{file}: result.valid missing"));
        let sk = BbsSecretKey::from_bytes(
            &hex::decode(v["signerKeyPair"]["secretKey"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let pk = BbsPublicKey::from_hex(v["signerKeyPair"]["publicKey"].as_str().unwrap()).unwrap();
        let header = hex_field(&v, "header");
        let messages = hex_list(&v, "messages");
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let expected_sig = hex_field(&v, "signature");
        for (name, bbs) in impls() {
            // Sign: the vector's inputs give the vector's signature iff it is valid.
            let produced = bbs.sign(&sk, &pk, &header, &refs).unwrap();
            assert_eq!(
                produced.as_bytes().as_slice() == expected_sig.as_slice(),
                expect_valid,
                "{name} {file}: sign"
            );
            // Verify.
            let outcome = BbsSignature::from_bytes(&expected_sig)
                .and_then(|sig| bbs.verify(&pk, &sig, &header, &refs));
            assert_eq!(
                outcome.is_ok(),
                expect_valid,
                "{name} {file}: verify {outcome:?}"
            );
            if !expect_valid {
                assert_eq!(
                    outcome.unwrap_err().code(),
                    "signature_invalid",
                    "{name} {file}"
                );
            }
        }
        if expect_valid {
            valid += 1;
        } else {
            invalid += 1;
        }
        ran += 1;
    }
    assert_eq!(ran, 10);
    assert_eq!((valid, invalid), (3, 7));
}

#[test]
fn proof_vectors_verify() {
    let names = files("proof");
    let mut ran = 0;
    let (mut valid, mut invalid) = (0, 0);
    for file in &names {
        let v = load(&format!("proof/{file}"));
        let expect_valid = v["result"]["valid"]
            .as_bool()
            .unwrap_or_else(|| panic!("{file}: result.valid missing"));
        let pk = BbsPublicKey::from_hex(v["signerPublicKey"].as_str().unwrap()).unwrap();
        let header = hex_field(&v, "header");
        let ph = hex_field(&v, "presentationHeader");
        let messages = hex_list(&v, "messages");
        let indexes: Vec<usize> = v["disclosedIndexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        // Indexes beyond the message list cannot be disclosed: such a vector is
        // invalid by construction.
        let disclosed: Vec<(usize, &[u8])> = indexes
            .iter()
            .filter_map(|&i| messages.get(i).map(|m| (i, m.as_slice())))
            .collect();
        for (name, bbs) in impls() {
            let outcome = BbsProof::from_bytes(&hex_field(&v, "proof"))
                .and_then(|proof| bbs.proof_verify(&pk, &proof, &header, &ph, &disclosed));
            assert_eq!(
                outcome.is_ok(),
                expect_valid,
                "{name} {file} ({}): {outcome:?}",
                v["caseName"]
            );
        }
        if expect_valid {
            valid += 1;
        } else {
            invalid += 1;
        }
        ran += 1;
    }
    assert_eq!(ran, 15);
    assert_eq!((valid, invalid), (5, 10));
}
