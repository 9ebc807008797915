// The body of the `status_list` fuzz target, shared (`include!`) by
// fuzz/fuzz_targets/status_list.rs and crates/credentials/tests/status_list_fuzz_body.rs
// so that CI runs it on stable Rust too. It uses only the public API of
// `me2b_credentials::status`.
//
// The first input byte picks what the rest is:
// * `0`: an `encodedList` as a verifier receives it (multibase, base64url, gzip);
// * `1`: a gzip stream, wrapped as an `encodedList` (the decompressor, bounded);
// * otherwise: indices to revoke in a list of a size the input picks, which
//   must encode and decode to itself.
// A decoded list must hold between the minimum and the maximum number of
// entries, answer for its last entry and refuse the one after, and round-trip.

/// What the status list body observed.
#[derive(Debug)]
pub enum StatusOutcome {
    Decoded,
    Refused(me2b_credentials::CredentialError),
    InvariantBroken(&'static str),
}

pub fn status_list_body(data: &[u8]) -> StatusOutcome {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use me2b_credentials::status::{MAX_STATUS_LIST_BITS, MIN_STATUS_LIST_BITS};
    use me2b_credentials::{StatusIndex, StatusList};

    let Some((&mode, rest)) = data.split_first() else {
        return StatusOutcome::Refused(me2b_credentials::CredentialError::InvalidStatusListSize);
    };
    let encoded = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => format!("u{}", URL_SAFE_NO_PAD.encode(rest)),
        _ => {
            let (size, indices) = rest.split_at(rest.len().min(2));
            let extra = size.iter().fold(0usize, |a, b| a << 8 | usize::from(*b)) * 8;
            let entries = (MIN_STATUS_LIST_BITS + extra).min(MAX_STATUS_LIST_BITS);
            let mut list = match StatusList::with_entries(entries) {
                Ok(l) => l,
                Err(_) => return StatusOutcome::InvariantBroken("a list of a valid size was refused"),
            };
            for chunk in indices.chunks(4) {
                let i = chunk.iter().fold(0u32, |a, b| a << 8 | u32::from(*b));
                let i = StatusIndex::new(i % entries as u32);
                if list.revoke(i).is_err() || list.get(i).ok() != Some(true) {
                    return StatusOutcome::InvariantBroken("an index inside the list could not be revoked");
                }
            }
            return match StatusList::decode(&list.encode()) {
                Ok(again) if again == list => StatusOutcome::Decoded,
                _ => StatusOutcome::InvariantBroken("a list did not encode and decode to itself"),
            };
        }
    };
    let list = match StatusList::decode(&encoded) {
        Ok(l) => l,
        Err(e) => return StatusOutcome::Refused(e),
    };
    let n = list.len();
    if !(MIN_STATUS_LIST_BITS..=MAX_STATUS_LIST_BITS).contains(&n) || !n.is_multiple_of(8) {
        return StatusOutcome::InvariantBroken("a decoded list has a size out of bounds");
    }
    let last = StatusIndex::new(n as u32 - 1);
    if list.get(last).is_err() || list.get(StatusIndex::new(n as u32)).is_ok() {
        return StatusOutcome::InvariantBroken("a decoded list answers outside its size");
    }
    match StatusList::decode(&list.encode()) {
        Ok(again) if again == list => StatusOutcome::Decoded,
        _ => StatusOutcome::InvariantBroken("a decoded list did not round-trip"),
    }
}
