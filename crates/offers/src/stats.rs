//! What an organisation learns in aggregate: how many members an offer reached
//! and how many accepted, released only above a minimum cohort and with noise.
//!
//! Counts have sensitivity 1: the vault counts a member once per offer for
//! "reached" and once for "accepted". Noise is OpenDP's discrete Laplace
//! mechanism (its randomness from OpenSSL). A release is drawn once per pair of
//! true counts and stored, so asking again returns the same noisy figures
//! instead of fresh samples that would average the noise away. A count whose
//! noisy value is below the minimum cohort is withheld.

use crate::OfferError;
use serde::{Deserialize, Serialize};

/// Default minimum cohort below which nothing is released.
pub const DEFAULT_MIN_COHORT: u64 = 20;
/// Default scale of the discrete Laplace noise (ε = 1 / scale per count).
pub const DEFAULT_NOISE_SCALE: f64 = 2.0;

/// The noise: the trust's OpenDP mechanism, behind a trait so tests can pass a
/// deterministic one.
pub use me2b_trust::insights::{Noise, OpenDpNoise};

fn noisy(noise: &dyn Noise, count: u64, scale: f64) -> Result<i64, OfferError> {
    let v = i64::try_from(count).map_err(|_| OfferError::Noise)?;
    noise.noisy(v, scale).map_err(|_| OfferError::Noise)
}

/// The stored release: the true counts it was drawn for and the noisy values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRelease {
    pub v: u8,
    pub for_reached: u64,
    pub for_accepted: u64,
    pub reached: i64,
    pub accepted: i64,
    pub scale: f64,
}

/// What the organisation sees.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OfferStats {
    /// Members the offer was shown to, with noise; null below the minimum cohort.
    pub reached: Option<u64>,
    /// Members who accepted, with noise; null below the minimum cohort.
    pub accepted: Option<u64>,
    pub min_cohort: u64,
    /// Scale of the noise added to each count.
    pub noise_scale: f64,
    pub mechanism: String,
    pub note: String,
}

/// Draws (or reuses) a release for the true counts.
pub fn release(
    noise: &dyn Noise,
    reached: u64,
    accepted: u64,
    previous: Option<StoredRelease>,
    scale: f64,
) -> Result<(StoredRelease, bool), OfferError> {
    if let Some(p) = previous {
        if p.v == 1 && p.for_reached == reached && p.for_accepted == accepted && p.scale == scale {
            return Ok((p, false));
        }
    }
    let r = StoredRelease {
        v: 1,
        for_reached: reached,
        for_accepted: accepted,
        reached: noisy(noise, reached, scale)?,
        accepted: noisy(noise, accepted, scale)?,
        scale,
    };
    Ok((r, true))
}

/// Applies the minimum cohort to a release.
pub fn publish(r: &StoredRelease, min_cohort: u64, mechanism: &str) -> OfferStats {
    let gate = |v: i64| u64::try_from(v).ok().filter(|v| *v >= min_cohort);
    OfferStats {
        reached: gate(r.reached),
        accepted: gate(r.accepted),
        min_cohort,
        noise_scale: r.scale,
        mechanism: mechanism.to_owned(),
        note: format!(
            "Counts are members, each counted once, with noise of scale {} added; a count below {} is withheld (null). No per-member data leaves the vaults.",
            r.scale, min_cohort
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(i64);
    impl Noise for Fixed {
        fn noisy(&self, count: i64, _: f64) -> Result<i64, me2b_trust::TrustError> {
            Ok(count + self.0)
        }
        fn mechanism(&self) -> &'static str {
            "fixed"
        }
    }

    #[test]
    fn counts_below_the_cohort_are_withheld() {
        let (r, fresh) = release(&Fixed(0), 19, 40, None, 2.0).unwrap();
        assert!(fresh);
        let s = publish(&r, 20, "fixed");
        assert_eq!((s.reached, s.accepted), (None, Some(40)));
        let (r, _) = release(&Fixed(-5), 22, 0, None, 2.0).unwrap();
        assert_eq!(publish(&r, 20, "fixed").reached, None);
    }

    #[test]
    fn the_same_counts_reuse_the_same_release() {
        let (r, _) = release(&Fixed(3), 50, 25, None, 2.0).unwrap();
        let (again, fresh) = release(&Fixed(99), 50, 25, Some(r.clone()), 2.0).unwrap();
        assert!(!fresh);
        assert_eq!(again, r);
        let (next, fresh) = release(&Fixed(99), 51, 25, Some(r), 2.0).unwrap();
        assert!(fresh);
        assert_eq!(next.reached, 150);
    }
}
