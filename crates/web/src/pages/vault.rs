//! The vault: view, add, correct and delete records.

use super::{render, render_invalid, when, Done, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use me2b_domain::record::{Interest, Note, ProfileAttribute, RecordContent};
use me2b_domain::text::{Label, LongText, Slug};
use me2b_domain::RecordId;
use me2b_vault::{RecordView, VaultError};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/vault", get(list).post(add))
        .route("/vault/{id}/edit", get(edit_page).post(edit))
        .route("/vault/{id}/delete", get(delete_page).post(delete))
}

/// One record as a line of the list.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub kind: &'static str,
    pub title: String,
    pub detail: String,
    pub updated: String,
    pub editable: bool,
}

fn row(r: &RecordView) -> Row {
    let (kind, title, detail, editable) = match &r.content {
        RecordContent::ProfileAttribute(a) => (
            "Profile detail",
            a.name.as_str().replace('_', " "),
            a.value.as_str().to_owned(),
            true,
        ),
        RecordContent::Interest(i) => (
            "Interest",
            i.topic.as_str().to_owned(),
            i.note
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            true,
        ),
        RecordContent::Note(n) => (
            "Note",
            n.title
                .as_ref()
                .map_or("Untitled".into(), |t| t.as_str().to_owned()),
            n.text.as_str().to_owned(),
            true,
        ),
        RecordContent::Receipt(rc) => (
            "Receipt",
            rc.merchant.as_str().to_owned(),
            format!("{} item(s)", rc.items.as_slice().len()),
            false,
        ),
        RecordContent::Credential(c) => (
            "Credential",
            c.issuer.as_str().to_owned(),
            "A membership credential".into(),
            false,
        ),
        RecordContent::OfferHistory(_) => (
            "Offer history",
            "Your answers to offers".into(),
            "Kept only in your vault".into(),
            false,
        ),
        RecordContent::Intent(_) => (
            "Request for proposal",
            "One of your intents".into(),
            "Its answers are listed with your intents".into(),
            false,
        ),
    };
    Row {
        id: r.id.to_string(),
        kind,
        title,
        detail,
        updated: when(r.updated_at),
        editable,
    }
}

/// What the add and correct forms hold: every field as typed.
#[derive(Debug, Default, Deserialize)]
pub struct RecordForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub revision: String,
}

impl RecordForm {
    fn of(c: &RecordContent) -> Self {
        match c {
            RecordContent::ProfileAttribute(a) => Self {
                kind: "profile_attribute".into(),
                name: a.name.as_str().into(),
                value: a.value.as_str().into(),
                ..Self::default()
            },
            RecordContent::Interest(i) => Self {
                kind: "interest".into(),
                topic: i.topic.as_str().into(),
                ..Self::default()
            },
            RecordContent::Note(n) => Self {
                kind: "note".into(),
                title: n
                    .title
                    .as_ref()
                    .map(|t| t.as_str().into())
                    .unwrap_or_default(),
                text: n.text.as_str().into(),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }

    /// Parses the form into a record, or says what is wrong next to each field.
    fn parse(&self, errors: &mut FieldErrors) -> Option<RecordContent> {
        const NAME: &str = "Use 1 to 64 lower-case letters, digits or _ . : - (for example given_name), starting with a letter or digit.";
        const VALUE: &str = "Enter a value of 1 to 200 characters, on one line.";
        match self.kind.as_str() {
            "profile_attribute" => {
                let name = Slug::try_from(self.name.trim()).map_err(|_| errors.add("name", NAME));
                let value =
                    Label::try_from(self.value.as_str()).map_err(|_| errors.add("value", VALUE));
                Some(RecordContent::ProfileAttribute(ProfileAttribute {
                    name: name.ok()?,
                    value: value.ok()?,
                }))
            }
            "interest" => {
                let topic = Slug::try_from(self.topic.trim())
                    .map_err(|_| errors.add("topic", "Choose a topic from the list."))
                    .ok()?;
                Some(RecordContent::Interest(Interest {
                    topic,
                    note: None,
                    source: Default::default(),
                    explicit_consent: false,
                }))
            }
            "note" => {
                let title = if self.title.trim().is_empty() {
                    Ok(None)
                } else {
                    Label::try_from(self.title.as_str()).map(Some).map_err(|_| {
                        errors.add("title", "A title is at most 200 characters, on one line.")
                    })
                };
                let text = LongText::try_from(self.text.as_str())
                    .map_err(|_| errors.add("text", "Write the note: 1 to 20,000 characters."));
                Some(RecordContent::Note(Note {
                    title: title.ok()?,
                    text: text.ok()?,
                }))
            }
            _ => {
                errors.add("kind", "Choose what kind of record to add.");
                None
            }
        }
    }
}

/// A topic of the taxonomy members can declare here (sensitive topics
/// need explicit consent, given in the API, and are not offered).
#[derive(Debug)]
pub struct TopicOption {
    pub slug: String,
    pub path: String,
}

#[derive(Template)]
#[template(path = "vault.html")]
struct VaultPage {
    l: Layout,
    rows: Vec<Row>,
    topics: Vec<TopicOption>,
    /// The add form as typed, and its errors.
    f: RecordForm,
    errors: FieldErrors,
    /// Who was told of the member's corrections, newest first.
    corrections: Vec<Correction>,
}

/// One recipient told of a correction (GDPR Art. 19), as shown.
struct Correction {
    recipient: String,
    category: String,
    status: &'static str,
    class: &'static str,
    symbol: &'static str,
    detail: String,
}

/// `2026-12-05T05:30:00Z` → `2026-12-05 05:30 UTC`.
fn shown(t: Option<&str>) -> String {
    let t = t.unwrap_or_default();
    match (t.get(0..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => t.to_owned(),
    }
}

fn corrections(list: Vec<me2b_consent::service::MemberRectification>) -> Vec<Correction> {
    use me2b_consent::service::ErasureStatus as S;
    list.into_iter()
        .map(|r| {
            let (status, class, symbol, detail) = match r.status {
                S::Waiting => (
                    "Waiting",
                    "waiting",
                    "…",
                    "The notice leaves with the next batch.".to_owned(),
                ),
                S::Pending => (
                    "Pending",
                    "pending",
                    "◷",
                    format!(
                        "Told on {}; must confirm by {}.",
                        shown(r.released_at.as_deref()),
                        shown(r.confirm_by.as_deref())
                    ),
                ),
                S::Confirmed => (
                    "Confirmed",
                    "confirmed",
                    "✓",
                    format!(
                        "Confirmed the correction on {}.",
                        shown(r.confirmed_at.as_deref())
                    ),
                ),
                S::Overdue => (
                    "Overdue",
                    "overdue",
                    "!",
                    format!(
                        "Did not confirm by {}. You may complain to your data protection authority.",
                        shown(r.confirm_by.as_deref())
                    ),
                ),
            };
            Correction {
                recipient: r.recipient,
                category: r.category,
                status,
                class,
                symbol,
                detail,
            }
        })
        .collect()
}

fn topics(s: &WebState) -> Vec<TopicOption> {
    s.node
        .offers
        .taxonomy()
        .topics()
        .iter()
        .filter(|t| t.sensitive.is_none())
        .map(|t| TopicOption {
            slug: t.slug.clone(),
            path: t.path.trim_start_matches('/').replace('/', " › "),
        })
        .collect()
}

async fn vault_page(
    s: &WebState,
    m: &WebMember,
    f: RecordForm,
    errors: FieldErrors,
    done: Option<&str>,
) -> Result<VaultPage, WebError> {
    let records = s
        .node
        .vault
        .list_records(&m.session, 0, me2b_vault::MAX_PAGE)
        .await?;
    Ok(VaultPage {
        l: Layout::member("Your vault", "vault", &m.csrf).with_notice(done),
        rows: records.iter().map(row).collect(),
        topics: topics(s),
        f,
        errors,
        corrections: corrections(s.node.consents.rectifications_of(&m.session).await?),
    })
}

async fn list(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let page = vault_page(
        &s,
        &m,
        RecordForm::default(),
        FieldErrors::default(),
        q.done.as_deref(),
    )
    .await?;
    render(&page)
}

/// The field a service refusal of well-formed content is about.
fn content_field(field: &'static str) -> &'static str {
    match field {
        f if f.contains("topic") => "topic",
        f if f.contains("name") => "name",
        f if f.contains("title") => "title",
        f if f.contains("text") => "text",
        _ => "value",
    }
}

async fn add(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<RecordForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    if let Some(content) = f.parse(&mut errors) {
        match s.node.vault.create_record(&m.session, content).await {
            Ok(_) => return Ok(Redirect::to("/vault?done=added").into_response()),
            Err(VaultError::InvalidContent { field, .. }) => {
                errors.add(content_field(field), "This value is not accepted here.");
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_invalid(&vault_page(&s, &m, f, errors, None).await?)
}

fn record_id(raw: &str) -> Result<RecordId, WebError> {
    raw.parse().map_err(|_| WebError::NotFound)
}

#[derive(Template)]
#[template(path = "record_edit.html")]
struct EditPage {
    l: Layout,
    id: String,
    kind: &'static str,
    topics: Vec<TopicOption>,
    f: RecordForm,
    errors: FieldErrors,
}

async fn edit_page(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = s
        .node
        .vault
        .read_record(&m.session, record_id(&id)?)
        .await?;
    let shown = row(&r);
    if !shown.editable {
        return Err(WebError::NotFound);
    }
    let mut f = RecordForm::of(&r.content);
    f.revision = r.revision.to_string();
    render(&EditPage {
        l: Layout::member("Correct a record", "vault", &m.csrf),
        id: shown.id,
        kind: shown.kind,
        topics: topics(&s),
        f,
        errors: FieldErrors::default(),
    })
}

async fn edit(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
    Form(mut f): Form<RecordForm>,
) -> Result<Response, WebError> {
    let rid = record_id(&id)?;
    // The kind is the stored record's, whatever the form says.
    let current = s.node.vault.read_record(&m.session, rid).await?;
    let shown = row(&current);
    if !shown.editable {
        return Err(WebError::NotFound);
    }
    f.kind = RecordForm::of(&current.content).kind;
    let mut errors = FieldErrors::default();
    if let Some(content) = f.parse(&mut errors) {
        let revision = f.revision.parse::<i64>().ok();
        match s
            .node
            .vault
            .update_record(
                &m.session,
                rid,
                content,
                revision.or(Some(current.revision)),
            )
            .await
        {
            Ok(_) => return Ok(Redirect::to("/vault?done=saved").into_response()),
            Err(VaultError::InvalidContent { field, .. }) => {
                errors.add(content_field(field), "This value is not accepted here.");
            }
            Err(VaultError::RevisionConflict { .. }) => {
                errors.add(
                    "",
                    "This record changed meanwhile (in another window?). What you typed is kept below; the record now holds a newer version. Save again to replace it.",
                );
                f.revision = current.revision.to_string();
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_invalid(&EditPage {
        l: Layout::member("Correct a record", "vault", &m.csrf),
        id: shown.id,
        kind: shown.kind,
        topics: topics(&s),
        f,
        errors,
    })
}

#[derive(Template)]
#[template(path = "record_delete.html")]
struct DeletePage {
    l: Layout,
    r: Row,
}

async fn delete_page(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = s
        .node
        .vault
        .read_record(&m.session, record_id(&id)?)
        .await?;
    render(&DeletePage {
        l: Layout::member("Delete a record", "vault", &m.csrf),
        r: row(&r),
    })
}

async fn delete(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    s.node
        .vault
        .delete_record(&m.session, record_id(&id)?)
        .await?;
    Ok(Redirect::to("/vault?done=deleted").into_response())
}
