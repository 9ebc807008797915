//! The printable opt-out card (issue 15, item 5), as SVG and as PDF.
//!
//! The card's front carries the paper opt-out code, as text and as a QR code
//! (the code as printed, five groups of four), and how to use it: at the
//! node's public opt-out page, or handed to a co-op's till. The recovery
//! code, when given, goes on a separate part (SVG: below a cut line; PDF: a
//! second page) marked to stay at home: it opens the vault, so it must never
//! travel with a card that is shown to shop staff.
//!
//! The PDF is written directly (PDF 1.4, ISO 32000-1): one uncompressed
//! content stream per page of text in the standard Helvetica and Courier
//! fonts (not embedded) and the QR code's dark modules as filled squares
//! (`x y w h re f`). That is all a card needs, so no PDF library (and its
//! dependency tree) is taken on; the output is byte-for-byte deterministic.

use std::fmt::Write as _;

/// Quiet zone around the QR code, in modules.
const QUIET: usize = 4;

/// What goes on a card.
#[derive(Clone, Copy)]
pub struct CardInput<'a> {
    /// The opt-out code as printed (`XXXX-XXXX-XXXX-XXXX-XXXX`).
    pub optout_code: &'a str,
    /// The recovery code as shown at sign-up, if the member wants it on the card.
    pub recovery_code: Option<&'a str>,
    /// Where the public opt-out page is (the node's address), if known.
    pub optout_url: Option<&'a str>,
}

impl std::fmt::Debug for CardInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput(<secret>)")
    }
}

/// The QR code's modules (true: dark), row by row, and its width.
pub fn qr_modules(text: &str) -> Option<(Vec<bool>, usize)> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let w = code.width();
    Some((
        code.to_colors()
            .iter()
            .map(|c| *c == qrcode::Color::Dark)
            .collect(),
        w,
    ))
}

fn how_to(input: &CardInput<'_>) -> [String; 3] {
    [
        "To stop all direct marketing to you, at once:".to_owned(),
        match input.optout_url {
            Some(u) => format!("type this code at {u}/optout,"),
            None => "type this code at your node's opt-out page,".to_owned(),
        },
        "or hand this card to the till of any co-op of the federation.".to_owned(),
    ]
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The card as SVG (user units are points, 1/72 inch).
pub fn svg(input: &CardInput<'_>) -> Option<String> {
    let (modules, w) = qr_modules(input.optout_code)?;
    let m = 4usize; // points per module
    let qr_size = (w + 2 * QUIET) * m;
    let width = 440usize;
    let front = qr_size.max(170) + 20;
    let height = front
        + if input.recovery_code.is_some() {
            110
        } else {
            0
        };
    let mut d = String::new();
    for (i, dark) in modules.iter().enumerate() {
        if *dark {
            let _ = write!(
                d,
                "M{} {}h{m}v{m}h-{m}z",
                (i % w + QUIET) * m,
                (i / w + QUIET) * m
            );
        }
    }
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}pt\" height=\"{height}pt\" viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\">\
<rect width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>\
<rect x=\"1\" y=\"1\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000\"/>",
        width - 2,
        front - 2
    );
    let qx = width - qr_size - 10;
    let _ = write!(
        out,
        "<g transform=\"translate({qx} 10)\" shape-rendering=\"crispEdges\"><rect width=\"{qr_size}\" height=\"{qr_size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{d}\"/></g>"
    );
    let _ = write!(
        out,
        "<text x=\"14\" y=\"30\" font-size=\"15\" font-weight=\"bold\">Opt-out card</text>\
<text x=\"14\" y=\"66\" font-size=\"15\" font-family=\"Courier, monospace\" font-weight=\"bold\">{}</text>",
        xml_escape(input.optout_code)
    );
    for (i, line) in how_to(input).iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"14\" y=\"{}\" font-size=\"7.5\">{}</text>",
            96 + i * 12,
            xml_escape(line)
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{}\" font-size=\"6.5\">It only withdraws marketing consents: it opens nothing and shows nothing.</text>",
        96 + 3 * 12 + 4
    );
    if let Some(rc) = input.recovery_code {
        let y = front + 12;
        let _ = write!(
            out,
            "<line x1=\"0\" y1=\"{front}\" x2=\"{width}\" y2=\"{front}\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\
<text x=\"14\" y=\"{}\" font-size=\"7\">Cut here. Keep the part below at home: never show it, never hand it over.</text>\
<text x=\"14\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">Recovery code</text>\
<text x=\"14\" y=\"{}\" font-size=\"12\" font-family=\"Courier, monospace\" font-weight=\"bold\">{}</text>\
<text x=\"14\" y=\"{}\" font-size=\"7.5\">With your e-mail address it opens your vault if you forget your passphrase.</text>",
            y,
            y + 28,
            y + 52,
            xml_escape(rc),
            y + 76
        );
    }
    out.push_str("</svg>");
    Some(out)
}

fn pdf_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()) {
        if matches!(c, '\\' | '(' | ')') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn text_op(out: &mut String, font: &str, size: f32, x: usize, y: usize, s: &str) {
    let _ = writeln!(
        out,
        "BT /{font} {size} Tf {x} {y} Td ({}) Tj ET",
        pdf_text(s)
    );
}

/// The card as a PDF: the front on page one, the recovery code (if any) on
/// page two.
pub fn pdf(input: &CardInput<'_>) -> Option<Vec<u8>> {
    let (modules, w) = qr_modules(input.optout_code)?;
    let m = 4usize;
    let qr_size = (w + 2 * QUIET) * m;
    let (pw, ph) = (440usize, qr_size.max(170) + 20);
    let mut front = String::new();
    let _ = writeln!(front, "0 g 1 1 {} {} re S", pw - 2, ph - 2);
    text_op(&mut front, "F1", 15.0, 14, ph - 30, "Opt-out card");
    text_op(&mut front, "F3", 15.0, 14, ph - 66, input.optout_code);
    for (i, line) in how_to(input).iter().enumerate() {
        text_op(&mut front, "F1", 7.5, 14, ph - 96 - i * 12, line);
    }
    text_op(
        &mut front,
        "F1",
        6.5,
        14,
        ph - 96 - 3 * 12 - 4,
        "It only withdraws marketing consents: it opens nothing and shows nothing.",
    );
    // The QR code: its top-left module at (qx + QUIET·m, top - QUIET·m).
    let qx = pw - qr_size - 10;
    let top = ph - 10;
    for (i, dark) in modules.iter().enumerate() {
        if *dark {
            let (col, row) = (i % w, i / w);
            let x = qx + (col + QUIET) * m;
            let y = top - (row + QUIET + 1) * m;
            let _ = writeln!(front, "{x} {y} {m} {m} re f");
        }
    }
    let mut pages = vec![front];
    if let Some(rc) = input.recovery_code {
        let mut back = String::new();
        text_op(
            &mut back,
            "F1",
            7.0,
            14,
            ph - 20,
            "Keep this page at home: never show it, never hand it over.",
        );
        text_op(&mut back, "F2", 13.0, 14, ph - 50, "Recovery code");
        text_op(&mut back, "F3", 12.0, 14, ph - 76, rc);
        text_op(
            &mut back,
            "F1",
            7.5,
            14,
            ph - 100,
            "With your e-mail address it opens your vault if you forget your passphrase.",
        );
        pages.push(back);
    }
    Some(write_pdf(&pages, pw, ph))
}

/// A PDF of `pages` (content streams), each `w` × `h` points, with the fonts
/// F1 Helvetica, F2 Helvetica-Bold, F3 Courier-Bold.
fn write_pdf(pages: &[String], w: usize, h: usize) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3-5 fonts, then per page a page and a stream.
    let mut objects: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 6 + 2 * i))
        .collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".to_owned());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    for font in ["Helvetica", "Helvetica-Bold", "Courier-Bold"] {
        objects.push(format!(
            "<< /Type /Font /Subtype /Type1 /BaseFont /{font} /Encoding /WinAnsiEncoding >>"
        ));
    }
    for (i, content) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents {} 0 R >>",
            7 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Test support: the QR code printed on a PDF card, read back from its
/// content stream's squares as a greyscale image (`scale` pixels per point),
/// for a QR decoder. None when the page has no squares.
pub fn pdf_qr_image(pdf: &[u8], scale: usize) -> Option<(usize, usize, Vec<u8>)> {
    let text = String::from_utf8_lossy(pdf);
    let mut squares = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 6 && f[4] == "re" && f[5] == "f" {
            let n: Vec<usize> = f[..4].iter().filter_map(|v| v.parse().ok()).collect();
            if n.len() == 4 {
                squares.push((n[0], n[1], n[2], n[3]));
            }
        }
    }
    let (minx, maxx) = squares
        .iter()
        .fold((usize::MAX, 0), |(a, b), s| (a.min(s.0), b.max(s.0 + s.2)));
    let (miny, maxy) = squares
        .iter()
        .fold((usize::MAX, 0), |(a, b), s| (a.min(s.1), b.max(s.1 + s.3)));
    if squares.is_empty() {
        return None;
    }
    let pad = 16;
    let (wp, hp) = (maxx - minx + 2 * pad, maxy - miny + 2 * pad);
    let (wi, hi) = (wp * scale, hp * scale);
    let mut img = vec![255u8; wi * hi];
    for (x, y, w, h) in squares {
        // PDF's y grows upwards; the image's downwards.
        let x0 = (x - minx + pad) * scale;
        let y0 = (maxy - (y + h) + pad) * scale;
        for yy in y0..y0 + h * scale {
            for xx in x0..x0 + w * scale {
                if let Some(p) = img.get_mut(yy * wi + xx) {
                    *p = 0;
                }
            }
        }
    }
    Some((wi, hi, img))
}
