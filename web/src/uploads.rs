//! Receiving a roster from a browser or a script: the multipart body streamed to a spool
//! file under the size limit (never whole in memory), then the same submission as
//! `roster submit`: content hash, one upload, one job.

use axum::extract::Multipart;
use axum::http::HeaderMap;
use schemas::TemplateKind;
use tokio::io::AsyncWriteExt;

use crate::auth::{CsrfToken, Viewer};
use crate::{ApiError, AppState};

/// A roster received and submitted.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub upload_id: i64,
    /// False for the same content, uploader and template again (the same upload).
    pub new: bool,
    pub bytes: u64,
}

fn too_large(state: &AppState) -> ApiError {
    ApiError::TooLarge(format!(
        "文件超过{} MB的上限",
        state.config.max_upload_bytes >> 20
    ))
}

/// Streams the multipart fields `template` (`members` or `cadres`, default `members`)
/// and `file` (and, from a page, `csrf` before the file) into a spool file and submits
/// it as the viewer's organisation. A body declared or found larger than the limit is
/// refused while it streams, before it is stored.
pub async fn receive(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    mut multipart: Multipart,
    csrf: Option<&CsrfToken>,
) -> Result<Received, ApiError> {
    let limit = state.config.max_upload_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + (1 << 20)) {
        return Err(too_large(state));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state)
        } else {
            ApiError::BadRequest(format!("上传内容无法读取：{}", e.body_text()))
        }
    };
    let mut template = TemplateKind::Members;
    let mut sent_csrf: Option<String> = None;
    let mut spooled: Option<(tempfile::TempPath, u64)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "template" => {
                let t = field.text().await.map_err(bad)?;
                template = TemplateKind::parse(t.trim())
                    .ok_or_else(|| ApiError::BadRequest("模板应为 members 或 cadres".into()))?;
            }
            "csrf" => sent_csrf = Some(field.text().await.map_err(bad)?),
            "file" => {
                if let Some(expected) = csrf {
                    expected.check(sent_csrf.as_deref().unwrap_or_default())?;
                }
                let ext = field
                    .file_name()
                    .and_then(|n| n.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()))
                    .filter(|e| e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .unwrap_or_else(|| "xlsx".into());
                let spool = tempfile::Builder::new()
                    .prefix("roster-upload-")
                    .suffix(&format!(".{ext}"))
                    .tempfile_in(&state.config.spool_dir)?;
                let (file, path) = spool.into_parts();
                let mut file = tokio::fs::File::from_std(file);
                let mut size = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(too_large(state));
                    }
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                spooled = Some((path, size));
            }
            _ => {}
        }
    }
    if let (Some(expected), None) = (csrf, &spooled) {
        expected.check(sent_csrf.as_deref().unwrap_or_default())?;
    }
    let (path, bytes) = spooled.ok_or_else(|| ApiError::BadRequest("请选择要上传的文件".into()))?;
    if bytes == 0 {
        return Err(ApiError::BadRequest("上传的文件是空的".into()));
    }
    let done = jobs::submit(
        &state.pool,
        &state.storage,
        jobs::Source::File(&path),
        &viewer.admin.org_name,
        template,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Received {
        upload_id: done.upload_id,
        new: done.new,
        bytes,
    })
}
