//! Running counts released over time (continual release).
//!
//! An offer's "members reached" grows while the offer runs, and its party
//! wants to see it grow. Releasing the running total again and again with
//! fresh noise would let a reader average the noise away or difference two
//! releases around one member's visit; re-drawing only when the count changes
//! (what me2b did before) leaks the change itself.
//!
//! [`RunningCount`] is the *simple counting mechanism* for continual release
//! (Chan, Shi and Song, "Private and continual release of statistics", 2011):
//! at each scheduled release the increment since the previous release gets its
//! own discrete Laplace noise of scale `1/ε`, and the running total shown is
//! the sum of the noisy increments (post-processing, free).
//!
//! **Why a stream costs ε once per period.** Each member adds at most 1 to
//! a counter over the stream's whole life (the vault counts a member once per
//! offer), so adding or removing one member changes exactly one increment by
//! at most 1. The increments are over disjoint sets of members: by parallel
//! composition the stream's releases are ε-differentially private however
//! many there are and wherever their boundaries fall. Its owner charges it
//! once in each budget period in which it releases (offers do); more releases
//! only widen the error (its variance grows with the number of releases,
//! which is why the schedule is weekly, not per request).
//!
//! The binary-tree mechanism has error growing with log³ of the number of
//! releases instead of linearly in variance, but with its constants it is
//! worse below about 1,500 releases; an offer has at most 54 weekly ones
//! (`continual::tests::simple_beats_the_tree_at_offer_scale` computes both).

use crate::noise::{variance, Noise};
use crate::DpError;
use serde::{Deserialize, Serialize};

/// One counter released continually. Stored as part of its owner's state
/// (versioned by the owner).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningCount {
    /// ε of the stream (per budget period it releases in).
    pub epsilon: f64,
    /// The true total at the last release (what the next increment starts from).
    pub counted: u64,
    /// The noisy increments, one per release.
    pub increments: Vec<i64>,
}

impl RunningCount {
    pub fn new(epsilon: f64) -> Result<Self, DpError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(DpError::Invalid("a stream's ε is finite and > 0"));
        }
        Ok(Self {
            epsilon,
            counted: 0,
            increments: Vec::new(),
        })
    }

    /// Noise scale of each increment.
    pub fn scale(&self) -> f64 {
        1.0 / self.epsilon
    }

    /// Releases the increment from the last release to `total`, the true
    /// running total now. A total below the last one (it never shrinks)
    /// releases a zero increment.
    pub fn release(&mut self, noise: &dyn Noise, total: u64) -> Result<(), DpError> {
        let inc = i64::try_from(total.saturating_sub(self.counted))
            .map_err(|_| DpError::Invalid("count too large"))?;
        let noisy = noise.noisy(inc, self.scale())?;
        self.increments.push(noisy);
        self.counted = self.counted.max(total);
        Ok(())
    }

    /// The released running total: the sum of the noisy increments.
    pub fn total(&self) -> i64 {
        self.increments
            .iter()
            .fold(0i64, |a, b| a.saturating_add(*b))
    }

    /// Standard deviation of the released total's noise.
    pub fn stddev(&self) -> f64 {
        (self.increments.len() as f64 * variance(self.scale())).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::SeededNoise;

    #[derive(Debug)]
    struct Exact;
    impl Noise for Exact {
        fn noisy(&self, v: i64, _: f64) -> Result<i64, DpError> {
            Ok(v)
        }
        fn mechanism(&self) -> &'static str {
            "exact"
        }
    }

    #[test]
    fn increments_add_up_to_the_total() {
        let mut c = RunningCount::new(0.25).unwrap();
        for t in [3u64, 3, 10, 9, 25] {
            c.release(&Exact, t).unwrap();
        }
        assert_eq!(c.increments, vec![3, 0, 7, 0, 15]);
        assert_eq!(c.total(), 25);
        assert_eq!(c.scale(), 4.0);
        assert!(RunningCount::new(0.0).is_err());
        assert!(RunningCount::new(f64::INFINITY).is_err());
    }

    #[test]
    fn the_stated_stddev_is_the_observed_one() {
        let noise = SeededNoise::new(11);
        let trials = 4_000;
        let mut sq = 0.0;
        let mut stated = 0.0;
        for _ in 0..trials {
            let mut c = RunningCount::new(0.5).unwrap();
            for w in 1..=8u64 {
                c.release(&noise, 10 * w).unwrap();
            }
            sq += ((c.total() - 80) as f64).powi(2);
            stated = c.stddev();
        }
        let observed = (sq / f64::from(trials)).sqrt();
        assert!(
            (observed - stated).abs() < 0.08 * stated,
            "observed {observed}, stated {stated}"
        );
    }

    /// The binary-tree mechanism over T releases gives every node noise of
    /// scale L/ε (L = ⌈log2 T⌉ + 1 levels) and a release sums popcount(t)
    /// nodes; the simple mechanism's release t sums t increments of scale
    /// 1/ε. Averaged over the releases of a weekly offer (T ≤ 54), the simple
    /// mechanism has the smaller error.
    #[test]
    fn simple_beats_the_tree_at_offer_scale() {
        let eps = 0.25;
        for t_max in [4u32, 13, 54] {
            let levels = f64::from(32 - (t_max - 1).leading_zeros()) + 1.0;
            let (mut simple, mut tree) = (0.0, 0.0);
            for t in 1..=t_max {
                simple += f64::from(t) * variance(1.0 / eps);
                tree += f64::from(t.count_ones()) * variance(levels / eps);
            }
            assert!(simple < tree, "T = {t_max}: simple {simple} vs tree {tree}");
        }
    }
}
