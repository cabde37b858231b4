//! The fast xlsx reader: the sheet and its shared strings inflated on one thread and
//! scanned on another, cells handed on as they are found, shared strings borrowed from
//! one buffer. It gives exactly the cells calamine's cell reader gives; anything it does
//! not cover (an unknown entity, markup where a value belongs, a part missing) is a
//! [`Stop::Fallback`], and the caller reads the file with calamine instead.
//!
//! It is bounded like the calamine path: every byte it inflates counts against
//! `max_uncompressed_bytes`, every part it reads keeps its tokens under
//! [`crate::bounds::MAX_TOKEN_BYTES`], and it never holds more than one unfinished cell
//! beyond the chunk being scanned.

mod meta;
mod scan;
mod sheet;

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use calamine::DataRef;

use crate::bounds::ReadLimits;
use crate::bounds::{Over, TokenBound, count};
use crate::error::Rejection;

pub use meta::SheetEntry;
pub use sheet::Sst;

/// Why the fast reader stopped.
#[derive(Debug)]
pub enum Stop {
    /// The file uses something the fast path does not cover: read it with calamine.
    Fallback(&'static str),
    /// A verdict on the file (over a bound, or from the cell consumer): final.
    Reject(Rejection),
}

impl From<scan::Bad> for Stop {
    fn from(b: scan::Bad) -> Self {
        Stop::Fallback(b.0)
    }
}

/// Inflated bytes handed from the inflating thread to the scanning one at a time.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the two threads.
const IN_FLIGHT: usize = 4;
/// The most a scan may leave unconsumed (one unfinished cell or string item); past it the
/// file goes to calamine, whose own bounds apply.
const MAX_CARRY: usize = 64 << 20;
/// The most a metadata part (workbook, relationships, styles) may hold.
const MAX_META: u64 = 64 << 20;

/// An opened workbook: its sheet list, date epoch and cell styles.
pub struct Book<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// Lower-cased entry name → entry name, as calamine looks parts up.
    names: HashMap<String, String>,
    pub sheets: Vec<SheetEntry>,
    pub is_1904: bool,
    formats: Vec<meta::NumFmt>,
    sst_path: String,
    inflated: AtomicU64,
    limits: ReadLimits,
}

impl<'a> Book<'a> {
    /// Reads the package and workbook relationships, the sheet list and the styles.
    pub fn open(bytes: &'a [u8], limits: &ReadLimits) -> Result<Book<'a>, Stop> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|_| Stop::Fallback("zip directory"))?;
        let mut names = HashMap::with_capacity(zip.len());
        for name in zip.file_names() {
            let name = name.map_err(|_| Stop::Fallback("zip entry name"))?;
            names.insert(
                name.replace('\\', "/").to_ascii_lowercase(),
                name.to_string(),
            );
        }
        let mut book = Book {
            zip,
            names,
            sheets: Vec::new(),
            is_1904: false,
            formats: Vec::new(),
            sst_path: String::new(),
            inflated: AtomicU64::new(0),
            limits: limits.clone(),
        };
        let rels = book
            .small_part("_rels/.rels")?
            .ok_or(Stop::Fallback("no package relationships"))?;
        let (xl, workbook) = meta::package_rels(&rels)?;
        book.sst_path = format!("{xl}sharedStrings.xml");
        if let Some(styles) = book.small_part(&format!("{xl}styles.xml"))? {
            book.formats = meta::styles(&styles)?;
        }
        let wb_rels = book
            .small_part(&format!("{xl}_rels/{workbook}.rels"))?
            .ok_or(Stop::Fallback("no workbook relationships"))?;
        let wb_rels = meta::workbook_rels(&wb_rels)?;
        let wb = book
            .small_part(&format!("{xl}{workbook}"))?
            .ok_or(Stop::Fallback("no workbook part"))?;
        (book.sheets, book.is_1904) = meta::workbook(&wb, &xl, &wb_rels)?;
        Ok(book)
    }

    /// The index of a part, looked up as calamine does (case-insensitively).
    fn index_of(&self, path: &str) -> Option<usize> {
        let name = self
            .names
            .get(&path.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or(path);
        self.zip.index_for_name(name)
    }

    /// A metadata part, whole, under the same bounds as everything else.
    fn small_part(&mut self, path: &str) -> Result<Option<Vec<u8>>, Stop> {
        let Some(i) = self.index_of(path) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut zip = self.zip.clone();
        let part = zip.by_index(i).map_err(|_| Stop::Fallback("zip entry"))?;
        part.take(MAX_META + 1)
            .read_to_end(&mut out)
            .map_err(|_| Stop::Fallback("zip entry"))?;
        if out.len() as u64 > MAX_META {
            return Err(Stop::Fallback("metadata part over 64 MiB"));
        }
        if std::str::from_utf8(&out).is_err() {
            return Err(Stop::Fallback("not UTF-8"));
        }
        self.check(&out, &mut TokenBound::default())?;
        Ok(Some(out))
    }

    fn check(&self, chunk: &[u8], bound: &mut TokenBound) -> Result<(), Stop> {
        if !count(
            &self.inflated,
            chunk.len(),
            self.limits.max_uncompressed_bytes,
        ) {
            return Err(Stop::Reject(Over::Inflated.rejection(&self.limits)));
        }
        bound
            .feed(chunk)
            .map_err(|over| Stop::Reject(over.rejection(&self.limits)))
    }

    /// The shared strings (empty when the workbook has none).
    pub fn shared_strings(&self) -> Result<Sst, Stop> {
        let Some(i) = self.index_of(&self.sst_path) else {
            return Ok(Sst::default());
        };
        let mut scan = sheet::SstScan::default();
        self.stream(i, |buf, eof| Ok(scan.feed(buf, eof)?))?;
        Ok(scan.sst)
    }

    /// Every cell of `sheet` in file order, handed to `emit` as it is scanned.
    pub fn cells<'s>(
        &self,
        sst: &'s Sst,
        sheet: &SheetEntry,
        mut emit: impl FnMut(u32, u32, DataRef<'s>) -> Result<(), Rejection>,
    ) -> Result<(), Stop> {
        let i = self
            .index_of(&sheet.path)
            .ok_or(Stop::Fallback("sheet part missing"))?;
        let cx = sheet::Context {
            sst,
            formats: &self.formats,
            is_1904: self.is_1904,
        };
        let mut scan = sheet::SheetScan::default();
        self.stream(i, |buf, eof| scan.feed(buf, eof, &cx, &mut emit))
    }

    /// Inflates part `index` and hands it to `consume` as a window of bytes: what the
    /// last call left unconsumed followed by the next chunk. With more than one thread
    /// the inflating runs on its own thread, [`IN_FLIGHT`] chunks ahead.
    #[tracing::instrument(skip_all, fields(part = index))]
    fn stream(
        &self,
        index: usize,
        mut consume: impl FnMut(&[u8], bool) -> Result<usize, Stop>,
    ) -> Result<(), Stop> {
        let mut window: Vec<u8> = Vec::with_capacity(2 * CHUNK);
        let mut take = |chunk: &[u8], eof: bool| -> Result<(), Stop> {
            window.extend_from_slice(chunk);
            let used = consume(&window, eof)?;
            window.drain(..used);
            if window.len() > MAX_CARRY {
                return Err(Stop::Fallback("one cell over 64 MiB"));
            }
            Ok(())
        };
        if rayon::current_num_threads() < 2 {
            let mut buf = Vec::with_capacity(CHUNK);
            self.inflate(
                index,
                || std::mem::take(&mut buf),
                |chunk| {
                    take(&chunk, false)?;
                    Ok(true)
                },
            )?;
            return take(&[], true);
        }
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel::<Result<Vec<u8>, Stop>>(IN_FLIGHT);
            let (back, spare) = mpsc::channel::<Vec<u8>>();
            s.spawn(move || {
                let sent = self.inflate(
                    index,
                    || {
                        spare
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(CHUNK))
                    },
                    |chunk| Ok(tx.send(Ok(chunk)).is_ok()),
                );
                if let Err(stop) = sent {
                    let _ = tx.send(Err(stop));
                }
            });
            for chunk in rx {
                let chunk = chunk?;
                take(&chunk, false)?;
                let _ = back.send(chunk);
            }
            take(&[], true)
        })
    }

    /// Inflates part `index` into buffers from `buf`, checks each against the bounds and
    /// gives it to `put`, until the part ends or `put` says stop.
    fn inflate(
        &self,
        index: usize,
        mut buf: impl FnMut() -> Vec<u8>,
        mut put: impl FnMut(Vec<u8>) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        let mut zip = self.zip.clone();
        let mut part = zip
            .by_index(index)
            .map_err(|_| Stop::Fallback("zip entry"))?;
        let mut bound = TokenBound::default();
        // The whole part must be UTF-8, as the XML parser calamine uses requires (checked
        // here, on the inflating thread, which has time to spare).
        let mut utf8 = scan::Utf8Check::default();
        loop {
            let mut chunk = buf();
            // A recycled buffer is overwritten, not zeroed again.
            chunk.resize(CHUNK, 0);
            let mut n = 0;
            while n < CHUNK {
                match part.read(&mut chunk[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Stop::Fallback("zip entry does not inflate")),
                }
            }
            chunk.truncate(n);
            if n == 0 {
                return match utf8.finish() {
                    true => Ok(()),
                    false => Err(Stop::Fallback("not UTF-8")),
                };
            }
            self.check(&chunk, &mut bound)?;
            if !utf8.feed(&chunk) {
                return Err(Stop::Fallback("not UTF-8"));
            }
            if !put(chunk)? {
                return Ok(());
            }
        }
    }
}
