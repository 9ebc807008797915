//! The promo-code verifier: a challenge, and the pure check of a presentation
//! against it. No I/O: the issuer keys and status lists are passed in, so the same
//! code runs in the node's API and fully offline.

use crate::bbs::{Bbs, BbsPublicKey};
use crate::credential::IssuerKeyId;
use crate::presentation::{
    check_proof_size, presentation_header, Nonce, Presentation, StrictMap, VerifierId,
    MAX_PRESENTATION_BYTES,
};
use crate::schema::{ClaimName, ClaimValue, CredentialSchema, Epoch, StatusIndex, COOP_MEMBERSHIP};
use crate::status::StatusList;
use crate::CredentialError;
use me2b_domain::{OrgId, Random};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// What a verifier asks for: a fresh nonce, its own id, the issuer keys it
/// accepts, the co-ops it accepts (or any co-op of the federation), the claims
/// it needs (some with a required value), and whether it checks revocation.
///
/// The validity epoch is always required (the verifier checks expiry). The
/// `issuer` claim is required only when the challenge names co-ops
/// ([`Challenge::require_issuer_in`]): the federation's key signs every
/// co-op's credentials, so a verifier that asks for "a member of a co-op of the
/// federation" never learns which co-op. The status index is required only
/// when `status_check` is on: it is a correlation handle (see `LINKABILITY.md`).
///
/// Wire form ([`Challenge::to_json`], [`Challenge::parse`]):
/// `{"nonce", "verifier_id", "accepted_keys": [key ids], "issuers": [co-op
/// ids; empty for any co-op], "required_values": {claim: value},
/// "required_claims": [claims], "status_check": bool}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Challenge {
    nonce: Nonce,
    verifier_id: VerifierId,
    accepted_keys: BTreeSet<IssuerKeyId>,
    issuers: BTreeSet<OrgId>,
    required_values: BTreeMap<ClaimName, ClaimValue>,
    required_claims: BTreeSet<ClaimName>,
    status_check: bool,
}

impl Challenge {
    /// A challenge with a fresh random nonce that accepts nothing yet.
    pub fn new(rng: &dyn Random, verifier_id: VerifierId) -> Self {
        Self::with_nonce(Nonce::generate(rng), verifier_id)
    }

    /// A challenge with a given nonce (tests, or a nonce the verifier stored).
    pub fn with_nonce(nonce: Nonce, verifier_id: VerifierId) -> Self {
        Self {
            nonce,
            verifier_id,
            accepted_keys: BTreeSet::new(),
            issuers: BTreeSet::new(),
            required_values: BTreeMap::new(),
            required_claims: BTreeSet::new(),
            status_check: false,
        }
    }

    /// "A valid co-op membership in federation `federation`", signed with one
    /// of `keys`; any co-op of the federation (the issuer stays hidden).
    pub fn coop_membership(
        rng: &dyn Random,
        verifier_id: VerifierId,
        federation: &str,
        keys: impl IntoIterator<Item = IssuerKeyId>,
    ) -> Result<Self, CredentialError> {
        let mut c = Self::new(rng, verifier_id)
            .require_value(ClaimName::CredentialType, COOP_MEMBERSHIP)?
            .require_value(ClaimName::Federation, federation)?;
        c.accepted_keys.extend(keys);
        Ok(c)
    }

    /// Accepts credentials signed with this issuer key.
    pub fn accept_key(mut self, key_id: IssuerKeyId) -> Self {
        self.accepted_keys.insert(key_id);
        self
    }

    /// Accepts only credentials issued by one of these co-ops: the member
    /// then discloses the `issuer` claim. Without it any co-op is accepted and
    /// the issuer stays hidden.
    pub fn require_issuer_in(mut self, coops: impl IntoIterator<Item = OrgId>) -> Self {
        self.issuers.extend(coops);
        self
    }

    /// Requires `name` to be disclosed with exactly this value.
    pub fn require_value(mut self, name: ClaimName, value: &str) -> Result<Self, CredentialError> {
        self.required_values
            .insert(name, ClaimValue::parse(name, value)?);
        Ok(self)
    }

    /// Requires `name` to be disclosed, with any value.
    pub fn require_claim(mut self, name: ClaimName) -> Self {
        self.required_claims.insert(name);
        self
    }

    /// Requires the status index, and checks it against the issuer's status list.
    pub fn require_status_check(mut self) -> Self {
        self.status_check = true;
        self
    }

    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    pub fn verifier_id(&self) -> &VerifierId {
        &self.verifier_id
    }

    pub fn accepted_keys(&self) -> &BTreeSet<IssuerKeyId> {
        &self.accepted_keys
    }

    /// The co-ops accepted; empty: any co-op of the federation.
    pub fn issuers(&self) -> &BTreeSet<OrgId> {
        &self.issuers
    }

    pub fn required_values(&self) -> &BTreeMap<ClaimName, ClaimValue> {
        &self.required_values
    }

    pub fn status_check(&self) -> bool {
        self.status_check
    }

    /// The smallest set of claims a presentation must disclose to answer this
    /// challenge: the required ones, the validity epoch, the issuer only if the
    /// challenge names co-ops, and the status index only if a status check is
    /// required. A wallet discloses exactly this by default.
    pub fn claims_to_disclose(&self) -> BTreeSet<ClaimName> {
        let mut out: BTreeSet<ClaimName> = self.required_values.keys().copied().collect();
        out.extend(self.required_claims.iter().copied());
        out.insert(ClaimName::ValidityEpoch);
        if !self.issuers.is_empty() {
            out.insert(ClaimName::Issuer);
        }
        if self.status_check {
            out.insert(ClaimName::StatusIndex);
        }
        out
    }

    /// The JSON the verifier hands to the member.
    pub fn to_json(&self) -> String {
        let wire = ChallengeOut {
            nonce: self.nonce,
            verifier_id: &self.verifier_id,
            accepted_keys: &self.accepted_keys,
            issuers: self.issuers.iter().map(OrgId::to_string).collect(),
            required_values: crate::presentation::OrderedClaims(&self.required_values),
            required_claims: &self.required_claims,
            status_check: self.status_check,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses a challenge (untrusted input on the member's side), strictly and
    /// size-bounded like a presentation.
    pub fn parse(bytes: &[u8]) -> Result<Self, CredentialError> {
        if bytes.len() > MAX_PRESENTATION_BYTES {
            return Err(CredentialError::Oversized {
                max: MAX_PRESENTATION_BYTES,
            });
        }
        let wire: ChallengeIn = serde_json::from_slice(bytes)
            .map_err(|_| CredentialError::MalformedPresentation("not a challenge object"))?;
        let mut c = Self::with_nonce(
            Nonce::from_hex(&wire.nonce)?,
            VerifierId::new(&wire.verifier_id)?,
        );
        for id in wire.accepted_keys {
            c.accepted_keys.insert(IssuerKeyId::new(&id)?);
        }
        for id in wire.issuers {
            // One spelling per co-op: the canonical form of the `issuer` claim.
            let value = ClaimValue::parse(ClaimName::Issuer, &id)?;
            let org = OrgId::from_str(value.as_str()).map_err(|_| {
                CredentialError::MalformedPresentation("an issuer is not an organisation id")
            })?;
            c.issuers.insert(org);
        }
        for (name, value) in wire.required_values.0 {
            let name = ClaimName::parse(&name)
                .ok_or(CredentialError::MalformedPresentation("unknown claim"))?;
            c = c.require_value(name, &value)?;
        }
        for name in wire.required_claims {
            let name = ClaimName::parse(&name)
                .ok_or(CredentialError::MalformedPresentation("unknown claim"))?;
            c.required_claims.insert(name);
        }
        c.status_check = wire.status_check;
        Ok(c)
    }
}

#[derive(Serialize)]
struct ChallengeOut<'a> {
    nonce: Nonce,
    verifier_id: &'a VerifierId,
    accepted_keys: &'a BTreeSet<IssuerKeyId>,
    issuers: Vec<String>,
    required_values: crate::presentation::OrderedClaims<'a>,
    required_claims: &'a BTreeSet<ClaimName>,
    status_check: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeIn {
    nonce: String,
    verifier_id: String,
    accepted_keys: Vec<String>,
    issuers: Vec<String>,
    required_values: StrictMap,
    required_claims: Vec<String>,
    status_check: bool,
}

/// The issuers' public keys the verifier knows, by key id (from the node's
/// well-known document, or configured offline).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IssuerKeys(BTreeMap<IssuerKeyId, BbsPublicKey>);

impl IssuerKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key_id: IssuerKeyId, key: BbsPublicKey) {
        self.0.insert(key_id, key);
    }

    pub fn get(&self, key_id: &IssuerKeyId) -> Option<&BbsPublicKey> {
        self.0.get(key_id)
    }
}

/// The status lists the verifier has, by issuer key id.
#[derive(Clone, Debug, Default)]
pub struct StatusLists(BTreeMap<IssuerKeyId, StatusList>);

impl StatusLists {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key_id: IssuerKeyId, list: StatusList) {
        self.0.insert(key_id, list);
    }

    pub fn get(&self, key_id: &IssuerKeyId) -> Option<&StatusList> {
        self.0.get(key_id)
    }
}

/// What the verifier learned: the issuer key (the federation's, the same for
/// every co-op) and the disclosed claims, nothing else.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedClaims {
    issuer_key_id: IssuerKeyId,
    disclosed: BTreeMap<ClaimName, ClaimValue>,
}

impl VerifiedClaims {
    pub fn issuer_key_id(&self) -> &IssuerKeyId {
        &self.issuer_key_id
    }

    pub fn disclosed(&self) -> &BTreeMap<ClaimName, ClaimValue> {
        &self.disclosed
    }

    pub fn get(&self, name: ClaimName) -> Option<&str> {
        self.disclosed.get(&name).map(ClaimValue::as_str)
    }

    /// The issuing co-op, when the member disclosed it (a challenge that names
    /// co-ops asks for it); `None` for a federation-wide presentation.
    pub fn issuer(&self) -> Option<OrgId> {
        self.get(ClaimName::Issuer)
            .and_then(|v| OrgId::from_str(v).ok())
    }
}

/// Checks a presentation against the verifier's challenge. Cheap checks come
/// first, then the proof; expiry and revocation are judged on proven values only.
///
/// | failure | error |
/// | --- | --- |
/// | made for another nonce or verifier id (a replay) | `wrong_challenge` |
/// | issuer key not accepted by the challenge or not known | `unknown_issuer` |
/// | a needed claim not disclosed | `missing_claim` |
/// | a required value differs, or the issuer is not a co-op the challenge names | `claim_mismatch` |
/// | proof shorter than the undisclosed claims need | `truncated_proof` |
/// | proof fails (a disclosed value, the binding or the proof was altered) | `proof_invalid` |
/// | validity epoch before `current_epoch` | `expired` |
/// | status check required, no list for the issuer | `status_unavailable` |
/// | status bit set | `revoked` |
pub fn verify_presentation(
    bbs: &dyn Bbs,
    challenge: &Challenge,
    presentation: &Presentation,
    issuer_keys: &IssuerKeys,
    status_lists: &StatusLists,
    current_epoch: Epoch,
) -> Result<VerifiedClaims, CredentialError> {
    if presentation.nonce() != challenge.nonce()
        || presentation.verifier_id() != challenge.verifier_id()
    {
        return Err(CredentialError::WrongChallenge);
    }
    let key_id = presentation.issuer_key_id();
    if !challenge.accepted_keys.contains(key_id) {
        return Err(CredentialError::UnknownIssuer);
    }
    let issuer_key = issuer_keys
        .get(key_id)
        .ok_or(CredentialError::UnknownIssuer)?;
    let disclosed = presentation.disclosed();
    for name in challenge.claims_to_disclose() {
        if !disclosed.contains_key(&name) {
            return Err(CredentialError::MissingClaim(name));
        }
    }
    for (name, value) in &challenge.required_values {
        if disclosed.get(name) != Some(value) {
            return Err(CredentialError::ClaimMismatch(*name));
        }
    }
    if !challenge.issuers.is_empty() {
        let issuer = disclosed
            .get(&ClaimName::Issuer)
            .and_then(|v| OrgId::from_str(v.as_str()).ok());
        if !issuer.is_some_and(|org| challenge.issuers.contains(&org)) {
            return Err(CredentialError::ClaimMismatch(ClaimName::Issuer));
        }
    }
    check_proof_size(
        presentation.schema_version(),
        disclosed,
        presentation.proof(),
    )?;

    let schema = CredentialSchema::for_version(presentation.schema_version());
    let mut messages = Vec::with_capacity(disclosed.len());
    for (name, value) in disclosed {
        let index = schema
            .index_of(*name)
            .ok_or(CredentialError::MalformedPresentation(
                "claim not in the schema",
            ))?;
        messages.push((index, CredentialSchema::encode_message(*name, value)));
    }
    messages.sort_by_key(|(i, _)| *i);
    let refs: Vec<(usize, &[u8])> = messages.iter().map(|(i, m)| (*i, m.as_slice())).collect();
    let ph = presentation_header(challenge.nonce(), challenge.verifier_id());
    bbs.proof_verify(
        issuer_key,
        presentation.proof(),
        &schema.header(),
        &ph,
        &refs,
    )
    .map_err(|e| match e {
        CredentialError::TruncatedProof => CredentialError::TruncatedProof,
        CredentialError::MalformedProof(m) => CredentialError::MalformedProof(m),
        _ => CredentialError::ProofInvalid,
    })?;

    let epoch = disclosed
        .get(&ClaimName::ValidityEpoch)
        .and_then(|v| v.as_str().parse::<u32>().ok())
        .map(Epoch::new)
        .ok_or(CredentialError::MissingClaim(ClaimName::ValidityEpoch))?;
    if epoch < current_epoch {
        return Err(CredentialError::Expired);
    }

    if challenge.status_check {
        let index = disclosed
            .get(&ClaimName::StatusIndex)
            .and_then(|v| v.as_str().parse::<u32>().ok())
            .map(StatusIndex::new)
            .ok_or(CredentialError::MissingClaim(ClaimName::StatusIndex))?;
        let list = status_lists
            .get(key_id)
            .ok_or(CredentialError::StatusUnavailable)?;
        if list.is_revoked(index)? {
            return Err(CredentialError::Revoked);
        }
    }

    Ok(VerifiedClaims {
        issuer_key_id: key_id.clone(),
        disclosed: disclosed.clone(),
    })
}
