//! Receipts into the trust: a co-op's submissions under its pseudonyms, and
//! a member forwarding their own vault receipts. Time is coarsened to the
//! day and location to a governance area; a batch is stored whole or not at
//! all, and receipts of erased members are dropped (once the erasure is
//! released; until then they are stored like any and go at the release).

use super::*;

/// One receipt as a co-op submits it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIn {
    /// The member's card, sealed afresh by the co-op (`me2b coop seal`, or
    /// `Coop::seal` of the me2b-coop library) from its pseudonym for them:
    /// never the very ciphertext the member showed.
    #[schema(min_length = 1, max_length = 200)]
    pub card: String,
    /// The day of purchase, `YYYY-MM-DD`; or give `at`.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub day: Option<String>,
    /// The time of purchase (RFC 3339), coarsened to the day.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// The store's area (one of the governance config's area codes).
    #[schema(min_length = 1, max_length = 64)]
    pub area: String,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemIn>,
    /// Total in cents; default: the sum of the items.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub amount_cents: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// A taxonomy topic slug (`GET /v1/taxonomy`).
    #[schema(pattern = "^[a-z0-9][a-z0-9_.:-]{0,63}$")]
    pub category: String,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub amount_cents: i64,
}

/// What the trust answers a submission with.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub stored: usize,
    /// Positions in the batch (from 0) of receipts whose member has erased
    /// their data: not stored. Delete those cards; the trust will keep
    /// dropping what they bring.
    pub erased: Vec<usize>,
    /// How attributes were coarsened before storage.
    pub coarsened: &'static str,
}

/// What `store_rows` did.
struct Stored {
    stored: usize,
    erased: Vec<usize>,
}

/// What a member's forwarding stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Forwarded {
    /// Receipts stored now.
    pub forwarded: usize,
    /// Receipts forwarded to this co-op's pool before: not stored twice.
    pub already: usize,
    /// Items left out: categories outside the taxonomy, and every special
    /// category (those never leave the vault).
    pub items_left_out: usize,
    pub coarsened: &'static str,
}

/// A receipt checked and coarsened, before pseudonymisation.
struct Checked {
    card: EncryptedPseudonym,
    day: i32,
    area: String,
    amount: i64,
    items: Vec<(i64, i64)>,
}

pub(super) fn day_string(day: i32) -> String {
    time::Date::from_julian_day(2_440_588 + day)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn parse_day(r: &ReceiptIn) -> Result<i32, TrustError> {
    let bad = TrustError::Invalid("give `day` as YYYY-MM-DD or `at` as an RFC 3339 time");
    match (&r.day, &r.at) {
        (Some(d), None) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(d, &fmt).map_err(|_| bad)?;
            Ok(date.to_julian_day() - 2_440_588)
        }
        (None, Some(at)) => {
            let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad)?;
            Ok(t.date().to_julian_day() - 2_440_588)
        }
        _ => Err(bad),
    }
}

impl Trust {
    /// Stores pseudonymised receipts; one ingest at a time decides the bins'
    /// cap. Receipts of members whose erasure is released are dropped (their
    /// positions are returned), checked under the same lock `forget` takes;
    /// a held card's are stored until the release.
    /// `skip_present` also drops receipts already stored (a member's forwarded
    /// receipts have ids fixed per record).
    async fn store_rows(
        &self,
        rows: Vec<TrustReceiptRow>,
        skip_present: bool,
    ) -> Result<Stored, TrustError> {
        let _one_at_a_time = self.inner.ingest.lock().await;
        let tags: Vec<[u8; 32]> = rows
            .iter()
            .map(|r| r.tag)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // A released erasure's receipts are dropped and named. One not yet
        // released (erasure.rs in me2b-vault) is answered as before the
        // erasure, so that no co-op sees it sooner than the others, and its
        // receipts are stored like any: dropping them would answer
        // measurably faster and name the card to a co-op timing its
        // submissions (attack 5e). The release deletes them with the rest
        // of the tag's rows (`erasure_release` in me2b-storage).
        let released: std::collections::HashSet<[u8; 32]> = self
            .inner
            .store
            .trust_erased_states(&tags)
            .await?
            .into_iter()
            .filter(|e| e.released)
            .map(|e| e.tag)
            .collect();
        let mut erased = Vec::new();
        let rows: Vec<TrustReceiptRow> = rows
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                if released.contains(&r.tag) {
                    erased.push(i);
                    None
                } else {
                    Some(r)
                }
            })
            .collect();
        let rows = if skip_present {
            let ids: Vec<TrustReceiptId> = rows.iter().map(|r| r.id).collect();
            let present = self.inner.store.trust_receipts_present(&ids).await?;
            rows.into_iter()
                .filter(|r| !present.contains(&r.id))
                .collect()
        } else {
            rows
        };
        self.inner
            .store
            .insert_trust_receipts(&rows, self.inner.governance.max_values_per_member)
            .await?;
        // A release that ran between the check above and the insert did not
        // see these rows: forget them now. The check runs for every batch,
        // held cards or not, so it costs every submission the same.
        let inserted: Vec<[u8; 32]> = tags.into_iter().filter(|t| !released.contains(t)).collect();
        for late in self.inner.store.trust_erased_states(&inserted).await? {
            if late.released {
                let at = self.inner.clock.now();
                self.inner
                    .store
                    .trust_forget(&late.tag, &late.tag, at)
                    .await?;
            }
        }
        Ok(Stored {
            stored: rows.len(),
            erased,
        })
    }

    fn check_receipt(&self, r: &ReceiptIn) -> Result<Checked, TrustError> {
        let card = parse_card(&r.card)?;
        let day = parse_day(r)?;
        if !self.inner.governance.areas.iter().any(|a| a == &r.area) {
            return Err(TrustError::UnknownArea);
        }
        if r.items.is_empty() || r.items.len() > MAX_ITEMS {
            return Err(TrustError::Invalid("a receipt has 1 to 100 items"));
        }
        let mut items = Vec::with_capacity(r.items.len());
        for i in &r.items {
            let c = self
                .inner
                .by_slug
                .get(&i.category)
                .and_then(|ix| self.inner.categories.get(*ix))
                .ok_or_else(|| {
                    TrustError::UnknownCategory(i.category.chars().take(64).collect())
                })?;
            if c.sensitive {
                return Err(TrustError::SensitiveCategory(c.slug.clone()));
            }
            if !(0..=MAX_AMOUNT_CENTS).contains(&i.amount_cents) {
                return Err(TrustError::Invalid("an amount is 0 to 100,000,000 cents"));
            }
            items.push((c.id, i.amount_cents));
        }
        let amount = match r.amount_cents {
            Some(a) => a,
            None => items.iter().map(|(_, a)| *a).sum(),
        };
        if !(0..=MAX_AMOUNT_CENTS).contains(&amount) {
            return Err(TrustError::Invalid("an amount is 0 to 100,000,000 cents"));
        }
        Ok(Checked {
            card,
            day,
            area: r.area.clone(),
            amount,
            items,
        })
    }

    /// Pseudonymises and stores a co-op's receipts: all or none.
    #[tracing::instrument(skip_all)]
    pub async fn submit(
        &self,
        org: OrgId,
        receipts: &[ReceiptIn],
    ) -> Result<Submitted, TrustError> {
        let result = self.submit_inner(org, receipts).await;
        let (outcome, object) = match &result {
            Ok(s) if !s.erased.is_empty() => (
                Outcome::Ok,
                format!(
                    "{} receipts, {} of members who erased their data dropped",
                    receipts.len(),
                    s.erased.len()
                ),
            ),
            Ok(_) => (Outcome::Ok, format!("{} receipts", receipts.len())),
            Err(_) => (Outcome::Failed, format!("{} receipts", receipts.len())),
        };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(org), Action::TrustReceiptsSubmit)
                    .object(object)
                    .outcome(outcome),
            )
            .await?;
        result
    }

    pub(super) async fn submit_inner(
        &self,
        org: OrgId,
        receipts: &[ReceiptIn],
    ) -> Result<Submitted, TrustError> {
        if receipts.is_empty() || receipts.len() > MAX_RECEIPTS {
            return Err(TrustError::Invalid("a submission has 1 to 1,000 receipts"));
        }
        let checked = receipts
            .iter()
            .map(|r| self.check_receipt(r))
            .collect::<Result<Vec<_>, _>>()?;
        let key = self.coop_key(org).await?;
        let items: Vec<Item> = checked.iter().map(|c| Item { ct: c.card, key }).collect();
        let research_cts = self
            .chain(
                Requester::Coop(org),
                Domain::Coop(org),
                Domain::Research,
                None,
                items.clone(),
            )
            .await?;
        let research = self.client(Domain::Research).await?;
        let now = self.inner.clock.now();
        // The card as stored is re-randomised (adv8): the co-op keeps the
        // bytes it sent, and must not find its receipts in the file by them.
        let mut rng = self.rng();
        let rows: Vec<TrustReceiptRow> = checked
            .into_iter()
            .zip(items)
            .zip(research_cts)
            .map(|((c, source), rct)| TrustReceiptRow {
                id: TrustReceiptId::generate(self.inner.random.as_ref()),
                org,
                tag: self.tag(Domain::Research, &research.decrypt(&rct.ct)),
                source_ct: crate::pseudonym::rerandomize(&source.ct, &source.key, &mut rng)
                    .to_bytes()
                    .to_vec(),
                research_ct: rct.ct.to_bytes().to_vec(),
                day: c.day,
                area: c.area,
                amount_cents: c.amount,
                created_at: now,
                items: c.items,
            })
            .collect();
        let Stored { stored, erased } = self.store_rows(rows, false).await?;
        Ok(Submitted {
            stored,
            erased,
            coarsened: "time to the day, location to the area; the member's pseudonym stored only encrypted and as a keyed hash",
        })
    }

    /// The member forwards their own vault receipts from `org` to the trust,
    /// as if that co-op had submitted them: the member's consent is this
    /// request. Items are mapped to taxonomy topics by `topic_of` (the
    /// offers taxonomy's category map); special categories and unmapped
    /// items stay in the vault. A receipt forwarded twice is stored once.
    #[tracing::instrument(skip_all)]
    pub async fn forward(
        &self,
        member: MemberId,
        org: OrgId,
        area: &str,
        receipts: &[(me2b_domain::RecordId, &me2b_domain::record::Receipt)],
        topic_of: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> Result<Forwarded, TrustError> {
        self.require_org(org).await?;
        if !self.inner.governance.areas.iter().any(|a| a == area) {
            return Err(TrustError::UnknownArea);
        }
        let mut left_out = 0;
        let mut candidates = Vec::new();
        for (record, r) in receipts {
            let mut items = Vec::new();
            for i in r.items.as_slice() {
                let c = topic_of(i.category.as_str())
                    .and_then(|slug| self.inner.by_slug.get(&slug).copied())
                    .and_then(|ix| self.inner.categories.get(ix))
                    .filter(|c| !c.sensitive);
                match c {
                    Some(c) => {
                        let qty = i64::from(u32::from(i.quantity));
                        let price = i64::from(i.unit_price.minor);
                        items.push((c.id, qty.saturating_mul(price).clamp(0, MAX_AMOUNT_CENTS)));
                    }
                    None => left_out += 1,
                }
            }
            if items.is_empty() {
                continue;
            }
            // The same record always gets the same id here: a keyed hash, so
            // the id says nothing about the member.
            let h = self.inner.keys.trust_tag(
                "forwarded-receipt",
                &[
                    member.as_bytes().as_slice(),
                    record.as_bytes().as_slice(),
                    org.as_bytes().as_slice(),
                ]
                .concat(),
            );
            let id = TrustReceiptId::from_slice(&h[..16])
                .map_err(|_| TrustError::Invalid("receipt id"))?;
            let day = i32::try_from(
                r.purchased_at
                    .timestamp()
                    .unix_millis()
                    .div_euclid(MS_PER_DAY),
            )
            .map_err(|_| TrustError::Invalid("purchase time out of range"))?;
            let amount = i64::from(r.total.minor).clamp(0, MAX_AMOUNT_CENTS);
            candidates.push((id, day, amount, items));
        }
        let present = self
            .inner
            .store
            .trust_receipts_present(&candidates.iter().map(|c| c.0).collect::<Vec<_>>())
            .await?;
        let already = present.len();
        candidates.retain(|c| !present.contains(&c.0));
        let mut forwarded = 0;
        if !candidates.is_empty() {
            let source = self
                .moved(member, Domain::Coop(org), MemberRequest::Forward)
                .await?
                .ct;
            let client = self.client(Domain::Research).await?;
            let research = self
                .moved(member, Domain::Research, MemberRequest::Forward)
                .await?
                .ct;
            let tag = self.tag(Domain::Research, &client.decrypt(&research));
            let now = self.inner.clock.now();
            let rows: Vec<TrustReceiptRow> = candidates
                .into_iter()
                .map(|(id, day, amount, items)| TrustReceiptRow {
                    id,
                    org,
                    tag,
                    source_ct: source.to_bytes().to_vec(),
                    research_ct: research.to_bytes().to_vec(),
                    day,
                    area: area.to_owned(),
                    amount_cents: amount,
                    created_at: now,
                    items,
                })
                .collect();
            // Checked again under the ingest lock: a concurrent forward of the
            // same receipts may have stored them meanwhile.
            forwarded = self.store_rows(rows, true).await?.stored;
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustReceiptsSubmit)
                    .subject(member)
                    .object(format!("{forwarded} receipts forwarded as {org}'s"))
                    .terms(
                        "research-and-development",
                        "purchases-and-spending-habit",
                        "pseudonymise",
                    ),
            )
            .await?;
        Ok(Forwarded {
            forwarded,
            already,
            items_left_out: left_out,
            coarsened: "time to the day, location to the area you chose; special categories stay in your vault",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn receipt(day: Option<&str>, at: Option<&str>) -> ReceiptIn {
        ReceiptIn {
            card: String::new(),
            day: day.map(str::to_owned),
            at: at.map(str::to_owned),
            area: "NL-NH".into(),
            items: Vec::new(),
            amount_cents: None,
        }
    }

    #[test]
    fn times_are_coarsened_to_the_day() {
        let d = parse_day(&receipt(None, Some("2026-11-20T23:59:59+00:00"))).unwrap();
        assert_eq!(day_string(d), "2026-11-20");
        // The day of the time as given (its own offset), not of UTC.
        let d = parse_day(&receipt(None, Some("2026-11-20T00:30:00+01:00"))).unwrap();
        assert_eq!(day_string(d), "2026-11-20");
        assert_eq!(
            day_string(parse_day(&receipt(Some("1970-01-01"), None)).unwrap()),
            "1970-01-01"
        );
        assert!(parse_day(&receipt(Some("2026-11-20"), Some("2026-11-20T10:00:00Z"))).is_err());
        assert!(parse_day(&receipt(None, None)).is_err());
        assert!(parse_day(&receipt(Some("20-11-2026"), None)).is_err());
    }

    proptest! {
        /// Untrusted day and time strings never panic, and whatever parses
        /// comes back as a plain `YYYY-MM-DD`.
        #[test]
        fn day_parsing_never_panics(day in "\\PC{0,40}", at in "\\PC{0,40}", which in 0u8..2) {
            let r = if which == 0 { receipt(Some(&day), None) } else { receipt(None, Some(&at)) };
            if let Ok(d) = parse_day(&r) {
                let s = day_string(d);
                prop_assert_eq!(s.len(), 10);
            }
        }

        /// Valid dates round-trip through the stored day number.
        #[test]
        fn valid_days_round_trip(y in 1970i32..2200, m in 1u8..=12, d in 1u8..=28) {
            let s = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(day_string(parse_day(&receipt(Some(&s), None)).unwrap()), s);
        }
    }
}
