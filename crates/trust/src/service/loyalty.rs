//! Loyalty with the member present (issue 12). Points are kept under a keyed
//! hash (tag) of the member's loyalty-domain pseudonym. A co-op earns on its
//! own card and hears only "accepted"; it redeems only a one-time token the
//! member made in their session for one amount at that co-op, and hears only
//! "redeemed N". No answer to a co-op depends on the balance.
//!
//! * Enrolled tags: when a member gets a card (or opens their trust view, or
//!   makes a token), their loyalty tag joins the list of enrolled members'
//!   tags (no member id, no time). A card whose loyalty tag is not on it
//!   belongs to no enrolled member and is refused (`unknown_card`): that
//!   tells the co-op only that its own card is not a member's.
//! * Tokens reserve their points when made, so using one can never fail for
//!   want of points; an expired one gives them back.
//! * Tokens are for multiples of the federation's step (`[trust]
//!   redemption_step`), the rest staying: a co-op that credits its cards
//!   distinct amounts within a step sees them all redeem alike at another
//!   co-op. A token that takes the whole balance carries a warning for the
//!   member (a co-op crediting distinct multiples of the step would still
//!   see them; README, "Loyalty").
//! * The member's audit trail: each earn, token and redemption is audited
//!   under the member's *loyalty subject*, a keyed hash of their tag shaped
//!   like a member id, never under their member id; their audit view reads
//!   both. No audit entry names both.

use super::*;
use crate::token::{hash_submitted, TokenText};

/// How long a redemption token is valid.
pub const TOKEN_TTL_MS: i64 = 5 * 60 * 1000;

/// A redemption token the member just made, to show at the till.
#[derive(Debug)]
pub struct RedemptionToken {
    /// The token's text (shown once; only its hash is stored).
    pub token: TokenText,
    pub org: OrgId,
    pub points: i64,
    pub expires_at: Timestamp,
    /// The token takes every point the member had available: worth a
    /// warning (a co-op that credited an unusual amount could recognise it).
    pub whole_balance: bool,
}

/// Points earned and redeemed at one co-op on one day.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LoyaltyDayView {
    #[schema(value_type = String)]
    pub org: OrgId,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub earned: i64,
    pub redeemed: i64,
}

/// A member's view of the trust.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberTrust {
    /// Your loyalty points, across co-ops, that a new redemption token can use.
    pub loyalty_points: i64,
    /// Tokens are for multiples of this (the federation's step): points
    /// that differ by less than a step redeem alike, so a co-op that gave
    /// you an unusual number of points cannot recognise you by it at another.
    pub redemption_step: i64,
    /// The most one token can be for now: `loyalty_points` rounded down to
    /// the step; the rest stays in your balance.
    pub redeemable_points: i64,
    /// Points held by your redemption tokens that are neither used nor
    /// expired (an expired token's points come back).
    pub loyalty_reserved: i64,
    /// Points earned and redeemed per co-op and day, oldest first.
    pub loyalty_history: Vec<LoyaltyDayView>,
    pub sharing: Vec<SharingView>,
}

fn day_of(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(MS_PER_DAY)
}

impl Trust {
    /// The loyalty tag of a co-op's card (sealed by the co-op for its own
    /// domain): moved by every transcryptor from the co-op's domain into the
    /// loyalty domain. A ciphertext sealed for another domain, or random,
    /// moves to a pseudonym no member has.
    async fn card_tag(&self, org: OrgId, card: &str) -> Result<[u8; 32], TrustError> {
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
        Ok(self.tag(Domain::Loyalty, &lp))
    }

    /// The member's loyalty tag, from their enrolment (creating it on first
    /// use), and it joins the enrolled members' tags. `why` is the member's
    /// request the transcryptors are shown.
    pub(super) async fn register_loyalty(
        &self,
        member: MemberId,
        why: MemberRequest,
    ) -> Result<[u8; 32], TrustError> {
        let p = self.pseudonym_in(member, Domain::Loyalty, why).await?;
        let tag = self.tag(Domain::Loyalty, &p);
        if self
            .inner
            .store
            .trust_erased_among(&[tag])
            .await?
            .is_empty()
        {
            self.inner.store.loyalty_register(&tag).await?;
        }
        Ok(tag)
    }

    /// The subject loyalty entries are audited under: a keyed hash of the
    /// tag, shaped like a member id, never the member's id.
    fn loyalty_subject(&self, tag: &[u8; 32]) -> Option<MemberId> {
        let h = self.inner.keys.trust_tag("me2b/loyalty-audit-subject", tag);
        MemberId::from_slice(&h[..16]).ok()
    }

    /// The audit subjects a member's own audit view reads besides their
    /// member id: their loyalty subject, if they are enrolled in the trust
    /// (asks the transcryptors; enrols no one).
    #[tracing::instrument(skip_all)]
    pub async fn audit_subjects(&self, member: MemberId) -> Result<Vec<MemberId>, TrustError> {
        if self.inner.store.trust_enrolment(member).await?.is_none() {
            return Ok(Vec::new());
        }
        let p = self
            .pseudonym_in(member, Domain::Loyalty, MemberRequest::Audit)
            .await?;
        Ok(self
            .loyalty_subject(&self.tag(Domain::Loyalty, &p))
            .into_iter()
            .collect())
    }

    /// A co-op adds `points` (1 to 1,000,000) on its card for a member. The
    /// answer says nothing about the balance: `Ok` (accepted), or the card
    /// is no enrolled member's (`UnknownCard`) or an erased member's
    /// (`MemberErased`).
    #[tracing::instrument(skip_all)]
    pub async fn earn(&self, org: OrgId, card: &str, points: i64) -> Result<(), TrustError> {
        if !(1..=MAX_POINTS).contains(&points) {
            return Err(TrustError::Invalid("points are 1 to 1,000,000"));
        }
        let tag = self.card_tag(org, card).await?;
        let now = self.inner.clock.now();
        // A card of a member who erased their data starts no new ledger. An
        // erasure not yet released (erasure.rs in me2b-vault) answers as the
        // card did before it (accepted if it was enrolled), and does the
        // same work: the same write to the ledger, which the release deletes
        // with the rest of the tag's loyalty rows (a read only would answer
        // measurably faster, and name the card to a co-op timing it).
        let state = self.inner.store.trust_erased_states(&[tag]).await?;
        let erased = state.first().is_some_and(|e| e.released);
        let known = match state.first() {
            Some(e) if e.released => false,
            _ => {
                self.inner
                    .store
                    .loyalty_earn(&tag, org, points, day_of(now))
                    .await?
            }
        };
        let held = state.first().is_some_and(|e| !e.released);
        let event = AuditEvent::new(Actor::Organisation(org), Action::TrustLoyalty);
        let event = match (known, erased) {
            (true, _) if held => event
                .object("earn dropped: member erased")
                .outcome(Outcome::Denied),
            (true, _) => match self.loyalty_subject(&tag) {
                Some(s) => event.subject(s),
                None => event,
            }
            .object(format!("earn {points}")),
            (false, true) => event
                .object("earn refused: member erased")
                .outcome(Outcome::Denied),
            (false, false) => event
                .object("earn refused: unknown card")
                .outcome(Outcome::Denied),
        };
        self.inner.audit.record(event).await?;
        match (known, erased) {
            (true, _) => Ok(()),
            (false, true) => Err(TrustError::MemberErased),
            (false, false) => Err(TrustError::UnknownCard),
        }
    }

    /// The member, in their session, makes a one-time token for `points` at
    /// `org`, valid for five minutes: the points are reserved now (refused
    /// with `InsufficientPoints` if the balance is short: the member's own
    /// answer, never a co-op's).
    #[tracing::instrument(skip_all)]
    pub async fn redemption_token(
        &self,
        member: MemberId,
        org: OrgId,
        points: i64,
    ) -> Result<RedemptionToken, TrustError> {
        if !(1..=MAX_POINTS).contains(&points) {
            return Err(TrustError::Invalid("points are 1 to 1,000,000"));
        }
        if points % self.inner.governance.redemption_step.max(1) != 0 {
            return Err(TrustError::RedemptionStep);
        }
        self.require_org(org).await?;
        let tag = self.register_loyalty(member, MemberRequest::Redeem).await?;
        let now = self.inner.clock.now();
        let available = self.inner.store.loyalty_account(&tag, now).await?.balance;
        let token = TokenText::generate(self.inner.random.as_ref());
        let expires_at =
            Timestamp::from_unix_millis(now.unix_millis().saturating_add(TOKEN_TTL_MS));
        let reserved = self
            .inner
            .store
            .loyalty_reserve(
                &NewRedemptionToken {
                    token_hash: token.hash(),
                    tag,
                    org,
                    points,
                    expires_at,
                },
                now,
            )
            .await?;
        if !reserved {
            return Err(TrustError::InsufficientPoints);
        }
        // Under the loyalty subject, by the node: an entry naming both the
        // member and their loyalty subject would link them in the log.
        let mut event = AuditEvent::new(Actor::Node, Action::TrustLoyalty)
            .object(format!("redemption token: {points} at {org}"));
        if let Some(s) = self.loyalty_subject(&tag) {
            event = event.subject(s);
        }
        self.inner.audit.record(event).await?;
        Ok(RedemptionToken {
            token,
            org,
            points,
            expires_at,
            whole_balance: points == available,
        })
    }

    /// A co-op uses a member's token for `points`. Unknown, used, expired,
    /// another co-op's, another amount, or not a token at all: one answer,
    /// `RedemptionRefused`, whatever the balance. A token works once, also
    /// when two nodes get it at the same moment.
    #[tracing::instrument(skip_all)]
    pub async fn redeem(&self, org: OrgId, token: &str, points: i64) -> Result<i64, TrustError> {
        let now = self.inner.clock.now();
        let tag = match hash_submitted(token) {
            Some(h) if (1..=MAX_POINTS).contains(&points) => {
                self.inner
                    .store
                    .loyalty_redeem(&h, org, points, now, day_of(now))
                    .await?
            }
            _ => None,
        };
        let event = AuditEvent::new(Actor::Organisation(org), Action::TrustLoyalty);
        let event = match tag.as_ref().and_then(|t| self.loyalty_subject(t)) {
            Some(s) => event.subject(s).object(format!("redeem {points}")),
            None if tag.is_some() => event.object(format!("redeem {points}")),
            None => event.object("redeem refused").outcome(Outcome::Denied),
        };
        self.inner.audit.record(event).await?;
        match tag {
            Some(_) => Ok(points),
            None => Err(TrustError::RedemptionRefused),
        }
    }

    /// What the member sees of the trust: their points (available and
    /// reserved), their history per co-op and day, and sharing consents.
    #[tracing::instrument(skip_all)]
    pub async fn member_view(&self, member: MemberId) -> Result<MemberTrust, TrustError> {
        let tag = self.register_loyalty(member, MemberRequest::View).await?;
        let account = self
            .inner
            .store
            .loyalty_account(&tag, self.inner.clock.now())
            .await?;
        let sharing = self.sharing_of(member).await?;
        let step = self.inner.governance.redemption_step.max(1);
        Ok(MemberTrust {
            loyalty_points: account.balance,
            redemption_step: step,
            redeemable_points: account.balance.max(0) / step * step,
            loyalty_reserved: account.reserved,
            loyalty_history: account
                .days
                .iter()
                .map(|d| LoyaltyDayView {
                    org: d.org,
                    day: super::receipts::day_string(i32::try_from(d.day).unwrap_or_default()),
                    earned: d.earned,
                    redeemed: d.redeemed,
                })
                .collect(),
            sharing,
        })
    }
}
