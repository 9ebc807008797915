//! Envelopes: what each consent in force allows, sealed to the
//! organisation's API keys in the member's session (at a grant, a write,
//! a login), and the vault's session hook that keeps them up to date.

use super::*;

impl Consents {
    /// The API keys of `org` envelopes are sealed to: not revoked, with the
    /// `consent` role, and a public key (older keys get one at their next use).
    pub(super) async fn envelope_keys(
        &self,
        org: OrgId,
    ) -> Result<Vec<(ApiKeyId, OrgEnvelopePublicKey)>, ServiceError> {
        Ok(self
            .store
            .live_api_keys(org)
            .await?
            .into_iter()
            .filter(|k| k.roles.contains(Role::Consent))
            .filter_map(|k| {
                let pk = OrgEnvelopePublicKey::from_bytes(k.envelope_pk.as_deref()?).ok()?;
                Some((k.id, pk))
            })
            .collect())
    }

    /// Seals what `consent` allows from the member's `records` into
    /// envelopes for each of the organisation's keys, replacing those of
    /// `only` (the categories a change touched; None: all of them). Runs in
    /// the member's session: `records` were decrypted with their key.
    pub(super) async fn seal_envelopes(
        &self,
        s: &MemberSession,
        consent: &ConsentRecord,
        records: &[RecordContent],
        only: Option<&BTreeSet<String>>,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        if consent.subject != s.member || !consent.in_force(now) {
            return Ok(());
        }
        let mut values: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for rec in records {
            let Some(c) = self.category_of(rec) else {
                continue;
            };
            let granted = consent
                .categories
                .iter()
                .any(|g| self.vocab.category_within(c, g));
            if granted && only.is_none_or(|o| o.contains(c)) {
                values
                    .entry(c.to_owned())
                    .or_default()
                    .push(disclosed_value(rec));
            }
        }
        let subject = self.pseudonym_of(consent);
        let mut rows = Vec::new();
        for (key, pk) in self.envelope_keys(consent.controller).await? {
            for (category, vals) in &values {
                // Equal plaintext (but for the time of sealing) gives an
                // equal digest: the store then keeps the envelope it has.
                let digest = s.keyed_digest(
                    envelope::DIGEST_PURPOSE,
                    &envelope::digest_input(consent.id, &subject, category, vals),
                );
                let content = EnvelopeContent {
                    v: CONTENT_VERSION,
                    consent_id: consent.id,
                    subject: subject.clone(),
                    category: category.clone(),
                    values: vals.clone(),
                    // To the hour: the organisation opens it.
                    sealed_at: now.hour().to_rfc3339(),
                };
                rows.push(EnvelopeRow {
                    consent: consent.id,
                    key,
                    category: category.clone(),
                    member: s.member,
                    expires_at: consent.expires_at,
                    updated_at: now,
                    sealed: envelope::seal(&pk, &content, self.rng.as_ref()),
                    digest: Some(digest),
                });
            }
        }
        let only: Option<Vec<String>> = only.map(|o| o.iter().cloned().collect());
        // Audited only when an envelope changed (a login that seals the
        // same plaintext writes nothing and tells nothing).
        if self
            .store
            .replace_envelopes(consent.id, only.as_deref(), &rows, now)
            .await?
            == EnvelopeWrite::Changed
        {
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(s.member), Action::ConsentEnvelopeSeal)
                        .subject(s.member)
                        .object(consent.id),
                )
                .await?;
        }
        Ok(())
    }

    /// The member's consents in force now.
    pub(super) async fn in_force_of(
        &self,
        member: MemberId,
    ) -> Result<Vec<ConsentRecord>, ServiceError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for row in self.store.consents_of_member(member).await? {
            if row.status != "given" {
                continue;
            }
            let r = ConsentRecord::from_json(&row.body)?;
            if r.in_force(now) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Brings every envelope of the member's consents in force up to date
    /// (at login: consents given before member-held keys, keys the
    /// organisation made since, a write whose update failed).
    pub async fn refresh_envelopes(&self, s: &MemberSession) -> Result<(), ServiceError> {
        let consents = self.in_force_of(s.member).await?;
        if consents.is_empty() {
            return Ok(());
        }
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        for c in &consents {
            self.seal_envelopes(s, c, &records, None).await?;
        }
        Ok(())
    }

    /// After a write: re-seals the envelopes of the categories `old` and
    /// `new` fall in, for each consent in force that covers them.
    pub async fn record_changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), ServiceError> {
        // A correction (Art. 16) is told to every recipient of the old
        // value (Art. 19); the envelopes are re-sealed either way.
        let told = match (old, new) {
            (Some(o), Some(n)) if o != n => self.rectified(s.member, o).await.map(|_| ()),
            _ => Ok(()),
        };
        self.reseal_after(s, old, new).await?;
        told
    }

    pub(super) async fn reseal_after(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), ServiceError> {
        let touched: BTreeSet<String> = [old, new]
            .into_iter()
            .flatten()
            .filter_map(|r| self.category_of(r).map(str::to_owned))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        let consents: Vec<(ConsentRecord, BTreeSet<String>)> = self
            .in_force_of(s.member)
            .await?
            .into_iter()
            .filter_map(|c| {
                let covered: BTreeSet<String> = touched
                    .iter()
                    .filter(|t| {
                        c.categories
                            .iter()
                            .any(|g| self.vocab.category_within(t, g))
                    })
                    .cloned()
                    .collect();
                (!covered.is_empty()).then_some((c, covered))
            })
            .collect();
        if consents.is_empty() {
            return Ok(());
        }
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        for (c, covered) in &consents {
            self.seal_envelopes(s, c, &records, Some(covered)).await?;
        }
        Ok(())
    }

    /// What the vault calls in members' sessions (install with
    /// `Vault::set_session_hook`).
    pub fn session_hook(&self) -> EnvelopeHook {
        EnvelopeHook(self.clone())
    }
}

fn disclosed_value(r: &RecordContent) -> serde_json::Value {
    match r {
        RecordContent::ProfileAttribute(a) => serde_json::json!({"name": a.name, "value": a.value}),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

/// The vault's session hook: keeps envelopes up to date as the member writes
/// and logs in.
#[derive(Debug)]
pub struct EnvelopeHook(Consents);

#[async_trait::async_trait]
impl me2b_vault::SessionHook for EnvelopeHook {
    async fn record_changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), String> {
        self.0
            .record_changed(s, old, new)
            .await
            .map_err(|e| e.to_string())
    }
    async fn logged_in(&self, s: &MemberSession) -> Result<(), String> {
        self.0.refresh_envelopes(s).await.map_err(|e| e.to_string())
    }
}
