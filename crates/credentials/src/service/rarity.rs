//! How common a disclosed set is (issue 12, "claims as a tag"): an issuer can
//! give one member a combination of tier, region, start year and interests
//! that no other member has, and a colluding verifier that asks for all of
//! them recognises the member at every visit. So the node counts, per co-op
//! and validity epoch, how many credentials it issued to enrolled members
//! share each combination of those values, and a member is told before
//! presenting how many share what they would disclose; below the
//! federation's threshold the presentation is refused unless the member
//! accepts.
//!
//! The counts are aggregates: a keyed hash (under the node's key) of
//! (co-op, epoch, one subset of the claim values) and a number, no member id,
//! no time, no code (`credential_combinations`). A credential adds one to
//! each of its 2^5 = 32 subsets when its member redeems the code, so an
//! issuer's unused codes count for nothing.
//!
//! A co-op could still make a member's rare combination look common by
//! redeeming codes with the same values into fake member accounts (adv8's
//! Sybil issuer). So a redemption counts only when the member's account is
//! at least `[credentials] count_after_days` old (default 28, one default
//! period), by the node's clock: fakes must be made that long ahead and kept.
//! A new member's own credential then counts for less than it could, never
//! for more: their presentations, and others', look rarer, the safe side.

use super::{Credentials, ServiceError};
use crate::schema::{ClaimName, Claims, Epoch};
use me2b_domain::{OrgId, Timestamp};
use me2b_vault::MemberSession;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The claims whose values are counted: those a verifier can ask for whose
/// value an issuer chooses per member. The others are the same for everyone
/// (`federation`, `credential_type`), are the count's own key (`issuer`,
/// `validity_epoch`), are never issued (`interest_3`, `interest_4`), or
/// are unique (`status_index`, see [`Rarity::status_index`]).
pub const COUNTED_CLAIMS: [ClaimName; 5] = [
    ClaimName::Tier,
    ClaimName::Region,
    ClaimName::MemberSince,
    ClaimName::Interest1,
    ClaimName::Interest2,
];

/// The default threshold: a disclosed set shared by fewer credentials of
/// the issuer is refused unless the member accepts.
pub const DEFAULT_MIN_SHARED: u32 = 10;

/// The most the threshold may be.
pub const MAX_MIN_SHARED: u32 = 10_000;

/// The default age, in days, an account must have for its redemptions to
/// count: one default validity period (four weeks).
pub const DEFAULT_COUNT_AFTER_DAYS: u32 = 28;

/// The most `count_after_days` may be.
pub const MAX_COUNT_AFTER_DAYS: u32 = 365;

const DAY_MILLIS: i64 = 86_400_000;

/// Whether a redemption at `now` by an account confirmed at `joined` counts:
/// only once the account is `count_after_days` old.
fn old_enough(joined: Timestamp, now: Timestamp, count_after_days: u32) -> bool {
    now.unix_millis().saturating_sub(joined.unix_millis())
        >= i64::from(count_after_days).saturating_mul(DAY_MILLIS)
}

/// Claims a member may leave out of a presentation (the verifier may then
/// refuse it): the counted ones, the issuer and the status index.
const WITHHOLDABLE: [ClaimName; 7] = [
    ClaimName::Tier,
    ClaimName::Region,
    ClaimName::MemberSince,
    ClaimName::Interest1,
    ClaimName::Interest2,
    ClaimName::Issuer,
    ClaimName::StatusIndex,
];

/// The domain of the keyed hash of a combination.
const DOMAIN: &str = "credential-combination/v1";
/// Domain of a holder's keyed hash (`credential_holders`, migration 0041).
const HOLDER_DOMAIN: &str = "credential-holder/v1";

/// How many credentials share what a presentation would disclose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rarity {
    /// Credentials of the issuer, in the credential's validity epoch,
    /// redeemed by members whose accounts were then at least
    /// `[credentials] count_after_days` old, whose values of the disclosed
    /// claims are the same as this one's; at least 1 (this one). 1 when the
    /// status index is disclosed: the issuer knows whose it is.
    pub shared_by: u64,
    /// The federation's threshold (`[credentials] min_shared`).
    pub threshold: u32,
    /// `shared_by` is below the threshold: presenting needs `accept_rare`.
    pub rare: bool,
    /// The status index is disclosed (a status check): it names one
    /// credential, which its issuer can tell apart.
    pub status_index: bool,
}

/// What a presentation would disclose and how common that is, before the
/// member presents.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CredentialPreview)]
pub struct Preview {
    /// Exactly what the verifier would learn.
    pub discloses: BTreeMap<String, String>,
    pub rarity: Rarity,
    /// Claims the verifier asked for that the member could leave out so
    /// that what remains is shared by at least `threshold` credentials (the
    /// fewest such claims; the verifier may then refuse the presentation).
    /// Null when nothing left out reaches the threshold, or when the
    /// disclosed set is not rare.
    pub withhold_to_be_common: Option<Vec<String>>,
    pub verifier_id: String,
    /// The verifier's name when it is an organisation of this node.
    pub verifier: Option<String>,
}

/// What the member chose for one presentation.
#[derive(Clone, Debug, Default)]
pub struct Disclosure {
    /// Claims to disclose beyond what the challenge needs.
    pub extra: Vec<String>,
    /// Claims the challenge needs that the member leaves out (the verifier
    /// may refuse the presentation).
    pub withhold: Vec<String>,
    /// Present even when the disclosed set is rare.
    pub accept_rare: bool,
}

impl Disclosure {
    /// The claims to disclose: the challenge's, plus `extra`, less
    /// `withhold` (only [`WITHHOLDABLE`] claims can be left out).
    pub(super) fn apply(
        &self,
        mut disclose: BTreeSet<ClaimName>,
    ) -> Result<BTreeSet<ClaimName>, ServiceError> {
        for name in &self.extra {
            disclose
                .insert(ClaimName::parse(name).ok_or(ServiceError::Invalid("unknown claim name"))?);
        }
        for name in &self.withhold {
            let n = ClaimName::parse(name).ok_or(ServiceError::Invalid("unknown claim name"))?;
            if !WITHHOLDABLE.contains(&n) {
                return Err(ServiceError::Invalid(
                    "`withhold`: only tier, region, member_since, interest_1, interest_2, issuer and status_index can be left out",
                ));
            }
            disclose.remove(&n);
        }
        Ok(disclose)
    }
}

/// The bytes hashed for one combination: the co-op, the epoch and each
/// counted claim of `subset` with its value, length-prefixed.
fn combination(
    keys: &me2b_crypto::Keyring,
    issuer: OrgId,
    epoch: Epoch,
    claims: &Claims,
    subset: &BTreeSet<ClaimName>,
) -> [u8; 32] {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(issuer.as_bytes());
    buf.extend_from_slice(&epoch.get().to_be_bytes());
    for name in COUNTED_CLAIMS {
        if subset.contains(&name) {
            let value = claims.value(name);
            for part in [name.as_str().as_bytes(), value.as_str().as_bytes()] {
                buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
                buf.extend_from_slice(part);
            }
        }
    }
    keys.trust_tag(DOMAIN, &buf)
}

/// Every subset of the counted claims (2^5 = 32).
fn subsets() -> impl Iterator<Item = BTreeSet<ClaimName>> {
    (0u32..1 << COUNTED_CLAIMS.len()).map(|mask| {
        COUNTED_CLAIMS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    })
}

impl Credentials {
    /// Counts a credential just redeemed by `member`: one more for each
    /// subset of its counted claims, when the member's account is old
    /// enough (`count_after_days`; false when not counted). Expired epochs'
    /// counts go.
    pub(super) async fn count_combinations(
        &self,
        s: &MemberSession,
        claims: &Claims,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let store = &self.inner.store;
        let Some(account) = store.member(s.member).await? else {
            return Ok(false);
        };
        if !old_enough(
            account.created_at,
            now,
            self.inner.settings.count_after_days,
        ) {
            return Ok(false);
        }
        let keys = &self.inner.keys;
        let all: Vec<[u8; 32]> = subsets()
            .map(|s| combination(keys, claims.issuer, claims.validity_epoch, claims, &s))
            .collect();
        store
            .purge_credential_combinations(Epoch::containing(now).get())
            .await?;
        // Once per member, issuer and epoch (adv9: one aged account that
        // redeemed ten codes with the same values made them "shared by 10"),
        // under the member's own key: nobody without it can tell whose.
        let mut what = claims.issuer.as_bytes().to_vec();
        what.extend_from_slice(&claims.validity_epoch.get().to_be_bytes());
        let holder = s.keyed_digest(HOLDER_DOMAIN, &what);
        Ok(store
            .count_credential_combinations(&holder, claims.validity_epoch.get(), &all)
            .await?)
    }

    async fn shared_by(
        &self,
        claims: &Claims,
        disclosed: &BTreeSet<ClaimName>,
    ) -> Result<u64, ServiceError> {
        let subset: BTreeSet<ClaimName> = COUNTED_CLAIMS
            .iter()
            .copied()
            .filter(|n| disclosed.contains(n))
            .collect();
        let key = combination(
            &self.inner.keys,
            claims.issuer,
            claims.validity_epoch,
            claims,
            &subset,
        );
        Ok(self.inner.store.credential_combination_count(&key).await?)
    }

    /// How many credentials share what `disclosed` shows of `claims`.
    pub(super) async fn rarity(
        &self,
        claims: &Claims,
        disclosed: &BTreeSet<ClaimName>,
    ) -> Result<Rarity, ServiceError> {
        let threshold = self.inner.settings.min_shared;
        let status_index = disclosed.contains(&ClaimName::StatusIndex);
        // At least this credential, which is not counted when its account
        // was too new at redemption.
        let shared_by = if status_index {
            1
        } else {
            self.shared_by(claims, disclosed).await?.max(1)
        };
        Ok(Rarity {
            shared_by,
            threshold,
            rare: shared_by < u64::from(threshold),
            status_index,
        })
    }

    /// The fewest claims of `disclosed` to leave out so that the rest is
    /// shared by at least the threshold (ties: the first in claim order).
    pub(super) async fn withhold_to_be_common(
        &self,
        claims: &Claims,
        disclosed: &BTreeSet<ClaimName>,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        let mut candidates: Vec<BTreeSet<ClaimName>> = subsets()
            .map(|s| {
                let mut leave: BTreeSet<ClaimName> =
                    s.into_iter().filter(|n| disclosed.contains(n)).collect();
                if disclosed.contains(&ClaimName::StatusIndex) {
                    leave.insert(ClaimName::StatusIndex);
                }
                leave
            })
            .collect();
        candidates.sort_by_key(BTreeSet::len);
        candidates.dedup();
        let threshold = u64::from(self.inner.settings.min_shared);
        for leave in candidates {
            let rest: BTreeSet<ClaimName> = disclosed.difference(&leave).copied().collect();
            if self.shared_by(claims, &rest).await? >= threshold {
                return Ok(Some(leave.iter().map(|n| n.as_str().to_owned()).collect()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subset_once() {
        let all: Vec<_> = subsets().collect();
        assert_eq!(all.len(), 32);
        let distinct: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(distinct.len(), 32);
    }

    #[test]
    fn the_threshold_is_checked() {
        use super::super::CredentialGovernance;
        for (n, ok) in [
            (0, false),
            (1, true),
            (10, true),
            (10_000, true),
            (10_001, false),
        ] {
            let g = CredentialGovernance {
                min_shared: n,
                ..CredentialGovernance::default()
            };
            assert_eq!(g.check().is_ok(), ok, "{n}");
        }
        assert_eq!(
            CredentialGovernance::default().min_shared,
            DEFAULT_MIN_SHARED
        );
    }

    #[test]
    fn only_accounts_old_enough_count() {
        let joined = Timestamp::from_unix_millis(1_790_000_000_000);
        let later = |days: i64, ms: i64| {
            Timestamp::from_unix_millis(joined.unix_millis() + days * DAY_MILLIS + ms)
        };
        assert!(!old_enough(joined, joined, 28));
        assert!(!old_enough(joined, later(28, -1), 28));
        assert!(old_enough(joined, later(28, 0), 28));
        assert!(old_enough(joined, joined, 0));
        // A clock set back never makes an account old.
        assert!(!old_enough(joined, later(-1, 0), 1));
        for (n, ok) in [(0, true), (28, true), (365, true), (366, false)] {
            let g = super::super::CredentialGovernance {
                count_after_days: n,
                ..super::super::CredentialGovernance::default()
            };
            assert_eq!(g.check().is_ok(), ok, "{n}");
        }
        assert_eq!(
            super::super::CredentialGovernance::default().count_after_days,
            DEFAULT_COUNT_AFTER_DAYS
        );
    }

    #[test]
    fn only_member_chosen_claims_can_be_left_out() {
        let asked: BTreeSet<ClaimName> = [ClaimName::Tier, ClaimName::ValidityEpoch].into();
        let d = Disclosure {
            withhold: vec!["tier".into()],
            ..Disclosure::default()
        };
        assert_eq!(
            d.apply(asked.clone()).ok(),
            Some([ClaimName::ValidityEpoch].into())
        );
        let d = Disclosure {
            withhold: vec!["validity_epoch".into()],
            ..Disclosure::default()
        };
        assert!(d.apply(asked).is_err());
    }
}
