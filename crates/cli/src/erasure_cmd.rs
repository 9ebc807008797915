//! `me2b erasures`: the operator's view of erasure requests to the
//! organisations that received members' data, one line per request (never
//! grouped by member: only the member's receipt groups them).

use crate::config::Settings;
use me2b_consent::service::ErasureStatus;
use me2b_domain::Timestamp;

fn day(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339().chars().take(10).collect())
        .unwrap_or_else(|| "-".into())
}

pub(crate) async fn list(settings: &Settings) -> anyhow::Result<()> {
    let node = crate::open_node(settings).await?;
    let all = node
        .consents
        .erasure_overview()
        .await
        .map_err(anyhow::Error::new)?;
    let count = |s: ErasureStatus| all.iter().filter(|r| r.status == s).count();
    out!(
        "{} erasure requests: {} waiting for their batch, {} pending, {} overdue, {} confirmed",
        all.len(),
        count(ErasureStatus::Waiting),
        count(ErasureStatus::Pending),
        count(ErasureStatus::Overdue),
        count(ErasureStatus::Confirmed)
    );
    if !all.is_empty() {
        out!(
            "{:<32}  {:<9}  {:<10}  {:<10}  {:<10}  organisation",
            "request",
            "status",
            "sent",
            "due",
            "confirmed"
        );
    }
    for r in &all {
        let status = match r.status {
            ErasureStatus::Waiting => "waiting",
            ErasureStatus::Pending => "pending",
            ErasureStatus::Confirmed => "confirmed",
            ErasureStatus::Overdue => "OVERDUE",
        };
        out!(
            "{:<32}  {:<9}  {:<10}  {:<10}  {:<10}  {}",
            r.id,
            status,
            day(r.released_at),
            day(r.confirm_by),
            day(r.confirmed_at),
            r.organisation
        );
    }
    node.shutdown().await;
    Ok(())
}
