//! The one privacy accountant.
//!
//! Every differentially private release in me2b (the trust's answers, offer
//! statistics) is charged here, **before** any noise is drawn, to the budget
//! of each data pool it reads. A charge is all or nothing across its pools
//! and is checked against three limits per pool: what the pool may spend in
//! the period (whoever asks), what it may spend over its life, and what this
//! asker may spend of it in the period (its allowance). Composition is basic
//! sequential composition of pure ε-DP: the privacy loss of everything a
//! pool released is at most the sum of the ε charged to it.
//!
//! Amounts are kept in whole micro-ε: a release's ε is rounded *up*, a
//! budget *down*, so many small charges never drift past a budget through
//! float rounding. Every successful charge is in the audit log (pools, ε,
//! mechanism) before the figure is computed.

use crate::governance::{fmt_eps, PrivacyGovernance};
use crate::pool::{Period, PeriodLength, Pool};
use crate::DpError;
use me2b_audit::AuditLog;
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{Clock, OrgId};
use me2b_storage::{DpCharge, PoolCharge, PoolLimit, Store};
use serde::Serialize;
use std::sync::Arc;

/// One millionth of ε.
const MICRO: f64 = 1_000_000.0;

/// ε in whole micro-ε, rounded up (what a release costs).
pub fn micros_up(epsilon: f64) -> i64 {
    // Saturating float-to-int cast; callers check finiteness first.
    (epsilon * MICRO - 1e-6).ceil().max(0.0) as i64
}

/// ε in whole micro-ε, rounded down (what a budget allows).
pub fn micros_down(epsilon: f64) -> i64 {
    (epsilon * MICRO + 1e-6).floor().max(0.0) as i64
}

fn eps(micros: i64) -> f64 {
    micros as f64 / MICRO
}

/// A release to charge.
#[derive(Clone, Debug)]
pub struct Release {
    pub asker: OrgId,
    /// Every pool the release reads.
    pub pools: Vec<Pool>,
    pub epsilon: f64,
    /// The mechanism, as the audit log and the answer name it.
    pub mechanism: String,
    /// What is released, in a few words (no personal data): `trust count`,
    /// `offer … statistics stream`.
    pub what: String,
}

/// A pool's budget as an asker sees it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolBudget {
    pub pool: String,
    /// The budget period, e.g. `2026-12`.
    pub period: String,
    /// ε the pool may spend this period, whoever asks.
    pub budget: f64,
    /// ε the pool spent this period, by everyone.
    pub spent: f64,
    pub remaining: f64,
    /// ε the asker may spend of the pool this period.
    pub allowance: f64,
    /// ε the asker spent of it this period.
    pub allowance_spent: f64,
    /// ε the pool may spend over its life, and spent so far.
    pub lifetime_cap: f64,
    pub lifetime_spent: f64,
}

/// What a successful charge spent, and the budgets after it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Charged {
    /// ε charged now (rounded up to a micro-ε).
    pub epsilon: f64,
    pub mechanism: String,
    pub pools: Vec<PoolBudget>,
}

/// Who spent how much of a pool this period.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolUse {
    pub pool: String,
    pub period: String,
    pub budget: f64,
    pub spent: f64,
    pub lifetime_cap: f64,
    pub lifetime_spent: f64,
    /// (asker id, ε spent, releases charged) this period.
    pub by: Vec<AskerUse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AskerUse {
    pub asker: String,
    pub spent: f64,
    pub releases: i64,
}

/// The accountant. Cheap to clone.
#[derive(Clone)]
pub struct Accountant {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    governance: PrivacyGovernance,
    period: PeriodLength,
}

impl std::fmt::Debug for Accountant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accountant")
            .field("period", &self.inner.period)
            .finish_non_exhaustive()
    }
}

impl Accountant {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        governance: PrivacyGovernance,
    ) -> Result<Self, DpError> {
        governance.check()?;
        let period = governance.period_length()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                audit,
                clock,
                governance,
                period,
            }),
        })
    }

    pub fn governance(&self) -> &PrivacyGovernance {
        &self.inner.governance
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn min_cohort(&self) -> u64 {
        self.inner.governance.min_cohort
    }

    /// The period now.
    pub fn period(&self) -> Period {
        self.inner.period.period_of(self.inner.clock.now())
    }

    pub fn period_label(&self, p: Period) -> String {
        self.inner.period.label(p)
    }

    fn line(&self, pool: &Pool, asker: OrgId, micros: i64, period: Period) -> PoolCharge {
        let g = &self.inner.governance;
        let rule = g.rule(pool.class());
        PoolCharge {
            pool: pool.to_string(),
            period: period.0,
            micros,
            period_budget: micros_down(rule.epsilon_per_period),
            allowance: micros_down(g.allowance(pool, asker)),
            lifetime_budget: micros_down(rule.lifetime),
        }
    }

    /// Charges a release to every pool it reads, or refuses without charging
    /// anything; audits the charge. Call it before drawing any noise.
    #[tracing::instrument(skip_all)]
    pub async fn charge(&self, r: Release) -> Result<Charged, DpError> {
        if !(r.epsilon.is_finite() && r.epsilon > 0.0) {
            return Err(DpError::Invalid("a release spends a finite ε > 0"));
        }
        let mut pools = r.pools.clone();
        pools.sort();
        pools.dedup();
        if pools.is_empty() {
            return Err(DpError::Invalid("a release reads at least one pool"));
        }
        let micros = micros_up(r.epsilon).max(1);
        let period = self.period();
        let g = &self.inner.governance;
        if let Some(p) = pools.iter().find(|p| g.allowance(p, r.asker) <= 0.0) {
            return Err(DpError::NoAllowance {
                pool: p.to_string(),
            });
        }
        let mut lines: Vec<PoolCharge> = pools
            .iter()
            .map(|p| self.line(p, r.asker, micros, period))
            .collect();
        // What all askers but a pool's owner may spend of it together: the
        // owner's share cannot be spent by others.
        for p in &pools {
            let rule = g.rule(p.class());
            if let (Some(owner), Some(others)) = (p.owner(), rule.others_total) {
                if owner != r.asker {
                    lines.push(PoolCharge {
                        pool: format!("{p}#others"),
                        period: period.0,
                        micros,
                        period_budget: micros_down(others),
                        allowance: micros_down(others),
                        lifetime_budget: micros_down(rule.lifetime),
                    });
                }
            }
        }
        let asker = r.asker.to_string();
        match self.inner.store.dp_charge(&asker, &lines).await? {
            DpCharge::Charged => {}
            DpCharge::Refused { line, limit, spent } => {
                let l = lines
                    .get(line)
                    .ok_or(DpError::Invalid("refused line out of range"))?;
                let others = l.pool.ends_with("#others");
                let (what, budget) = match limit {
                    PoolLimit::Period if others => (
                        "what organisations other than its co-op may spend of it this period",
                        l.period_budget,
                    ),
                    PoolLimit::Period => ("this period's budget", l.period_budget),
                    PoolLimit::Allowance => ("your allowance this period", l.allowance),
                    PoolLimit::Lifetime => ("the lifetime cap", l.lifetime_budget),
                };
                return Err(DpError::OverBudget {
                    pool: l.pool.trim_end_matches("#others").to_owned(),
                    limit: what,
                    budget: eps(budget),
                    spent: eps(spent),
                    needed: eps(micros),
                });
            }
        }
        let names: Vec<String> = pools.iter().map(Pool::to_string).collect();
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(r.asker), Action::PrivacyRelease).object(
                    format!(
                        "{}: ε {} from {} ({}), period {}",
                        r.what,
                        fmt_eps(eps(micros)),
                        names.join(" + "),
                        r.mechanism,
                        self.period_label(period)
                    ),
                ),
            )
            .await?;
        let mut budgets = Vec::with_capacity(pools.len());
        for p in &pools {
            budgets.push(self.budget_for(p, r.asker).await?);
        }
        Ok(Charged {
            epsilon: eps(micros),
            mechanism: r.mechanism,
            pools: budgets,
        })
    }

    /// Audits a release that an earlier charge covers (a scheduled release of
    /// a stream already charged in this period): ε 0 now.
    pub async fn record_prepaid(
        &self,
        asker: OrgId,
        pools: &[Pool],
        mechanism: &str,
        what: &str,
    ) -> Result<(), DpError> {
        let names: Vec<String> = pools.iter().map(Pool::to_string).collect();
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(asker), Action::PrivacyRelease).object(
                    format!(
                    "{what}: ε 0 now (charged to the stream in this period) from {} ({mechanism})",
                    names.join(" + ")
                ),
                ),
            )
            .await?;
        Ok(())
    }

    /// A pool's budget this period as `asker` sees it.
    pub async fn budget_for(&self, pool: &Pool, asker: OrgId) -> Result<PoolBudget, DpError> {
        let period = self.period();
        let spend = self
            .inner
            .store
            .dp_pool_spend(&pool.to_string(), period.0)
            .await?;
        let g = &self.inner.governance;
        let rule = g.rule(pool.class());
        let asker_id = asker.to_string();
        let mine = spend
            .by_asker
            .iter()
            .find(|a| a.asker == asker_id)
            .map(|a| a.spent_micro)
            .unwrap_or(0);
        let budget = micros_down(rule.epsilon_per_period);
        let lifetime = micros_down(rule.lifetime);
        let left = (budget - spend.period_micro).min(lifetime - spend.lifetime_micro);
        Ok(PoolBudget {
            pool: pool.to_string(),
            period: self.period_label(period),
            budget: eps(budget),
            spent: eps(spend.period_micro),
            remaining: eps(left.max(0)),
            allowance: eps(micros_down(g.allowance(pool, asker))),
            allowance_spent: eps(mine),
            lifetime_cap: eps(lifetime),
            lifetime_spent: eps(spend.lifetime_micro),
        })
    }

    /// Who spent how much of a pool this period: what a member in the pool
    /// is shown.
    pub async fn pool_use(&self, pool: &Pool) -> Result<PoolUse, DpError> {
        let period = self.period();
        let spend = self
            .inner
            .store
            .dp_pool_spend(&pool.to_string(), period.0)
            .await?;
        let rule = self.inner.governance.rule(pool.class());
        Ok(PoolUse {
            pool: pool.to_string(),
            period: self.period_label(period),
            budget: eps(micros_down(rule.epsilon_per_period)),
            spent: eps(spend.period_micro),
            lifetime_cap: eps(micros_down(rule.lifetime)),
            lifetime_spent: eps(spend.lifetime_micro),
            by: spend
                .by_asker
                .into_iter()
                .map(|a| AskerUse {
                    asker: a.asker,
                    spent: eps(a.spent_micro),
                    releases: a.releases,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_against_the_asker() {
        assert_eq!(micros_up(0.1), 100_000);
        assert_eq!(micros_down(1.0), 1_000_000);
        assert_eq!(micros_up(1.0 / 3.0), 333_334);
        assert_eq!(micros_down(1.0 / 3.0), 333_333);
        // Ten releases of 0.1 fit a budget of 1.0 exactly.
        assert_eq!(10 * micros_up(0.1), micros_down(1.0));
        assert_eq!(micros_up(0.0), 0);
    }
}
