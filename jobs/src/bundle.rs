//! The organisation workbooks of an upload into the bucket as one object, a zip
//! ([`pipeline::bundle`]) streamed in multipart parts while the report writer makes them.

use std::collections::HashMap;

use pipeline::bundle::{Bundle, Span};
use pipeline::report::OnWorkbook;

use crate::storage::{Storage, StorageError};

/// The object holding every organisation workbook of an upload, under its prefix.
pub const BUNDLE: &str = "workbooks.zip";

/// Parts of the bundle's multipart upload.
pub const PART_BYTES: usize = 8 << 20;

/// The smallest part S3 takes but for the last (`EntityTooSmall`): a smaller
/// `part_bytes` is raised to it.
pub const MIN_PART_BYTES: usize = 5 << 20;

/// What the streaming uploader stored, once it has stored it all.
#[derive(Debug, Default)]
pub struct Stored {
    /// Where each workbook is in the bundle (none: no bundle was stored).
    pub spans: HashMap<String, Span>,
    /// Parts of its multipart upload (0: one plain put, or nothing).
    pub parts: u32,
}

/// The uploader at work; dropping it stops it. An attempt that is cancelled (past its
/// deadline, or a worker shutting down) stores nothing later: no bundle of a cancelled
/// attempt can land over the next attempt's. Its multipart upload is left unfinished,
/// which stores no object.
pub struct Storing(tokio::task::JoinHandle<Result<Stored, StorageError>>);

impl Future for Storing {
    type Output = Result<Result<Stored, StorageError>, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The report writer's hook and the task it feeds: each organisation workbook goes into
/// the bundle stored at `key` as soon as it is made, and the bundle goes to the store in
/// parts of `part_bytes` (at least [`MIN_PART_BYTES`]) while it grows, [`PARTS_IN_FLIGHT`] at a time (one plain put
/// when it stays under a part; nothing when no workbook comes). One object per upload
/// instead of one per organisation: a 1M-row upload has ~18,600 workbooks, and a request
/// each cost the store and the worker more than the bytes. The task ends when the hook
/// is dropped (the writer is done) and the bundle is stored; on a failure it aborts the
/// multipart upload, so no parts stay behind.
///
/// The hook blocks: call it from the writer's threads, never the runtime's.
pub fn stream(storage: &Storage, key: String, part_bytes: usize) -> (OnWorkbook, Storing) {
    let part_bytes = part_bytes.max(MIN_PART_BYTES);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(64);
    let storage = storage.clone();
    let task = tokio::spawn(async move {
        let now = chrono::Utc::now().with_timezone(&pipeline::china());
        let mut bundle = Bundle::new(now.naive_local());
        let mut spans = HashMap::new();
        let mut parts = Parts::new(storage.clone(), key.clone());
        let (spans_in, parts_in) = (&mut spans, &mut parts);
        let stored = async move {
            let (spans, parts) = (spans_in, parts_in);
            while let Some((name, bytes)) = rx.recv().await {
                let span = bundle.add(&name, &bytes)?;
                spans.insert(name, span);
                if bundle.buffered() >= part_bytes {
                    parts.send(bundle.take()).await?;
                }
            }
            if spans.is_empty() {
                return Ok(());
            }
            let rest = bundle.finish();
            match parts.upload.is_some() {
                true => parts.finish(rest).await,
                false => storage.put(&key, rest).await,
            }
        }
        .await;
        match stored {
            Ok(()) => Ok(Stored {
                spans,
                parts: parts.sent as u32,
            }),
            Err(e) => {
                parts.abort().await;
                Err(e)
            }
        }
    });
    // Called on the report writer's threads, never on the runtime's: blocking is fine,
    // and it holds the writer back when the store is slower than the writer.
    let hook = move |name: &str, bytes: Vec<u8>| {
        // A closed channel means the uploader failed: `publish` reports its error.
        let _ = tx.blocking_send((name.to_string(), bytes));
    };
    (std::sync::Arc::new(hook), Storing(task))
}

/// Bundle parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The bundle's multipart upload, started by its first part.
struct Parts {
    storage: Storage,
    key: String,
    upload: Option<String>,
    sent: i32,
    in_flight: tokio::task::JoinSet<Result<(i32, String), StorageError>>,
    done: Vec<(i32, String)>,
}

impl Parts {
    fn new(storage: Storage, key: String) -> Parts {
        Parts {
            storage,
            key,
            upload: None,
            sent: 0,
            in_flight: tokio::task::JoinSet::new(),
            done: Vec::new(),
        }
    }

    /// Sends the next part, once fewer than [`PARTS_IN_FLIGHT`] are on their way.
    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), StorageError> {
        let upload = match &self.upload {
            Some(u) => u.clone(),
            None => {
                let u = self.storage.start_multipart(&self.key).await?;
                self.upload = Some(u.clone());
                u
            }
        };
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        self.sent += 1;
        let (storage, key, number) = (self.storage.clone(), self.key.clone(), self.sent);
        self.in_flight.spawn(async move {
            let tag = storage.put_part(&key, &upload, number, bytes).await?;
            Ok((number, tag))
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), StorageError> {
        if let Some(joined) = self.in_flight.join_next().await {
            let part = joined.map_err(|e| StorageError::Unavailable {
                op: "put part",
                bucket: self.storage.bucket.clone(),
                key: self.key.clone(),
                detail: e.to_string(),
            })??;
            self.done.push(part);
        }
        Ok(())
    }

    /// Sends the last part and makes the object of them all.
    async fn finish(&mut self, last: Vec<u8>) -> Result<(), StorageError> {
        self.send(last).await?;
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let upload = self.upload.clone().unwrap_or_default();
        let parts = std::mem::take(&mut self.done);
        self.storage
            .complete_multipart(&self.key, &upload, parts)
            .await
    }

    /// Stops the parts in flight and drops the upload, so no parts are left stored.
    async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(upload) = self.upload.take() {
            self.storage.abort_multipart(&self.key, &upload).await;
        }
    }
}
