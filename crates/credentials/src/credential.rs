//! Issuer keys and credentials.

use crate::bbs::{Bbs, BbsPublicKey, BbsSecretKey, BbsSignature};
use crate::presentation::{presentation_header, Nonce, Presentation, VerifierId};
use crate::schema::{ClaimName, ClaimSet, Claims, CredentialSchema, OrgClaims, SchemaVersion};
use crate::CredentialError;
use me2b_domain::Random;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The id under which an issuer publishes a public key, e.g. `federation-bbs-20f4cea4a6106a58`:
/// 1–64 ASCII letters, digits, `.`, `_`, `:` or `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuerKeyId(String);

impl IssuerKeyId {
    pub fn new(s: &str) -> Result<Self, CredentialError> {
        check_identifier(s, 64, "issuer_key_id")?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn check_identifier(
    s: &str,
    max: usize,
    field: &'static str,
) -> Result<(), CredentialError> {
    if s.is_empty() || s.len() > max {
        return Err(CredentialError::InvalidIdentifier {
            field,
            reason: "wrong length",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-' | b'/'))
    {
        return Err(CredentialError::InvalidIdentifier {
            field,
            reason: "only ASCII letters, digits and . _ : - / are allowed",
        });
    }
    Ok(())
}

impl TryFrom<String> for IssuerKeyId {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<IssuerKeyId> for String {
    fn from(id: IssuerKeyId) -> String {
        id.0
    }
}

impl fmt::Display for IssuerKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IssuerKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKeyId({})", self.0)
    }
}

/// An issuer's key pair. The secret key is zeroized on drop and never printed;
/// at rest it is sealed by the caller (`BbsSecretKey::to_bytes`).
#[derive(Debug)]
pub struct IssuerKeyPair {
    key_id: IssuerKeyId,
    secret: BbsSecretKey,
    public: BbsPublicKey,
}

impl IssuerKeyPair {
    /// A fresh key pair.
    pub fn generate(
        bbs: &dyn Bbs,
        key_id: IssuerKeyId,
        rng: &dyn Random,
    ) -> Result<Self, CredentialError> {
        let secret = bbs.key_gen_random(rng)?;
        Self::from_secret(bbs, key_id, secret)
    }

    /// The key pair of a stored secret key.
    pub fn from_secret(
        bbs: &dyn Bbs,
        key_id: IssuerKeyId,
        secret: BbsSecretKey,
    ) -> Result<Self, CredentialError> {
        let public = bbs.public_key(&secret)?;
        Ok(Self {
            key_id,
            secret,
            public,
        })
    }

    pub fn key_id(&self) -> &IssuerKeyId {
        &self.key_id
    }

    pub fn public_key(&self) -> &BbsPublicKey {
        &self.public
    }

    pub fn secret_key(&self) -> &BbsSecretKey {
        &self.secret
    }

    /// Signs `claims` into a credential (schema version 1). The issuer runs its
    /// own membership check before calling this.
    pub fn issue(&self, bbs: &dyn Bbs, claims: Claims) -> Result<Credential, CredentialError> {
        self.sign(bbs, CredentialSchema::v1(), claims)
    }

    /// Signs an organisation's attestation (schema version 2), the same way.
    pub fn issue_org(
        &self,
        bbs: &dyn Bbs,
        claims: OrgClaims,
    ) -> Result<OrgCredential, CredentialError> {
        self.sign(bbs, CredentialSchema::org(), claims)
    }

    fn sign<C: ClaimSet>(
        &self,
        bbs: &dyn Bbs,
        schema: CredentialSchema,
        claims: C,
    ) -> Result<SignedCredential<C>, CredentialError> {
        let messages = claims.messages(&schema);
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signature = bbs.sign(&self.secret, &self.public, &schema.header(), &refs)?;
        Ok(SignedCredential {
            schema_version: schema.version(),
            issuer_key_id: self.key_id.clone(),
            claims,
            signature,
        })
    }
}

/// A credential as its holder keeps it: the claims (`C`: a member's
/// [`Claims`] or an organisation's [`OrgClaims`]), the issuer's BBS
/// signature over them, and the id of the issuer key. One encoding of claims
/// into messages ([`ClaimSet`]) serves signing, verifying and presenting.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCredential<C> {
    pub schema_version: SchemaVersion,
    pub issuer_key_id: IssuerKeyId,
    pub claims: C,
    #[serde(with = "signature_hex")]
    pub signature: BbsSignature,
}

/// A credential as the member's vault keeps it (schema version 1). The
/// signature never leaves the vault; presentations carry proofs instead.
pub type Credential = SignedCredential<Claims>;

/// An organisation's attestation (schema version 2), as the node keeps it
/// for its holder. Presented exactly like a member's credential.
pub type OrgCredential = SignedCredential<OrgClaims>;

mod signature_hex {
    use crate::bbs::BbsSignature;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &BbsSignature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig.as_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BbsSignature, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(s).map_err(|_| serde::de::Error::custom("invalid signature"))?;
        BbsSignature::from_bytes(&bytes).map_err(|_| serde::de::Error::custom("invalid signature"))
    }
}

impl<C: ClaimSet> SignedCredential<C> {
    fn messages(&self) -> (CredentialSchema, Vec<Vec<u8>>) {
        let schema = CredentialSchema::for_version(self.schema_version);
        let messages = self.claims.messages(&schema);
        (schema, messages)
    }

    /// Checks the issuer's signature (the member does this on receipt).
    pub fn verify(&self, bbs: &dyn Bbs, issuer_key: &BbsPublicKey) -> Result<(), CredentialError> {
        let (schema, messages) = self.messages();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        bbs.verify(issuer_key, &self.signature, &schema.header(), &refs)
    }

    /// A presentation for the verifier `verifier_id` and its `nonce`, disclosing
    /// exactly the claims in `disclose` and proving the others without showing
    /// them. Each call draws fresh randomness: two presentations of one credential
    /// are unlinkable beyond what they disclose.
    pub fn present(
        &self,
        bbs: &dyn Bbs,
        issuer_key: &BbsPublicKey,
        nonce: &Nonce,
        verifier_id: &VerifierId,
        disclose: &BTreeSet<ClaimName>,
        rng: &dyn Random,
    ) -> Result<Presentation, CredentialError> {
        let (schema, messages) = self.messages();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut indexes = Vec::with_capacity(disclose.len());
        let mut disclosed = BTreeMap::new();
        for &name in disclose {
            let i = schema
                .index_of(name)
                .ok_or(CredentialError::InvalidDisclosure("claim not in schema"))?;
            indexes.push(i);
            disclosed.insert(name, self.claims.value(name));
        }
        indexes.sort_unstable();
        let ph = presentation_header(nonce, verifier_id);
        let proof = bbs.proof_gen(
            issuer_key,
            &self.signature,
            &schema.header(),
            &ph,
            &refs,
            &indexes,
            rng,
        )?;
        Presentation::new(
            schema.version(),
            self.issuer_key_id.clone(),
            *nonce,
            verifier_id.clone(),
            disclosed,
            proof,
        )
    }
}
