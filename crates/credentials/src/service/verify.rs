//! Verifying: challenges, the member's presentations, their verification
//! through the node, and what the node publishes for offline verifiers.

use super::{
    bbs, cpu, ChallengeRequest, Credentials, Disclosure, IssuerDocument, Presented, Preview,
    PublishedCoop, PublishedIssuer, ServiceError, Verified, CHALLENGE_TTL_SECONDS,
    MAX_CHALLENGE_ISSUERS, STATUS_LIST_ENTRIES,
};
use crate::bbs::BbsPublicKey;
use crate::credential::{Credential, IssuerKeyId};
use crate::presentation::{Presentation, VerifierId};
use crate::schema::{ClaimName, Epoch, StatusIndex};
use crate::status::{BitstringStatusList, StatusList};
use crate::verifier::{verify_presentation, Challenge, IssuerKeys, StatusLists};
use crate::CredentialError;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::record::RecordContent;
use me2b_domain::{OrgId, RecordId, Timestamp};
use me2b_storage::CredentialChallengeRow;
use me2b_vault::MemberSession;
use std::collections::BTreeSet;
use std::str::FromStr;

/// What a preview and a presentation both start from.
struct Prepared {
    challenge: Challenge,
    credential: Credential,
    disclose: BTreeSet<ClaimName>,
    /// The verifier's name, when it is an organisation of this node.
    verifier: Option<String>,
}

fn status_list_path(key_id: &str) -> String {
    format!("/.well-known/me2b/status/{key_id}")
}

/// A presentation whose challenge was consumed, with what to check it
/// against ([`Credentials::take_and_check`]).
pub(super) struct Taken {
    pub(super) presentation: Presentation,
    pub(super) challenge: Challenge,
    pub(super) keys: IssuerKeys,
    /// The federation's issuer key, if the node has one (in `keys`).
    pub(super) federation: Option<IssuerKeyId>,
    /// When the challenge was taken.
    pub(super) now: Timestamp,
}

impl Credentials {
    /// The co-ops a challenge names: live organisations of this node.
    async fn named_coops(&self, ids: &[String]) -> Result<BTreeSet<OrgId>, ServiceError> {
        if ids.is_empty() {
            return Err(ServiceError::Invalid(
                "`issuers` names at least one co-op; leave it out to accept any co-op of the federation",
            ));
        }
        if ids.len() > MAX_CHALLENGE_ISSUERS {
            return Err(ServiceError::Invalid("`issuers` names at most 64 co-ops"));
        }
        let mut out = BTreeSet::new();
        for id in ids {
            let org = OrgId::from_str(id)
                .map_err(|_| ServiceError::Invalid("an issuer is not an organisation id"))?;
            match self.live_org(org).await {
                Err(ServiceError::NotFound(_)) => {
                    return Err(ServiceError::Invalid(
                        "an issuer is not an organisation of this node",
                    ))
                }
                other => other?,
            };
            out.insert(org);
        }
        Ok(out)
    }

    /// A verifier's challenge, stored so its nonce is used once.
    #[tracing::instrument(skip_all)]
    pub async fn challenge(
        &self,
        org: OrgId,
        req: &ChallengeRequest,
    ) -> Result<serde_json::Value, ServiceError> {
        self.live_org(org).await?;
        let key = self.federation_key().await?;
        let mut c = Challenge::coop_membership(
            self.inner.random.as_ref(),
            VerifierId::new(&org.to_string())?,
            &req.federation,
            [key.key_id().clone()],
        )?;
        if let Some(ids) = &req.issuers {
            c = c.require_issuer_in(self.named_coops(ids).await?);
        }
        for name in &req.claims {
            let n = ClaimName::parse(name).ok_or(ServiceError::Invalid("unknown claim name"))?;
            c = c.require_claim(n);
        }
        if req.status_check {
            c = c.require_status_check();
        }
        let now = self.inner.clock.now();
        // Unanswered challenges do not pile up.
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
        self.record(AuditEvent::new(
            Actor::Organisation(org),
            Action::CredentialChallenge,
        ))
        .await?;
        serde_json::from_str(&json).map_err(|_| ServiceError::Corrupt)
    }

    /// Whether a challenge is one this node may show or answer. A challenge
    /// that names an organisation of this node must be the one that
    /// organisation made here, open and unaltered (otherwise anyone could
    /// write a challenge in a co-op's name asking for more claims). A
    /// challenge of a verifier on another node is not known here and passes.
    pub async fn check_challenge(&self, challenge: &Challenge) -> Result<(), ServiceError> {
        let local = match challenge.verifier_id().as_str().parse::<OrgId>() {
            Ok(org) => self.inner.store.org(org).await?.is_some(),
            Err(_) => false,
        };
        let now = self.inner.clock.now();
        let stored = self
            .inner
            .store
            .open_credential_challenge(challenge.nonce().as_bytes(), now)
            .await?;
        match stored {
            Some(row) if Challenge::parse(&row.challenge_json).ok().as_ref() == Some(challenge) => {
                Ok(())
            }
            Some(_) => Err(ServiceError::UnknownChallenge),
            None if local => Err(ServiceError::UnknownChallenge),
            None => Ok(()),
        }
    }

    /// The challenge, the credential in record `id` and the claims a
    /// presentation would disclose under `choice`: what both the preview
    /// and the presentation need.
    async fn prepare(
        &self,
        s: &MemberSession,
        id: RecordId,
        challenge: &[u8],
        choice: &Disclosure,
    ) -> Result<Prepared, ServiceError> {
        let challenge = Challenge::parse(challenge)?;
        let record = self.inner.vault.read_record(s, id).await?;
        self.check_challenge(&challenge).await?;
        let RecordContent::Credential(held) = &record.content else {
            return Err(ServiceError::NotFound("credential"));
        };
        let credential: Credential = serde_json::from_str(held.credential.as_str())
            .map_err(|_| ServiceError::Invalid("the record does not hold a credential"))?;
        if !challenge
            .accepted_keys()
            .contains(&credential.issuer_key_id)
        {
            return Err(CredentialError::UnknownIssuer.into());
        }
        if !challenge.issuers().is_empty()
            && !challenge.issuers().contains(&credential.claims.issuer)
        {
            return Err(CredentialError::ClaimMismatch(ClaimName::Issuer).into());
        }
        let disclose = choice.apply(challenge.claims_to_disclose())?;
        let verifier = match challenge.verifier_id().as_str().parse::<OrgId>() {
            Ok(org) => self.live_org(org).await.ok(),
            Err(_) => None,
        };
        Ok(Prepared {
            challenge,
            credential,
            disclose,
            verifier,
        })
    }

    /// What answering a challenge with the credential in record `id` would
    /// disclose, and how many credentials of its issuer share it (issue 12):
    /// nothing is presented and the challenge stays open.
    #[tracing::instrument(skip_all)]
    pub async fn preview(
        &self,
        s: &MemberSession,
        id: RecordId,
        challenge: &[u8],
        choice: &Disclosure,
    ) -> Result<Preview, ServiceError> {
        let p = self.prepare(s, id, challenge, choice).await?;
        let rarity = self.rarity(&p.credential.claims, &p.disclose).await?;
        let withhold_to_be_common = if rarity.rare {
            self.withhold_to_be_common(&p.credential.claims, &p.disclose)
                .await?
        } else {
            None
        };
        Ok(Preview {
            discloses: p
                .disclose
                .iter()
                .map(|n| {
                    (
                        n.as_str().to_owned(),
                        p.credential.claims.value(*n).as_str().to_owned(),
                    )
                })
                .collect(),
            rarity,
            withhold_to_be_common,
            verifier_id: p.challenge.verifier_id().as_str().to_owned(),
            verifier: p.verifier,
        })
    }

    /// The member answers a challenge with the credential in record `id`,
    /// disclosing what the challenge needs plus `choice.extra`, less
    /// `choice.withhold`. A disclosed set shared by fewer credentials of the
    /// issuer than the federation's threshold is refused
    /// ([`ServiceError::RareDisclosure`]) unless `choice.accept_rare`.
    #[tracing::instrument(skip_all)]
    pub async fn present(
        &self,
        s: &MemberSession,
        id: RecordId,
        challenge: &[u8],
        choice: &Disclosure,
    ) -> Result<Presented, ServiceError> {
        let Prepared {
            challenge,
            credential,
            disclose,
            verifier,
        } = self.prepare(s, id, challenge, choice).await?;
        let rarity = self.rarity(&credential.claims, &disclose).await?;
        if rarity.rare && !choice.accept_rare {
            return Err(ServiceError::RareDisclosure);
        }
        let p = self
            .present_on_cpu(credential, &challenge, disclose)
            .await?;
        self.record(
            AuditEvent::new(Actor::Member(s.member), Action::CredentialPresent)
                .subject(s.member)
                .object(format!("to {}", challenge.verifier_id().as_str())),
        )
        .await?;
        Ok(Presented {
            presentation: serde_json::from_str(&p.to_json()).map_err(|_| ServiceError::Corrupt)?,
            discloses: p
                .disclosed()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
                .collect(),
            verifier_id: challenge.verifier_id().as_str().to_owned(),
            verifier,
            rarity,
        })
    }

    /// Checks a presentation against the verifier's own challenge, which it
    /// consumes: a second presentation with the same nonce is refused.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, org: OrgId, presentation: &[u8]) -> Result<Verified, ServiceError> {
        let result = self.verify_inner(org, presentation).await;
        let event = AuditEvent::new(Actor::Organisation(org), Action::CredentialVerify);
        let event = match &result {
            Ok(v) => event.object(&v.issuer_key_id),
            Err(e) => event.object(e.code()).outcome(Outcome::Denied),
        };
        self.record(event).await?;
        result
    }

    /// The start every presentation's check shares: parses it, consumes
    /// `org`'s challenge named by its nonce (a second use is refused), keeps
    /// it only if `accept` says it is of the right kind (else
    /// `UnknownChallenge`), and loads the federation's issuer key.
    pub(super) async fn take_and_check(
        &self,
        org: OrgId,
        presentation: &[u8],
        accept: impl FnOnce(&Challenge) -> bool,
    ) -> Result<Taken, ServiceError> {
        let p = Presentation::parse(presentation)?;
        let now = self.inner.clock.now();
        let row = self
            .inner
            .store
            .take_credential_challenge(org, p.nonce().as_bytes(), now)
            .await?
            .ok_or(ServiceError::UnknownChallenge)?;
        let challenge = Challenge::parse(&row.challenge_json)?;
        if !accept(&challenge) {
            return Err(ServiceError::UnknownChallenge);
        }
        let mut keys = IssuerKeys::new();
        let mut federation = None;
        if let Some(fed) = self.inner.store.federation_issuer().await? {
            let id = IssuerKeyId::new(&fed.key_id)?;
            keys.insert(id.clone(), BbsPublicKey::from_bytes(&fed.public_key)?);
            federation = Some(id);
        }
        Ok(Taken {
            presentation: p,
            challenge,
            keys,
            federation,
            now,
        })
    }

    async fn verify_inner(
        &self,
        org: OrgId,
        presentation: &[u8],
    ) -> Result<Verified, ServiceError> {
        let Taken {
            presentation: p,
            challenge,
            keys,
            federation,
            now,
        } = self.take_and_check(org, presentation, |_| true).await?;
        let mut lists = StatusLists::new();
        if let Some(id) = federation {
            if challenge.status_check() && &id == p.issuer_key_id() {
                lists.insert(id, self.status_list_of().await?);
            }
        }
        let epoch = Epoch::containing(now);
        let v =
            cpu(move || verify_presentation(bbs(), &challenge, &p, &keys, &lists, epoch)).await?;
        // The co-op is named only when the member disclosed it; a co-op
        // deleted since is not accepted.
        let issuer = match v.issuer() {
            Some(coop) => match self.live_org(coop).await {
                Ok(name) => Some(name),
                Err(ServiceError::NotFound(_)) => return Err(CredentialError::UnknownIssuer.into()),
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(Verified {
            valid: true,
            issuer_key_id: v.issuer_key_id().as_str().to_owned(),
            issuer,
            disclosed: v
                .disclosed()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
                .collect(),
        })
    }

    /// The federation's status list: every co-op's revocations in one list.
    async fn status_list_of(&self) -> Result<StatusList, ServiceError> {
        let mut list = StatusList::with_entries(STATUS_LIST_ENTRIES)?;
        for i in self.inner.store.revoked_credentials().await? {
            list.revoke(StatusIndex::new(i))?;
        }
        Ok(list)
    }

    /// The federation's public key and the co-ops that issue under it, for
    /// `/.well-known/me2b/issuers`.
    pub async fn published(&self) -> Result<IssuerDocument, ServiceError> {
        let issuers = self
            .inner
            .store
            .federation_issuer()
            .await?
            .into_iter()
            .map(|i| PublishedIssuer {
                status_list: status_list_path(&i.key_id),
                federation: self.inner.settings.federation.as_str().to_owned(),
                ciphersuite: bbs().ciphersuite_id().to_owned(),
                public_key: hex::encode(&i.public_key),
                key_id: i.key_id,
            })
            .collect();
        let mut coops = Vec::new();
        for org in self.inner.store.credential_issuing_orgs().await? {
            if let Ok(name) = self.live_org(org).await {
                coops.push(PublishedCoop {
                    organisation: org.to_string(),
                    name,
                });
            }
        }
        let tags = &self.inner.settings.tags;
        let now = self.inner.clock.now().to_rfc3339();
        let this_year = now.get(..4).and_then(|y| y.parse().ok()).unwrap_or(9999);
        Ok(IssuerDocument {
            issuers,
            coops,
            tiers: tags.tiers().map(|t| t.as_str().to_owned()).collect(),
            regions: tags.regions().map(|r| r.as_str().to_owned()).collect(),
            member_since: tags.member_since_years(this_year),
        })
    }

    /// The federation's status list, as a W3C `BitstringStatusList` subject.
    pub async fn status_list(&self, key_id: &str) -> Result<BitstringStatusList, ServiceError> {
        let issuer = self
            .inner
            .store
            .federation_issuer()
            .await?
            .filter(|i| i.key_id == key_id)
            .ok_or(ServiceError::NotFound("issuer key"))?;
        let list = self.status_list_of().await?;
        Ok(list.to_subject(&status_list_path(&issuer.key_id)))
    }
}
