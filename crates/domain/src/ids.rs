//! Typed identifiers. All are random 128-bit values (UUID v4 layout) drawn from a
//! [`Random`](crate::Random) source, so that an identifier never encodes anything
//! about the person or organisation it names.

use crate::{DomainError, Random};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn generate(rng: &dyn Random) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes);
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
            /// The 16 raw bytes, as stored.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// Parses the 16 raw bytes read back from storage.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, DomainError> {
                uuid::Uuid::from_slice(bytes)
                    .map(Self)
                    .map_err(|_| DomainError::invalid($field, "must be 16 bytes"))
            }
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
            /// The all-zero id, which `generate` never gives (a name for
            /// "no one" where an id is required).
            pub const fn nil() -> Self {
                Self(uuid::Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| DomainError::invalid($field, "must be a UUID"))
            }
        }

        #[cfg(feature = "sqlx")]
        sqlx_id!($name);
    };
}

/// sqlx `Type`/`Encode`/`Decode` for a typed id, on any database whose byte
/// strings sqlx knows (SQLite BLOB, PostgreSQL BYTEA): the 16 raw bytes of
/// [`as_bytes`](MemberId::as_bytes). Decoding parses: a value of another
/// length is a decode error, never a panic.
#[cfg(feature = "sqlx")]
macro_rules! sqlx_id {
    ($name:ident) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            Vec<u8>: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <Vec<u8> as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <Vec<u8> as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            Vec<u8>: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <Vec<u8> as sqlx::Encode<'q, DB>>::encode(self.as_bytes().to_vec(), buf)
            }
            fn size_hint(&self) -> usize {
                16
            }
        }

        // Through `Vec<u8>`, not `&[u8]`: PostgreSQL's text format (a
        // simple query) decodes only to the former.
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            Vec<u8>: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let bytes = <Vec<u8> as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(Self::from_slice(&bytes)?)
            }
        }
    };
}

typed_id!(
    /// A member: a person who keeps a vault. Pseudonymous: it is random.
    MemberId,
    "member_id"
);
typed_id!(
    /// One record in a member's vault.
    RecordId,
    "record_id"
);
typed_id!(
    /// An organisation: a co-op or a brand.
    OrgId,
    "org_id"
);
typed_id!(
    /// One API key of an organisation.
    ApiKeyId,
    "api_key_id"
);

typed_id!(
    /// A consent request published by an organisation.
    ConsentRequestId,
    "consent_request_id"
);
typed_id!(
    /// One member's consent record (granted, refused or withdrawn).
    ConsentId,
    "consent_id"
);
typed_id!(
    /// An offer published by an organisation (or a coalition of them).
    OfferId,
    "offer_id"
);
typed_id!(
    /// A pseudonymised receipt held by the data trust.
    TrustReceiptId,
    "receipt_id"
);
typed_id!(
    /// A member's consent to share one co-op's receipts with another.
    SharingId,
    "sharing_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::tests::CountingRandom;

    #[test]
    fn ids_round_trip_through_bytes_and_text() {
        let rng = CountingRandom::default();
        let id = MemberId::generate(&rng);
        assert_eq!(MemberId::from_slice(id.as_bytes()), Ok(id));
        assert_eq!(id.to_string().parse::<MemberId>(), Ok(id));
        assert_ne!(id, MemberId::generate(&rng));
        assert!(MemberId::from_slice(&[1, 2, 3]).is_err());
        assert!("not-a-uuid".parse::<RecordId>().is_err());
    }
}
