use crate::AuditError;
use me2b_crypto::NodeVerifyingKey;
use me2b_domain::audit::{Checkpoint, GENESIS};
use me2b_storage::Store;

/// Why verification stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The first sequence number that does not verify.
    pub seq: u64,
    pub reason: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// Signed heads stored with the entries (one per committed batch).
    pub signed_heads: u64,
    /// The entry of the expected head (the head file) that was found intact.
    pub head_checked: Option<u64>,
    /// The last entry's sequence number and hash (hex).
    pub head: Option<(u64, String)>,
    /// Entries sealed at rest whose event this check did not read: the
    /// store has no metadata keys (`me2b audit verify` reads only the
    /// database), or the seal did not open. Their chain hashes, which
    /// cover the sealed bytes, are checked as every other entry's.
    pub sealed_unread: u64,
    pub first_failure: Option<Failure>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_failure.is_none()
    }
}

/// A signed head known from outside the database (the node's head file, or a
/// copy of it kept elsewhere): the log must still hold its entry, unchanged.
#[derive(Clone, Debug)]
pub struct ExpectedHead {
    pub head: Checkpoint,
    /// Where it came from, for messages (a file name).
    pub source: String,
}

const PAGE: u64 = 5000;

/// Recomputes the whole chain and checks every signature with `key`: the
/// checkpoints, and the signed head of every batch. See [`verify_with`].
pub async fn verify(
    store: &dyn Store,
    key: &NodeVerifyingKey,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, AuditError> {
    verify_with(store, key, None, progress).await
}

fn fail(seq: u64, reason: String) -> Option<Failure> {
    Some(Failure { seq, reason })
}

/// Recomputes the whole chain and checks every checkpoint's and every batch
/// head's signature with `key`; with `expected`, also that the log still
/// holds that head's entry, unchanged (a removed tail fails here: inside the
/// database, a log whose last entries and their heads were deleted together
/// is a valid shorter log). Once the log has signed heads (or an expected head
/// is given), entries after the last signed head fail too: the node's writer
/// signs every batch in its own transaction, so such entries were added
/// behind its back. `progress` is called with the number of entries checked.
pub async fn verify_with(
    store: &dyn Store,
    key: &NodeVerifyingKey,
    expected: Option<&ExpectedHead>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, AuditError> {
    let checkpoints = store.checkpoints().await?;
    let mut report = VerifyReport {
        entries: 0,
        checkpoints: checkpoints.len() as u64,
        signed_heads: 0,
        head_checked: None,
        head: None,
        sealed_unread: 0,
        first_failure: None,
    };
    let signed_ok = |cp: &Checkpoint| {
        key.verify(
            &Checkpoint::signed_message(cp.seq, &cp.head, cp.at),
            &cp.signature,
        )
        .is_ok()
    };
    // Checkpoint signatures first: they do not depend on the chain.
    for cp in &checkpoints {
        if !signed_ok(cp) {
            report.first_failure = fail(
                cp.seq,
                format!(
                    "checkpoint at entry {} has an invalid node signature",
                    cp.seq
                ),
            );
            return Ok(report);
        }
    }
    if let Some(x) = expected {
        if !signed_ok(&x.head) {
            report.first_failure = fail(
                x.head.seq,
                format!("the head in {} is not signed by this node's key", x.source),
            );
            return Ok(report);
        }
    }
    let mut cps = checkpoints.iter().peekable();
    let mut expected_seq = 1u64;
    let mut prev = GENESIS;
    let mut after = 0u64;
    // The last entry covered by a signature (a batch head or a checkpoint).
    let mut covered = 0u64;
    let mut failure: Option<Failure> = None;
    'pages: loop {
        let page = store.audit_entries(after, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        let heads = store.audit_signed_heads(after, last.seq).await?;
        let mut heads = heads.iter().peekable();
        for e in &page {
            if e.seq != expected_seq {
                failure = fail(
                    expected_seq,
                    format!(
                        "entry {expected_seq} is missing (next present is {})",
                        e.seq
                    ),
                );
                break 'pages;
            }
            if e.prev_hash != prev {
                failure = fail(e.seq, "does not link to the previous entry's hash".into());
                break 'pages;
            }
            if e.recompute() != e.hash {
                failure = fail(
                    e.seq,
                    "content does not match its hash (entry was altered)".into(),
                );
                break 'pages;
            }
            if e.stored.is_some() && e.event_json.is_empty() {
                report.sealed_unread += 1;
            } else if e.event().is_err() {
                failure = fail(e.seq, "event is not a valid audit event".into());
                break 'pages;
            }
            while let Some(cp) = cps.next_if(|cp| cp.seq <= e.seq) {
                if cp.seq == e.seq && cp.head != e.hash {
                    failure = fail(
                        e.seq,
                        format!(
                            "hash differs from the signed checkpoint at {} (history was rewritten)",
                            cp.seq
                        ),
                    );
                    break 'pages;
                }
                covered = covered.max(cp.seq);
            }
            if let Some(h) = heads.next_if(|h| h.seq == e.seq) {
                // The head is read from the entry's own row: its seq, hash
                // and time are the entry's; only the signature can fail.
                if h.head != e.hash || h.at != e.at || !signed_ok(h) {
                    failure = fail(
                        e.seq,
                        format!(
                            "the signed head of the batch ending at entry {} does not verify with the node key (history was rewritten, or the head forged)",
                            e.seq
                        ),
                    );
                    break 'pages;
                }
                report.signed_heads += 1;
                covered = e.seq;
            }
            if let Some(x) = expected.filter(|x| x.head.seq == e.seq) {
                if x.head.head != e.hash {
                    failure = fail(
                        e.seq,
                        format!(
                            "hash differs from the signed head in {} (history was rewritten)",
                            x.source
                        ),
                    );
                    break 'pages;
                }
                report.head_checked = Some(e.seq);
                covered = covered.max(e.seq);
            }
            prev = e.hash;
            expected_seq += 1;
            report.entries += 1;
            report.head = Some((e.seq, hex::encode(e.hash)));
        }
        after = last.seq;
        progress(report.entries);
    }
    let end = report.entries;
    if failure.is_none() {
        if let Some(cp) = cps.next() {
            failure = fail(
                end + 1,
                format!(
                    "the log ends at entry {end} but a signed checkpoint covers entry {} (entries were removed)",
                    cp.seq
                ),
            );
        }
    }
    if failure.is_none() {
        if let Some(x) = expected.filter(|x| x.head.seq > end) {
            failure = fail(
                end + 1,
                format!(
                    "the log ends at entry {end} but {} holds a signed head for entry {}: entries {}..={} were removed (or the database was restored from an older backup)",
                    x.source,
                    x.head.seq,
                    end + 1,
                    x.head.seq
                ),
            );
        }
    }
    if failure.is_none() && (report.signed_heads > 0 || expected.is_some()) && covered < end {
        failure = fail(
            covered + 1,
            format!(
                "entries {}..={end} are covered by no signed head: the node's writer signs every batch it commits, so they were added to the database behind its back",
                covered + 1
            ),
        );
    }
    report.first_failure = failure;
    Ok(report)
}
