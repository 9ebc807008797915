//! Audit events and the hash chain that links them.
//!
//! An event names who did what to which object, by id and category only; it never
//! carries a personal value. Entries are chained: each entry's hash covers the
//! previous entry's hash, so rewriting any entry breaks every hash after it.

use crate::{MemberId, OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Member(MemberId),
    Organisation(OrgId),
    /// The node's operator, at the command line.
    Operator,
    /// The node itself (start-up, key handling).
    Node,
    /// Someone not (yet) authenticated, e.g. a failed login.
    Anonymous,
}

/// What happened. The string form is stable: it is hashed into the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Action {
    #[serde(rename = "node.start")]
    NodeStart,
    #[serde(rename = "key.master.create")]
    MasterKeyCreate,
    #[serde(rename = "key.data.create")]
    DataKeyCreate,
    #[serde(rename = "key.data.destroy")]
    DataKeyDestroy,
    #[serde(rename = "member.signup")]
    MemberSignup,
    /// A sign-up was asked for: a message went to the address (whether or
    /// not it has an account; the account owner sees it in their log).
    #[serde(rename = "member.signup.request")]
    MemberSignupRequest,
    /// The member's data key was wrapped anew under keys they hold: moved
    /// off an older node's master key, a new passphrase, or a recovery.
    #[serde(rename = "key.data.rewrap")]
    DataKeyRewrap,
    /// The member logged in with their recovery code and set a new passphrase.
    #[serde(rename = "member.recover")]
    MemberRecover,
    /// The member was warned that the master-key wrap of their data key
    /// will be retired (they had not logged in since member-held keys).
    #[serde(rename = "key.data.legacy_warning")]
    DataKeyLegacyWarning,
    /// What a consent allows was sealed for the organisation, in the
    /// member's session (object: the consent).
    #[serde(rename = "consent.envelope.seal")]
    ConsentEnvelopeSeal,
    #[serde(rename = "member.login")]
    MemberLogin,
    #[serde(rename = "member.login.failed")]
    MemberLoginFailed,
    #[serde(rename = "member.logout")]
    MemberLogout,
    #[serde(rename = "member.read")]
    MemberRead,
    #[serde(rename = "member.erase")]
    MemberErase,
    /// Erasures of one period were released to organisations together
    /// (object: how many members).
    #[serde(rename = "member.erase.release")]
    ErasureRelease,
    /// Consent changes of one period were released to organisations
    /// together (object: how many consents).
    #[serde(rename = "consent.release")]
    ConsentRelease,
    /// An organisation confirmed an erasure request (object: its id).
    #[serde(rename = "member.erase.confirm")]
    ErasureConfirm,
    /// A corrected record made rectification notices to the organisations
    /// that received its category (object: how many).
    #[serde(rename = "vault.record.rectify")]
    RectificationNotify,
    /// Rectification notices of one period were released to organisations
    /// together (object: how many notices).
    #[serde(rename = "vault.record.rectify.release")]
    RectificationRelease,
    /// An organisation confirmed a rectification notice (object: its id).
    #[serde(rename = "vault.record.rectify.confirm")]
    RectificationConfirm,
    #[serde(rename = "vault.record.create")]
    RecordCreate,
    #[serde(rename = "vault.record.read")]
    RecordRead,
    #[serde(rename = "vault.record.list")]
    RecordList,
    #[serde(rename = "vault.record.update")]
    RecordUpdate,
    #[serde(rename = "vault.record.delete")]
    RecordDelete,
    #[serde(rename = "audit.read")]
    AuditRead,
    #[serde(rename = "org.create")]
    OrgCreate,
    #[serde(rename = "org.delete")]
    OrgDelete,
    #[serde(rename = "org.key.create")]
    OrgKeyCreate,
    /// An organisation registered (or replaced) its erasure webhook.
    #[serde(rename = "org.webhook.set")]
    OrgWebhookSet,
    #[serde(rename = "org.webhook.delete")]
    OrgWebhookDelete,
    #[serde(rename = "access.denied")]
    AccessDenied,
    #[serde(rename = "consent.request.create")]
    ConsentRequestCreate,
    #[serde(rename = "consent.grant")]
    ConsentGrant,
    #[serde(rename = "consent.refuse")]
    ConsentRefuse,
    #[serde(rename = "consent.withdraw")]
    ConsentWithdraw,
    #[serde(rename = "consent.gpc")]
    ConsentGpc,
    /// A policy decision on an organisation's access to member data.
    #[serde(rename = "consent.decision")]
    ConsentDecision,
    #[serde(rename = "consent.read")]
    ConsentRead,
    #[serde(rename = "offer.publish")]
    OfferPublish,
    #[serde(rename = "offer.endorse")]
    OfferEndorse,
    #[serde(rename = "offer.withdraw")]
    OfferWithdraw,
    /// An organisation read an offer's aggregate counts.
    #[serde(rename = "offer.stats.read")]
    OfferStatsRead,
    /// A member's vault matched the catalogue for them (no offer ids logged).
    #[serde(rename = "offer.match")]
    OfferMatch,
    /// A member answered an offer: accepted, dismissed, not relevant.
    #[serde(rename = "offer.answer")]
    OfferAnswer,
    #[serde(rename = "interest.suggestion.answer")]
    InterestSuggestionAnswer,
    /// A transcryptor served (or refused) a transcription request.
    #[serde(rename = "trust.transcrypt")]
    TrustTranscrypt,
    /// A transcryptor handed out a key share for a domain.
    #[serde(rename = "trust.key_share")]
    TrustKeyShare,
    /// A member's polymorphic pseudonym was created.
    #[serde(rename = "trust.enrol")]
    TrustEnrol,
    /// A co-op submitted pseudonymised receipts to the trust.
    #[serde(rename = "trust.receipts.submit")]
    TrustReceiptsSubmit,
    /// A question to the trust, with the ε it spent (or why it was refused).
    #[serde(rename = "trust.query")]
    TrustQuery,
    /// A member gave or withdrew consent to share receipts between co-ops.
    #[serde(rename = "trust.sharing")]
    TrustSharing,
    /// A partner co-op read receipts shared with it by consent.
    #[serde(rename = "trust.cross_sell")]
    TrustCrossSell,
    /// Loyalty points earned or redeemed.
    #[serde(rename = "trust.loyalty")]
    TrustLoyalty,
    /// An erased member's receipts and points were removed from the trust.
    #[serde(rename = "trust.erase")]
    TrustErase,
    /// An organisation created a one-time credential code (or its issuer key).
    #[serde(rename = "credential.code")]
    CredentialCode,
    /// A member redeemed a code: a credential was issued into their vault.
    #[serde(rename = "credential.issue")]
    CredentialIssue,
    /// An organisation revoked a credential's status index.
    #[serde(rename = "credential.revoke")]
    CredentialRevoke,
    /// A verifier created a challenge.
    #[serde(rename = "credential.challenge")]
    CredentialChallenge,
    /// A member presented a credential to a verifier.
    #[serde(rename = "credential.present")]
    CredentialPresent,
    /// A verifier checked a presentation.
    #[serde(rename = "credential.verify")]
    CredentialVerify,
    /// A differentially private figure was released: its pools, ε and
    /// mechanism (ε 0 when a stream charged at its start covers it).
    #[serde(rename = "privacy.release")]
    PrivacyRelease,
    /// A member opted out of all direct marketing (object: how: `web`,
    /// `api`, `paper`), or back in (`rights.marketing.opt_in`).
    #[serde(rename = "rights.marketing.opt_out")]
    MarketingOptOut,
    #[serde(rename = "rights.marketing.opt_in")]
    MarketingOptIn,
    /// A member's paper opt-out code was made (replacing any earlier one).
    #[serde(rename = "rights.optout_code.issue")]
    OptOutCodeIssue,
    /// A paper opt-out code was typed (at the public page or a shop's desk);
    /// denied when it named no member.
    #[serde(rename = "rights.optout_code.use")]
    OptOutCodeUse,
    /// Everything the node holds about a member was exported, or imported
    /// from another node's signed export.
    #[serde(rename = "rights.export")]
    MemberExport,
    #[serde(rename = "rights.import")]
    MemberImport,
    /// A member published an intent (never its pseudonym: the log names the
    /// member, so it must not name the intent).
    #[serde(rename = "intent.publish")]
    IntentPublish,
    /// An organisation answered an intent (by the intent's pseudonym).
    #[serde(rename = "intent.answer")]
    IntentAnswer,
    /// A member accepted an answer (the consent it made is logged apart).
    #[serde(rename = "intent.accept")]
    IntentAccept,
    /// A member withdrew an intent.
    #[serde(rename = "intent.withdraw")]
    IntentWithdraw,
    /// A member reported an answer to the operator.
    #[serde(rename = "intent.report")]
    IntentReport,
    /// Intents and answers past their deadline were deleted.
    #[serde(rename = "intent.expire")]
    IntentExpire,
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

/// One auditable event, before it is placed in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub actor: Actor,
    pub action: Action,
    /// The member whose data or account this touches, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub subject: Option<MemberId>,
    /// The object touched, as an opaque id (record id, key id, org id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// For decisions on member data: the DPV purpose, category and processing
    /// ids (vocabulary terms, never values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<String>,
    pub outcome: Outcome,
    /// How many events of this kind the entry stands for, when it stands for
    /// more than one moment (failed logins: per account per minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: Action) -> Self {
        Self {
            actor,
            action,
            subject: None,
            object: None,
            purpose: None,
            category: None,
            processing: None,
            outcome: Outcome::Ok,
            count: None,
        }
    }
    /// The DPV terms a decision was about.
    pub fn terms(mut self, purpose: &str, category: &str, processing: &str) -> Self {
        self.purpose = Some(purpose.to_owned());
        self.category = Some(category.to_owned());
        self.processing = Some(processing.to_owned());
        self
    }
    pub fn subject(mut self, m: MemberId) -> Self {
        self.subject = Some(m);
        self
    }
    pub fn object(mut self, o: impl ToString) -> Self {
        self.object = Some(o.to_string());
        self
    }
    /// How many events the entry stands for.
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
    pub fn outcome(mut self, o: Outcome) -> Self {
        self.outcome = o;
        self
    }
    /// The event with every member it names (its subject, a member actor)
    /// renamed by `name`: how the log stores it (issue 13: an audit
    /// subject, never a member id).
    pub fn renamed(&self, name: impl Fn(MemberId) -> MemberId) -> Self {
        let mut e = self.clone();
        e.subject = e.subject.map(&name);
        if let Actor::Member(m) = e.actor {
            e.actor = Actor::Member(name(m));
        }
        e
    }
    /// The members the event names (subject, member actor).
    pub fn members(&self) -> impl Iterator<Item = MemberId> {
        let actor = match self.actor {
            Actor::Member(m) => Some(m),
            _ => None,
        };
        self.subject.into_iter().chain(actor)
    }
    /// The canonical bytes that are hashed and stored.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A SHA-256 digest in the chain.
pub type ChainHash = [u8; 32];

/// The hash that precedes entry 1.
pub const GENESIS: ChainHash = [0u8; 32];

/// The chain hash of entry `seq`: SHA-256 over a domain tag, the format version,
/// the sequence number, the time, the previous hash and the event bytes.
pub fn chain_hash(seq: u64, at: Timestamp, prev: &ChainHash, event_json: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(b"me2b/audit/v1\0");
    h.update(seq.to_be_bytes());
    h.update(at.unix_millis().to_be_bytes());
    h.update(prev);
    h.update((event_json.len() as u64).to_be_bytes());
    h.update(event_json);
    h.finalize().into()
}

/// An entry as stored in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Timestamp,
    /// The canonical JSON of the [`AuditEvent`] (hashed, unless `stored`).
    /// Empty for an entry sealed at rest that the reader could not open
    /// (a store without the node's metadata keys).
    pub event_json: Vec<u8>,
    /// The bytes stored and hashed, where they are not `event_json`: the
    /// event sealed at rest (issue 13), or an older entry whose object a
    /// member's view opened. `None`: `event_json` itself.
    pub stored: Option<Vec<u8>>,
    pub prev_hash: ChainHash,
    pub hash: ChainHash,
}

impl AuditEntry {
    /// Places `event` after `prev` (None: the log is empty).
    pub fn link(prev: Option<(u64, ChainHash)>, at: Timestamp, event: &AuditEvent) -> Self {
        let (seq, prev_hash) = match prev {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS),
        };
        let event_json = event.canonical_json();
        let hash = chain_hash(seq, at, &prev_hash, &event_json);
        Self {
            seq,
            at,
            event_json,
            stored: None,
            prev_hash,
            hash,
        }
    }

    /// The entry stored as `stored` (its event sealed at rest): the chain
    /// hash is recomputed over those bytes.
    pub fn stored_as(mut self, stored: Vec<u8>) -> Self {
        self.stored = Some(stored);
        self.hash = self.recompute();
        self
    }

    /// The bytes the chain hash covers: as stored.
    pub fn hashed_bytes(&self) -> &[u8] {
        self.stored.as_deref().unwrap_or(&self.event_json)
    }

    pub fn event(&self) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_slice(&self.event_json)
    }

    /// Recomputes this entry's hash from its content.
    pub fn recompute(&self) -> ChainHash {
        chain_hash(self.seq, self.at, &self.prev_hash, self.hashed_bytes())
    }
}

/// A signed statement "the log's entry `seq` has hash `head`", made by the node key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub head: ChainHash,
    pub at: Timestamp,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The bytes the node signs.
    pub fn signed_message(seq: u64, head: &ChainHash, at: Timestamp) -> Vec<u8> {
        let mut m = b"me2b/audit-checkpoint/v1\0".to_vec();
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(head);
        m.extend_from_slice(&at.unix_millis().to_be_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::tests::CountingRandom;

    #[test]
    fn chain_links_and_detects_changes() {
        let rng = CountingRandom::default();
        let m = MemberId::generate(&rng);
        let e1 = AuditEntry::link(
            None,
            Timestamp::from_unix_millis(1),
            &AuditEvent::new(Actor::Member(m), Action::MemberSignup).subject(m),
        );
        assert_eq!(e1.seq, 1);
        assert_eq!(e1.prev_hash, GENESIS);
        let e2 = AuditEntry::link(
            Some((e1.seq, e1.hash)),
            Timestamp::from_unix_millis(2),
            &AuditEvent::new(Actor::Member(m), Action::RecordRead).object("r1"),
        );
        assert_eq!(e2.seq, 2);
        assert_eq!(e2.recompute(), e2.hash);
        let mut forged = e2.clone();
        forged.event_json = AuditEvent::new(Actor::Operator, Action::RecordRead).canonical_json();
        assert_ne!(forged.recompute(), forged.hash);
        assert_eq!(e2.event().unwrap().action, Action::RecordRead);
    }

    #[test]
    fn event_json_is_stable() {
        let e = AuditEvent::new(Actor::Operator, Action::OrgCreate).object("x");
        assert_eq!(
            String::from_utf8(e.canonical_json()).unwrap(),
            r#"{"actor":{"kind":"operator"},"action":"org.create","object":"x","outcome":"ok"}"#
        );
    }
}
