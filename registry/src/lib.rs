//! The system of record in PostgreSQL. Every SQL statement of the product lives in this
//! crate: the migrations, the organisation tree, the load of people and posts, the
//! uploads and their findings, and the completion statistics. `pipeline` computes;
//! this crate stores, and answers `pipeline`'s questions about organisations through
//! [`orgs::DbOrgs`], an [`pipeline::orgs::OrgResolver`].
//!
//! [`import::import`] is the one import path (validate against the registry, load, write
//! the reports) that `roster import` and the job worker share.

pub mod access;
pub mod accounts;
pub mod audit;
mod copy;
pub mod import;
pub mod load;
pub mod orgs;
pub mod people;
pub mod posts;
pub mod stats;
pub mod uploads;

pub use import::{ImportError, Imported, import};
pub use load::{DbFinding, LoadBatch, LoadError, Loaded, load};
pub use orgs::{DbOrgs, OrgImport, import_orgs, parse_org_file};

use sqlx::postgres::PgPool;

/// The migrations of `registry/migrations`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Something failed talking to the database: worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Another attempt has taken the upload over (this one's worker was thought dead):
    /// this attempt records nothing and stops.
    #[error("upload {upload_id}: attempt {attempt} was superseded by a later one")]
    Superseded { upload_id: i64, attempt: i32 },
}

/// Applies pending migrations; running it again changes nothing.
pub async fn migrate(pool: &PgPool) -> Result<(), RegistryError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether the database answers (readiness probes).
pub async fn ping(pool: &PgPool) -> Result<(), RegistryError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Every load (and every org import, which creates secretaries) takes this
/// transaction-level advisory lock: loads are serialised, so the checks of one load see
/// every earlier load.
const LOAD_LOCK: i64 = 7217001;

/// Stats runs take this transaction-level advisory lock: one at a time.
const STATS_LOCK: i64 = 7217002;
