//! Download links to an upload's reports (its status is the registry's:
//! `registry::uploads::status`).

use std::time::Duration;

use registry::uploads::UploadStatus;
use serde::Serialize;

use crate::storage::{Storage, StorageError};

/// One report and a link to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLink {
    pub key: String,
    pub url: String,
}

/// Presigned links to every report of an upload, valid for `expires`.
pub async fn report_links(
    storage: &Storage,
    status: &UploadStatus,
    expires: Duration,
) -> Result<Vec<ReportLink>, StorageError> {
    let mut links = Vec::with_capacity(status.report_keys.len());
    for key in &status.report_keys {
        links.push(ReportLink {
            key: key.clone(),
            url: storage.presign_get(key, expires).await?,
        });
    }
    Ok(links)
}
