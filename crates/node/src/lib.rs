//! A me2b node: the master key, the store, the audit log and the capability
//! services, opened in the right order and checked against each other. The
//! server and the CLI both start from [`Node::open`].
#![forbid(unsafe_code)]

pub mod compaction;
pub mod consent_release;
pub mod erasure;
pub mod outbox;
pub mod portability;
pub mod webhooks;

use me2b_audit::{AuditError, AuditLog};
use me2b_consent::{Consents, Vocabulary};
use me2b_crypto::{CryptoError, Keyring, MasterKey, PassphraseHasher, PassphraseParams};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{Clock, Random};
use me2b_dp::{Accountant, Noise, OpenDpNoise, PrivacyGovernance};
use me2b_offers::service::{Offers, OffersDeps};
use me2b_offers::{OfferGovernance, Taxonomy};
use me2b_orgs::Orgs;
use me2b_storage::{Backend, StorageError, Store};
use me2b_trust::link::{LocalLink, TranscryptorLink};
use me2b_trust::policy::Policy;
use me2b_trust::pseudonym::{Federation, Transcryptor, TranscryptorSecrets};
use me2b_trust::service::{Category, Trust, TrustDeps};
use me2b_vault::{Outbox, Vault, VaultError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the SQLite file in the data directory.
pub const SQLITE_FILE: &str = "me2b.sqlite3";
/// Name of the master key file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Meta key under which a database records the check value of its master key.
pub const META_KEY_CHECK: &str = "key_check";
const META_NODE_PUBLIC_KEY: &str = "node_public_key";
const META_TRUST_FEDERATION: &str = "trust_federation";
const META_TRUST_SECRETS: &str = "trust_transcryptor_secrets";
/// How often the sweeper and the opt-out worker run (`spawn_sweeper`).
pub const BACKGROUND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How often an erasure's unfinished log checkpoint is retried.
const SCRUB_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Transcryptors of the embedded (single-party) trust.
pub const EMBEDDED_TRANSCRYPTORS: usize = 3;

/// What a node needs to open.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite in the data directory.
    pub database_url: Option<String>,
    /// Default: `master.key` in the data directory.
    pub master_key_file: Option<PathBuf>,
    pub session_ttl_seconds: i64,
    pub passphrase: PassphraseParams,
    /// Most Argon2 computations at once (logins, sign-ups, any passphrase
    /// use): each holds the passphrase memory cost while it runs.
    pub passphrase_max_concurrent: usize,
    pub checkpoint_every: u64,
    /// A directory with `federation.json` and `links.json` (from `me2b trust
    /// init`): the trust then uses those transcryptor processes. Default: three
    /// transcryptors in this process (single-party).
    pub trust_dir: Option<PathBuf>,
    /// The governance file (privacy budgets, the trust, offers). Default:
    /// `governance.toml` in the data directory when present, else built-in
    /// defaults.
    pub governance: Option<PathBuf>,
    /// Where release noise comes from. Default: OpenDP. Tests and the attack
    /// harness pass a seeded copy of the same distribution.
    pub noise: Option<Arc<dyn Noise>>,
    /// The federation's credential settings (its name and validity period),
    /// the same for every co-op and every credential.
    pub credentials: me2b_credentials::service::FederationSettings,
    /// Where messages to members go (sign-up confirmations, warnings).
    /// Default: `smtp_url` if set, else `.eml` files in `DATA_DIR/outbox`.
    pub outbox: Option<Arc<dyn Outbox>>,
    /// An SMTP relay (lettre): `smtps://host:port`, `smtp://host:port?tls=required`,
    /// or `smtp://127.0.0.1:25` on this machine.
    pub smtp_url: Option<String>,
    /// The sender of messages to members.
    pub mail_from: String,
    /// Erasure requests pushed to organisations' webhooks (https only,
    /// retries, timeouts).
    pub webhooks: webhooks::WebhookSettings,
}

/// The governance file: `[privacy]` (the budget period, the minimum cohort,
/// the pools' budgets and allowances), `[trust]`, `[offers]`, `[erasure]` and
/// `[intents]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    pub privacy: PrivacyGovernance,
    pub trust: me2b_trust::service::Governance,
    pub offers: OfferGovernance,
    pub credentials: me2b_credentials::service::CredentialGovernance,
    pub erasure: erasure::ErasureGovernance,
    /// When organisations see consent changes (issue 12).
    pub consent_release: consent_release::ConsentReleaseGovernance,
    /// `[intents]`: when new intents reach organisations, in batches.
    pub intents: me2b_intents::BatchGovernance,
    /// The charter: what no organisation may ask members for (issue 15).
    pub charter: me2b_consent::Charter,
    /// Whose exports this node imports (issue 15).
    pub portability: portability::Portability,
}

/// Keys of the old `trust.toml`, which budgeted per asker.
const OLD_TRUST_KEYS: [&str; 4] = [
    "default_org_budget",
    "org_budgets",
    "research_budgets",
    "min_cohort",
];

impl Governance {
    /// Parses and checks a governance file's text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let g: Self = toml::from_str(text).map_err(|e| {
            let line = text.lines().find(|l| {
                OLD_TRUST_KEYS
                    .iter()
                    .any(|k| l.trim_start().starts_with(k))
            });
            match line {
                Some(_) => "this is a trust.toml of an earlier version: budgets now belong to data pools, not to askers. Move `min_cohort` under [privacy], set budgets under [privacy.pools.*], put the other keys under [trust] (README: Governance)".to_owned(),
                None => format!("not a valid governance file: {}", e.message()),
            }
        })?;
        g.privacy.check().map_err(|e| e.to_string())?;
        g.trust.check().map_err(|e| e.to_string())?;
        g.offers.check().map_err(|e| e.to_string())?;
        g.credential_tags()?;
        g.credentials.check()?;
        g.erasure.check()?;
        g.consent_release.check()?;
        g.intents.check()?;
        Ok(g)
    }

    /// The tiers and regions a credential may carry: `[credentials] tiers`
    /// and the trust's `[trust] areas`.
    pub fn credential_tags(&self) -> Result<me2b_credentials::tags::FederationTags, String> {
        me2b_credentials::tags::FederationTags::new(&self.credentials.tiers, &self.trust.areas)
            .and_then(|t| {
                t.with_member_since(
                    self.credentials.member_since_from,
                    self.credentials.member_since_step,
                )
            })
            .map_err(|_| {
                "[credentials] tiers must be 1 to 32 lowercase ASCII letters, digits and hyphens, [trust] areas 1 to 8 ASCII letters, digits and hyphens (credentials carry them), member_since_from 1900 to 2100 and member_since_step 1 to 50".to_owned()
            })
    }
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            master_key_file: None,
            session_ttl_seconds: 12 * 3600,
            passphrase: PassphraseParams::RECOMMENDED,
            passphrase_max_concurrent: me2b_crypto::default_max_concurrent(),
            checkpoint_every: 1000,
            trust_dir: None,
            governance: None,
            noise: None,
            credentials: me2b_credentials::service::FederationSettings::default(),
            outbox: None,
            smtp_url: None,
            mail_from: "me2b@localhost".into(),
            webhooks: webhooks::WebhookSettings::default(),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join(SQLITE_FILE).display()))
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(MASTER_KEY_FILE))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Consent(#[from] me2b_consent::ConsentError),
    #[error(transparent)]
    Offers(#[from] me2b_offers::OfferError),
    #[error(transparent)]
    Trust(#[from] me2b_trust::TrustError),
    #[error(transparent)]
    Privacy(#[from] me2b_dp::DpError),
    #[error("cannot use the trust configuration {path}: {message}")]
    TrustConfig { path: String, message: String },
    #[error("cannot use the governance file {path}: {message}")]
    Governance { path: String, message: String },
    #[error("the master key {path} does not belong to this database (it was initialised with another key); use the right key file (a node's is named by ME2B_MASTER_KEY_FILE)")]
    WrongMasterKey { path: String },
    #[error("the database was initialised with a master key, but {path} does not exist; restore the key file (a node's is named by ME2B_MASTER_KEY_FILE)")]
    MissingMasterKey { path: String },
    #[error("cannot set up the outbox: {0}")]
    Outbox(String),
    #[error("cannot set up the webhooks: {0}")]
    Webhooks(String),
}

/// An open node.
#[derive(Clone, Debug)]
pub struct Node {
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keyring>,
    pub audit: AuditLog,
    pub vault: Vault,
    pub orgs: Orgs,
    pub consents: Consents,
    pub offers: Offers,
    pub trust: Trust,
    /// The one privacy accountant (offers and the trust release through it).
    pub accountant: Accountant,
    pub governance: Arc<Governance>,
    pub credentials: me2b_credentials::service::Credentials,
    /// Members' anonymous requests for proposal.
    pub intents: me2b_intents::Intents,
    /// Organisations' webhooks for erasure requests.
    pub webhooks: webhooks::Webhooks,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    /// Where the data lives, fit to print (no password).
    pub database: String,
    pub backend: Backend,
    pub master_key_created: bool,
    /// Members whose data key is still wrapped under the master key (they
    /// have not logged in since the node moved to member-held keys).
    pub legacy_members: u64,
}

/// Creates `path` (and its parents) readable by the owner only.
pub fn create_private_dir(path: &Path) -> Result<(), NodeError> {
    let err = |source| NodeError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(err)
}

/// Opens the master key at `key_path` for the database in `store`, creating
/// both on first start: a database that was initialised with a key refuses a
/// missing or different one. Shared by the node and the transcryptor process.
/// Returns the keyring and whether the key was created now.
pub async fn open_keyring(
    store: &dyn Store,
    key_path: &Path,
    rng: &dyn Random,
) -> Result<(Arc<Keyring>, bool), NodeError> {
    let stored_check = store.meta(META_KEY_CHECK).await?;
    if stored_check.is_some() && !key_path.exists() {
        return Err(NodeError::MissingMasterKey {
            path: key_path.display().to_string(),
        });
    }
    let (master, created) = MasterKey::load_or_create(key_path, rng)?;
    let keys = Arc::new(Keyring::derive(&master));
    drop(master);
    match stored_check {
        Some(check) if !keys.matches_key_check(&check) => {
            return Err(NodeError::WrongMasterKey {
                path: key_path.display().to_string(),
            })
        }
        Some(_) => {}
        None => {
            store
                .put_meta_if_absent(META_KEY_CHECK, &keys.key_check())
                .await?;
            store
                .put_meta_if_absent(META_NODE_PUBLIC_KEY, &keys.verifying_key().to_bytes())
                .await?;
        }
    }
    Ok((keys, created))
}

impl Node {
    /// Opens (initialising on first start) the node described by `cfg`.
    pub async fn open(
        cfg: &NodeConfig,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Result<Self, NodeError> {
        create_private_dir(&cfg.data_dir)?;
        let url = cfg.database_url();
        let store = me2b_storage::open(&url).await?;

        let key_path = cfg.master_key_path();
        let (keys, created) = open_keyring(store.as_ref(), &key_path, rng.as_ref()).await?;
        // Member metadata at rest (issue 13): locators, sealed member ids and
        // audit subjects under the node's keys; an older node's rows move
        // to them before anything is served.
        store.set_metadata_keys(Arc::new(keys.metadata_keys(rng.clone())));
        let mut rekeyed = store.rekey_member_metadata().await?;
        // Rectification notices an older node kept in clear (attack 3a of
        // adv5): sealed, under the member's locator scoped to the co-op.
        rekeyed += store
            .rectification_rekey(&|m: me2b_domain::MemberId| {
                keys.trust_tag(
                    me2b_consent::service::LEGACY_MEMBER_TAG_DOMAIN,
                    m.as_bytes(),
                )
            })
            .await?;
        if rekeyed > 0 {
            tracing::info!(rows = rekeyed, "member metadata re-keyed (issue 13)");
            // The old rows' cells stay in the pages' free space until the
            // file is rewritten (adv8: the old shared tags carved from it).
            store.compact().await?;
            tracing::info!("database file rewritten after the re-keying");
        }

        // The latest signed head is kept in the data directory too: a log
        // whose tail was cut since is refused here, before anything is added.
        let audit = AuditLog::start_with_head_file(
            store.clone(),
            clock.clone(),
            keys.clone(),
            cfg.checkpoint_every,
            &cfg.data_dir.join(me2b_audit::HEAD_FILE),
        )
        .await?;
        let mut events = Vec::new();
        if created {
            events.push(
                AuditEvent::new(Actor::Node, Action::MasterKeyCreate)
                    .object(keys.verifying_key().key_id()),
            );
        }
        events.push(AuditEvent::new(Actor::Node, Action::NodeStart));
        audit.record_all(events).await?;

        let hasher = Arc::new(PassphraseHasher::with_max_concurrent(
            cfg.passphrase,
            cfg.passphrase_max_concurrent,
            rng.as_ref(),
        )?);
        let vault = Vault::new(
            store.clone(),
            keys.clone(),
            audit.clone(),
            hasher,
            clock.clone(),
            rng.clone(),
            cfg.session_ttl_seconds,
        );
        vault.start_failed_login_flusher();
        vault.set_outbox(match (&cfg.outbox, &cfg.smtp_url) {
            (Some(o), _) => o.clone(),
            (None, Some(url)) => Arc::new(
                outbox::SmtpOutbox::new(url, cfg.mail_from.clone()).map_err(NodeError::Outbox)?,
            ),
            (None, None) => Arc::new(
                outbox::FileOutbox::new(
                    cfg.data_dir.join(outbox::OUTBOX_DIR),
                    cfg.mail_from.clone(),
                    rng.clone(),
                )
                .map_err(NodeError::Outbox)?,
            ),
        });
        let orgs = Orgs::new(store.clone(), audit.clone(), clock.clone(), rng.clone());
        let taxonomy = Arc::new(Taxonomy::shipped()?);
        // An interest names a topic of this taxonomy (the vault knows none).
        vault.set_content_check(Arc::new(TaxonomyTopics(taxonomy.clone())));
        // Interests in sensitive topics are disclosed only under their special
        // category, never as ordinary interests.
        let sensitive_topics = taxonomy
            .topics()
            .iter()
            .filter_map(|t| t.sensitive.clone().map(|c| (t.slug.clone(), c)))
            .collect();
        let governance = Arc::new(load_governance(cfg)?);
        let consents = Consents::new(
            store.clone(),
            keys.clone(),
            audit.clone(),
            vault.clone(),
            Arc::new(Vocabulary::shipped()?),
            clock.clone(),
            rng.clone(),
        )
        .with_sensitive_topics(sensitive_topics)
        .with_charter(governance.charter.clone());
        // What runs in a member's session: the envelopes of their consents.
        vault.set_session_hook(Arc::new(consents.session_hook()));
        // Who is told to erase a member's data when they leave.
        vault.set_recipient_register(Arc::new(consents.recipient_register()));
        let governance = Arc::new(load_governance(cfg)?);
        vault.set_erasure_schedule(governance.erasure.schedule());
        consents.set_release_schedule(governance.consent_release.schedule());
        let accountant = Accountant::new(
            store.clone(),
            audit.clone(),
            clock.clone(),
            governance.privacy.clone(),
        )?;
        let noise: Arc<dyn Noise> = cfg.noise.clone().unwrap_or_else(|| Arc::new(OpenDpNoise));
        let offers = Offers::new(OffersDeps {
            store: store.clone(),
            vault: vault.clone(),
            consents: consents.clone(),
            audit: audit.clone(),
            taxonomy: taxonomy.clone(),
            clock: clock.clone(),
            rng: rng.clone(),
            noise: noise.clone(),
            governance: governance.offers.clone(),
            accountant: accountant.clone(),
        });
        offers.start_count_flusher();
        let trust = open_trust(
            cfg,
            TrustParts {
                store: &store,
                keys: &keys,
                audit: &audit,
                clock: &clock,
                rng: &rng,
                taxonomy: &taxonomy,
                governance: &governance,
                accountant: &accountant,
                noise: &noise,
                consents: &consents,
            },
        )
        .await?;
        // An erased member is forgotten by the trust too; erasures a crash (or
        // an unreachable transcryptor) interrupted are finished now.
        vault.set_erasure_hook(Arc::new(TrustErasure(trust.clone())));
        let resumed = vault.resume_erasures().await?;
        if resumed > 0 {
            tracing::warn!(resumed, "finished erasures that were interrupted");
        }
        if trust.single_party() {
            tracing::warn!(
                transcryptors = trust.transcryptors(),
                "the data trust is single-party: every transcryptor runs in this process, so one operator holds every secret; run `me2b transcryptor` processes for a distributed trust"
            );
        }
        let mut federation = cfg.credentials.clone();
        federation.min_shared = governance.credentials.min_shared;
        federation.count_after_days = governance.credentials.count_after_days;
        federation.tags =
            governance
                .credential_tags()
                .map_err(|message| NodeError::Governance {
                    path: "the governance".into(),
                    message,
                })?;
        let intents = me2b_intents::Intents::new(me2b_intents::IntentsDeps {
            store: store.clone(),
            keys: keys.clone(),
            vault: vault.clone(),
            consents: consents.clone(),
            audit: audit.clone(),
            taxonomy: taxonomy.clone(),
            areas: governance.trust.areas.clone(),
            clock: clock.clone(),
            rng: rng.clone(),
            noise: noise.clone(),
            accountant: accountant.clone(),
            limits: me2b_intents::Limits {
                batch: governance.intents,
                ..me2b_intents::Limits::default()
            },
        });
        intents.start_purger();
        let credentials = me2b_credentials::service::Credentials::new(
            store.clone(),
            keys.clone(),
            audit.clone(),
            vault.clone(),
            clock.clone(),
            rng.clone(),
            federation,
            Arc::new(TaxonomyTopics(taxonomy)),
        );
        let legacy_members = vault.legacy_member_count().await?;
        let webhooks = webhooks::Webhooks::new(
            store.clone(),
            consents.clone(),
            audit.clone(),
            clock.clone(),
            rng.clone(),
            cfg.webhooks.clone(),
        )
        .map_err(NodeError::Webhooks)?;
        Ok(Self {
            webhooks,
            legacy_members,
            trust,
            intents,
            accountant,
            governance,
            credentials,
            offers,
            consents,
            backend: store.backend(),
            store,
            keys,
            audit,
            vault,
            orgs,
            clock,
            rng,
            database: me2b_storage::redact_url(&url),
            master_key_created: created,
        })
    }

    /// The privacy budgets of the pools a member is in, for their
    /// transparency view: the offers' audience (everyone who opens offers),
    /// the trust's pools that hold their receipts, and the intents' pool if
    /// they published lately. When the trust cannot
    /// be asked now (a transcryptor is down), its pools are left out and the
    /// view says so.
    pub async fn privacy_budget_view(
        &self,
        member: me2b_domain::MemberId,
    ) -> Result<me2b_dp::transparency::BudgetView, me2b_dp::DpError> {
        let mut pools = vec![me2b_dp::Pool::OffersAudience];
        let note = match self.trust.member_pools(member).await {
            Ok(p) => {
                pools.extend(p);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the trust's pools of a member could not be listed");
                Some("the data trust could not be asked just now, so its pools are not listed; try again later".to_owned())
            }
        };
        match self.intents.member_pools(member).await {
            Ok(p) => pools.extend(p),
            Err(e) => {
                tracing::warn!(error = %e, "the intents' pool of a member could not be looked up")
            }
        }
        self.accountant.budget_view(&pools, note).await
    }

    /// Every minute: destroys the envelopes of consents that expired (data
    /// access never serves them), sign-ups never confirmed, and expired
    /// sessions (with their wraps of members' keys); releases erasures at a
    /// period boundary if no request did, and posts the erasure requests
    /// due to organisations' webhooks (on a task of its own, so a slow
    /// receiver never holds up the sweep). Abort at shutdown.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        self.spawn_sweeper_every(BACKGROUND_INTERVAL)
    }

    /// [`Self::spawn_sweeper`], every `interval` (tests pass a short one).
    pub fn spawn_sweeper_every(
        &self,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let vault = self.vault.clone();
        let consents = self.consents.clone();
        let webhooks = self.webhooks.clone();
        // An erasure's log checkpoint a reader kept from finishing is
        // retried every few seconds (it does not wait on the reader, and
        // costs an atomic load when nothing is pending), so a copy of the
        // files taken soon after the reader lets go no longer holds the
        // account (adv7, H: rebuilt from copies taken up to a minute after).
        let scrub_every = interval.min(SCRUB_RETRY_INTERVAL);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(scrub_every);
            let mut last_sweep: Option<tokio::time::Instant> = None;
            loop {
                let at = tick.tick().await;
                store.finish_scrub().await;
                if last_sweep.is_some_and(|l| at.duration_since(l) < interval) {
                    continue;
                }
                last_sweep = Some(at);
                // The log's commits in order last a minute at most (adv9).
                store.trim_log().await;
                if let Err(e) = vault.release_erasures_due().await {
                    tracing::warn!(error = %e, "erasures due could not be released");
                }
                if let Err(e) = consents.release_due().await {
                    tracing::warn!(error = %e, "consent changes due could not be released");
                }
                let w = webhooks.clone();
                tokio::spawn(async move {
                    if let Err(e) = w.deliver_due().await {
                        tracing::warn!(error = %e, "erasure webhooks could not be delivered");
                    }
                });
                let now = clock.now();
                let r = async {
                    let e = store.purge_expired_envelopes(now).await?;
                    let u = store.purge_sign_ups(now).await?;
                    let s = store.delete_expired_sessions(now).await?;
                    Ok::<_, StorageError>((e, u, s))
                }
                .await;
                match r {
                    Ok((e, u, s)) if e + u + s > 0 => tracing::debug!(
                        envelopes = e,
                        sign_ups = u,
                        sessions = s,
                        "expired keys destroyed"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "expired envelopes and sessions could not be swept")
                    }
                }
            }
        })
    }

    /// The paper opt-out worker (finding 5 of adv4): a code typed at a desk
    /// or at the public page only queues a job, and this task does the
    /// withdrawals, at start (jobs a stopped or killed node left), when a
    /// code queues one, and every minute (jobs whose lease ran out). Abort
    /// at shutdown: a job cut short is finished by a later pass.
    pub fn spawn_optout_worker(&self) -> tokio::task::JoinHandle<()> {
        self.spawn_optout_worker_every(BACKGROUND_INTERVAL)
    }

    /// [`Self::spawn_optout_worker`], every `interval` (tests pass a short one).
    pub fn spawn_optout_worker_every(
        &self,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let consents = self.consents.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                match consents.run_optout_jobs().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(jobs = n, "paper opt-outs done"),
                    Err(e) => tracing::warn!(error = %e, "paper opt-outs could not be done"),
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    () = consents.optout_queued() => {}
                }
            }
        })
    }

    /// Signs a final audit checkpoint and closes the database.
    pub async fn shutdown(&self) {
        if let Err(e) = self.vault.flush_failed_logins(true).await {
            tracing::error!(error = %e, "could not write the failed-login counts at shutdown");
        }
        if let Err(e) = self.offers.flush_counts().await {
            tracing::error!(error = %e, "could not write the pending offer counts at shutdown");
        }
        if let Err(e) = self.audit.checkpoint_now().await {
            tracing::error!(error = %e, "could not sign the audit checkpoint at shutdown");
        }
        self.store.close().await;
    }
}

/// Checks the database file in the background (SQLite `PRAGMA quick_check`,
/// on a connection of its own) and logs the outcome: the check reads the whole
/// file, so it never stands between a start and serving. Abort the handle at
/// shutdown; the log carries no stored value, only the number of problems.
pub fn spawn_integrity_check(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        tracing::info!("database integrity check started in the background");
        match store
            .check_integrity(me2b_storage::IntegrityLevel::Quick)
            .await
        {
            Ok(()) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "database integrity check passed"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "database integrity check FAILED: stop the node, run `me2b check`, and restore the database from a backup"
            ),
        }
    })
}

/// The shipped interest taxonomy: a vault's interests name its topics, and the
/// credential service sees a topic as sensitive when it or an ancestor is a
/// special category (GDPR Art. 9).
#[derive(Debug)]
struct TaxonomyTopics(Arc<Taxonomy>);

impl me2b_credentials::service::InterestTaxonomy for TaxonomyTopics {
    fn kind(&self, slug: &str) -> me2b_credentials::service::TopicKind {
        use me2b_credentials::service::TopicKind;
        match self.0.by_slug(slug) {
            None => TopicKind::Unknown,
            Some(t) if self.0.is_sensitive(t) => TopicKind::Sensitive,
            Some(t) if self.0.get(t).is_some_and(|t| t.parent.is_some()) => TopicKind::Narrow,
            Some(_) => TopicKind::Ordinary,
        }
    }
}

impl me2b_vault::ContentCheck for TaxonomyTopics {
    fn check(&self, content: &me2b_domain::record::RecordContent) -> Result<(), VaultError> {
        use me2b_domain::record::RecordContent;
        match content {
            RecordContent::Interest(i) if self.0.by_slug(i.topic.as_str()).is_none() => {
                Err(VaultError::InvalidContent {
                    field: "topic",
                    reason: "not a topic of the taxonomy (GET /v1/taxonomy)",
                })
            }
            _ => Ok(()),
        }
    }
}

/// Erasure reaches the data trust: the member's pooled receipts and points go.
#[derive(Debug)]
struct TrustErasure(Trust);

#[async_trait::async_trait]
impl me2b_vault::ErasureHook for TrustErasure {
    async fn forget(&self, member: me2b_domain::MemberId) -> Result<(), String> {
        self.0
            .forget(member)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn config_err(path: &Path, message: impl ToString) -> NodeError {
    NodeError::TrustConfig {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads the governance file: `--governance`, else `governance.toml` in the
/// data directory when present, else the defaults. An old `trust.toml` in the
/// data directory is refused with what to change, rather than ignored.
fn load_governance(cfg: &NodeConfig) -> Result<Governance, NodeError> {
    let err = |path: &Path, message: String| NodeError::Governance {
        path: path.display().to_string(),
        message,
    };
    let path = cfg
        .governance
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("governance.toml"));
    match std::fs::read_to_string(&path) {
        Ok(s) => Governance::from_toml(&s).map_err(|m| err(&path, m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && cfg.governance.is_none() => {
            let old = cfg.data_dir.join("trust.toml");
            if old.exists() {
                return Err(err(
                    &old,
                    "trust.toml was replaced by governance.toml: budgets now belong to data pools, not to askers. Move `min_cohort` under [privacy], set budgets under [privacy.pools.*], put the other keys under [trust], and save it as governance.toml (README: Governance)".into(),
                ));
            }
            Ok(Governance::default())
        }
        Err(e) => Err(err(&path, e.to_string())),
    }
}

/// What the trust is opened with.
struct TrustParts<'a> {
    store: &'a Arc<dyn Store>,
    keys: &'a Arc<Keyring>,
    audit: &'a AuditLog,
    clock: &'a Arc<dyn Clock>,
    rng: &'a Arc<dyn Random>,
    taxonomy: &'a Taxonomy,
    governance: &'a Governance,
    accountant: &'a Accountant,
    noise: &'a Arc<dyn Noise>,
    consents: &'a Consents,
}

/// The trust: its federation, its transcryptors (in this process, or the
/// processes named in `trust_dir`) and its governance.
async fn open_trust(cfg: &NodeConfig, p: TrustParts<'_>) -> Result<Trust, NodeError> {
    let TrustParts {
        store,
        keys,
        audit,
        clock,
        rng,
        taxonomy,
        governance,
        accountant,
        noise,
        consents,
    } = p;
    let categories = taxonomy
        .topics()
        .iter()
        .map(|t| Category {
            id: i64::from(t.id),
            slug: t.slug.clone(),
            sensitive: t.sensitive.is_some(),
        })
        .collect();
    let (federation, links, single_party): (Federation, Vec<Arc<dyn TranscryptorLink>>, bool) =
        match &cfg.trust_dir {
            Some(dir) => {
                let fpath = dir.join("federation.json");
                let lpath = dir.join("links.json");
                let f = std::fs::read_to_string(&fpath).map_err(|e| config_err(&fpath, e))?;
                let federation = Federation::from_json(&f).map_err(|e| config_err(&fpath, e))?;
                let l = std::fs::read_to_string(&lpath).map_err(|e| config_err(&lpath, e))?;
                let links = me2b_trust::remote::LinksFile::from_json(&l)
                    .and_then(|f| f.links())
                    .map_err(|e| config_err(&lpath, e))?
                    .into_iter()
                    .map(|l| Arc::new(l) as Arc<dyn TranscryptorLink>)
                    .collect();
                (federation, links, false)
            }
            None => {
                let (federation, secrets) = embedded_federation(store, keys, rng).await?;
                let policy = Policy::standard(Some(keys.verifying_key()));
                let links = secrets
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        Arc::new(LocalLink::new(
                            format!("in-process-{}", i + 1),
                            Transcryptor::with_policy(s, policy.clone()),
                            clock.clone(),
                            rng.clone(),
                            Some(audit.clone()),
                        )) as Arc<dyn TranscryptorLink>
                    })
                    .collect();
                (federation, links, true)
            }
        };
    Ok(Trust::new(TrustDeps {
        store: store.clone(),
        audit: audit.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        random: rng.clone(),
        federation,
        links,
        single_party,
        governance: governance.trust.clone(),
        accountant: accountant.clone(),
        noise: noise.clone(),
        categories,
        consents: consents.clone(),
    }))
}

/// The embedded trust's federation and its transcryptors' secrets, created at
/// first start and kept in the node's meta table (secrets sealed under the
/// master key).
async fn embedded_federation(
    store: &Arc<dyn Store>,
    keys: &Keyring,
    rng: &Arc<dyn Random>,
) -> Result<(Federation, Vec<TranscryptorSecrets>), NodeError> {
    if store.meta(META_TRUST_FEDERATION).await?.is_none() {
        let mut pep = me2b_trust::link::pep_rng(rng.as_ref());
        let (federation, secrets) = me2b_trust::pseudonym::setup(EMBEDDED_TRANSCRYPTORS, &mut pep);
        let list: zeroize::Zeroizing<Vec<String>> =
            zeroize::Zeroizing::new(secrets.iter().map(|s| s.to_json().to_string()).collect());
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&*list).unwrap_or_default());
        let sealed = keys.seal_node_secret(META_TRUST_SECRETS, &plain, rng.as_ref());
        // Secrets first: a federation without its secrets must never be stored.
        if store
            .put_meta_if_absent(META_TRUST_SECRETS, &sealed)
            .await?
        {
            store
                .put_meta_if_absent(META_TRUST_FEDERATION, federation.to_json().as_bytes())
                .await?;
        }
    }
    let corrupt = |what: &str| NodeError::TrustConfig {
        path: format!("meta:{what}"),
        message: "stored trust keys are unreadable".into(),
    };
    let fed = store
        .meta(META_TRUST_FEDERATION)
        .await?
        .ok_or_else(|| corrupt(META_TRUST_FEDERATION))?;
    let federation = Federation::from_json(&String::from_utf8_lossy(&fed))
        .map_err(|_| corrupt(META_TRUST_FEDERATION))?;
    let sealed = store
        .meta(META_TRUST_SECRETS)
        .await?
        .ok_or_else(|| corrupt(META_TRUST_SECRETS))?;
    let plain = keys
        .open_node_secret(META_TRUST_SECRETS, &sealed)
        .map_err(|_| corrupt(META_TRUST_SECRETS))?;
    let list: zeroize::Zeroizing<Vec<String>> = zeroize::Zeroizing::new(
        serde_json::from_slice(&plain).map_err(|_| corrupt(META_TRUST_SECRETS))?,
    );
    let secrets = list
        .iter()
        .map(|s| TranscryptorSecrets::from_json(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt(META_TRUST_SECRETS))?;
    Ok((federation, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_crypto::SeededRandom;
    use me2b_domain::SystemClock;

    fn cfg(dir: &Path) -> NodeConfig {
        let mut c = NodeConfig::new(dir);
        c.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
        c
    }

    #[derive(Debug)]
    struct Hook(std::sync::atomic::AtomicBool);

    #[async_trait::async_trait]
    impl me2b_vault::ErasureHook for Hook {
        async fn forget(&self, _: me2b_domain::MemberId) -> Result<(), String> {
            if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                Err("transcryptor-2 cannot be reached".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn an_erasure_the_trust_cannot_take_stays_pending_and_finishes_later() {
        use me2b_domain::member::{Email, Passphrase};
        let dir = tempfile::tempdir().unwrap();
        let n = Node::open(
            &cfg(dir.path()),
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(1)),
        )
        .await
        .unwrap();
        let hasher = Arc::new(
            PassphraseHasher::new(
                PassphraseParams::INSECURE_FAST_FOR_TESTS,
                &SeededRandom::new(2),
            )
            .unwrap(),
        );
        let v = Vault::new(
            n.store.clone(),
            n.keys.clone(),
            n.audit.clone(),
            hasher,
            n.clock.clone(),
            n.rng.clone(),
            3600,
        );
        let down = Arc::new(Hook(std::sync::atomic::AtomicBool::new(true)));
        v.set_erasure_hook(down.clone());
        let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
        v.set_outbox(outbox.clone());
        let new = outbox
            .sign_up(
                &v,
                Email::parse("ana@example.org").unwrap(),
                Passphrase::parse("correct horse battery".into()).unwrap(),
            )
            .await
            .unwrap();
        let member = new.session.member;
        v.erase_member(Actor::Operator, member).await.unwrap();
        // The key is destroyed at once; the rows wait for the trust.
        let row = n.store.member(member).await.unwrap().unwrap();
        assert!(row.erasing && row.passphrase_wrap.is_none() && row.recovery_wrap.is_none());
        assert_eq!(
            n.store.members_pending_erasure().await.unwrap(),
            vec![member]
        );
        assert_eq!(v.resume_erasures().await.unwrap(), 0, "still unreachable");
        down.0.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(v.resume_erasures().await.unwrap(), 1);
        // Finished: what organisations observe waits for the next release.
        assert!(n.store.members_pending_erasure().await.unwrap().is_empty());
        let far = me2b_domain::Timestamp::from_unix_millis(i64::MAX);
        assert_eq!(n.store.erasure_pending_before(far).await.unwrap().0, 1);
        assert_eq!(n.store.erasure_release(far, far).await.unwrap(), 1);
        assert!(n.store.member(member).await.unwrap().is_none());
        n.shutdown().await;
    }

    #[test]
    fn credential_interests_follow_the_taxonomy() {
        use me2b_credentials::service::{InterestTaxonomy, TopicKind};
        let topics = TaxonomyTopics(Arc::new(Taxonomy::shipped().unwrap()));
        for (slug, kind) in [
            ("sports", TopicKind::Ordinary),
            ("fair-economy", TopicKind::Ordinary),
            ("cycling", TopicKind::Narrow),
            ("organic", TopicKind::Narrow),
            ("health", TopicKind::Sensitive),
            // Under /Health: sensitive by inheritance.
            ("pregnancy-and-maternity", TopicKind::Sensitive),
            ("diabetes", TopicKind::Sensitive),
            ("halal-food", TopicKind::Sensitive),
            ("babies-and-toddlers", TopicKind::Sensitive),
            ("not-a-topic", TopicKind::Unknown),
            ("Cycling", TopicKind::Unknown),
            ("", TopicKind::Unknown),
        ] {
            assert_eq!(topics.kind(slug), kind, "{slug}");
        }
    }

    /// Finding 6 of adv4: the interests a credential can disclose are a
    /// small federation-fixed set (top-level ordinary topics, a sorted set
    /// of at most two), not an issuer's choice among ~5×10^10 values.
    #[test]
    fn credential_interests_take_few_values() {
        use me2b_credentials::service::{InterestTaxonomy, TopicKind, MAX_ISSUED_INTERESTS};
        let taxonomy = Arc::new(Taxonomy::shipped().unwrap());
        let topics = TaxonomyTopics(taxonomy.clone());
        let n = taxonomy
            .topics()
            .iter()
            .filter(|t| topics.kind(&t.slug) == TopicKind::Ordinary)
            .count() as u64;
        assert!(n >= 10, "{n} top-level topics");
        // Sorted sets of 0..=MAX_ISSUED_INTERESTS of them.
        let (mut combos, mut c) = (0u64, 1u64);
        for k in 0..=MAX_ISSUED_INTERESTS as u64 {
            combos += c;
            c = c * (n - k) / (k + 1);
        }
        assert!(combos <= 1 << 10, "{combos} interest values for {n} topics");
    }

    #[tokio::test]
    async fn first_start_creates_key_and_later_starts_check_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let c = cfg(&data);
        let n = Node::open(&c, Arc::new(SystemClock), Arc::new(SeededRandom::new(1)))
            .await
            .unwrap();
        assert!(n.master_key_created);
        n.shutdown().await;
        let n = Node::open(&c, Arc::new(SystemClock), Arc::new(SeededRandom::new(2)))
            .await
            .unwrap();
        assert!(!n.master_key_created);
        n.shutdown().await;

        // Another key file: refused, loudly.
        let mut other = c.clone();
        other.master_key_file = Some(dir.path().join("other.key"));
        let err = Node::open(
            &other,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(3)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, NodeError::MissingMasterKey { .. }), "{err}");
        MasterKey::load_or_create(&dir.path().join("other.key"), &SeededRandom::new(4)).unwrap();
        let err = Node::open(
            &other,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(3)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, NodeError::WrongMasterKey { .. }), "{err}");
        assert!(err.to_string().contains("does not belong"));
    }
}
