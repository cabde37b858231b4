//! Bounds on what a zip container can make the spreadsheet parser allocate, whatever it
//! declares: every part the parser may read is inflated here first, counting the bytes
//! it really holds and the longest token (text or tag) in it, before any parser sees it.
//!
//! The parser keeps each text run (a cell, a shared string) in one buffer, so a 3 GB
//! run compressed to 3 MB would take 3 GB at once; here it costs a 64 KiB buffer.

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use schemas::ErrorCode;

use crate::Rejection;
use crate::read::ReadLimits;

/// The longest run of XML between two `<` that a part may hold. A cell holds at most
/// 32,767 characters; written with escapes (`&amp;`, `_x0001_`) that is under 230 KB of
/// XML, so 1 MiB leaves room for any spreadsheet program's markup.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;

/// Why a part is refused.
enum Over {
    Inflated,
    Token,
}

/// Inflates every XML and binary part of a zip container, refusing the file when the
/// parts hold more than `limits.max_uncompressed_bytes` in all or any token is longer
/// than [`MAX_TOKEN_BYTES`]. Parts are checked in parallel.
#[tracing::instrument(skip_all, fields(bytes = bytes.len()))]
pub(crate) fn check_zip(bytes: &[u8], limits: &ReadLimits) -> Result<(), Rejection> {
    let zip = ::zip::ZipArchive::new(Cursor::new(bytes)).map_err(corrupt)?;
    let parts: Vec<usize> = (0..zip.len())
        .filter(|&i| {
            zip.name_for_index(i)
                .is_some_and(|n| n.is_ok_and(|n| part_kind(&n) != PartKind::Unread))
        })
        .collect();
    let total = AtomicU64::new(0);
    parts.par_iter().try_for_each(|&i| {
        let mut zip = zip.clone();
        let mut part = zip.by_index(i).map_err(corrupt)?;
        let binary = part
            .name()
            .is_ok_and(|n| part_kind(&n) == PartKind::Records);
        let scan = if binary {
            scan_records(&mut part, &total, limits.max_uncompressed_bytes)
        } else {
            scan_xml(&mut part, &total, limits.max_uncompressed_bytes)
        };
        match scan {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Over::Inflated)) => Err(Rejection {
                code: ErrorCode::FileTooLarge,
                message: format!(
                    "{}：解压后超过 {} MB",
                    ErrorCode::FileTooLarge.message(),
                    limits.max_uncompressed_bytes >> 20
                ),
            }),
            Ok(Err(Over::Token)) => Err(Rejection {
                code: ErrorCode::FileTooLarge,
                message: format!(
                    "{}：有单元格或标记超过 {} MB，Excel 单元格最多 32767 个字",
                    ErrorCode::FileTooLarge.message(),
                    MAX_TOKEN_BYTES >> 20
                ),
            }),
            Err(e) => Err(corrupt(e)),
        }
    })
}

#[derive(Debug, PartialEq)]
enum PartKind {
    Xml,
    /// xlsb's record streams.
    Records,
    /// Never read by the parser (images, printer settings, macros).
    Unread,
}

fn part_kind(name: &str) -> PartKind {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".xml") || n.ends_with(".rels") {
        PartKind::Xml
    } else if n.ends_with(".bin")
        && (n.starts_with("xl/worksheets/")
            || ["xl/workbook.bin", "xl/sharedstrings.bin", "xl/styles.bin"].contains(&n.as_str()))
    {
        PartKind::Records
    } else {
        PartKind::Unread
    }
}

fn corrupt(e: impl std::fmt::Display) -> Rejection {
    Rejection {
        code: ErrorCode::FileUnreadable,
        message: format!(
            "{}：压缩包结构损坏（{e}）",
            ErrorCode::FileUnreadable.message()
        ),
    }
}

/// Adds `n` inflated bytes to the container's total; false once it is over `max`.
fn count(total: &AtomicU64, n: usize, max: u64) -> bool {
    total.fetch_add(n as u64, Ordering::Relaxed) + n as u64 <= max
}

/// An XML part: the distance between consecutive `<` stays under the token bound.
fn scan_xml(
    part: &mut impl Read,
    total: &AtomicU64,
    max: u64,
) -> std::io::Result<Result<(), Over>> {
    let mut buf = vec![0u8; 64 << 10];
    let mut since_lt = 0usize;
    loop {
        let n = match part.read(&mut buf) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if !count(total, n, max) {
            return Ok(Err(Over::Inflated));
        }
        let chunk = &buf[..n];
        let mut at = 0;
        for lt in memchr::memchr_iter(b'<', chunk) {
            since_lt += lt - at;
            if since_lt > MAX_TOKEN_BYTES {
                return Ok(Err(Over::Token));
            }
            since_lt = 0;
            at = lt;
        }
        since_lt += n - at;
        if since_lt > MAX_TOKEN_BYTES {
            return Ok(Err(Over::Token));
        }
    }
}

/// An xlsb binary part: records of a variable-length type and a variable-length size;
/// no record may declare more than the token bound.
fn scan_records(
    part: &mut impl Read,
    total: &AtomicU64,
    max: u64,
) -> std::io::Result<Result<(), Over>> {
    let mut reader = std::io::BufReader::with_capacity(64 << 10, part);
    let mut sink = vec![0u8; 64 << 10];
    let mut byte = [0u8; 1];
    loop {
        // Record type: up to 2 bytes, high bit continues.
        match reader.read(&mut byte)? {
            0 => return Ok(Ok(())),
            _ if byte[0] & 0x80 != 0 => reader.read_exact(&mut byte)?,
            _ => {}
        }
        // Record size: up to 4 bytes of 7 bits.
        let mut size = 0usize;
        for shift in 0..4 {
            reader.read_exact(&mut byte)?;
            size |= usize::from(byte[0] & 0x7f) << (7 * shift);
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        if size > MAX_TOKEN_BYTES {
            return Ok(Err(Over::Token));
        }
        let mut left = size;
        while left > 0 {
            let n = left.min(sink.len());
            reader.read_exact(&mut sink[..n])?;
            left -= n;
        }
        if !count(total, size + 2, max) {
            return Ok(Err(Over::Inflated));
        }
    }
}
