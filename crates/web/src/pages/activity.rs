//! "Who used my data": the member's own audit view (their entries, numbered
//! for them, to the minute), in plain language.

use super::{render, when, Layout};
use crate::error::WebError;
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use std::collections::HashMap;

pub fn router() -> Router<WebState> {
    Router::new().route("/activity", get(page))
}

/// One entry, in words.
#[derive(Debug)]
pub struct Line {
    pub number: u64,
    pub at: String,
    pub who: String,
    pub what: String,
    pub detail: String,
    pub outcome: &'static str,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    l: Layout,
    lines: Vec<Line>,
    more: bool,
}

/// Entries shown on the page, newest first.
const SHOWN: u64 = 200;

fn what(a: Action) -> &'static str {
    use Action as A;
    match a {
        A::MemberSignup | A::MemberSignupRequest => "Your account was opened",
        A::MemberLogin => "You logged in",
        A::MemberLoginFailed => "A login with your address failed",
        A::MemberLogout => "You logged out",
        A::MemberRead => "Your account details were read",
        A::MemberRecover => "You used your recovery code",
        A::DataKeyCreate | A::DataKeyRewrap => "The key of your vault was set up",
        A::RecordCreate => "A record was added to your vault",
        A::RecordRead | A::RecordList => "Your vault was read",
        A::RecordUpdate => "A record in your vault was corrected",
        A::RecordDelete => "A record was deleted from your vault",
        A::AuditRead => "You read this page",
        A::AccessDenied => "An access to your data was refused",
        A::ConsentGrant => "You gave consent",
        A::ConsentRefuse => "You refused a request",
        A::ConsentWithdraw => "You withdrew a consent",
        A::ConsentGpc => "Your browser's Global Privacy Control opted you out",
        A::ConsentDecision => "An organisation asked for your data",
        A::ConsentRead => "Your consents were read",
        A::ConsentEnvelopeSeal => "What you allow was sealed for an organisation",
        A::OfferMatch => "Offers were matched inside your vault",
        A::OfferAnswer => "You answered an offer",
        A::InterestSuggestionAnswer => "You answered an interest suggestion",
        A::TrustLoyalty => "Loyalty points moved",
        A::TrustSharing => "Your receipt sharing changed",
        A::TrustCrossSell => "A partner co-op received your receipts",
        A::TrustEnrol => "You got a card for a co-op",
        A::CredentialIssue => "A credential was put in your vault",
        A::CredentialPresent => "You showed a credential",
        _ => "Something happened to your account",
    }
}

async fn page(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    let also = s.node.trust.audit_subjects(m.session.member).await?;
    // The count first (a page of one), then the newest entries.
    let mut all = Vec::new();
    let mut skip = 0;
    loop {
        let view = s
            .node
            .vault
            .audit_view(&m.session, &also, skip, me2b_vault::MAX_PAGE)
            .await?;
        let n = view.entries.len() as u64;
        all.extend(view.entries);
        if n < me2b_vault::MAX_PAGE {
            break;
        }
        skip += n;
    }
    let orgs: HashMap<_, _> = s
        .node
        .orgs
        .list()
        .await?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    let v = s.node.consents.vocabulary();
    let term = |sec, id: &Option<String>| {
        id.as_deref().map(|i| {
            v.term(sec, i)
                .map_or(i.to_owned(), |t| t.label.to_lowercase())
        })
    };
    let more = all.len() as u64 > SHOWN;
    let lines = all
        .into_iter()
        .rev()
        .take(SHOWN as usize)
        .filter_map(|e| {
            let ev: AuditEvent = e.entry.event().ok()?;
            let who = match ev.actor {
                // At rest a member actor is named by the entry's audit
                // subject (issue 13), so the member is the actor whose name
                // is the subject of an entry about them.
                Actor::Member(id) if id == m.session.member || Some(id) == ev.subject => {
                    "You".to_owned()
                }
                Actor::Member(_) => "Another member".to_owned(),
                Actor::Organisation(o) => orgs
                    .get(&o)
                    .cloned()
                    .unwrap_or_else(|| "An organisation that left".into()),
                Actor::Operator => "The node's operator".into(),
                Actor::Node => "This node".into(),
                Actor::Anonymous => "Someone not logged in".into(),
            };
            use me2b_consent::vocabulary::Section;
            let mut detail = Vec::new();
            if let Some(c) = term(Section::Category, &ev.category) {
                detail.push(format!("your {c}"));
            }
            if let Some(p) = term(Section::Purpose, &ev.purpose) {
                detail.push(format!("for {p}"));
            }
            if let Some(n) = ev.count.filter(|n| *n > 1) {
                detail.push(format!("{n} times"));
            }
            Some(Line {
                number: e.number,
                at: when(e.minute),
                who,
                what: what(ev.action).to_owned(),
                detail: detail.join(", "),
                outcome: match ev.outcome {
                    Outcome::Ok => "Done",
                    Outcome::Denied => "Refused",
                    Outcome::Failed => "Failed",
                },
            })
        })
        .collect();
    render(&ActivityPage {
        l: Layout::member("Who used my data", "activity", &m.csrf),
        lines,
        more,
    })
}
