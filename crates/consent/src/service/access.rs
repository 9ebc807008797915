//! Decisions and data access: the policy decision point over a member's
//! consents, and what an organisation is served under a permit (the
//! envelopes sealed to its keys).

use super::*;

impl Consents {
    /// The decision point's answers for one member and several categories, from
    /// one lookup of the stored records (no audit entry: callers that act on the
    /// answers audit them).
    pub async fn decisions(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
    ) -> Result<Vec<Decision>, ServiceError> {
        // An erased member's records stay until the erasure is released;
        // nothing is permitted under them meanwhile.
        let active = self.store.member(member).await?.is_some_and(|m| !m.erasing);
        let mut records = if active {
            self.records_between(org, member).await?
        } else {
            Vec::new()
        };
        // A private record (an intent's contact) permits only through its own
        // request, never another one (it would tie the two together).
        records.retain(|r| r.subject_pseudonym.is_none());
        self.decide_among(&records, org, member, purpose, processing, categories)
            .await
    }

    pub(super) async fn decide_among(
        &self,
        records: &[ConsentRecord],
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
    ) -> Result<Vec<Decision>, ServiceError> {
        let gpc = self.store.gpc_since(member).await?;
        let at = self.clock.now();
        Ok(categories
            .iter()
            .map(|category| {
                let q = AccessQuery {
                    org,
                    member,
                    purpose,
                    category,
                    processing,
                    at,
                    cross_sell_from: None,
                };
                decide(&self.vocab, records, gpc, &q)
            })
            .collect())
    }

    /// The member's consent records with the organisation (as controller).
    pub(super) async fn records_between(
        &self,
        org: OrgId,
        member: MemberId,
    ) -> Result<Vec<ConsentRecord>, ServiceError> {
        self.store
            .consents_between(org, member)
            .await?
            .iter()
            .map(|r| ConsentRecord::from_json(&r.body).map_err(Into::into))
            .collect()
    }

    /// The decision point's answer for one access.
    pub async fn decision(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        category: &str,
        processing: &str,
    ) -> Result<Decision, ServiceError> {
        let d = self
            .decisions(org, member, purpose, processing, &[category])
            .await?;
        Ok(d.into_iter().next().unwrap_or(Decision::Deny {
            reason: DenyReason::NoConsent,
        }))
    }

    /// The data-access API: for each member who consented to `request`, the
    /// envelopes (sealed to API key `key` in the member's session) of exactly
    /// the categories the decision point permits for `purpose` and
    /// `processing` now. Members without a permit do not appear at all. No
    /// vault is read here: the node could not.
    #[tracing::instrument(skip_all)]
    pub async fn access(
        &self,
        org: OrgId,
        key: ApiKeyId,
        request: ConsentRequestId,
        purpose: &str,
        processing: &str,
    ) -> Result<Vec<Disclosure>, ServiceError> {
        let req = self.request(request).await?;
        if req.org != org || req.cross_sell_from.is_some() {
            return Err(ServiceError::RequestNotFound);
        }
        self.vocab.require(Section::Purpose, purpose)?;
        self.vocab.require(Section::Processing, processing)?;
        // Answered in the window after each release boundary (release.rs):
        // polling cannot time a withdrawal between two windows.
        self.access_window()?;
        self.release_due().await?;
        let now = self.clock.now();
        let mut out = Vec::new();
        let mut events = Vec::new();
        for released in self.store.released_consents_for_request(request).await? {
            // Given as the organisation last saw it (a grant not released
            // yet is not served: it would show the new pseudonym now) and
            // given now (a withdrawal stops data at once).
            let shown = ConsentRecord::from_json(&released.released_body)?;
            let row = released.now;
            if row.status != "given" || shown.status != ConsentStatus::Given {
                continue;
            }
            let member = row.member;
            // An erased member's consent stays listed until the erasure is
            // released (erasure.rs in me2b-vault), but nothing is decided
            // or served for them: their envelopes are gone with their keys.
            if self.store.member(member).await?.is_none_or(|m| m.erasing) {
                continue;
            }
            let record = ConsentRecord::from_json(&row.body)?;
            let subject = match &record.subject_pseudonym {
                Some(p) => p.clone(),
                None => self.keys.subject_pseudonym(&org, &member),
            };
            let sealed = self.store.envelopes_for(row.id, key, now).await?;
            // The categories sealed for this key that the request covers;
            // for an expired consent (its envelopes are never served), the
            // categories it granted, so that the member sees the refusal.
            let granted = if record.expires_at <= now {
                record.categories.clone()
            } else {
                Vec::new()
            };
            let mut categories: Vec<&str> = Vec::new();
            for c in sealed
                .iter()
                .map(|e| e.category.as_str())
                .chain(granted.iter().map(String::as_str))
            {
                let asked = req
                    .categories
                    .iter()
                    .any(|r| self.vocab.category_within(c, r));
                if asked && !categories.contains(&c) {
                    categories.push(c);
                }
            }
            if categories.is_empty() {
                continue;
            }
            let decisions = if req.private {
                // Only its own record decides a private request.
                self.decide_among(
                    std::slice::from_ref(&record),
                    org,
                    member,
                    purpose,
                    processing,
                    &categories,
                )
                .await?
            } else {
                self.decide_for_disclosure(org, member, purpose, processing, &categories, row.id)
                    .await?
            };
            let mut permitted: Vec<&str> = Vec::new();
            for (category, d) in categories.iter().zip(&decisions) {
                let mut ev = AuditEvent::new(Actor::Organisation(org), Action::ConsentDecision)
                    .subject(member)
                    .terms(purpose, category, processing);
                ev = match d {
                    Decision::Permit { consent } => {
                        permitted.push(category);
                        ev.object(consent)
                    }
                    Decision::Deny { reason } => {
                        ev.object(deny_code(*reason)).outcome(Outcome::Denied)
                    }
                };
                events.push(ev);
            }
            // The decision point permitted these categories to this
            // organisation for this purpose now (possibly under another of
            // the member's records with it); the envelopes are this
            // consent's, and name it.
            let envelopes: BTreeMap<String, String> = sealed
                .iter()
                .filter(|e| permitted.contains(&e.category.as_str()))
                .map(|e| (e.category.clone(), envelope::encode(&e.sealed)))
                .collect();
            if !envelopes.is_empty() {
                out.push(Disclosure {
                    subject,
                    consent_id: row.id,
                    envelopes,
                });
            }
        }
        // Every decision is durable in the audit log before any data leaves.
        self.record_decisions(events).await?;
        // In pseudonym order, not in the order the members answered.
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(out)
    }

    // --- envelopes: sealed in the member's session -------------------------------

    pub(super) async fn decide_for_disclosure(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
        #[allow(unused_variables)] consent: ConsentId,
    ) -> Result<Vec<Decision>, ServiceError> {
        #[cfg(feature = "bench")]
        if self.stub_decisions {
            return Ok(vec![Decision::Permit { consent }; categories.len()]);
        }
        self.decisions(org, member, purpose, processing, categories)
            .await
    }

    pub(super) async fn record_decisions(
        &self,
        events: Vec<AuditEvent>,
    ) -> Result<(), ServiceError> {
        #[cfg(feature = "bench")]
        if self.stub_decisions {
            return Ok(());
        }
        if !events.is_empty() {
            self.audit.record_all(events).await?;
        }
        Ok(())
    }
}
