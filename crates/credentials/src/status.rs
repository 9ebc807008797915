//! Revocation: one status list per issuer key, in the shape of the W3C Bitstring
//! Status List v1.0.
//!
//! * A list has at least [`MIN_STATUS_LIST_BITS`] (131,072) entries, so that one
//!   index hides among many; bit `i` is the most significant bit of byte `i / 8`
//!   counted from the left, as the W3C specification says.
//! * `encodedList` is the multibase base64url (no padding, prefix `u`) of the GZIP
//!   of the bitstring.
//! * Decoding is bounded: at most [`MAX_ENCODED_LIST_BYTES`] of text and
//!   [`MAX_STATUS_LIST_BITS`] of decompressed bits, so a "gzip bomb" is refused
//!   without being inflated.

use crate::schema::StatusIndex;
use crate::CredentialError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The minimum number of entries (16 KiB of bits), as the W3C specification asks.
pub const MIN_STATUS_LIST_BITS: usize = 131_072;
/// The largest list this crate builds or decodes (2 MiB of bits).
pub const MAX_STATUS_LIST_BITS: usize = 1 << 24;
/// The largest `encodedList` accepted for decoding.
pub const MAX_ENCODED_LIST_BYTES: usize = 4 * 1024 * 1024;

/// A revocation status list: bit set = revoked.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: Vec<u8>,
}

impl std::fmt::Debug for StatusList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatusList({} entries)", self.len())
    }
}

impl Default for StatusList {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusList {
    /// An empty (nothing revoked) list of [`MIN_STATUS_LIST_BITS`] entries.
    pub fn new() -> Self {
        Self {
            bits: vec![0; MIN_STATUS_LIST_BITS / 8],
        }
    }

    /// An empty list of `entries` entries: a multiple of 8, between the minimum
    /// and the maximum.
    pub fn with_entries(entries: usize) -> Result<Self, CredentialError> {
        if !(MIN_STATUS_LIST_BITS..=MAX_STATUS_LIST_BITS).contains(&entries)
            || !entries.is_multiple_of(8)
        {
            return Err(CredentialError::InvalidStatusListSize);
        }
        Ok(Self {
            bits: vec![0; entries / 8],
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.bits.len() * 8
    }

    /// Never true: a list has at least [`MIN_STATUS_LIST_BITS`] entries.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    fn position(&self, index: StatusIndex) -> Result<(usize, u8), CredentialError> {
        let i = usize::try_from(index.get()).map_err(|_| CredentialError::StatusIndexOutOfRange)?;
        if i >= self.len() {
            return Err(CredentialError::StatusIndexOutOfRange);
        }
        Ok((i / 8, 0x80 >> (i % 8)))
    }

    /// Whether the entry is set (revoked).
    pub fn get(&self, index: StatusIndex) -> Result<bool, CredentialError> {
        let (byte, mask) = self.position(index)?;
        Ok(self.bits.get(byte).is_some_and(|b| b & mask != 0))
    }

    /// Sets or clears one entry.
    pub fn set(&mut self, index: StatusIndex, revoked: bool) -> Result<(), CredentialError> {
        let (byte, mask) = self.position(index)?;
        let b = self
            .bits
            .get_mut(byte)
            .ok_or(CredentialError::StatusIndexOutOfRange)?;
        if revoked {
            *b |= mask;
        } else {
            *b &= !mask;
        }
        Ok(())
    }

    /// Marks the entry as revoked.
    pub fn revoke(&mut self, index: StatusIndex) -> Result<(), CredentialError> {
        self.set(index, true)
    }

    /// Whether the entry is revoked.
    pub fn is_revoked(&self, index: StatusIndex) -> Result<bool, CredentialError> {
        self.get(index)
    }

    /// The W3C `encodedList`: `u` + base64url-no-pad(gzip(bitstring)).
    pub fn encode(&self) -> String {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        // Writing into a Vec cannot fail.
        let compressed = gz
            .write_all(&self.bits)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        format!("u{}", URL_SAFE_NO_PAD.encode(compressed))
    }

    /// Parses an `encodedList` (untrusted input).
    pub fn decode(encoded: &str) -> Result<Self, CredentialError> {
        if encoded.len() > MAX_ENCODED_LIST_BYTES {
            return Err(CredentialError::Oversized {
                max: MAX_ENCODED_LIST_BYTES,
            });
        }
        let b64 = encoded
            .strip_prefix('u')
            .ok_or(CredentialError::MalformedStatusList(
                "not multibase base64url (prefix `u`)",
            ))?;
        let compressed = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| CredentialError::MalformedStatusList("not base64url without padding"))?;
        let mut bits = Vec::new();
        let limit = (MAX_STATUS_LIST_BITS / 8) as u64 + 1;
        GzDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bits)
            .map_err(|_| CredentialError::MalformedStatusList("not gzip"))?;
        if bits.len() * 8 > MAX_STATUS_LIST_BITS || bits.len() * 8 < MIN_STATUS_LIST_BITS {
            return Err(CredentialError::InvalidStatusListSize);
        }
        Ok(Self { bits })
    }

    /// The list as the `credentialSubject` of a W3C `BitstringStatusListCredential`
    /// (unsigned; the node publishes it next to the issuer's public key).
    pub fn to_subject(&self, id: &str) -> BitstringStatusList {
        BitstringStatusList {
            id: id.to_owned(),
            kind: "BitstringStatusList".to_owned(),
            status_purpose: "revocation".to_owned(),
            encoded_list: self.encode(),
        }
    }
}

/// The `credentialSubject` of a W3C `BitstringStatusListCredential`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BitstringStatusList {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status_purpose: String,
    pub encoded_list: String,
}

impl BitstringStatusList {
    /// The decoded list, if this is a revocation list.
    pub fn list(&self) -> Result<StatusList, CredentialError> {
        if self.kind != "BitstringStatusList" || self.status_purpose != "revocation" {
            return Err(CredentialError::MalformedStatusList(
                "not a BitstringStatusList for revocation",
            ));
        }
        StatusList::decode(&self.encoded_list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_bit_order() {
        let mut list = StatusList::new();
        assert_eq!(list.len(), 131_072);
        assert!(!list.get(StatusIndex::new(0)).unwrap());
        list.revoke(StatusIndex::new(0)).unwrap();
        list.revoke(StatusIndex::new(9)).unwrap();
        list.revoke(StatusIndex::new(131_071)).unwrap();
        assert_eq!(list.bits[0], 0x80, "index 0 is the leftmost bit");
        assert_eq!(list.bits[1], 0x40);
        assert_eq!(list.bits[16_383], 0x01);
        assert!(list.is_revoked(StatusIndex::new(9)).unwrap());
        list.set(StatusIndex::new(9), false).unwrap();
        assert!(!list.is_revoked(StatusIndex::new(9)).unwrap());
        assert_eq!(
            list.get(StatusIndex::new(131_072)).unwrap_err(),
            CredentialError::StatusIndexOutOfRange
        );
    }

    #[test]
    fn encoded_list_round_trips() {
        let mut list = StatusList::new();
        for i in [3u32, 77, 4096, 100_000] {
            list.revoke(StatusIndex::new(i)).unwrap();
        }
        let encoded = list.encode();
        assert!(encoded.starts_with('u'));
        assert!(!encoded.contains('='));
        assert_eq!(StatusList::decode(&encoded).unwrap(), list);
        let subject = list.to_subject("https://coop.example/status/1");
        let json = serde_json::to_string(&subject).unwrap();
        assert!(json.contains("\"statusPurpose\":\"revocation\""));
        assert!(json.contains("\"encodedList\":\"u"));
        let back: BitstringStatusList = serde_json::from_str(&json).unwrap();
        assert_eq!(back.list().unwrap(), list);
    }

    #[test]
    fn bad_encodings_are_refused() {
        assert!(matches!(
            StatusList::decode("H4sI").unwrap_err(),
            CredentialError::MalformedStatusList(_)
        ));
        assert!(matches!(
            StatusList::decode("u!!!").unwrap_err(),
            CredentialError::MalformedStatusList(_)
        ));
        assert!(matches!(
            StatusList::decode("uAAAA").unwrap_err(),
            CredentialError::MalformedStatusList(_)
        ));
        // Too small a list.
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&[0u8; 100]).unwrap();
        let small = format!("u{}", URL_SAFE_NO_PAD.encode(gz.finish().unwrap()));
        assert_eq!(
            StatusList::decode(&small).unwrap_err(),
            CredentialError::InvalidStatusListSize
        );
        // A bomb: far more than the maximum once inflated.
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&vec![0u8; 8 * 1024 * 1024]).unwrap();
        let bomb = format!("u{}", URL_SAFE_NO_PAD.encode(gz.finish().unwrap()));
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            StatusList::decode(&bomb).unwrap_err(),
            CredentialError::InvalidStatusListSize
        );
        assert!(StatusList::with_entries(131_071).is_err());
        assert!(StatusList::with_entries(MAX_STATUS_LIST_BITS + 8).is_err());
        assert_eq!(StatusList::with_entries(262_144).unwrap().len(), 262_144);
    }
}
