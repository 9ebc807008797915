//! Organisations' credentials and what they proved with them, on both
//! databases (issue 17: intents only holders of a credential may answer).
//! Nothing here describes a person: the holder, the issuer and the claims
//! are organisations' facts.

use crate::sql::SqlStore;
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// A credential the node keeps for the organisation it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgCredentialRow {
    /// 16 random bytes.
    pub id: [u8; 16],
    /// The holder.
    pub org: OrgId,
    /// The organisation that vouched.
    pub issuer: OrgId,
    /// The credential's JSON, sealed under the node's key.
    pub sealed: Vec<u8>,
    /// The end of its validity epoch.
    pub valid_until: Timestamp,
    pub created_at: Timestamp,
}

/// What an organisation proved: never the presentation, only its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudienceProofRow {
    pub org: OrgId,
    pub issuer: OrgId,
    pub claim: String,
    pub value: String,
    /// On the hour: the proof opens the audience's intents until then.
    pub valid_until: Timestamp,
}

#[async_trait]
pub trait OrgCredentialStore {
    async fn insert_org_credential(&self, row: &OrgCredentialRow) -> Result<()>;
    /// The organisation's credentials, the latest first.
    async fn org_credentials(&self, org: OrgId) -> Result<Vec<OrgCredentialRow>>;
    /// The organisation's credential with this id.
    async fn org_credential(&self, org: OrgId, id: &[u8; 16]) -> Result<Option<OrgCredentialRow>>;
    /// Stores a proof's outcome, replacing the same claim's earlier one.
    async fn put_audience_proof(&self, row: &AudienceProofRow) -> Result<()>;
    /// The organisation's proofs still valid at `now`.
    async fn audience_proofs(&self, org: OrgId, now: Timestamp) -> Result<Vec<AudienceProofRow>>;
    /// Deletes credentials and proofs that expired at `now`.
    async fn purge_org_credentials(&self, now: Timestamp) -> Result<u64>;
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

macro_rules! impl_org_credential_store {
    ($pool:ty) => {
        impl SqlStore<$pool> {
            fn org_credential_row(
                row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row,
            ) -> Result<OrgCredentialRow> {
                Ok(OrgCredentialRow {
                    id: row
                        .try_get::<Vec<u8>, _>("credential_id")?
                        .try_into()
                        .map_err(|_| corrupt("org_credentials.credential_id"))?,
                    org: row.try_get("org_id")?,
                    issuer: row.try_get("issuer_id")?,
                    sealed: row.try_get("sealed")?,
                    valid_until: Timestamp::from_unix_millis(row.try_get("valid_until")?),
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                })
            }
        }

        #[async_trait]
        impl OrgCredentialStore for SqlStore<$pool> {
            async fn insert_org_credential(&self, r: &OrgCredentialRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO org_credentials (credential_id, org_id, issuer_id, sealed, valid_until, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(r.id.to_vec())
                .bind(r.org)
                .bind(r.issuer)
                .bind(r.sealed.clone())
                .bind(r.valid_until.unix_millis())
                .bind(r.created_at.unix_millis())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn org_credentials(&self, org: OrgId) -> Result<Vec<OrgCredentialRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM org_credentials WHERE org_id = $1 ORDER BY created_at DESC, credential_id",
                )
                .bind(org)
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::org_credential_row).collect()
            }

            async fn org_credential(
                &self,
                org: OrgId,
                id: &[u8; 16],
            ) -> Result<Option<OrgCredentialRow>> {
                sqlx::query("SELECT * FROM org_credentials WHERE org_id = $1 AND credential_id = $2")
                    .bind(org)
                    .bind(id.to_vec())
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::org_credential_row)
                    .transpose()
            }

            async fn put_audience_proof(&self, r: &AudienceProofRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO org_audience_proofs (org_id, issuer_id, claim, claim_value, valid_until) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (org_id, issuer_id, claim, claim_value) DO UPDATE SET valid_until = excluded.valid_until",
                )
                .bind(r.org)
                .bind(r.issuer)
                .bind(r.claim.clone())
                .bind(r.value.clone())
                .bind(r.valid_until.unix_millis())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn audience_proofs(
                &self,
                org: OrgId,
                now: Timestamp,
            ) -> Result<Vec<AudienceProofRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM org_audience_proofs WHERE org_id = $1 AND valid_until > $2 \
                     ORDER BY claim, claim_value, issuer_id",
                )
                .bind(org)
                .bind(now.unix_millis())
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AudienceProofRow {
                            org: row.try_get("org_id")?,
                            issuer: row.try_get("issuer_id")?,
                            claim: row.try_get("claim")?,
                            value: row.try_get("claim_value")?,
                            valid_until: Timestamp::from_unix_millis(row.try_get("valid_until")?),
                        })
                    })
                    .collect()
            }

            async fn purge_org_credentials(&self, now: Timestamp) -> Result<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM org_audience_proofs WHERE valid_until <= $1",
                    "DELETE FROM org_credentials WHERE valid_until <= $1",
                ] {
                    n += sqlx::query(sql)
                        .bind(now.unix_millis())
                        .execute(self.pool())
                        .await?
                        .rows_affected();
                }
                Ok(n)
            }
        }
    };
}

impl_org_credential_store!(SqlitePool);
impl_org_credential_store!(PgPool);
