//! The web layer's one error type, answered as a plain page. Messages are
//! fixed texts: they never echo what was sent and carry no personal data.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("this page does not exist, or is not yours")]
    NotFound,
    #[error("this form could not be accepted: it came from another site, or the page was open too long; go back, reload the page and try again")]
    Forbidden,
    #[error("the form is larger than this node accepts")]
    TooLarge,
    #[error("too many attempts; wait a minute and try again")]
    TooManyRequests,
    #[error("this changed meanwhile; reload the page and try again")]
    Conflict,
    #[error("something went wrong on the node; try again later")]
    Internal,
    #[error("this API key lacks the role this view needs; ask your organisation's administrator for a key with it")]
    RoleMissing,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RoleMissing => StatusCode::FORBIDDEN,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Forbidden => "Form refused",
            Self::TooLarge => "Too large",
            Self::TooManyRequests => "Please wait",
            Self::Conflict => "Changed meanwhile",
            Self::Internal => "Something went wrong",
            Self::RoleMissing => "Role needed",
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    l: crate::pages::Layout,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let page = ErrorPage {
            l: crate::pages::Layout::bare(self.title()),
            message: &message,
        };
        match page.render() {
            Ok(html) => (self.status(), Html(html)).into_response(),
            Err(_) => (self.status(), message).into_response(),
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(_: askama::Error) -> Self {
        tracing::error!("a page could not be rendered");
        Self::Internal
    }
}

impl From<me2b_vault::VaultError> for WebError {
    fn from(e: me2b_vault::VaultError) -> Self {
        use me2b_vault::VaultError as V;
        match e {
            V::RecordNotFound => Self::NotFound,
            V::RevisionConflict { .. } => Self::Conflict,
            other => {
                tracing::error!(error = %other, "vault error");
                Self::Internal
            }
        }
    }
}

impl From<me2b_consent::service::ServiceError> for WebError {
    fn from(e: me2b_consent::service::ServiceError) -> Self {
        use me2b_consent::service::ServiceError as S;
        match e {
            S::RequestNotFound | S::ConsentNotFound => Self::NotFound,
            S::AlreadyAnswered | S::NotInForce | S::Conflict => Self::Conflict,
            other => {
                tracing::error!(error = %other, "consent error");
                Self::Internal
            }
        }
    }
}

impl From<me2b_offers::OfferError> for WebError {
    fn from(e: me2b_offers::OfferError) -> Self {
        use me2b_offers::OfferError as O;
        match e {
            O::NotFound => Self::NotFound,
            O::Conflict | O::NoContactRequest => Self::Conflict,
            O::Vault(v) => v.into(),
            other => {
                tracing::error!(error = %other, "offers error");
                Self::Internal
            }
        }
    }
}

impl From<me2b_trust::TrustError> for WebError {
    fn from(e: me2b_trust::TrustError) -> Self {
        use me2b_trust::TrustError as T;
        match e {
            T::NotFound(_) => Self::NotFound,
            other => {
                tracing::error!(error = %other, "trust error");
                Self::Internal
            }
        }
    }
}

impl From<me2b_orgs::OrgError> for WebError {
    fn from(e: me2b_orgs::OrgError) -> Self {
        tracing::error!(error = %e, "organisations error");
        Self::Internal
    }
}
