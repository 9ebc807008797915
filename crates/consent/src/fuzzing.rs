//! The body of the `consent_receipt` fuzz target (`fuzz/`), shared with the
//! crate's own tests so that CI runs it on stable Rust too.
//!
//! The first input byte picks what the rest is:
//! * `0`: a whole compact JWS, verified with the fixture's key (the parser up to
//!   the signature check: split, base64url, header JSON, key id, signature);
//! * `1`: the claims of a receipt the fixture's key really signs (the claims
//!   parser, which a forger cannot reach: only a node bug could sign bad claims);
//! * `2`: edits of a valid receipt: any change that is not whitespace at the
//!   ends must be refused.

use crate::model::{ConsentStatus, Method};
use crate::receipt::{sign, verify, CitedTerm, Controller, Notice, ReceiptClaims, RECEIPT_TYP};
use crate::ConsentError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_crypto::{Keyring, MasterKey};
use std::sync::OnceLock;

/// The fixed world the fuzz target verifies against.
#[derive(Debug)]
pub struct Fixture {
    pub keys: Keyring,
    /// A receipt the key signed.
    pub receipt: String,
    pub claims: ReceiptClaims,
}

/// The claims of the fixture's receipt.
pub fn sample_claims() -> ReceiptClaims {
    let term = |id: &str| CitedTerm {
        id: id.into(),
        iri: format!("https://w3id.org/dpv#{id}"),
    };
    ReceiptClaims {
        version: "me2b-consent-receipt/1".into(),
        receipt_id: "c1.1".into(),
        event: ConsentStatus::Given,
        consent_id: "c1".into(),
        consent_version: 1,
        controller: Controller {
            id: "org-1".into(),
            name: "Corner Co-op".into(),
        },
        subject: "pseudonym-1".into(),
        purposes: vec![term("ServiceProvision")],
        categories: vec![term("Contact")],
        processing: vec![term("Use")],
        legal_basis: term("Consent"),
        method: Some(Method::Web),
        notice: Notice {
            version: "1".into(),
            sha256: "00".repeat(32),
        },
        given_at: "2026-11-23T10:00:00Z".into(),
        expires_at: "2027-11-23T10:00:00Z".into(),
        withdrawn_at: None,
        issued_at: "2026-11-23T10:00:00Z".into(),
        issuer: "me2b-node".into(),
    }
}

/// The shared fixture (built once).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys = Keyring::derive(&MasterKey::from_bytes([0x5e; 32]));
        let claims = sample_claims();
        let receipt = sign(&keys, &claims);
        Fixture {
            keys,
            receipt,
            claims,
        }
    })
}

/// What the fuzz body observed.
#[derive(Debug)]
pub enum Outcome {
    /// Verified with the fixture's key.
    Verified,
    /// Refused with this error.
    Refused(ConsentError),
    /// A property that must hold for every input did not: a bug.
    InvariantBroken(&'static str),
}

/// The fuzz body. Must never panic.
pub fn consent_receipt(data: &[u8]) -> Outcome {
    let f = fixture();
    let key = f.keys.verifying_key();
    let Some((&mode, rest)) = data.split_first() else {
        return Outcome::Refused(ConsentError::MalformedReceipt("empty"));
    };
    match mode % 3 {
        0 => {
            let jws = String::from_utf8_lossy(rest);
            match verify(&jws, &key) {
                // A verified receipt's claims sign and verify to themselves.
                Ok(claims) => match verify(&sign(&f.keys, &claims), &key) {
                    Ok(again) if again == claims => Outcome::Verified,
                    _ => Outcome::InvariantBroken("verified claims do not round-trip"),
                },
                Err(e) => Outcome::Refused(e),
            }
        }
        1 => {
            let header = format!(
                r#"{{"alg":"EdDSA","kid":"{}","typ":"{RECEIPT_TYP}"}}"#,
                key.key_id()
            );
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(rest)
            );
            let jws = format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(f.keys.sign(input.as_bytes()))
            );
            match verify(&jws, &key) {
                Ok(_) => Outcome::Verified,
                Err(ConsentError::MalformedReceipt(what)) => {
                    Outcome::Refused(ConsentError::MalformedReceipt(what))
                }
                Err(_) => {
                    Outcome::InvariantBroken("a receipt the key signed was not taken as signed")
                }
            }
        }
        _ => {
            let mut bytes = f.receipt.clone().into_bytes();
            for edit in rest.chunks(3) {
                let (at, value) = match edit {
                    [hi, lo, v] => (usize::from(*hi) << 8 | usize::from(*lo), *v),
                    _ => break,
                };
                let n = bytes.len().max(1);
                match value {
                    // Cut the receipt short.
                    0 => bytes.truncate(at % n),
                    // Insert a byte.
                    1..=3 => bytes.insert((at % n).min(bytes.len()), value.wrapping_mul(17)),
                    _ => {
                        if let Some(b) = bytes.get_mut(at % n) {
                            *b = value;
                        }
                    }
                }
            }
            let jws = String::from_utf8_lossy(&bytes);
            let same = jws.trim() == f.receipt;
            match (verify(&jws, &key), same) {
                (Ok(claims), true) if claims == f.claims => Outcome::Verified,
                (Ok(_), true) => {
                    Outcome::InvariantBroken("the valid receipt verified to other claims")
                }
                (Err(_), true) => Outcome::InvariantBroken("the valid receipt was refused"),
                (Ok(_), false) => Outcome::InvariantBroken("an edited receipt verified"),
                (Err(e), false) => Outcome::Refused(e),
            }
        }
    }
}
