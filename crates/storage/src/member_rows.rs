//! Every table that keeps rows of a member, in one list (issue 13): the
//! statements that delete them, used by every erasure path (at once, and
//! held until a batch is released), so a new member table is added here
//! once and no path can miss it. The storage suite checks that every table
//! with a member locator or id is listed.

use crate::sql::SqlStore;
use crate::*;
use me2b_domain::meta::MetaTable;

/// When an erasure deletes a member's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// At once: every row that holds or points to the member's data.
    Hold,
    /// When the batch is released: what organisations observe until then
    /// (their consent records, the marketing opt-out their offers honour)
    /// and the account row (with it the audit salt: no key names the
    /// member's audit entries any more).
    Release,
}

/// One table's delete: `$1` is the member's locator in `locator`'s table
/// (or, with none, the member id), `$2` (where used) the member id for rows
/// an older node wrote and no start has re-keyed yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberRows {
    pub table: &'static str,
    pub stage: Stage,
    pub sql: &'static str,
    pub locator: Option<MetaTable>,
}

const fn rows(
    table: &'static str,
    stage: Stage,
    sql: &'static str,
    locator: Option<MetaTable>,
) -> MemberRows {
    MemberRows {
        table,
        stage,
        sql,
        locator,
    }
}

/// A member's rows, in the order they are deleted.
pub(crate) const MEMBER_ROWS: [MemberRows; 17] = [
    rows(
        "sessions",
        Stage::Hold,
        "DELETE FROM sessions WHERE member_loc = $1",
        Some(MetaTable::Sessions),
    ),
    rows(
        "consent_envelopes",
        Stage::Hold,
        "DELETE FROM consent_envelopes WHERE consent_id IN \
         (SELECT consent_id FROM consents WHERE member_loc = $1 OR legacy_member_id = $2)",
        Some(MetaTable::Consents),
    ),
    rows(
        "consent_envelopes_pending",
        Stage::Hold,
        "DELETE FROM consent_envelopes_pending WHERE consent_id IN \
         (SELECT consent_id FROM consents WHERE member_loc = $1 OR legacy_member_id = $2)",
        Some(MetaTable::Consents),
    ),
    rows(
        "sign_ups",
        Stage::Hold,
        "DELETE FROM sign_ups WHERE member_id = $1",
        None,
    ),
    rows(
        "member_gpc",
        Stage::Hold,
        "DELETE FROM member_gpc WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::MemberGpc),
    ),
    rows(
        "vault_records",
        Stage::Hold,
        "DELETE FROM vault_records WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::VaultRecords),
    ),
    rows(
        "trust_enrolments",
        Stage::Hold,
        "DELETE FROM trust_enrolments WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::TrustEnrolments),
    ),
    rows(
        "trust_sharing",
        Stage::Hold,
        "DELETE FROM trust_sharing WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::TrustSharing),
    ),
    rows(
        "optout_codes",
        Stage::Hold,
        "DELETE FROM optout_codes WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::OptoutCodes),
    ),
    // A paper opt-out the worker has not done yet (it would only drop it:
    // the member is erasing).
    rows(
        "optout_jobs",
        Stage::Hold,
        "DELETE FROM optout_jobs WHERE member_loc = $1",
        Some(MetaTable::OptoutJobs),
    ),
    rows(
        "imported_history",
        Stage::Hold,
        "DELETE FROM imported_history WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::ImportedHistory),
    ),
    rows(
        "marketing_optouts",
        Stage::Release,
        "DELETE FROM marketing_optouts WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::MarketingOptouts),
    ),
    rows(
        "consents",
        Stage::Release,
        "DELETE FROM consents WHERE member_loc = $1 OR legacy_member_id = $2",
        Some(MetaTable::Consents),
    ),
    // Rectification notices (to each organisation, under the member's
    // locator scoped to it) and their deliveries: kept, as consents, until
    // the release (issue 15; attack 3a of adv5).
    rows(
        "rectification_deliveries",
        Stage::Release,
        "DELETE FROM rectification_deliveries WHERE notice_id IN \
         (SELECT notice_id FROM rectification_notices WHERE member_tag = $1)",
        Some(MetaTable::RectificationNotices),
    ),
    rows(
        "rectification_notices",
        Stage::Release,
        "DELETE FROM rectification_notices WHERE member_tag = $1",
        Some(MetaTable::RectificationNotices),
    ),
    // What finds the member's intents: kept to the release, when the
    // published ones (closed at the hold) are deleted through it
    // (`erase_member_intents`, run before these deletes).
    rows(
        "intent_owners",
        Stage::Release,
        "DELETE FROM intent_owners WHERE member_loc = $1",
        Some(MetaTable::IntentOwners),
    ),
    rows(
        "members",
        Stage::Release,
        "DELETE FROM members WHERE member_id = $1",
        None,
    ),
];

/// The tables a member's rows are deleted from (for the suite's check that
/// none is missed).
pub fn member_tables() -> impl Iterator<Item = &'static str> {
    MEMBER_ROWS.iter().map(|r| r.table)
}

/// A delete statement and its binds.
pub(crate) type Delete = (&'static str, Vec<Vec<u8>>);

impl<P> SqlStore<P> {
    /// The deletes of `stages`, each with its binds for `member`; a
    /// member's consents are located per organisation, so theirs are
    /// deleted once per organisation of `consent_orgs` ([`crate::meta::CONSENT_ORGS`]).
    pub(crate) fn member_deletes(
        &self,
        member: MemberId,
        stages: &[Stage],
        consent_orgs: &[Vec<u8>],
    ) -> Result<Vec<Delete>> {
        let mut out = Vec::new();
        for r in MEMBER_ROWS.iter().filter(|r| stages.contains(&r.stage)) {
            let firsts = match r.locator {
                Some(MetaTable::Consents) => self.consent_locs(member, consent_orgs)?,
                // A notice goes only to an organisation the member consented to.
                Some(MetaTable::RectificationNotices) => consent_orgs
                    .iter()
                    .map(|o| self.notice_loc(member, o))
                    .collect::<Result<_>>()?,
                Some(t) => vec![self.loc(t, member)?],
                None => vec![member.as_bytes().to_vec()],
            };
            for first in firsts {
                let mut binds = vec![first];
                if r.sql.contains("$2") {
                    binds.push(member.as_bytes().to_vec());
                }
                out.push((r.sql, binds));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_once_members_last_envelopes_before_consents() {
        let names: Vec<_> = member_tables().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.last(), Some(&"members"));
        let at = |t: &str| names.iter().position(|n| *n == t).unwrap_or(usize::MAX);
        assert!(at("consent_envelopes") < at("consents"));
        assert!(at("consent_envelopes_pending") < at("consents"));
        assert!(at("rectification_deliveries") < at("rectification_notices"));
        for r in MEMBER_ROWS {
            assert!(
                r.sql.contains(&format!("FROM {} WHERE", r.table)),
                "{}",
                r.table
            );
        }
    }
}
