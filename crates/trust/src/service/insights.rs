//! Questions to the trust, answered with differential privacy: each is
//! charged by the one privacy accountant to every data pool it reads before
//! any noise is drawn.

use super::*;

/// Which members a question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The asking co-op's own members.
    Own,
    /// All co-ops' members (research purposes only).
    All,
}

/// A question to the trust.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Question {
    /// Distinct members, optionally of one category or area.
    Count {
        scope: Scope,
        #[serde(default)]
        #[schema(pattern = "^[a-z0-9][a-z0-9_.:-]{0,63}$")]
        category: Option<String>,
        #[serde(default)]
        #[schema(min_length = 1, max_length = 64)]
        area: Option<String>,
    },
    /// Sum and mean of members' total spend, each clamped to `upper_cents`.
    Sum {
        scope: Scope,
        #[serde(default)]
        #[schema(minimum = 1)]
        upper_cents: Option<i64>,
    },
    /// Distinct members per category (every taxonomy topic) or per area.
    Histogram { scope: Scope, by: By },
    /// Members who shop at both the asking co-op (or `a`, research only) and `b`.
    Overlap {
        #[serde(default)]
        #[schema(value_type = Option<String>, format = Uuid)]
        a: Option<OrgId>,
        #[schema(value_type = String, format = Uuid)]
        b: OrgId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Category,
    Area,
}

impl Question {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Question::Count { .. } => "count",
            Question::Sum { .. } => "sum",
            Question::Histogram { .. } => "histogram",
            Question::Overlap { .. } => "overlap",
        }
    }
}

/// A question with its ε and, for a research question, its purpose.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub question: Question,
    /// In (0, 10].
    #[schema(exclusive_minimum = 0, maximum = 10)]
    pub epsilon: f64,
    /// A research purpose from the governance file's `research_purposes`.
    /// Open only to requesters named there (with an allowance in the trust's
    /// research pool); needed to ask about all co-ops or about two others.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// A released figure.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figure {
    Count(Answer),
    Sum(mechanisms::SumAndMean),
    Histogram(mechanisms::Histogram),
}

/// An answer and what it cost: ε charged to every pool the question read,
/// and those pools' budgets after it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Insight {
    pub figure: Figure,
    pub charged: me2b_dp::Charged,
}

/// The budgets an organisation asks against.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TrustBudgets {
    /// The co-op's own pool, and the research pool if governance names it.
    /// An overlap with another co-op also charges that co-op's pool, within
    /// this organisation's allowance there.
    pub pools: Vec<me2b_dp::PoolBudget>,
    /// What the budgets guarantee a member, in plain words.
    pub guarantee: String,
}

/// What a question reads and how it is computed, checked before anything is
/// charged.
enum Plan {
    Count(String, Option<(TrustDim, i64)>),
    Sum(String, i64),
    Hist(String, By),
    Overlap(OrgId, OrgId),
}

impl Plan {
    /// The data pools the question reads.
    pub(super) fn pools(&self) -> Vec<Pool> {
        let scope_pool = |s: &str| match s.parse::<OrgId>() {
            Ok(o) => Pool::TrustCoop(o),
            Err(_) => Pool::TrustResearch,
        };
        match self {
            Plan::Count(s, _) | Plan::Sum(s, _) | Plan::Hist(s, _) => vec![scope_pool(s)],
            Plan::Overlap(a, b) => vec![Pool::TrustCoop(*a), Pool::TrustCoop(*b)],
        }
    }
}

/// The scope string the storage layer keys all co-ops' receipts by.
const ALL: &str = "*";

impl Trust {
    pub(super) fn scope(
        &self,
        org: OrgId,
        scope: Scope,
        research: bool,
    ) -> Result<String, TrustError> {
        match (scope, research) {
            (Scope::Own, _) => Ok(org.to_string()),
            (Scope::All, true) => Ok(ALL.to_owned()),
            (Scope::All, false) => Err(TrustError::Forbidden(
                "questions about all co-ops need a research purpose",
            )),
        }
    }

    pub(super) fn category_id(&self, slug: &str) -> Result<i64, TrustError> {
        let c = self
            .inner
            .by_slug
            .get(slug)
            .and_then(|i| self.inner.categories.get(*i))
            .ok_or_else(|| TrustError::UnknownCategory(slug.chars().take(64).collect()))?;
        if c.sensitive {
            return Err(TrustError::SensitiveCategory(c.slug.clone()));
        }
        Ok(c.id)
    }

    /// Whether the question names a research purpose this organisation may
    /// use: one of governance's purposes, asked by a requester it names.
    pub(super) fn research(&self, org: OrgId, purpose: Option<&str>) -> Result<bool, TrustError> {
        let Some(p) = purpose else { return Ok(false) };
        if !self
            .inner
            .governance
            .research_purposes
            .iter()
            .any(|x| x == p)
        {
            return Err(TrustError::Invalid(
                "unknown research purpose: see the trust's research_purposes",
            ));
        }
        if !self
            .inner
            .accountant
            .governance()
            .names(PoolClass::TrustResearch, org)
        {
            return Err(TrustError::Forbidden(
                "the research purpose is open only to requesters the governance file names",
            ));
        }
        Ok(true)
    }

    /// Answers a question with differential privacy, charging every pool it
    /// reads first. Every question is audited with its ε, or why it was refused.
    #[tracing::instrument(skip_all)]
    pub async fn ask(&self, org: OrgId, ask: &Ask) -> Result<Insight, TrustError> {
        let result = self.ask_inner(org, ask).await;
        let (outcome, note) = match &result {
            Ok(i) => (
                Outcome::Ok,
                format!("ε {}", me2b_dp::governance::fmt_eps(i.charged.epsilon)),
            ),
            Err(e) => (
                Outcome::Denied,
                format!("refused: {}", crate::error_code(e)),
            ),
        };
        let mut event = AuditEvent::new(Actor::Organisation(org), Action::TrustQuery)
            .object(format!("{} ({note})", ask.question.kind()))
            .outcome(outcome);
        event.purpose = ask.purpose.as_ref().map(|p| format!("research:{p}"));
        self.inner.audit.record(event).await?;
        result
    }

    /// Everything that can be refused without reading data, checked before
    /// anything is charged.
    async fn plan(&self, org: OrgId, q: &Question, research: bool) -> Result<Plan, TrustError> {
        let g = &self.inner.governance;
        Ok(match q {
            Question::Count {
                scope,
                category,
                area,
            } => {
                let s = self.scope(org, *scope, research)?;
                let filter = match (category, area) {
                    (Some(_), Some(_)) => {
                        return Err(TrustError::Invalid(
                            "count by a category or an area, not both",
                        ))
                    }
                    (Some(c), None) => Some((TrustDim::Category, self.category_id(c)?)),
                    (None, Some(a)) => {
                        if !g.areas.contains(a) {
                            return Err(TrustError::UnknownArea);
                        }
                        Some((TrustDim::Area, pack_area(a)))
                    }
                    (None, None) => None,
                };
                Plan::Count(s, filter)
            }
            Question::Sum { scope, upper_cents } => {
                let s = self.scope(org, *scope, research)?;
                match upper_cents {
                    Some(u) if *u > 0 && *u <= MAX_AMOUNT_CENTS => Plan::Sum(s, *u),
                    _ => return Err(TrustError::UnboundedSum),
                }
            }
            Question::Histogram { scope, by } => {
                Plan::Hist(self.scope(org, *scope, research)?, *by)
            }
            Question::Overlap { a, b } => {
                let a = match a {
                    Some(a) if *a != org && !research => {
                        return Err(TrustError::Forbidden(
                            "a co-op asks about overlaps with its own members",
                        ))
                    }
                    Some(a) => *a,
                    None => org,
                };
                if a == *b {
                    return Err(TrustError::Invalid(
                        "an overlap is between two different co-ops",
                    ));
                }
                self.require_org(a).await?;
                self.require_org(*b).await?;
                Plan::Overlap(a, *b)
            }
        })
    }

    pub(super) async fn ask_inner(&self, org: OrgId, ask: &Ask) -> Result<Insight, TrustError> {
        let eps = ask.epsilon;
        if !(eps.is_finite() && eps > 0.0 && eps <= 10.0) {
            return Err(TrustError::Invalid("ε is a number in (0, 10]"));
        }
        let research = self.research(org, ask.purpose.as_deref())?;
        let plan = self.plan(org, &ask.question, research).await?;
        let noise = self.inner.noise.as_ref();
        let charged = self
            .inner
            .accountant
            .charge(me2b_dp::Release {
                asker: org,
                pools: plan.pools(),
                epsilon: eps,
                mechanism: noise.mechanism().to_owned(),
                what: format!("trust {}", ask.question.kind()),
            })
            .await?;
        let figure = self.compute(plan, charged.epsilon).await?;
        if let Figure::Count(Answer { value: None, .. }) = &figure {
            let min_cohort = self.inner.accountant.min_cohort();
            return Err(TrustError::BelowThreshold { min_cohort });
        }
        Ok(Insight { figure, charged })
    }

    /// Reads the aggregates and draws the noise (after the charge).
    async fn compute(&self, plan: Plan, eps: f64) -> Result<Figure, TrustError> {
        let store = &self.inner.store;
        let noise = self.inner.noise.as_ref();
        let min = self.inner.accountant.min_cohort();
        let g = &self.inner.governance;
        Ok(match plan {
            Plan::Count(s, None) => Figure::Count(mechanisms::count(
                noise,
                store.trust_member_count(&s).await?,
                eps,
                min,
            )?),
            Plan::Count(s, Some((dim, value))) => {
                let n = self
                    .bin_counts(&s, dim)
                    .await?
                    .into_iter()
                    .find(|(v, _)| *v == value)
                    .map(|(_, n)| n)
                    .unwrap_or(0);
                Figure::Count(mechanisms::count(noise, n, eps, min)?)
            }
            Plan::Overlap(a, b) => Figure::Count(mechanisms::count(
                noise,
                store.trust_overlap(&a.to_string(), &b.to_string()).await?,
                eps,
                min,
            )?),
            Plan::Sum(s, upper) => {
                let (n, sum) = store.trust_clamped_sum(&s, upper).await?;
                Figure::Sum(mechanisms::aggregate_sum(noise, n, sum, upper, eps, min)?)
            }
            Plan::Hist(s, by) => {
                let (labels, values): (Vec<String>, Vec<i64>) = match by {
                    By::Category => self
                        .inner
                        .categories
                        .iter()
                        .filter(|c| !c.sensitive)
                        .map(|c| (c.slug.clone(), c.id))
                        .unzip(),
                    By::Area => g.areas.iter().map(|a| (a.clone(), pack_area(a))).unzip(),
                };
                let dim = match by {
                    By::Category => TrustDim::Category,
                    By::Area => TrustDim::Area,
                };
                let found: HashMap<i64, u64> =
                    self.bin_counts(&s, dim).await?.into_iter().collect();
                let counts: Vec<u64> = values
                    .iter()
                    .map(|v| found.get(v).copied().unwrap_or(0))
                    .collect();
                Figure::Histogram(mechanisms::histogram(
                    noise,
                    &labels,
                    &counts,
                    g.max_values_per_member,
                    eps,
                    min,
                )?)
            }
        })
    }

    /// Members per value of `dim` in the scope: a co-op's kept counts, or
    /// for all co-ops computed from theirs, each member capped at the
    /// governance's values per member (the sensitivity the release assumes).
    async fn bin_counts(&self, scope: &str, dim: TrustDim) -> Result<Vec<(i64, u64)>, TrustError> {
        let store = &self.inner.store;
        Ok(if scope == ALL {
            let cap = self.inner.governance.max_values_per_member;
            store.trust_pooled_bin_counts(dim, cap).await?
        } else {
            store.trust_bin_counts(scope, dim).await?
        })
    }

    /// The budgets an organisation asks against this period.
    pub async fn budgets(&self, org: OrgId) -> Result<TrustBudgets, TrustError> {
        let acc = &self.inner.accountant;
        let mut pools = vec![acc.budget_for(&Pool::TrustCoop(org), org).await?];
        if acc.governance().names(PoolClass::TrustResearch, org) {
            pools.push(acc.budget_for(&Pool::TrustResearch, org).await?);
        }
        Ok(TrustBudgets {
            pools,
            guarantee: acc.governance().guarantee(),
        })
    }

    /// The trust's pools a member is in: the co-ops whose receipts about
    /// them it holds, and the pooled receipts. Needs every transcryptor (to
    /// find the member's research tag); nothing when they never enrolled.
    #[tracing::instrument(skip_all)]
    pub async fn member_pools(&self, member: MemberId) -> Result<Vec<Pool>, TrustError> {
        if self.inner.store.trust_enrolment(member).await?.is_none() {
            return Ok(Vec::new());
        }
        let research = self
            .pseudonym_in(member, Domain::Research, MemberRequest::View)
            .await?;
        let scopes = self
            .inner
            .store
            .trust_member_scopes(&self.tag(Domain::Research, &research))
            .await?;
        let mut pools: Vec<Pool> = scopes
            .iter()
            .filter_map(|s| s.parse::<OrgId>().ok())
            .map(Pool::TrustCoop)
            .collect();
        if !pools.is_empty() {
            pools.push(Pool::TrustResearch);
        }
        Ok(pools)
    }
}
