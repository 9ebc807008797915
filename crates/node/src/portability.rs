//! Access and portability (issue 15, item 1): everything the node holds
//! about a member as one signed, versioned JSON document (and as JSON-LD with
//! W3C DPV terms), and its import into another node.
//!
//! The document (`format` `me2b-export`, `version` 1; README "Export and
//! import"):
//!
//! * `member`: id, e-mail address, when the account was made;
//! * `vault`: every record, grouped by kind (profile attributes, interests,
//!   receipts, notes, credentials, offer history), with its times;
//! * `consents`: every consent record with its history and signed receipts
//!   (the trust's cross-selling consents among them);
//! * `opt_outs`: Global Privacy Control and the marketing opt-out;
//! * `trust`: loyalty points and their history per co-op and day, sharing consents;
//! * `audit`: the member's own audit view (numbered, to the minute);
//! * `imported_history`: what earlier imports brought as history;
//! * `signature`: the node's Ed25519 signature (its published key) over the
//!   canonical JSON of everything else (object keys sorted, no spaces).
//!
//! Import checks, before writing anything: the size, that it is JSON of this
//! format, that its version is one this node reads, that its signer is this
//! node or one the governance file trusts (`[portability] trusted_nodes`),
//! that the signature verifies, and every record as a write would. Then the
//! vault records (not credentials) are stored under new ids and everything
//! else is kept as sealed history, in one transaction: consents and
//! credentials come back as history, never as live grants. An export is
//! imported once.

use crate::Node;
use base64::Engine as _;
use me2b_consent::vocabulary::Section;
use me2b_crypto::NodeVerifyingKey;
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::record::RecordContent;
use me2b_domain::{RecordId, Timestamp};
use me2b_storage::{ImportedHistoryRow, StorageError};
use me2b_vault::{MemberSession, VaultError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The export's format name.
pub const EXPORT_FORMAT: &str = "me2b-export";
/// The newest format version this node writes and reads.
pub const EXPORT_VERSION: u64 = 1;
/// The largest import accepted, in bytes.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;
const SIGNING_TAG: &[u8] = b"me2b/export/v1\0";

/// The governance file's `[portability]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Portability {
    /// Other nodes whose exports this node imports: their public keys (hex,
    /// as `/.well-known/me2b/node-keys` serves them). This node's own are
    /// always accepted.
    pub trusted_nodes: Vec<String>,
}

/// Why an export or import failed. No message carries the document's content.
#[derive(Debug, thiserror::Error)]
pub enum PortabilityError {
    #[error("this is not a me2b export: {0}")]
    Malformed(&'static str),
    #[error("the import is larger than the limit of {MAX_IMPORT_BYTES} bytes")]
    TooLarge,
    #[error("the export is of a newer format version than this node reads ({EXPORT_VERSION}): update this node first")]
    NewerFormat,
    #[error("the export is signed by a node this node does not trust: its operator names trusted nodes in the governance file ([portability] trusted_nodes)")]
    UnknownSigner,
    #[error("the export's signature does not verify: it was changed after its node signed it")]
    BadSignature,
    #[error("this export was imported already")]
    AlreadyImported,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Consent(#[from] me2b_consent::ServiceError),
    #[error(transparent)]
    Trust(#[from] me2b_trust::TrustError),
    #[error(transparent)]
    Storage(StorageError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
}

impl From<StorageError> for PortabilityError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict => Self::AlreadyImported,
            e => Self::Storage(e),
        }
    }
}

/// The JSON with object keys sorted and no spaces: what is signed.
pub fn canonical(v: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

fn signed_message(doc: &Value) -> Vec<u8> {
    let mut m = SIGNING_TAG.to_vec();
    m.extend_from_slice(&canonical(doc));
    m
}

fn record_json(r: &me2b_vault::RecordView) -> Value {
    json!({
        "id": r.id.to_string(),
        "created_at": r.created_at.to_rfc3339(),
        "updated_at": r.updated_at.to_rfc3339(),
        "revision": r.revision,
        "content": r.content,
    })
}

fn section(c: &RecordContent) -> &'static str {
    match c {
        RecordContent::ProfileAttribute(_) => "profile_attributes",
        RecordContent::Interest(_) => "interests",
        RecordContent::Receipt(_) => "receipts",
        RecordContent::Note(_) => "notes",
        RecordContent::Credential(_) => "credentials",
        RecordContent::OfferHistory(_) => "offer_history",
        // An intent lives on the node it was published on: history only.
        RecordContent::Intent(_) => "intents",
    }
}

/// The sections of `vault`, in order.
const SECTIONS: [&str; 7] = [
    "profile_attributes",
    "interests",
    "receipts",
    "notes",
    "credentials",
    "offer_history",
    "intents",
];

impl Node {
    /// Everything the node holds about the member, as the export document
    /// (unsigned; [`Node::export`] signs it).
    async fn export_document(&self, s: &MemberSession) -> Result<Value, PortabilityError> {
        let member = s.member;
        let me = self.vault.me(s).await?;
        let mut vault = Map::new();
        for sec in SECTIONS {
            vault.insert(sec.to_owned(), Value::Array(Vec::new()));
        }
        for r in self.vault.all_records(s).await? {
            if let Some(Value::Array(a)) = vault.get_mut(section(&r.content)) {
                a.push(record_json(&r));
            }
        }
        let consents: Vec<Value> = self
            .consents
            .consents_of(member)
            .await?
            .into_iter()
            .map(|(r, org)| {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("controller_name".into(), Value::String(org));
                }
                v
            })
            .collect();
        let trust = if self.store.trust_enrolment(member).await?.is_some() {
            serde_json::to_value(self.trust.member_view(member).await?).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let also = self.trust.audit_subjects(member).await?;
        let mut audit = Vec::new();
        loop {
            let page = self
                .vault
                .audit_view(s, &also, audit.len() as u64, me2b_vault::MAX_PAGE)
                .await?;
            let n = page.entries.len();
            for e in page.entries {
                let Ok(ev) = e.entry.event() else { continue };
                audit.push(json!({
                    "number": e.number,
                    "at": e.minute.to_rfc3339(),
                    "actor": ev.actor,
                    "action": ev.action,
                    "object": ev.object,
                    "purpose": ev.purpose,
                    "category": ev.category,
                    "processing": ev.processing,
                    "outcome": ev.outcome,
                }));
            }
            if (n as u64) < me2b_vault::MAX_PAGE {
                break;
            }
        }
        let mut imported = Vec::new();
        for h in self.store.imported_history(member).await? {
            let id = RecordId::from_slice(&h.import_id).map_err(|_| VaultError::Integrity {
                what: "imported history",
            })?;
            let plain = self.vault.open_bytes(s, id, &h.sealed)?;
            imported.push(serde_json::from_slice::<Value>(&plain).map_err(|_| {
                VaultError::Integrity {
                    what: "imported history",
                }
            })?);
        }
        let key = self.keys.verifying_key();
        Ok(json!({
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": self.clock.now().to_rfc3339(),
            "node": {"key_id": key.key_id(), "public_key": hex::encode(key.to_bytes())},
            "member": {
                "member_id": member.to_string(),
                "email": me.email.as_str(),
                "created_at": me.created_at.to_rfc3339(),
            },
            "vault": vault,
            "consents": consents,
            "opt_outs": {
                "gpc_since": self.consents.gpc_since(member).await?.map(Timestamp::to_rfc3339),
                "marketing_since": self.consents.marketing_opted_out_since(member).await?.map(Timestamp::to_rfc3339),
            },
            "trust": trust,
            "audit": audit,
            "imported_history": imported,
        }))
    }

    fn sign_document(&self, mut doc: Value) -> Value {
        let sig = self.keys.sign(&signed_message(&doc));
        let key = self.keys.verifying_key();
        if let Value::Object(m) = &mut doc {
            m.insert(
                "signature".into(),
                json!({
                    "alg": "EdDSA",
                    "public_key": hex::encode(key.to_bytes()),
                    "value": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig),
                }),
            );
        }
        doc
    }

    /// The member's signed export (JSON). Audited.
    #[tracing::instrument(skip_all)]
    pub async fn export(&self, s: &MemberSession) -> Result<Value, PortabilityError> {
        let doc = self.export_document(s).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(s.member), Action::MemberExport)
                    .subject(s.member)
                    .object("json"),
            )
            .await?;
        Ok(self.sign_document(doc))
    }

    /// The member's signed export as JSON-LD with W3C DPV terms. Audited.
    #[tracing::instrument(skip_all)]
    pub async fn export_jsonld(&self, s: &MemberSession) -> Result<Value, PortabilityError> {
        let doc = self.export_document(s).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(s.member), Action::MemberExport)
                    .subject(s.member)
                    .object("jsonld"),
            )
            .await?;
        Ok(self.sign_document(self.to_jsonld(&doc)))
    }

    fn to_jsonld(&self, doc: &Value) -> Value {
        let v = self.consents.vocabulary();
        let iri = |sec: Section, id: &Value| -> Value {
            let id = id.as_str().unwrap_or_default();
            match v.term(sec, id) {
                Some(t) => json!({"@id": t.iri}),
                None => json!({"@id": format!("me2b:{id}")}),
            }
        };
        let iris = |sec: Section, ids: &Value| -> Value {
            Value::Array(
                ids.as_array()
                    .map(|a| a.iter().map(|i| iri(sec, i)).collect())
                    .unwrap_or_default(),
            )
        };
        let status = |s: &Value| match s.as_str() {
            Some("given") => "dpv:ConsentGiven",
            Some("refused") => "dpv:ConsentRefused",
            _ => "dpv:ConsentWithdrawn",
        };
        let consents: Vec<Value> = doc["consents"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        json!({
                            "@type": "me2b:ConsentRecord",
                            "@id": format!("urn:me2b:consent:{}", c["id"].as_str().unwrap_or_default()),
                            "me2b:consentStatus": {"@id": status(&c["status"])},
                            "me2b:controller": c["controller_name"],
                            "dpv:hasPurpose": iris(Section::Purpose, &c["purposes"]),
                            "dpv:hasPersonalData": iris(Section::Category, &c["categories"]),
                            "dpv:hasProcessing": iris(Section::Processing, &c["processing"]),
                            "me2b:legalBasis": iri(Section::LegalBasis, &c["legal_basis"]),
                            "me2b:record": c,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut records = Vec::new();
        for sec in SECTIONS {
            for r in doc["vault"][sec].as_array().into_iter().flatten() {
                let content = RecordContent::from_json(r["content"].to_string().as_bytes()).ok();
                let category = content
                    .as_ref()
                    .and_then(me2b_consent::service::record_category)
                    .and_then(|c| v.term(Section::Category, c))
                    .map(|t| json!({"@id": t.iri}));
                records.push(json!({
                    "@type": "me2b:VaultRecord",
                    "@id": format!("urn:me2b:record:{}", r["id"].as_str().unwrap_or_default()),
                    "me2b:kind": sec,
                    "dpv:hasPersonalData": category,
                    "me2b:content": r,
                }));
            }
        }
        json!({
            "@context": {
                "dpv": "https://w3id.org/dpv#",
                "pd": "https://w3id.org/dpv/pd#",
                "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
                "me2b": "https://w3id.org/me2b/export#",
                "me2b:record": {"@type": "@json"},
                "me2b:content": {"@type": "@json"},
                "me2b:audit": {"@type": "@json"},
                "me2b:trust": {"@type": "@json"},
                "me2b:optOuts": {"@type": "@json"},
                "me2b:importedHistory": {"@type": "@json"},
            },
            "@type": "me2b:Export",
            "me2b:format": format!("{EXPORT_FORMAT}+jsonld"),
            "me2b:version": EXPORT_VERSION,
            "me2b:exportedAt": doc["exported_at"],
            "me2b:node": doc["node"]["public_key"],
            "dpv:hasRight": [{"@id": "eu-gdpr:A15"}, {"@id": "eu-gdpr:A20"}],
            "me2b:subject": {"@id": format!("urn:me2b:member:{}", doc["member"]["member_id"].as_str().unwrap_or_default()),
                "me2b:email": doc["member"]["email"], "me2b:createdAt": doc["member"]["created_at"]},
            "me2b:records": records,
            "me2b:consents": consents,
            "me2b:optOuts": doc["opt_outs"],
            "me2b:trust": doc["trust"],
            "me2b:audit": doc["audit"],
            "me2b:importedHistory": doc["imported_history"],
        })
    }

    /// Checks a signed export: its format, version, signer and signature.
    /// Returns the document without its signature and the signer's key.
    pub fn check_export(&self, bytes: &[u8]) -> Result<(Value, String), PortabilityError> {
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(PortabilityError::TooLarge);
        }
        let mut doc: Value =
            serde_json::from_slice(bytes).map_err(|_| PortabilityError::Malformed("not JSON"))?;
        let Value::Object(m) = &mut doc else {
            return Err(PortabilityError::Malformed("not a JSON object"));
        };
        if m.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
            return Err(PortabilityError::Malformed("no `format: me2b-export`"));
        }
        let version = m
            .get("version")
            .and_then(Value::as_u64)
            .ok_or(PortabilityError::Malformed("no format version"))?;
        if version > EXPORT_VERSION {
            return Err(PortabilityError::NewerFormat);
        }
        if version == 0 {
            return Err(PortabilityError::Malformed("format version 0"));
        }
        let sig = m
            .remove("signature")
            .ok_or(PortabilityError::Malformed("not signed"))?;
        let (Some(key_hex), Some(value)) = (sig["public_key"].as_str(), sig["value"].as_str())
        else {
            return Err(PortabilityError::Malformed(
                "the signature is not well-formed",
            ));
        };
        let own = hex::encode(self.keys.verifying_key().to_bytes());
        let trusted = key_hex.eq_ignore_ascii_case(&own)
            || self
                .governance
                .portability
                .trusted_nodes
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key_hex));
        if !trusted {
            return Err(PortabilityError::UnknownSigner);
        }
        let key = hex::decode(key_hex)
            .ok()
            .and_then(|b| NodeVerifyingKey::from_bytes(&b).ok())
            .ok_or(PortabilityError::Malformed(
                "the signer's key is not well-formed",
            ))?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| PortabilityError::BadSignature)?;
        key.verify(&signed_message(&doc), &sig)
            .map_err(|_| PortabilityError::BadSignature)?;
        Ok((doc, key_hex.to_ascii_lowercase()))
    }

    /// Imports a signed export into the member's vault: its records (not
    /// credentials) under new ids, everything else as sealed history, in one
    /// transaction. Nothing is written unless every check passes. Returns how
    /// many records were restored.
    #[tracing::instrument(skip_all)]
    pub async fn import(&self, s: &MemberSession, bytes: &[u8]) -> Result<usize, PortabilityError> {
        let (doc, signer) = self.check_export(bytes)?;
        let time = |v: &Value| {
            v.as_str()
                .and_then(Timestamp::parse_rfc3339)
                .ok_or(PortabilityError::Malformed(
                    "a record's time is not RFC 3339",
                ))
        };
        let mut restore = Vec::new();
        let Some(vault) = doc["vault"].as_object() else {
            return Err(PortabilityError::Malformed("no vault"));
        };
        for (sec, records) in vault {
            if !SECTIONS.contains(&sec.as_str()) {
                return Err(PortabilityError::Malformed("an unknown vault section"));
            }
            let Some(records) = records.as_array() else {
                return Err(PortabilityError::Malformed("a vault section is not a list"));
            };
            if sec == "credentials" || sec == "intents" {
                // History only: never a live credential, nor an intent
                // (it lives on the node it was published on).
                continue;
            }
            for r in records {
                let content = RecordContent::from_json(r["content"].to_string().as_bytes())
                    .map_err(|_| PortabilityError::Malformed("a vault record is not valid"))?;
                if section(&content) != sec {
                    return Err(PortabilityError::Malformed(
                        "a record is in the wrong section",
                    ));
                }
                restore.push((content, time(&r["created_at"])?, time(&r["updated_at"])?));
            }
        }
        let stored = self.vault.seal_for_import(s, &restore)?;
        let history = json!({
            "origin_node": signer,
            "exported_at": doc["exported_at"],
            "imported_at": self.clock.now().to_rfc3339(),
            "member": doc["member"],
            "consents": doc["consents"],
            "credentials": doc["vault"]["credentials"],
            "intents": doc["vault"]["intents"],
            "opt_outs": doc["opt_outs"],
            "trust": doc["trust"],
            "audit": doc["audit"],
            "imported_history": doc["imported_history"],
        });
        // One id per export (its signed content): importing it twice is refused.
        let digest = Sha256::digest(canonical(&doc));
        let id =
            RecordId::from_slice(&digest[..16]).map_err(|_| PortabilityError::Malformed("id"))?;
        let plain = serde_json::to_vec(&history).unwrap_or_default();
        let row = ImportedHistoryRow {
            import_id: *id.as_bytes(),
            member: s.member,
            imported_at: self.clock.now(),
            sealed: self.vault.seal_bytes(s, id, &plain),
        };
        self.store.import_member_data(&stored, &row).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(s.member), Action::MemberImport)
                    .subject(s.member)
                    .object(id),
            )
            .await?;
        // What consents in force allow covers the restored records too.
        self.consents.refresh_envelopes(s).await?;
        Ok(stored.len())
    }
}
