//! One-click and paper opt-out from all direct marketing (issue 15, items 4
//! and 5).
//!
//! Opting out withdraws, at once, every consent in force whose purposes are
//! direct marketing ([`MARKETING_PURPOSES`]; the trust's cross-selling
//! consents among them), each withdrawal with its signed receipt, and records
//! the opt-out: offers are not matched for the member until they opt back in.
//! The opt-out is recorded first, so a crash half-way leaves the member opted
//! out and the next opt-out (any path) withdraws what is left.
//!
//! A paper opt-out code does exactly this and nothing else: it names a member
//! only through its keyed hash, opens no session and answers nothing about
//! the member.

use super::{Consents, ServiceError};
use crate::model::{ConsentRecord, ConsentStatus, Method};
use me2b_crypto::OptOutCode;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::{MemberId, Timestamp};

/// DPV purposes that are direct marketing: a consent naming any of them is
/// withdrawn by an opt-out.
pub const MARKETING_PURPOSES: &[&str] = &[
    "marketing",
    "direct-marketing",
    "advertising",
    "personalised-advertising",
    "targeted-advertising",
    "sell-data-to-third-parties",
    "sell-insights-from-data",
];

/// Whether a consent is for direct marketing.
pub fn is_marketing(r: &ConsentRecord) -> bool {
    r.purposes
        .iter()
        .any(|p| MARKETING_PURPOSES.contains(&p.as_str()))
}

/// What an opt-out did.
#[derive(Debug)]
pub struct OptOutOutcome {
    /// Since when the member is opted out (the first opt-out in force).
    pub since: Timestamp,
    /// The consents withdrawn now, each with its new receipt.
    pub withdrawn: Vec<ConsentRecord>,
}

fn method_str(m: Method) -> &'static str {
    match m {
        Method::Web => "web",
        Method::Paper => "paper",
        Method::Api | Method::Gpc => "api",
    }
}

impl Consents {
    /// Opts the member out of all direct marketing: records the opt-out,
    /// then withdraws every marketing consent still given.
    #[tracing::instrument(skip_all)]
    pub async fn opt_out_of_marketing(
        &self,
        member: MemberId,
        method: Method,
        actor: Actor,
    ) -> Result<OptOutOutcome, ServiceError> {
        let since = self
            .store
            .marketing_opt_out(member, self.clock.now(), method_str(method))
            .await?;
        self.audit
            .record(
                AuditEvent::new(actor, Action::MarketingOptOut)
                    .subject(member)
                    .object(method_str(method)),
            )
            .await?;
        let mut withdrawn = Vec::new();
        for row in self.store.consents_of_member(member).await? {
            if row.status != "given" {
                continue;
            }
            let r = ConsentRecord::from_json(&row.body)?;
            if r.status != ConsentStatus::Given || !is_marketing(&r) {
                continue;
            }
            // A concurrent change of the same record: read it again once.
            for attempt in 0..2 {
                match self.withdraw(member, r.id, method).await {
                    Ok(done) => {
                        withdrawn.push(done);
                        break;
                    }
                    Err(ServiceError::NotInForce) => break,
                    Err(ServiceError::Conflict) if attempt == 0 => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(OptOutOutcome { since, withdrawn })
    }

    /// Ends the member's opt-out: offers are matched again. Consents stay
    /// withdrawn (the member grants anew if they wish). False when the member
    /// was not opted out.
    pub async fn opt_in_to_marketing(&self, member: MemberId) -> Result<bool, ServiceError> {
        let was = self.store.marketing_opt_in(member).await?;
        if was {
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(member), Action::MarketingOptIn).subject(member),
                )
                .await?;
        }
        Ok(was)
    }

    /// Since when the member is opted out of direct marketing, if they are.
    pub async fn marketing_opted_out_since(
        &self,
        member: MemberId,
    ) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.marketing_opted_out_since(member).await?)
    }

    /// A new paper opt-out code for the member, replacing any earlier one
    /// (which stops working now). Only its keyed hash is stored: this is
    /// the one time it exists in clear.
    #[tracing::instrument(skip_all)]
    pub async fn issue_optout_code(&self, member: MemberId) -> Result<OptOutCode, ServiceError> {
        let code = OptOutCode::generate(self.rng.as_ref());
        let index = self.keys.optout_index(&code);
        self.store
            .set_optout_code(member, &index, self.clock.now())
            .await?;
        self.audit
            .record(AuditEvent::new(Actor::Member(member), Action::OptOutCodeIssue).subject(member))
            .await?;
        Ok(code)
    }

    /// When the member's paper opt-out code was made, if they have one.
    pub async fn optout_code_since(
        &self,
        member: MemberId,
    ) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.optout_code_since(member).await?)
    }

    /// A paper opt-out code, typed at the public page (`actor` anonymous) or
    /// at a shop's desk (the organisation): queues the opt-out of all direct
    /// marketing of its member, for the worker ([`Self::run_optout_jobs`]).
    /// Answers nothing about the member, not even by its time: the request
    /// verifies the code, queues one job and audits the use, the same work
    /// whatever the member holds; the withdrawals (one per marketing
    /// consent) run after the answer (finding 5 of adv4). A mistyped code
    /// (its check character does not match) is told apart from an unknown
    /// one; every use is audited (an unknown code's without a member).
    #[tracing::instrument(skip_all)]
    pub async fn use_optout_code(&self, typed: &str, actor: Actor) -> Result<(), ServiceError> {
        let refused = |what: &'static str| {
            AuditEvent::new(actor.clone(), Action::OptOutCodeUse)
                .object(what)
                .outcome(Outcome::Denied)
        };
        let Ok(code) = OptOutCode::parse(typed) else {
            self.audit.record(refused("mistyped")).await?;
            return Err(ServiceError::OptOutCodeMistyped);
        };
        let index = self.keys.optout_index(&code);
        let Some(member) = self.store.member_by_optout_code(&index).await? else {
            self.audit.record(refused("unknown")).await?;
            return Err(ServiceError::UnknownOptOutCode);
        };
        let mut job = [0u8; 16];
        self.rng.fill(&mut job);
        self.store
            .enqueue_optout_job(job, member, self.clock.now())
            .await?;
        self.audit
            .record(AuditEvent::new(actor.clone(), Action::OptOutCodeUse).subject(member))
            .await?;
        self.optout_queued.notify_one();
        Ok(())
    }

    /// Resolves when a code queued an opt-out since the last call (the
    /// worker's wake-up; it also runs on a timer and at start).
    pub async fn optout_queued(&self) {
        self.optout_queued.notified().await;
    }

    /// The worker's pass: takes the queued paper opt-outs and, for each,
    /// records the opt-out and withdraws every marketing consent with its
    /// receipt, then deletes the job. A job is held by one worker at a time
    /// (a lease of at most [`OPTOUT_LEASE_SECONDS`] plus the rest of that
    /// hour): a node killed half-way leaves it to the next pass after the
    /// lease, which finishes it (opting out is idempotent: a withdrawn
    /// consent is not withdrawn again). A job whose member was erased
    /// meanwhile is dropped. Returns how many jobs were done.
    #[tracing::instrument(skip_all)]
    pub async fn run_optout_jobs(&self) -> Result<u64, ServiceError> {
        let mut done = 0;
        loop {
            let now = self.clock.now();
            let lease = Timestamp::from_unix_millis(
                now.unix_millis()
                    .saturating_add(OPTOUT_LEASE_SECONDS.saturating_mul(1000)),
            );
            let jobs = self.store.claim_optout_jobs(now, lease, 16).await?;
            if jobs.is_empty() {
                return Ok(done);
            }
            for (job, member) in jobs {
                if self.store.member(member).await?.is_some_and(|m| !m.erasing) {
                    self.opt_out_of_marketing(member, Method::Paper, Actor::Node)
                        .await?;
                }
                self.store.finish_optout_job(job).await?;
                done += 1;
            }
        }
    }
}

/// How long a worker holds a paper opt-out job before another may take it.
pub const OPTOUT_LEASE_SECONDS: i64 = 600;
