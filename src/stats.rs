//! The completion statistics commands: `stats run` stores a date's snapshot, `stats
//! export` writes an organisation's subtree from one.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::out::say;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;
use registry::stats::{self, Mode};

use crate::database::{DatabaseArgs, with_db};

#[derive(Subcommand)]
pub enum StatsCommand {
    /// Compute and store the snapshot of a date (default: today in China), replacing
    /// that date's snapshot if there is one.
    Run {
        #[arg(long)]
        date: Option<NaiveDate>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// An organisation and every one below it, one row each (xlsx or csv by extension).
    Export {
        /// Full name of the organisation.
        #[arg(long)]
        org: String,
        #[arg(long)]
        out: PathBuf,
        /// The snapshot's date (default: the latest).
        #[arg(long)]
        date: Option<NaiveDate>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// `roster stats …`.
pub fn run(command: StatsCommand) -> Result<ExitCode> {
    match command {
        StatsCommand::Run { date, db } => with_db(&db.database_url, async |pool| {
            jobs::setup(&pool).await?;
            let date = date.unwrap_or_else(pipeline::today_in_china);
            let s = stats::run(&pool, date, Mode::Replace)
                .await?
                .context("a replacing run always produces a snapshot")?;
            say!(
                "{}: {} organisations, {} people, {:.1} s",
                s.date,
                s.orgs,
                s.people,
                s.seconds
            );
            Ok(ExitCode::SUCCESS)
        }),
        StatsCommand::Export { org, out, date, db } => with_db(&db.database_url, async |pool| {
            let (date, rows) = stats::export_rows(&pool, &org, date).await?;
            stats::write_export(&rows, &out)?;
            say!("{date}: {} organisations → {}", rows.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }),
    }
}
