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
    /// transcryptor, for a request the member made (each transcryptor logs
    /// the node's attestation of it). The transcryptors see the trust as the
    /// requester, never a member id.
    pub(super) async fn moved(
        &self,
        member: MemberId,
        domain: Domain,
        why: MemberRequest,
    ) -> Result<Item, TrustError> {
        let item = Item {
            ct: self.enrolment(member).await?,
            key: self.inner.federation.origin_key(),
        };
        let grant = self.member_request(domain, why);
        let items = self
            .chain(
                Requester::Trust,
                Domain::Origin,
                domain,
                Some(grant),
                vec![item],
            )
            .await?;
        items
            .first()
            .copied()
            .ok_or(TrustError::MalformedCiphertext)
    }

    /// The member's pseudonym in one of the trust's own domains.
    pub(super) async fn pseudonym_in(
        &self,
        member: MemberId,
        domain: Domain,
        why: MemberRequest,
    ) -> Result<Pseudonym, TrustError> {
        let client = self.client(domain).await?;
        let item = self.moved(member, domain, why).await?;
        Ok(client.decrypt(&item.ct))
    }

    /// The member's card for a co-op: their pseudonym in the co-op's domain,
    /// encrypted so that only the co-op can open it (the node holds no co-op
    /// key). The member hands it to the co-op like a loyalty card number; it
    /// looks different every time and opens to the same pseudonym.
    #[tracing::instrument(skip_all)]
    pub async fn card(&self, member: MemberId, org: OrgId) -> Result<String, TrustError> {
        self.require_org(org).await?;
        self.register_loyalty(member, MemberRequest::Card).await?;
        let item = self
            .moved(member, Domain::Coop(org), MemberRequest::Card)
            .await?;
        self.remember_coop_key(org, item.key).await?;
        Ok(card_text(&item.ct))
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
        let research = self
            .pseudonym_in(member, Domain::Research, MemberRequest::Erase)
            .await?;
        let loyalty = self
            .pseudonym_in(member, Domain::Loyalty, MemberRequest::Erase)
            .await?;
        let removed = {
            let _one_at_a_time = self.inner.ingest.lock().await;
            self.inner
                .store
                .trust_forget(
                    &self.tag(Domain::Research, &research),
                    &self.tag(Domain::Loyalty, &loyalty),
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
