//! The privacy part of the governance file: the budget period, the minimum
//! cohort, and a budget per data pool (ε per period, a lifetime cap, and the
//! allowances that split a pool between askers).

use crate::pool::{PeriodLength, Pool, PoolClass};
use crate::DpError;
use me2b_domain::OrgId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Budgets of one class of pools (every co-op's pool has the same rule).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolRule {
    /// ε the pool may spend per period, whoever asks.
    pub epsilon_per_period: f64,
    /// ε the pool may spend over its whole life.
    pub lifetime: f64,
    /// What one asker may spend of the pool per period, unless named in
    /// `allowances` (or the pool's owner).
    pub allowance: f64,
    /// For a co-op's own pool: what that co-op may spend per period
    /// (default: the whole period's budget).
    pub owner_allowance: Option<f64>,
    /// Allowances per asker (organisation id), per period.
    pub allowances: BTreeMap<OrgId, f64>,
    /// For a co-op's own pool: what every organisation but the co-op may
    /// spend of it per period, together, so others cannot spend the co-op's
    /// share. `None`: no limit beyond each one's allowance.
    pub others_total: Option<f64>,
}

impl PoolRule {
    fn new(epsilon_per_period: f64, lifetime: f64, allowance: f64) -> Self {
        Self {
            epsilon_per_period,
            lifetime,
            allowance,
            owner_allowance: None,
            allowances: BTreeMap::new(),
            others_total: None,
        }
    }

    fn check(&self, what: &'static str) -> Result<(), DpError> {
        let ok = |v: f64| v.is_finite() && (0.0..=1_000_000.0).contains(&v);
        let all = [self.epsilon_per_period, self.lifetime, self.allowance]
            .into_iter()
            .chain(self.owner_allowance)
            .chain(self.others_total)
            .chain(self.allowances.values().copied());
        if !all.into_iter().all(ok) {
            return Err(DpError::Config(format!(
                "{what}: every ε is a number from 0 to 1,000,000"
            )));
        }
        if self.epsilon_per_period > self.lifetime {
            return Err(DpError::Config(format!(
                "{what}: epsilon_per_period is more than the lifetime cap"
            )));
        }
        Ok(())
    }
}

/// One pool class's table as written in the file: every key optional, each
/// missing one taking that class's default (so writing one key never resets
/// the others to zero).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    epsilon_per_period: Option<f64>,
    lifetime: Option<f64>,
    allowance: Option<f64>,
    owner_allowance: Option<f64>,
    others_total: Option<f64>,
    #[serde(default)]
    allowances: BTreeMap<OrgId, f64>,
}

impl PoolFile {
    fn over(self, d: PoolRule) -> PoolRule {
        let mut allowances = d.allowances;
        allowances.extend(self.allowances);
        PoolRule {
            epsilon_per_period: self.epsilon_per_period.unwrap_or(d.epsilon_per_period),
            lifetime: self.lifetime.unwrap_or(d.lifetime),
            allowance: self.allowance.unwrap_or(d.allowance),
            owner_allowance: self.owner_allowance.or(d.owner_allowance),
            others_total: self.others_total.or(d.others_total),
            allowances,
        }
    }
}

/// `[privacy.pools]` as written in the file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PoolRulesFile {
    trust_coop: Option<PoolFile>,
    trust_research: Option<PoolFile>,
    offers_audience: Option<PoolFile>,
    intents: Option<PoolFile>,
}

impl From<PoolRulesFile> for PoolRules {
    fn from(f: PoolRulesFile) -> Self {
        let d = PoolRules::default();
        Self {
            trust_coop: f.trust_coop.unwrap_or_default().over(d.trust_coop),
            trust_research: f.trust_research.unwrap_or_default().over(d.trust_research),
            offers_audience: f
                .offers_audience
                .unwrap_or_default()
                .over(d.offers_audience),
            intents: f.intents.unwrap_or_default().over(d.intents),
        }
    }
}

/// The pools' rules, one per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PoolRulesFile", rename_all = "kebab-case")]
pub struct PoolRules {
    pub trust_coop: PoolRule,
    pub trust_research: PoolRule,
    pub offers_audience: PoolRule,
    pub intents: PoolRule,
}

impl Default for PoolRules {
    fn default() -> Self {
        Self {
            // A co-op spends its own pool; anyone else (an overlap asked by
            // another co-op, a research requester) at most 0.1 of it.
            trust_coop: PoolRule {
                others_total: Some(0.2),
                ..PoolRule::new(0.5, 6.0, 0.1)
            },
            // Open only to requesters named in `allowances`.
            trust_research: PoolRule::new(0.5, 6.0, 0.0),
            // Every offer's statistics; 0.5 per publisher per period.
            offers_audience: PoolRule::new(1.0, 12.0, 0.5),
            // The counts of open intents shown to organisations; 0.5 per
            // asker per period.
            intents: PoolRule::new(1.0, 12.0, 0.5),
        }
    }
}

/// `[privacy]` in the governance file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyGovernance {
    /// `"month"` (calendar months, UTC) or `"N days"`.
    pub period: String,
    /// No figure below this many members is released (on the noisy value).
    /// A second line of defence: the guarantee is the ε bound.
    pub min_cohort: u64,
    pub pools: PoolRules,
}

impl Default for PrivacyGovernance {
    fn default() -> Self {
        Self {
            period: "month".into(),
            min_cohort: crate::mechanisms::DEFAULT_MIN_COHORT,
            pools: PoolRules::default(),
        }
    }
}

impl PrivacyGovernance {
    /// Checks the values; the period must parse.
    pub fn check(&self) -> Result<(), DpError> {
        self.period_length()?;
        if self.min_cohort == 0 {
            return Err(DpError::Config("min_cohort is at least 1".into()));
        }
        self.pools.trust_coop.check("pools.trust-coop")?;
        self.pools.trust_research.check("pools.trust-research")?;
        self.pools.offers_audience.check("pools.offers-audience")?;
        self.pools.intents.check("pools.intents")
    }

    pub fn period_length(&self) -> Result<PeriodLength, DpError> {
        let p = self.period.trim();
        if p == "month" {
            return Ok(PeriodLength::Month);
        }
        p.strip_suffix("days")
            .or_else(|| p.strip_suffix("day"))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|n| (1..=3_660).contains(n))
            .map(PeriodLength::Days)
            .ok_or_else(|| DpError::Config("period is \"month\" or \"N days\"".into()))
    }

    pub fn rule(&self, class: PoolClass) -> &PoolRule {
        match class {
            PoolClass::TrustCoop => &self.pools.trust_coop,
            PoolClass::TrustResearch => &self.pools.trust_research,
            PoolClass::OffersAudience => &self.pools.offers_audience,
            PoolClass::Intents => &self.pools.intents,
        }
    }

    /// What `asker` may spend of `pool` per period.
    pub fn allowance(&self, pool: &Pool, asker: OrgId) -> f64 {
        let rule = self.rule(pool.class());
        let own = if pool.owner() == Some(asker) {
            Some(rule.owner_allowance.unwrap_or(rule.epsilon_per_period))
        } else {
            None
        };
        rule.allowances
            .get(&asker)
            .copied()
            .or(own)
            .unwrap_or(rule.allowance)
            .min(rule.epsilon_per_period)
    }

    /// Whether governance names `asker` for pools of this class.
    pub fn names(&self, class: PoolClass, asker: OrgId) -> bool {
        self.rule(class)
            .allowances
            .get(&asker)
            .is_some_and(|a| *a > 0.0)
    }

    /// The guarantee for one member, in plain words.
    pub fn guarantee(&self) -> String {
        let p = &self.pools;
        let per = if self.period.trim() == "month" {
            "month".to_owned()
        } else {
            format!("period of {}", self.period.trim())
        };
        let one = p.offers_audience.epsilon_per_period
            + p.trust_research.epsilon_per_period
            + p.trust_coop.epsilon_per_period;
        format!(
            "Every figure me2b releases about members (offer statistics, the data trust's answers, the counts of open intents) is charged to the budget of each pool of people it reads, shared by everyone who asks. In one {per}, everything released to all organisations together is ε-differentially private for you, with ε at most {} for offer statistics, plus {} for the trust's research questions, plus {} for each co-op whose receipts about you the trust holds: {} for a member of one co-op, plus {} if you publish intents (the counts of open intents). For any yes-or-no fact about you, someone holding every release of the {per}, who thought it a coin toss before, can be right at most {} of the time (e^ε/(1+e^ε)). Over a pool's whole life its lifetime cap bounds the same way. No figure is released for fewer than {} people, but that threshold is a second line of defence: the guarantee is the ε bound.",
            fmt_eps(p.offers_audience.epsilon_per_period),
            fmt_eps(p.trust_research.epsilon_per_period),
            fmt_eps(p.trust_coop.epsilon_per_period),
            fmt_eps(one),
            fmt_eps(p.intents.epsilon_per_period),
            percent(one),
            self.min_cohort,
        )
    }
}

/// e^ε/(1+e^ε) as a percentage, without overflowing for large ε.
fn percent(eps: f64) -> String {
    let p = 100.0 / (1.0 + (-eps).exp());
    if p > 99.9 {
        "more than 99.9 %".into()
    } else {
        format!("{p:.0} %")
    }
}

/// ε as people read it: at most 3 decimals, no trailing zeros.
pub fn fmt_eps(e: f64) -> String {
    let s = format!("{e:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowances_split_a_pool() {
        let a: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        let b: OrgId = "6f1c1e2a-0000-4000-8000-000000000002".parse().unwrap();
        let mut g = PrivacyGovernance::default();
        assert_eq!(g.allowance(&Pool::TrustCoop(a), a), 0.5, "the owner: all");
        assert_eq!(g.allowance(&Pool::TrustCoop(a), b), 0.1, "another asker");
        assert_eq!(g.allowance(&Pool::TrustResearch, a), 0.0, "not named");
        assert!(!g.names(PoolClass::TrustResearch, a));
        g.pools.trust_research.allowances.insert(a, 9.0);
        assert!(g.names(PoolClass::TrustResearch, a));
        assert_eq!(
            g.allowance(&Pool::TrustResearch, a),
            0.5,
            "capped by the period"
        );
        assert_eq!(g.allowance(&Pool::OffersAudience, b), 0.5);
        g.check().unwrap();
        assert!(
            g.guarantee().contains("2 for a member of one co-op"),
            "{}",
            g.guarantee()
        );
    }

    #[test]
    fn a_table_with_one_key_keeps_the_other_defaults() {
        let g: PrivacyGovernance =
            toml::from_str("[pools.offers-audience]\nepsilon_per_period = 2.0\nlifetime = 20.0\n")
                .unwrap();
        let d = PrivacyGovernance::default();
        assert_eq!(g.pools.offers_audience.epsilon_per_period, 2.0);
        assert_eq!(
            g.pools.offers_audience.allowance,
            d.pools.offers_audience.allowance
        );
        assert_eq!(g.pools.trust_coop, d.pools.trust_coop);
        let g: PrivacyGovernance = toml::from_str("[pools.trust-coop]\nallowance = 0.2\n").unwrap();
        assert_eq!(g.pools.trust_coop.others_total, Some(0.2));
        assert_eq!(g.pools.trust_coop.epsilon_per_period, 0.5);
        assert!(toml::from_str::<PrivacyGovernance>("[pools.trust-coop]\nbudget = 1.0\n").is_err());
        assert!(toml::from_str::<PrivacyGovernance>("[pools.everyone]\nlifetime = 1.0\n").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut g = PrivacyGovernance {
            period: "fortnight".into(),
            ..Default::default()
        };
        assert!(g.check().is_err());
        g.period = "14 days".into();
        assert_eq!(g.period_length().unwrap(), PeriodLength::Days(14));
        g.check().unwrap();
        g.pools.trust_coop.epsilon_per_period = 7.0;
        assert!(g.check().is_err(), "more per period than in a lifetime");
        g.pools.trust_coop.epsilon_per_period = f64::NAN;
        assert!(g.check().is_err());
        let g = PrivacyGovernance {
            min_cohort: 0,
            ..Default::default()
        };
        assert!(g.check().is_err());
        assert_eq!(fmt_eps(0.5), "0.5");
        assert_eq!(fmt_eps(2.0), "2");
        assert_eq!(fmt_eps(1.0 / 3.0), "0.333");
    }
}
