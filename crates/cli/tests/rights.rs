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

/// A seeded incident: audit entries about four members, three of them
/// inside the window, one organisation reading e-mail addresses under consent.
#[tokio::test]
async fn breach_report_on_a_seeded_incident() {
    use me2b_domain::audit::{Action, Actor, AuditEvent};
    use me2b_domain::{FixedClock, MemberId, OrgId, Timestamp};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = me2b_node::NodeConfig::new(dir.path());
    cfg.passphrase = me2b_crypto::PassphraseParams::INSECURE_FAST_FOR_TESTS;
    let t0 = Timestamp::parse_rfc3339("2026-11-30T00:00:00Z").unwrap();
    let clock = Arc::new(FixedClock::at(t0));
    let rng = Arc::new(me2b_crypto::SeededRandom::new(9));
    let node = me2b_node::Node::open(&cfg, clock.clone(), rng.clone())
        .await
        .unwrap();
    let m: Vec<MemberId> = (0..4).map(|_| MemberId::generate(rng.as_ref())).collect();
    let org = OrgId::generate(rng.as_ref());
    clock.advance_seconds(3600);
    for who in &m[..2] {
        node.audit
            .record(
                AuditEvent::new(Actor::Member(*who), Action::RecordRead)
                    .subject(*who)
                    .object("r"),
            )
            .await
            .unwrap();
    }
    node.audit
        .record(
            AuditEvent::new(Actor::Organisation(org), Action::ConsentDecision)
                .subject(m[2])
                .terms("direct-marketing", "email-address", "use"),
        )
        .await
        .unwrap();
    clock.advance_seconds(5 * 3600);
    node.audit
        .record(AuditEvent::new(Actor::Member(m[3]), Action::RecordRead).subject(m[3]))
        .await
        .unwrap();
    let keys = node.keys.clone();
    node.shutdown().await;
    drop(node);

    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .env_clear()
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "breach",
                "report",
                "--from",
                "2026-11-30T00:30:00Z",
                "--to",
                "2026-11-30T03:00:00Z",
                "--detected",
                "2026-11-30T06:00:00Z",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let r: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(r["members_affected"], 3, "{r}");
    assert_eq!(r["notify_authority_by"], "2026-12-03T06:00:00Z");
    let affected: Vec<&str> = r["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for who in &m[..3] {
        assert!(affected.contains(&me2b_audit::breach::member_pseudonym(&keys, who).as_str()));
    }
    assert!(!affected.contains(&me2b_audit::breach::member_pseudonym(&keys, &m[3]).as_str()));
    let text = r.to_string();
    for who in &m {
        assert!(
            !text.contains(&who.to_string()),
            "a member id in the report"
        );
    }
    assert_eq!(r["categories_read"], serde_json::json!(["email-address"]));
    assert!(r["authority_notice"]
        .as_str()
        .unwrap()
        .contains("approximately 3 member(s)"));
    assert!(r["member_notice"]
        .as_str()
        .unwrap()
        .contains("change your passphrase"));
    // One component only.
    let v: serde_json::Value =
        serde_json::from_str(&run(&["--json", "--component", "vault"])).unwrap();
    assert_eq!(v["members_affected"], 2);
    // As text, with both drafts.
    let md = run(&[]);
    assert!(
        md.contains("Draft notice to members")
            && md.contains("Draft notice to the supervisory authority")
    );
}
