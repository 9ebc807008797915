//! How the trust reaches its transcryptors: in the same process (the embedded,
//! single-party default) or over HTTP ([`crate::remote::RemoteLink`]). The
//! chain runs every transcryptor in turn; all of them must answer, and nothing
//! is stored until the last one has.

use crate::domain::{Domain, Requester};
use crate::pseudonym::Transcryptor;
use crate::wire::{Item, TranscryptRequest};
use crate::TrustError;
use async_trait::async_trait;
use libpep::keys::distribution::SessionKeyShares;
use me2b_audit::AuditLog;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::{Clock, Random};
use std::sync::Arc;

/// One transcryptor of the set, wherever it runs.
#[async_trait]
pub trait TranscryptorLink: Send + Sync + std::fmt::Debug {
    /// A name for messages and the audit log, e.g. `transcryptor-2`.
    fn name(&self) -> &str;
    async fn transcrypt(&self, req: &TranscryptRequest) -> Result<Vec<Item>, TrustError>;
    /// This transcryptor's share of `domain`'s keys, for `requester`: the
    /// trust only for its own domains, a co-op only for its own domain.
    async fn key_share(
        &self,
        requester: Requester,
        domain: Domain,
    ) -> Result<SessionKeyShares, TrustError>;
}

/// A libpep rng seeded from the injected randomness (deterministic in tests).
pub fn pep_rng(random: &dyn Random) -> rand::rngs::StdRng {
    let mut seed = [0u8; 32];
    random.fill(&mut seed);
    <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed)
}

/// The audit entry for one transcription request: who asked, which domains,
/// how many items, and the outcome. Never a ciphertext.
pub fn audit_event(name: &str, req: &TranscryptRequest, outcome: Outcome) -> AuditEvent {
    let mut e = AuditEvent::new(Actor::Node, Action::TrustTranscrypt)
        .object(format!("{name}: {} for {}", req.describe(), req.requester))
        .outcome(outcome);
    if let Some(g) = &req.grant {
        e.purpose = Some(g.grant.purpose.clone());
        e.category = Some(format!("consent {}", g.grant.consent));
    }
    e
}

/// The outcome an error is audited with.
pub fn outcome_of(e: &TrustError) -> Outcome {
    match e {
        TrustError::TranscryptionRefused { .. }
        | TrustError::GrantExpired
        | TrustError::BadGrant => Outcome::Denied,
        _ => Outcome::Failed,
    }
}

/// A transcryptor in this process. Each request is audited before it is served.
#[derive(Debug, Clone)]
pub struct LocalLink {
    name: String,
    t: Arc<Transcryptor>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    audit: Option<AuditLog>,
}

impl LocalLink {
    /// The transcryptor behind this link.
    pub fn transcryptor(&self) -> &Transcryptor {
        &self.t
    }

    pub fn new(
        name: impl Into<String>,
        t: Transcryptor,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        audit: Option<AuditLog>,
    ) -> Self {
        Self {
            name: name.into(),
            t: Arc::new(t),
            clock,
            random,
            audit,
        }
    }
}

#[async_trait]
impl TranscryptorLink for LocalLink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn transcrypt(&self, req: &TranscryptRequest) -> Result<Vec<Item>, TrustError> {
        let now = self.clock.now().unix_millis();
        let t = self.t.clone();
        let mut rng = pep_rng(self.random.as_ref());
        let owned = req.clone();
        // A worker that fails is audited like any other failure.
        let result = tokio::task::spawn_blocking(move || t.handle(&owned, now, &mut rng))
            .await
            .unwrap_or_else(|_| {
                Err(TrustError::TranscryptorFailed {
                    name: self.name.clone(),
                    code: "worker_failed".into(),
                })
            });
        if let Some(audit) = &self.audit {
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => outcome_of(e),
            };
            audit
                .record(audit_event(&self.name, req, outcome))
                .await
                .map_err(|_| TrustError::AuditFailed)?;
        }
        result
    }

    async fn key_share(
        &self,
        requester: Requester,
        domain: Domain,
    ) -> Result<SessionKeyShares, TrustError> {
        let result = self.t.share_for(requester, domain);
        if let Some(audit) = &self.audit {
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Denied,
            };
            audit
                .record(
                    AuditEvent::new(Actor::Node, Action::TrustKeyShare)
                        .object(format!("{}: {domain} for {requester}", self.name))
                        .outcome(outcome),
                )
                .await
                .map_err(|_| TrustError::AuditFailed)?;
        }
        result
    }
}

/// Runs `items` through every transcryptor in turn. Any refusal or failure
/// stops the chain and returns the error; nothing partial comes back.
pub async fn run_chain(
    links: &[Arc<dyn TranscryptorLink>],
    mut req: TranscryptRequest,
) -> Result<Vec<Item>, TrustError> {
    if links.is_empty() {
        return Err(TrustError::Invalid("the trust has no transcryptors"));
    }
    for l in links {
        let out = l.transcrypt(&req).await?;
        if out.len() != req.items.len() {
            return Err(TrustError::TranscryptorFailed {
                name: l.name().to_owned(),
                code: "wrong_batch_size".into(),
            });
        }
        req.items = out;
    }
    Ok(req.items)
}
