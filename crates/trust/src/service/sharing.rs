//! Cross-selling: a member's consent to one co-op's receipts about them going
//! to another, its signed receipts, and the partner's reading of them under
//! its own pseudonym (the transcryptors refuse without a grant the node signs
//! per consent).

use super::receipts::day_string;
use super::*;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharingView {
    #[schema(value_type = String)]
    pub id: SharingId,
    #[schema(value_type = String)]
    pub from: OrgId,
    #[schema(value_type = String)]
    pub to: OrgId,
    pub purpose: String,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    pub withdrawn: bool,
    /// The consent receipt for its latest event (given or withdrawn): a
    /// compact JWS signed by the node key, in the same format as every other
    /// consent's (`me2b consent verify-receipt` checks it offline). The
    /// controller is the co-op that receives the receipts, the subject your
    /// pseudonym there; the notice's hash covers the plain-language text,
    /// which names both co-ops.
    pub receipt: String,
}

/// One member's receipts as a partner co-op receives them, with the member's
/// card for the partner (which only the partner can open, to its own
/// pseudonym for them).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharedMember {
    pub card: String,
    pub receipts: Vec<SharedReceipt>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharedReceipt {
    pub day: String,
    pub area: String,
    pub amount_cents: i64,
    pub items: Vec<ItemIn>,
}

const DELIVERY: &str = " under sharing consent ";

/// The audit object of one cross-sell delivery: how many receipts, from
/// whom, under which sharing consent. [`delivery_of`] reads it back.
fn delivery_object(receipts: usize, from: OrgId, sharing: SharingId) -> String {
    format!("{receipts} receipts from {from}{DELIVERY}{sharing}")
}

/// Reads a cross-sell delivery's audit object: (receipts, sharing consent id).
pub fn delivery_of(object: &str) -> Option<(usize, &str)> {
    let (what, sharing) = object.rsplit_once(DELIVERY)?;
    let receipts = what.split(' ').next()?.parse().ok()?;
    Some((receipts, sharing))
}

impl Trust {
    /// The member consents to `from` sharing its receipts about them with `to`.
    #[tracing::instrument(skip_all)]
    pub async fn share(
        &self,
        member: MemberId,
        from: OrgId,
        to: OrgId,
        purpose: &str,
        days: i64,
    ) -> Result<SharingView, TrustError> {
        if purpose != CROSS_SELL {
            return Err(TrustError::Invalid(
                "the only sharing purpose is `cross-sell`",
            ));
        }
        if from == to {
            return Err(TrustError::Invalid(
                "sharing is between two different co-ops",
            ));
        }
        if !(1..=self.inner.governance.max_sharing_days).contains(&days) {
            return Err(TrustError::Invalid(
                "a sharing consent runs from 1 day to the trust's maximum (365 days unless its governance says otherwise)",
            ));
        }
        self.require_org(from).await?;
        self.require_org(to).await?;
        let now = self.inner.clock.now();
        // The member's research tag, found now, in their session: deliveries
        // use it without moving their pseudonym out of the origin again.
        let research = self
            .pseudonym_in(member, Domain::Research, MemberRequest::Share)
            .await?;
        let row = TrustSharingRow {
            research_tag: Some(self.tag(Domain::Research, &research)),
            id: SharingId::generate(self.inner.random.as_ref()),
            member,
            from_org: from,
            to_org: to,
            purpose: purpose.to_owned(),
            created_at: now,
            expires_at: Timestamp::from_unix_millis(
                now.unix_millis().saturating_add(days * MS_PER_DAY),
            ),
            withdrawn_at: None,
        };
        self.inner.store.insert_trust_sharing(&row).await?;
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustSharing)
                    .subject(member)
                    .object(format!("give {} ({from} -> {to})", row.id))
                    .terms("marketing", "purchases-and-spending-habit", "transfer"),
            )
            .await?;
        self.sharing_view(&row).await
    }

    /// The signed receipt of a sharing consent's latest event.
    pub(super) async fn sharing_receipt(&self, r: &TrustSharingRow) -> Result<String, TrustError> {
        use me2b_consent::receipt::{sign, CitedTerm, Controller, Notice, ReceiptClaims};
        use me2b_consent::vocabulary::{Section, Vocabulary};
        use me2b_consent::{ConsentStatus, Method};
        use sha2::Digest as _;
        static VOCABULARY: std::sync::OnceLock<Option<Vocabulary>> = std::sync::OnceLock::new();
        let vocab = VOCABULARY
            .get_or_init(|| Vocabulary::shipped().ok())
            .as_ref();
        let cite = |section, id: &str| CitedTerm {
            id: id.to_owned(),
            iri: vocab
                .and_then(|v| v.term(section, id))
                .map(|t| t.iri.clone())
                .unwrap_or_default(),
        };
        let (from, to) = (
            self.org_name(r.from_org).await?,
            self.org_name(r.to_org).await?,
        );
        let notice = format!(
            "{from} may share the receipts it holds about you with {to} through the data trust, under {to}'s own pseudonym for you, for cross-selling, until {}.",
            r.expires_at.to_rfc3339()
        );
        let withdrawn = r.withdrawn_at.is_some();
        let version = if withdrawn { 2 } else { 1 };
        let keys = &self.inner.keys;
        let claims = ReceiptClaims {
            version: "me2b-consent-receipt/1".into(),
            receipt_id: format!("{}.{version}", r.id),
            event: if withdrawn {
                ConsentStatus::Withdrawn
            } else {
                ConsentStatus::Given
            },
            consent_id: r.id.to_string(),
            consent_version: version,
            controller: Controller {
                id: r.to_org.to_string(),
                name: to,
            },
            subject: keys.subject_pseudonym(&r.to_org, &r.member),
            purposes: vec![cite(Section::Purpose, "marketing")],
            categories: vec![cite(Section::Category, "purchases-and-spending-habit")],
            processing: vec![cite(Section::Processing, "transfer")],
            legal_basis: cite(Section::LegalBasis, "consent"),
            method: Method::Api,
            notice: Notice {
                version: "trust-sharing/1".into(),
                sha256: hex::encode(sha2::Sha256::digest(notice.as_bytes())),
            },
            given_at: r.created_at.to_rfc3339(),
            expires_at: r.expires_at.to_rfc3339(),
            withdrawn_at: r.withdrawn_at.map(Timestamp::to_rfc3339),
            issued_at: self.inner.clock.now().to_rfc3339(),
            issuer: format!("me2b node {}", keys.verifying_key().key_id()),
        };
        Ok(sign(keys, &claims))
    }

    pub(super) async fn sharing_view(
        &self,
        r: &TrustSharingRow,
    ) -> Result<SharingView, TrustError> {
        Ok(SharingView {
            id: r.id,
            from: r.from_org,
            to: r.to_org,
            purpose: r.purpose.clone(),
            expires_at: r.expires_at,
            withdrawn: r.withdrawn_at.is_some(),
            receipt: self.sharing_receipt(r).await?,
        })
    }

    /// Withdraws a sharing consent: durable before this returns.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw_sharing(
        &self,
        member: MemberId,
        id: SharingId,
    ) -> Result<(), TrustError> {
        if !self
            .inner
            .store
            .withdraw_trust_sharing(id, member, self.inner.clock.now())
            .await?
        {
            return Err(TrustError::NotFound("sharing consent"));
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustSharing)
                    .subject(member)
                    .object(format!("withdraw {id}")),
            )
            .await?;
        Ok(())
    }

    /// The member's sharing consents, each with its signed receipt (no
    /// transcryptor needed).
    pub async fn sharing_of(&self, member: MemberId) -> Result<Vec<SharingView>, TrustError> {
        let mut out = Vec::new();
        for r in self.inner.store.trust_sharing_of_member(member).await? {
            out.push(self.sharing_view(&r).await?);
        }
        Ok(out)
    }

    /// Receipts `from` holds about members who consented to share them with
    /// `to`, each under `to`'s own pseudonym for the member.
    #[tracing::instrument(skip_all)]
    pub async fn shared_with(
        &self,
        to: OrgId,
        from: OrgId,
    ) -> Result<Vec<SharedMember>, TrustError> {
        let now = self.inner.clock.now();
        let grants = self
            .inner
            .store
            .trust_sharing_between(from, to, now)
            .await?;
        let (from_d, to_d) = (Domain::Coop(from), Domain::Coop(to));
        let mut out = Vec::new();
        let mut delivered = Vec::new();
        for g in &grants {
            // Consents given before research tags were kept deliver nothing
            // until the member gives them again.
            let Some(tag) = g.research_tag else { continue };
            let receipts = self.inner.store.trust_receipts_of(from, &tag).await?;
            let Some(first) = receipts.first() else {
                continue;
            };
            // One of the member's receipts at `from` moved into `to`'s domain
            // is their card there, which only `to` can open.
            let item = Item {
                ct: EncryptedPseudonym::from_slice(&first.source_ct)
                    .ok_or(TrustError::MalformedCiphertext)?,
                key: self.coop_key(from).await?,
            };
            let grant = Grant {
                v: 1,
                consent: g.id.to_string(),
                purpose: g.purpose.clone(),
                from: from_d.to_string(),
                to: to_d.to_string(),
                expires_at_ms: g.expires_at.unix_millis(),
            }
            .sign(&self.inner.keys);
            let moved = self
                .chain(Requester::Coop(to), from_d, to_d, Some(grant), vec![item])
                .await?;
            let card = moved
                .first()
                .map(|i| card_text(&i.ct))
                .ok_or(TrustError::MalformedCiphertext)?;
            delivered.push((g.member, g.id, receipts.len()));
            out.push(SharedMember {
                card,
                receipts: receipts
                    .iter()
                    .map(|r| SharedReceipt {
                        day: day_string(r.day),
                        area: r.area.clone(),
                        amount_cents: r.amount_cents,
                        items: r
                            .items
                            .iter()
                            .map(|(c, a)| ItemIn {
                                category: self
                                    .inner
                                    .by_id
                                    .get(c)
                                    .and_then(|i| self.inner.categories.get(*i))
                                    .map(|c| c.slug.clone())
                                    .unwrap_or_default(),
                                amount_cents: *a,
                            })
                            .collect(),
                    })
                    .collect(),
            });
        }
        // One entry per member whose receipts go (the member reads it in
        // their own audit trail and transparency view), and one summary.
        let mut events: Vec<AuditEvent> = delivered
            .iter()
            .map(|(member, sharing, n)| {
                AuditEvent::new(Actor::Organisation(to), Action::TrustCrossSell)
                    .subject(*member)
                    .object(delivery_object(*n, from, *sharing))
                    .terms("marketing", "purchases-and-spending-habit", "transfer")
            })
            .collect();
        events.push(
            AuditEvent::new(Actor::Organisation(to), Action::TrustCrossSell)
                .object(format!("from {from}: {} members", out.len()))
                .terms("marketing", "purchases-and-spending-habit", "transfer"),
        );
        self.inner.audit.record_all(events).await?;
        Ok(out)
    }

    /// Tries to move one co-op's pseudonyms into another's domain without a
    /// grant. The transcryptors refuse; used to show (and test) that they do.
    pub async fn transcrypt_without_consent(
        &self,
        from: OrgId,
        to: OrgId,
    ) -> Result<(), TrustError> {
        let key = self.coop_key(from).await?;
        let mut rng = self.rng();
        let item = Item {
            ct: crate::pseudonym::encrypt_to(&Pseudonym::random(&mut rng), &key, &mut rng),
            key,
        };
        self.chain(
            Requester::Coop(to),
            Domain::Coop(from),
            Domain::Coop(to),
            None,
            vec![item],
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_objects_read_back() {
        let org: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        let id: SharingId = "6f1c1e2a-0000-4000-8000-000000000002".parse().unwrap();
        let o = delivery_object(3, org, id);
        assert_eq!(delivery_of(&o), Some((3, id.to_string().as_str())));
        assert_eq!(delivery_of("from x: 3 members"), None);
    }
}
