//! `me2b optout card` and `me2b breach report` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

fn scan_pdf(pdf: &[u8]) -> String {
    let (w, h, img) = me2b_server::card::pdf_qr_image(pdf, 2).expect("a QR code");
    let mut p = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
    let grids = p.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[test]
fn optout_card_writes_a_pdf_and_an_svg_whose_qr_code_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let rng = me2b_crypto::SeededRandom::new(1);
    let code = me2b_crypto::OptOutCode::generate(&rng).display();
    let recovery = me2b_crypto::RecoveryCode::generate(&rng).display();
    let out = dir.path().join("card");
    let st = Command::new(BIN)
        .env_clear()
        .env("ME2B_OPTOUT_CODE", code.to_lowercase())
        .env("ME2B_RECOVERY_CODE", &recovery)
        .args(["optout", "card", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let pdf = std::fs::read(dir.path().join("card.pdf")).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("card.svg")).unwrap();
    assert_eq!(scan_pdf(&pdf), code);
    assert!(svg.contains(&code) && svg.contains(&recovery));
    // The recovery code is on a page of its own (to keep at home), not the
    // front that is handed to a till.
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("/Count 2"));
    let front_end = text.find("endstream").unwrap();
    assert!(!text[..front_end].contains(&recovery));
    assert!(text[front_end..].contains(&recovery));
    // Never overwritten; a mistyped code is refused.
    let again = Command::new(BIN)
        .env_clear()
        .args(["optout", "card", "--code", &code, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let typo = Command::new(BIN)
        .env_clear()
        .args([
            "optout",
            "card",
            "--code",
            &code.replace('-', "").chars().rev().collect::<String>(),
            "--out",
        ])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!typo.status.success());
}
