//! Per-requester privacy budgets under sequential composition.
//!
//! Every mechanism here is pure ε-differentially private (Laplace noise), so
//! the privacy loss of a sequence of answers to one requester is at most the
//! sum of their ε (basic sequential composition). The accountant checks and
//! charges in one step, before any noise is drawn: a query that would take the
//! total over the budget is refused and charges nothing.

use crate::TrustError;
use std::collections::BTreeMap;

/// Budgets per requester (an organisation, or a research purpose of the trust).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accountant {
    budgets: BTreeMap<String, f64>,
    spent: BTreeMap<String, f64>,
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
        self.budgets.insert(requester.to_owned(), epsilon);
        Ok(())
    }

    pub fn spent(&self, requester: &str) -> f64 {
        self.spent.get(requester).copied().unwrap_or(0.0)
    }

    /// Charges `epsilon` to the requester, or refuses without charging.
    pub fn charge(&mut self, requester: &str, epsilon: f64) -> Result<Charge, TrustError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(TrustError::Invalid("a query spends a finite ε > 0"));
        }
        let budget = *self
            .budgets
            .get(requester)
            .ok_or_else(|| TrustError::NoBudget(requester.to_owned()))?;
        let spent = self.spent(requester);
        let total = spent + epsilon;
        // A tiny tolerance so that e.g. ten queries of 0.1 fit a budget of 1.0
        // despite binary rounding; never more than one part in a billion.
        if total > budget * (1.0 + 1e-9) {
            return Err(TrustError::OverBudget {
                requester: requester.to_owned(),
                budget,
                spent,
                needed: epsilon,
            });
        }
        self.spent.insert(requester.to_owned(), total);
        Ok(Charge {
            epsilon,
            spent: total,
            remaining: (budget - total).max(0.0),
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
        assert!((a.spent("corner-coop") - 1.0).abs() < 1e-9);
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
            queries in proptest::collection::vec((0usize..3, 0.001f64..2.0), 0..60),
        ) {
            let names = ["a", "b", "c"];
            let mut acc = Accountant::default();
            for n in names {
                acc.set_budget(n, budget).unwrap();
            }
            let mut accepted = [0.0f64; 3];
            for (who, eps) in queries {
                let before = acc.spent(names[who]);
                match acc.charge(names[who], eps) {
                    Ok(c) => {
                        accepted[who] += eps;
                        prop_assert!(c.spent <= budget * (1.0 + 1e-9));
                    }
                    Err(TrustError::OverBudget { .. }) => {
                        prop_assert!(before + eps > budget * (1.0 + 1e-9));
                        prop_assert_eq!(acc.spent(names[who]), before);
                    }
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            }
            for (i, n) in names.iter().enumerate() {
                prop_assert!(accepted[i] <= budget * (1.0 + 1e-9));
                prop_assert!((acc.spent(n) - accepted[i]).abs() < 1e-9);
            }
        }
    }
}
