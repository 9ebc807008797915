//! The node's credential service: the promo-code flow over the node's storage.
//!
//! 1. A co-op (role `credentials`) creates a **one-time code** with the claims
//!    it vouches for (federation, tier, region, member-since year, interests)
//!    and hands it to one of its members through its own channel, after its own
//!    membership check. The node stores only the code's SHA-256, the claims and a
//!    random status index; it never tells the co-op which vault redeemed it.
//! 2. The member **redeems** the code: the node signs the claims with the co-op's
//!    BBS issuer key (created on first use, its secret sealed under the master
//!    key) and stores the credential in the member's vault.
//! 3. A verifier (a marketplace, a shop till: role `credentials`) creates a
//!    **challenge**: a fresh nonce (single use, ten minutes), its own id, the
//!    issuers it accepts and the claims it needs.
//! 4. The member **presents** from the vault: a BBS proof bound to the nonce and
//!    the verifier's id, disclosing only what the challenge needs (plus what the
//!    member adds), unlinkable to any other presentation.
//! 5. The verifier **verifies** through the node (the nonce is consumed, so a
//!    presentation cannot be replayed), or offline with `me2b credential verify`
//!    and the issuers' public keys from `/.well-known/me2b/issuers`.
//!
//! Revocation: the co-op revokes a status index; `/.well-known/me2b/status/{key}`
//! publishes the W3C Bitstring Status List, checked when a challenge asks.

use crate::bbs::{default_bbs, Bbs, BbsPublicKey, BbsSecretKey};
use crate::credential::{Credential, IssuerKeyId, IssuerKeyPair};
use crate::presentation::{Presentation, VerifierId};
use crate::schema::{
    ClaimName, ClaimText, Claims, Epoch, Interests, MemberSince, StatusIndex, COOP_MEMBERSHIP,
    EPOCH_LENGTH_SECONDS,
};
use crate::status::{BitstringStatusList, StatusList, MIN_STATUS_LIST_BITS};
use crate::verifier::{verify_presentation, Challenge, IssuerKeys, StatusLists};
use crate::CredentialError;
use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::{hash_token, Keyring};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::record::{CredentialRecord, RecordContent};
use me2b_domain::{Clock, OrgId, Random, RecordId, Timestamp};
use me2b_storage::{
    CredentialChallengeRow, CredentialCodeRow, CredentialIssuerRow, StorageError, Store,
};
use me2b_vault::{MemberSession, Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// How long a one-time code can be redeemed.
pub const CODE_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// How long a challenge can be answered.
pub const CHALLENGE_TTL_SECONDS: i64 = 10 * 60;
/// Validity of a credential, in weekly epochs, unless the code says otherwise.
pub const DEFAULT_VALID_WEEKS: u32 = 4;
/// Longest validity a code may ask for: short epochs with re-issuance are how
/// credentials expire (see `LINKABILITY.md`).
pub const MAX_VALID_WEEKS: u32 = 26;
/// Entries in each issuer's status list: an index hides among this many.
pub const STATUS_LIST_ENTRIES: usize = MIN_STATUS_LIST_BITS;
/// Alphabet of one-time codes (Crockford's base32: no I, L, O or U).
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random bytes in a code (120 bits), shown as 24 characters in groups of four.
const CODE_BYTES: usize = 15;

/// What can go wrong in the service. The offline library keeps its own
/// [`CredentialError`] (comparable and cloneable, no I/O); this one adds the
/// node's storage, vault and audit log.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("the code is unknown, already used, expired or revoked")]
    UnknownCode,
    #[error(
        "no such challenge: it was never made by this verifier, has expired, or was already used"
    )]
    UnknownChallenge,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the stored issuer key cannot be opened")]
    Corrupt,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl ServiceError {
    /// The stable code of the error, for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Credential(e) => e.code(),
            Self::UnknownCode => "unknown_code",
            Self::UnknownChallenge => "unknown_challenge",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid_parameter",
            Self::Corrupt => "corrupt",
            Self::Storage(_) => "unavailable",
            Self::Vault(_) => "vault",
            Self::Audit(_) => "unavailable",
        }
    }
}

/// What a co-op vouches for when it creates a code.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The federation the co-op belongs to, e.g. `Fair Economy Federation`.
    pub federation: String,
    /// e.g. `member`, `supporting`, `founding`.
    pub tier: String,
    /// A coarse region, e.g. `Noord-Holland`.
    pub region: String,
    /// The year the membership began.
    pub member_since: u16,
    /// Up to four declared interests the member asked to carry.
    #[serde(default)]
    pub interests: Vec<String>,
    /// Validity in weeks (1 to 26; default 4). The member asks again to renew.
    #[serde(default)]
    pub valid_weeks: Option<u32>,
}

/// The claims a code carries, as stored (no personal data beyond what the
/// co-op vouches for).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CodeClaims {
    v: u8,
    federation: ClaimText,
    tier: ClaimText,
    region: ClaimText,
    member_since: MemberSince,
    interests: Interests,
    valid_weeks: u32,
}

/// A code made for one member.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CodeIssued {
    /// Hand this to the member (printed, e-mailed, in the co-op's app). It is
    /// shown once: the node keeps only its hash.
    pub code: String,
    /// The credential's entry in the co-op's status list: keep it to revoke.
    pub status_index: u32,
    pub issuer_key_id: String,
    /// RFC 3339.
    pub redeem_before: String,
}

/// A credential as its member sees it in the vault.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeldCredential {
    /// The vault record that holds it.
    #[schema(value_type = String)]
    pub id: RecordId,
    pub issuer: String,
    pub issuer_key_id: String,
    /// Every claim, by name.
    pub claims: BTreeMap<String, String>,
    /// End of its last valid week (RFC 3339).
    pub valid_until: String,
    /// `valid`, `expired` or `revoked`.
    pub status: &'static str,
}

/// What a verifier asks for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Accept co-op memberships of this federation.
    pub federation: String,
    /// Accept only these issuers (organisation ids); default: every issuer
    /// the node publishes.
    #[serde(default)]
    pub issuers: Option<Vec<String>>,
    /// Claims the member must disclose, with any value (e.g. `tier`).
    #[serde(default)]
    pub claims: Vec<String>,
    /// Check revocation: the member then discloses the credential's status
    /// index, a correlation handle (see `LINKABILITY.md`). Default off.
    #[serde(default)]
    pub status_check: bool,
}

/// A member's presentation, with what it discloses in plain terms.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Presented {
    /// Give this to the verifier as is.
    #[schema(value_type = Object)]
    pub presentation: serde_json::Value,
    /// Exactly what the verifier will learn.
    pub discloses: BTreeMap<String, String>,
    pub verifier_id: String,
    /// The verifier's name when it is an organisation of this node (a
    /// challenge made elsewhere names only an id).
    pub verifier: Option<String>,
}

/// What a verifier learned from a valid presentation: the issuer and the
/// disclosed claims, nothing else.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub valid: bool,
    pub issuer_key_id: String,
    pub issuer: String,
    pub disclosed: BTreeMap<String, String>,
}

/// One entry of the well-known issuer document.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedIssuer {
    pub key_id: String,
    /// The issuing organisation's id (the credential's `issuer` claim).
    pub organisation: String,
    pub name: String,
    pub ciphersuite: String,
    /// The BBS public key, hex.
    pub public_key: String,
    /// Where its status list is published.
    pub status_list: String,
}

/// The document at `/.well-known/me2b/issuers`: enough to verify offline.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerDocument {
    pub issuers: Vec<PublishedIssuer>,
}

impl IssuerDocument {
    /// The verifier's key set (an unknown key id or a malformed key is an error).
    pub fn keys(&self) -> Result<IssuerKeys, CredentialError> {
        let mut keys = IssuerKeys::new();
        for i in &self.issuers {
            keys.insert(
                IssuerKeyId::new(&i.key_id)?,
                BbsPublicKey::from_hex(&i.public_key)?,
            );
        }
        Ok(keys)
    }
}

/// The credential service. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    audit: AuditLog,
    vault: Vault,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// Opened issuer keys, by organisation.
    issuers: tokio::sync::Mutex<HashMap<OrgId, Arc<IssuerKeyPair>>>,
}

/// Holds issuer secrets: printed without them.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

fn bbs() -> &'static dyn Bbs {
    default_bbs()
}

/// Runs BBS work (about 10 ms of CPU per signature or proof) on the blocking
/// pool, so it never holds up the async workers serving other requests.
async fn cpu<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CredentialError::BbsFailure("the operation was interrupted"))?
        .map_err(Into::into)
}

fn key_id_of(org: OrgId) -> Result<IssuerKeyId, CredentialError> {
    IssuerKeyId::new(&format!("{org}-bbs-1"))
}

fn seal_label(org: OrgId) -> String {
    format!("credential-issuer:{org}")
}

/// The code as shown: 24 characters in six groups of four.
fn format_code(bytes: &[u8; CODE_BYTES]) -> String {
    let mut out = String::with_capacity(29);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(CODE_ALPHABET[((acc >> bits) & 31) as usize]));
            n += 1;
        }
    }
    out
}

/// A typed code normalised: case, spaces and dashes ignored; O read as 0 and
/// I or L as 1 (Crockford's reading rules). `None` if it cannot be a code.
fn normalise_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(24);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if CODE_ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == 24).then_some(out)
}

fn code_hash(normalised: &str) -> [u8; 32] {
    hash_token(normalised)
}

fn claims_map(c: &Claims) -> BTreeMap<String, String> {
    ClaimName::ALL
        .iter()
        .map(|n| (n.as_str().to_owned(), c.value(*n).as_str().to_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

impl Credentials {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keyring>,
        audit: AuditLog,
        vault: Vault,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                audit,
                vault,
                clock,
                random,
                issuers: tokio::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    async fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.inner.audit.record(event).await?;
        Ok(())
    }

    async fn live_org(&self, org: OrgId) -> Result<String, ServiceError> {
        match self.inner.store.org(org).await? {
            Some(row) if row.deleted_at.is_none() => Ok(row.name),
            _ => Err(ServiceError::NotFound("organisation")),
        }
    }

    fn open_issuer(&self, row: &CredentialIssuerRow) -> Result<IssuerKeyPair, ServiceError> {
        let secret = self
            .inner
            .keys
            .open_node_secret(&seal_label(row.org_id), &row.sealed_secret)
            .map_err(|_| ServiceError::Corrupt)?;
        let secret = BbsSecretKey::from_bytes(&secret[..]).map_err(|_| ServiceError::Corrupt)?;
        let pair = IssuerKeyPair::from_secret(
            bbs(),
            IssuerKeyId::new(&row.key_id).map_err(|_| ServiceError::Corrupt)?,
            secret,
        )?;
        if pair.public_key().as_bytes() != row.public_key.as_slice() {
            return Err(ServiceError::Corrupt);
        }
        Ok(pair)
    }

    /// The organisation's issuer key, created (and sealed) on first use.
    async fn issuer(&self, org: OrgId) -> Result<Arc<IssuerKeyPair>, ServiceError> {
        let mut cache = self.inner.issuers.lock().await;
        if let Some(k) = cache.get(&org) {
            return Ok(k.clone());
        }
        let row = match self.inner.store.credential_issuer(org).await? {
            Some(row) => row,
            None => {
                let fresh =
                    IssuerKeyPair::generate(bbs(), key_id_of(org)?, self.inner.random.as_ref())?;
                let sealed = self.inner.keys.seal_node_secret(
                    &seal_label(org),
                    &fresh.secret_key().to_bytes()[..],
                    self.inner.random.as_ref(),
                );
                let row = CredentialIssuerRow {
                    org_id: org,
                    key_id: fresh.key_id().as_str().to_owned(),
                    public_key: fresh.public_key().as_bytes().to_vec(),
                    sealed_secret: sealed,
                    created_at: self.inner.clock.now(),
                };
                // Another node may have won the race: use the one in force.
                self.inner.store.ensure_credential_issuer(&row).await?
            }
        };
        let pair = Arc::new(self.open_issuer(&row)?);
        cache.insert(org, pair.clone());
        Ok(pair)
    }

    /// Creates a one-time code for one of the co-op's members.
    #[tracing::instrument(skip_all)]
    pub async fn create_code(
        &self,
        org: OrgId,
        req: &CodeRequest,
    ) -> Result<CodeIssued, ServiceError> {
        self.live_org(org).await?;
        let valid_weeks = req.valid_weeks.unwrap_or(DEFAULT_VALID_WEEKS);
        if !(1..=MAX_VALID_WEEKS).contains(&valid_weeks) {
            return Err(ServiceError::Invalid("`valid_weeks` is 1 to 26"));
        }
        let claims = CodeClaims {
            v: 1,
            federation: ClaimText::new(&req.federation)?,
            tier: ClaimText::new(&req.tier)?,
            region: ClaimText::new(&req.region)?,
            member_since: MemberSince::new(req.member_since)?,
            interests: Interests::new(
                req.interests
                    .iter()
                    .map(|i| ClaimText::new(i))
                    .collect::<Result<_, _>>()?,
            )?,
            valid_weeks,
        };
        let issuer = self.issuer(org).await?;
        let now = self.inner.clock.now();
        self.inner.store.purge_expired_credentials(now).await?;
        let claims_json =
            serde_json::to_vec(&claims).map_err(|_| ServiceError::Invalid("claims"))?;
        // A random index, drawn again while it is taken at this co-op.
        for _ in 0..64 {
            let index = StatusIndex::random(self.inner.random.as_ref(), STATUS_LIST_ENTRIES)?;
            let mut bytes = [0u8; CODE_BYTES];
            self.inner.random.fill(&mut bytes);
            let code = format_code(&bytes);
            let row = CredentialCodeRow {
                code_hash: code_hash(&code.replace('-', "")),
                org_id: org,
                claims_json: claims_json.clone(),
                status_index: index.get(),
                created_at: now,
                expires_at: now.plus_seconds(CODE_TTL_SECONDS),
                redeemed_at: None,
            };
            if self.inner.store.insert_credential_code(&row).await? {
                self.record(
                    AuditEvent::new(Actor::Organisation(org), Action::CredentialCode)
                        .object(issuer.key_id()),
                )
                .await?;
                return Ok(CodeIssued {
                    code,
                    status_index: index.get(),
                    issuer_key_id: issuer.key_id().as_str().to_owned(),
                    redeem_before: row.expires_at.to_rfc3339(),
                });
            }
        }
        Err(ServiceError::Invalid("the status list is full"))
    }

    /// Revokes the credential (or unredeemed code) at `index`.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, org: OrgId, index: u32) -> Result<(), ServiceError> {
        self.live_org(org).await?;
        let done = self
            .inner
            .store
            .revoke_credential(org, index, self.inner.clock.now())
            .await?;
        self.record(
            AuditEvent::new(Actor::Organisation(org), Action::CredentialRevoke)
                .object(format!("status index {index}"))
                .outcome(if done { Outcome::Ok } else { Outcome::Denied }),
        )
        .await?;
        if done {
            Ok(())
        } else {
            Err(ServiceError::NotFound("status index"))
        }
    }

    /// Redeems a code: the co-op's credential goes into the member's vault.
    #[tracing::instrument(skip_all)]
    pub async fn redeem(
        &self,
        s: &MemberSession,
        typed: &str,
    ) -> Result<HeldCredential, ServiceError> {
        let now = self.inner.clock.now();
        let Some(code) = normalise_code(typed) else {
            return Err(ServiceError::UnknownCode);
        };
        let row = self
            .inner
            .store
            .redeem_credential_code(&code_hash(&code), now)
            .await?;
        let Some(row) = row else {
            self.record(
                AuditEvent::new(Actor::Member(s.member), Action::CredentialIssue)
                    .subject(s.member)
                    .outcome(Outcome::Denied),
            )
            .await?;
            return Err(ServiceError::UnknownCode);
        };
        // Nothing is lost: if the credential cannot be made and stored, the
        // code works again.
        let (id, name, credential) = match self.issue_into_vault(s, &row, now).await {
            Ok(done) => done,
            Err(e) => {
                if let Err(undo) = self
                    .inner
                    .store
                    .release_credential_code(&row.code_hash)
                    .await
                {
                    tracing::error!(error = %undo, "a used-up code could not be released");
                }
                return Err(e);
            }
        };
        self.record(
            AuditEvent::new(Actor::Member(s.member), Action::CredentialIssue)
                .subject(s.member)
                .object(row.org_id),
        )
        .await?;
        self.held(id, &name, &credential, now).await
    }

    /// Signs the code's claims with the co-op's key and stores the credential
    /// in the member's vault; returns the record id, the issuer's name and
    /// the credential.
    async fn issue_into_vault(
        &self,
        s: &MemberSession,
        row: &CredentialCodeRow,
        now: Timestamp,
    ) -> Result<(RecordId, String, Credential), ServiceError> {
        let c: CodeClaims =
            serde_json::from_slice(&row.claims_json).map_err(|_| ServiceError::Corrupt)?;
        let name = self.live_org(row.org_id).await?;
        let issuer = self.issuer(row.org_id).await?;
        let claims = Claims {
            issuer: row.org_id,
            credential_type: ClaimText::new(COOP_MEMBERSHIP)?,
            federation: c.federation,
            member_since: c.member_since,
            tier: c.tier,
            region: c.region,
            validity_epoch: Epoch::containing(now).plus(c.valid_weeks.saturating_sub(1)),
            status_index: StatusIndex::new(row.status_index),
            interests: c.interests,
        };
        let credential = {
            let issuer = issuer.clone();
            cpu(move || {
                let c = issuer.issue(bbs(), claims)?;
                // The member's side checks the signature before keeping it.
                c.verify(bbs(), issuer.public_key())?;
                Ok(c)
            })
            .await?
        };
        let json = serde_json::to_string(&credential).map_err(|_| ServiceError::Corrupt)?;
        let content = RecordContent::Credential(CredentialRecord {
            issuer: name
                .chars()
                .take(200)
                .collect::<String>()
                .try_into()
                .map_err(|_| ServiceError::Corrupt)?,
            credential: json.try_into().map_err(|_| ServiceError::Corrupt)?,
        });
        let view = self.inner.vault.create_record(s, content).await?;
        Ok((view.id, name, credential))
    }

    async fn held(
        &self,
        id: RecordId,
        issuer: &str,
        c: &Credential,
        now: Timestamp,
    ) -> Result<HeldCredential, ServiceError> {
        let revoked = self
            .inner
            .store
            .revoked_credentials(c.claims.issuer)
            .await?
            .contains(&c.claims.status_index.get());
        let end_ms = (i64::from(c.claims.validity_epoch.get()) + 1)
            .saturating_mul(EPOCH_LENGTH_SECONDS)
            .saturating_mul(1000);
        let status = if revoked {
            "revoked"
        } else if c.claims.validity_epoch < Epoch::containing(now) {
            "expired"
        } else {
            "valid"
        };
        Ok(HeldCredential {
            id,
            issuer: issuer.to_owned(),
            issuer_key_id: c.issuer_key_id.as_str().to_owned(),
            claims: claims_map(&c.claims),
            valid_until: Timestamp::from_unix_millis(end_ms - 1).to_rfc3339(),
            status,
        })
    }

    /// The member's credentials, from their vault.
    #[tracing::instrument(skip_all)]
    pub async fn held_by(&self, s: &MemberSession) -> Result<Vec<HeldCredential>, ServiceError> {
        let now = self.inner.clock.now();
        let mut out = Vec::new();
        for r in self.inner.vault.all_records(s).await? {
            if let RecordContent::Credential(c) = &r.content {
                let Ok(cred) = serde_json::from_str::<Credential>(c.credential.as_str()) else {
                    continue;
                };
                out.push(self.held(r.id, c.issuer.as_str(), &cred, now).await?);
            }
        }
        Ok(out)
    }

    /// A verifier's challenge, stored so its nonce is used once.
    #[tracing::instrument(skip_all)]
    pub async fn challenge(
        &self,
        org: OrgId,
        req: &ChallengeRequest,
    ) -> Result<serde_json::Value, ServiceError> {
        self.live_org(org).await?;
        let published = self.inner.store.credential_issuers().await?;
        let wanted: Option<BTreeSet<String>> =
            req.issuers.as_ref().map(|v| v.iter().cloned().collect());
        let issuers: Vec<IssuerKeyId> = published
            .iter()
            .filter(|i| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(&i.org_id.to_string()))
            })
            .map(|i| IssuerKeyId::new(&i.key_id))
            .collect::<Result<_, _>>()?;
        if issuers.is_empty() {
            return Err(ServiceError::Invalid(
                "no accepted issuer has published a key yet",
            ));
        }
        let mut c = Challenge::coop_membership(
            self.inner.random.as_ref(),
            VerifierId::new(&org.to_string())?,
            &req.federation,
            issuers,
        )?;
        for name in &req.claims {
            let n = ClaimName::parse(name).ok_or(ServiceError::Invalid("unknown claim name"))?;
            c = c.require_claim(n);
        }
        if req.status_check {
            c = c.require_status_check();
        }
        let now = self.inner.clock.now();
        // Unanswered challenges do not pile up.
        self.inner.store.purge_expired_credentials(now).await?;
        let json = c.to_json();
        self.inner
            .store
            .insert_credential_challenge(&CredentialChallengeRow {
                nonce: *c.nonce().as_bytes(),
                org_id: org,
                challenge_json: json.clone().into_bytes(),
                created_at: now,
                expires_at: now.plus_seconds(CHALLENGE_TTL_SECONDS),
            })
            .await?;
        self.record(AuditEvent::new(
            Actor::Organisation(org),
            Action::CredentialChallenge,
        ))
        .await?;
        serde_json::from_str(&json).map_err(|_| ServiceError::Corrupt)
    }

    /// The member answers a challenge with the credential in record `id`,
    /// disclosing what the challenge needs plus `extra`.
    #[tracing::instrument(skip_all)]
    pub async fn present(
        &self,
        s: &MemberSession,
        id: RecordId,
        challenge: &[u8],
        extra: &[String],
    ) -> Result<Presented, ServiceError> {
        let challenge = Challenge::parse(challenge)?;
        let record = self.inner.vault.read_record(s, id).await?;
        let RecordContent::Credential(held) = &record.content else {
            return Err(ServiceError::NotFound("credential"));
        };
        let credential: Credential = serde_json::from_str(held.credential.as_str())
            .map_err(|_| ServiceError::Invalid("the record does not hold a credential"))?;
        if !challenge
            .accepted_issuers()
            .contains(&credential.issuer_key_id)
        {
            return Err(CredentialError::UnknownIssuer.into());
        }
        let issuer = self
            .inner
            .store
            .credential_issuer(credential.claims.issuer)
            .await?
            .filter(|r| r.key_id == credential.issuer_key_id.as_str())
            .ok_or(CredentialError::UnknownIssuer)?;
        let public = BbsPublicKey::from_bytes(&issuer.public_key)?;
        let mut disclose = challenge.claims_to_disclose();
        for name in extra {
            disclose
                .insert(ClaimName::parse(name).ok_or(ServiceError::Invalid("unknown claim name"))?);
        }
        let (nonce, verifier, random) = (
            *challenge.nonce(),
            challenge.verifier_id().clone(),
            self.inner.random.clone(),
        );
        let p = cpu(move || {
            credential.present(
                bbs(),
                &public,
                &nonce,
                &verifier,
                &disclose,
                random.as_ref(),
            )
        })
        .await?;
        self.record(
            AuditEvent::new(Actor::Member(s.member), Action::CredentialPresent)
                .subject(s.member)
                .object(format!("to {}", challenge.verifier_id().as_str())),
        )
        .await?;
        Ok(Presented {
            presentation: serde_json::from_str(&p.to_json()).map_err(|_| ServiceError::Corrupt)?,
            discloses: p
                .disclosed()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
                .collect(),
            verifier_id: challenge.verifier_id().as_str().to_owned(),
            verifier: match challenge.verifier_id().as_str().parse::<OrgId>() {
                Ok(org) => self.live_org(org).await.ok(),
                Err(_) => None,
            },
        })
    }

    /// Checks a presentation against the verifier's own challenge, which it
    /// consumes: a second presentation with the same nonce is refused.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, org: OrgId, presentation: &[u8]) -> Result<Verified, ServiceError> {
        let result = self.verify_inner(org, presentation).await;
        let event = AuditEvent::new(Actor::Organisation(org), Action::CredentialVerify);
        let event = match &result {
            Ok(v) => event.object(&v.issuer_key_id),
            Err(e) => event.object(e.code()).outcome(Outcome::Denied),
        };
        self.record(event).await?;
        result
    }

    async fn verify_inner(
        &self,
        org: OrgId,
        presentation: &[u8],
    ) -> Result<Verified, ServiceError> {
        let p = Presentation::parse(presentation)?;
        let now = self.inner.clock.now();
        let row = self
            .inner
            .store
            .take_credential_challenge(org, p.nonce().as_bytes(), now)
            .await?
            .ok_or(ServiceError::UnknownChallenge)?;
        let challenge = Challenge::parse(&row.challenge_json)?;
        let published = self.inner.store.credential_issuers().await?;
        let mut keys = IssuerKeys::new();
        let mut names = BTreeMap::new();
        let mut lists = StatusLists::new();
        for i in &published {
            let id = IssuerKeyId::new(&i.key_id)?;
            keys.insert(id.clone(), BbsPublicKey::from_bytes(&i.public_key)?);
            if &id == p.issuer_key_id() {
                // An issuer deleted since it published is not accepted.
                let name = match self.live_org(i.org_id).await {
                    Err(ServiceError::NotFound(_)) => {
                        return Err(CredentialError::UnknownIssuer.into())
                    }
                    other => other?,
                };
                names.insert(id.clone(), (i.org_id, name));
                if challenge.status_check() {
                    lists.insert(id, self.status_list_of(i.org_id).await?);
                }
            }
        }
        let epoch = Epoch::containing(now);
        let v =
            cpu(move || verify_presentation(bbs(), &challenge, &p, &keys, &lists, epoch)).await?;
        let (_, issuer) = names
            .remove(v.issuer_key_id())
            .ok_or(CredentialError::UnknownIssuer)?;
        Ok(Verified {
            valid: true,
            issuer_key_id: v.issuer_key_id().as_str().to_owned(),
            issuer,
            disclosed: v
                .disclosed()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
                .collect(),
        })
    }

    async fn status_list_of(&self, org: OrgId) -> Result<StatusList, ServiceError> {
        let mut list = StatusList::with_entries(STATUS_LIST_ENTRIES)?;
        for i in self.inner.store.revoked_credentials(org).await? {
            list.revoke(StatusIndex::new(i))?;
        }
        Ok(list)
    }

    /// The issuers' public keys, for `/.well-known/me2b/issuers`.
    pub async fn published(&self) -> Result<IssuerDocument, ServiceError> {
        let mut issuers = Vec::new();
        for i in self.inner.store.credential_issuers().await? {
            let Ok(name) = self.live_org(i.org_id).await else {
                continue;
            };
            issuers.push(PublishedIssuer {
                status_list: format!("/.well-known/me2b/status/{}", i.key_id),
                key_id: i.key_id,
                organisation: i.org_id.to_string(),
                name,
                ciphersuite: bbs().ciphersuite_id().to_owned(),
                public_key: hex::encode(&i.public_key),
            });
        }
        Ok(IssuerDocument { issuers })
    }

    /// An issuer's status list, as a W3C `BitstringStatusList` subject.
    pub async fn status_list(&self, key_id: &str) -> Result<BitstringStatusList, ServiceError> {
        let issuer = self
            .inner
            .store
            .credential_issuers()
            .await?
            .into_iter()
            .find(|i| i.key_id == key_id)
            .ok_or(ServiceError::NotFound("issuer key"))?;
        let list = self.status_list_of(issuer.org_id).await?;
        Ok(list.to_subject(&format!("/.well-known/me2b/status/{key_id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_read_back_whatever_the_typing() {
        let bytes = [0xA5u8; CODE_BYTES];
        let code = format_code(&bytes);
        assert_eq!(code.len(), 29);
        assert_eq!(code.matches('-').count(), 5);
        let plain = code.replace('-', "");
        assert_eq!(normalise_code(&code).as_deref(), Some(plain.as_str()));
        assert_eq!(
            normalise_code(&code.to_lowercase().replace('-', " ")).as_deref(),
            Some(plain.as_str())
        );
        assert_eq!(
            normalise_code("O0IL-1111-2222-3333-4444-5555").as_deref(),
            Some("001111112222333344445555")
        );
        assert_eq!(normalise_code("short"), None);
        assert_eq!(normalise_code("UUUU-1111-2222-3333-4444-5555"), None);
    }

    proptest! {
        #[test]
        fn every_code_normalises_to_itself(bytes in proptest::array::uniform15(any::<u8>())) {
            let code = format_code(&bytes);
            prop_assert_eq!(normalise_code(&code), Some(code.replace('-', "")));
        }

        #[test]
        fn typed_input_never_panics(s in "\\PC{0,64}") {
            let _ = normalise_code(&s);
        }
    }
}
