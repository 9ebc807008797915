//! The "fair economy" interest taxonomy, shipped with the node.
//!
//! `taxonomy/fair-economy.tsv` starts from the public Topics taxonomy v2 (its ids
//! are kept) and adds co-operative and ethical-consumer topics (ids from 10000).
//! Every topic that touches a GDPR Art. 9 special category names that category;
//! descendants inherit it, so `/Health/Diabetes` is sensitive because `/Health` is.
//!
//! Topics are addressed by a dense index ([`TopicIdx`]) so that a set of topics is
//! a fixed-size bitset ([`TopicSet`]), which is what the matching prefilter uses.

use crate::OfferError;
use serde::Serialize;
use std::collections::HashMap;

const SHIPPED: &str = include_str!("../taxonomy/fair-economy.tsv");
const CATEGORY_MAP: &str = include_str!("../taxonomy/category-map.tsv");

/// Words in a [`TopicSet`]: room for 1024 topics.
pub const TOPIC_WORDS: usize = 16;
/// The largest taxonomy a [`TopicSet`] can hold.
pub const MAX_TOPICS: usize = TOPIC_WORDS * 64;

/// A topic's position in the loaded taxonomy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicIdx(u16);

impl TopicIdx {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A set of topics as a bitset.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicSet([u64; TOPIC_WORDS]);

impl std::fmt::Debug for TopicSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(|t| t.0)).finish()
    }
}

impl TopicSet {
    pub fn insert(&mut self, t: TopicIdx) {
        let i = t.index();
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
    }

    pub fn contains(&self, t: TopicIdx) -> bool {
        let i = t.index();
        self.0
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    pub fn intersects(&self, other: &TopicSet) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    pub fn union_with(&mut self, other: &TopicSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = TopicIdx> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, w)| {
            (0..64u16).filter_map(move |b| {
                if w & (1u64 << b) != 0 {
                    u16::try_from(wi * 64).ok().map(|base| TopicIdx(base + b))
                } else {
                    None
                }
            })
        })
    }
}

/// One topic of the taxonomy.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Topic {
    /// Stable id: the Topics v2 id for topics taken from it, 10000 and up for ours.
    pub id: u32,
    /// Stable name used in vault interests and in targeting rules.
    pub slug: String,
    /// Full path, e.g. `/Sports/Cycling`.
    pub path: String,
    /// The last path segment, for display.
    pub name: String,
    /// The parent topic's slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The GDPR Art. 9 special category (DPV id) this topic touches, its own or
    /// inherited from an ancestor. Sensitive topics are never derived from
    /// receipts and never targeted without the member's explicit consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<String>,
    /// `topics-v2` or `me2b`.
    pub source: String,
    #[serde(skip)]
    parent_idx: Option<TopicIdx>,
    /// Flagged in its own row, not only through an ancestor.
    #[serde(skip)]
    pub own_sensitive: bool,
}

/// The loaded taxonomy.
#[derive(Debug)]
pub struct Taxonomy {
    topics: Vec<Topic>,
    by_slug: HashMap<String, TopicIdx>,
    /// Each topic with its ancestors.
    lineage: Vec<TopicSet>,
    sensitive: TopicSet,
    /// Receipt item category -> topic.
    category_map: HashMap<String, TopicIdx>,
}

impl Taxonomy {
    /// The taxonomy shipped in this build.
    pub fn shipped() -> Result<Self, OfferError> {
        Self::parse(SHIPPED, CATEGORY_MAP)
    }

    /// Parses a taxonomy and a category map in the shipped TSV formats.
    pub fn parse(tsv: &str, category_map: &str) -> Result<Self, OfferError> {
        let bad = |line: usize, why: &str| OfferError::Taxonomy(format!("line {line}: {why}"));
        let mut topics: Vec<Topic> = Vec::new();
        let mut by_slug = HashMap::new();
        let mut by_path: HashMap<String, TopicIdx> = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for (n, line) in data_lines(tsv) {
            let cols: Vec<&str> = line.split('\t').collect();
            let [id, slug, path, sensitive, source] = cols[..] else {
                return Err(bad(n, "expected 5 tab-separated columns"));
            };
            let id: u32 = id.parse().map_err(|_| bad(n, "id is not a number"))?;
            if !ids.insert(id) {
                return Err(bad(n, "duplicate id"));
            }
            if me2b_domain::text::Slug::try_from(slug).is_err() {
                return Err(bad(n, "slug is not a valid slug"));
            }
            if !path.starts_with('/') || path.ends_with('/') {
                return Err(bad(n, "path must start with / and not end with it"));
            }
            let (parent_path, name) = path.rsplit_once('/').unwrap_or(("", path));
            let parent_idx = if parent_path.is_empty() {
                None
            } else {
                // Rows are sorted by path, so a parent comes before its children.
                Some(
                    *by_path
                        .get(parent_path)
                        .ok_or_else(|| bad(n, "parent path is missing or listed later"))?,
                )
            };
            let idx = TopicIdx(
                u16::try_from(topics.len())
                    .ok()
                    .filter(|i| usize::from(*i) < MAX_TOPICS)
                    .ok_or_else(|| bad(n, "too many topics"))?,
            );
            if by_slug.insert(slug.to_owned(), idx).is_some() {
                return Err(bad(n, "duplicate slug"));
            }
            by_path.insert(path.to_owned(), idx);
            let inherited = parent_idx.and_then(|p| {
                topics
                    .get(p.index())
                    .and_then(|t: &Topic| t.sensitive.clone())
            });
            let own = (!sensitive.is_empty()).then(|| sensitive.to_owned());
            topics.push(Topic {
                id,
                slug: slug.to_owned(),
                path: path.to_owned(),
                name: name.to_owned(),
                parent: parent_idx.and_then(|p| topics.get(p.index()).map(|t| t.slug.clone())),
                own_sensitive: own.is_some(),
                sensitive: own.or(inherited),
                source: source.to_owned(),
                parent_idx,
            });
        }
        let mut lineage = Vec::with_capacity(topics.len());
        let mut sensitive = TopicSet::default();
        for (i, t) in topics.iter().enumerate() {
            let idx = TopicIdx(u16::try_from(i).unwrap_or(u16::MAX));
            let mut set = TopicSet::default();
            set.insert(idx);
            if let Some(p) = t.parent_idx {
                if let Some(parent) = lineage.get(p.index()) {
                    set.union_with(parent);
                }
            }
            lineage.push(set);
            if t.sensitive.is_some() {
                sensitive.insert(idx);
            }
        }
        let mut map = HashMap::new();
        for (n, line) in data_lines(category_map) {
            let Some((category, slug)) = line.split_once('\t') else {
                return Err(bad(n, "category map: expected 2 columns"));
            };
            if category == "category" {
                continue;
            }
            let idx = by_slug
                .get(slug)
                .ok_or_else(|| bad(n, "category map names an unknown topic"))?;
            map.insert(category.to_owned(), *idx);
        }
        Ok(Self {
            topics,
            by_slug,
            lineage,
            sensitive,
            category_map: map,
        })
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    pub fn get(&self, idx: TopicIdx) -> Option<&Topic> {
        self.topics.get(idx.index())
    }

    pub fn by_slug(&self, slug: &str) -> Option<TopicIdx> {
        self.by_slug.get(slug).copied()
    }

    pub fn slug(&self, idx: TopicIdx) -> &str {
        self.get(idx).map(|t| t.slug.as_str()).unwrap_or("")
    }

    pub fn name(&self, idx: TopicIdx) -> &str {
        self.get(idx).map(|t| t.name.as_str()).unwrap_or("")
    }

    /// The Art. 9 category the topic touches, if any.
    pub fn sensitive_category(&self, idx: TopicIdx) -> Option<&str> {
        self.get(idx).and_then(|t| t.sensitive.as_deref())
    }

    pub fn is_sensitive(&self, idx: TopicIdx) -> bool {
        self.sensitive.contains(idx)
    }

    /// The topic and all its ancestors.
    pub fn lineage(&self, idx: TopicIdx) -> TopicSet {
        self.lineage.get(idx.index()).copied().unwrap_or_default()
    }

    /// Whether `ancestor` is `idx` or one of its ancestors.
    pub fn is_within(&self, idx: TopicIdx, ancestor: TopicIdx) -> bool {
        self.lineage(idx).contains(ancestor)
    }

    /// Whether any descendant of `idx` is sensitive (so targeting `idx` would
    /// reach them if the hierarchy were followed downwards).
    pub fn has_sensitive_descendant(&self, idx: TopicIdx) -> bool {
        self.sensitive
            .iter()
            .any(|s| s != idx && self.is_within(s, idx))
    }

    /// The topic a receipt item category maps to: the category itself when it is
    /// a topic slug, otherwise the longest mapped prefix (`food.organic.apples`
    /// -> `food.organic`).
    pub fn topic_for_category(&self, category: &str) -> Option<TopicIdx> {
        if let Some(t) = self.by_slug(category) {
            return Some(t);
        }
        let mut key = category;
        loop {
            if let Some(t) = self.category_map.get(key) {
                return Some(*t);
            }
            key = key.rsplit_once('.')?.0;
        }
    }
}

fn data_lines(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#') && !l.starts_with("id\t"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Taxonomy {
        Taxonomy::shipped().unwrap()
    }

    #[test]
    fn the_shipped_taxonomy_loads_with_topics_ids_and_our_topics() {
        let t = t();
        assert_eq!(
            t.topics()
                .iter()
                .filter(|t| t.source == "topics-v2")
                .count(),
            469
        );
        let cycling = t.get(t.by_slug("cycling").unwrap()).unwrap();
        assert_eq!(
            (cycling.id, cycling.path.as_str()),
            (310, "/Sports/Cycling")
        );
        assert_eq!(cycling.parent.as_deref(), Some("sports"));
        for slug in [
            "fair-trade",
            "organic",
            "local-produce",
            "co-op-owned",
            "b-corp",
            "second-hand",
            "repair",
        ] {
            let idx = t.by_slug(slug).unwrap();
            assert!(!t.is_sensitive(idx), "{slug}");
        }
    }

    #[test]
    fn sensitive_topics_name_their_category_and_children_inherit_it() {
        let t = t();
        let diabetes = t.by_slug("diabetes").unwrap();
        assert_eq!(t.sensitive_category(diabetes), Some("health"));
        assert_eq!(
            t.sensitive_category(t.by_slug("halal-food").unwrap()),
            Some("religious-belief")
        );
        assert_eq!(
            t.sensitive_category(t.by_slug("babies-and-toddlers").unwrap()),
            Some("health")
        );
        assert_eq!(
            t.sensitive_category(t.by_slug("politics").unwrap()),
            Some("political-opinion")
        );
        // Every category named is a special category of the shipped DPV subset.
        let vocab = me2b_consent::Vocabulary::shipped().unwrap();
        for topic in t.topics() {
            if let Some(c) = &topic.sensitive {
                assert!(vocab.is_special(c), "{} names {c}", topic.slug);
            }
        }
        // Parents of sensitive topics are flagged as such for the publish check.
        assert!(t.has_sensitive_descendant(t.by_slug("parenting").unwrap()));
        assert!(!t.has_sensitive_descendant(t.by_slug("cycling").unwrap()));
    }

    #[test]
    fn receipt_categories_map_by_slug_or_longest_prefix() {
        let t = t();
        let slug = |c: &str| t.topic_for_category(c).map(|i| t.slug(i).to_owned());
        assert_eq!(slug("food.organic.apples").as_deref(), Some("organic"));
        assert_eq!(slug("food.bread").as_deref(), Some("food"));
        assert_eq!(slug("cycling").as_deref(), Some("cycling"));
        assert_eq!(slug("bike.repair").as_deref(), Some("repair"));
        assert_eq!(slug("unknown.thing"), None);
    }

    #[test]
    fn malformed_taxonomies_are_refused_with_the_line() {
        let cases = [
            ("1\tx\t/X\t\n", "5 tab-separated"),
            ("1\tx\t/X\t\tme2b\n1\ty\t/Y\t\tme2b\n", "duplicate id"),
            ("1\tx\t/X/Y\t\tme2b\n", "parent path"),
            ("1\tX Y\t/X\t\tme2b\n", "slug"),
            ("one\tx\t/X\t\tme2b\n", "not a number"),
        ];
        for (tsv, why) in cases {
            let err = Taxonomy::parse(tsv, "").unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("line "), "{err}");
        }
    }

    #[test]
    fn topic_sets_behave_like_sets() {
        let mut a = TopicSet::default();
        assert!(a.is_empty());
        a.insert(TopicIdx(3));
        a.insert(TopicIdx(700));
        let mut b = TopicSet::default();
        b.insert(TopicIdx(700));
        assert!(a.intersects(&b));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![TopicIdx(3), TopicIdx(700)]
        );
        b.insert(TopicIdx(5));
        b.union_with(&a);
        assert_eq!(b.iter().count(), 3);
    }
}
