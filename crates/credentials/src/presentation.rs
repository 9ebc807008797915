//! Presentations: disclosed claims plus a BBS proof bound to one verifier's
//! challenge, and their JSON wire format.
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "issuer_key_id": "federation-bbs-20f4cea4a6106a58",
//!   "nonce": "<64 lowercase hex digits: the verifier's nonce>",
//!   "verifier_id": "market.example",
//!   "disclosed": { "credential_type": "coop-membership", "federation": "F", "validity_epoch": "2900" },
//!   "proof": "<base64url without padding>"
//! }
//! ```
//!
//! The BBS presentation header is [`presentation_header`]`(nonce, verifier_id)`, so
//! the proof verifies only for that nonce and that verifier. The nonce and the
//! verifier id are echoed in the presentation so that a replay is reported as
//! such (`wrong_challenge`); they are the verifier's own values and reveal nothing
//! about the member.
//!
//! [`Presentation::parse`] is strict: at most [`MAX_PRESENTATION_BYTES`], no unknown
//! or duplicate fields or claims, one canonical spelling per value, and a proof
//! whose length matches the number of undisclosed claims.

use crate::bbs::BbsProof;
use crate::credential::{check_identifier, IssuerKeyId};
use crate::schema::{ClaimName, ClaimValue, CredentialSchema, SchemaVersion};
use crate::CredentialError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_domain::Random;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The largest presentation [`Presentation::parse`] reads.
pub const MAX_PRESENTATION_BYTES: usize = 16 * 1024;

/// Domain separation of the presentation header.
const PRESENTATION_HEADER_TAG: &[u8] = b"me2b/presentation-header/v1";

/// A verifier-chosen nonce: 32 random bytes, 64 lowercase hex digits on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce([u8; 32]);

impl Nonce {
    pub fn generate(rng: &dyn Random) -> Self {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        Self(b)
    }

    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, CredentialError> {
        let bad = CredentialError::MalformedPresentation("nonce must be 64 lowercase hex digits");
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad)?;
        Ok(Self(out))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl Serialize for Nonce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// The verifier's id, e.g. `market.example`: 1–128 ASCII letters, digits and
/// `. _ : - /`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct VerifierId(String);

impl VerifierId {
    pub fn new(s: &str) -> Result<Self, CredentialError> {
        check_identifier(s, 128, "verifier_id")?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerifierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierId({})", self.0)
    }
}

impl fmt::Display for VerifierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The BBS presentation header: `"me2b/presentation-header/v1" || nonce (32 bytes)
/// || I2OSP(len(verifier_id), 2) || verifier_id`. Fixed-length and length-prefixed
/// parts, so two different (nonce, verifier) pairs never give the same header.
pub fn presentation_header(nonce: &Nonce, verifier_id: &VerifierId) -> Vec<u8> {
    let id = verifier_id.0.as_bytes();
    let mut ph = Vec::with_capacity(PRESENTATION_HEADER_TAG.len() + 32 + 2 + id.len());
    ph.extend_from_slice(PRESENTATION_HEADER_TAG);
    ph.extend_from_slice(&nonce.0);
    // Verifier ids are at most 128 bytes.
    ph.extend_from_slice(&(id.len() as u16).to_be_bytes());
    ph.extend_from_slice(id);
    ph
}

/// What a member shows a verifier: the disclosed claims, the proof, and the ids
/// needed to check it. Built by [`crate::Credential::present`] or
/// [`Presentation::parse`]; its proof always matches its disclosures in size.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Presentation {
    schema_version: SchemaVersion,
    issuer_key_id: IssuerKeyId,
    nonce: Nonce,
    verifier_id: VerifierId,
    disclosed: BTreeMap<ClaimName, ClaimValue>,
    proof: BbsProof,
}

impl Presentation {
    pub(crate) fn new(
        schema_version: SchemaVersion,
        issuer_key_id: IssuerKeyId,
        nonce: Nonce,
        verifier_id: VerifierId,
        disclosed: BTreeMap<ClaimName, ClaimValue>,
        proof: BbsProof,
    ) -> Result<Self, CredentialError> {
        check_proof_size(schema_version, &disclosed, &proof)?;
        Ok(Self {
            schema_version,
            issuer_key_id,
            nonce,
            verifier_id,
            disclosed,
            proof,
        })
    }

    pub fn schema_version(&self) -> SchemaVersion {
        self.schema_version
    }

    pub fn issuer_key_id(&self) -> &IssuerKeyId {
        &self.issuer_key_id
    }

    /// The nonce this presentation was made for.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// The verifier this presentation was made for.
    pub fn verifier_id(&self) -> &VerifierId {
        &self.verifier_id
    }

    pub fn disclosed(&self) -> &BTreeMap<ClaimName, ClaimValue> {
        &self.disclosed
    }

    pub fn proof(&self) -> &BbsProof {
        &self.proof
    }

    /// The JSON wire form (see the module documentation).
    pub fn to_json(&self) -> String {
        let wire = WireOut {
            schema_version: self.schema_version.get(),
            issuer_key_id: self.issuer_key_id.as_str(),
            nonce: self.nonce.to_hex(),
            verifier_id: self.verifier_id.as_str(),
            disclosed: OrderedClaims(&self.disclosed),
            proof: URL_SAFE_NO_PAD.encode(self.proof.as_bytes()),
        };
        // Serializing strings and integers into a String cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses untrusted bytes. Never panics; each kind of bad input has its own
    /// error (`oversized_input`, `malformed_presentation`, `unsupported_schema`,
    /// `invalid_identifier`, `invalid_claim`, `malformed_proof`, `truncated_proof`).
    pub fn parse(bytes: &[u8]) -> Result<Self, CredentialError> {
        if bytes.len() > MAX_PRESENTATION_BYTES {
            return Err(CredentialError::Oversized {
                max: MAX_PRESENTATION_BYTES,
            });
        }
        let wire: WireIn = serde_json::from_slice(bytes)
            .map_err(|_| CredentialError::MalformedPresentation("not a presentation object"))?;
        let schema_version = SchemaVersion::new(wire.schema_version)?;
        let issuer_key_id = IssuerKeyId::new(&wire.issuer_key_id)?;
        let nonce = Nonce::from_hex(&wire.nonce)?;
        let verifier_id = VerifierId::new(&wire.verifier_id)?;
        let mut disclosed = BTreeMap::new();
        for (name, value) in wire.disclosed.0 {
            let name = ClaimName::parse(&name)
                .ok_or(CredentialError::MalformedPresentation("unknown claim"))?;
            disclosed.insert(name, ClaimValue::parse(name, &value)?);
        }
        let proof_bytes = URL_SAFE_NO_PAD
            .decode(wire.proof.as_bytes())
            .map_err(|_| CredentialError::MalformedProof("not base64url without padding"))?;
        let proof = BbsProof::from_bytes(&proof_bytes)?;
        Self::new(
            schema_version,
            issuer_key_id,
            nonce,
            verifier_id,
            disclosed,
            proof,
        )
    }
}

/// The proof must hide exactly the claims that are not disclosed.
pub(crate) fn check_proof_size(
    version: SchemaVersion,
    disclosed: &BTreeMap<ClaimName, ClaimValue>,
    proof: &BbsProof,
) -> Result<(), CredentialError> {
    let schema = CredentialSchema::for_version(version);
    if disclosed.keys().any(|n| schema.index_of(*n).is_none()) {
        return Err(CredentialError::MalformedPresentation(
            "claim not in the schema",
        ));
    }
    let hidden = schema.message_count() - disclosed.len();
    match proof.undisclosed_count().cmp(&hidden) {
        std::cmp::Ordering::Less => Err(CredentialError::TruncatedProof),
        std::cmp::Ordering::Greater => Err(CredentialError::MalformedProof(
            "the proof hides more messages than the credential has",
        )),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    schema_version: u16,
    issuer_key_id: &'a str,
    nonce: String,
    verifier_id: &'a str,
    disclosed: OrderedClaims<'a>,
    proof: String,
}

/// Disclosed claims as a JSON object, in schema order.
pub(crate) struct OrderedClaims<'a>(pub &'a BTreeMap<ClaimName, ClaimValue>);

impl Serialize for OrderedClaims<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    schema_version: u16,
    issuer_key_id: String,
    nonce: String,
    verifier_id: String,
    disclosed: StrictMap,
    proof: String,
}

/// A JSON object of strings that refuses duplicate keys (serde_json would keep
/// the last one) and more entries than the schema has claims.
pub(crate) struct StrictMap(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for StrictMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of claim names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictMap, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom("duplicate claim"));
                    }
                    if out.len() >= ClaimName::ALL.len() + ClaimName::ORG.len() {
                        return Err(serde::de::Error::custom("too many claims"));
                    }
                    out.push((k, v));
                }
                Ok(StrictMap(out))
            }
        }
        d.deserialize_map(V)
    }
}
