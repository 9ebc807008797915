//! Signed consent receipts: compact JWS (RFC 7515) with `alg: EdDSA` (RFC 8037),
//! signed by the node's Ed25519 key. Both parties get the same receipt; it names
//! the member only by the pseudonym the controller knows them by, and its
//! times only to the hour (UTC): the controller sees it, and colluding
//! controllers must not pair their pseudonyms for one member by the moments
//! the member answered them.

use crate::model::{ConsentRecord, ConsentStatus, Method};
use crate::vocabulary::{Section, Vocabulary};
use crate::ConsentError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_crypto::{Keyring, NodeVerifyingKey};
use me2b_domain::Timestamp;
use serde::{Deserialize, Serialize};

/// The `typ` of a me2b consent receipt.
pub const RECEIPT_TYP: &str = "me2b-consent-receipt+jws";
/// Largest receipt accepted for verification.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

/// A DPV term as cited in a receipt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CitedTerm {
    pub id: String,
    pub iri: String,
}

/// The signed content of a receipt (fields after ISO/IEC TS 27560 and the
/// Kantara consent receipt).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReceiptClaims {
    pub version: String,
    pub receipt_id: String,
    /// `given`, `refused` or `withdrawn`.
    pub event: ConsentStatus,
    pub consent_id: String,
    pub consent_version: u32,
    pub controller: Controller,
    /// The member, by the pseudonym the controller knows them by.
    pub subject: String,
    pub purposes: Vec<CitedTerm>,
    pub categories: Vec<CitedTerm>,
    pub processing: Vec<CitedTerm>,
    pub legal_basis: CitedTerm,
    /// How the member answered (`web`, `api`, `paper`, `gpc`): only on a
    /// receipt of a grant or a refusal. A withdrawal's receipt has none:
    /// the organisation gets it, and how a member withdrew (one click, a
    /// paper code, one consent) would single a paper opt-out out of the
    /// batch it is released in (adv4). The member's own record keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    pub notice: Notice,
    pub given_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    pub issued_at: String,
    pub issuer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Controller {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Notice {
    pub version: String,
    pub sha256: String,
}

fn cite(v: &Vocabulary, section: Section, ids: &[String]) -> Vec<CitedTerm> {
    ids.iter()
        .map(|id| CitedTerm {
            id: id.clone(),
            iri: v
                .term(section, id)
                .map(|t| t.iri.clone())
                .unwrap_or_default(),
        })
        .collect()
}

impl ReceiptClaims {
    /// The receipt for the record's latest event.
    pub fn for_record(
        v: &Vocabulary,
        r: &ConsentRecord,
        controller_name: &str,
        subject_pseudonym: String,
        issuer: &str,
        now: Timestamp,
    ) -> Self {
        Self {
            version: "me2b-consent-receipt/1".into(),
            receipt_id: format!("{}.{}", r.id, r.version()),
            event: r.status,
            consent_id: r.id.to_string(),
            consent_version: r.version(),
            controller: Controller {
                id: r.controller.to_string(),
                name: controller_name.to_owned(),
            },
            subject: subject_pseudonym,
            purposes: cite(v, Section::Purpose, &r.purposes),
            categories: cite(v, Section::Category, &r.categories),
            processing: cite(v, Section::Processing, &r.processing),
            legal_basis: cite(v, Section::LegalBasis, std::slice::from_ref(&r.legal_basis))
                .pop()
                .unwrap_or(CitedTerm {
                    id: r.legal_basis.clone(),
                    iri: String::new(),
                }),
            method: (r.status != ConsentStatus::Withdrawn)
                .then(|| r.history.last().map_or(r.method, |e| e.method)),
            notice: Notice {
                version: r.notice_version.clone(),
                sha256: r.notice_sha256.clone(),
            },
            // To the hour: the organisation gets this receipt, and a member
            // answering two co-ops in one sitting must not be paired by it.
            given_at: r.given_at.hour().to_rfc3339(),
            expires_at: r.expires_at.hour().to_rfc3339(),
            withdrawn_at: r.withdrawn_at.map(|t| t.hour().to_rfc3339()),
            issued_at: now.hour().to_rfc3339(),
            issuer: issuer.to_owned(),
        }
    }
}

/// Signs `claims` as a compact JWS.
pub fn sign(keys: &Keyring, claims: &ReceiptClaims) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        kid: keys.verifying_key().key_id(),
        typ: RECEIPT_TYP.into(),
    };
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{h}.{p}");
    let sig = URL_SAFE_NO_PAD.encode(keys.sign(signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Verifies a compact JWS receipt with the node's public key (offline) and
/// returns its claims. Any change to header, claims or signature is refused.
pub fn verify(jws: &str, key: &NodeVerifyingKey) -> Result<ReceiptClaims, ConsentError> {
    let jws = jws.trim();
    if jws.len() > MAX_RECEIPT_BYTES {
        return Err(ConsentError::MalformedReceipt("too large"));
    }
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ConsentError::MalformedReceipt(
            "not a compact JWS (three base64url parts)",
        ));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(ConsentError::MalformedReceipt("bad header"))?;
    if header.alg != "EdDSA" || header.typ != RECEIPT_TYP {
        return Err(ConsentError::MalformedReceipt(
            "not an EdDSA me2b consent receipt",
        ));
    }
    if header.kid != key.key_id() {
        return Err(ConsentError::BadReceiptSignature);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| ConsentError::MalformedReceipt("bad signature encoding"))?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| ConsentError::BadReceiptSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| ConsentError::MalformedReceipt("bad payload encoding"))?;
    serde_json::from_slice(&payload).map_err(|_| ConsentError::MalformedReceipt("bad claims"))
}
