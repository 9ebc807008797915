//! The 72-hour breach report (issue 15, item 6; GDPR Art. 33 and 34), read
//! from the audit log: which members the entries of an incident's window
//! touch (by a pseudonymous id and a count), which categories of data, the
//! notification deadline (72 hours from detection), and plain-language
//! drafts of the notices to the members and to the supervisory authority.
//!
//! A member is named only by a keyed hash of their id (`bp_…`, under a key
//! derived from the master key): the report can be passed around; the
//! operator, who holds the key, finds whom to notify by computing the same
//! hash over the member ids.

use crate::AuditError;
use me2b_crypto::Keyring;
use me2b_domain::audit::{AuditEvent, Outcome};
use me2b_domain::{MemberId, Timestamp};
use me2b_storage::Store;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The parts of the node an incident can be scoped to (`--component`), by
/// the prefix of the audit actions that touch them.
pub const COMPONENTS: &[(&str, &[&str], &str)] = &[
    (
        "vault",
        &["vault.", "key.data."],
        "vault records (encrypted with each member's key)",
    ),
    (
        "accounts",
        &["member."],
        "account data (e-mail address, encrypted; login times)",
    ),
    (
        "consent",
        &["consent."],
        "consent records and what organisations read under them",
    ),
    (
        "offers",
        &["offer.", "interest."],
        "offer matching and answers (in the member's vault)",
    ),
    (
        "trust",
        &["trust."],
        "pseudonymised receipts and loyalty points in the data trust",
    ),
    ("credentials", &["credential."], "membership credentials"),
    ("rights", &["rights."], "opt-outs, exports and imports"),
];

/// 72 hours, in milliseconds.
pub const DEADLINE_MS: i64 = 72 * 3600 * 1000;

/// The breach report.
#[derive(Clone, Debug, Serialize)]
pub struct BreachReport {
    pub from: String,
    pub to: String,
    pub component: Option<String>,
    pub detected_at: String,
    /// 72 hours after detection: the supervisory authority must be told by then.
    pub notify_authority_by: String,
    pub entries_examined: u64,
    pub members_affected: usize,
    /// Pseudonymous ids of the affected members (`bp_` and 32 hex digits), sorted.
    pub affected: Vec<String>,
    /// Kinds of data exposed, in plain words, by component.
    pub data_exposed: Vec<String>,
    /// DPV personal-data categories organisations read in the window.
    pub categories_read: Vec<String>,
    pub member_notice: String,
    pub authority_notice: String,
}

fn pseudonym(keys: &Keyring, m: &MemberId) -> String {
    let tag = keys.trust_tag("breach-report", m.as_bytes());
    format!("bp_{}", hex::encode(&tag[..16]))
}

fn component_of(action: &str) -> Option<&'static str> {
    COMPONENTS
        .iter()
        .find(|(_, prefixes, _)| prefixes.iter().any(|p| action.starts_with(p)))
        .map(|(name, _, _)| *name)
}

/// Whether `name` is a known component.
pub fn is_component(name: &str) -> bool {
    COMPONENTS.iter().any(|(n, _, _)| *n == name)
}

/// Builds the report from the entries with `from <= at <= to` (of
/// `component` only, if given).
pub async fn report(
    store: &dyn Store,
    keys: &Keyring,
    from: Timestamp,
    to: Timestamp,
    component: Option<&str>,
    detected: Timestamp,
) -> Result<BreachReport, AuditError> {
    let mut after = 0;
    let mut examined = 0u64;
    let mut affected = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut categories = BTreeSet::new();
    loop {
        let page = store.audit_entries(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if e.at < from || e.at > to {
                continue;
            }
            let Ok(ev) = e.event() else { continue };
            let action = serde_json::to_value(ev.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let comp = component_of(&action);
            if component.is_some_and(|c| Some(c) != comp) {
                continue;
            }
            examined += 1;
            if let Some(m) = ev.subject {
                affected.insert(pseudonym(keys, &m));
            }
            if let Some(c) = comp {
                kinds.insert(c);
            }
            if let AuditEvent {
                category: Some(cat),
                outcome: Outcome::Ok,
                ..
            } = &ev
            {
                categories.insert(cat.clone());
            }
        }
        if page.len() < 5000 {
            break;
        }
    }
    let data_exposed: Vec<String> = COMPONENTS
        .iter()
        .filter(|(n, _, _)| kinds.contains(n))
        .map(|(n, _, what)| format!("{n}: {what}"))
        .collect();
    let deadline = Timestamp::from_unix_millis(detected.unix_millis().saturating_add(DEADLINE_MS));
    let mut r = BreachReport {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        component: component.map(str::to_owned),
        detected_at: detected.to_rfc3339(),
        notify_authority_by: deadline.to_rfc3339(),
        entries_examined: examined,
        members_affected: affected.len(),
        affected: affected.into_iter().collect(),
        data_exposed,
        categories_read: categories.into_iter().collect(),
        member_notice: String::new(),
        authority_notice: String::new(),
    };
    r.member_notice = member_notice(&r);
    r.authority_notice = authority_notice(&r);
    Ok(r)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none recorded".to_owned()
    } else {
        items.join("; ")
    }
}

fn member_notice(r: &BreachReport) -> String {
    format!(
        "Dear member,\n\n\
We are writing because your data may have been exposed in a security incident on our node. \
Between {} and {} someone may have had access to: {}.\n\n\
What this means for you: your vault is encrypted with a key only you hold, so its contents \
cannot be read without your passphrase or recovery code. To be safe, change your passphrase \
(and you may make a new recovery code), watch for messages that pretend to come from us, and \
check your audit trail (GET /v1/me/audit) and transparency page for anything you do not recognise.\n\n\
What we are doing: we found the incident on {}, we have stopped it, and we are telling the \
supervisory authority. You can opt out of all marketing at once, export everything we hold about \
you, or erase your account at any time. Write to us with any question.\n",
        r.from,
        r.to,
        list(&r.data_exposed),
        r.detected_at
    )
}

fn authority_notice(r: &BreachReport) -> String {
    format!(
        "Notification of a personal data breach (GDPR Art. 33)\n\n\
Nature of the breach: unauthorised access to {}, between {} and {}; detected on {}.\n\
Data subjects concerned: approximately {} member(s), identified in our records by pseudonymous ids.\n\
Records concerned: {} audit-logged operation(s) in that window.\n\
Categories of personal data: {}. Categories read by organisations under consent in the window: {}.\n\
Likely consequences: vault records are encrypted under keys the members hold (the operator cannot \
read them without the member's passphrase or recovery code); account e-mail addresses are encrypted \
under the node's key; the data trust holds only pseudonymised data.\n\
Measures taken or proposed: the incident was contained; members are being notified (Art. 34) with \
advice to change their passphrase; the audit log was verified for tampering (me2b audit verify).\n\
Contact: the node's operator (data protection contact).\n\
This notification is due by {} (72 hours after detection).\n",
        r.component
            .as_deref()
            .map_or("the node".to_owned(), |c| format!("the node's {c} component")),
        r.from,
        r.to,
        r.detected_at,
        r.members_affected,
        r.entries_examined,
        list(&r.data_exposed),
        list(&r.categories_read),
        r.notify_authority_by
    )
}

impl BreachReport {
    /// The report as plain text (Markdown).
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# Breach report\n");
        let _ = writeln!(o, "- window: {} to {}", self.from, self.to);
        let _ = writeln!(
            o,
            "- component: {}",
            self.component.as_deref().unwrap_or("all")
        );
        let _ = writeln!(o, "- detected: {}", self.detected_at);
        let _ = writeln!(
            o,
            "- **notify the supervisory authority by {}** (72 hours)",
            self.notify_authority_by
        );
        let _ = writeln!(o, "- audit entries examined: {}", self.entries_examined);
        let _ = writeln!(o, "- members affected: {}", self.members_affected);
        let _ = writeln!(o, "\n## Data exposed\n");
        for d in &self.data_exposed {
            let _ = writeln!(o, "- {d}");
        }
        if !self.categories_read.is_empty() {
            let _ = writeln!(
                o,
                "- read by organisations under consent: {}",
                self.categories_read.join(", ")
            );
        }
        let _ = writeln!(o, "\n## Members affected (pseudonymous ids)\n");
        for a in &self.affected {
            let _ = writeln!(o, "- {a}");
        }
        let _ = writeln!(o, "\n## Draft notice to members\n\n{}", self.member_notice);
        let _ = writeln!(
            o,
            "## Draft notice to the supervisory authority\n\n{}",
            self.authority_notice
        );
        o
    }
}

/// The pseudonymous id a report gives a member (for the operator to match).
pub fn member_pseudonym(keys: &Keyring, m: &MemberId) -> String {
    pseudonym(keys, m)
}
