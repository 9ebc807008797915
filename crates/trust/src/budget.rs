//! Per-requester privacy budgets under sequential composition.
//!
//! Every mechanism here is pure ε-differentially private (Laplace noise), so
//! the privacy loss of a sequence of answers to one requester is at most the
//! sum of their ε (basic sequential composition; OpenDP's own composition for
//! pure DP is the same sum). The accountant checks and charges in one step,
//! before any noise is drawn: a query that would take the total over the budget
//! is refused and charges nothing.
//!
//! Amounts are kept in whole micro-ε: a query's ε is rounded *up*, a budget
//! *down*, so summing many small queries never drifts past the budget through
//! float rounding (and ten queries of 0.1 fit a budget of 1.0 exactly).

use crate::TrustError;
use std::collections::BTreeMap;

/// One millionth of ε.
const MICRO: f64 = 1_000_000.0;

/// ε in whole micro-ε, rounded up (what a query costs).
pub fn micros_up(epsilon: f64) -> u64 {
    // Saturating float-to-int cast; callers check finiteness first.
    (epsilon * MICRO - 1e-6).ceil().max(0.0) as u64
}

/// ε in whole micro-ε, rounded down (what a budget allows).
pub fn micros_down(epsilon: f64) -> u64 {
    (epsilon * MICRO + 1e-6).floor().max(0.0) as u64
}

fn eps(micros: u64) -> f64 {
    micros as f64 / MICRO
}

/// Budgets per requester (an organisation, or a research purpose of the trust).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accountant {
    budgets: BTreeMap<String, u64>,
    spent: BTreeMap<String, u64>,
}

/// A successful charge: what was spent and what is left.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Charge {
    pub epsilon: f64,
    pub spent: f64,
    pub remaining: f64,
}

impl Accountant {
    /// Sets (or replaces) a requester's total budget.
    pub fn set_budget(&mut self, requester: &str, epsilon: f64) -> Result<(), TrustError> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(TrustError::Invalid("a budget is a finite ε ≥ 0"));
        }
        self.budgets
            .insert(requester.to_owned(), micros_down(epsilon));
        Ok(())
    }

    /// ε spent so far by the requester.
    pub fn spent(&self, requester: &str) -> f64 {
        eps(self.spent.get(requester).copied().unwrap_or(0))
    }

    /// Charges `epsilon` (rounded up to a micro-ε) to the requester, or refuses
    /// without charging.
    pub fn charge(&mut self, requester: &str, epsilon: f64) -> Result<Charge, TrustError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(TrustError::Invalid("a query spends a finite ε > 0"));
        }
        let budget = *self
            .budgets
            .get(requester)
            .ok_or_else(|| TrustError::NoBudget(requester.to_owned()))?;
        let spent = self.spent.get(requester).copied().unwrap_or(0);
        let needed = micros_up(epsilon).max(1);
        let total = spent.saturating_add(needed);
        if total > budget {
            return Err(TrustError::OverBudget {
                requester: requester.to_owned(),
                budget: eps(budget),
                spent: eps(spent),
                needed: eps(needed),
            });
        }
        self.spent.insert(requester.to_owned(), total);
        Ok(Charge {
            epsilon: eps(needed),
            spent: eps(total),
            remaining: eps(budget - total),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_the_query_that_would_exceed_and_charges_nothing() {
        let mut a = Accountant::default();
        a.set_budget("corner-coop", 1.0).unwrap();
        for _ in 0..10 {
            a.charge("corner-coop", 0.1).unwrap();
        }
        let e = a.charge("corner-coop", 0.1).unwrap_err();
        assert!(matches!(e, TrustError::OverBudget { .. }), "{e}");
        assert_eq!(a.spent("corner-coop"), 1.0);
        // A query of ε = 1/3 costs 0.333334 after rounding up, so the third one
        // no longer fits a budget of 1.0: conservative, never over.
        a.set_budget("research", 1.0).unwrap();
        let third = 1.0 / 3.0;
        assert!(a.charge("research", third).is_ok());
        assert!(a.charge("research", third).is_ok());
        assert!(a.charge("research", third).is_err());
        assert_eq!(
            a.charge("unknown", 0.1),
            Err(TrustError::NoBudget("unknown".into()))
        );
        assert!(a.charge("corner-coop", f64::NAN).is_err());
        assert!(a.charge("corner-coop", -1.0).is_err());
        assert!(a.set_budget("x", f64::INFINITY).is_err());
    }

    proptest! {
        /// Over random query sequences the accepted ε never exceeds the budget,
        /// and every refusal is a query that would have exceeded it.
        #[test]
        fn accounting_never_exceeds_the_budget(
            budget in 0.0f64..5.0,
            queries in proptest::collection::vec((0usize..3, 0.000_001f64..2.0), 0..60),
        ) {
            let names = ["a", "b", "c"];
            let mut acc = Accountant::default();
            for n in names {
                acc.set_budget(n, budget).unwrap();
            }
            let mut accepted = [0.0f64; 3];
            for (who, e) in queries {
                let before = acc.spent(names[who]);
                match acc.charge(names[who], e) {
                    Ok(c) => {
                        prop_assert!(c.epsilon >= e, "charged {} for {}", c.epsilon, e);
                        accepted[who] += e;
                        prop_assert!(c.spent <= budget + 1e-9);
                    }
                    Err(TrustError::OverBudget { .. }) => {
                        prop_assert!(before + e > budget - 1e-6);
                        prop_assert_eq!(acc.spent(names[who]), before);
                    }
                    Err(other) => prop_assert!(false, "unexpected {}", other),
                }
            }
            for (i, n) in names.iter().enumerate() {
                // What was really asked for never exceeds the budget.
                prop_assert!(accepted[i] <= budget + 1e-9);
                prop_assert!(acc.spent(n) <= budget + 1e-9);
            }
        }
    }
}
