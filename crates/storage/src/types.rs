use me2b_domain::org::{OrgKind, Roles};
use me2b_domain::{
    ApiKeyId, ConsentId, ConsentRequestId, MemberId, OfferId, OrgId, RecordId, Timestamp,
};

/// A member account as created at sign-up.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub id: MemberId,
    /// HMAC of the normalised e-mail, for login lookup.
    pub email_index: [u8; 32],
    /// The e-mail, encrypted under the member's data key.
    pub email_ct: Vec<u8>,
    /// Argon2id PHC string.
    pub passphrase_hash: String,
    /// The member's data key, wrapped by the node's key-encryption key.
    pub wrapped_dek: Vec<u8>,
    pub created_at: Timestamp,
}

/// A member account as read back. After crypto-shredding, the key and
/// credentials are gone.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub id: MemberId,
    pub email_ct: Option<Vec<u8>>,
    pub passphrase_hash: Option<String>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub erasing: bool,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub token_hash: [u8; 32],
    pub member: MemberId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct SessionWithKey {
    pub member: MemberId,
    pub expires_at: Timestamp,
    /// None once the member has been crypto-shredded.
    pub wrapped_dek: Option<Vec<u8>>,
}

/// A vault record as stored: ids, times, and the sealed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub id: RecordId,
    pub member: MemberId,
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub key_hash: [u8; 32],
    pub roles: Roles,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A consent request: its organisation and its JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRequestRow {
    pub id: ConsentRequestId,
    pub org: OrgId,
    pub created_at: Timestamp,
    pub body: Vec<u8>,
}

/// A consent record: the columns the decision point looks up by, and the full
/// record with its history as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: ConsentId,
    pub request: ConsentRequestId,
    pub org: OrgId,
    pub member: MemberId,
    /// `given`, `refused` or `withdrawn`.
    pub status: String,
    pub version: i64,
    pub given_at: Timestamp,
    pub expires_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
    pub body: Vec<u8>,
}

/// A published offer: the columns the catalogue selects by, and the full offer as
/// JSON (opaque to storage). Never per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRow {
    pub id: OfferId,
    pub org: OrgId,
    /// `pending_partners`, `active` or `withdrawn`.
    pub status: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub valid_until: Timestamp,
    pub body: Vec<u8>,
}

/// An offer's aggregate counters, and its released figures as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferCounters {
    pub reached: u64,
    pub accepted: u64,
    pub released: Option<Vec<u8>>,
}
