//! The one mapping from errors to HTTP responses, and the one registry of
//! error codes.
//!
//! Every error is JSON: `{"error": {"code": "...", "message": "..."}}`. Every
//! `code` is an [`ErrorCode`]: one enum, after kanidm's `OperationError`, that
//! gives each code its stable snake_case string, its HTTP status and a short
//! description. The OpenAPI document lists them all (the `code` field's enum),
//! README's list is checked against it, and every error of every crate reaches
//! a client only through a `From` impl below that names a variant. To add a
//! code: add a line to [`error_codes!`], map the error to it here, and list
//! it in README.
//!
//! Messages never contain personal data or echo request values, and are at
//! most [`MAX_MESSAGE_CHARS`] characters: errors whose text would carry a
//! submitted value get a fixed message here. The one documented exception: a
//! rule error names the field, function or topic of the organisation's own
//! rule it refuses (at most 40 characters of it).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use me2b_orgs::OrgError;
use me2b_vault::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

/// Longest message of an error answer, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $status:ident, $desc:literal; )*) => {
        /// Every code the API answers with: its string, status and meaning.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( #[doc = $desc] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the documented order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable string clients match on.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status every answer with this code has.
            pub const fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status, )* }
            }

            /// What the code means, in one line.
            pub const fn description(self) -> &'static str {
                match self { $( ErrorCode::$variant => $desc, )* }
            }
        }
    };
}

error_codes! {
    // --- the request itself ---
    MalformedJson = "malformed_json", BAD_REQUEST, "the body is not valid JSON (or could not be read)";
    InvalidBody = "invalid_body", UNPROCESSABLE_ENTITY, "the body is JSON but does not match the route's schema (unknown field or variant, wrong type, value out of range)";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "the body is not sent as Content-Type: application/json";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "the body is larger than the route accepts (256 KiB)";
    InvalidParameter = "invalid_parameter", BAD_REQUEST, "a query parameter or a value is unknown, malformed or out of range";
    NotFound = "not_found", NOT_FOUND, "no such resource (or not yours)";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "the route does not accept this method";
    TooManyRequests = "too_many_requests", TOO_MANY_REQUESTS, "too many attempts: retry after the Retry-After header's seconds";
    // --- authentication and authorisation ---
    Unauthenticated = "unauthenticated", UNAUTHORIZED, "the route needs `Authorization: Bearer <token>`";
    InvalidToken = "invalid_token", UNAUTHORIZED, "the token or API key is not valid";
    SessionExpired = "session_expired", UNAUTHORIZED, "the session has expired: log in again";
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED, "the e-mail address or the passphrase is wrong";
    ApiKeyRevoked = "api_key_revoked", UNAUTHORIZED, "the API key was revoked or its organisation deleted";
    OrganisationForbidden = "organisation_forbidden", FORBIDDEN, "a member route refuses organisations' API keys";
    OrganisationOnly = "organisation_only", FORBIDDEN, "the route is for organisations' API keys";
    RoleRequired = "role_required", FORBIDDEN, "the API key lacks the role the route needs";
    Forbidden = "forbidden", FORBIDDEN, "the organisation may not ask this (scope, purpose or party)";
    // --- accounts and records ---
    EmailTaken = "email_taken", CONFLICT, "an account with this e-mail address exists (confirming an address that got an account meanwhile)";
    UnknownConfirmation = "unknown_confirmation", NOT_FOUND, "the sign-up confirmation token is unknown, used or expired: sign up again";
    RecoveryCodeMistyped = "recovery_code_mistyped", UNPROCESSABLE_ENTITY, "the recovery code is not written as it was shown (length, groups or characters)";
    NameTaken = "name_taken", CONFLICT, "an organisation with this name exists";
    RevisionConflict = "revision_conflict", CONFLICT, "it changed meanwhile: read it again and retry";
    MemberErased = "member_erased", GONE, "the member behind this card erased their data: delete the card";
    // --- consent ---
    UnknownTerm = "unknown_term", UNPROCESSABLE_ENTITY, "a purpose, category, processing or legal basis is not in GET /v1/vocabulary";
    SpecialCategoryRequiresExplicitConsent = "special_category_requires_explicit_consent", UNPROCESSABLE_ENTITY, "a special category (GDPR Art. 9) needs the legal basis explicitly-expressed-consent";
    AlreadyAnswered = "already_answered", CONFLICT, "the consent request was already answered (or the organisation already answered the intent)";
    NotInForce = "not_in_force", CONFLICT, "the consent is withdrawn or was a refusal";
    DataAccessWindow = "data_access_window", TOO_MANY_REQUESTS, "data access answers only in the window after each release of consent changes: retry after the Retry-After header's seconds";
    // --- erasure ---
    ErasureRequestNotFound = "erasure_request_not_found", NOT_FOUND, "no erasure request of this organisation has this id (or it is not sent yet)";
    ErasureAlreadyConfirmed = "erasure_already_confirmed", CONFLICT, "this erasure request was confirmed before: nothing changed";
    ErasureReceiptNotFound = "erasure_receipt_not_found", NOT_FOUND, "no erasure receipt matches";
    RectificationNotFound = "rectification_notice_not_found", NOT_FOUND, "no rectification notice of this organisation has this id (or it is not sent yet)";
    RectificationAlreadyConfirmed = "rectification_already_confirmed", CONFLICT, "this rectification notice was confirmed before: nothing changed";
    InvalidWebhookUrl = "invalid_webhook_url", UNPROCESSABLE_ENTITY, "the webhook URL is refused: it must be https, name a public host, and carry no credentials or fragment (the message says which)";
    WebhookNotFound = "webhook_not_found", NOT_FOUND, "this organisation has no webhook registered";
    // --- offers ---
    RuleSyntax = "rule_syntax", UNPROCESSABLE_ENTITY, "the rule is not valid CEL (with position)";
    RuleUnknownField = "rule_unknown_field", UNPROCESSABLE_ENTITY, "the rule reads a field that does not exist (with position)";
    RuleFunctionNotAllowed = "rule_function_not_allowed", UNPROCESSABLE_ENTITY, "the rule calls a function outside the documented set (with position)";
    RuleType = "rule_type", UNPROCESSABLE_ENTITY, "the rule mixes types (with position)";
    RuleTooLarge = "rule_too_large", UNPROCESSABLE_ENTITY, "the rule is over 2 KiB or 400 nodes (with position)";
    RuleTooCostly = "rule_too_costly", UNPROCESSABLE_ENTITY, "the rule's static cost is over the limit (with position)";
    RuleNestedMacro = "rule_nested_macro", UNPROCESSABLE_ENTITY, "the rule nests a macro in a macro (with position)";
    RuleSensitiveTopic = "rule_sensitive_topic", UNPROCESSABLE_ENTITY, "the rule names a special-category topic (with position)";
    RuleCheckUnavailable = "rule_check_unavailable", SERVICE_UNAVAILABLE, "the node could not check the rule now (not the rule's fault): retry later";
    SensitiveTopic = "sensitive_topic", UNPROCESSABLE_ENTITY, "a topic or interest touches a special category (GDPR Art. 9)";
    UnknownTopic = "unknown_topic", UNPROCESSABLE_ENTITY, "a topic or interest is not in GET /v1/taxonomy";
    NotAParty = "not_a_party", FORBIDDEN, "the organisation is not a party to the offer";
    OfferNotActive = "offer_not_active", CONFLICT, "the offer is not live";
    NoContactRequest = "no_contact_request", UNPROCESSABLE_ENTITY, "the offer asks for no contact: nothing to share";
    TooManyLiveOffers = "too_many_live_offers", CONFLICT, "the organisation has the most live offers governance allows";
    // --- privacy ---
    OverBudget = "over_budget", FORBIDDEN, "a pool's budget this period, its lifetime cap, or your allowance in it would be exceeded";
    NoBudget = "no_budget", FORBIDDEN, "governance gives you no allowance in that pool";
    // --- the data trust ---
    BelowThreshold = "below_threshold", UNPROCESSABLE_ENTITY, "the cohort is below the minimum: nothing is released";
    UnboundedSum = "unbounded_sum", UNPROCESSABLE_ENTITY, "a sum needs an upper bound above 0";
    UnknownCategory = "unknown_category", UNPROCESSABLE_ENTITY, "a category is not a taxonomy topic";
    UnknownArea = "unknown_area", UNPROCESSABLE_ENTITY, "the area is not one of the trust's area codes";
    SensitiveCategory = "sensitive_category", UNPROCESSABLE_ENTITY, "a special-category topic: the trust does not take it";
    TranscriptionRefused = "transcription_refused", FORBIDDEN, "a transcryptor refused the pair of domains";
    GrantExpired = "grant_expired", FORBIDDEN, "the consent grant has expired";
    BadGrant = "bad_grant", FORBIDDEN, "the consent grant is malformed or not signed by the node";
    KeyShareRefused = "key_share_refused", FORBIDDEN, "a transcryptor gives a domain's key share only to its owner, and none for the origin";
    NoCardYet = "no_card_yet", CONFLICT, "no card was shown at this co-op yet, so its domain's key is not known here";
    AskTranscryptors = "ask_transcryptors", CONFLICT, "the trust's transcryptors run as separate processes: fetch key shares from each";
    MalformedCiphertext = "malformed_ciphertext", BAD_REQUEST, "a pseudonym, ciphertext or key is malformed";
    BatchTooLarge = "batch_too_large", PAYLOAD_TOO_LARGE, "a batch holds more items than allowed";
    TranscryptorDown = "transcryptor_down", SERVICE_UNAVAILABLE, "a transcryptor cannot be reached; nothing was stored";
    TranscryptorFailed = "transcryptor_failed", BAD_GATEWAY, "a transcryptor failed; nothing was stored";
    InsufficientPoints = "insufficient_points", CONFLICT, "not enough loyalty points";
    RedemptionStep = "redemption_step", UNPROCESSABLE_ENTITY, "a redemption token is for a multiple of the federation's step (GET /v1/me/trust: redemption_step)";
    UnknownCard = "unknown_card", NOT_FOUND, "no enrolled member holds this card (or it was sealed for another co-op); nothing was recorded";
    RedemptionRefused = "redemption_refused", CONFLICT, "the redemption token is unknown, used, expired, for another co-op or another amount; nothing was redeemed";
    // --- credentials ---
    UnknownCode = "unknown_code", UNPROCESSABLE_ENTITY, "the one-time code is unknown, used, expired or revoked";
    UnknownTier = "unknown_tier", UNPROCESSABLE_ENTITY, "the tier is not one of the federation's (listed at /.well-known/me2b/issuers)";
    UnknownRegion = "unknown_region", UNPROCESSABLE_ENTITY, "the region is not one of the trust's area codes (listed at /.well-known/me2b/issuers)";
    UnknownMemberSince = "unknown_member_since", UNPROCESSABLE_ENTITY, "member_since is not a year of the federation's list (every member_since_step-th year from member_since_from, up to this year)";
    RareDisclosure = "rare_disclosure", CONFLICT, "what the presentation would disclose is shared by fewer credentials of its issuer than the federation's threshold (`[credentials] min_shared`): preview it, disclose less, or present with `accept_rare`";
    UnknownChallenge = "unknown_challenge", UNPROCESSABLE_ENTITY, "no such challenge: never made, expired or already used (a replay)";
    WrongChallenge = "wrong_challenge", UNPROCESSABLE_ENTITY, "the presentation answers another challenge";
    UnknownIssuer = "unknown_issuer", UNPROCESSABLE_ENTITY, "the issuer key is unknown or not accepted";
    MissingClaim = "missing_claim", UNPROCESSABLE_ENTITY, "a claim the challenge needs is not disclosed";
    ClaimMismatch = "claim_mismatch", UNPROCESSABLE_ENTITY, "a disclosed claim does not have the required value";
    ProofInvalid = "proof_invalid", UNPROCESSABLE_ENTITY, "the proof does not verify";
    TruncatedProof = "truncated_proof", UNPROCESSABLE_ENTITY, "the proof is truncated";
    MalformedProof = "malformed_proof", UNPROCESSABLE_ENTITY, "the proof's bytes do not decode";
    MalformedPresentation = "malformed_presentation", UNPROCESSABLE_ENTITY, "the presentation is not well-formed";
    MalformedSignature = "malformed_signature", UNPROCESSABLE_ENTITY, "a signature is malformed";
    SignatureInvalid = "signature_invalid", UNPROCESSABLE_ENTITY, "a signature does not verify";
    InvalidPublicKey = "invalid_public_key", UNPROCESSABLE_ENTITY, "a public key is malformed";
    Expired = "expired", UNPROCESSABLE_ENTITY, "the credential has expired";
    Revoked = "revoked", UNPROCESSABLE_ENTITY, "the credential has been revoked";
    StatusUnavailable = "status_unavailable", UNPROCESSABLE_ENTITY, "no status list of the issuer is at hand";
    InvalidClaim = "invalid_claim", BAD_REQUEST, "a claim value does not have the form the schema requires";
    InvalidIdentifier = "invalid_identifier", BAD_REQUEST, "an identifier (key id, verifier id) does not have the required form";
    InvalidDisclosure = "invalid_disclosure", BAD_REQUEST, "the disclosed claims or indexes are not valid";
    UnsupportedSchema = "unsupported_schema", BAD_REQUEST, "the credential schema version is not supported";
    OversizedInput = "oversized_input", PAYLOAD_TOO_LARGE, "the input is larger than the parser accepts";
    // --- member rights ---
    OptOutCodeMistyped = "optout_code_mistyped", UNPROCESSABLE_ENTITY, "the opt-out code is not written as it was printed (length, groups, characters or its check character)";
    UnknownOptOutCode = "unknown_optout_code", NOT_FOUND, "no member holds this opt-out code (it may have been replaced)";
    CharterForbids = "charter_forbids", FORBIDDEN, "the node's charter forbids this (selling data or insights, or inferring a special category)";
    ImportMalformed = "import_malformed", UNPROCESSABLE_ENTITY, "the import is not a well-formed me2b export (or one of its records is not valid); nothing was imported";
    ImportNewerFormat = "import_newer_format", UNPROCESSABLE_ENTITY, "the export is of a newer format version than this node reads; nothing was imported";
    ImportUnknownSigner = "import_unknown_signer", UNPROCESSABLE_ENTITY, "the export is signed by a node this node does not trust; nothing was imported";
    ImportSignatureInvalid = "import_signature_invalid", UNPROCESSABLE_ENTITY, "the export was changed after it was signed; nothing was imported";
    ImportAlreadyApplied = "import_already_applied", CONFLICT, "this export was imported already";
    // --- intents ---
    InvalidIntent = "invalid_intent", UNPROCESSABLE_ENTITY, "an intent, answer, acceptance or report is not well-formed (the message says which rule)";
    EmptyIntent = "empty_intent", UNPROCESSABLE_ENTITY, "an intent needs a text saying what you are looking for";
    TooLong = "too_long", UNPROCESSABLE_ENTITY, "a text is longer than allowed (the message names the field and its limit)";
    FreeTextWarning = "free_text_warning", UNPROCESSABLE_ENTITY, "free text can identify you: read the warning and publish with acknowledge_free_text_warning";
    IntentRateLimited = "intent_rate_limited", TOO_MANY_REQUESTS, "the member published the most intents allowed this week";
    AnswerRateLimited = "answer_rate_limited", TOO_MANY_REQUESTS, "the organisation answered the most intents allowed in 24 hours";
    IntentNotFound = "intent_not_found", NOT_FOUND, "no open intent with this id (unknown, malformed or expired alike)";
    IntentClosed = "intent_closed", CONFLICT, "the intent is closed";
    NotAllowedToAnswer = "not_allowed_to_answer", FORBIDDEN, "the intent's audience does not include this organisation";
    UnknownClaim = "unknown_claim", UNPROCESSABLE_ENTITY, "a credential audience names a claim organisations' credentials do not carry, or a value not on the federation's list";
    SensitiveClaim = "sensitive_claim", UNPROCESSABLE_ENTITY, "a credential audience names a certification that would tell a special category about the member (religion, health)";
    AnswerNotFound = "answer_not_found", NOT_FOUND, "no such answer to this intent";
    AnswerExpired = "answer_expired", CONFLICT, "the answer's validity date has passed";
    NotAsked = "not_asked", UNPROCESSABLE_ENTITY, "a category to disclose was not asked for by the answer";
    AlreadyReported = "already_reported", CONFLICT, "this answer was already reported";
    // --- the node ---
    IntegrityError = "integrity_error", INTERNAL_SERVER_ERROR, "stored data failed authentication";
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, "storage or the audit log is unavailable: nothing was done; retry later";
    RequestTimeout = "request_timeout", SERVICE_UNAVAILABLE, "handling took longer than request_timeout_seconds; it may or may not have taken effect";
    Internal = "internal", INTERNAL_SERVER_ERROR, "an internal error: the operator's log has the details";
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        let mut table = String::from("Every code the API answers with (HTTP status: meaning):\n");
        for c in Self::ALL {
            table.push_str(&format!(
                "\n* `{}` ({}): {}",
                c.as_str(),
                c.status().as_u16(),
                c.description()
            ));
        }
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(Self::ALL.iter().map(|c| c.as_str())))
            .description(Some(table))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Where in the submitted rule the problem is (rule errors only).
    pub position: Option<me2b_offers::Position>,
    /// Seconds to wait before retrying (`429`: the `Retry-After` header).
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code` (one of [`ErrorCode`]) and a
/// human-readable `message` (at most 300 characters, never an echo of what
/// was sent).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    #[schema(max_length = 300)]
    pub message: String,
    /// For `rule_*` codes: line and column of the problem in the submitted rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<me2b_offers::Position>,
}

/// `message`, cut to [`MAX_MESSAGE_CHARS`] characters.
fn bounded(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        message
    } else {
        let mut m: String = message.chars().take(MAX_MESSAGE_CHARS - 1).collect();
        m.push('…');
        m
    }
}

impl ApiError {
    /// An error with `code` (and its status) and a message that names no
    /// submitted value.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: bounded(message.into()),
            position: None,
            retry_after: None,
        }
    }
    /// An error whose message is the code's description.
    pub fn of(code: ErrorCode) -> Self {
        Self::new(code, code.description())
    }
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource")
    }
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; the operator's log has the details",
        )
    }
    /// `429 too_many_requests`, retry after `seconds` (at least 1).
    pub fn too_many_requests(seconds: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::TooManyRequests, message);
        e.retry_after = Some(seconds.max(1));
        e
    }
    /// Storage failed: logged for the operator, a retryable 503 for the client.
    fn storage_down(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::new(
            ErrorCode::Unavailable,
            "storage is unavailable; retry later",
        )
    }
    /// The audit log failed: nothing is done that is not logged.
    fn audit_down(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "audit failure");
        Self::new(
            ErrorCode::Unavailable,
            "the audit log is unavailable; nothing was done",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                position: self.position,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        use ErrorCode as C;
        match e {
            VaultError::EmailTaken => Self::new(C::EmailTaken, e.to_string()),
            VaultError::UnknownConfirmation => Self::new(C::UnknownConfirmation, e.to_string()),
            VaultError::RecoveryCode(_) => Self::new(C::RecoveryCodeMistyped, e.to_string()),
            VaultError::InvalidCredentials => Self::new(C::InvalidCredentials, e.to_string()),
            VaultError::InvalidSession => Self::new(C::InvalidToken, e.to_string()),
            VaultError::SessionExpired => Self::new(C::SessionExpired, e.to_string()),
            VaultError::RecordNotFound => Self::new(C::NotFound, e.to_string()),
            VaultError::RevisionConflict { .. } => Self::new(C::RevisionConflict, e.to_string()),
            // Names the field and why, never the value.
            VaultError::InvalidContent { .. } => Self::new(C::InvalidBody, e.to_string()),
            VaultError::Integrity { .. } => {
                tracing::error!(error = %e, "integrity failure");
                Self::new(C::IntegrityError, e.to_string())
            }
            VaultError::Storage(ref inner) => Self::storage_down(inner),
            VaultError::Audit(ref inner) => {
                tracing::error!(error = %inner, "audit failure");
                Self::new(
                    C::Unavailable,
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
        use ErrorCode as C;
        match e {
            OrgError::InvalidKey => Self::new(C::InvalidToken, e.to_string()),
            OrgError::RevokedKey => Self::new(C::ApiKeyRevoked, e.to_string()),
            OrgError::NotFound => Self::new(C::NotFound, e.to_string()),
            OrgError::NameTaken => Self::new(C::NameTaken, e.to_string()),
            OrgError::Storage(ref inner) => Self::storage_down(inner),
            OrgError::Audit(ref inner) => Self::audit_down(inner),
        }
    }
}

impl From<me2b_audit::AuditError> for ApiError {
    fn from(e: me2b_audit::AuditError) -> Self {
        Self::audit_down(&e)
    }
}

impl From<me2b_consent::ServiceError> for ApiError {
    fn from(e: me2b_consent::ServiceError) -> Self {
        use me2b_consent::{ConsentError as K, ServiceError as E};
        use ErrorCode as C;
        match e {
            // The unknown term is what was sent: named by its kind only.
            E::Consent(K::UnknownTerm { kind, .. }) => Self::new(
                C::UnknownTerm,
                format!("unknown {kind}: see GET /v1/vocabulary"),
            ),
            E::Consent(K::SpecialCategoryNeedsExplicitConsent { required, .. }) => Self::new(
                C::SpecialCategoryRequiresExplicitConsent,
                format!("a special category (GDPR Art. 9) requires the legal basis `{required}`"),
            ),
            E::Consent(K::Invalid(_)) => Self::new(C::InvalidBody, e.to_string()),
            E::Consent(_) => Self::internal(),
            E::RequestNotFound | E::ConsentNotFound => Self::new(C::NotFound, e.to_string()),
            E::AlreadyAnswered => Self::new(C::AlreadyAnswered, e.to_string()),
            E::NotInForce => Self::new(C::NotInForce, e.to_string()),
            E::Conflict => Self::new(C::RevisionConflict, e.to_string()),
            E::ErasureRequestNotFound => Self::new(C::ErasureRequestNotFound, e.to_string()),
            E::ErasureAlreadyConfirmed => Self::new(C::ErasureAlreadyConfirmed, e.to_string()),
            E::ErasureReceiptNotFound => Self::new(C::ErasureReceiptNotFound, e.to_string()),
            E::RectificationNotFound => Self::new(C::RectificationNotFound, e.to_string()),
            E::RectificationAlreadyConfirmed => {
                Self::new(C::RectificationAlreadyConfirmed, e.to_string())
            }
            E::Storage(inner) => Self::storage_down(&inner),
            E::Audit(inner) => inner.into(),
            E::Vault(inner) => inner.into(),
            E::OptOutCodeMistyped => Self::new(C::OptOutCodeMistyped, e.to_string()),
            E::UnknownOptOutCode => Self::new(C::UnknownOptOutCode, e.to_string()),
            E::CharterForbids(_) => Self::new(C::CharterForbids, e.to_string()),
            E::AccessWindowClosed { retry_after } => {
                let mut err = Self::new(C::DataAccessWindow, e.to_string());
                err.retry_after = Some(retry_after.max(1));
                err
            }
        }
    }
}

impl From<me2b_node::portability::PortabilityError> for ApiError {
    fn from(e: me2b_node::portability::PortabilityError) -> Self {
        use me2b_node::portability::PortabilityError as E;
        use ErrorCode as C;
        match e {
            E::Malformed(_) => Self::new(C::ImportMalformed, e.to_string()),
            E::TooLarge => Self::new(C::PayloadTooLarge, e.to_string()),
            E::NewerFormat => Self::new(C::ImportNewerFormat, e.to_string()),
            E::UnknownSigner => Self::new(C::ImportUnknownSigner, e.to_string()),
            E::BadSignature => Self::new(C::ImportSignatureInvalid, e.to_string()),
            E::AlreadyImported => Self::new(C::ImportAlreadyApplied, e.to_string()),
            E::Vault(inner) => inner.into(),
            E::Consent(inner) => inner.into(),
            E::Trust(inner) => inner.into(),
            E::Storage(inner) => Self::storage_down(&inner),
            E::Audit(inner) => inner.into(),
        }
    }
}

impl From<me2b_node::webhooks::WebhookError> for ApiError {
    fn from(e: me2b_node::webhooks::WebhookError) -> Self {
        use me2b_node::webhooks::WebhookError as E;
        match e {
            E::InvalidUrl(_) => Self::new(ErrorCode::InvalidWebhookUrl, e.to_string()),
            E::Storage(inner) => Self::storage_down(&inner),
            E::Audit(inner) => inner.into(),
        }
    }
}

impl From<me2b_offers::OfferError> for ApiError {
    fn from(e: me2b_offers::OfferError) -> Self {
        use me2b_offers::{OfferError as E, RuleErrorKind as K};
        use ErrorCode as C;
        match e {
            E::Rule(r) => {
                let code = match r.kind {
                    K::Syntax => C::RuleSyntax,
                    K::UnknownField => C::RuleUnknownField,
                    K::FunctionNotAllowed => C::RuleFunctionNotAllowed,
                    K::Type => C::RuleType,
                    K::TooLarge => C::RuleTooLarge,
                    K::TooCostly => C::RuleTooCostly,
                    K::NestedMacro => C::RuleNestedMacro,
                    K::SensitiveTopic => C::RuleSensitiveTopic,
                    K::Unavailable => C::RuleCheckUnavailable,
                };
                // Names the field, function or topic of the organisation's own
                // rule (at most 40 characters of it): documented.
                let mut err = Self::new(code, r.to_string());
                err.position = Some(r.position);
                err
            }
            // A known topic of the taxonomy, not a free value.
            E::SensitiveTopic { .. } => Self::new(C::SensitiveTopic, e.to_string()),
            E::UnknownTopic(_) => Self::new(
                C::UnknownTopic,
                "a topic is not in the taxonomy: see GET /v1/taxonomy",
            ),
            E::Invalid { .. } => Self::new(C::InvalidBody, e.to_string()),
            E::NotFound => Self::not_found(),
            E::NotParty => Self::new(C::NotAParty, e.to_string()),
            E::Conflict => Self::new(C::RevisionConflict, e.to_string()),
            E::NotActive(_) => Self::new(C::OfferNotActive, e.to_string()),
            E::NoContactRequest => Self::new(C::NoContactRequest, e.to_string()),
            E::Storage(inner) => Self::storage_down(&inner),
            E::Vault(inner) => inner.into(),
            E::Audit(inner) => inner.into(),
            E::Consent(inner) => inner.into(),
            E::Dp(inner) => inner.into(),
            E::TooManyLiveOffers { .. } => Self::new(C::TooManyLiveOffers, e.to_string()),
            E::Taxonomy(_) | E::Corrupt(_) | E::Noise => {
                tracing::error!(error = %e, "offers failure");
                Self::internal()
            }
        }
    }
}

impl From<me2b_dp::DpError> for ApiError {
    fn from(e: me2b_dp::DpError) -> Self {
        use me2b_dp::DpError as E;
        use ErrorCode as C;
        match e {
            E::OverBudget { .. } => Self::new(C::OverBudget, e.to_string()),
            E::NoAllowance { .. } => Self::new(C::NoBudget, e.to_string()),
            E::Invalid(_) => Self::new(C::InvalidParameter, e.to_string()),
            // The category is what was sent.
            E::UnknownCategory(_) => Self::new(
                C::UnknownCategory,
                "a category is not a topic of the taxonomy: see GET /v1/taxonomy",
            ),
            E::UnboundedSum => Self::new(C::UnboundedSum, e.to_string()),
            E::Storage(inner) => Self::storage_down(&inner),
            E::Audit(_) => Self::audit_down(&e),
            E::Noise | E::Config(_) => {
                tracing::error!(error = %e, "privacy failure");
                Self::internal()
            }
        }
    }
}

/// The code of a credential error, or None for those a client cannot cause
/// (an internal failure).
fn credential_code(c: &me2b_credentials::CredentialError) -> Option<ErrorCode> {
    use me2b_credentials::CredentialError as K;
    use ErrorCode as C;
    Some(match c {
        K::KeyMaterialTooShort
        | K::InvalidSecretKey
        | K::BbsFailure(_)
        | K::TooManyMessages
        | K::InvalidStatusListSize
        | K::MalformedStatusList(_)
        | K::InvalidPeriod => return None,
        K::StatusIndexOutOfRange => C::InvalidParameter,
        K::InvalidPublicKey => C::InvalidPublicKey,
        K::MalformedSignature => C::MalformedSignature,
        K::SignatureInvalid => C::SignatureInvalid,
        K::TruncatedProof => C::TruncatedProof,
        K::MalformedProof(_) => C::MalformedProof,
        K::ProofInvalid => C::ProofInvalid,
        K::InvalidDisclosure(_) => C::InvalidDisclosure,
        K::UnsupportedSchema => C::UnsupportedSchema,
        K::InvalidClaim { .. } => C::InvalidClaim,
        K::InvalidIdentifier { .. } => C::InvalidIdentifier,
        K::Oversized { .. } => C::OversizedInput,
        K::MalformedPresentation(_) => C::MalformedPresentation,
        K::WrongChallenge => C::WrongChallenge,
        K::UnknownIssuer => C::UnknownIssuer,
        K::MissingClaim(_) => C::MissingClaim,
        K::ClaimMismatch(_) => C::ClaimMismatch,
        K::Expired => C::Expired,
        K::Revoked => C::Revoked,
        K::StatusUnavailable => C::StatusUnavailable,
    })
}

impl From<me2b_credentials::service::ServiceError> for ApiError {
    fn from(e: me2b_credentials::service::ServiceError) -> Self {
        use me2b_credentials::service::ServiceError as E;
        use ErrorCode as C;
        let code = match &e {
            E::Credential(c) => match credential_code(c) {
                Some(code) => code,
                None => {
                    tracing::error!(error = %e, "credential failure");
                    return Self::internal();
                }
            },
            E::UnknownCode => C::UnknownCode,
            E::UnknownChallenge => C::UnknownChallenge,
            E::UnknownTopic => C::UnknownTopic,
            E::SensitiveTopic => C::SensitiveTopic,
            E::UnknownTier => C::UnknownTier,
            E::UnknownRegion => C::UnknownRegion,
            E::UnknownMemberSince => C::UnknownMemberSince,
            E::RareDisclosure => C::RareDisclosure,
            E::NotFound(_) => return Self::not_found(),
            E::Invalid(_) => C::InvalidParameter,
            E::Corrupt => {
                tracing::error!(error = %e, "credential issuer key unreadable");
                return Self::internal();
            }
            E::Vault(_) => {
                if let E::Vault(inner) = e {
                    return inner.into();
                }
                return Self::internal();
            }
            E::Storage(inner) => return Self::storage_down(inner),
            E::Audit(_) => return Self::audit_down(&e),
        };
        Self::new(code, e.to_string())
    }
}

impl From<me2b_trust::TrustError> for ApiError {
    fn from(e: me2b_trust::TrustError) -> Self {
        use me2b_trust::TrustError as E;
        use ErrorCode as C;
        let code = match &e {
            E::Dp(_) => {
                if let E::Dp(inner) = e {
                    return inner.into();
                }
                return Self::internal();
            }
            E::Consent(_) => {
                if let E::Consent(inner) = e {
                    return inner.into();
                }
                return Self::internal();
            }
            E::Forbidden(_) => C::Forbidden,
            E::TranscryptionRefused { .. } => C::TranscriptionRefused,
            E::GrantExpired => C::GrantExpired,
            E::BadGrant => C::BadGrant,
            E::KeyShareRefused { .. } => C::KeyShareRefused,
            E::UnknownDomainKey => C::NoCardYet,
            E::AskTranscryptors => C::AskTranscryptors,
            E::BelowThreshold { .. } => C::BelowThreshold,
            // The category is what was sent.
            E::UnknownCategory(_) => {
                return Self::new(
                    C::UnknownCategory,
                    "a category is not a topic of the taxonomy: see GET /v1/taxonomy",
                )
            }
            E::UnknownArea => C::UnknownArea,
            // A known topic of the taxonomy.
            E::SensitiveCategory(_) => C::SensitiveCategory,
            E::UnboundedSum => C::UnboundedSum,
            E::Invalid(_) => C::InvalidParameter,
            E::MalformedCiphertext => C::MalformedCiphertext,
            E::BatchTooLarge { .. } => C::BatchTooLarge,
            E::NotFound(_) => return Self::not_found(),
            E::InsufficientPoints => C::InsufficientPoints,
            E::RedemptionStep => C::RedemptionStep,
            E::RedemptionRefused => C::RedemptionRefused,
            E::UnknownCard => C::UnknownCard,
            E::MemberErased => C::MemberErased,
            E::TranscryptorDown { .. } => C::TranscryptorDown,
            E::TranscryptorFailed { .. } => C::TranscryptorFailed,
            E::Storage(inner) => return Self::storage_down(inner),
            E::Audit(_) | E::AuditFailed => return Self::audit_down(&e),
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct_snake_case_and_described() {
        let mut seen = BTreeSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
            assert!(!c.description().is_empty() && c.description().len() <= 200);
        }
    }

    #[test]
    fn messages_are_bounded() {
        let e = ApiError::new(ErrorCode::InvalidBody, "x".repeat(100_000));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
