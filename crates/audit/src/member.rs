//! A member's own view of the audit log, with no node-wide counter in it.
//!
//! The log's sequence numbers, exact times and chain hashes all move when
//! anyone acts: a member who saw them could count other members' entries
//! between two of their own (issue 12: a refusal was one entry more than
//! silence). The view shows instead:
//!
//! * each entry numbered per member (1, 2, 3 … over their own entries), its
//!   time to the minute, and what it says (actor, action, object, outcome);
//! * its **leaf**: SHA-256 over a domain tag and the entry's chain hash. The
//!   chain hash covers the entry's global number and exact time, and the
//!   previous entry's hash; the leaf is one-way, so the member learns none of
//!   them (with the chain hash itself, a member could test "nothing was
//!   written between my two entries");
//! * a **statement** the node signs with its published Ed25519 key, over the
//!   member id, the page's numbers, minutes and leaves, and the **anchor**:
//!   the same one-way hash (another domain tag) of the signed head that
//!   covers the page's last entry. That head is the one the batch writing
//!   the entry got, in the same transaction, so it exists as soon as the
//!   entry does and never changes: when coverage appears tells nothing about
//!   others either (a checkpoint, made every 1,000 entries, would: the
//!   moment it covers an entry is a node-wide counter).
//!
//! What each party can check: the member, alone, that the node signed this
//! view ([`verify_statement`]); an auditor with the log (and nobody needs
//! the member's cooperation for the rest), that every leaf is an entry of the
//! log about that member, in that order, covered by a validly signed head
//! whose anchor is the one signed ([`check_statement`]). A node that later
//! drops or rewrites the member's entries contradicts a statement the member
//! kept.

use crate::AuditError;
use me2b_crypto::NodeVerifyingKey;
use me2b_domain::audit::{AuditEntry, ChainHash, Checkpoint};
use me2b_domain::{MemberId, Timestamp};
use me2b_storage::Store;
use sha2::{Digest, Sha256};

/// The statement's format, in its signed message and in the API.
pub const STATEMENT_FORMAT: &str = "me2b/audit/member-view/v1";

const MS_PER_MINUTE: i64 = 60_000;

/// An entry's leaf: SHA-256("me2b/audit/member-leaf/v1\0" ‖ chain hash).
pub fn leaf(hash: &ChainHash) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"me2b/audit/member-leaf/v1\0");
    h.update(hash);
    h.finalize().into()
}

/// A signed head's anchor: SHA-256("me2b/audit/member-anchor/v1\0" ‖ head hash).
pub fn anchor(head: &ChainHash) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"me2b/audit/member-anchor/v1\0");
    h.update(head);
    h.finalize().into()
}

/// A time, to the minute (floored).
pub fn to_minute(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(
        t.unix_millis()
            .div_euclid(MS_PER_MINUTE)
            .saturating_mul(MS_PER_MINUTE),
    )
}

/// One entry of a member's view, before it is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// 1 for the member's first entry, and so on.
    pub number: u64,
    pub minute: Timestamp,
    pub leaf: [u8; 32],
    /// The stored entry (its `seq`, `at` and `hash` must not be shown).
    pub entry: AuditEntry,
}

/// What the node signs about one page of a member's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub member: MemberId,
    /// (number, minute, leaf) of each entry, in order.
    pub entries: Vec<(u64, Timestamp, [u8; 32])>,
    /// The anchor of the signed head covering the last entry.
    pub anchor: Option<[u8; 32]>,
    pub signature: Vec<u8>,
}

impl Statement {
    /// The bytes the node signs.
    pub fn message(&self) -> Vec<u8> {
        let mut m = format!("{STATEMENT_FORMAT}\0").into_bytes();
        m.extend_from_slice(self.member.as_bytes());
        m.extend_from_slice(&(self.entries.len() as u64).to_be_bytes());
        for (n, minute, leaf) in &self.entries {
            m.extend_from_slice(&n.to_be_bytes());
            m.extend_from_slice(&minute.unix_millis().to_be_bytes());
            m.extend_from_slice(leaf);
        }
        match &self.anchor {
            Some(a) => {
                m.push(1);
                m.extend_from_slice(a);
            }
            None => m.push(0),
        }
        m
    }
}

/// A page of a member's view, signed.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub entries: Vec<MemberEntry>,
    pub statement: Statement,
}

/// Reads a page of a member's view: their entries under any of `subjects`
/// (their member id first; a trust pseudonym of theirs may follow), numbered
/// from `skip + 1`, and signs its statement with `sign`.
pub async fn member_view(
    store: &dyn Store,
    sign: &(dyn Fn(&[u8]) -> Vec<u8> + Send + Sync),
    member: MemberId,
    subjects: &[MemberId],
    skip: u64,
    limit: u64,
) -> Result<MemberView, AuditError> {
    let raw = store.audit_entries_of(subjects, skip, limit).await?;
    let anchor = match raw.last() {
        Some(last) => store
            .audit_covering_head(last.seq)
            .await?
            .map(|h| anchor(&h.head)),
        None => None,
    };
    let entries: Vec<MemberEntry> = raw
        .into_iter()
        .enumerate()
        .map(|(i, e)| MemberEntry {
            number: skip + i as u64 + 1,
            minute: to_minute(e.at),
            leaf: leaf(&e.hash),
            entry: e,
        })
        .collect();
    let mut statement = Statement {
        member,
        entries: entries
            .iter()
            .map(|e| (e.number, e.minute, e.leaf))
            .collect(),
        anchor,
        signature: Vec::new(),
    };
    statement.signature = sign(&statement.message());
    Ok(MemberView { entries, statement })
}

/// The member's check: the node's published key signed this statement.
pub fn verify_statement(vk: &NodeVerifyingKey, s: &Statement) -> bool {
    vk.verify(&s.message(), &s.signature).is_ok()
}

/// Why an auditor's check of a statement against the log failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementProblem {
    /// The node's key did not sign it.
    BadSignature,
    /// No entry of the log has this leaf (the member's entry number).
    Missing(u64),
    /// The leaf's entry is not about the member (under `subjects`), or is
    /// not where the statement puts it (out of order, or another minute).
    Mismatch(u64),
    /// No signed head of the log has the anchor, or it does not cover the
    /// last entry, or its signature does not verify.
    Anchor,
}

/// An auditor's check against the log: the signature, then that every leaf
/// is an entry of the log about the member (under one of `subjects`), in
/// order, at the minute stated, and that the anchor is a signed head, valid
/// under `vk`, at or after the last one. Reads the whole log.
pub async fn check_statement(
    store: &dyn Store,
    vk: &NodeVerifyingKey,
    subjects: &[MemberId],
    s: &Statement,
) -> Result<Result<(), StatementProblem>, AuditError> {
    if !verify_statement(vk, s) {
        return Ok(Err(StatementProblem::BadSignature));
    }
    let mut wanted: std::collections::HashMap<[u8; 32], usize> = s
        .entries
        .iter()
        .enumerate()
        .map(|(i, (_, _, l))| (*l, i))
        .collect();
    let mut found: Vec<Option<AuditEntry>> = vec![None; s.entries.len()];
    let mut anchor_head: Option<Checkpoint> = None;
    let mut after = 0;
    loop {
        let page = store.audit_entries(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Some(i) = wanted.remove(&leaf(&e.hash)) {
                if let Some(slot) = found.get_mut(i) {
                    *slot = Some(e.clone());
                }
            }
        }
        if let Some(a) = s.anchor {
            if anchor_head.is_none() {
                let first = page.first().map_or(0, |e| e.seq);
                anchor_head = store
                    .audit_signed_heads(first.saturating_sub(1), after)
                    .await?
                    .into_iter()
                    .find(|h| anchor(&h.head) == a);
            }
        }
    }
    let mut prev_seq = 0;
    for (i, (number, minute, _)) in s.entries.iter().enumerate() {
        let Some(e) = found.get(i).and_then(Option::as_ref) else {
            return Ok(Err(StatementProblem::Missing(*number)));
        };
        let about = e
            .event()
            .ok()
            .and_then(|ev| ev.subject)
            .is_some_and(|m| subjects.contains(&m));
        if !about || e.seq <= prev_seq || to_minute(e.at) != *minute {
            return Ok(Err(StatementProblem::Mismatch(*number)));
        }
        prev_seq = e.seq;
    }
    if s.anchor.is_some() {
        let ok = anchor_head.is_some_and(|h| {
            h.seq >= prev_seq
                && vk
                    .verify(
                        &Checkpoint::signed_message(h.seq, &h.head, h.at),
                        &h.signature,
                    )
                    .is_ok()
        });
        if !ok {
            return Ok(Err(StatementProblem::Anchor));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_floor_and_leaves_hide_the_hash() {
        assert_eq!(
            to_minute(Timestamp::from_unix_millis(119_999)).unix_millis(),
            60_000
        );
        assert_eq!(
            to_minute(Timestamp::from_unix_millis(-1)).unix_millis(),
            -60_000
        );
        let h = [7u8; 32];
        assert_ne!(leaf(&h), h);
        assert_ne!(leaf(&h), anchor(&h), "a leaf is never an anchor");
    }
}
