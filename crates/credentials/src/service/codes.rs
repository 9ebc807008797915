//! Issuing: one-time codes, their redemption into the vault under the
//! federation's key, revocation, and the member's view of their credentials.

use super::{
    bbs, cpu, CodeIssued, CodeRequest, Credentials, HeldCredential, ServiceError, CODE_TTL_SECONDS,
    STATUS_LIST_ENTRIES,
};
use crate::credential::Credential;
use crate::schema::{
    ClaimName, ClaimText, Claims, Epoch, Interests, MemberSince, StatusIndex, COOP_MEMBERSHIP,
    EPOCH_LENGTH_SECONDS,
};
use me2b_crypto::hash_token;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::record::{CredentialRecord, RecordContent};
use me2b_domain::{OrgId, RecordId, Timestamp};
use me2b_storage::CredentialCodeRow;
use me2b_vault::MemberSession;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Alphabet of one-time codes (Crockford's base32: no I, L, O or U).
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random bytes in a code (120 bits), shown as 24 characters in groups of four.
const CODE_BYTES: usize = 15;
/// Format version of the stored claims of a code.
const CODE_CLAIMS_VERSION: u8 = 2;

/// The claims a code carries, as stored (no personal data beyond what the
/// co-op vouches for). The federation and the validity are the node's, added
/// at redemption.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CodeClaims {
    v: u8,
    tier: ClaimText,
    region: ClaimText,
    member_since: MemberSince,
    interests: Interests,
}

/// The code as shown: 24 characters in six groups of four.
fn format_code(bytes: &[u8; CODE_BYTES]) -> String {
    let mut out = String::with_capacity(29);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(CODE_ALPHABET[((acc >> bits) & 31) as usize]));
            n += 1;
        }
    }
    out
}

/// A typed code normalised: case, spaces and dashes ignored; O read as 0 and
/// I or L as 1 (Crockford's reading rules). `None` if it cannot be a code.
fn normalise_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(24);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if CODE_ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == 24).then_some(out)
}

fn code_hash(normalised: &str) -> [u8; 32] {
    hash_token(normalised)
}

fn claims_map(c: &Claims) -> BTreeMap<String, String> {
    ClaimName::ALL
        .iter()
        .map(|n| (n.as_str().to_owned(), c.value(*n).as_str().to_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// What a member's view of their credentials needs to know once.
struct HeldContext {
    now: Timestamp,
    federation_key: Option<String>,
    revoked: BTreeSet<u32>,
}

impl Credentials {
    /// Creates a one-time code for one of the co-op's members.
    #[tracing::instrument(skip_all)]
    pub async fn create_code(
        &self,
        org: OrgId,
        req: &CodeRequest,
    ) -> Result<CodeIssued, ServiceError> {
        self.live_org(org).await?;
        let settings = &self.inner.settings;
        if req
            .federation
            .as_deref()
            .is_some_and(|f| f != settings.federation.as_str())
        {
            return Err(ServiceError::Invalid(
                "`federation` must be this node's federation (see /.well-known/me2b/issuers)",
            ));
        }
        let interests: Vec<ClaimText> = req
            .interests
            .iter()
            .map(|i| ClaimText::new(i))
            .collect::<Result<_, _>>()?;
        let claims = CodeClaims {
            v: CODE_CLAIMS_VERSION,
            tier: self.tier(&req.tier)?,
            region: self.region(&req.region)?,
            member_since: self.member_since(req.member_since)?,
            interests: self.checked_interests(&interests)?,
        };
        let issuer = self.federation_key().await?;
        let now = self.inner.clock.now();
        self.inner.store.purge_expired_credentials(now).await?;
        let claims_json =
            serde_json::to_vec(&claims).map_err(|_| ServiceError::Invalid("claims"))?;
        // A random index of the federation's list, drawn again while taken
        // (by any co-op).
        for _ in 0..64 {
            let index = StatusIndex::random(self.inner.random.as_ref(), STATUS_LIST_ENTRIES)?;
            let mut bytes = [0u8; CODE_BYTES];
            self.inner.random.fill(&mut bytes);
            let code = format_code(&bytes);
            let row = CredentialCodeRow {
                code_hash: code_hash(&code.replace('-', "")),
                org_id: org,
                claims_json: claims_json.clone(),
                status_index: index.get(),
                created_at: now,
                expires_at: now.plus_seconds(CODE_TTL_SECONDS),
                redeemed_at: None,
            };
            if self.inner.store.insert_credential_code(&row).await? {
                self.record(
                    AuditEvent::new(Actor::Organisation(org), Action::CredentialCode)
                        .object(issuer.key_id()),
                )
                .await?;
                return Ok(CodeIssued {
                    code,
                    status_index: index.get(),
                    issuer_key_id: issuer.key_id().as_str().to_owned(),
                    redeem_before: row.expires_at.to_rfc3339(),
                });
            }
        }
        Err(ServiceError::Invalid("the status list is full"))
    }

    /// One of the federation's tiers, as a claim.
    fn tier(&self, raw: &str) -> Result<ClaimText, ServiceError> {
        let t = self
            .inner
            .settings
            .tags
            .tier(raw)
            .map_err(ServiceError::from)?;
        Ok(ClaimText::new(t.as_str())?)
    }

    /// A year of the federation's `member_since` list, up to this year.
    fn member_since(&self, year: u16) -> Result<MemberSince, ServiceError> {
        let now = self.inner.clock.now().to_rfc3339();
        let this_year = now.get(..4).and_then(|y| y.parse().ok()).unwrap_or(9999);
        Ok(self.inner.settings.tags.member_since(year, this_year)?)
    }

    /// One of the trust's areas, as a claim.
    fn region(&self, raw: &str) -> Result<ClaimText, ServiceError> {
        let r = self
            .inner
            .settings
            .tags
            .region(raw)
            .map_err(ServiceError::from)?;
        Ok(ClaimText::new(r.as_str())?)
    }

    /// Revokes the credential (or unredeemed code) at `index`, if this co-op
    /// made it: another co-op's entry is `not_found`.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, org: OrgId, index: u32) -> Result<(), ServiceError> {
        self.live_org(org).await?;
        let done = self
            .inner
            .store
            .revoke_credential(org, index, self.inner.clock.now())
            .await?;
        self.record(
            AuditEvent::new(Actor::Organisation(org), Action::CredentialRevoke)
                .object(format!("status index {index}"))
                .outcome(if done { Outcome::Ok } else { Outcome::Denied }),
        )
        .await?;
        if done {
            Ok(())
        } else {
            Err(ServiceError::NotFound("status index"))
        }
    }

    /// Redeems a code: the co-op's credential, signed with the federation's
    /// key, goes into the member's vault.
    #[tracing::instrument(skip_all)]
    pub async fn redeem(
        &self,
        s: &MemberSession,
        typed: &str,
    ) -> Result<HeldCredential, ServiceError> {
        let now = self.inner.clock.now();
        let Some(code) = normalise_code(typed) else {
            return Err(ServiceError::UnknownCode);
        };
        let row = self
            .inner
            .store
            .redeem_credential_code(&code_hash(&code), now)
            .await?;
        let Some(row) = row else {
            self.record(
                AuditEvent::new(Actor::Member(s.member), Action::CredentialIssue)
                    .subject(s.member)
                    .outcome(Outcome::Denied),
            )
            .await?;
            return Err(ServiceError::UnknownCode);
        };
        // Nothing is lost: if the credential cannot be made and stored, the
        // code works again.
        let (id, name, credential) = match self.issue_into_vault(s, &row, now).await {
            Ok(done) => done,
            Err(e) => {
                if let Err(undo) = self
                    .inner
                    .store
                    .release_credential_code(&row.code_hash)
                    .await
                {
                    tracing::error!(error = %undo, "a used-up code could not be released");
                }
                return Err(e);
            }
        };
        // Counted for how common its claim values are (issue 12): only now,
        // when a member holds it, and only when their account is old enough
        // (adv8: not a co-op's fakes made this epoch). A failure leaves it
        // uncounted, which only makes presentations look rarer; it is logged.
        if let Err(e) = self.count_combinations(s, &credential.claims, now).await {
            tracing::error!(error = %e, "a redeemed credential could not be counted");
        }
        // The credential is in the member's vault: the node keeps no copy of
        // its claims (issue 13). A failure here leaves them, and is logged.
        if let Err(e) = self
            .inner
            .store
            .forget_credential_claims(&row.code_hash)
            .await
        {
            tracing::error!(error = %e, "a redeemed code's claims could not be cleared");
        }
        self.record(
            AuditEvent::new(Actor::Member(s.member), Action::CredentialIssue)
                .subject(s.member)
                .object(row.org_id),
        )
        .await?;
        let ctx = self.held_context(now).await?;
        Ok(self.held(id, &name, &credential, &ctx))
    }

    /// Signs the code's claims with the federation's key and stores the
    /// credential in the member's vault; returns the record id, the issuing
    /// co-op's name and the credential.
    async fn issue_into_vault(
        &self,
        s: &MemberSession,
        row: &CredentialCodeRow,
        now: Timestamp,
    ) -> Result<(RecordId, String, Credential), ServiceError> {
        let c: CodeClaims =
            serde_json::from_slice(&row.claims_json).map_err(|_| ServiceError::Corrupt)?;
        if c.v != CODE_CLAIMS_VERSION {
            return Err(ServiceError::Corrupt);
        }
        let name = self.live_org(row.org_id).await?;
        // Checked again: the taxonomy may have marked a topic since.
        let interests = self.checked_interests(c.interests.as_slice())?;
        let issuer = self.federation_key().await?;
        let settings = &self.inner.settings;
        let claims = Claims {
            issuer: row.org_id,
            credential_type: ClaimText::new(COOP_MEMBERSHIP)?,
            federation: settings.federation.clone(),
            member_since: c.member_since,
            tier: c.tier,
            region: c.region,
            // The federation's period, the same for everyone issued now.
            validity_epoch: settings.period.validity_epoch(now),
            status_index: StatusIndex::new(row.status_index),
            interests,
        };
        let credential = {
            let issuer = issuer.clone();
            cpu(move || {
                let c = issuer.issue(bbs(), claims)?;
                // The member's side checks the signature before keeping it.
                c.verify(bbs(), issuer.public_key())?;
                Ok(c)
            })
            .await?
        };
        let json = serde_json::to_string(&credential).map_err(|_| ServiceError::Corrupt)?;
        let content = RecordContent::Credential(CredentialRecord {
            issuer: name
                .chars()
                .take(200)
                .collect::<String>()
                .try_into()
                .map_err(|_| ServiceError::Corrupt)?,
            credential: json.try_into().map_err(|_| ServiceError::Corrupt)?,
        });
        let view = self.inner.vault.create_record(s, content).await?;
        Ok((view.id, name, credential))
    }

    async fn held_context(&self, now: Timestamp) -> Result<HeldContext, ServiceError> {
        Ok(HeldContext {
            now,
            federation_key: self
                .inner
                .store
                .federation_issuer()
                .await?
                .map(|r| r.key_id),
            revoked: self
                .inner
                .store
                .revoked_credentials()
                .await?
                .into_iter()
                .collect(),
        })
    }

    fn held(
        &self,
        id: RecordId,
        issuer: &str,
        c: &Credential,
        ctx: &HeldContext,
    ) -> HeldCredential {
        let end_ms = (i64::from(c.claims.validity_epoch.get()) + 1)
            .saturating_mul(EPOCH_LENGTH_SECONDS)
            .saturating_mul(1000);
        let status = if ctx.federation_key.as_deref() != Some(c.issuer_key_id.as_str()) {
            "retired"
        } else if ctx.revoked.contains(&c.claims.status_index.get()) {
            "revoked"
        } else if c.claims.validity_epoch < Epoch::containing(ctx.now) {
            "expired"
        } else {
            "valid"
        };
        HeldCredential {
            id,
            issuer: issuer.to_owned(),
            issuer_key_id: c.issuer_key_id.as_str().to_owned(),
            claims: claims_map(&c.claims),
            valid_until: Timestamp::from_unix_millis(end_ms - 1).to_rfc3339(),
            status,
        }
    }

    /// The member's credentials, from their vault.
    #[tracing::instrument(skip_all)]
    pub async fn held_by(&self, s: &MemberSession) -> Result<Vec<HeldCredential>, ServiceError> {
        let ctx = self.held_context(self.inner.clock.now()).await?;
        let mut out = Vec::new();
        for r in self.inner.vault.all_records(s).await? {
            if let RecordContent::Credential(c) = &r.content {
                let Ok(cred) = serde_json::from_str::<Credential>(c.credential.as_str()) else {
                    continue;
                };
                out.push(self.held(r.id, c.issuer.as_str(), &cred, &ctx));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_read_back_whatever_the_typing() {
        let bytes = [0xA5u8; CODE_BYTES];
        let code = format_code(&bytes);
        assert_eq!(code.len(), 29);
        assert_eq!(code.matches('-').count(), 5);
        let plain = code.replace('-', "");
        assert_eq!(normalise_code(&code).as_deref(), Some(plain.as_str()));
        assert_eq!(
            normalise_code(&code.to_lowercase().replace('-', " ")).as_deref(),
            Some(plain.as_str())
        );
        assert_eq!(
            normalise_code("O0IL-1111-2222-3333-4444-5555").as_deref(),
            Some("001111112222333344445555")
        );
        assert_eq!(normalise_code("short"), None);
        assert_eq!(normalise_code("UUUU-1111-2222-3333-4444-5555"), None);
    }

    proptest! {
        #[test]
        fn every_code_normalises_to_itself(bytes in proptest::array::uniform15(any::<u8>())) {
            let code = format_code(&bytes);
            prop_assert_eq!(normalise_code(&code), Some(code.replace('-', "")));
        }

        #[test]
        fn typed_input_never_panics(s in "\\PC{0,64}") {
            let _ = normalise_code(&s);
        }
    }
}
