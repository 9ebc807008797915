//! Consent requests and consent records (ISO/IEC TS 27560 / Kantara shaped).

use crate::vocabulary::{Section, Vocabulary, CONSENT, EXPLICIT_CONSENT};
use crate::ConsentError;
use me2b_domain::{ConsentId, ConsentRequestId, MemberId, OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest consent period an organisation may ask for.
pub const MAX_RETENTION_DAYS: u32 = 3 * 366;
const MAX_TERMS: usize = 64;

/// How consent was given or withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Web,
    Api,
    Paper,
    Gpc,
}

/// What an organisation submits to ask for consent (untrusted input).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequestInput {
    /// DPV purpose ids, see `GET /v1/vocabulary`.
    pub purposes: Vec<String>,
    /// DPV personal-data category ids.
    pub categories: Vec<String>,
    /// DPV processing ids.
    pub processing: Vec<String>,
    /// `consent`, or `explicitly-expressed-consent` (required for special categories).
    pub legal_basis: String,
    /// How long a grant lasts, in days (1 to 1098).
    pub retention_days: u32,
    /// Who else receives the data (names of recipients), possibly empty.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The notice shown to members, in plain language.
    pub notice: String,
    /// The notice's version label, e.g. `2026-11`.
    pub notice_version: String,
}

/// A validated consent request, as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRequest {
    pub id: ConsentRequestId,
    pub org: OrgId,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    pub processing: Vec<String>,
    pub legal_basis: String,
    pub retention_days: u32,
    pub recipients: Vec<String>,
    pub notice: String,
    pub notice_version: String,
    /// SHA-256 of the notice text, hex: what the member saw is pinned.
    pub notice_sha256: String,
    #[schema(value_type = i64)]
    pub created_at: Timestamp,
    /// Made by the node for one member's answer (an accepted intent's
    /// contact): never offered to other members, answered only through
    /// [`crate::Consents::grant_private`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// Set only on the requests the node makes for cross-selling: the co-op
    /// whose receipts go to `org`. Such a request is never listed to
    /// organisations; members answer it through the trust's sharing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cross_sell_from: Option<OrgId>,
}

fn dedup(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

fn bounded_text(field: &str, s: &str, max: usize) -> Result<(), ConsentError> {
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(ConsentError::Invalid(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(())
}

impl ConsentRequestInput {
    /// Validates against the vocabulary ("parse, don't validate").
    pub fn validate(
        self,
        vocab: &Vocabulary,
        id: ConsentRequestId,
        org: OrgId,
        now: Timestamp,
    ) -> Result<ConsentRequest, ConsentError> {
        for (name, list) in [
            ("purposes", &self.purposes),
            ("categories", &self.categories),
            ("processing", &self.processing),
        ] {
            if list.is_empty() || list.len() > MAX_TERMS {
                return Err(ConsentError::Invalid(format!(
                    "{name} must name 1 to {MAX_TERMS} terms"
                )));
            }
        }
        for p in &self.purposes {
            vocab.require(Section::Purpose, p)?;
        }
        for c in &self.categories {
            vocab.require(Section::Category, c)?;
        }
        for p in &self.processing {
            vocab.require(Section::Processing, p)?;
        }
        vocab.require(Section::LegalBasis, &self.legal_basis)?;
        if self.legal_basis != CONSENT && self.legal_basis != EXPLICIT_CONSENT {
            return Err(ConsentError::Invalid(format!(
                "a consent request needs the legal basis `{CONSENT}` or `{EXPLICIT_CONSENT}`"
            )));
        }
        if let Some(special) = self.categories.iter().find(|c| vocab.is_special(c)) {
            if self.legal_basis != EXPLICIT_CONSENT {
                return Err(ConsentError::SpecialCategoryNeedsExplicitConsent {
                    category: special.clone(),
                    required: EXPLICIT_CONSENT,
                });
            }
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(ConsentError::Invalid(format!(
                "retention_days must be 1 to {MAX_RETENTION_DAYS}"
            )));
        }
        if self.recipients.len() > MAX_TERMS {
            return Err(ConsentError::Invalid("too many recipients".into()));
        }
        for r in &self.recipients {
            bounded_text("a recipient", r, 200)?;
        }
        bounded_text("notice", &self.notice, 10_000)?;
        bounded_text("notice_version", &self.notice_version, 64)?;
        Ok(ConsentRequest {
            id,
            org,
            purposes: dedup(&self.purposes),
            categories: dedup(&self.categories),
            processing: dedup(&self.processing),
            legal_basis: self.legal_basis,
            retention_days: self.retention_days,
            recipients: self.recipients,
            notice_sha256: hex::encode(Sha256::digest(self.notice.as_bytes())),
            notice: self.notice,
            notice_version: self.notice_version,
            created_at: now,
            private: false,
            cross_sell_from: None,
        })
    }
}

/// The state of a consent record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    Given,
    Refused,
    Withdrawn,
}

/// One entry of a record's version history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentEvent {
    pub version: u32,
    pub status: ConsentStatus,
    pub method: Method,
    #[schema(value_type = i64)]
    pub at: Timestamp,
}

/// A member's answer to a consent request, with its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub id: ConsentId,
    pub request: ConsentRequestId,
    /// The controller: the organisation that asked.
    pub controller: OrgId,
    pub subject: MemberId,
    pub status: ConsentStatus,
    /// What was granted (a subset of what was asked).
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    pub processing: Vec<String>,
    pub legal_basis: String,
    pub method: Method,
    pub notice_version: String,
    pub notice_sha256: String,
    #[schema(value_type = i64)]
    pub given_at: Timestamp,
    #[schema(value_type = i64)]
    pub expires_at: Timestamp,
    #[schema(value_type = Option<i64>)]
    pub withdrawn_at: Option<Timestamp>,
    pub history: Vec<ConsentEvent>,
    /// The signed receipt of each event, in order (compact JWS).
    #[serde(default)]
    pub receipts: Vec<String>,
    /// The pseudonym the controller knows the member by under this record
    /// alone (an accepted intent's contact: random, one per contact), instead
    /// of the one it knows them by under every other consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_pseudonym: Option<String>,
    /// A cross-selling consent: the co-op whose receipts about the member go
    /// to the controller. It permits only that delivery (the decision point
    /// matches it exactly), never an ordinary access by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cross_sell_from: Option<OrgId>,
}

/// What a member grants: all of a request, or part (per purpose and category).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// A subset of the request's purposes; all when absent.
    pub purposes: Option<Vec<String>>,
    /// A subset of the request's categories; all when absent.
    pub categories: Option<Vec<String>>,
}

impl ConsentRecord {
    /// A grant of `scope` (validated against the request).
    pub fn grant(
        id: ConsentId,
        req: &ConsentRequest,
        member: MemberId,
        scope: GrantInput,
        method: Method,
        now: Timestamp,
    ) -> Result<Self, ConsentError> {
        let pick = |asked: &[String],
                    chosen: Option<Vec<String>>,
                    what: &str|
         -> Result<Vec<String>, ConsentError> {
            match chosen {
                None => Ok(asked.to_vec()),
                Some(c) => {
                    if c.is_empty() {
                        return Err(ConsentError::Invalid(format!(
                            "grant at least one of the requested {what}, or refuse"
                        )));
                    }
                    if c.iter().any(|x| !asked.contains(x)) {
                        // Not named: errors never echo what was sent.
                        return Err(ConsentError::Invalid(format!(
                            "a granted term is not among the requested {what}"
                        )));
                    }
                    Ok(dedup(&c))
                }
            }
        };
        let purposes = pick(&req.purposes, scope.purposes, "purposes")?;
        let categories = pick(&req.categories, scope.categories, "categories")?;
        Ok(Self::new(
            id,
            req,
            member,
            ConsentStatus::Given,
            purposes,
            categories,
            method,
            now,
        ))
    }

    /// A refusal: nothing is permitted by it; it only records the answer.
    pub fn refusal(
        id: ConsentId,
        req: &ConsentRequest,
        member: MemberId,
        method: Method,
        now: Timestamp,
    ) -> Self {
        Self::new(
            id,
            req,
            member,
            ConsentStatus::Refused,
            vec![],
            vec![],
            method,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        id: ConsentId,
        req: &ConsentRequest,
        member: MemberId,
        status: ConsentStatus,
        purposes: Vec<String>,
        categories: Vec<String>,
        method: Method,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            request: req.id,
            controller: req.org,
            subject: member,
            status,
            purposes,
            categories,
            processing: if status == ConsentStatus::Given {
                req.processing.clone()
            } else {
                vec![]
            },
            legal_basis: req.legal_basis.clone(),
            method,
            notice_version: req.notice_version.clone(),
            notice_sha256: req.notice_sha256.clone(),
            given_at: now,
            expires_at: now.plus_seconds(i64::from(req.retention_days) * 86_400),
            withdrawn_at: None,
            subject_pseudonym: None,
            history: vec![ConsentEvent {
                version: 1,
                status,
                method,
                at: now,
            }],
            receipts: Vec::new(),
            cross_sell_from: req.cross_sell_from,
        }
    }

    /// Withdraws the consent (effective at `now`). Returns false if it was not in
    /// force (already withdrawn or a refusal).
    pub fn withdraw(&mut self, method: Method, now: Timestamp) -> bool {
        if self.status != ConsentStatus::Given {
            return false;
        }
        self.status = ConsentStatus::Withdrawn;
        self.withdrawn_at = Some(now);
        let version = self.version() + 1;
        self.history.push(ConsentEvent {
            version,
            status: ConsentStatus::Withdrawn,
            method,
            at: now,
        });
        true
    }

    pub fn version(&self) -> u32 {
        self.history.last().map_or(1, |e| e.version)
    }

    /// In force at `at`: given, not withdrawn, not expired.
    pub fn in_force(&self, at: Timestamp) -> bool {
        self.status == ConsentStatus::Given
            && self.given_at <= at
            && at < self.expires_at
            && self.withdrawn_at.is_none_or(|w| at < w)
    }

    /// Whether a Global Privacy Control opt-out (since `gpc_since`) stops
    /// some of what this consent allows: it was given before the signal
    /// and names a sale, sharing or third-party advertising purpose, or
    /// sharing as processing (a cross-selling consent always does). The
    /// decision point denies those; the member's views say so.
    pub fn stopped_by_gpc(&self, gpc_since: Option<Timestamp>) -> bool {
        use crate::pdp::{GPC_PROCESSING, GPC_PURPOSES};
        self.status == ConsentStatus::Given
            && gpc_since.is_some_and(|g| self.given_at <= g)
            && (self
                .purposes
                .iter()
                .any(|p| GPC_PURPOSES.contains(&p.as_str()))
                || self
                    .processing
                    .iter()
                    .any(|p| GPC_PROCESSING.contains(&p.as_str())))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(b: &[u8]) -> Result<Self, ConsentError> {
        serde_json::from_slice(b)
            .map_err(|_| ConsentError::Invalid("stored consent record is corrupt".into()))
    }
}
