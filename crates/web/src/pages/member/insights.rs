//! My insights: the member's spending by category and by month, computed
//! here from the receipts in their own vault (nothing leaves it), drawn as
//! SVG charts with the same numbers in tables.

use super::chart::{self, Bar};
use super::layout;
use crate::error::WebError;
use crate::pages::{render, Layout};
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use me2b_domain::record::{Receipt, RecordContent};
use std::collections::BTreeMap;

pub fn router() -> Router<WebState> {
    Router::new().route("/insights", get(page))
}

/// Months shown in the monthly chart (the newest ones).
const MONTHS: usize = 12;

/// Spending in one currency.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Spending {
    pub currency: String,
    /// Minor units by top-level category, and by month (`YYYY-MM`).
    pub by_category: BTreeMap<String, i64>,
    pub by_month: BTreeMap<String, i64>,
    pub total: i64,
    pub receipts: usize,
}

/// Sums the receipts' items (quantity × unit price) per currency, by the
/// first part of their category (`food.organic` → `food`) and by the month
/// of purchase.
pub fn spending<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> Vec<Spending> {
    let mut out: BTreeMap<String, Spending> = BTreeMap::new();
    for r in receipts {
        let currency = String::from(r.total.currency.clone());
        let month = r
            .purchased_at
            .timestamp()
            .to_rfc3339()
            .get(0..7)
            .unwrap_or("unknown")
            .to_owned();
        let s = out.entry(currency.clone()).or_insert_with(|| Spending {
            currency,
            ..Spending::default()
        });
        s.receipts += 1;
        for item in r.items.as_slice() {
            let amount = i64::from(u32::from(item.quantity))
                .saturating_mul(i64::from(item.unit_price.minor));
            let category = item
                .category
                .as_str()
                .split('.')
                .next()
                .unwrap_or("other")
                .to_owned();
            *s.by_category.entry(category).or_default() += amount;
            *s.by_month.entry(month.clone()).or_default() += amount;
            s.total = s.total.saturating_add(amount);
        }
    }
    // The currency with the most receipts first.
    let mut v: Vec<Spending> = out.into_values().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.receipts));
    v
}

/// An amount in minor units as a person reads it: `12.34 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", m / 100, m % 100)
}

/// A category slug as a heading: `home_garden` → `Home garden`.
fn category_name(slug: &str) -> String {
    let words = slug.replace(['_', '-'], " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// One currency's charts and tables.
#[derive(Debug)]
pub struct Section {
    pub currency: String,
    pub total: String,
    pub receipts: usize,
    pub categories: Vec<Bar>,
    pub months: Vec<Bar>,
    pub category_chart: String,
    pub month_chart: String,
}

fn section(s: &Spending, n: usize) -> Section {
    let cur = &s.currency;
    let mut categories: Vec<Bar> = s
        .by_category
        .iter()
        .map(|(k, v)| Bar {
            label: category_name(k),
            value: *v,
            shown: money(*v, cur),
        })
        .collect();
    categories.sort_by(|a, b| b.value.cmp(&a.value).then(a.label.cmp(&b.label)));
    let skip = s.by_month.len().saturating_sub(MONTHS);
    let months: Vec<Bar> = s
        .by_month
        .iter()
        .skip(skip)
        .map(|(k, v)| Bar {
            label: k.clone(),
            value: *v,
            shown: money(*v, cur),
        })
        .collect();
    let category_chart = chart::horizontal(
        &format!("cat-{n}"),
        &format!("Spending by category, in {cur}"),
        &format!(
            "One bar per category, longest for the most spent: {}.",
            categories
                .iter()
                .map(|b| format!("{} {}", b.label, b.shown))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        &categories,
    );
    let month_chart = chart::columns(
        &format!("month-{n}"),
        &format!("Spending by month, in {cur}"),
        &format!(
            "One column per month, oldest first: {}.",
            months
                .iter()
                .map(|b| format!("{} {}", b.label, b.shown))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        &months,
    );
    Section {
        currency: cur.clone(),
        total: money(s.total, cur),
        receipts: s.receipts,
        categories,
        months,
        category_chart,
        month_chart,
    }
}

#[derive(Template)]
#[template(path = "member_insights.html")]
struct InsightsPage {
    l: Layout,
    sections: Vec<Section>,
}

async fn page(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    let records = s.node.vault.all_records(&m.session).await?;
    let receipts = records.iter().filter_map(|r| match &r.content {
        RecordContent::Receipt(rc) => Some(rc),
        _ => None,
    });
    let sections = spending(receipts)
        .iter()
        .enumerate()
        .map(|(i, sp)| section(sp, i))
        .collect();
    render(&InsightsPage {
        l: layout("My insights", "insights", &m.csrf, None),
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(at: &str, items: &[(&str, u32, i64)]) -> Receipt {
        serde_json::from_value(serde_json::json!({
            "merchant": "Corner Co-op",
            "items": items.iter().map(|(c, q, p)| serde_json::json!({
                "name": "thing", "category": c, "quantity": q,
                "unit_price": {"minor": p, "currency": "EUR"}
            })).collect::<Vec<_>>(),
            "total": {"minor": 0, "currency": "EUR"},
            "purchased_at": at,
        }))
        .unwrap()
    }

    #[test]
    fn sums_by_top_level_category_and_month() {
        let a = receipt(
            "2026-10-03T10:00:00Z",
            &[("food.organic", 2, 250), ("household", 1, 1000)],
        );
        let b = receipt("2026-11-20T10:00:00Z", &[("food.bakery", 3, 100)]);
        let s = spending([&a, &b]);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.currency, "EUR");
        assert_eq!(s.by_category["food"], 800);
        assert_eq!(s.by_category["household"], 1000);
        assert_eq!(s.by_month["2026-10"], 1500);
        assert_eq!(s.by_month["2026-11"], 300);
        assert_eq!(s.total, 1800);
        assert_eq!(s.receipts, 2);
    }

    #[test]
    fn money_reads_as_units_and_cents() {
        assert_eq!(money(1805, "EUR"), "18.05 EUR");
        assert_eq!(money(7, "EUR"), "0.07 EUR");
        assert_eq!(category_name("home_garden"), "Home garden");
    }

    #[test]
    fn only_the_newest_months_are_drawn_and_largest_categories_first() {
        let rs: Vec<Receipt> = (1..=12)
            .flat_map(|m| {
                [
                    receipt(&format!("2025-{m:02}-01T00:00:00Z"), &[("a", 1, 100)]),
                    receipt(&format!("2026-{m:02}-01T00:00:00Z"), &[("b", 1, 200)]),
                ]
            })
            .collect();
        let s = spending(rs.iter());
        let sec = section(&s[0], 0);
        assert_eq!(sec.months.len(), MONTHS);
        assert_eq!(sec.months[0].label, "2026-01");
        assert_eq!(sec.categories[0].label, "B");
    }
}
