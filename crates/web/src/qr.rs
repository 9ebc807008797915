//! QR codes as SVG (the loyalty token at the till; the API draws the same).

/// Pixels per QR module in the SVG's default size.
const QR_SCALE: usize = 8;
/// The quiet zone around a QR code, in modules.
const QR_QUIET: usize = 4;

/// `text` as a QR code (error correction M), as SVG: one square path per
/// dark module, `M{x} {y}h1v1h-1z`, in module units with a quiet zone.
pub fn qr_svg(text: &str) -> Option<String> {
    use std::fmt::Write as _;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let w = code.width();
    let size = w + 2 * QR_QUIET;
    let mut d = String::new();
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let _ = write!(d, "M{} {}h1v1h-1z", i % w + QR_QUIET, i / w + QR_QUIET);
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{d}\"/></svg>",
        px = size * QR_SCALE
    ))
}
