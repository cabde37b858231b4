//! `roster`: the command line of the bulk-import pipeline. This file parses and
//! dispatches; each command group lives in its own module.

mod admins;
mod database;
mod offline;
mod out;
mod service;
mod stats;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

// polars allocates from many threads; glibc's arenas fragment under that load (see the
// peak memory of a 1M-row validation in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: its place in `mi_option_e` of the v3 header this
/// build compiles (the Rust bindings name only some options; tested below).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system 10 ms after it is freed instead of mimalloc v3's
/// 1 s. A 1M-row validation frees its working columns just before the reports allocate
/// theirs; with the 1 s delay both count in the peak (780–820 MB against 630–660 MB,
/// at the same speed; BENCHMARKS.md). `MIMALLOC_PURGE_DELAY` still decides when set.
fn purge_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) }
    }
}

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Bulk-import pipeline for member rosters (智慧团建)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a roster offline against an org file and write the reports.
    Validate(offline::ValidateArgs),
    /// Validate against the database, load the valid rows in one transaction, write the
    /// reports.
    Import(database::ImportArgs),
    /// Put a roster into the uploads bucket (or take an object already there), register it
    /// by content hash, enqueue it; prints the upload id.
    Submit(service::SubmitArgs),
    /// Process queued uploads until SIGTERM or Ctrl-C (jobs in flight are finished).
    Worker(service::WorkerArgs),
    /// Completion statistics: a snapshot per date of every organisation's completeness,
    /// and exports of a subtree.
    Stats {
        #[command(subcommand)]
        command: stats::StatsCommand,
    },
    /// An upload's status, counts, timings and reports, as JSON.
    Status(service::StatusArgs),
    /// Download links (presigned) to an upload's report objects, as JSON; the
    /// organisation workbooks are the entries of one object, workbooks.zip.
    Reports(service::ReportsArgs),
    /// Benchmark floor: calamine alone reading every cell of an xlsx, nothing else.
    #[command(hide = true)]
    ReadFloor(offline::ReadFloorArgs),
    /// Apply the database migrations (idempotent).
    Migrate(database::DatabaseArgs),
    /// Organisation tree commands.
    Orgs {
        #[command(subcommand)]
        command: database::OrgsCommand,
    },
    /// Generate a synthetic roster and its org file.
    Sample(offline::SampleArgs),
    /// The web service: pages and the JSON API for admins.
    Serve(service::ServeArgs),
    /// Admin accounts of the web service.
    Admins {
        #[command(subcommand)]
        command: admins::AdminsCommand,
    },
}

/// Logs on stderr: warnings and the service's access lines by default (`RUST_LOG`
/// overrides), as text or, with `ROSTER_LOG_FORMAT=json`, one JSON object a line.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,roster::access=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // With RUST_LOG=info each stage logs its duration when it ends.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    match std::env::var("ROSTER_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().flatten_event(true).init(),
        _ => logs.init(),
    }
}

/// What the person at the terminal reads of a failure. A database error is never shown
/// raw: a Chinese sentence with its SQLSTATE, and the detail on the log (stderr).
fn user_message(e: &anyhow::Error) -> String {
    let db = e.chain().find_map(|c| {
        c.downcast_ref::<sqlx::Error>()
            .or_else(|| match c.downcast_ref() {
                Some(registry::RegistryError::Sqlx(s)) => Some(s),
                _ => None,
            })
    });
    match db {
        Some(sqlx::Error::Database(d)) => {
            tracing::error!(error = %format!("{e:#}"), "database error");
            format!(
                "数据库拒绝了这次操作（SQLSTATE {}），未写入任何数据",
                d.code().unwrap_or_default()
            )
        }
        Some(_) => {
            tracing::error!(error = %format!("{e:#}"), "database error");
            "数据库暂时无法访问，未写入任何数据；请稍后重试".to_string()
        }
        None => format!("{e:#}"),
    }
}

fn main() -> ExitCode {
    purge_freed_memory_promptly();
    init_logs();
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        // The reader of stdout went away (`roster … | head`): nothing more to say.
        Err(e) if out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误：{}", user_message(&e));
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Validate(args) => offline::validate(args),
        Command::Sample(args) => offline::sample(args),
        Command::ReadFloor(args) => offline::read_floor(args),
        Command::Migrate(db) => database::migrate(db),
        Command::Orgs { command } => database::orgs(command),
        Command::Import(args) => database::import(args),
        Command::Submit(args) => service::submit(args),
        Command::Worker(args) => service::worker(args),
        Command::Status(args) => service::status(args),
        Command::Reports(args) => service::reports(args),
        Command::Stats { command } => stats::run(command),
        Command::Serve(args) => service::serve(args),
        Command::Admins { command } => admins::run(command),
    }
}

#[cfg(test)]
mod tests {
    use super::{MI_OPTION_PURGE_DELAY, purge_freed_memory_promptly};

    /// The option set is the purge delay: it reads mimalloc v3's default for it (1000 ms,
    /// which no neighbouring option has) until it is set, then 10 ms.
    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and sets an integer option.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(
            (
                get(MI_OPTION_PURGE_DELAY - 1),
                get(MI_OPTION_PURGE_DELAY),
                get(MI_OPTION_PURGE_DELAY + 1)
            ),
            (1, 1000, 0)
        );
        purge_freed_memory_promptly();
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 10);
    }
}
