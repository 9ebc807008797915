//! The node's keys for member metadata at rest (issue 13): the
//! implementation of [`me2b_domain::meta::MetadataKeys`].
//!
//! Three keys, derived by HKDF-SHA256 from the master key's metadata root:
//! - locators: HMAC-SHA256 over the table's label and the member id;
//! - sealing: XChaCha20-Poly1305 (format version byte, random nonce), the
//!   associated data binding the table and the row's id;
//! - audit subjects: HMAC-SHA256 over the member id and the member's salt,
//!   truncated to 16 bytes;
//! - audit entry tags: HMAC-SHA256, under a key of their own, over an audit
//!   subject (or a trust pseudonym) and the entry's number under it,
//!   truncated to 16 bytes: the log's `subject` column, one value per entry.

use crate::envelope::{Aad, DataKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use me2b_domain::meta::{MetaTable, MetadataKeys};
use me2b_domain::{MemberId, Random};
use sha2::Sha256;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The node's metadata keys. `Debug` shows nothing.
pub struct NodeMetadataKeys {
    locator: Zeroizing<[u8; 32]>,
    seal: DataKey,
    audit: Zeroizing<[u8; 32]>,
    entry_tag: Zeroizing<[u8; 32]>,
    rng: Arc<dyn Random>,
}

impl std::fmt::Debug for NodeMetadataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetadataKeys").finish_non_exhaustive()
    }
}

fn expand(hk: &Hkdf<Sha256>, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail.
    let _ = hk.expand(info, out.as_mut());
    out
}

fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 rejected a 32-byte key")
}

impl NodeMetadataKeys {
    pub(crate) fn derive(root: &[u8; 32], rng: Arc<dyn Random>) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"me2b/metadata"), root);
        let seal = expand(&hk, b"me2b/metadata/seal/v1");
        Self {
            locator: expand(&hk, b"me2b/metadata/locator/v1"),
            seal: DataKey::from_bytes(*seal),
            audit: expand(&hk, b"me2b/metadata/audit-subject/v1"),
            entry_tag: expand(&hk, b"me2b/metadata/audit-entry-tag/v1"),
            rng,
        }
    }
}

impl MetadataKeys for NodeMetadataKeys {
    fn locator(&self, table: MetaTable, member: MemberId) -> [u8; 32] {
        let mut m = mac(&self.locator);
        let label = table.label();
        m.update(&(label.len() as u64).to_be_bytes());
        m.update(label.as_bytes());
        m.update(member.as_bytes());
        m.finalize().into_bytes().into()
    }

    fn scoped_locator(&self, table: MetaTable, member: MemberId, scope: &[u8]) -> [u8; 32] {
        // The unscoped locator's input with the scope appended, length
        // first: never the input of another table, member or scope.
        let mut m = mac(&self.locator);
        let label = table.label();
        m.update(&(label.len() as u64).to_be_bytes());
        m.update(label.as_bytes());
        m.update(member.as_bytes());
        m.update(&(scope.len() as u64).to_be_bytes());
        m.update(scope);
        m.finalize().into_bytes().into()
    }

    fn scoped_tag(&self, table: MetaTable, tag: &[u8; 32], scope: &[u8]) -> [u8; 32] {
        // A marker no member id starts the same way (member locators put
        // the 16-byte id right after the label), then the tag and the scope,
        // lengths first.
        let mut m = mac(&self.locator);
        let label = table.label();
        m.update(&(label.len() as u64).to_be_bytes());
        m.update(label.as_bytes());
        m.update(b"\0scoped-tag\0");
        m.update(&(tag.len() as u64).to_be_bytes());
        m.update(tag);
        m.update(&(scope.len() as u64).to_be_bytes());
        m.update(scope);
        m.finalize().into_bytes().into()
    }

    fn seal(&self, table: MetaTable, row: &[u8], plain: &[u8]) -> Vec<u8> {
        self.seal
            .seal(self.rng.as_ref(), &Aad::metadata(table.label(), row), plain)
    }

    fn open(&self, table: MetaTable, row: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.seal
            .open(&Aad::metadata(table.label(), row), sealed)
            .ok()
    }

    fn audit_subject(&self, member: MemberId, salt: &[u8]) -> MemberId {
        let mut m = mac(&self.audit);
        m.update(member.as_bytes());
        m.update(&(salt.len() as u64).to_be_bytes());
        m.update(salt);
        let out = m.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[..16]);
        // 16 bytes always make a UUID.
        MemberId::from_slice(&id).unwrap_or(member)
    }

    fn audit_entry_tag(&self, name: MemberId, k: u64) -> MemberId {
        // Fixed-size input (16-byte name, 8-byte number) under a key used
        // for nothing else.
        let mut m = mac(&self.entry_tag);
        m.update(name.as_bytes());
        m.update(&k.to_be_bytes());
        let out = m.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[..16]);
        MemberId::from_slice(&id).unwrap_or(name)
    }

    fn fresh_salt(&self) -> [u8; 16] {
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        salt
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Keyring, MasterKey, SeededRandom};

    fn keys(seed: u8) -> NodeMetadataKeys {
        Keyring::derive(&MasterKey::from_bytes([seed; 32]))
            .metadata_keys(Arc::new(SeededRandom::new(u64::from(seed))))
    }

    #[test]
    fn locators_differ_per_table_and_key_and_hide_the_id() {
        let m = MemberId::from_slice(&[9; 16]).unwrap();
        let k = keys(1);
        let a = k.locator(MetaTable::Sessions, m);
        assert_eq!(a, k.locator(MetaTable::Sessions, m));
        assert_ne!(a, k.locator(MetaTable::Consents, m));
        assert_ne!(a, keys(2).locator(MetaTable::Sessions, m));
        assert!(!a.windows(16).any(|w| w == m.as_bytes()));
    }

    #[test]
    fn scoped_tags_differ_per_scope_table_and_key() {
        let k = keys(1);
        let t = [7u8; 32];
        let a = k.scoped_tag(MetaTable::TrustReceipts, &t, &[1; 16]);
        assert_eq!(a, k.scoped_tag(MetaTable::TrustReceipts, &t, &[1; 16]));
        assert_ne!(a, k.scoped_tag(MetaTable::TrustReceipts, &t, &[2; 16]));
        assert_ne!(a, k.scoped_tag(MetaTable::TrustLoyaltyDays, &t, &[1; 16]));
        assert_ne!(
            a,
            k.scoped_tag(MetaTable::TrustReceipts, &[8; 32], &[1; 16])
        );
        assert_ne!(
            a,
            keys(2).scoped_tag(MetaTable::TrustReceipts, &t, &[1; 16])
        );
        assert_ne!(a, t);
    }

    #[test]
    fn scoped_locators_differ_per_scope_and_from_the_member_locator() {
        let m = MemberId::from_slice(&[9; 16]).unwrap();
        let k = keys(1);
        let a = k.scoped_locator(MetaTable::Consents, m, &[1; 16]);
        assert_eq!(a, k.scoped_locator(MetaTable::Consents, m, &[1; 16]));
        assert_ne!(a, k.scoped_locator(MetaTable::Consents, m, &[2; 16]));
        assert_ne!(a, k.locator(MetaTable::Consents, m));
        assert_ne!(a, keys(2).scoped_locator(MetaTable::Consents, m, &[1; 16]));
    }

    #[test]
    fn sealed_values_open_only_for_their_table_and_row() {
        let k = keys(3);
        let s1 = k.seal(MetaTable::Consents, b"row1", b"member");
        let s2 = k.seal(MetaTable::Consents, b"row1", b"member");
        assert_ne!(s1, s2, "fresh nonce");
        assert_eq!(s1[0], crate::ENVELOPE_VERSION);
        assert_eq!(
            k.open(MetaTable::Consents, b"row1", &s1).unwrap(),
            b"member"
        );
        assert!(k.open(MetaTable::Consents, b"row2", &s1).is_none());
        assert!(k.open(MetaTable::TrustSharing, b"row1", &s1).is_none());
        assert!(keys(4).open(MetaTable::Consents, b"row1", &s1).is_none());
    }

    #[test]
    fn audit_entry_tags_differ_per_entry_name_and_key() {
        let n = MemberId::from_slice(&[5; 16]).unwrap();
        let k = keys(5);
        let t0 = k.audit_entry_tag(n, 0);
        assert_eq!(t0, k.audit_entry_tag(n, 0));
        let all: std::collections::HashSet<MemberId> =
            (0..1000).map(|i| k.audit_entry_tag(n, i)).collect();
        assert_eq!(all.len(), 1000, "one value per entry");
        assert!(!all.contains(&n));
        let other = MemberId::from_slice(&[6; 16]).unwrap();
        assert_ne!(t0, k.audit_entry_tag(other, 0));
        assert_ne!(t0, keys(6).audit_entry_tag(n, 0));
        assert_ne!(t0, k.audit_subject(n, &0u64.to_be_bytes()));
    }

    #[test]
    fn audit_subjects_change_with_the_salt() {
        let m = MemberId::from_slice(&[5; 16]).unwrap();
        let k = keys(5);
        let a = k.audit_subject(m, &[1; 16]);
        assert_eq!(a, k.audit_subject(m, &[1; 16]));
        assert_ne!(a, k.audit_subject(m, &[2; 16]));
        assert_ne!(a, m);
    }
}
