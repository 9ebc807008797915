//! Sections 1 and 2: the node starts, the operator registers the co-ops,
//! names a research requester in the governance file and restarts the node.

use super::*;
use me2b_domain::Clock;
use std::sync::atomic::{AtomicI64, Ordering};

/// The wall clock, which the demo can move ahead to show what happens a week
/// later (scheduled releases of offer statistics).
#[derive(Debug, Default)]
pub(super) struct DemoClock {
    ahead_ms: AtomicI64,
}

impl DemoClock {
    pub(super) fn skip_days(&self, days: i64) {
        self.ahead_ms.fetch_add(days * 86_400_000, Ordering::SeqCst);
    }

    pub(super) fn skip_hours(&self, hours: i64) {
        self.ahead_ms.fetch_add(hours * 3_600_000, Ordering::SeqCst);
    }

    /// Moves to a minute past the next release of consent changes (a
    /// boundary where the batch is due, `[consent_release]`) and releases
    /// them: what co-ops see of consents changes only then, and data access
    /// answers in the window that opens there. Returns how many consents
    /// changed and the hours skipped.
    pub(super) async fn skip_to_consent_release(&self, node: &Node) -> anyhow::Result<(u64, i64)> {
        let period = node.consents.release_schedule().batch.period_seconds.max(1) * 1000;
        let mut skipped = 0;
        for _ in 0..16 {
            let now = self.now().unix_millis();
            let step = period - now.rem_euclid(period) + 60_000;
            self.ahead_ms.fetch_add(step, Ordering::SeqCst);
            skipped += step;
            let n = node.consents.release_due().await?;
            let (pending, _) = node.store.consent_changes_pending().await?;
            if n > 0 || pending == 0 {
                return Ok((n, skipped / 3_600_000));
            }
        }
        Ok((0, skipped / 3_600_000))
    }
}

impl Clock for DemoClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().unix_millis();
        Timestamp::from_unix_millis(now.saturating_add(self.ahead_ms.load(Ordering::SeqCst)))
    }
}

/// The demo's co-ops, each with its first API key.
pub(super) struct Coops {
    /// Zuiderzee Food Co-op: consent, offers.
    pub(super) food: (me2b_storage::OrgRow, String),
    /// Green Wheels (bikes): offers, consent.
    pub(super) green: (me2b_storage::OrgRow, String),
    /// Corner Co-op (grocer): offers.
    pub(super) corner: (me2b_storage::OrgRow, String),
    /// Fair Threads (second-hand): offers; the trust's research requester.
    pub(super) threads: (me2b_storage::OrgRow, String),
}

async fn register(
    node: &Node,
    name: &str,
    roles: Vec<Role>,
) -> anyhow::Result<(me2b_storage::OrgRow, String)> {
    let (row, key) = node
        .orgs
        .create(
            Label::try_from(name)?,
            OrgKind::Coop,
            Roles::try_from(roles)?,
        )
        .await?;
    Ok((row, key.secret.expose().to_owned()))
}

/// The governance file the demo's operator writes: the defaults, and Fair
/// Threads named as the one requester of the trust's research questions.
fn governance(research: me2b_domain::OrgId) -> String {
    format!(
        "# me2b governance: every key not written here has its default (README: Governance).\n\
         # Fair Threads may ask the trust's research questions, within 0.5 of the research pool per month.\n\
         [privacy.pools.trust-research]\n\
         epsilon_per_period = 0.5\n\
         lifetime = 6.0\n\
         allowances = {{ \"{research}\" = 0.5 }}\n"
    )
}

/// Opens the node, registers the co-ops, writes the governance file and
/// restarts the node so that it reads it.
pub(super) async fn start(
    dir: &Path,
    clock: Arc<DemoClock>,
    mailboxes: Arc<me2b_vault::MemoryOutbox>,
) -> anyhow::Result<(Node, NodeConfig, Coops)> {
    let mut cfg = NodeConfig::new(dir);
    cfg.passphrase = PassphraseParams::RECOMMENDED;
    // The demo plays the members' mail clients: messages to them (sign-up
    // confirmations) go to their mailboxes here, not to files in the data
    // directory for a relay.
    cfg.outbox = Some(mailboxes);
    // The demo moves its clock a week ahead; its sessions outlast that.
    cfg.session_ttl_seconds = 30 * 86_400;
    let node = Node::open(&cfg, clock.clone(), Arc::new(OsRandom)).await?;
    out!(
        "1. Node started on {} (embedded SQLite). A new 256-bit master key was written to",
        node.database
    );
    out!(
        "   {} (mode 0600); node signing key {}.",
        cfg.master_key_path().display(),
        node.keys.verifying_key().key_id()
    );
    let coops = Coops {
        food: register(
            &node,
            "Zuiderzee Food Co-op",
            vec![Role::Admin, Role::Consent, Role::Offers],
        )
        .await?,
        green: register(&node, "Green Wheels", vec![Role::Offers, Role::Consent]).await?,
        corner: register(&node, "Corner Co-op", vec![Role::Offers]).await?,
        threads: register(&node, "Fair Threads", vec![Role::Offers]).await?,
    };
    let (food, key) = &coops.food;
    out!(
        "\n2. The operator registered the co-op \"{}\" ({}),",
        food.name,
        food.id
    );
    out!(
        "   and {}, {} and {}, which publish offers and use the data trust later.",
        coops.green.0.name,
        coops.corner.0.name,
        coops.threads.0.name
    );
    out!(
        "   Each API key (e.g. {}…) was shown once; only its SHA-256 is stored.",
        key.get(..12).unwrap_or("")
    );
    let path = dir.join("governance.toml");
    std::fs::write(&path, governance(coops.threads.0.id))?;
    node.shutdown().await;
    let node = Node::open(&cfg, clock, Arc::new(OsRandom)).await?;
    out!(
        "   The operator names {} in {} as the one requester of the trust's research",
        coops.threads.0.name,
        path.display()
    );
    out!("   questions (every other setting keeps its default), and restarts the node, which reads it.");
    Ok((node, cfg, coops))
}
