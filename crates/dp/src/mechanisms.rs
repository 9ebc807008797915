//! Differentially private answers over a fixed data snapshot: counts,
//! bounded sums and means, histograms over a fixed category set.
//!
//! Every answer carries its noise scale, the ε it spent and the minimum cohort.
//! Cohorts are gated on the *noisy* count, so the gate itself releases nothing
//! exact. The gate is a second line of defence; the guarantee is the ε bound
//! the [`crate::accountant`] enforces.
//!
//! Sensitivity is stated by the caller's data shape: a count of distinct
//! members changes by 1 when one member is added or removed; a bounded sum by at
//! most the bound; a histogram of distinct members per category by at most the
//! number of categories one member can appear in (`max_bins_per_member`).

use crate::noise::Noise;
use crate::DpError;
use serde::Serialize;

/// Default minimum cohort.
pub const DEFAULT_MIN_COHORT: u64 = 20;

/// A released number, or nothing when the cohort is too small.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Released)]
pub struct Answer {
    /// `None` (null) below the minimum cohort.
    pub value: Option<i64>,
    pub noise_scale: f64,
    pub epsilon: f64,
    pub min_cohort: u64,
    pub mechanism: String,
}

fn scale_for(sensitivity: f64, epsilon: f64) -> Result<f64, DpError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(DpError::Invalid("ε is finite and > 0"));
    }
    Ok(sensitivity / epsilon)
}

fn gate(noisy: i64, min_cohort: u64) -> Option<i64> {
    (u64::try_from(noisy).ok()? >= min_cohort).then_some(noisy)
}

/// A count of distinct members (sensitivity 1).
pub fn count(
    noise: &dyn Noise,
    members: u64,
    epsilon: f64,
    min_cohort: u64,
) -> Result<Answer, DpError> {
    let scale = scale_for(1.0, epsilon)?;
    let v = i64::try_from(members).map_err(|_| DpError::Invalid("count too large"))?;
    let noisy = noise.noisy(v, scale)?;
    Ok(Answer {
        value: gate(noisy, min_cohort),
        noise_scale: scale,
        epsilon,
        min_cohort,
        mechanism: noise.mechanism().to_owned(),
    })
}

/// A bounded sum and mean: one value per member, clamped to `0..=upper`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SumAndMean {
    pub count: Answer,
    pub sum: Answer,
    /// Post-processing of the two noisy figures (no extra privacy cost); null
    /// when either is withheld.
    pub mean: Option<f64>,
}

/// Splits ε evenly between the count and the sum.
pub fn bounded_sum(
    noise: &dyn Noise,
    values: &[i64],
    upper: i64,
    epsilon: f64,
    min_cohort: u64,
) -> Result<SumAndMean, DpError> {
    if upper <= 0 {
        return Err(DpError::UnboundedSum);
    }
    let clamped: i64 = values
        .iter()
        .map(|v| (*v).clamp(0, upper))
        .fold(0i64, i64::saturating_add);
    aggregate_sum(
        noise,
        values.len() as u64,
        clamped,
        upper,
        epsilon,
        min_cohort,
    )
}

/// A bounded sum from its aggregates: `members` contributors and the sum of
/// their values, each already clamped to `0..=upper` (the storage layer does
/// this in SQL). Splits ε evenly between the count and the sum.
pub fn aggregate_sum(
    noise: &dyn Noise,
    members: u64,
    clamped_sum: i64,
    upper: i64,
    epsilon: f64,
    min_cohort: u64,
) -> Result<SumAndMean, DpError> {
    if upper <= 0 {
        return Err(DpError::UnboundedSum);
    }
    let half = epsilon / 2.0;
    let n = count(noise, members, half, min_cohort)?;
    let scale = scale_for(upper as f64, half)?;
    let noisy = noise.noisy(clamped_sum, scale)?;
    let sum = Answer {
        // The sum is released only when its cohort (the noisy count) is.
        value: n.value.map(|_| noisy.max(0)),
        noise_scale: scale,
        epsilon: half,
        min_cohort,
        mechanism: noise.mechanism().to_owned(),
    };
    let mean = match (n.value, sum.value) {
        (Some(c), Some(s)) if c > 0 => Some(s as f64 / c as f64),
        _ => None,
    };
    Ok(SumAndMean {
        count: n,
        sum,
        mean,
    })
}

/// One bin of a histogram.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bin {
    pub category: String,
    /// Null below the minimum cohort.
    pub value: Option<i64>,
}

/// A histogram over a fixed category set.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Histogram {
    pub bins: Vec<Bin>,
    pub noise_scale: f64,
    pub epsilon: f64,
    pub min_cohort: u64,
    pub mechanism: String,
}

/// Distinct members per category: `counts[i]` for `categories[i]`. One member
/// appears in at most `max_bins_per_member` bins, which is the L1 sensitivity.
pub fn histogram(
    noise: &dyn Noise,
    categories: &[String],
    counts: &[u64],
    max_bins_per_member: u32,
    epsilon: f64,
    min_cohort: u64,
) -> Result<Histogram, DpError> {
    if categories.len() != counts.len() || categories.is_empty() {
        return Err(DpError::Invalid(
            "one count per category, at least one category",
        ));
    }
    if max_bins_per_member == 0 {
        return Err(DpError::Invalid("max_bins_per_member is at least 1"));
    }
    let scale = scale_for(f64::from(max_bins_per_member), epsilon)?;
    let mut bins = Vec::with_capacity(categories.len());
    for (c, n) in categories.iter().zip(counts) {
        let v = i64::try_from(*n).map_err(|_| DpError::Invalid("count too large"))?;
        bins.push(Bin {
            category: c.clone(),
            value: gate(noise.noisy(v, scale)?, min_cohort),
        });
    }
    Ok(Histogram {
        bins,
        noise_scale: scale,
        epsilon,
        min_cohort,
        mechanism: noise.mechanism().to_owned(),
    })
}

/// Counts events into the fixed category set, refusing unknown categories.
pub fn bin_counts<'a>(
    categories: &[String],
    events: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<u64>, DpError> {
    let index: std::collections::HashMap<&str, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut counts = vec![0u64; categories.len()];
    for e in events {
        let i = index
            .get(e)
            .ok_or_else(|| DpError::UnknownCategory(e.chars().take(64).collect()))?;
        if let Some(c) = counts.get_mut(*i) {
            *c += 1;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Shift(i64);
    impl Noise for Shift {
        fn noisy(&self, v: i64, _: f64) -> Result<i64, DpError> {
            Ok(v + self.0)
        }
        fn mechanism(&self) -> &'static str {
            "shift"
        }
    }

    #[test]
    fn counts_are_gated_on_the_noisy_value_and_carry_their_scale() {
        let a = count(&Shift(0), 25, 0.5, 20).unwrap();
        assert_eq!((a.value, a.noise_scale, a.epsilon), (Some(25), 2.0, 0.5));
        assert_eq!(count(&Shift(-6), 25, 0.5, 20).unwrap().value, None);
        assert!(count(&Shift(0), 25, 0.0, 20).is_err());
    }

    #[test]
    fn sums_are_bounded_and_means_are_post_processing() {
        let values: Vec<i64> = (0..30)
            .map(|i| if i == 0 { 1_000_000 } else { 1_000 })
            .collect();
        let r = bounded_sum(&Shift(0), &values, 5_000, 1.0, 20).unwrap();
        assert_eq!(r.count.value, Some(30));
        assert_eq!(
            r.sum.value,
            Some(5_000 + 29 * 1_000),
            "the outlier is clamped"
        );
        assert_eq!(r.sum.noise_scale, 5_000.0 / 0.5);
        assert!((r.mean.unwrap() - 34_000.0 / 30.0).abs() < 1e-9);
        assert!(bounded_sum(&Shift(0), &values, 0, 1.0, 20).is_err());
        let small = bounded_sum(&Shift(0), &values[..5], 5_000, 1.0, 20).unwrap();
        assert_eq!(
            (small.count.value, small.sum.value, small.mean),
            (None, None, None)
        );
    }

    #[test]
    fn histograms_withhold_small_bins_and_refuse_unknown_categories() {
        let cats: Vec<String> = ["organic", "bakery", "repair"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let events = std::iter::repeat_n("organic", 30).chain(std::iter::repeat_n("bakery", 3));
        let counts = bin_counts(&cats, events).unwrap();
        assert_eq!(counts, vec![30, 3, 0]);
        let h = histogram(&Shift(0), &cats, &counts, 2, 1.0, 20).unwrap();
        let values: Vec<Option<i64>> = h.bins.iter().map(|b| b.value).collect();
        assert_eq!(values, vec![Some(30), None, None]);
        assert_eq!(h.noise_scale, 2.0);
        assert!(matches!(
            bin_counts(&cats, ["pharmacy"]),
            Err(DpError::UnknownCategory(_))
        ));
    }
}
