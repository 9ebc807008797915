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
    /// The last entry's sequence number and hash (hex).
    pub head: Option<(u64, String)>,
    pub first_failure: Option<Failure>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_failure.is_none()
    }
}

const PAGE: u64 = 5000;

/// Recomputes the whole chain and checks every checkpoint's signature with `key`.
/// `progress` is called with the number of entries checked so far.
pub async fn verify(
    store: &dyn Store,
    key: &NodeVerifyingKey,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, AuditError> {
    let checkpoints = store.checkpoints().await?;
    let mut report = VerifyReport {
        entries: 0,
        checkpoints: checkpoints.len() as u64,
        head: None,
        first_failure: None,
    };
    // Checkpoint signatures first: they do not depend on the chain.
    for cp in &checkpoints {
        let msg = Checkpoint::signed_message(cp.seq, &cp.head, cp.at);
        if key.verify(&msg, &cp.signature).is_err() {
            report.first_failure = Some(Failure {
                seq: cp.seq,
                reason: format!(
                    "checkpoint at entry {} has an invalid node signature",
                    cp.seq
                ),
            });
            return Ok(report);
        }
    }
    let mut cps = checkpoints.iter().peekable();
    let mut expected_seq = 1u64;
    let mut prev = GENESIS;
    let mut after = 0u64;
    let mut failure: Option<Failure> = None;
    'pages: loop {
        let page = store.audit_entries(after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            let fail = |reason: String| Failure { seq: e.seq, reason };
            if e.seq != expected_seq {
                failure = Some(Failure {
                    seq: expected_seq,
                    reason: format!(
                        "entry {expected_seq} is missing (next present is {})",
                        e.seq
                    ),
                });
                break 'pages;
            }
            if e.prev_hash != prev {
                failure = Some(fail("does not link to the previous entry's hash".into()));
                break 'pages;
            }
            if e.recompute() != e.hash {
                failure = Some(fail(
                    "content does not match its hash (entry was altered)".into(),
                ));
                break 'pages;
            }
            if e.event().is_err() {
                failure = Some(fail("event is not a valid audit event".into()));
                break 'pages;
            }
            while let Some(cp) = cps.next_if(|cp| cp.seq <= e.seq) {
                if cp.seq == e.seq && cp.head != e.hash {
                    failure = Some(fail(format!(
                        "hash differs from the signed checkpoint at {} (history was rewritten)",
                        cp.seq
                    )));
                    break 'pages;
                }
            }
            prev = e.hash;
            expected_seq += 1;
            report.entries += 1;
            report.head = Some((e.seq, hex::encode(e.hash)));
        }
        after = page.last().map_or(after, |e| e.seq);
        progress(report.entries);
    }
    if failure.is_none() {
        if let Some(cp) = cps.next() {
            failure = Some(Failure {
                seq: report.entries + 1,
                reason: format!(
                    "the log ends at entry {} but a signed checkpoint covers entry {} (entries were removed)",
                    report.entries, cp.seq
                ),
            });
        }
    }
    report.first_failure = failure;
    Ok(report)
}
