//! Matching, inside the member's vault.
//!
//! Every vault receives the same [`Catalogue`]; nothing about a member leaves to
//! ask for "their" offers. For one member, matching is:
//! 1. a topic-bitset prefilter: the offer's topics must meet the member's
//!    interests (with their parent topics); validity, dismissals, suppressed
//!    topics and the frequency cap are checked here too;
//! 2. the offer's compiled CEL rule on the survivors;
//! 3. ranking, and the reasons ("why this offer") from the topics that met and
//!    the rule's conditions that held.
//!
//! Sensitive topics (GDPR Art. 9) never take part unless the offer is flagged
//! `explicit_consent` *and* the member explicitly consented to every sensitive
//! topic of the offer; even then only those topics are added to that offer's
//! context. A member's sensitive interest never reaches an offer through a parent
//! topic.

use crate::offer::PublishedOffer;
use crate::rule::{self, CompiledRule, ContextValues, RuleError, RuleErrorKind, SensitivePolicy};
use crate::taxonomy::{Taxonomy, TopicIdx, TopicSet};
use me2b_domain::record::{InterestSource, OfferHistory, RecordContent};
use me2b_domain::{OfferId, Timestamp};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;
/// Most matches returned to the member at once.
pub const MAX_MATCHES: usize = 50;

/// One offer as a vault holds it: parsed, topics resolved, rule compiled.
#[derive(Debug)]
pub struct Entry {
    pub offer: Arc<PublishedOffer>,
    topics: TopicSet,
    topic_list: Vec<TopicIdx>,
    sensitive: TopicSet,
    rule: Option<Arc<CompiledRule>>,
}

/// The fields the prefilter reads for every offer, kept in one compact array so
/// that a scan over 100,000 offers stays in cache.
#[derive(Clone, Copy, Debug)]
struct Scan {
    id: OfferId,
    valid_from: i64,
    valid_until: i64,
    /// The first [`SCAN_TOPICS`] topics; `more` when the offer has others.
    topics: [u16; SCAN_TOPICS],
    n: u8,
    more: bool,
    sensitive: bool,
    capped: bool,
}

const SCAN_TOPICS: usize = 6;

/// The published catalogue, as every vault receives it.
#[derive(Debug, Default)]
pub struct Catalogue {
    entries: Vec<Entry>,
    scan: Vec<Scan>,
    index: HashMap<OfferId, usize>,
}

/// An offer a vault could not take in (its rule or topics no longer check, e.g.
/// after a taxonomy change). It is left out of matching for everyone.
#[derive(Debug)]
pub struct Rejected {
    pub offer: OfferId,
    pub reason: String,
    /// The node could not check the rule this time (no thread for it): not
    /// the offer's fault, so a catalogue with such a rejection is not kept.
    pub transient: bool,
}

impl Catalogue {
    /// Takes in published offers: resolves topics and compiles rules. A rule
    /// text shared by many offers is checked and compiled once.
    pub fn ingest(
        offers: impl IntoIterator<Item = PublishedOffer>,
        taxonomy: &Taxonomy,
    ) -> (Self, Vec<Rejected>) {
        let mut cat = Self::default();
        let mut rejected = Vec::new();
        let mut compiled: HashMap<String, Result<Arc<CompiledRule>, RuleError>> = HashMap::new();
        for o in offers {
            match Self::entry(o, taxonomy, &mut compiled) {
                Ok(e) => {
                    cat.index.insert(e.offer.id, cat.entries.len());
                    cat.scan.push(scan_row(&e));
                    cat.entries.push(e);
                }
                Err((offer, reason, transient)) => rejected.push(Rejected {
                    offer,
                    reason,
                    transient,
                }),
            }
        }
        (cat, rejected)
    }

    fn entry(
        o: PublishedOffer,
        taxonomy: &Taxonomy,
        compiled: &mut HashMap<String, Result<Arc<CompiledRule>, RuleError>>,
    ) -> Result<Entry, (OfferId, String, bool)> {
        let refused = |id, e: &RuleError| (id, e.to_string(), e.kind == RuleErrorKind::Unavailable);
        let mut topics = TopicSet::default();
        let mut topic_list = Vec::new();
        let mut sensitive = TopicSet::default();
        for slug in o.all_topics() {
            let idx = taxonomy
                .by_slug(slug)
                .ok_or_else(|| (o.id, format!("unknown topic {slug}"), false))?;
            if taxonomy.is_sensitive(idx) {
                if !o.explicit_consent {
                    return Err((
                        o.id,
                        "sensitive topic without explicit consent".into(),
                        false,
                    ));
                }
                sensitive.insert(idx);
            }
            if !topics.contains(idx) {
                topic_list.push(idx);
            }
            topics.insert(idx);
        }
        let rule = match &o.rule {
            None => None,
            // Explicit-consent offers: the check depends on the offer's topics.
            Some(src) if o.explicit_consent => Some(Arc::new(
                rule::check(
                    src,
                    taxonomy,
                    SensitivePolicy {
                        explicit_consent: true,
                        offer_topics: &topics,
                    },
                )
                .map_err(|e| refused(o.id, &e))?,
            )),
            // Otherwise only on the text.
            Some(src) => {
                let empty = TopicSet::default();
                let result = compiled.entry(src.clone()).or_insert_with(|| {
                    rule::check(
                        src,
                        taxonomy,
                        SensitivePolicy {
                            explicit_consent: false,
                            offer_topics: &empty,
                        },
                    )
                    .map(Arc::new)
                });
                Some(result.clone().map_err(|e| refused(o.id, &e))?)
            }
        };
        Ok(Entry {
            offer: Arc::new(o),
            topics,
            topic_list,
            sensitive,
            rule,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The offers, in publication order.
    pub fn offers(&self) -> impl Iterator<Item = &Arc<PublishedOffer>> {
        self.entries.iter().map(|e| &e.offer)
    }

    pub fn get(&self, id: OfferId) -> Option<&Entry> {
        self.index.get(&id).and_then(|i| self.entries.get(*i))
    }
}

fn scan_of(c: &Catalogue, i: usize) -> Option<&Scan> {
    c.scan.get(i)
}

fn scan_row(e: &Entry) -> Scan {
    let mut topics = [0u16; SCAN_TOPICS];
    for (slot, t) in topics.iter_mut().zip(e.topic_list.iter()) {
        *slot = u16::try_from(t.index()).unwrap_or(u16::MAX);
    }
    Scan {
        id: e.offer.id,
        valid_from: e.offer.valid_from.unix_millis(),
        valid_until: e.offer.valid_until.unix_millis(),
        topics,
        n: u8::try_from(e.topic_list.len().min(SCAN_TOPICS)).unwrap_or(0),
        more: e.topic_list.len() > SCAN_TOPICS,
        sensitive: !e.sensitive.is_empty(),
        capped: e.offer.frequency_cap.is_some(),
    }
}

/// One interest as matching sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldInterest {
    pub topic: TopicIdx,
    pub source: InterestSource,
    pub explicit_consent: bool,
}

/// What matching knows about one member: built inside the vault from their
/// records, never sent anywhere.
#[derive(Debug, Default)]
pub struct Profile {
    pub interests: Vec<HeldInterest>,
    pub region: String,
    pub birth_year: Option<i32>,
    pub loyalty_tier: String,
    pub credentials: Vec<String>,
    pub history: OfferHistory,
}

impl Profile {
    /// Reads a member's records.
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = &'a RecordContent>,
        taxonomy: &Taxonomy,
    ) -> Self {
        let mut p = Self::default();
        for r in records {
            match r {
                RecordContent::Interest(i) => {
                    if let Some(topic) = taxonomy.by_slug(i.topic.as_str()) {
                        if !p.interests.iter().any(|h| h.topic == topic) {
                            p.interests.push(HeldInterest {
                                topic,
                                source: i.source,
                                explicit_consent: i.explicit_consent,
                            });
                        }
                    }
                }
                RecordContent::ProfileAttribute(a) => match a.name.as_str() {
                    "region" => p.region = String::from(a.value.clone()),
                    "loyalty_tier" => p.loyalty_tier = String::from(a.value.clone()),
                    "birth_year" => {
                        p.birth_year = String::from(a.value.clone()).trim().parse().ok()
                    }
                    _ => {}
                },
                RecordContent::OfferHistory(h) => p.history = h.clone(),
                RecordContent::Receipt(_)
                | RecordContent::Note(_)
                | RecordContent::Credential(_)
                | RecordContent::Intent(_) => {}
            }
        }
        p
    }
}

/// The age band of a birth year at a time.
pub fn age_band(birth_year: Option<i32>, now: Timestamp) -> String {
    let Some(y) = birth_year else {
        return String::new();
    };
    let year_now = 1970 + (now.unix_millis() / (DAY_MS * 36525 / 100)) as i32;
    let age = year_now - y;
    match age {
        i32::MIN..=17 => "under-18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        _ => "65+",
    }
    .to_owned()
}

/// Whether matching checks topics before the rule (the product) or evaluates
/// the rule on every offer first (only to measure what the prefilter saves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Prefilter,
    RuleOnEveryOffer,
}

/// Why an offer matched, in words and in parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Why {
    pub summary: String,
    pub topics: Vec<TopicReason>,
    pub conditions: Vec<ConditionReason>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopicReason {
    /// The offer's topic.
    pub offer_topic: String,
    /// The member's interest that met it (the same topic or a child of it).
    pub your_interest: String,
    pub source: InterestSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConditionReason {
    /// The condition of the rule, as written by the organisation.
    pub condition: String,
    /// The member's own values it read.
    pub because: Vec<String>,
}

/// One matched offer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Match {
    #[schema(value_type = PublishedOffer)]
    pub offer: Arc<PublishedOffer>,
    pub score: u32,
    pub why: Why,
}

/// The result of matching one member.
#[derive(Debug, Default)]
pub struct Outcome {
    pub matches: Vec<Match>,
    /// Offers whose rule failed for this member: left out, never an error.
    pub rule_failures: usize,
    /// Offers valid now whose topics meet the member's interests (the topic
    /// prefilter's survivors, before the per-member checks run in rank order).
    pub survivors: usize,
}

struct MemberView {
    /// Non-sensitive interests and their ancestors (never through a sensitive one).
    plain: TopicSet,
    /// Sensitive interests the member explicitly consented to offers on.
    consented_sensitive: TopicSet,
    suppressed: TopicSet,
    values: ContextValues,
}

fn member_view(p: &Profile, taxonomy: &Taxonomy, now: Timestamp) -> MemberView {
    let mut plain = TopicSet::default();
    let mut consented_sensitive = TopicSet::default();
    for i in &p.interests {
        if taxonomy.is_sensitive(i.topic) {
            if i.explicit_consent {
                consented_sensitive.insert(i.topic);
            }
        } else {
            plain.union_with(&taxonomy.lineage(i.topic));
        }
    }
    let mut suppressed = TopicSet::default();
    for s in &p.history.suppressed_topics {
        if let Some(t) = taxonomy.by_slug(s.as_str()) {
            suppressed.insert(t);
        }
    }
    let values = ContextValues {
        interests: plain.iter().map(|t| taxonomy.slug(t).to_owned()).collect(),
        credentials: p.credentials.clone(),
        region: p.region.clone(),
        age_band: age_band(p.birth_year, now),
        loyalty_tier: p.loyalty_tier.clone(),
    };
    MemberView {
        plain,
        consented_sensitive,
        suppressed,
        values,
    }
}

/// The weight an interest adds to an offer topic: exact or through a child,
/// declared or accepted from receipts.
fn weight(exact: bool, source: InterestSource) -> u32 {
    match (exact, source) {
        (true, InterestSource::Declared) => 4,
        (true, InterestSource::FromReceipts) => 3,
        (false, InterestSource::Declared) => 2,
        (false, InterestSource::FromReceipts) => 1,
    }
}

/// Per topic, the summed weight of the member's interests at or below it.
/// Sensitive interests count only exactly, and only when consented.
fn weights(p: &Profile, view: &MemberView, taxonomy: &Taxonomy) -> Vec<u32> {
    let mut w = vec![0u32; taxonomy.len()];
    for i in &p.interests {
        if taxonomy.is_sensitive(i.topic) {
            if view.consented_sensitive.contains(i.topic) {
                if let Some(x) = w.get_mut(i.topic.index()) {
                    *x += weight(true, i.source);
                }
            }
            continue;
        }
        for a in taxonomy.lineage(i.topic).iter() {
            if let Some(x) = w.get_mut(a.index()) {
                *x += weight(a == i.topic, i.source);
            }
        }
    }
    w
}

/// How many ranked candidates are ordered at a time.
const WINDOW: usize = 256;

/// Matches one member against the catalogue.
///
/// The score depends only on topics, so candidates are ranked first and rules
/// are evaluated in rank order until [`MAX_MATCHES`] hold: with a large
/// catalogue only a few rules run. In [`Mode::RuleOnEveryOffer`] every rule is
/// evaluated first (to measure what the prefilter saves); the result is the same.
pub fn match_member(
    catalogue: &Catalogue,
    profile: &Profile,
    taxonomy: &Taxonomy,
    now: Timestamp,
    mode: Mode,
) -> Outcome {
    let view = member_view(profile, taxonomy, now);
    let ctx = rule::context(&view.values);
    let today = now.unix_millis().div_euclid(DAY_MS);
    let w = weights(profile, &view, taxonomy);
    let mut out = Outcome::default();
    let mut precomputed: Vec<Option<bool>> = Vec::new();
    if mode == Mode::RuleOnEveryOffer {
        precomputed = catalogue
            .entries
            .iter()
            .map(|e| match eval(e, &ctx, &view, taxonomy) {
                Ok(v) => Some(v),
                Err(()) => {
                    out.rule_failures += 1;
                    Some(false)
                }
            })
            .collect();
    }
    let nowms = now.unix_millis();
    let history_empty = profile.history.dismissed.is_empty()
        && profile.history.not_relevant.is_empty()
        && view.suppressed.is_empty();
    // (score, valid_from, id, index)
    let mut candidates: Vec<(u32, i64, OfferId, usize)> = Vec::new();
    for (i, row) in catalogue.scan.iter().enumerate() {
        if nowms < row.valid_from || nowms >= row.valid_until {
            continue;
        }
        let mut score: u32 = row
            .topics
            .iter()
            .take(usize::from(row.n))
            .map(|t| w.get(usize::from(*t)).copied().unwrap_or(0))
            .sum();
        if row.more {
            if let Some(e) = catalogue.entries.get(i) {
                score += e
                    .topic_list
                    .iter()
                    .skip(SCAN_TOPICS)
                    .map(|t| w.get(t.index()).copied().unwrap_or(0))
                    .sum::<u32>();
            }
        }
        if score == 0 {
            continue;
        }
        candidates.push((score, row.valid_from, row.id, i));
    }
    out.survivors = candidates.len();
    let order = |a: &(u32, i64, OfferId, usize), b: &(u32, i64, OfferId, usize)| {
        b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
    };
    let mut rest: &mut [(u32, i64, OfferId, usize)] = &mut candidates;
    'windows: while !rest.is_empty() {
        let k = WINDOW.min(rest.len());
        if k < rest.len() {
            rest.select_nth_unstable_by(k - 1, order);
        }
        let (window, tail) = std::mem::take(&mut rest).split_at_mut(k);
        window.sort_unstable_by(order);
        for (score, _, _, i) in window.iter() {
            let Some(e) = catalogue.entries.get(*i) else {
                continue;
            };
            // The rest of the prefilter (sensitive gate, dismissed, suppressed,
            // frequency cap) does not change the ranking: checked only here, for
            // the candidates actually considered.
            let needs_check =
                scan_of(catalogue, *i).is_some_and(|r| r.sensitive || r.capped) || !history_empty;
            if needs_check && !prefilter(e, &view, profile, now, today) {
                continue;
            }
            let held = match precomputed.get(*i).copied().flatten() {
                Some(v) => v,
                None => match eval(e, &ctx, &view, taxonomy) {
                    Ok(v) => v,
                    Err(()) => {
                        out.rule_failures += 1;
                        false
                    }
                },
            };
            if !held {
                continue;
            }
            let why = explain(e, profile, &view, &ctx, taxonomy);
            out.matches.push(Match {
                offer: e.offer.clone(),
                score: *score,
                why,
            });
            if out.matches.len() == MAX_MATCHES {
                break 'windows;
            }
        }
        rest = tail;
    }
    out
}

fn prefilter(e: &Entry, view: &MemberView, p: &Profile, now: Timestamp, today: i64) -> bool {
    let o = &e.offer;
    if now < o.valid_from || now >= o.valid_until {
        return false;
    }
    // Sensitive gate: every sensitive topic of the offer explicitly consented.
    if !e.sensitive.is_empty()
        && e.sensitive
            .iter()
            .any(|t| !view.consented_sensitive.contains(t))
    {
        return false;
    }
    let mut reach = view.plain;
    reach.union_with(&e.sensitive);
    if !e.topics.intersects(&reach) {
        return false;
    }
    if p.history.dismissed.contains(&o.id) || p.history.not_relevant.contains(&o.id) {
        return false;
    }
    // Suppressed: every topic that met the member is one they marked not relevant.
    if !view.suppressed.is_empty()
        && e.topic_list
            .iter()
            .filter(|t| reach.contains(**t))
            .all(|t| view.suppressed.contains(*t))
    {
        return false;
    }
    if let Some(cap) = o.frequency_cap {
        if let Some(days) = p.history.shown.get(&o.id) {
            let since = today - i64::from(cap.per_days) + 1;
            let recent = days.iter().filter(|d| **d >= since).count();
            if recent >= cap.impressions as usize {
                return false;
            }
        }
    }
    true
}

/// Evaluates an offer's rule. Err means the rule failed for this member.
fn eval(
    e: &Entry,
    ctx: &rule::Context,
    view: &MemberView,
    taxonomy: &Taxonomy,
) -> Result<bool, ()> {
    let Some(rule) = &e.rule else {
        return Ok(true);
    };
    if e.sensitive.is_empty() {
        return rule.eval(ctx).map_err(|_| ());
    }
    let ctx = sensitive_context(e, view, taxonomy);
    rule.eval(&ctx).map_err(|_| ())
}

/// For an explicit-consent offer: the plain context plus the offer's sensitive
/// topics the member consented to, nothing else.
fn sensitive_context(e: &Entry, view: &MemberView, taxonomy: &Taxonomy) -> rule::Context {
    let mut values = view.values.clone();
    for t in e.sensitive.iter() {
        if view.consented_sensitive.contains(t) {
            values.interests.push(taxonomy.slug(t).to_owned());
        }
    }
    rule::context(&values)
}

fn explain(
    e: &Entry,
    p: &Profile,
    view: &MemberView,
    ctx: &rule::Context,
    taxonomy: &Taxonomy,
) -> Why {
    let mut topics = Vec::new();
    for t in &e.topic_list {
        // The member's interests at or below this offer topic; a sensitive one
        // only exactly, and only when consented (the same as the score).
        for i in &p.interests {
            let sensitive = taxonomy.is_sensitive(i.topic);
            if sensitive && (i.topic != *t || !view.consented_sensitive.contains(i.topic)) {
                continue;
            }
            if taxonomy.is_within(i.topic, *t) {
                topics.push(TopicReason {
                    offer_topic: taxonomy.name(*t).to_owned(),
                    your_interest: taxonomy.name(i.topic).to_owned(),
                    source: i.source,
                });
            }
        }
    }
    let mut conditions = Vec::new();
    if let Some(rule) = &e.rule {
        let sctx;
        let ctx = if e.sensitive.is_empty() {
            ctx
        } else {
            sctx = sensitive_context(e, view, taxonomy);
            &sctx
        };
        for c in rule.holding_clauses(ctx) {
            let mut because = Vec::new();
            for f in &c.fields {
                if let Some(d) = view.values.describe(f) {
                    because.push(d);
                }
            }
            for t in &c.topics {
                if view.plain.contains(*t) || view.consented_sensitive.contains(*t) {
                    because.push(format!("you are interested in {}", taxonomy.name(*t)));
                }
            }
            if c.fields.contains(&"credentials") && !view.values.credentials.is_empty() {
                because.push(format!("you hold: {}", view.values.credentials.join(", ")));
            }
            conditions.push(ConditionReason {
                condition: c.text.clone(),
                because,
            });
        }
    }
    let summary = summary(e, &topics, &conditions);
    Why {
        summary,
        topics,
        conditions,
    }
}

fn summary(e: &Entry, topics: &[TopicReason], conditions: &[ConditionReason]) -> String {
    let mut parts = Vec::new();
    for t in topics {
        let held = match t.source {
            InterestSource::Declared => format!("You declared an interest in {}", t.your_interest),
            InterestSource::FromReceipts => format!(
                "You accepted {} as an interest (suggested from your receipts)",
                t.your_interest
            ),
        };
        let target = if t.offer_topic == t.your_interest {
            format!("{} targets {}", e.offer.org_name, t.offer_topic)
        } else {
            format!(
                "{} targets {}, which includes {}",
                e.offer.org_name, t.offer_topic, t.your_interest
            )
        };
        parts.push(format!("{held}; {target}"));
    }
    let mut s = parts.join(". ");
    if !conditions.is_empty() {
        let c: Vec<String> = conditions
            .iter()
            .map(|c| {
                if c.because.is_empty() {
                    c.condition.clone()
                } else {
                    format!("{} ({})", c.condition, c.because.join(", "))
                }
            })
            .collect();
        s.push_str(&format!(", for members where {}", c.join(" and ")));
    }
    if !e.offer.coalition.is_empty() {
        let names: Vec<&str> = e
            .offer
            .coalition
            .iter()
            .map(|p| p.org_name.as_str())
            .collect();
        s.push_str(&format!(". A bundle with {}", names.join(", ")));
    }
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_domain::record::{Interest, ProfileAttribute};
    use me2b_domain::text::{Label, Slug};
    use me2b_domain::OrgId;

    fn tax() -> Taxonomy {
        Taxonomy::shipped().unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_000_000_000)
    }

    pub(crate) fn offer(
        n: u8,
        topics: &[&str],
        rule: Option<&str>,
        explicit: bool,
    ) -> PublishedOffer {
        PublishedOffer {
            v: 1,
            id: OfferId::from_slice(&[n; 16]).unwrap(),
            org: OrgId::from_slice(&[1; 16]).unwrap(),
            org_name: "Green Wheels".into(),
            title: format!("Offer {n}"),
            text: "text".into(),
            topics: topics.iter().map(|s| s.to_string()).collect(),
            rule: rule.map(str::to_owned),
            valid_from: Timestamp::from_unix_millis(0),
            valid_until: Timestamp::from_unix_millis(i64::MAX / 2),
            frequency_cap: None,
            coalition: vec![],
            explicit_consent: explicit,
            contact_request: None,
            published_at: Timestamp::from_unix_millis(0),
        }
    }

    fn interest(slug: &str, explicit: bool) -> RecordContent {
        RecordContent::Interest(Interest {
            topic: Slug::try_from(slug).unwrap(),
            note: None,
            source: InterestSource::Declared,
            explicit_consent: explicit,
        })
    }

    fn attr(name: &str, v: &str) -> RecordContent {
        RecordContent::ProfileAttribute(ProfileAttribute {
            name: Slug::try_from(name).unwrap(),
            value: Label::try_from(v).unwrap(),
        })
    }

    fn ids(o: &Outcome) -> Vec<u8> {
        o.matches.iter().map(|m| m.offer.id.as_bytes()[0]).collect()
    }

    #[test]
    fn matches_by_topic_and_rule_and_explains_both() {
        let t = tax();
        let (cat, rejected) = Catalogue::ingest(
            vec![
                offer(1, &["cycling"], Some("region == \"NL-NH\""), false),
                offer(2, &["sports"], None, false),
                offer(3, &["organic"], None, false),
                offer(4, &["cycling"], Some("region == \"BE\""), false),
            ],
            &t,
        );
        assert!(rejected.is_empty());
        let records = [interest("cycling", false), attr("region", "NL-NH")];
        let p = Profile::from_records(&records, &t);
        let out = match_member(&cat, &p, &t, now(), Mode::Prefilter);
        assert_eq!(ids(&out), vec![1, 2]);
        let why = &out.matches[0].why;
        assert_eq!(
            why.summary,
            "You declared an interest in Cycling; Green Wheels targets Cycling, for members where region == \"NL-NH\" (your region is NL-NH)."
        );
        assert_eq!(out.matches[1].why.topics[0].offer_topic, "Sports");
        assert!(out.matches[1]
            .why
            .summary
            .contains("Sports, which includes Cycling"));
        // Both modes agree.
        let full = match_member(&cat, &p, &t, now(), Mode::RuleOnEveryOffer);
        assert_eq!(ids(&full), ids(&out));
    }

    #[test]
    fn sensitive_offers_need_explicit_consent_for_every_sensitive_topic() {
        let t = tax();
        let (cat, rejected) = Catalogue::ingest(
            vec![
                offer(1, &["diabetes"], Some("\"diabetes\" in interests"), true),
                // A plain offer on the parent of a sensitive topic.
                offer(2, &["parenting"], None, false),
                // A sensitive offer that slipped into a catalogue unflagged.
                offer(3, &["health"], None, false),
            ],
            &t,
        );
        assert_eq!(rejected.len(), 1);
        let declared_only = [
            interest("diabetes", false),
            interest("babies-and-toddlers", false),
        ];
        let p = Profile::from_records(&declared_only, &t);
        assert!(match_member(&cat, &p, &t, now(), Mode::Prefilter)
            .matches
            .is_empty());
        let consented = [
            interest("diabetes", true),
            interest("babies-and-toddlers", true),
        ];
        let p = Profile::from_records(&consented, &t);
        let out = match_member(&cat, &p, &t, now(), Mode::Prefilter);
        // The diabetes offer; never the parenting one through a sensitive child.
        assert_eq!(ids(&out), vec![1]);
        assert!(out.matches[0].why.summary.contains("Diabetes"));
    }

    #[test]
    fn dismissed_not_relevant_capped_and_expired_offers_are_left_out() {
        let t = tax();
        let mut capped = offer(3, &["cycling"], None, false);
        capped.frequency_cap = Some(crate::offer::FrequencyCap {
            impressions: 2,
            per_days: 7,
        });
        let mut expired = offer(4, &["cycling"], None, false);
        expired.valid_until = Timestamp::from_unix_millis(1);
        let (cat, _) = Catalogue::ingest(
            vec![
                offer(1, &["cycling"], None, false),
                offer(2, &["organic", "cycling"], None, false),
                capped,
                expired,
                offer(5, &["organic"], None, false),
            ],
            &t,
        );
        let mut h = OfferHistory::default();
        h.dismissed.insert(OfferId::from_slice(&[1; 16]).unwrap());
        let today = now().unix_millis() / DAY_MS;
        h.shown.insert(
            OfferId::from_slice(&[3; 16]).unwrap(),
            vec![today - 1, today],
        );
        h.suppressed_topics
            .insert(Slug::try_from("organic").unwrap());
        let records = [
            interest("cycling", false),
            interest("organic", false),
            RecordContent::OfferHistory(h),
        ];
        let p = Profile::from_records(&records, &t);
        // 2 still meets the member through cycling; 5 only through suppressed organic.
        assert_eq!(
            ids(&match_member(&cat, &p, &t, now(), Mode::Prefilter)),
            vec![2]
        );
    }

    #[test]
    fn a_rule_failing_for_one_member_leaves_the_others_matching() {
        let t = tax();
        let (cat, _) = Catalogue::ingest(
            vec![
                offer(1, &["cycling"], Some("interests[5] < \"x\""), false),
                offer(2, &["cycling"], None, false),
            ],
            &t,
        );
        let records = [interest("cycling", false)];
        let p = Profile::from_records(&records, &t);
        let out = match_member(&cat, &p, &t, now(), Mode::Prefilter);
        assert_eq!(ids(&out), vec![2]);
        assert_eq!(out.rule_failures, 1);
    }

    #[test]
    fn age_bands() {
        let n = Timestamp::from_unix_millis(1_795_000_000_000); // 2026-11
        assert_eq!(age_band(Some(1990), n), "35-44");
        assert_eq!(age_band(Some(2015), n), "under-18");
        assert_eq!(age_band(Some(1940), n), "65+");
        assert_eq!(age_band(None, n), "");
    }
}
