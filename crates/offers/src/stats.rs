//! What an organisation learns in aggregate: how many members an offer
//! reached and how many accepted, as running counts released on a schedule.
//!
//! * When an offer is published, its statistics stream is charged to the
//!   offers' audience pool (`me2b-dp`), shared by every publisher; if the
//!   publisher's allowance or the pool is spent, the offer goes live without
//!   statistics. It is charged again at its first release in each later
//!   period; without budget then, that release is skipped.
//! * Figures are released on a schedule (every `release_every_days` from
//!   publication, and once more when the offer closes), each release adding
//!   the noisy increment since the previous one
//!   ([`me2b_dp::continual::RunningCount`]). Reading between releases returns
//!   the stored release; a member's visit never causes one. A stream's
//!   releases in a period are ε-DP because each member is counted at most
//!   once per counter.
//! * A total whose noisy value is below the minimum cohort is withheld.

use crate::OfferError;
use me2b_domain::Timestamp;
use me2b_dp::continual::RunningCount;
use me2b_dp::governance::fmt_eps;
use me2b_dp::noise::Noise;
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

/// `[offers]` in the governance file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfferGovernance {
    /// ε of one offer's statistics stream (half for "reached", half for
    /// "accepted"), charged to the offers' audience pool at publication.
    pub epsilon_per_offer: f64,
    /// Days between scheduled releases.
    pub release_every_days: u32,
    /// Most offers one organisation may have live (active or waiting for
    /// partners) at once.
    pub max_live_offers: u64,
}

impl Default for OfferGovernance {
    fn default() -> Self {
        Self {
            epsilon_per_offer: 0.25,
            release_every_days: 7,
            max_live_offers: 10,
        }
    }
}

impl OfferGovernance {
    pub fn check(&self) -> Result<(), OfferError> {
        if !(self.epsilon_per_offer.is_finite()
            && self.epsilon_per_offer > 0.0
            && self.epsilon_per_offer <= 10.0)
        {
            return Err(OfferError::invalid(
                "epsilon_per_offer",
                "a number in (0, 10]",
            ));
        }
        if !(1..=366).contains(&self.release_every_days) {
            return Err(OfferError::invalid("release_every_days", "1 to 366"));
        }
        if !(1..=10_000).contains(&self.max_live_offers) {
            return Err(OfferError::invalid("max_live_offers", "1 to 10,000"));
        }
        Ok(())
    }
}

/// One offer's statistics stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub epsilon: f64,
    pub pool: String,
    pub opened_ms: i64,
    pub every_ms: i64,
    /// The offer's end: the last release is due then at the latest.
    pub until_ms: i64,
    pub reached: RunningCount,
    pub accepted: RunningCount,
    /// When each release was drawn.
    pub released_at: Vec<i64>,
    /// Scheduled releases skipped because the audience pool had no budget
    /// for the stream in their period (their window joins the next release).
    #[serde(default)]
    pub skipped: u32,
    /// The budget periods the stream was charged in. A stream's releases in
    /// one period are ε-DP (each member adds at most one to a counter), so it
    /// is charged ε once in every period in which it releases.
    #[serde(default)]
    pub charged_periods: Vec<i64>,
    /// No release is due any more.
    pub closed: bool,
}

/// What is stored for an offer's statistics (versioned).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamState {
    /// Statistics are released on a schedule.
    Live { v: u8, stream: Stream },
    /// No statistics for this offer, and why (no personal data).
    None { v: u8, why: String },
}

/// Format version of [`StreamState`].
pub const STREAM_VERSION: u8 = 2;

impl StreamState {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads stored bytes. Offers published before statistics were charged
    /// to the accountant (no bytes, or the first format) have none.
    pub fn from_stored(bytes: Option<&[u8]>) -> Self {
        match bytes.and_then(|b| serde_json::from_slice::<StreamState>(b).ok()) {
            Some(s @ (StreamState::Live { v: STREAM_VERSION, .. } | StreamState::None { v: STREAM_VERSION, .. })) => s,
            _ => StreamState::None {
                v: STREAM_VERSION,
                why: "this offer was published before statistics were charged to the privacy accountant; withdraw it and publish it again to get statistics".into(),
            },
        }
    }

    /// When the next release is due, if any.
    pub fn next_due(&self) -> Option<Timestamp> {
        match self {
            StreamState::Live { stream, .. } => stream.next_due(),
            StreamState::None { .. } => None,
        }
    }
}

impl Stream {
    pub fn open(
        epsilon: f64,
        pool: String,
        opened: Timestamp,
        every_days: u32,
        until: Timestamp,
    ) -> Result<Self, OfferError> {
        let half = epsilon / 2.0;
        let count = |_| RunningCount::new(half).map_err(|_| OfferError::Noise);
        Ok(Self {
            epsilon,
            pool,
            opened_ms: opened.unix_millis(),
            every_ms: i64::from(every_days.max(1)) * DAY_MS,
            until_ms: until.unix_millis(),
            reached: count(())?,
            accepted: count(())?,
            released_at: Vec::new(),
            skipped: 0,
            charged_periods: Vec::new(),
            closed: false,
        })
    }

    /// When the next scheduled release is due: every period from the
    /// opening, and at the offer's end at the latest.
    pub fn next_due(&self) -> Option<Timestamp> {
        if self.closed {
            return None;
        }
        let n =
            i64::try_from(self.released_at.len() + self.skipped as usize + 1).unwrap_or(i64::MAX);
        let t = self
            .opened_ms
            .saturating_add(n.saturating_mul(self.every_ms))
            .min(self.until_ms);
        Some(Timestamp::from_unix_millis(t))
    }

    /// Draws the release for the true totals now. `last` closes the stream
    /// (the offer ended or was withdrawn).
    pub fn release(
        &mut self,
        noise: &dyn Noise,
        reached: u64,
        accepted: u64,
        now: Timestamp,
        last: bool,
    ) -> Result<(), OfferError> {
        self.reached
            .release(noise, reached)
            .map_err(|_| OfferError::Noise)?;
        self.accepted
            .release(noise, accepted)
            .map_err(|_| OfferError::Noise)?;
        self.released_at.push(now.unix_millis());
        self.closed = last || now.unix_millis() >= self.until_ms;
        Ok(())
    }

    /// Skips a scheduled release (no budget for it in its period): nothing
    /// is drawn, and what it would have counted joins the next release.
    pub fn skip(&mut self, now: Timestamp, last: bool) {
        self.skipped = self.skipped.saturating_add(1);
        self.closed = last || now.unix_millis() >= self.until_ms;
    }
}

/// What the organisation sees.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OfferStats {
    /// Members the offer was shown to, with noise, as of the latest release;
    /// null below the minimum cohort or before the first release.
    pub reached: Option<u64>,
    /// Members who accepted, likewise.
    pub accepted: Option<u64>,
    pub min_cohort: u64,
    /// Scale of the noise added to each release's increment.
    pub noise_scale: f64,
    /// Standard deviation of the noise in each total shown.
    pub stddev: f64,
    /// Releases so far.
    pub releases: usize,
    /// Scheduled releases skipped because the audience pool had no budget
    /// left in their period.
    pub skipped: u32,
    #[schema(value_type = Option<String>)]
    pub released_at: Option<String>,
    /// When the next release is due (none: the stream is closed).
    #[schema(value_type = Option<String>)]
    pub next_release_at: Option<String>,
    /// ε the stream costs `pool` in each period in which it releases
    /// (charged at publication for the first).
    pub epsilon: f64,
    pub pool: Option<String>,
    pub mechanism: String,
    pub note: String,
}

/// Applies the minimum cohort to the latest release.
pub fn publish(state: &StreamState, min_cohort: u64, mechanism: &str) -> OfferStats {
    let gate = |v: i64| u64::try_from(v).ok().filter(|v| *v >= min_cohort);
    match state {
        StreamState::None { why, .. } => OfferStats {
            reached: None,
            accepted: None,
            min_cohort,
            noise_scale: 0.0,
            stddev: 0.0,
            releases: 0,
            skipped: 0,
            released_at: None,
            next_release_at: None,
            epsilon: 0.0,
            pool: None,
            mechanism: mechanism.to_owned(),
            note: format!("No statistics: {why}."),
        },
        StreamState::Live { stream: s, .. } => {
            let released = !s.released_at.is_empty();
            OfferStats {
                reached: released.then(|| gate(s.reached.total())).flatten(),
                accepted: released.then(|| gate(s.accepted.total())).flatten(),
                min_cohort,
                noise_scale: s.reached.scale(),
                stddev: s.reached.stddev(),
                releases: s.released_at.len(),
                skipped: s.skipped,
                released_at: s
                    .released_at
                    .last()
                    .map(|t| Timestamp::from_unix_millis(*t).to_rfc3339()),
                next_release_at: s.next_due().map(Timestamp::to_rfc3339),
                epsilon: s.epsilon,
                pool: Some(s.pool.clone()),
                mechanism: mechanism.to_owned(),
                note: format!(
                    "Members, each counted once, released on a schedule (every {} days and when the offer closes) with noise of scale {} added to each release's increment; reading between releases shows the last one. A total below {} is withheld (null). The stream costs ε {} from the offers' audience pool, shared by every publisher, in each period in which it releases ({} so far){}. No per-member data leaves the vaults.",
                    s.every_ms / DAY_MS,
                    fmt_eps(s.reached.scale()),
                    min_cohort,
                    fmt_eps(s.epsilon),
                    s.charged_periods.len(),
                    if s.skipped > 0 {
                        format!("; {} scheduled release(s) skipped for want of budget, their windows joined the next", s.skipped)
                    } else {
                        String::new()
                    },
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Shift(i64);
    impl Noise for Shift {
        fn noisy(&self, v: i64, _: f64) -> Result<i64, me2b_dp::DpError> {
            Ok(v + self.0)
        }
        fn mechanism(&self) -> &'static str {
            "shift"
        }
    }

    fn ts(days: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_790_000_000_000 + days * DAY_MS)
    }

    #[test]
    fn releases_follow_the_schedule_and_close_at_the_end() {
        let mut s = Stream::open(0.5, "offers:audience".into(), ts(0), 7, ts(20)).unwrap();
        assert_eq!(s.next_due(), Some(ts(7)));
        s.release(&Shift(0), 30, 4, ts(7), false).unwrap();
        assert_eq!(s.next_due(), Some(ts(14)));
        s.release(&Shift(0), 45, 25, ts(15), false).unwrap();
        assert_eq!(s.next_due(), Some(ts(20)), "the end comes before day 21");
        s.release(&Shift(0), 50, 30, ts(20), false).unwrap();
        assert!(s.closed);
        assert_eq!(s.next_due(), None);
        assert_eq!((s.reached.total(), s.accepted.total()), (50, 30));
        assert_eq!(s.reached.scale(), 4.0, "ε 0.5 per offer: 0.25 per counter");
        let st = publish(
            &StreamState::Live {
                v: STREAM_VERSION,
                stream: s,
            },
            20,
            "shift",
        );
        assert_eq!((st.reached, st.accepted), (Some(50), Some(30)));
        assert_eq!(st.releases, 3);
        assert!(st.next_release_at.is_none());
    }

    #[test]
    fn small_totals_are_withheld_and_nothing_shows_before_the_first_release() {
        let mut s = Stream::open(0.5, "offers:audience".into(), ts(0), 7, ts(60)).unwrap();
        let live = |s: &Stream| StreamState::Live {
            v: STREAM_VERSION,
            stream: s.clone(),
        };
        let st = publish(&live(&s), 20, "shift");
        assert_eq!((st.reached, st.accepted, st.releases), (None, None, 0));
        s.release(&Shift(-5), 22, 40, ts(7), false).unwrap();
        let st = publish(&live(&s), 20, "shift");
        assert_eq!((st.reached, st.accepted), (None, Some(35)));
        s.release(&Shift(0), 10, 40, ts(14), true).unwrap();
        assert_eq!(s.reached.increments, vec![17, 0], "a total never shrinks");
        assert!(s.closed);
    }

    #[test]
    fn stored_states_round_trip_and_old_ones_have_no_statistics() {
        let s = Stream::open(0.5, "offers:audience".into(), ts(0), 7, ts(60)).unwrap();
        let live = StreamState::Live {
            v: STREAM_VERSION,
            stream: s,
        };
        assert_eq!(StreamState::from_stored(Some(&live.to_bytes())), live);
        let old =
            br#"{"v":1,"for_reached":3,"for_accepted":0,"reached":5,"accepted":1,"scale":2.0}"#;
        assert!(matches!(
            StreamState::from_stored(Some(old)),
            StreamState::None { .. }
        ));
        assert!(matches!(
            StreamState::from_stored(None),
            StreamState::None { .. }
        ));
        assert!(OfferGovernance::default().check().is_ok());
        let bad = OfferGovernance {
            epsilon_per_offer: 0.0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
