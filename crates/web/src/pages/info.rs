//! Public pages: the start page and the plain-language privacy notice.

use super::{render, Layout};
use crate::error::WebError;
use crate::session::Visitor;
use crate::WebState;
use askama::Template;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(super::auth::home))
        .route("/privacy", get(privacy))
}

#[derive(Template)]
#[template(path = "privacy.html")]
struct Privacy {
    l: Layout,
}

async fn privacy(v: Visitor) -> Result<Response, WebError> {
    let mut l = Layout::visitor("Privacy notice", &v.csrf);
    l.member = v.logged_in;
    l.section = "privacy";
    render(&Privacy { l })
}
