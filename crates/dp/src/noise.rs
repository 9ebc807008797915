//! Where the noise comes from.
//!
//! Releases use OpenDP's discrete Laplace mechanism over integers
//! ([`OpenDpNoise`], randomness from OpenSSL). Tests and the attack harness
//! pass [`SeededNoise`], the same distribution from a seeded generator, so a
//! run of many trials is reproducible; the node never uses it.

use crate::DpError;
use opendp::domains::AtomDomain;
use opendp::measurements::make_laplace;
use opendp::measures::MaxDivergence;
use opendp::metrics::AbsoluteDistance;
use rand_core::{RngCore, SeedableRng};
use std::sync::Mutex;

/// Adds noise of a given scale to an integer.
pub trait Noise: Send + Sync + std::fmt::Debug {
    fn noisy(&self, value: i64, scale: f64) -> Result<i64, DpError>;
    fn mechanism(&self) -> &'static str;
}

fn check_scale(scale: f64) -> Result<(), DpError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(DpError::Invalid("a noise scale is finite and > 0"))
    }
}

/// OpenDP's discrete Laplace mechanism.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenDpNoise;

impl Noise for OpenDpNoise {
    fn noisy(&self, value: i64, scale: f64) -> Result<i64, DpError> {
        check_scale(scale)?;
        let m = make_laplace::<_, _, MaxDivergence>(
            AtomDomain::<i64>::default(),
            AbsoluteDistance::<i64>::default(),
            scale,
            None,
        )
        .map_err(|_| DpError::Noise)?;
        m.invoke(&value).map_err(|_| DpError::Noise)
    }

    fn mechanism(&self) -> &'static str {
        "discrete Laplace (OpenDP)"
    }
}

/// The discrete Laplace distribution from a seeded generator: for tests and
/// simulations only (its randomness is predictable by design).
///
/// A discrete Laplace variable of scale `b` is the difference of two
/// independent geometric variables with ratio `q = e^(-1/b)`; each is drawn by
/// inversion from a uniform in (0, 1].
#[derive(Debug)]
pub struct SeededNoise(Mutex<rand_chacha::ChaCha20Rng>);

impl SeededNoise {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(rand_chacha::ChaCha20Rng::seed_from_u64(seed)))
    }

    fn uniform(&self) -> Result<f64, DpError> {
        let mut rng = self.0.lock().map_err(|_| DpError::Noise)?;
        // 53 random bits, shifted into (0, 1].
        Ok(((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64)
    }

    fn geometric(&self, ln_q: f64) -> Result<i64, DpError> {
        let g = (self.uniform()?.ln() / ln_q).floor();
        Ok(if g.is_finite() && g < 1e15 {
            g as i64
        } else {
            0
        })
    }
}

impl Noise for SeededNoise {
    fn noisy(&self, value: i64, scale: f64) -> Result<i64, DpError> {
        check_scale(scale)?;
        let ln_q = -1.0 / scale;
        let d = self.geometric(ln_q)? - self.geometric(ln_q)?;
        Ok(value.saturating_add(d))
    }

    fn mechanism(&self) -> &'static str {
        "discrete Laplace (seeded, tests only)"
    }
}

/// The variance of discrete Laplace noise of scale `b`:
/// `2q / (1 - q)^2` with `q = e^(-1/b)`.
pub fn variance(scale: f64) -> f64 {
    let q = (-1.0 / scale).exp();
    2.0 * q / ((1.0 - q) * (1.0 - q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_variance(noise: &dyn Noise, b: f64, n: usize) -> (f64, f64) {
        let s: Vec<f64> = (0..n)
            .map(|_| (noise.noisy(1000, b).unwrap() - 1000) as f64)
            .collect();
        let mean = s.iter().sum::<f64>() / n as f64;
        let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var)
    }

    #[test]
    fn opendp_noise_has_the_configured_scale() {
        // 20,000 samples put the sample variance within 15 % of the
        // distribution's with overwhelming probability.
        for b in [1.0, 4.0] {
            let (mean, var) = sample_variance(&OpenDpNoise, b, 20_000);
            let expected = variance(b);
            assert!(mean.abs() < 0.1 * b.max(1.0), "mean {mean} at scale {b}");
            assert!(
                (var - expected).abs() < 0.15 * expected,
                "variance {var}, expected {expected} at scale {b}"
            );
        }
    }

    #[test]
    fn seeded_noise_has_the_same_distribution_and_repeats() {
        for b in [1.0, 4.0] {
            let (mean, var) = sample_variance(&SeededNoise::new(7), b, 20_000);
            let expected = variance(b);
            assert!(mean.abs() < 0.1 * b.max(1.0), "mean {mean}");
            assert!((var - expected).abs() < 0.15 * expected, "variance {var}");
        }
        // The frequency of 0 is the discrete Laplace's (1 - q) / (1 + q).
        let n = 50_000;
        let s = SeededNoise::new(3);
        let z = (0..n).filter(|_| s.noisy(0, 2.0).unwrap() == 0).count() as f64 / n as f64;
        let q = (-0.5f64).exp();
        assert!((z - (1.0 - q) / (1.0 + q)).abs() < 0.01, "P(0) = {z}");
        let a: Vec<i64> = (0..10)
            .map(|_| SeededNoise::new(9).noisy(0, 3.0).unwrap())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed, same draw");
        assert!(OpenDpNoise.noisy(0, 0.0).is_err());
        assert!(SeededNoise::new(1).noisy(0, f64::NAN).is_err());
    }
}
