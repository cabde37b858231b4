//! The job queue in the registry's own PostgreSQL (apalis-postgres), and submitting
//! uploads to it: registered by content hash and enqueued in one transaction.

use std::path::Path;
use std::time::Duration;

use apalis::prelude::TaskBuilder;
use apalis_postgres::{Config, PostgresStorage};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::storage::{Storage, StorageError};

/// The queue of upload jobs.
pub const QUEUE: &str = "roster.process_upload";

/// One upload to process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUpload {
    pub upload_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("queue: {0}")]
    Apalis(#[from] apalis_postgres::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("上传组织“{0}”不在数据库中")]
    UnknownUploader(String),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("encoding a job: {0}")]
    Json(#[from] serde_json::Error),
    /// An object outside what `submit` may read: another bucket, outside `uploads/`, or
    /// another organisation's stored roster.
    #[error("不能提交对象 s3://{bucket}/{key}：{why}")]
    ObjectRefused {
        bucket: String,
        key: String,
        why: &'static str,
    },
}

/// Where uploads are kept in the bucket; a stored roster is `uploads/<org id>/<sha>.<ext>`.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// Whether `uploader_id` may submit the object `bucket`/`key`: only from the configured
/// bucket, only under [`UPLOADS_PREFIX`], never through `..` or empty segments, and
/// never another organisation's stored roster (`uploads/<another id>/…`).
pub fn object_allowed(
    configured_bucket: &str,
    uploader_id: i64,
    bucket: &str,
    key: &str,
) -> Result<(), &'static str> {
    if bucket != configured_bucket {
        return Err("只能提交本系统存储桶中的对象");
    }
    let Some(rest) = key.strip_prefix(UPLOADS_PREFIX) else {
        return Err("只能提交 uploads/ 下的对象");
    };
    if rest
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || key.contains(['\\', '\0'])
    {
        return Err("对象路径不合法");
    }
    let first = rest.split('/').next().unwrap_or_default();
    let is_org_folder = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
    if is_org_folder && rest.contains('/') && first != uploader_id.to_string() {
        return Err("这是其他组织上传的文件");
    }
    Ok(())
}

/// Applies the registry's migrations and the queue's (its own schema, `apalis`).
pub async fn setup(pool: &PgPool) -> Result<(), QueueError> {
    registry::migrate(pool).await?;
    PostgresStorage::setup(pool).await?;
    Ok(())
}

/// How a worker polls and proves it is alive. A worker that misses `missed_heartbeats`
/// beats is dead: its jobs go back to the queue for the others.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub heartbeat: Duration,
    pub missed_heartbeats: usize,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            heartbeat: Duration::from_secs(10),
            missed_heartbeats: 3,
        }
    }
}

/// The queue's backend as a worker sees it: one job at a time per worker, so jobs spread
/// over every worker instead of piling up on the first.
pub fn backend(pool: &PgPool, liveness: Liveness) -> PostgresStorage<ProcessUpload> {
    let config = Config::default()
        .queue(QUEUE)
        .batch_size(1)
        .heartbeat_interval(liveness.heartbeat)
        .missed_heartbeats(liveness.missed_heartbeats);
    PostgresStorage::new(pool).with_config(config)
}

/// Where an upload comes from.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    /// A local file, put into the uploads bucket first.
    File(&'a Path),
    /// An object already in storage.
    Object { bucket: String, key: String },
}

/// A submitted upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submitted {
    pub upload_id: i64,
    /// False when the same content was already submitted by the same uploader with the
    /// same template and is queued, running or done: it is the same upload.
    pub enqueued: bool,
    /// True for a new upload; false for the same content, uploader and template again.
    pub new: bool,
}

/// Hex SHA-256 of a file, read in blocks (as `registry::uploads::content_sha256` of its
/// bytes).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Registers an upload by content hash and enqueues its job, in one transaction. The
/// same content, uploader and template is one upload: submitting it again returns the
/// same id and enqueues nothing, unless it had `failed` (then it is tried again).
#[tracing::instrument(skip_all, fields(template = template.code()))]
pub async fn submit(
    pool: &PgPool,
    storage: &Storage,
    source: Source<'_>,
    uploader: &str,
    template: schemas::TemplateKind,
) -> Result<Submitted, QueueError> {
    let uploader_id = registry::orgs::org_id(pool, uploader)
        .await?
        .ok_or_else(|| QueueError::UnknownUploader(uploader.to_string()))?;
    let (sha, bucket, key) = match source {
        Source::File(path) => {
            let read_error = |source| QueueError::Read {
                path: path.display().to_string(),
                source,
            };
            let owned = path.to_path_buf();
            let sha = tokio::task::spawn_blocking(move || file_sha256(&owned))
                .await
                .map_err(|e| read_error(std::io::Error::other(e)))?
                .map_err(read_error)?;
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
                .unwrap_or("bin")
                .to_ascii_lowercase();
            // Content-addressed: the same bytes are stored once. Streamed from disk.
            let key = format!("uploads/{uploader_id}/{sha}.{ext}");
            storage.put_path(&key, path).await?;
            (sha, storage.bucket.clone(), key)
        }
        Source::Object { bucket, key } => {
            if let Err(why) = object_allowed(&storage.bucket, uploader_id, &bucket, &key) {
                return Err(QueueError::ObjectRefused { bucket, key, why });
            }
            let limit = pipeline::ReadLimits::default().max_file_bytes;
            let bytes = storage.get(&bucket, &key, limit).await?;
            (registry::uploads::content_sha256(&bytes), bucket, key)
        }
    };
    let mut tx = pool.begin().await?;
    let registered = registry::uploads::register(
        &mut tx,
        registry::uploads::Submission {
            uploader_id,
            template,
            sha256: &sha,
            bucket: &bucket,
            key: &key,
        },
    )
    .await?;
    let (upload_id, enqueue) = (registered.upload_id, registered.enqueue);
    if enqueue {
        let job = serde_json::to_vec(&ProcessUpload { upload_id })?;
        // The job retries storage and database failures itself and records the outcome;
        // the queue's own attempts only cover a job that could not even record it.
        let task = TaskBuilder::new(job).max_attempts(3).build();
        apalis_postgres::queries::push_tasks(&mut *tx, QUEUE, vec![task]).await?;
    }
    tx.commit().await?;
    tracing::info!(upload_id, enqueued = enqueue, "submitted");
    Ok(Submitted {
        upload_id,
        enqueued: enqueue,
        new: registered.new,
    })
}

#[cfg(test)]
mod tests {
    use super::object_allowed;

    #[test]
    fn submit_takes_objects_only_from_the_bucket_under_uploads_and_never_another_orgs() {
        // (bucket, key, allowed for organisation 7 when the configured bucket is "roster")
        let table = [
            ("roster", "uploads/7/abc.xlsx", true),
            ("roster", "uploads/incoming/广东.xlsx", true),
            ("roster", "uploads/roster.xlsx", true),
            ("roster", "uploads/70/abc.xlsx", false),
            ("roster", "uploads/8/abc.xlsx", false),
            ("roster", "uploads/07/abc.xlsx", false),
            ("other", "uploads/7/abc.xlsx", false),
            ("Roster", "uploads/7/abc.xlsx", false),
            ("roster", "reports/7/summary.json", false),
            ("roster", "Uploads/7/abc.xlsx", false),
            ("roster", "uploads/../reports/1/a.xlsx", false),
            ("roster", "uploads/./7/a.xlsx", false),
            ("roster", "uploads//8/a.xlsx", false),
            ("roster", "uploads/", false),
            ("roster", "uploads/7/", false),
            ("roster", "uploads\\8\\a.xlsx", false),
            ("roster", "uploads/a\0b.xlsx", false),
            ("roster", "", false),
        ];
        for (bucket, key, allowed) in table {
            assert_eq!(
                object_allowed("roster", 7, bucket, key).is_ok(),
                allowed,
                "s3://{bucket}/{key}"
            );
        }
    }
}
