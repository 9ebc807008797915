//! The loyalty ledger, keyed by a keyed hash of the member's loyalty-domain
//! pseudonym, and the member's own view of the trust.

use super::*;

/// A loyalty operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Points {
    Earn,
    Redeem,
}

/// A member's view of the trust.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberTrust {
    /// The member's loyalty points, across co-ops.
    pub loyalty_points: i64,
    pub sharing: Vec<SharingView>,
}

impl Trust {
    /// Earns or redeems `points` (1 to 1,000,000) at `org` for the member
    /// behind the co-op's pseudonym; returns the new balance. A redemption
    /// never overdraws.
    #[tracing::instrument(skip_all)]
    pub async fn loyalty(
        &self,
        org: OrgId,
        card: &str,
        op: Points,
        points: i64,
    ) -> Result<i64, TrustError> {
        if !(1..=MAX_POINTS).contains(&points) {
            return Err(TrustError::Invalid("points are 1 to 1,000,000"));
        }
        let points = match op {
            Points::Earn => points,
            Points::Redeem => -points,
        };
        let item = Item {
            ct: parse_card(card)?,
            key: self.coop_key(org).await?,
        };
        let client = self.client(Domain::Loyalty).await?;
        let items = self
            .chain(
                Requester::Coop(org),
                Domain::Coop(org),
                Domain::Loyalty,
                None,
                vec![item],
            )
            .await?;
        let lp = client.decrypt(&items.first().ok_or(TrustError::MalformedCiphertext)?.ct);
        let tag = self.tag(Domain::Loyalty, &lp);
        // A card of a member who erased their data starts no new ledger.
        let erased = !self
            .inner
            .store
            .trust_erased_among(&[tag])
            .await?
            .is_empty();
        let result = if erased {
            None
        } else {
            self.inner
                .store
                .trust_loyalty_apply(&tag, org, points, self.inner.clock.now())
                .await?
        };
        let kind = if points > 0 { "earn" } else { "redeem" };
        let why = if erased { ": member erased" } else { "" };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(org), Action::TrustLoyalty)
                    .object(format!("{kind} {}{why}", points.abs()))
                    .outcome(if result.is_some() {
                        Outcome::Ok
                    } else {
                        Outcome::Denied
                    }),
            )
            .await?;
        if erased {
            return Err(TrustError::MemberErased);
        }
        result.ok_or(TrustError::InsufficientPoints)
    }

    /// What the member sees of the trust: loyalty points and sharing consents.
    #[tracing::instrument(skip_all)]
    pub async fn member_view(&self, member: MemberId) -> Result<MemberTrust, TrustError> {
        let p = self
            .pseudonym_in(member, Domain::Loyalty, MemberRequest::View)
            .await?;
        let loyalty_points = self
            .inner
            .store
            .trust_loyalty_balance(&self.tag(Domain::Loyalty, &p))
            .await?;
        let sharing = self.sharing_of(member).await?;
        Ok(MemberTrust {
            loyalty_points,
            sharing,
        })
    }
}
