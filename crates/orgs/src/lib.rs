//! Organisations: co-ops, brands and verifiers, registered by the operator, each
//! with API keys that carry scoped roles. A key is shown once; only its SHA-256
//! is stored. Reaching member data additionally requires the member's consent
//! (the consent capability); until then every member-data route refuses
//! organisations.
#![forbid(unsafe_code)]

use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::SecretToken;
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::org::{OrgKind, Roles};
use me2b_domain::text::Label;
use me2b_domain::{ApiKeyId, Clock, OrgId, Random};
use me2b_storage::{ApiKeyRow, OrgRow, StorageError, Store};
use std::sync::Arc;

/// Prefix of organisation API keys.
pub const API_KEY_PREFIX: &str = "me2b_k_";

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("an organisation with this name already exists")]
    NameTaken,
    #[error("no such organisation")]
    NotFound,
    #[error("the API key is not valid")]
    InvalidKey,
    #[error("the API key was revoked or its organisation deleted")]
    RevokedKey,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// An authenticated organisation (by API key).
#[derive(Clone, Debug)]
pub struct OrgPrincipal {
    pub org: OrgRow,
    pub key: ApiKeyId,
    pub roles: Roles,
}

/// A newly created API key; the secret is shown once.
#[derive(Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub secret: SecretToken,
    pub roles: Roles,
}

/// The organisations service.
#[derive(Clone, Debug)]
pub struct Orgs {
    store: Arc<dyn Store>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
}

impl Orgs {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        Self {
            store,
            audit,
            clock,
            rng,
        }
    }

    /// Registers an organisation and its first API key (operator action).
    #[tracing::instrument(skip_all)]
    pub async fn create(
        &self,
        name: Label,
        kind: OrgKind,
        roles: Roles,
    ) -> Result<(OrgRow, NewApiKey), OrgError> {
        let org = OrgRow {
            id: OrgId::generate(self.rng.as_ref()),
            name: name.into(),
            kind,
            created_at: self.clock.now(),
            deleted_at: None,
        };
        match self.store.insert_org(&org).await {
            Err(StorageError::Conflict) => return Err(OrgError::NameTaken),
            other => other?,
        }
        self.audit
            .record(AuditEvent::new(Actor::Operator, Action::OrgCreate).object(org.id))
            .await?;
        let key = self.create_key(Actor::Operator, org.id, roles).await?;
        Ok((org, key))
    }

    /// Issues another API key for an organisation.
    pub async fn create_key(
        &self,
        actor: Actor,
        org: OrgId,
        roles: Roles,
    ) -> Result<NewApiKey, OrgError> {
        let existing = self.store.org(org).await?.ok_or(OrgError::NotFound)?;
        if existing.deleted_at.is_some() {
            return Err(OrgError::NotFound);
        }
        let secret = SecretToken::generate(API_KEY_PREFIX, self.rng.as_ref());
        let row = ApiKeyRow {
            id: ApiKeyId::generate(self.rng.as_ref()),
            org,
            key_hash: secret.hash(),
            roles: roles.clone(),
            created_at: self.clock.now(),
            revoked_at: None,
            envelope_pk: Some(envelope_public_key(secret.expose())),
        };
        self.store.insert_api_key(&row).await?;
        self.audit
            .record(AuditEvent::new(actor, Action::OrgKeyCreate).object(row.id))
            .await?;
        Ok(NewApiKey {
            id: row.id,
            secret,
            roles,
        })
    }

    /// Deletes an organisation and revokes all its keys (operator action).
    pub async fn delete(&self, org: OrgId) -> Result<(), OrgError> {
        if !self.store.delete_org(org, self.clock.now()).await? {
            return Err(OrgError::NotFound);
        }
        self.audit
            .record(AuditEvent::new(Actor::Operator, Action::OrgDelete).object(org))
            .await?;
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<OrgRow>, OrgError> {
        Ok(self.store.list_orgs().await?)
    }

    /// Resolves a presented API key.
    pub async fn authenticate(&self, key: &str) -> Result<OrgPrincipal, OrgError> {
        if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
            return Err(OrgError::InvalidKey);
        }
        let (k, org) = self
            .store
            .api_key_by_hash(&me2b_crypto::hash_token(key))
            .await?
            .ok_or(OrgError::InvalidKey)?;
        if k.revoked_at.is_some() || org.deleted_at.is_some() {
            self.audit
                .record(
                    AuditEvent::new(Actor::Organisation(org.id), Action::AccessDenied)
                        .object(k.id)
                        .outcome(me2b_domain::audit::Outcome::Denied),
                )
                .await?;
            return Err(OrgError::RevokedKey);
        }
        if k.envelope_pk.is_none() {
            // A key an older node made: its envelope public key can only be
            // derived from the key itself, which is here now.
            self.store
                .set_api_key_envelope(k.id, &envelope_public_key(key))
                .await?;
        }
        Ok(OrgPrincipal {
            org,
            key: k.id,
            roles: k.roles,
        })
    }
}

/// The public key envelopes for this API key are sealed to (the secret half
/// is derived from the key, which the node does not keep).
fn envelope_public_key(api_key: &str) -> Vec<u8> {
    me2b_crypto::org_envelope::OrgEnvelopeKey::from_api_key(api_key)
        .public_key()
        .to_bytes()
        .to_vec()
}
