//! The node's credential service: the promo-code flow over the node's storage.
//!
//! 1. A co-op (role `credentials`) creates a **one-time code** with the claims
//!    it vouches for (tier, region, member-since year, interests) and hands it
//!    to one of its members through its own channel, after its own membership
//!    check. Interests must be ordinary topics of the interest taxonomy: an
//!    unknown topic or a special-category one (GDPR Art. 9, and every topic
//!    under one) is refused. The node stores only the code's SHA-256, the
//!    claims and a random entry of the federation's status list; it never
//!    tells the co-op which vault redeemed it.
//! 2. The member **redeems** the code: the node signs the claims with the
//!    **federation's** BBS issuer key (one key for every co-op of the node,
//!    created on first use, its secret sealed under the master key) and stores
//!    the credential in the member's vault. The co-op is the `issuer` claim, an
//!    ordinary message the member may keep hidden. The federation's name and
//!    the validity epoch come from the node's [`FederationSettings`], never
//!    from the code: everyone issued in one period gets the same epoch.
//! 3. A verifier (a marketplace, a shop till: role `credentials`) creates a
//!    **challenge**: a fresh nonce (single use, ten minutes), its own id, the
//!    federation's key, the claims it needs, and optionally the co-ops it
//!    accepts (the member then discloses which one issued).
//! 4. The member **presents** from the vault: a BBS proof bound to the nonce and
//!    the verifier's id, disclosing only what the challenge needs (plus what the
//!    member adds), unlinkable to any other presentation.
//! 5. The verifier **verifies** through the node (the nonce is consumed, so a
//!    presentation cannot be replayed), or offline with `me2b credential verify`
//!    and the federation's public key from `/.well-known/me2b/issuers`.
//!
//! Revocation: a co-op revokes a status index it reserved (never another
//! co-op's); `/.well-known/me2b/status/{key}` publishes the federation's one
//! W3C Bitstring Status List, checked when a challenge asks.

mod codes;
mod orgs;
mod rarity;
mod verify;

pub use orgs::{
    AudienceChallengeRequest, HeldOrgCredential, OrgCredentialRequest, ProvenAudience,
    AUDIENCE_PROOF_SECONDS,
};
pub use rarity::{
    Disclosure, Preview, Rarity, COUNTED_CLAIMS, DEFAULT_COUNT_AFTER_DAYS, DEFAULT_MIN_SHARED,
    MAX_COUNT_AFTER_DAYS, MAX_MIN_SHARED,
};

use crate::bbs::{default_bbs, Bbs, BbsPublicKey, BbsSecretKey};
use crate::credential::{IssuerKeyId, IssuerKeyPair, SignedCredential};
use crate::presentation::Presentation;
use crate::schema::{ClaimName, ClaimSet, ClaimText, Interests, ValidityPeriod};
use crate::status::MIN_STATUS_LIST_BITS;
use crate::tags::FederationTags;
use crate::verifier::{Challenge, IssuerKeys};
use crate::CredentialError;
use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::Keyring;
use me2b_domain::audit::AuditEvent;
use me2b_domain::{Clock, OrgId, Random, RecordId};
use me2b_storage::{CredentialIssuerRow, StorageError, Store};
use me2b_vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How long a one-time code can be redeemed.
pub const CODE_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// How long a challenge can be answered.
pub const CHALLENGE_TTL_SECONDS: i64 = 10 * 60;
/// Entries in the federation's status list (one index space for every
/// co-op): an index hides among this many, and the list holds this many
/// issuances. Eight times the W3C minimum.
pub const STATUS_LIST_ENTRIES: usize = 8 * MIN_STATUS_LIST_BITS;
/// The most co-ops one challenge may name.
pub const MAX_CHALLENGE_ISSUERS: usize = 64;

/// The federation's credential settings, set once for the node: the same for
/// every co-op and every credential, never chosen per code (a value an issuer
/// could choose per member would let it tag that member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationSettings {
    /// The `federation` claim of every credential.
    pub federation: ClaimText,
    /// How long credentials last (see [`ValidityPeriod`]).
    pub period: ValidityPeriod,
    /// The tiers and regions a code may carry (see [`FederationTags`]): the
    /// node sets them from its governance file.
    pub tags: FederationTags,
    /// A presentation whose disclosed values are shared by fewer credentials
    /// of the issuer than this is refused unless the member accepts
    /// (`[credentials] min_shared`, default [`DEFAULT_MIN_SHARED`]).
    pub min_shared: u32,
    /// A redemption counts toward how common its claim values are only when
    /// the member's account is at least this many days old (`[credentials]
    /// count_after_days`, default [`DEFAULT_COUNT_AFTER_DAYS`]).
    pub count_after_days: u32,
}

impl Default for FederationSettings {
    fn default() -> Self {
        Self {
            federation: ClaimText::default_federation(),
            period: ValidityPeriod::default(),
            tags: FederationTags::default(),
            min_shared: DEFAULT_MIN_SHARED,
            count_after_days: DEFAULT_COUNT_AFTER_DAYS,
        }
    }
}

/// `[credentials]` in the governance file: the tiers the federation's co-ops
/// may vouch for (regions are the trust's `[trust] areas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialGovernance {
    pub tiers: Vec<String>,
    /// The first year a credential's `member_since` may say (1900–2100).
    /// Default 2000.
    pub member_since_from: u16,
    /// The step of the `member_since` list, in years (1–50). Default 5: a
    /// co-op rounds a member's first year up to the list (the claim stays
    /// true: they were a member then).
    pub member_since_step: u16,
    /// A presentation whose disclosed values are shared by fewer
    /// credentials of the issuer (in the same validity epoch) than this is
    /// refused unless the member accepts (1–10,000; default 10; 1 turns the
    /// refusal off, the member is still told the count).
    pub min_shared: u32,
    /// A redemption counts toward those numbers only when the member's
    /// account is at least this many days old (0–365; default 28, one
    /// default period): a co-op's fake members made this epoch count for
    /// nothing (adv8). 0 counts every redemption.
    pub count_after_days: u32,
}

impl CredentialGovernance {
    /// Whether `min_shared` is within 1..=[`MAX_MIN_SHARED`] and
    /// `count_after_days` within 0..=[`MAX_COUNT_AFTER_DAYS`].
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_MIN_SHARED).contains(&self.min_shared) {
            return Err("[credentials] min_shared must be 1 to 10000".to_owned());
        }
        if self.count_after_days > MAX_COUNT_AFTER_DAYS {
            return Err("[credentials] count_after_days must be 0 to 365".to_owned());
        }
        Ok(())
    }
}

impl Default for CredentialGovernance {
    fn default() -> Self {
        Self {
            tiers: crate::tags::DEFAULT_TIERS
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            member_since_from: crate::tags::DEFAULT_MEMBER_SINCE_FROM,
            member_since_step: crate::tags::DEFAULT_MEMBER_SINCE_STEP,
            min_shared: DEFAULT_MIN_SHARED,
            count_after_days: DEFAULT_COUNT_AFTER_DAYS,
        }
    }
}

/// How many interests a credential carries at most: with `n` ordinary
/// top-level topics, 1 + n + n(n-1)/2 distinct values (277 for the shipped
/// taxonomy, ≤ 2^10 while n ≤ 44).
pub const MAX_ISSUED_INTERESTS: usize = 2;

/// What the interest taxonomy says about a topic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TopicKind {
    /// A topic a credential may carry: a top-level topic of the taxonomy,
    /// not a special category.
    Ordinary,
    /// An ordinary topic below the top level: not issued (finding 6 of
    /// adv4): with every topic, four ordered slots made ~5×10^10 values, a
    /// tag an issuer could write and a verifier read.
    Narrow,
    /// A special-category topic (GDPR Art. 9), or a topic under one.
    Sensitive,
    /// Not a topic of the taxonomy.
    Unknown,
}

/// The interest taxonomy as the credential service sees it. The node passes
/// the shipped taxonomy of `me2b-offers` through this, so that this crate does
/// not depend on offers. Only [`TopicKind::Ordinary`] topics are issued.
pub trait InterestTaxonomy: Send + Sync {
    /// The kind of the topic with this slug.
    fn kind(&self, slug: &str) -> TopicKind;
}

/// A taxonomy that knows no topic: every interest is refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTopics;

impl InterestTaxonomy for NoTopics {
    fn kind(&self, _slug: &str) -> TopicKind {
        TopicKind::Unknown
    }
}

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
    /// An interest is not a topic of the interest taxonomy.
    #[error("an interest is not a topic of the interest taxonomy")]
    UnknownTopic,
    /// An interest is a special-category topic (GDPR Art. 9) or under one.
    #[error(
        "an interest is a special-category topic (GDPR Art. 9): a credential never carries one"
    )]
    SensitiveTopic,
    /// The tier is not one of the federation's (`[credentials] tiers`).
    #[error("the tier is not one of the federation's tiers (see /.well-known/me2b/issuers)")]
    UnknownTier,
    /// The region is not one of the trust's area codes (`[trust] areas`).
    #[error("the region is not one of the trust's area codes (see /.well-known/me2b/issuers)")]
    UnknownRegion,
    /// `member_since` is not a year of the federation's list.
    #[error("member_since is not a year of the federation's list (every member_since_step-th year from member_since_from, up to this year; see /.well-known/me2b/issuers)")]
    UnknownMemberSince,
    /// What the presentation would disclose is shared by fewer credentials
    /// of the issuer than the federation's threshold: a colluding issuer
    /// and verifier could recognise the member by it.
    #[error("what this presentation would disclose is shared by fewer credentials of its issuer than the federation's threshold, so the issuer could recognise you by it: see the preview, disclose less, or present with accept_rare")]
    RareDisclosure,
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
            Self::UnknownTopic => "unknown_topic",
            Self::SensitiveTopic => "sensitive_topic",
            Self::UnknownTier => "unknown_tier",
            Self::UnknownRegion => "unknown_region",
            Self::UnknownMemberSince => "unknown_member_since",
            Self::RareDisclosure => "rare_disclosure",
            Self::Corrupt => "corrupt",
            Self::Storage(_) => "unavailable",
            Self::Vault(_) => "vault",
            Self::Audit(_) => "unavailable",
        }
    }
}

impl From<crate::tags::TagRefusal> for ServiceError {
    fn from(r: crate::tags::TagRefusal) -> Self {
        use crate::tags::TagRefusal as R;
        match r {
            R::Form(e) => Self::Credential(e),
            R::UnknownTier => Self::UnknownTier,
            R::UnknownRegion => Self::UnknownRegion,
            R::UnknownMemberSince => Self::UnknownMemberSince,
        }
    }
}

/// What a co-op vouches for when it creates a code. The federation's name and
/// the validity are the node's, the same for every co-op and every member:
/// a code cannot choose them (`valid_weeks` is refused).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Optional: if given, it must be the node's federation (as published at
    /// `/.well-known/me2b/issuers`).
    #[serde(default)]
    pub federation: Option<String>,
    /// One of the federation's tiers (default `member`, `supporting`,
    /// `founding`; listed at `/.well-known/me2b/issuers`).
    pub tier: String,
    /// One of the data trust's area codes, e.g. `NL-NH` (listed at
    /// `/.well-known/me2b/issuers`).
    pub region: String,
    /// The year the membership began.
    pub member_since: u16,
    /// Up to four declared interests the member asked to carry: slugs of
    /// ordinary topics of the interest taxonomy (special categories are
    /// refused).
    #[serde(default)]
    pub interests: Vec<String>,
}

/// A code made for one member.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CodeIssued {
    /// Hand this to the member (printed, e-mailed, in the co-op's app). It is
    /// shown once: the node keeps only its hash.
    pub code: String,
    /// The credential's entry in the federation's status list: keep it to
    /// revoke (only the co-op that made the code can).
    pub status_index: u32,
    /// The federation's key, which signs every co-op's credentials.
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
    /// The co-op that issued it.
    pub issuer: String,
    pub issuer_key_id: String,
    /// Every claim, by name.
    pub claims: BTreeMap<String, String>,
    /// End of its last valid week (RFC 3339).
    pub valid_until: String,
    /// `valid`, `expired`, `revoked`, or `retired` (signed with a key the
    /// federation no longer uses: ask the co-op for a new code).
    pub status: &'static str,
}

/// What a verifier asks for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Accept co-op memberships of this federation.
    pub federation: String,
    /// Accept only these co-ops (organisation ids): the member then discloses
    /// which one issued the credential. Default: any co-op of the federation,
    /// and the issuer stays hidden.
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
    /// How many credentials of the issuer share what it discloses.
    pub rarity: Rarity,
}

/// What a verifier learned from a valid presentation: the federation's key
/// and the disclosed claims, nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub valid: bool,
    pub issuer_key_id: String,
    /// The issuing co-op's name, only when the member disclosed the `issuer`
    /// claim (a challenge that names co-ops asks for it); otherwise null.
    pub issuer: Option<String>,
    pub disclosed: BTreeMap<String, String>,
}

/// The federation's issuer key, as published.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedIssuer {
    pub key_id: String,
    /// The federation whose co-ops' credentials it signs.
    pub federation: String,
    pub ciphersuite: String,
    /// The BBS public key, hex.
    pub public_key: String,
    /// Where its status list is published.
    pub status_list: String,
}

/// A co-op that issues credentials under the federation's key: its id is
/// the value of the `issuer` claim.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedCoop {
    pub organisation: String,
    pub name: String,
}

/// The document at `/.well-known/me2b/issuers`: enough to verify offline.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerDocument {
    /// The federation's key (one; a list so that a key can be rotated).
    pub issuers: Vec<PublishedIssuer>,
    /// The co-ops that issue, for challenges that name some.
    pub coops: Vec<PublishedCoop>,
    /// The tiers a credential may carry (the federation's list).
    #[serde(default)]
    pub tiers: Vec<String>,
    /// The regions a credential may carry (the trust's area codes).
    #[serde(default)]
    pub regions: Vec<String>,
    /// The years `member_since` may say (the federation's coarse list, up
    /// to this year).
    #[serde(default)]
    pub member_since: Vec<u16>,
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

    /// The name of a co-op of the document.
    pub fn coop_name(&self, org: OrgId) -> Option<&str> {
        let id = org.to_string();
        self.coops
            .iter()
            .find(|c| c.organisation == id)
            .map(|c| c.name.as_str())
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
    settings: FederationSettings,
    topics: Arc<dyn InterestTaxonomy>,
    /// The federation's issuer key, once opened.
    federation_key: tokio::sync::Mutex<Option<Arc<IssuerKeyPair>>>,
}

/// Holds the issuer secret: printed without it.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
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

/// The label the federation's secret key is sealed under.
const SEAL_LABEL: &str = "credential-issuer:federation";

impl Credentials {
    /// A presentation of `credential` (a member's or an organisation's) to
    /// `challenge`'s verifier and nonce, disclosing `disclose`: the proof is
    /// made on the blocking pool with the service's randomness.
    async fn present_on_cpu<C: ClaimSet + Send + 'static>(
        &self,
        credential: SignedCredential<C>,
        challenge: &Challenge,
        disclose: BTreeSet<ClaimName>,
    ) -> Result<Presentation, ServiceError> {
        let public = self.public_key(&credential.issuer_key_id).await?;
        let (nonce, verifier, random) = (
            *challenge.nonce(),
            challenge.verifier_id().clone(),
            self.inner.random.clone(),
        );
        cpu(move || {
            credential.present(
                bbs(),
                &public,
                &nonce,
                &verifier,
                &disclose,
                random.as_ref(),
            )
        })
        .await
    }

    /// The federation's issuer key `id`, if it is the current one.
    async fn public_key(&self, id: &IssuerKeyId) -> Result<BbsPublicKey, ServiceError> {
        let issuer = self
            .inner
            .store
            .federation_issuer()
            .await?
            .filter(|r| r.key_id == id.as_str())
            .ok_or(CredentialError::UnknownIssuer)?;
        Ok(BbsPublicKey::from_bytes(&issuer.public_key)?)
    }
}

impl Credentials {
    /// The service; `topics` judges interest claims (see [`InterestTaxonomy`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keyring>,
        audit: AuditLog,
        vault: Vault,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        settings: FederationSettings,
        topics: Arc<dyn InterestTaxonomy>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                audit,
                vault,
                clock,
                random,
                settings,
                topics,
                federation_key: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The federation's settings.
    pub fn settings(&self) -> &FederationSettings {
        &self.inner.settings
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

    /// Interests as ordinary topics of the taxonomy: each is checked, and an
    /// unknown or special-category topic is refused (the error names neither).
    /// Only top-level topics, at most [`MAX_ISSUED_INTERESTS`], as a sorted
    /// set (the issuer's order and repeats carry nothing): with the shipped
    /// taxonomy's 23 ordinary top-level topics, 277 values in all, so the
    /// claim cannot be an issuer's tag (finding 6 of adv4).
    fn checked_interests(&self, interests: &[ClaimText]) -> Result<Interests, ServiceError> {
        for i in interests {
            match self.inner.topics.kind(i.as_str()) {
                TopicKind::Ordinary => {}
                TopicKind::Narrow => {
                    return Err(ServiceError::Invalid(
                        "`interests` are top-level topics of the taxonomy (GET /v1/taxonomy)",
                    ))
                }
                TopicKind::Sensitive => return Err(ServiceError::SensitiveTopic),
                TopicKind::Unknown => return Err(ServiceError::UnknownTopic),
            }
        }
        let mut set = interests.to_vec();
        set.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        set.dedup();
        if set.len() > MAX_ISSUED_INTERESTS {
            return Err(ServiceError::Invalid("`interests`: at most two topics"));
        }
        Ok(Interests::new(set)?)
    }

    fn open_issuer(&self, row: &CredentialIssuerRow) -> Result<IssuerKeyPair, ServiceError> {
        let secret = self
            .inner
            .keys
            .open_node_secret(SEAL_LABEL, &row.sealed_secret)
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

    /// The federation's issuer key, created (and sealed) on first use. Its id
    /// is random, so it names no co-op.
    async fn federation_key(&self) -> Result<Arc<IssuerKeyPair>, ServiceError> {
        let mut cached = self.inner.federation_key.lock().await;
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let row = match self.inner.store.federation_issuer().await? {
            Some(row) => row,
            None => {
                let mut tag = [0u8; 8];
                self.inner.random.fill(&mut tag);
                let key_id = IssuerKeyId::new(&format!("federation-bbs-{}", hex::encode(tag)))?;
                let fresh = IssuerKeyPair::generate(bbs(), key_id, self.inner.random.as_ref())?;
                let sealed = self.inner.keys.seal_node_secret(
                    SEAL_LABEL,
                    &fresh.secret_key().to_bytes()[..],
                    self.inner.random.as_ref(),
                );
                let row = CredentialIssuerRow {
                    key_id: fresh.key_id().as_str().to_owned(),
                    public_key: fresh.public_key().as_bytes().to_vec(),
                    sealed_secret: sealed,
                    created_at: self.inner.clock.now(),
                };
                // Another node may have won the race: use the one in force.
                self.inner.store.ensure_federation_issuer(&row).await?
            }
        };
        let pair = Arc::new(self.open_issuer(&row)?);
        *cached = Some(pair.clone());
        Ok(pair)
    }
}
