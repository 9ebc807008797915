//! The member's own rights and tools (issue 16): export, erasure with each
//! recipient's status, the one-click and the paper opt-out, the passphrase
//! and its recovery, interests, insights from their own receipts, and
//! credentials. Each page calls the same service as its API route.

mod account;
mod chart;
mod credentials;
mod insights;
mod interests;
mod rights;

use super::Layout;
use crate::error::WebError;
use crate::WebState;
use axum::Router;

pub fn router() -> Router<WebState> {
    Router::new()
        .merge(rights::router())
        .merge(account::router())
        .merge(interests::router())
        .merge(insights::router())
        .merge(credentials::router())
}

/// The fixed message for `?done=<what>` on these pages: never the query's
/// own text.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "opted_out" => "You are opted out of all direct marketing. Every marketing consent was withdrawn, each with a signed receipt on your consents page.",
        "opted_in" => "Offers are matched for you again. Consents you withdrew stay withdrawn: grant anew the ones you want.",
        "passphrase" => "Your passphrase was changed. Every other session of yours has ended.",
        "accepted" => "The interest was added to your vault.",
        "rejected" => "The suggestion was rejected. It will not be suggested again.",
        _ => return None,
    })
}

/// A member's page frame with this module's notice.
fn layout(title: &'static str, section: &'static str, csrf: &str, done: Option<&str>) -> Layout {
    let mut l = Layout::member(title, section, csrf);
    l.notice = notice(done);
    l
}

/// An error of a service whose error type this crate does not match on:
/// logged (its kind only) and answered as a plain 500.
fn internal<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> WebError {
    move |e: E| {
        tracing::error!(error = %e, "{what} error");
        WebError::Internal
    }
}

/// An RFC 3339 time as a person reads it (UTC, to the minute).
fn shown_time(rfc3339: &str) -> String {
    match (rfc3339.get(0..10), rfc3339.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => rfc3339.to_owned(),
    }
}
