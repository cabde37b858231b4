//! The nightly statistics tick (apalis-cron). Every worker process schedules it; the
//! snapshot's own guard (`registry::stats::Mode::OncePerDate`: a try-lock and "is this
//! date done?" in one transaction) makes it exactly one snapshot a night, however many
//! workers tick.

use std::str::FromStr;

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use chrono::FixedOffset;
use pipeline::china;
use sqlx::PgPool;

/// Default schedule: 02:00 every night (seconds, minutes, hours, …).
pub const DEFAULT_SCHEDULE: &str = "0 0 2 * * *";

#[derive(Debug, thiserror::Error)]
#[error("bad statistics schedule “{0}”: {1}")]
pub struct ScheduleError(String, String);

/// Parses a cron expression (with seconds, as the `cron` crate reads it).
pub fn schedule(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(expr).map_err(|e| ScheduleError(expr.to_string(), e.to_string()))
}

/// The tick handler: the snapshot of the tick's date in China, once.
pub async fn nightly(tick: Tick<FixedOffset>, pool: Data<PgPool>) -> Result<(), BoxDynError> {
    let at = chrono::DateTime::from_timestamp(tick.get_timestamp() as i64, 0)
        .unwrap_or_default()
        .with_timezone(&china());
    let date = at.date_naive();
    match registry::stats::run(&pool, date, registry::stats::Mode::OncePerDate).await? {
        Some(s) => {
            tracing::info!(date = %s.date, orgs = s.orgs, seconds = s.seconds, "nightly statistics")
        }
        None => {
            tracing::debug!(date = %date, "nightly statistics already done or running elsewhere")
        }
    }
    Ok(())
}
