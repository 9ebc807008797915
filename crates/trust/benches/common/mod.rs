//! What the trust benches share: the default areas with their weights, and a
//! cumulative distribution to draw from.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::RngExt;

/// The governance config's default areas, weighted by population (millions).
pub const AREAS: [(&str, f64); 12] = [
    ("NL-ZH", 3.8),
    ("NL-NH", 2.9),
    ("NL-NB", 2.6),
    ("NL-GE", 2.1),
    ("NL-UT", 1.4),
    ("NL-OV", 1.2),
    ("NL-LI", 1.1),
    ("NL-FR", 0.65),
    ("NL-GR", 0.59),
    ("NL-DR", 0.5),
    ("NL-FL", 0.44),
    ("NL-ZE", 0.39),
];

/// A cumulative distribution to draw indices from.
pub struct Cdf(Vec<f64>);

impl Cdf {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let mut v: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        for x in &mut v {
            *x /= acc;
        }
        Self(v)
    }

    pub fn draw(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.0.partition_point(|c| *c < u).min(self.0.len() - 1)
    }
}
