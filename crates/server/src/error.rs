//! The one mapping from errors to HTTP responses.
//!
//! Every error is JSON: `{"error": {"code": "...", "message": "..."}}`. Codes are
//! stable and documented in the OpenAPI document; messages never contain
//! personal data or echo request values.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use me2b_orgs::OrgError;
use me2b_vault::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Where in the submitted rule the problem is (rule errors only).
    pub position: Option<me2b_offers::Position>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code` and a human-readable `message`.
///
/// Codes: `malformed_json`, `invalid_body`, `unsupported_media_type`,
/// `payload_too_large`, `invalid_parameter`, `unauthenticated`, `invalid_token`,
/// `session_expired`, `invalid_credentials`, `organisation_forbidden`,
/// `member_only`, `api_key_revoked`, `not_found`, `method_not_allowed`,
/// `email_taken` (confirming an address that got an account meanwhile),
/// `unknown_confirmation`, `recovery_code_mistyped`, `revision_conflict`, `integrity_error`, `unavailable`,
/// `internal`; offers: `rule_syntax`, `rule_unknown_field`,
/// `rule_function_not_allowed`, `rule_type`, `rule_too_large`, `rule_too_costly`,
/// `rule_nested_macro`, `rule_sensitive_topic` (each with `position`),
/// `sensitive_topic`, `unknown_topic`, `not_a_party`, `offer_not_active`,
/// `no_contact_request`; trust: `over_budget`, `no_budget`, `below_threshold`,
/// `unknown_category`, `unknown_area`, `sensitive_category`, `unbounded_sum`,
/// `transcription_refused`, `grant_expired`, `bad_grant`, `batch_too_large`,
/// `malformed_ciphertext`, `transcryptor_down`, `transcryptor_failed`,
/// `forbidden`, `insufficient_points`; intents: `invalid_intent`, `empty_intent`,
/// `too_long`, `unknown_area`, `free_text_warning`, `intent_rate_limited`,
/// `answer_rate_limited`, `intent_not_found`, `intent_closed`,
/// `not_allowed_to_answer`, `already_answered`, `answer_not_found`,
/// `answer_expired`, `not_asked`, `already_reported`, `conflict`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// For `rule_*` codes: line and column of the problem in the submitted rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<me2b_offers::Position>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            position: None,
        }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the operator's log has the details",
        )
    }
    /// Storage failed: logged for the operator, a retryable 503 for the client.
    fn storage_down(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable; retry later",
        )
    }
    /// The audit log failed: nothing is done that is not logged.
    fn audit_down(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "audit failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the audit log is unavailable; nothing was done",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                position: self.position,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        use StatusCode as S;
        match e {
            VaultError::EmailTaken => Self::new(S::CONFLICT, "email_taken", e.to_string()),
            VaultError::UnknownConfirmation => {
                Self::new(S::NOT_FOUND, "unknown_confirmation", e.to_string())
            }
            VaultError::RecoveryCode(_) => Self::new(
                S::UNPROCESSABLE_ENTITY,
                "recovery_code_mistyped",
                e.to_string(),
            ),
            VaultError::InvalidCredentials => {
                Self::new(S::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            VaultError::InvalidSession => {
                Self::new(S::UNAUTHORIZED, "invalid_token", e.to_string())
            }
            VaultError::SessionExpired => {
                Self::new(S::UNAUTHORIZED, "session_expired", e.to_string())
            }
            VaultError::RecordNotFound => Self::new(S::NOT_FOUND, "not_found", e.to_string()),
            VaultError::RevisionConflict { .. } => {
                Self::new(S::CONFLICT, "revision_conflict", e.to_string())
            }
            VaultError::Integrity { .. } => {
                tracing::error!(error = %e, "integrity failure");
                Self::new(S::INTERNAL_SERVER_ERROR, "integrity_error", e.to_string())
            }
            VaultError::Storage(ref inner) => {
                tracing::error!(error = %inner, "storage failure");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; retry later",
                )
            }
            VaultError::Audit(ref inner) => {
                tracing::error!(error = %inner, "audit failure");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the audit log is unavailable, so no data is served; retry later",
                )
            }
            VaultError::Internal(ref inner) => {
                tracing::error!(error = %inner, "internal failure");
                Self::internal()
            }
        }
    }
}

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        use StatusCode as S;
        match e {
            OrgError::InvalidKey => Self::new(S::UNAUTHORIZED, "invalid_token", e.to_string()),
            OrgError::RevokedKey => Self::new(S::UNAUTHORIZED, "api_key_revoked", e.to_string()),
            OrgError::NotFound => Self::new(S::NOT_FOUND, "not_found", e.to_string()),
            OrgError::NameTaken => Self::new(S::CONFLICT, "name_taken", e.to_string()),
            OrgError::Storage(ref inner) => Self::storage_down(inner),
            OrgError::Audit(ref inner) => {
                tracing::error!(error = %inner, "audit failure");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the audit log is unavailable; retry later",
                )
            }
        }
    }
}

impl From<me2b_audit::AuditError> for ApiError {
    fn from(e: me2b_audit::AuditError) -> Self {
        tracing::error!(error = %e, "audit failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the audit log is unavailable; retry later",
        )
    }
}

impl From<me2b_consent::ServiceError> for ApiError {
    fn from(e: me2b_consent::ServiceError) -> Self {
        use me2b_consent::{ConsentError as C, ServiceError as E};
        use StatusCode as S;
        match e {
            E::Consent(C::UnknownTerm { .. }) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "unknown_term", e.to_string())
            }
            E::Consent(C::SpecialCategoryNeedsExplicitConsent { .. }) => Self::new(
                S::UNPROCESSABLE_ENTITY,
                "special_category_requires_explicit_consent",
                e.to_string(),
            ),
            E::Consent(C::Invalid(_)) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string())
            }
            E::Consent(_) => Self::internal(),
            E::RequestNotFound | E::ConsentNotFound => {
                Self::new(S::NOT_FOUND, "not_found", e.to_string())
            }
            E::AlreadyAnswered => Self::new(S::CONFLICT, "already_answered", e.to_string()),
            E::NotInForce => Self::new(S::CONFLICT, "not_in_force", e.to_string()),
            E::Conflict => Self::new(S::CONFLICT, "revision_conflict", e.to_string()),
            E::Storage(inner) => VaultError::Storage(inner).into(),
            E::Audit(inner) => inner.into(),
            E::Vault(inner) => inner.into(),
        }
    }
}

impl From<me2b_offers::OfferError> for ApiError {
    fn from(e: me2b_offers::OfferError) -> Self {
        use me2b_offers::{OfferError as E, RuleErrorKind as K};
        use StatusCode as S;
        match e {
            E::Rule(r) => {
                let code = match r.kind {
                    K::Syntax => "rule_syntax",
                    K::UnknownField => "rule_unknown_field",
                    K::FunctionNotAllowed => "rule_function_not_allowed",
                    K::Type => "rule_type",
                    K::TooLarge => "rule_too_large",
                    K::TooCostly => "rule_too_costly",
                    K::NestedMacro => "rule_nested_macro",
                    K::SensitiveTopic => "rule_sensitive_topic",
                };
                let mut err = Self::new(S::UNPROCESSABLE_ENTITY, code, r.to_string());
                err.position = Some(r.position);
                err
            }
            E::SensitiveTopic { .. } => {
                Self::new(S::UNPROCESSABLE_ENTITY, "sensitive_topic", e.to_string())
            }
            E::UnknownTopic(_) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "unknown_topic", e.to_string())
            }
            E::Invalid { .. } => Self::new(S::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()),
            E::NotFound => Self::not_found(),
            E::NotParty => Self::new(S::FORBIDDEN, "not_a_party", e.to_string()),
            E::Conflict => Self::new(S::CONFLICT, "revision_conflict", e.to_string()),
            E::NotActive(_) => Self::new(S::CONFLICT, "offer_not_active", e.to_string()),
            E::NoContactRequest => {
                Self::new(S::UNPROCESSABLE_ENTITY, "no_contact_request", e.to_string())
            }
            E::Storage(inner) => VaultError::Storage(inner).into(),
            E::Vault(inner) => inner.into(),
            E::Audit(inner) => inner.into(),
            E::Consent(inner) => inner.into(),
            E::Dp(inner) => inner.into(),
            E::TooManyLiveOffers { .. } => {
                Self::new(S::CONFLICT, "too_many_live_offers", e.to_string())
            }
            E::Taxonomy(_) | E::Corrupt(_) | E::Noise => Self::internal(),
        }
    }
}

impl From<me2b_dp::DpError> for ApiError {
    fn from(e: me2b_dp::DpError) -> Self {
        use me2b_dp::DpError as E;
        use StatusCode as S;
        let status = match &e {
            E::OverBudget { .. } | E::NoAllowance { .. } => S::FORBIDDEN,
            E::Invalid(_) => S::BAD_REQUEST,
            E::UnknownCategory(_) | E::UnboundedSum => S::UNPROCESSABLE_ENTITY,
            E::Storage(inner) => return Self::storage_down(inner),
            E::Audit(_) => return Self::audit_down(&e),
            E::Noise | E::Config(_) => return Self::internal(),
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<me2b_credentials::service::ServiceError> for ApiError {
    fn from(e: me2b_credentials::service::ServiceError) -> Self {
        use me2b_credentials::service::ServiceError as E;
        use me2b_credentials::CredentialError as C;
        use StatusCode as S;
        let e = match e {
            E::Vault(inner) => return inner.into(),
            other => other,
        };
        let code = e.code();
        let status = match &e {
            E::Credential(c) => match c {
                C::Oversized { .. } => S::PAYLOAD_TOO_LARGE,
                C::InvalidClaim { .. }
                | C::InvalidIdentifier { .. }
                | C::InvalidDisclosure(_)
                | C::UnsupportedSchema => S::BAD_REQUEST,
                C::KeyMaterialTooShort
                | C::InvalidSecretKey
                | C::BbsFailure(_)
                | C::TooManyMessages
                | C::InvalidStatusListSize
                | C::MalformedStatusList(_)
                | C::StatusIndexOutOfRange => return Self::internal(),
                // Everything a presentation or a challenge can be wrong about.
                _ => S::UNPROCESSABLE_ENTITY,
            },
            E::UnknownCode | E::UnknownChallenge => S::UNPROCESSABLE_ENTITY,
            E::UnknownTopic | E::SensitiveTopic => S::UNPROCESSABLE_ENTITY,
            E::NotFound(_) => return Self::not_found(),
            E::Invalid(_) => S::BAD_REQUEST,
            E::Corrupt => {
                tracing::error!(error = %e, "credential issuer key unreadable");
                return Self::internal();
            }
            E::Vault(_) => return Self::internal(),
            E::Storage(inner) => return Self::storage_down(inner),
            E::Audit(_) => return Self::audit_down(&e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<me2b_trust::TrustError> for ApiError {
    fn from(e: me2b_trust::TrustError) -> Self {
        use me2b_trust::TrustError as E;
        use StatusCode as S;
        let code = me2b_trust::error_code(&e);
        let status = match &e {
            E::Dp(_) => {
                if let E::Dp(inner) = e {
                    return inner.into();
                }
                return Self::internal();
            }
            E::Forbidden(_) => S::FORBIDDEN,
            E::TranscryptionRefused { .. }
            | E::GrantExpired
            | E::BadGrant
            | E::KeyShareRefused { .. } => S::FORBIDDEN,
            E::UnknownDomainKey | E::AskTranscryptors => S::CONFLICT,
            E::BelowThreshold { .. }
            | E::UnknownCategory(_)
            | E::UnknownArea
            | E::SensitiveCategory(_)
            | E::UnboundedSum => S::UNPROCESSABLE_ENTITY,
            E::Invalid(_) | E::MalformedCiphertext => S::BAD_REQUEST,
            E::BatchTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            E::NotFound(_) => return Self::not_found(),
            E::InsufficientPoints => S::CONFLICT,
            E::MemberErased => S::GONE,
            E::TranscryptorDown { .. } => S::SERVICE_UNAVAILABLE,
            E::TranscryptorFailed { .. } => S::BAD_GATEWAY,
            E::Storage(inner) => return Self::storage_down(inner),
            E::Audit(_) | E::AuditFailed => return Self::audit_down(&e),
        };
        Self::new(status, code, e.to_string())
    }
}
