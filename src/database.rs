//! The commands that work on the registry directly: `migrate`, `orgs import`, and
//! `import` (validate against the registry, load, report); and the connection pool
//! every database command runs on.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::out::say;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::offline::{RosterArgs, print_counts, print_rejected};

/// Where the registry is.
#[derive(Args)]
pub struct DatabaseArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    roster: RosterArgs,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Load or update the tree from an org file (CSV or xlsx); a bad file loads nothing.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// `roster migrate`: the registry's migrations and the queue's.
pub fn migrate(db: DatabaseArgs) -> Result<ExitCode> {
    with_db(&db.database_url, async |pool| {
        jobs::setup(&pool).await?;
        say!("migrations applied");
        Ok(ExitCode::SUCCESS)
    })
}

/// `roster orgs …`.
pub fn orgs(command: OrgsCommand) -> Result<ExitCode> {
    let OrgsCommand::Import { file, db } = command;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    with_db(&db.database_url, async |pool| {
        // Parents may be in the file or already registered.
        let tree = match registry::parse_org_file(&pool, bytes).await? {
            Ok(tree) => tree,
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        };
        let done = registry::import_orgs(&pool, &tree).await?;
        say!(
            "{} organisations: {} new, {} updated, {} secretary posts",
            tree.len(),
            done.inserted,
            done.updated,
            done.secretaries
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// `roster import`: validate against the database, load, write the reports, record it.
pub fn import(args: ImportArgs) -> Result<ExitCode> {
    let ImportArgs { roster, db } = args;
    let opts = roster.options(false);
    let bytes = roster.read()?;
    let (uploader, out) = (roster.uploader.as_str(), roster.out.clone());
    with_db(&db.database_url, async |pool| {
        let Some(orgs) = registry::DbOrgs::for_uploader(&pool, uploader).await? else {
            bail!("上传组织“{uploader}”不在数据库中");
        };
        let sha = registry::uploads::content_sha256(&bytes);
        let upload_id =
            registry::uploads::begin_upload(&pool, orgs.uploader_id(), opts.template, &sha).await?;
        let publish = async |dir: &std::path::Path, set: &pipeline::report::ReportSet| {
            Ok(registry::import::Published::local(dir, set))
        };
        let done = match registry::import(
            &pool,
            upload_id,
            orgs,
            bytes,
            opts,
            registry::import::ReportsTo::dir(out.clone()),
            publish,
        )
        .await
        {
            Ok(done) => done,
            Err(e) => {
                // Nothing was loaded: the upload says so, in words for its viewers (the
                // detail is the operator's, on this command's stderr).
                let reason = "导入失败，未载入任何数据；请稍后重试，如仍失败请联系系统管理员";
                registry::uploads::mark_failed(&pool, upload_id, reason, None).await?;
                return Err(e.into());
            }
        };
        if let Some(r) = &done.rejection {
            print_rejected(r, &out)?;
            return Ok(ExitCode::from(2));
        }
        say!("已导入 {} 人", done.written);
        let c = done.counts.context("an accepted file has counts")?;
        print_counts(&c, &done.warnings, done.reports.files.len(), &out)
    })
}

/// Runs a database command on a small runtime of its own.
pub fn with_db<T>(url: &str, f: impl AsyncFnOnce(sqlx::PgPool) -> Result<T>) -> Result<T> {
    with_pool(url, 4, f)
}

/// Runs a database command with a pool of up to `connections`.
pub fn with_pool<T>(
    url: &str,
    connections: u32,
    f: impl AsyncFnOnce(sqlx::PgPool) -> Result<T>,
) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let done = rt.block_on(async {
        use sqlx::ConnectOptions;
        // Bulk statements take seconds by design: slow-statement notes are debug output.
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .context("parsing DATABASE_URL")?
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .context("connecting to DATABASE_URL")?;
        f(pool).await
    });
    // Work a command left behind on purpose (a worker's job abandoned after the shutdown
    // grace, still on a blocking thread) does not hold the process: its effects are
    // uncommitted and its upload goes back to the queue.
    rt.shutdown_timeout(Duration::from_secs(1));
    done
}
