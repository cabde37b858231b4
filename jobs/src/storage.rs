//! Object storage through the S3 API: uploads in, reports out, presigned links for
//! admins. Configured the AWS way (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys), so S3, MinIO or
//! any compatible store works unchanged.

use std::path::Path;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

/// Checksums only where S3 demands them (`DeleteObjects`): the SDK's default adds a
/// CRC32 trailer, in aws-chunked encoding, to every body (see [`Storage::put`]).
const CHECKSUMS: aws_sdk_s3::config::RequestChecksumCalculation =
    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired;

/// Storage failures. `Missing` will not heal by retrying; the rest may.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("对象不存在：s3://{bucket}/{key}")]
    Missing { bucket: String, key: String },
    #[error("object storage unavailable ({op} s3://{bucket}/{key}): {detail}")]
    Unavailable {
        op: &'static str,
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("s3://{bucket}/{key} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        limit: u64,
    },
    #[error("reading a report to upload: {0}")]
    Io(#[from] std::io::Error),
    #[error("bundling the organisation workbooks: {0}")]
    Bundle(#[from] pipeline::bundle::BundleError),
}

impl StorageError {
    fn unavailable<E: std::error::Error>(op: &'static str, bucket: &str, key: &str, e: E) -> Self {
        StorageError::Unavailable {
            op,
            bucket: bucket.to_string(),
            key: key.to_string(),
            detail: DisplayErrorContext(e).to_string(),
        }
    }

    /// Worth retrying.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            StorageError::Missing { .. } | StorageError::TooLarge { .. } | StorageError::Bundle(_)
        )
    }
}

/// An S3 client and the bucket uploads and reports live in.
#[derive(Clone, Debug)]
pub struct Storage {
    client: Client,
    pub bucket: String,
}

impl Storage {
    /// From the environment (AWS conventions). With a custom endpoint (`AWS_ENDPOINT_URL`:
    /// MinIO, a loopback server) addressing is path-style. Each call gives up after a few
    /// seconds without a connection; the job runner retries whole jobs.
    pub async fn from_env(bucket: impl Into<String>) -> Storage {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .build();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .load()
            .await;
        let path_style = shared.endpoint_url().is_some();
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .request_checksum_calculation(CHECKSUMS)
            .build();
        Storage {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// An S3-compatible server at `endpoint` with static keys (path-style), for set-ups
    /// that do not configure it through the environment (tests, embedded servers).
    pub fn with_endpoint(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        bucket: impl Into<String>,
    ) -> Storage {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key, secret_key, None, None, "static",
            ))
            .force_path_style(true)
            .request_checksum_calculation(CHECKSUMS)
            .build();
        Storage {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket if it does not exist (local set-ups and tests).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| StorageError::unavailable("create bucket", &self.bucket, "", e))?;
        Ok(())
    }

    /// Whether the bucket answers (readiness probes).
    pub async fn ready(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| StorageError::unavailable("head bucket", &self.bucket, "", e))?;
        Ok(())
    }

    /// Puts a local file, streamed from disk (never whole in memory).
    pub async fn put_path(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StorageError::unavailable("read", &self.bucket, key, e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(|e| StorageError::unavailable("put", &self.bucket, key, e))?;
        Ok(())
    }

    /// Puts bytes with a plain body: no aws-chunked encoding, no checksum trailer, and no
    /// SHA-256 of the payload in the signature (the SDK's defaults for a streaming body).
    /// Each of those is a pass over the bytes on both sides, and 18,600 workbooks a
    /// 1M-row upload made them the worker's largest cost; the transport (TLS in
    /// production) guards the body.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| StorageError::unavailable("put", &self.bucket, key, e))?;
        Ok(())
    }

    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        let bytes = tokio::fs::read(path).await?;
        self.put(key, bytes).await
    }

    /// An object of any bucket, whole, if it is at most `limit` bytes: a larger one is not
    /// downloaded.
    pub async fn get(&self, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        let object = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                return Err(StorageError::Missing {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(StorageError::unavailable("get", bucket, key, e)),
        };
        let too_large = |size: u64| StorageError::TooLarge {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            limit,
        };
        if let Some(size) = object.content_length().filter(|&s| s as u64 > limit) {
            return Err(too_large(size as u64));
        }
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| StorageError::unavailable("get", bucket, key, e))?;
        let bytes = body.into_bytes();
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes.to_vec())
    }

    /// `length` bytes of an object from `offset` (an entry of a workbook bundle), as a
    /// stream: the caller passes it on without holding it whole.
    pub async fn get_range(
        &self,
        key: &str,
        offset: u64,
        length: u64,
    ) -> Result<
        impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        StorageError,
    > {
        let body = if length == 0 {
            ByteStream::from_static(b"")
        } else {
            self.get_range_body(key, offset, length).await?
        };
        Ok(futures::stream::unfold(body, |mut body| async move {
            let chunk = body.next().await?;
            Some((chunk.map_err(std::io::Error::other), body))
        }))
    }

    async fn get_range_body(
        &self,
        key: &str,
        offset: u64,
        length: u64,
    ) -> Result<ByteStream, StorageError> {
        let range = format!("bytes={offset}-{}", offset + length - 1);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range)
            .send()
            .await
        {
            Ok(o) if o.content_length() == Some(length as i64) => Ok(o.body),
            // A store that ignored the range, or an object shorter than the record says.
            Ok(o) => Err(StorageError::Unavailable {
                op: "get range",
                bucket: self.bucket.clone(),
                key: key.to_string(),
                detail: format!(
                    "asked for {length} bytes at {offset}, got {:?}",
                    o.content_length()
                ),
            }),
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                Err(StorageError::Missing {
                    bucket: self.bucket.clone(),
                    key: key.to_string(),
                })
            }
            Err(e) => Err(StorageError::unavailable("get range", &self.bucket, key, e)),
        }
    }

    /// Starts a multipart upload of `key`; its id.
    pub async fn start_multipart(&self, key: &str) -> Result<String, StorageError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| StorageError::unavailable("start multipart", &self.bucket, key, e))?;
        out.upload_id.ok_or_else(|| StorageError::Unavailable {
            op: "start multipart",
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail: "no upload id in the answer".into(),
        })
    }

    /// Puts part `number` (from 1) of a multipart upload, with a plain body as
    /// [`Storage::put`] does; its ETag.
    pub async fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: i32,
        bytes: Vec<u8>,
    ) -> Result<String, StorageError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| StorageError::unavailable("put part", &self.bucket, key, e))?;
        Ok(out.e_tag.unwrap_or_default())
    }

    /// Ends a multipart upload: the object becomes `parts` (number, ETag) in order.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        mut parts: Vec<(i32, String)>,
    ) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        parts.sort_unstable_by_key(|p| p.0);
        let parts = parts
            .into_iter()
            .map(|(n, tag)| CompletedPart::builder().part_number(n).e_tag(tag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StorageError::unavailable("complete multipart", &self.bucket, key, e))?;
        Ok(())
    }

    /// Drops a multipart upload and its parts (after a failure; best effort).
    pub async fn abort_multipart(&self, key: &str, upload: &str) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .send()
            .await
        {
            tracing::warn!(key, error = %DisplayErrorContext(e), "could not abort a multipart upload");
        }
    }

    /// Keys under a prefix.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| StorageError::unavailable("list", &self.bucket, prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| StorageError::unavailable("delete", &self.bucket, key, e))?;
        Ok(())
    }

    /// Deletes `keys`, a thousand per request (the S3 limit); keys already gone are fine.
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for batch in keys.chunks(1000) {
            let first = batch.first().map(String::as_str).unwrap_or_default();
            let fail = |e: aws_sdk_s3::error::BuildError| {
                StorageError::unavailable("delete", &self.bucket, first, e)
            };
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(fail)?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| StorageError::unavailable("delete", &self.bucket, first, e))?;
            if let Some(e) = out.errors().first() {
                return Err(StorageError::Unavailable {
                    op: "delete",
                    bucket: self.bucket.clone(),
                    key: e.key().unwrap_or_default().to_string(),
                    detail: e.message().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(())
    }

    /// A GET link that works without credentials until it expires.
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(expires)
            .map_err(|e| StorageError::unavailable("presign", &self.bucket, key, e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StorageError::unavailable("presign", &self.bucket, key, e))?;
        Ok(request.uri().to_string())
    }
}
