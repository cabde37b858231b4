//! The organisation workbooks of one upload as one zip archive, written as a stream: a
//! store keeps one object per upload instead of one per organisation, and serves each
//! workbook with a ranged read of the span this writer gives for it.
//!
//! Entries are *stored* (xlsx is already deflated), so an entry's bytes in the archive
//! are the workbook's bytes, byte for byte, and any zip tool opens the whole archive.
//! Zip64 records are written when the archive passes 4 GiB or 65,535 entries.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// Where an entry's bytes are in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u64,
}

/// Why an entry cannot be added. Both are far beyond any workbook `roster` writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle entry {0:?} is 4 GiB or larger")]
    EntryTooLarge(String),
    #[error("bundle entry name of {0} bytes is too long")]
    NameTooLong(usize),
}

/// One entry as the central directory records it.
struct Entry {
    name: String,
    crc: u32,
    len: u32,
    header: u64,
}

/// A zip archive being written. Bytes come out in order through [`Bundle::take`] while
/// entries go in, so the archive is never whole in memory; [`Bundle::finish`] gives the
/// rest and the central directory.
pub struct Bundle {
    buf: Vec<u8>,
    /// Bytes already handed out by `take`.
    taken: u64,
    entries: Vec<Entry>,
    time: u16,
    date: u16,
    /// Local header offsets from here on are recorded in zip64 fields (4 GiB; lower in
    /// tests, to cover that path without writing 4 GiB).
    zip64_from: u64,
}

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// General purpose flag 11: names are UTF-8.
const UTF8: u16 = 1 << 11;
const MAX32: u64 = u32::MAX as u64;

impl Bundle {
    /// An empty archive whose entries carry `modified` as their time.
    pub fn new(modified: NaiveDateTime) -> Bundle {
        Bundle::with_zip64_from(modified, MAX32)
    }

    #[doc(hidden)]
    pub fn with_zip64_from(modified: NaiveDateTime, zip64_from: u64) -> Bundle {
        let (time, date) = dos_time(modified);
        Bundle {
            buf: Vec::new(),
            taken: 0,
            entries: Vec::new(),
            time,
            date,
            zip64_from: zip64_from.min(MAX32),
        }
    }

    /// Archive bytes written so far.
    pub fn len(&self) -> u64 {
        self.taken + self.buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries added so far.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Bytes written and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Hands out the bytes written since the last call, in archive order.
    pub fn take(&mut self) -> Vec<u8> {
        let out = std::mem::take(&mut self.buf);
        self.taken += out.len() as u64;
        out
    }

    /// Appends `bytes` as entry `name`; the span is where they are in the archive.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<Span, BundleError> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|&l| u64::from(l) < MAX32)
            .ok_or_else(|| BundleError::EntryTooLarge(name.to_string()))?;
        let name_len =
            u16::try_from(name.len()).map_err(|_| BundleError::NameTooLong(name.len()))?;
        let header = self.len();
        let crc = crc32fast::hash(bytes);
        let b = &mut self.buf;
        b.reserve(30 + name.len() + bytes.len());
        put32(b, LOCAL);
        put16(b, 20); // version needed: 2.0
        put16(b, UTF8);
        put16(b, 0); // stored
        put16(b, self.time);
        put16(b, self.date);
        put32(b, crc);
        put32(b, len);
        put32(b, len);
        put16(b, name_len);
        put16(b, 0); // no extra field
        b.extend_from_slice(name.as_bytes());
        let offset = header + 30 + name.len() as u64;
        b.extend_from_slice(bytes);
        self.entries.push(Entry {
            name: name.to_string(),
            crc,
            len,
            header,
        });
        Ok(Span {
            offset,
            len: bytes.len() as u64,
        })
    }

    /// Writes the central directory and the end records; gives every byte not yet taken.
    pub fn finish(mut self) -> Vec<u8> {
        let start = self.len();
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let far = e.header >= self.zip64_from;
            let b = &mut self.buf;
            put32(b, CENTRAL);
            put16(b, (3 << 8) | 45); // made by: unix, 4.5
            put16(b, if far { 45 } else { 20 });
            put16(b, UTF8);
            put16(b, 0);
            put16(b, self.time);
            put16(b, self.date);
            put32(b, e.crc);
            put32(b, e.len);
            put32(b, e.len);
            put16(b, e.name.len() as u16);
            put16(b, if far { 12 } else { 0 });
            put16(b, 0); // comment
            put16(b, 0); // disk
            put16(b, 0); // internal attributes
            put32(b, 0o100644 << 16); // a regular file, rw-r--r--
            put32(b, if far { u32::MAX } else { e.header as u32 });
            b.extend_from_slice(e.name.as_bytes());
            if far {
                put16(b, 0x0001); // zip64 extended information
                put16(b, 8);
                put64(b, e.header);
            }
        }
        let end = self.len();
        let (count, size) = (entries.len() as u64, end - start);
        let zip64 = count >= 0xFFFF || start >= self.zip64_from || size >= MAX32;
        let b = &mut self.buf;
        if zip64 {
            put32(b, END64);
            put64(b, 44);
            put16(b, (3 << 8) | 45);
            put16(b, 45);
            put32(b, 0);
            put32(b, 0);
            put64(b, count);
            put64(b, count);
            put64(b, size);
            put64(b, start);
            put32(b, LOCATOR64);
            put32(b, 0);
            put64(b, end);
            put32(b, 1);
        }
        put32(b, END);
        put16(b, 0);
        put16(b, 0);
        let short = if zip64 { 0xFFFF } else { count as u16 };
        put16(b, short);
        put16(b, short);
        put32(b, if zip64 { u32::MAX } else { size as u32 });
        put32(b, if zip64 { u32::MAX } else { start as u32 });
        put16(b, 0);
        self.take()
    }
}

/// MS-DOS time and date (two-second resolution, years 1980–2107).
fn dos_time(t: NaiveDateTime) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107) as u16;
    let time = (t.hour() as u16) << 11 | (t.minute() as u16) << 5 | (t.second() as u16 / 2);
    let date = (year - 1980) << 9 | (t.month() as u16) << 5 | t.day() as u16;
    (time, date)
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
