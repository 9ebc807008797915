//! Organisations' credentials (schema version 2) and the proofs that open an
//! intent's credential audience to an organisation.
//!
//! 1. An organisation with the `credentials` role **vouches** for another
//!    organisation: a certification of the federation's list
//!    ([`me2b_domain::org::CERTIFICATIONS`]) and/or membership of the
//!    federation. The node signs the attestation with the federation's BBS
//!    key (the same code as members' credentials, schema 2: issuer, type,
//!    federation, subject, validity epoch, certification, federation member)
//!    and keeps it sealed for the organisation it is about, which can fetch
//!    it and present it offline.
//! 2. To see intents of a credential audience, the organisation asks the node
//!    for an **audience challenge** (a fresh nonce, single use, ten minutes,
//!    kept for this organisation alone) and answers it with a **presentation**
//!    that discloses only the required claim, the issuer, the subject (itself)
//!    and the validity epoch. The node verifies it, consumes the nonce, and
//!    stores the **outcome** (issuer, claim, value, until when), never the
//!    presentation. A replayed presentation finds no challenge; one lent to
//!    another organisation finds no challenge of that organisation, and a
//!    credential lent to it names another subject.
//! 3. The outcome opens the audience's intents to the organisation **for a
//!    feed session**: 24 hours at most, and never past the credential's
//!    validity epoch (see README, Intents).

use super::verify::Taken;
use super::{bbs, cpu, Credentials, ServiceError, CHALLENGE_TTL_SECONDS};
use crate::credential::OrgCredential;
use crate::presentation::VerifierId;
use crate::schema::{ClaimName, ClaimText, Epoch, OrgClaims, EPOCH_LENGTH_SECONDS};
use crate::verifier::{verify_presentation, Challenge, StatusLists};
use crate::CredentialError;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::org::{AUDIENCE_CLAIMS, CERTIFICATIONS};
use me2b_domain::{OrgId, Timestamp};
use me2b_storage::{AudienceProofRow, CredentialChallengeRow, OrgCredentialRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// How long a proof opens an audience's intents, at most.
pub const AUDIENCE_PROOF_SECONDS: i64 = 24 * 3600;
/// The label organisations' credentials are sealed under.
const ORG_SEAL_LABEL: &str = "org-credential";
const HOUR_MS: i64 = 3_600_000;

/// The verifier id of the node's audience challenges for `org`.
fn audience_verifier(org: OrgId) -> String {
    format!("me2b-intents:{org}")
}

/// What an issuer vouches for about another organisation.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgCredentialRequest {
    /// The organisation it is about (an id of this node).
    pub organisation: String,
    /// A certification of the federation's list (`fair-trade`, `organic`,
    /// `b-corp`, `repair-certified`, `halal`, `kosher`, `medical-device`).
    #[serde(default)]
    pub certification: Option<String>,
    /// Whether the organisation is a member of the federation.
    #[serde(default)]
    pub federation_member: bool,
}

/// An organisation's credential as the node keeps it for its holder.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeldOrgCredential {
    /// 32 hexadecimal digits.
    pub id: String,
    /// The organisation that vouched.
    pub issuer: String,
    pub issuer_name: Option<String>,
    /// The organisation it is about.
    pub subject: String,
    /// Every claim, by name.
    pub claims: BTreeMap<String, String>,
    /// End of its validity epoch (RFC 3339); the federation's period, the
    /// same for every credential issued in it.
    pub valid_until: String,
    /// `valid` or `expired`.
    pub status: &'static str,
    /// The credential itself (schema 2), for its holder only: present it
    /// offline with the federation's key from `/.well-known/me2b/issuers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// The claim an organisation will prove to see a credential audience's
/// intents.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceChallengeRequest {
    /// `certification` or `federation_member`.
    pub claim: String,
    /// A certification of the federation's list, or `true`.
    pub value: String,
    /// Only a credential from this organisation (an audience that names its
    /// issuer). Default: any issuer, which the presentation still discloses.
    #[serde(default)]
    pub issuer: Option<String>,
}

/// What a presentation proved: the node keeps this, not the presentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProvenAudience {
    /// The organisation that vouched.
    pub issuer: String,
    pub claim: String,
    pub value: String,
    /// Until when (Unix ms, a whole hour) intents of this audience are open
    /// to the organisation: 24 hours at most, never past the credential's
    /// validity epoch. Prove again after.
    pub valid_until: i64,
}

impl From<AudienceProofRow> for ProvenAudience {
    fn from(r: AudienceProofRow) -> Self {
        Self {
            issuer: r.issuer.to_string(),
            claim: r.claim,
            value: r.value,
            valid_until: r.valid_until.unix_millis(),
        }
    }
}

/// The end of epoch `e` (the start of the next one).
fn epoch_end(e: Epoch) -> Timestamp {
    Timestamp::from_unix_millis(
        (i64::from(e.get()) + 1)
            .saturating_mul(EPOCH_LENGTH_SECONDS)
            .saturating_mul(1000),
    )
}

/// An audience claim and value of the federation's list.
fn audience_claim(claim: &str, value: &str) -> Result<ClaimName, ServiceError> {
    let name =
        match claim {
            "certification" if CERTIFICATIONS.contains(&value) => ClaimName::Certification,
            "federation_member" if value == "true" => ClaimName::FederationMember,
            _ if !AUDIENCE_CLAIMS.contains(&claim) => {
                return Err(ServiceError::Invalid(
                    "claim is certification or federation_member",
                ))
            }
            _ => return Err(ServiceError::Invalid(
                "value is a certification of the federation's list, or true for federation_member",
            )),
        };
    Ok(name)
}

fn parse_org(raw: &str, what: &'static str) -> Result<OrgId, ServiceError> {
    OrgId::from_str(raw).map_err(|_| ServiceError::Invalid(what))
}

impl Credentials {
    /// `issuer` vouches for another organisation of this node: the node
    /// signs the attestation with the federation's key and keeps it for the
    /// organisation it is about. The validity is the federation's period.
    #[tracing::instrument(skip_all)]
    pub async fn issue_org_credential(
        &self,
        issuer: OrgId,
        req: &OrgCredentialRequest,
    ) -> Result<HeldOrgCredential, ServiceError> {
        self.live_org(issuer).await?;
        let subject = parse_org(&req.organisation, "organisation is an organisation id")?;
        if subject == issuer {
            return Err(ServiceError::Invalid(
                "an organisation cannot vouch for itself",
            ));
        }
        match self.live_org(subject).await {
            Err(ServiceError::NotFound(_)) => {
                return Err(ServiceError::Invalid(
                    "organisation is not an organisation of this node",
                ))
            }
            other => other?,
        };
        let certification = match &req.certification {
            Some(c) if CERTIFICATIONS.contains(&c.as_str()) => Some(ClaimText::new(c)?),
            Some(_) => {
                return Err(ServiceError::Invalid(
                    "certification is one of the federation's list",
                ))
            }
            None => None,
        };
        if certification.is_none() && !req.federation_member {
            return Err(ServiceError::Invalid(
                "a credential vouches for a certification or federation membership",
            ));
        }
        let now = self.inner.clock.now();
        self.inner.store.purge_org_credentials(now).await?;
        let claims = OrgClaims {
            issuer,
            federation: self.inner.settings.federation.clone(),
            subject,
            validity_epoch: self.inner.settings.period.validity_epoch(now),
            certification,
            federation_member: req.federation_member,
        };
        let key = self.federation_key().await?;
        let credential = cpu(move || key.issue_org(bbs(), claims)).await?;
        let json = serde_json::to_vec(&credential).map_err(|_| ServiceError::Corrupt)?;
        let mut id = [0u8; 16];
        self.inner.random.fill(&mut id);
        let row = OrgCredentialRow {
            id,
            org: subject,
            issuer,
            sealed: self.inner.keys.seal_node_secret(
                ORG_SEAL_LABEL,
                &json,
                self.inner.random.as_ref(),
            ),
            valid_until: epoch_end(credential.claims.validity_epoch),
            created_at: now,
        };
        self.inner.store.insert_org_credential(&row).await?;
        self.record(
            AuditEvent::new(Actor::Organisation(issuer), Action::CredentialIssue).object(subject),
        )
        .await?;
        let mut held = self.held_org(&row, &credential, now).await;
        held.credential = None;
        Ok(held)
    }

    async fn held_org(
        &self,
        row: &OrgCredentialRow,
        c: &OrgCredential,
        now: Timestamp,
    ) -> HeldOrgCredential {
        HeldOrgCredential {
            id: hex::encode(row.id),
            issuer: row.issuer.to_string(),
            issuer_name: self.live_org(row.issuer).await.ok(),
            subject: row.org.to_string(),
            claims: ClaimName::ORG
                .iter()
                .map(|n| {
                    (
                        n.as_str().to_owned(),
                        c.claims.value(*n).as_str().to_owned(),
                    )
                })
                .collect(),
            valid_until: row.valid_until.to_rfc3339(),
            status: if row.valid_until > now {
                "valid"
            } else {
                "expired"
            },
            credential: serde_json::to_value(c).ok(),
        }
    }

    fn open_org(&self, row: &OrgCredentialRow) -> Result<OrgCredential, ServiceError> {
        let plain = self
            .inner
            .keys
            .open_node_secret(ORG_SEAL_LABEL, &row.sealed)
            .map_err(|_| ServiceError::Corrupt)?;
        serde_json::from_slice(&plain).map_err(|_| ServiceError::Corrupt)
    }

    /// The credentials other organisations vouched for about `org`.
    #[tracing::instrument(skip_all)]
    pub async fn org_credentials(
        &self,
        org: OrgId,
    ) -> Result<Vec<HeldOrgCredential>, ServiceError> {
        let now = self.inner.clock.now();
        let mut out = Vec::new();
        for row in self.inner.store.org_credentials(org).await? {
            let c = self.open_org(&row)?;
            out.push(self.held_org(&row, &c, now).await);
        }
        Ok(out)
    }

    /// A challenge for `org` to prove `claim = value` (from `issuer`, when
    /// named): single use, ten minutes, kept for this organisation alone.
    #[tracing::instrument(skip_all)]
    pub async fn audience_challenge(
        &self,
        org: OrgId,
        req: &AudienceChallengeRequest,
    ) -> Result<serde_json::Value, ServiceError> {
        self.live_org(org).await?;
        let name = audience_claim(&req.claim, &req.value)?;
        let key = self.federation_key().await?;
        let mut c = Challenge::new(
            self.inner.random.as_ref(),
            VerifierId::new(&audience_verifier(org))?,
        )
        .accept_key(key.key_id().clone())
        .require_value(ClaimName::Subject, &org.to_string())?
        .require_value(name, &req.value)?;
        c = match &req.issuer {
            Some(i) => c.require_issuer_in([parse_org(i, "issuer is an organisation id")?]),
            None => c.require_claim(ClaimName::Issuer),
        };
        let now = self.inner.clock.now();
        self.inner.store.purge_expired_credentials(now).await?;
        let json = c.to_json();
        self.inner
            .store
            .insert_credential_challenge(&CredentialChallengeRow {
                nonce: *c.nonce().as_bytes(),
                org_id: org,
                challenge_json: json.clone().into_bytes(),
                created_at: now,
                expires_at: now.plus_seconds(CHALLENGE_TTL_SECONDS),
            })
            .await?;
        serde_json::from_str(&json).map_err(|_| ServiceError::Corrupt)
    }

    /// Answers `challenge` with the organisation's credential `id` (kept by
    /// the node), disclosing only what the challenge needs.
    #[tracing::instrument(skip_all)]
    pub async fn present_org(
        &self,
        org: OrgId,
        id: &str,
        challenge: &[u8],
    ) -> Result<serde_json::Value, ServiceError> {
        let mut raw = [0u8; 16];
        if id.len() != 32 || hex::decode_to_slice(id, &mut raw).is_err() {
            return Err(ServiceError::NotFound("credential"));
        }
        let row = self
            .inner
            .store
            .org_credential(org, &raw)
            .await?
            .ok_or(ServiceError::NotFound("credential"))?;
        let challenge = Challenge::parse(challenge)?;
        self.check_challenge(&challenge).await?;
        let credential = self.open_org(&row)?;
        if !challenge
            .accepted_keys()
            .contains(&credential.issuer_key_id)
        {
            return Err(CredentialError::UnknownIssuer.into());
        }
        let p = self
            .present_on_cpu(credential, &challenge, challenge.claims_to_disclose())
            .await?;
        serde_json::from_str(&p.to_json()).map_err(|_| ServiceError::Corrupt)
    }

    /// Checks `org`'s presentation against its own audience challenge, which
    /// it consumes, and stores what it proved (not the presentation).
    #[tracing::instrument(skip_all)]
    pub async fn prove_audience(
        &self,
        org: OrgId,
        presentation: &[u8],
    ) -> Result<ProvenAudience, ServiceError> {
        let result = self.prove_inner(org, presentation).await;
        let event = AuditEvent::new(Actor::Organisation(org), Action::CredentialVerify);
        let event = match &result {
            Ok(p) => event.object(format!("intent audience {}", p.claim)),
            Err(e) => event.object(e.code()).outcome(Outcome::Denied),
        };
        self.record(event).await?;
        result
    }

    async fn prove_inner(
        &self,
        org: OrgId,
        presentation: &[u8],
    ) -> Result<ProvenAudience, ServiceError> {
        // Only the node's audience challenge for this organisation: not one
        // it made as a verifier of members.
        let Taken {
            presentation: p,
            challenge,
            keys,
            now,
            ..
        } = self
            .take_and_check(org, presentation, |c| {
                c.verifier_id().as_str() == audience_verifier(org)
            })
            .await?;
        let epoch = Epoch::containing(now);
        let checked = challenge.clone();
        let v = cpu(move || {
            verify_presentation(bbs(), &checked, &p, &keys, &StatusLists::new(), epoch)
        })
        .await?;
        let issuer = v.issuer().ok_or(CredentialError::UnknownIssuer)?;
        match self.live_org(issuer).await {
            Err(ServiceError::NotFound(_)) => return Err(CredentialError::UnknownIssuer.into()),
            other => other?,
        };
        let (name, value) = [ClaimName::Certification, ClaimName::FederationMember]
            .into_iter()
            .find_map(|n| {
                challenge
                    .required_values()
                    .get(&n)
                    .map(|v| (n, v.as_str().to_owned()))
            })
            .ok_or(ServiceError::UnknownChallenge)?;
        let proven_epoch = v
            .get(ClaimName::ValidityEpoch)
            .and_then(|e| e.parse::<u32>().ok())
            .map(Epoch::new)
            .ok_or(CredentialError::MissingClaim(ClaimName::ValidityEpoch))?;
        let until = epoch_end(proven_epoch).min(now.plus_seconds(AUDIENCE_PROOF_SECONDS));
        let until = Timestamp::from_unix_millis(until.unix_millis().div_euclid(HOUR_MS) * HOUR_MS);
        if until <= now {
            return Err(CredentialError::Expired.into());
        }
        let proof = AudienceProofRow {
            org,
            issuer,
            claim: name.as_str().to_owned(),
            value,
            valid_until: until,
        };
        self.inner.store.put_audience_proof(&proof).await?;
        Ok(proof.into())
    }

    /// What `org` proved and may still use.
    pub async fn audience_proofs(&self, org: OrgId) -> Result<Vec<ProvenAudience>, ServiceError> {
        let now = self.inner.clock.now();
        Ok(self
            .inner
            .store
            .audience_proofs(org, now)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
