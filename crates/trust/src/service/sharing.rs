//! Cross-selling: a member's consent to one co-op's receipts about them going
//! to another, its signed receipts, and the partner's reading of them under
//! its own pseudonym (the transcryptors refuse without a grant the node signs
//! per consent).

use super::receipts::day_string;
use super::*;
use me2b_consent::service::CrossSell;
use me2b_consent::{ConsentRecord, ConsentStatus, Decision, Method};
use me2b_domain::ConsentId;

const SHARING_DAYS: &str =
    "a sharing consent runs from 1 day to the trust's maximum (365 days unless its governance says otherwise)";

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
    /// The consent receipt for its latest event (given or withdrawn): it is a
    /// consent record like every other (listed among your consents, with the
    /// same id), and this is its receipt, a compact JWS signed by the node
    /// key (`me2b consent verify-receipt` checks it offline). The controller
    /// is the co-op that receives the receipts, the subject your pseudonym
    /// there; the notice's hash covers the plain-language text, which names
    /// both co-ops.
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
    /// The member consents to `from` sharing its receipts about them with
    /// `to`: a consent record (controller `to`) with its signed receipt, kept
    /// with every other consent and decided by the one decision point.
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
        let max_days = self.inner.governance.max_sharing_days;
        let (Ok(days), Ok(max_days)) = (u32::try_from(days), u32::try_from(max_days)) else {
            return Err(TrustError::Invalid(SHARING_DAYS));
        };
        if !(1..=max_days).contains(&days) {
            return Err(TrustError::Invalid(SHARING_DAYS));
        }
        self.require_org(from).await?;
        self.require_org(to).await?;
        // The member's research tag, found now, in their session: deliveries
        // use it without moving their pseudonym out of the origin again.
        let research = self
            .pseudonym_in(member, Domain::Research, MemberRequest::Share)
            .await?;
        let record = self
            .inner
            .consents
            .give_cross_sell(
                CrossSell {
                    member,
                    from,
                    to,
                    days,
                    max_days,
                },
                Method::Api,
            )
            .await?;
        let id = SharingId::from_slice(record.id.as_bytes())
            .map_err(|_| TrustError::Invalid("malformed consent id"))?;
        let row = TrustSharingRow {
            research_tag: Some(self.tag(Domain::Research, &research)),
            id,
            member,
            from_org: from,
            to_org: to,
            purpose: purpose.to_owned(),
            created_at: record.given_at,
            expires_at: record.expires_at,
            withdrawn_at: None,
        };
        self.inner.store.insert_trust_sharing(&row).await?;
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustSharing)
                    .subject(member)
                    .object(format!("give {} ({from} -> {to})", row.id))
                    .terms("marketing", "purchases-and-spending-habit", "share"),
            )
            .await?;
        Ok(Self::sharing_view(&row, Some(&record)))
    }

    /// A sharing consent as the member sees it, from its consent record
    /// (None: given before sharing consents were consent records; it
    /// delivers nothing and shows as withdrawn).
    fn sharing_view(r: &TrustSharingRow, record: Option<&ConsentRecord>) -> SharingView {
        SharingView {
            id: r.id,
            from: r.from_org,
            to: r.to_org,
            purpose: r.purpose.clone(),
            expires_at: record.map_or(r.expires_at, |c| c.expires_at),
            withdrawn: record.is_none_or(|c| c.status != ConsentStatus::Given),
            receipt: record
                .and_then(|c| c.receipts.last().cloned())
                .unwrap_or_default(),
        }
    }

    async fn sharing_record(
        &self,
        r: &TrustSharingRow,
    ) -> Result<Option<ConsentRecord>, TrustError> {
        let Ok(id) = ConsentId::from_slice(r.id.as_bytes()) else {
            return Ok(None);
        };
        Ok(self.inner.consents.record_of(r.member, id).await?)
    }

    /// Withdraws a sharing consent (its consent record, with a new signed
    /// receipt): durable before this returns.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw_sharing(
        &self,
        member: MemberId,
        id: SharingId,
    ) -> Result<(), TrustError> {
        let consent = ConsentId::from_slice(id.as_bytes())
            .map_err(|_| TrustError::NotFound("sharing consent"))?;
        match self
            .inner
            .consents
            .withdraw(member, consent, Method::Api)
            .await
        {
            Ok(_) => {}
            Err(
                me2b_consent::ServiceError::ConsentNotFound
                | me2b_consent::ServiceError::NotInForce,
            ) => return Err(TrustError::NotFound("sharing consent")),
            Err(e) => return Err(e.into()),
        }
        // The consent record decides; the sharing row only stops being listed
        // among the pair's deliveries.
        self.inner
            .store
            .withdraw_trust_sharing(id, member, self.inner.clock.now())
            .await?;
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
            let record = self.sharing_record(&r).await?;
            out.push(Self::sharing_view(&r, record.as_ref()));
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
            // The one decision point decides each member's delivery now: a
            // consent withdrawn (here or among the member's consents),
            // expired, or given before a GPC opt-out delivers nothing.
            let decision = self
                .inner
                .consents
                .cross_sell_decision(g.member, from, to)
                .await?;
            let Decision::Permit { consent } = decision else {
                continue;
            };
            if consent.as_bytes() != g.id.as_bytes() {
                // Another row of the same pair holds the consent in force.
                continue;
            }
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
                    .terms("marketing", "purchases-and-spending-habit", "share")
            })
            .collect();
        events.push(
            AuditEvent::new(Actor::Organisation(to), Action::TrustCrossSell)
                .object(format!("from {from}: {} members", out.len()))
                .terms("marketing", "purchases-and-spending-habit", "share"),
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
