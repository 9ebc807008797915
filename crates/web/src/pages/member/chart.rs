//! Bar charts drawn on the server as SVG: no script, no chart library, no
//! inline style (presentation attributes only, which the CSP allows). Each
//! chart is an image with a title and a description for screen readers;
//! every bar carries its value as text, and the page shows the same
//! numbers in a table.

use std::fmt::Write as _;

/// One bar: its label, its value (for the length) and the value as shown.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub shown: String,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Length of a bar of `value` out of `max`, in `full` units (at least 1
/// for a positive value, so it stays visible).
fn length(value: i64, max: i64, full: i64) -> i64 {
    if value <= 0 || max <= 0 {
        return 0;
    }
    (value.saturating_mul(full) / max).max(1)
}

fn open(id: &str, title: &str, desc: &str, w: i64, h: i64) -> String {
    let id = esc(id);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\
<title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(desc)
    )
}

/// Horizontal bars, one row per item, the label on the left and the value
/// at the end of the bar.
pub fn horizontal(id: &str, title: &str, desc: &str, bars: &[Bar]) -> String {
    const ROW: i64 = 28;
    const LABEL: i64 = 170;
    const FULL: i64 = 300;
    let w = LABEL + FULL + 110;
    let h = ROW * bars.len().max(1) as i64 + 8;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let mut out = open(id, title, desc, w, h);
    for (i, b) in bars.iter().enumerate() {
        let y = 4 + ROW * i as i64;
        let len = length(b.value, max, FULL);
        let _ = write!(
            out,
            "<g><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"14\" fill=\"#1b1b1b\">{}</text>\
<rect x=\"{LABEL}\" y=\"{}\" width=\"{len}\" height=\"18\" fill=\"#0a4fa8\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"14\" fill=\"#1b1b1b\">{}</text></g>",
            LABEL - 8,
            y + 14,
            esc(&b.label),
            y + 1,
            LABEL + len + 6,
            y + 14,
            esc(&b.shown)
        );
    }
    out.push_str("</svg>");
    out
}

/// Vertical columns, one per item (months, oldest first), the value above
/// each column and the label below.
pub fn columns(id: &str, title: &str, desc: &str, bars: &[Bar]) -> String {
    const COL: i64 = 64;
    const FULL: i64 = 180;
    let w = COL * bars.len().max(1) as i64 + 16;
    let h = FULL + 60;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let base = FULL + 28;
    let mut out = open(id, title, desc, w, h);
    let _ = write!(
        out,
        "<line x1=\"8\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#4a4a4a\"/>",
        w - 8
    );
    for (i, b) in bars.iter().enumerate() {
        let x = 8 + COL * i as i64;
        let len = length(b.value, max, FULL);
        let mid = x + COL / 2;
        let _ = write!(
            out,
            "<g><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{len}\" fill=\"#0a4fa8\"/>\
<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#1b1b1b\">{}</text>\
<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#1b1b1b\">{}</text></g>",
            x + 10,
            base - len,
            COL - 20,
            base - len - 6,
            esc(&b.shown),
            base + 18,
            esc(&b.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: i64) -> Bar {
        Bar {
            label: label.into(),
            value,
            shown: format!("{value}"),
        }
    }

    #[test]
    fn bars_are_as_long_as_their_share_of_the_largest() {
        assert_eq!(length(50, 100, 300), 150);
        assert_eq!(length(100, 100, 300), 300);
        assert_eq!(
            length(1, 1_000_000, 300),
            1,
            "a positive value stays visible"
        );
        assert_eq!(length(0, 100, 300), 0);
        assert_eq!(length(5, 0, 300), 0);
        let svg = horizontal("c", "t", "d", &[bar("a", 100), bar("b", 50)]);
        assert!(svg.contains("width=\"300\" height=\"18\""));
        assert!(svg.contains("width=\"150\" height=\"18\""));
    }

    #[test]
    fn text_is_escaped_and_the_chart_is_labelled() {
        let svg = columns("m", "Spending <by> month", "d & e", &[bar("<script>", 3)]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("<title id=\"m-title\">Spending &lt;by&gt; month</title>"));
        assert!(svg.contains("<desc id=\"m-desc\">d &amp; e</desc>"));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"m-title m-desc\""));
        assert!(!svg.contains("style"), "the CSP forbids inline style");
    }

    #[test]
    fn an_empty_chart_is_still_valid() {
        let svg = horizontal("e", "t", "d", &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
