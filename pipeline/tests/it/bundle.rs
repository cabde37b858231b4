//! The workbook bundle is a zip any reader opens, and each span it gives is exactly the
//! entry's bytes: checked with the zip crate over a table of entries and zip64 cut-offs.

use std::io::{Cursor, Read};

use chrono::NaiveDate;
use pipeline::bundle::{Bundle, BundleError, Span};

fn when() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 4)
        .unwrap()
        .and_hms_opt(13, 37, 42)
        .unwrap()
}

/// Writes `entries`, taking the bytes out after every `take_every`-th entry (0: never),
/// and gives the archive and the spans.
fn write(
    entries: &[(String, Vec<u8>)],
    zip64_from: u64,
    take_every: usize,
) -> (Vec<u8>, Vec<Span>) {
    let mut b = Bundle::with_zip64_from(when(), zip64_from);
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for (i, (name, bytes)) in entries.iter().enumerate() {
        spans.push(b.add(name, bytes).unwrap());
        assert_eq!(b.entries(), i + 1);
        if take_every > 0 && (i + 1) % take_every == 0 {
            let before = b.len();
            out.extend(b.take());
            assert_eq!(b.buffered(), 0);
            assert_eq!(b.len(), before, "taking does not move the offsets");
        }
    }
    out.extend(b.finish());
    (out, spans)
}

/// Every entry reads back through the zip crate under its name with its bytes (its CRC
/// checked), stored, at the span given for it.
fn assert_reads_back(archive: &[u8], entries: &[(String, Vec<u8>)], spans: &[Span]) {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    assert_eq!(zip.len(), entries.len());
    for (i, ((name, bytes), span)) in entries.iter().zip(spans).enumerate() {
        let at = (span.offset as usize)..(span.offset + span.len) as usize;
        assert_eq!(&archive[at], &bytes[..], "span of {name}");
        let mut f = zip.by_index(i).unwrap();
        assert_eq!(f.name().unwrap(), name.as_str());
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        assert_eq!(f.data_start(), Some(span.offset), "{name}");
        assert_eq!(f.unix_mode(), Some(0o100644));
        let t = f.last_modified().unwrap();
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2026, 12, 4, 13, 37, 42)
        );
        let mut read = Vec::new();
        f.read_to_end(&mut read).unwrap();
        assert_eq!(read, *bytes, "{name}");
    }
}

fn entries_of(names: &[&str], sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(i, (n, &size))| {
            let bytes = (0..size).map(|j| (j * 31 + i * 7) as u8).collect();
            (n.to_string(), bytes)
        })
        .collect()
}

#[test]
fn every_entry_reads_back_at_its_span() {
    let names = [
        "共青团广州市天河区委员会.xlsx",
        "a.xlsx",
        "empty.xlsx",
        "共青团某某中学第一团支部（高一（3）班）.xlsx",
        "b.xlsx",
    ];
    let sizes = [5_000, 1, 0, 300_000, 17];
    let entries = entries_of(&names, &sizes);
    // (zip64 cut-off, take every n-th entry): ordinary, every entry past the cut-off,
    // the cut-off in the middle, and the central directory itself past it.
    let table: &[(u64, usize)] = &[
        (u64::MAX, 0),
        (u64::MAX, 1),
        (u64::MAX, 2),
        (0, 0),
        (0, 3),
        (6_000, 1),
        (305_000, 0),
    ];
    let (plain, _) = write(&entries, u64::MAX, 0);
    for &(zip64_from, take_every) in table {
        let (archive, spans) = write(&entries, zip64_from, take_every);
        assert_reads_back(&archive, &entries, &spans);
        if zip64_from == u64::MAX {
            assert_eq!(archive, plain, "taking out bytes changes none of them");
        }
    }
}

#[test]
fn more_entries_than_a_short_count_holds() {
    let entries: Vec<(String, Vec<u8>)> = (0..70_000)
        .map(|i| (format!("{i}.xlsx"), i.to_string().into_bytes()))
        .collect();
    let (archive, spans) = write(&entries, u64::MAX, 1000);
    assert_reads_back(&archive, &entries, &spans);
}

#[test]
fn an_empty_bundle_is_an_empty_zip() {
    let b = Bundle::new(when());
    assert!(b.is_empty());
    let archive = b.finish();
    assert_eq!(archive.len(), 22, "just the end record");
    assert_eq!(zip::ZipArchive::new(Cursor::new(archive)).unwrap().len(), 0);
}

#[test]
fn a_name_too_long_for_zip_is_refused() {
    let mut b = Bundle::new(when());
    let name = "团".repeat(30_000);
    assert_eq!(b.add(&name, b"x"), Err(BundleError::NameTooLong(90_000)));
    assert!(b.is_empty(), "nothing half-written");
    assert_eq!(b.entries(), 0);
}
