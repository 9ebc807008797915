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
use opendp::domains::AtomDomain;
use opendp::measurements::make_laplace;
use opendp::measures::MaxDivergence;
use opendp::metrics::AbsoluteDistance;
use serde::{Deserialize, Serialize};

/// Default minimum cohort below which nothing is released.
pub const DEFAULT_MIN_COHORT: u64 = 20;
/// Default scale of the discrete Laplace noise (ε = 1 / scale per count).
pub const DEFAULT_NOISE_SCALE: f64 = 2.0;

/// Adds noise to a count.
pub trait Noise: Send + Sync + std::fmt::Debug {
    fn noisy(&self, count: u64, scale: f64) -> Result<i64, OfferError>;
    /// Names the mechanism in every release.
    fn mechanism(&self) -> &'static str;
}

/// OpenDP's discrete Laplace mechanism.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenDpNoise;

impl Noise for OpenDpNoise {
    fn noisy(&self, count: u64, scale: f64) -> Result<i64, OfferError> {
        let m = make_laplace::<_, _, MaxDivergence>(
            AtomDomain::<i64>::default(),
            AbsoluteDistance::<i64>::default(),
            scale,
            None,
        )
        .map_err(|_| OfferError::Noise)?;
        let count = i64::try_from(count).map_err(|_| OfferError::Noise)?;
        m.invoke(&count).map_err(|_| OfferError::Noise)
    }

    fn mechanism(&self) -> &'static str {
        "discrete Laplace (OpenDP)"
    }
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
        reached: noise.noisy(reached, scale)?,
        accepted: noise.noisy(accepted, scale)?,
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
        fn noisy(&self, count: u64, _: f64) -> Result<i64, OfferError> {
            Ok(count as i64 + self.0)
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

    #[test]
    fn opendp_noise_has_the_configured_scale() {
        // Discrete Laplace with scale b: variance ≈ 2b² for b well above 1.
        // 20,000 samples: the sample variance lands within 15 % of it with
        // overwhelming probability (generous bound, no flakiness in practice).
        let n = 20_000;
        let b = 4.0;
        let samples: Vec<f64> = (0..n)
            .map(|_| (OpenDpNoise.noisy(1000, b).unwrap() - 1000) as f64)
            .collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let expected = 2.0 * b * b;
        assert!(mean.abs() < 0.5, "mean {mean}");
        assert!(
            (var - expected).abs() < 0.15 * expected,
            "variance {var}, expected {expected}"
        );
    }
}
