//! Admin accounts of the service (SPEC §12.1): registration with an organisation's code,
//! the bootstrap of the top admins, login with lockout, sessions and API tokens (stored
//! hashed, shared by every `roster serve`), password changes and registration codes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, NaiveDate, Utc};
use pipeline::text::normalise_org;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;

use crate::RegistryError;

/// An organisation has at most this many admins (as in the registry).
pub const MAX_ADMINS: i64 = 2;
/// Failed logins in a row that lock an account …
pub const LOCK_AFTER: i32 = 5;
/// … for this many minutes.
pub const LOCK_MINUTES: i64 = 15;
/// How long a session (or API token) lasts.
pub const SESSION_HOURS: i64 = 12;
/// Youngest age at which a person may register as an admin.
pub const MIN_ADMIN_AGE: i32 = 13;

/// A signed-in admin: who, and of which organisation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Admin {
    pub id: i64,
    pub name: String,
    pub org_id: i64,
    pub org_name: String,
    pub must_change_password: bool,
}

/// Why an account could not be created or changed: the person's mistake, told to them.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The organisation does not exist or the code is not its code (one answer for both).
    #[error("组织全称或管理员注册码不正确")]
    BadCode,
    #[error("组织“{0}”不在数据库中")]
    UnknownOrg(String),
    #[error("该组织已有{MAX_ADMINS}名管理员，不能再注册")]
    Full,
    #[error("该身份证号码已注册为管理员")]
    Exists,
    #[error("{0}")]
    Invalid(String),
    /// Too many refused registrations from this address or for this organisation.
    #[error("注册尝试过多，请{THROTTLE_MINUTES}分钟后再试")]
    Throttled,
    #[error(transparent)]
    Db(#[from] RegistryError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Db(e.into())
    }
}

/// Argon2 checks and hashes run at most this many at once per process (default: one per
/// core; `ROSTER_ARGON2_SLOTS` overrides): each takes 19 MiB and a core for tens of
/// milliseconds, so a flood of logins waits its turn instead of taking the memory.
fn argon2_slots() -> &'static (tokio::sync::Semaphore, usize) {
    static SLOTS: std::sync::OnceLock<(tokio::sync::Semaphore, usize)> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::env::var("ROSTER_ARGON2_SLOTS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        (tokio::sync::Semaphore::new(n), n)
    })
}

static ARGON2_NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static ARGON2_PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The slots, and the most Argon2 checks this process has run at once.
pub fn argon2_peak() -> (usize, usize) {
    (
        argon2_slots().1,
        ARGON2_PEAK.load(std::sync::atomic::Ordering::Relaxed),
    )
}

static ARGON2_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Argon2 checks and hashes this process has run for accounts (a refusal that needs
/// none, such as a wrong registration code, runs none).
pub fn argon2_runs() -> u64 {
    ARGON2_RUNS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs Argon2 work on a blocking thread once a slot is free ([`argon2_slots`]).
pub async fn with_argon2<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    use std::sync::atomic::Ordering::Relaxed;
    let _slot = argon2_slots()
        .0
        .acquire()
        .await
        .expect("the Argon2 semaphore is never closed");
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            ARGON2_NOW.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    ARGON2_RUNS.fetch_add(1, Relaxed);
    let running = ARGON2_NOW.fetch_add(1, Relaxed) + 1;
    let _running = Running;
    ARGON2_PEAK.fetch_max(running, Relaxed);
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Argon2id with the crate's default cost (19 MiB, 2 passes), as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a salt");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashes any password with valid parameters")
        .to_string()
}

/// Whether `password` matches a stored PHC string (whatever parameters it was made with).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A hash no password matches, verified against when there is no account, so refusals
/// take as long whether the account exists or not.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&hex(&random_bytes::<16>())))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the system's random source");
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is stored of a session token: its SHA-256.
fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A fresh random secret (session tokens, CSRF tokens): 256 bits, hex.
pub fn new_secret() -> String {
    hex(&random_bytes::<32>())
}

/// The rules a new password must meet; `None` when it does.
pub fn password_problem(password: &str, id_number: &str) -> Option<&'static str> {
    let chars = password.chars().count();
    if !(8..=64).contains(&chars) {
        return Some("密码应为8–64个字符");
    }
    if !password.chars().any(|c| c.is_ascii_alphabetic())
        || !password.chars().any(|c| c.is_ascii_digit())
    {
        return Some("密码应同时包含字母和数字");
    }
    if id_number.len() >= 8 && password == &id_number[id_number.len() - 8..] {
        return Some("新密码不能是身份证号码后8位");
    }
    None
}

/// A person who is to be an admin, already checked (name, ID number, phone: §5.1 rules).
#[derive(Debug, Clone)]
pub struct NewAdmin<'a> {
    pub org: &'a str,
    pub name: &'a str,
    pub id_number: &'a str,
    pub phone: &'a str,
    pub password_hash: String,
    pub must_change_password: bool,
}

/// Checks a person for an admin account by the roster rules: a valid name, ID number
/// (§5.1) and phone, and at least 13 years old on `today`.
pub fn check_person(
    name: &str,
    id_number: &str,
    phone: &str,
    today: NaiveDate,
) -> Result<pipeline::person::Person, AccountError> {
    let check = pipeline::person::check_person(name, id_number, phone, today)
        .map_err(|e| AccountError::Invalid(format!("内部错误：{e}")))?;
    if let Some(message) = check.message() {
        return Err(AccountError::Invalid(message));
    }
    match check.birth {
        Some(b) if pipeline::person::age_on(b, today) >= MIN_ADMIN_AGE => Ok(check.person),
        _ => Err(AccountError::Invalid(format!(
            "管理员应年满{MIN_ADMIN_AGE}周岁"
        ))),
    }
}

/// Inserts an admin of `org` inside the caller's transaction, which has locked the
/// organisation's row: so two registrations at once cannot make a third admin.
async fn insert_admin(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org: i64,
    a: &NewAdmin<'_>,
) -> Result<i64, AccountError> {
    let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM admins WHERE org_id = $1")
        .bind(org)
        .fetch_one(&mut **tx)
        .await?;
    if admins >= MAX_ADMINS {
        return Err(AccountError::Full);
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO admins (id_number, name, phone, org_id, password_hash, must_change_password)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id_number) DO NOTHING RETURNING id",
    )
    .bind(a.id_number)
    .bind(a.name)
    .bind(a.phone)
    .bind(org)
    .bind(&a.password_hash)
    .bind(a.must_change_password)
    .fetch_optional(&mut **tx)
    .await?;
    id.ok_or(AccountError::Exists)
}

/// Refused registrations (a wrong organisation or code) from one client address, or
/// for one organisation, within [`THROTTLE_MINUTES`], after which more are refused
/// unheard.
pub const THROTTLE_AFTER: i64 = 10;
/// The window of [`THROTTLE_AFTER`].
pub const THROTTLE_MINUTES: i64 = 15;

/// A registration as the form sends it (SPEC §12.1).
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub org: &'a str,
    pub code: &'a str,
    pub name: &'a str,
    pub id_number: &'a str,
    pub phone: &'a str,
    pub password: &'a str,
    /// Where it came from, for the throttle.
    pub client: Option<&'a str>,
    /// Refusals on record (per client, per organisation) within [`THROTTLE_MINUTES`]
    /// after which more are refused unheard ([`THROTTLE_AFTER`] by default).
    pub throttle_after: i64,
}

/// Registers an admin with the organisation's registration code (SPEC §12.1). In order,
/// cheapest first: the throttle (too many refusals from this address or for this
/// organisation), the code, the person (§5.1 rules, age), the password rules; only then
/// Argon2, and the insert re-checks the code under the organisation's row lock. A wrong
/// organisation or code is recorded for the throttle.
pub async fn register(
    pool: &PgPool,
    r: &Registration<'_>,
    today: NaiveDate,
) -> Result<i64, AccountError> {
    let org_key = normalise_org(r.org);
    let (by_client, by_org): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE client = $1), count(*) FILTER (WHERE org_key = $2)
         FROM register_refusals
         WHERE at > now() - make_interval(mins => $3::int)",
    )
    .bind(r.client)
    .bind(&org_key)
    .bind(THROTTLE_MINUTES as i32)
    .fetch_one(pool)
    .await?;
    if by_client >= r.throttle_after || by_org >= r.throttle_after {
        return Err(AccountError::Throttled);
    }
    let known: Option<i64> =
        sqlx::query_scalar("SELECT id FROM orgs WHERE name_key = $1 AND reg_code = $2")
            .bind(&org_key)
            .bind(r.code.trim())
            .fetch_optional(pool)
            .await?;
    if known.is_none() {
        sqlx::query(
            "WITH gone AS (
                 DELETE FROM register_refusals WHERE at < now() - interval '1 day'
             )
             INSERT INTO register_refusals (client, org_key) VALUES ($1, $2)",
        )
        .bind(r.client)
        .bind(&org_key)
        .execute(pool)
        .await?;
        return Err(AccountError::BadCode);
    }
    let (name, id_number, phone) = (
        r.name.to_string(),
        r.id_number.to_string(),
        r.phone.to_string(),
    );
    let person =
        tokio::task::spawn_blocking(move || check_person(&name, &id_number, &phone, today))
            .await
            .map_err(RegistryError::from)??;
    if let Some(problem) = password_problem(r.password, &person.id_number) {
        return Err(AccountError::Invalid(problem.into()));
    }
    let password = r.password.to_string();
    let password_hash = with_argon2(move || hash_password(&password)).await?;
    let a = NewAdmin {
        org: r.org,
        name: &person.name,
        id_number: &person.id_number,
        phone: &person.phone,
        password_hash,
        must_change_password: false,
    };
    let mut tx = pool.begin().await?;
    let org: Option<(i64, String)> =
        sqlx::query_as("SELECT id, reg_code FROM orgs WHERE name_key = $1 FOR UPDATE")
            .bind(&org_key)
            .fetch_optional(&mut *tx)
            .await?;
    let org = match org {
        Some((id, stored)) if stored.as_bytes() == r.code.trim().as_bytes() => id,
        _ => return Err(AccountError::BadCode),
    };
    let id = insert_admin(&mut tx, org, &a).await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates an admin of `a.org` without a code: the operators' bootstrap of the top
/// organisations (`roster admins add`), with the initial password they were given.
pub async fn bootstrap_admin(pool: &PgPool, a: &NewAdmin<'_>) -> Result<i64, AccountError> {
    let mut tx = pool.begin().await?;
    let org: Option<i64> = sqlx::query_scalar("SELECT id FROM orgs WHERE name_key = $1 FOR UPDATE")
        .bind(normalise_org(a.org))
        .fetch_optional(&mut *tx)
        .await?;
    let org = org.ok_or_else(|| AccountError::UnknownOrg(a.org.to_string()))?;
    let id = insert_admin(&mut tx, org, a).await?;
    tx.commit().await?;
    Ok(id)
}

/// How a login ended.
#[derive(Debug)]
pub enum Login {
    /// A new session: give the token to the client (only its hash is stored).
    Session { admin: Admin, token: String },
    /// Wrong account, wrong password or locked: one answer for all three.
    Refused { admin_id: Option<i64> },
}

/// Checks an ID number and password. Five failures in a row lock the account for
/// fifteen minutes, during which the right password is refused too.
pub async fn login(pool: &PgPool, id_number: &str, password: &str) -> Result<Login, RegistryError> {
    let id_number = pipeline::text::shape(id_number, pipeline::text::Shape::Upper)
        .map(|c| c.into_owned())
        .unwrap_or_default();
    // The attempt is reserved before its password is checked: counted as a failure now
    // (and the account locked when it is the fifth), in one statement that waits for the
    // row's lock, so N guesses at once count as N. An attempt on a locked account is
    // refused and counts nothing. A right password then clears the count.
    let row: Option<(i64, String, bool)> = sqlx::query_as(
        "WITH before AS (
             SELECT id, coalesce(locked_until > now(), false) AS locked
             FROM admins WHERE id_number = $1 FOR UPDATE
         )
         UPDATE admins a SET
             failed_logins = CASE WHEN b.locked THEN a.failed_logins
                                  WHEN a.failed_logins + 1 >= $2 THEN 0
                                  ELSE a.failed_logins + 1 END,
             locked_until = CASE WHEN b.locked THEN a.locked_until
                                 WHEN a.failed_logins + 1 >= $2
                                 THEN now() + make_interval(mins => $3::int)
                                 ELSE a.locked_until END
         FROM before b WHERE a.id = b.id
         RETURNING a.id, a.password_hash, b.locked",
    )
    .bind(&id_number)
    .bind(LOCK_AFTER)
    .bind(LOCK_MINUTES as i32)
    .fetch_optional(pool)
    .await?;
    let (hash, password) = (
        row.as_ref()
            .map_or(dummy_hash().to_string(), |r| r.1.clone()),
        password.to_string(),
    );
    let matches = with_argon2(move || verify_password(&hash, &password)).await?;
    let Some((admin_id, _, locked)) = row else {
        return Ok(Login::Refused { admin_id: None });
    };
    if locked || !matches {
        return Ok(Login::Refused {
            admin_id: Some(admin_id),
        });
    }
    sqlx::query("UPDATE admins SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(admin_id)
        .execute(pool)
        .await?;
    // The account's expired sessions go as it opens a new one.
    sqlx::query("DELETE FROM sessions WHERE admin_id = $1 AND expires_at <= now()")
        .bind(admin_id)
        .execute(pool)
        .await?;
    let token = new_secret();
    sqlx::query(
        "INSERT INTO sessions (token_sha256, admin_id, expires_at)
         VALUES ($1, $2, now() + make_interval(hours => $3::int))",
    )
    .bind(token_digest(&token))
    .bind(admin_id)
    .bind(SESSION_HOURS as i32)
    .execute(pool)
    .await?;
    let admin = admin_by_id(pool, admin_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(Login::Session { admin, token })
}

async fn admin_by_id(pool: &PgPool, id: i64) -> Result<Option<Admin>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.name, a.org_id, o.full_name AS org_name, a.must_change_password
             FROM admins a JOIN orgs o ON o.id = a.org_id WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The admin a live session or API token belongs to.
pub async fn session(pool: &PgPool, token: &str) -> Result<Option<Admin>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.name, a.org_id, o.full_name AS org_name, a.must_change_password
         FROM admins a JOIN orgs o ON o.id = a.org_id JOIN sessions s ON s.admin_id = a.id
         WHERE s.token_sha256 = $1 AND s.expires_at > now()",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await?)
}

/// Ends a session; the admin it was theirs, when it was one.
pub async fn logout(pool: &PgPool, token: &str) -> Result<Option<i64>, RegistryError> {
    Ok(
        sqlx::query_scalar("DELETE FROM sessions WHERE token_sha256 = $1 RETURNING admin_id")
            .bind(token_digest(token))
            .fetch_optional(pool)
            .await?,
    )
}

/// Changes an admin's password after checking the old one. Other sessions of the
/// account end; the one making the change (`keep`) goes on.
pub async fn change_password(
    pool: &PgPool,
    admin_id: i64,
    old: &str,
    new: &str,
    keep: &str,
) -> Result<(), AccountError> {
    let (hash, id_number): (String, String) =
        sqlx::query_as("SELECT password_hash, id_number FROM admins WHERE id = $1")
            .bind(admin_id)
            .fetch_one(pool)
            .await?;
    let old = old.to_string();
    let ok = with_argon2(move || verify_password(&hash, &old)).await?;
    if !ok {
        return Err(AccountError::Invalid("原密码不正确".into()));
    }
    if let Some(problem) = password_problem(new, &id_number) {
        return Err(AccountError::Invalid(problem.into()));
    }
    let new = new.to_string();
    let hash = with_argon2(move || hash_password(&new)).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE admins SET password_hash = $2, must_change_password = false WHERE id = $1")
        .bind(admin_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE admin_id = $1 AND token_sha256 <> $2")
        .bind(admin_id)
        .bind(token_digest(keep))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A direct child of the viewer's organisation and its registration code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChildCode {
    pub org: String,
    pub category: String,
    pub code: String,
    pub admins: i64,
}

/// The registration codes of an organisation's direct children (SPEC §12.2).
pub async fn child_codes(pool: &PgPool, org_id: i64) -> Result<Vec<ChildCode>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT o.full_name AS org, o.category, o.reg_code AS code,
                (SELECT count(*) FROM admins a WHERE a.org_id = o.id) AS admins
         FROM orgs o WHERE o.parent_id = $1 ORDER BY o.name_key",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

/// A new registration code for a direct child of `parent_id` (the old one stops
/// working); `None` when `child` is not such a child.
pub async fn regenerate_code(
    pool: &PgPool,
    parent_id: i64,
    child: &str,
) -> Result<Option<String>, RegistryError> {
    Ok(sqlx::query_scalar(
        "UPDATE orgs SET reg_code = new_reg_code()
         WHERE name_key = $1 AND parent_id = $2 RETURNING reg_code",
    )
    .bind(normalise_org(child))
    .bind(parent_id)
    .fetch_optional(pool)
    .await?)
}

/// When an account's lock ends, if it is locked (for tests and operators).
pub async fn locked_until(
    pool: &PgPool,
    id_number: &str,
) -> Result<Option<DateTime<Utc>>, RegistryError> {
    Ok(sqlx::query_scalar(
        "SELECT locked_until FROM admins WHERE id_number = $1 AND locked_until > now()",
    )
    .bind(id_number)
    .fetch_optional(pool)
    .await?
    .flatten())
}
