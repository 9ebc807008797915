//! What a member is told about the privacy budgets of the pools they are in:
//! how much was spent this period, by whom, in plain words.

use crate::accountant::Accountant;
use crate::governance::fmt_eps;
use crate::pool::Pool;
use crate::DpError;
use me2b_domain::OrgId;
use serde::Serialize;

/// One pool a member is in, this period.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    pub pool: String,
    pub description: String,
    pub budget: f64,
    pub spent: f64,
    pub lifetime_cap: f64,
    pub lifetime_spent: f64,
    pub spent_by: Vec<SpentBy>,
    pub in_words: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpentBy {
    pub organisation: String,
    pub epsilon: f64,
    pub releases: i64,
}

/// The privacy budgets of the pools a member is in.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    pub period: String,
    /// What the budgets guarantee, in plain words.
    pub guarantee: String,
    pub pools: Vec<PoolView>,
    /// Why a pool may be missing (e.g. the trust could not be asked now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Accountant {
    /// The budgets of `pools` this period, for a member who is in them.
    pub async fn budget_view(
        &self,
        pools: &[Pool],
        note: Option<String>,
    ) -> Result<BudgetView, DpError> {
        let mut out = Vec::with_capacity(pools.len());
        for pool in pools {
            let u = self.pool_use(pool).await?;
            let mut spent_by = Vec::with_capacity(u.by.len());
            for a in &u.by {
                spent_by.push(SpentBy {
                    organisation: self.org_name(&a.asker).await?,
                    epsilon: a.spent,
                    releases: a.releases,
                });
            }
            let owner = match pool.owner() {
                Some(o) => self.org_name(&o.to_string()).await?,
                None => String::new(),
            };
            let who: Vec<String> = spent_by
                .iter()
                .map(|s| {
                    format!(
                        "{} {} ({} {})",
                        s.organisation,
                        fmt_eps(s.epsilon),
                        s.releases,
                        if s.releases == 1 {
                            "release"
                        } else {
                            "releases"
                        }
                    )
                })
                .collect();
            let in_words = if who.is_empty() {
                format!(
                    "Nothing was released from this pool in {}: ε 0 of {} spent.",
                    u.period,
                    fmt_eps(u.budget)
                )
            } else {
                format!(
                    "In {}, ε {} of this pool's {} was spent, by {}. Over its life: {} of {}.",
                    u.period,
                    fmt_eps(u.spent),
                    fmt_eps(u.budget),
                    who.join(", "),
                    fmt_eps(u.lifetime_spent),
                    fmt_eps(u.lifetime_cap),
                )
            };
            out.push(PoolView {
                pool: u.pool,
                description: pool.describe(&|_| owner.clone()),
                budget: u.budget,
                spent: u.spent,
                lifetime_cap: u.lifetime_cap,
                lifetime_spent: u.lifetime_spent,
                spent_by,
                in_words,
            });
        }
        Ok(BudgetView {
            period: self.period_label(self.period()),
            guarantee: self.governance().guarantee(),
            pools: out,
            note,
        })
    }

    async fn org_name(&self, id: &str) -> Result<String, DpError> {
        let Ok(org) = id.parse::<OrgId>() else {
            return Ok("an unknown asker".into());
        };
        Ok(self
            .store()
            .org(org)
            .await?
            .map_or_else(|| "a deleted organisation".to_owned(), |o| o.name))
    }
}
