//! Enrolment and cards: a member's polymorphic pseudonym, moved into a
//! co-op's domain (their card there) or one of the trust's own domains; and
//! forgetting an erased member.

use super::*;

impl Trust {
    /// The member's enrolment ciphertext, created on first use.
    #[tracing::instrument(skip_all)]
    pub async fn enrolment(&self, member: MemberId) -> Result<EncryptedPseudonym, TrustError> {
        let stored = match self.inner.store.trust_enrolment(member).await? {
            Some(ct) => ct,
            None => {
                let ct = self.inner.federation.enrol(&mut self.rng());
                let kept = self
                    .inner
                    .store
                    .enrol_trust_member(member, &ct.to_bytes(), self.inner.clock.now())
                    .await?;
                self.inner
                    .audit
                    .record(AuditEvent::new(Actor::Node, Action::TrustEnrol).subject(member))
                    .await?;
                kept
            }
        };
        EncryptedPseudonym::from_slice(&stored).ok_or(TrustError::MalformedCiphertext)
    }

    /// The member's enrolment ciphertext moved into `domain` by every
    /// transcryptor. The transcryptors see the trust as the requester, never
    /// a member id.
    pub(super) async fn moved(
        &self,
        member: MemberId,
        domain: &str,
    ) -> Result<EncryptedPseudonym, TrustError> {
        let item = Item {
            ct: self.enrolment(member).await?,
            key: self.inner.federation.origin_key(),
        };
        let cts = self
            .chain("trust", ORIGIN, domain, None, vec![item])
            .await?;
        cts.first().copied().ok_or(TrustError::MalformedCiphertext)
    }

    /// The member's pseudonym in one of the trust's or a co-op's domains.
    pub(super) async fn pseudonym_in(
        &self,
        member: MemberId,
        domain: &str,
    ) -> Result<Pseudonym, TrustError> {
        let ct = self.moved(member, domain).await?;
        Ok(self.client(domain).await?.decrypt(&ct))
    }

    /// The member's card for a co-op: that co-op's pseudonym for them (64
    /// hex), which the member hands to the co-op like a loyalty card number.
    #[tracing::instrument(skip_all)]
    pub async fn card(&self, member: MemberId, org: OrgId) -> Result<String, TrustError> {
        self.require_org(org).await?;
        self.register_loyalty(member).await?;
        Ok(self.pseudonym_in(member, &coop_domain(org)).await?.to_hex())
    }

    /// Forgets an erased member: their pooled receipts (and what they added
    /// to every aggregate) and their loyalty points. Needs every transcryptor,
    /// to find the member's research and loyalty tags from their enrolment.
    /// Privacy budgets already spent stay spent: those answers were released.
    #[tracing::instrument(skip_all)]
    pub async fn forget(&self, member: MemberId) -> Result<u64, TrustError> {
        if self.inner.store.trust_enrolment(member).await?.is_none() {
            return Ok(0);
        }
        let research = self.pseudonym_in(member, RESEARCH).await?;
        let loyalty = self.pseudonym_in(member, LOYALTY).await?;
        let removed = {
            let _one_at_a_time = self.inner.ingest.lock().await;
            self.inner
                .store
                .trust_forget(
                    &self.tag(RESEARCH, &research),
                    &self.tag(LOYALTY, &loyalty),
                    self.inner.clock.now(),
                )
                .await?
        };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Node, Action::TrustErase)
                    .subject(member)
                    .object(format!(
                        "{removed} receipts and the loyalty balance removed"
                    )),
            )
            .await?;
        Ok(removed)
    }
}
