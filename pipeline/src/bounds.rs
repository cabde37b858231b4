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

use crate::error::Rejection;

/// Limits that keep hostile files from exhausting the machine (SPEC §3 `file_too_large`).
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Data rows (below the header) at most.
    pub max_rows: usize,
    /// Size of the uploaded file.
    pub max_file_bytes: u64,
    /// Sum of the declared uncompressed sizes of a zip container's entries.
    pub max_uncompressed_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_rows: schemas::excel::MAX_ROWS as usize,
            max_file_bytes: 512 << 20,
            max_uncompressed_bytes: 4 << 30,
        }
    }
}

/// A cell's text as a report shows it: at most [`MAX_CELL_CHARS`](schemas::excel::MAX_CELL_CHARS) UTF-16 units, which is
/// what Excel and the workbook writer count.
pub fn cut_cell(t: &str) -> &str {
    if t.len() <= schemas::excel::MAX_CELL_CHARS {
        return t;
    }
    let mut units = 0;
    for (at, c) in t.char_indices() {
        units += c.len_utf16();
        if units > schemas::excel::MAX_CELL_CHARS {
            return &t[..at];
        }
    }
    t
}

/// The longest run of XML between two `<` that a part may hold. A cell holds at most
/// 32,767 characters; written with escapes (`&amp;`, `_x0001_`) that is under 230 KB of
/// XML, so 1 MiB leaves room for any spreadsheet program's markup.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;

/// Why a part is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Inflated,
    Token,
}

impl Over {
    /// The verdict on a file whose part is over a bound.
    pub(crate) fn rejection(self, limits: &ReadLimits) -> Rejection {
        let code = ErrorCode::FileTooLarge;
        let message = match self {
            Over::Inflated => format!(
                "{}：解压后超过 {} MB",
                code.message(),
                limits.max_uncompressed_bytes >> 20
            ),
            Over::Token => format!(
                "{}：有单元格或标记超过 {} MB，Excel 单元格最多 32767 个字",
                code.message(),
                MAX_TOKEN_BYTES >> 20
            ),
        };
        Rejection { code, message }
    }
}

/// The running bound on one XML part read in chunks: the distance between consecutive
/// `<` stays under [`MAX_TOKEN_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct TokenBound {
    since_lt: usize,
}

impl TokenBound {
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), Over> {
        let mut at = 0;
        for lt in memchr::memchr_iter(b'<', chunk) {
            self.since_lt += lt - at;
            if self.since_lt > MAX_TOKEN_BYTES {
                return Err(Over::Token);
            }
            self.since_lt = 0;
            at = lt;
        }
        self.since_lt += chunk.len() - at;
        if self.since_lt > MAX_TOKEN_BYTES {
            return Err(Over::Token);
        }
        Ok(())
    }
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
            Ok(Err(over)) => Err(over.rejection(limits)),
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
pub(crate) fn count(total: &AtomicU64, n: usize, max: u64) -> bool {
    total.fetch_add(n as u64, Ordering::Relaxed) + n as u64 <= max
}

/// An XML part: the distance between consecutive `<` stays under the token bound.
fn scan_xml(
    part: &mut impl Read,
    total: &AtomicU64,
    max: u64,
) -> std::io::Result<Result<(), Over>> {
    let mut buf = vec![0u8; 64 << 10];
    let mut bound = TokenBound::default();
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
        if let Err(over) = bound.feed(&buf[..n]) {
            return Ok(Err(over));
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

/// Sector ids at and above this are markers (free, end of chain, FAT, DIFAT).
const MAX_REG_SECT: u32 = 0xFFFF_FFFA;

/// Refuses a CFB container (xls) whose sector chains loop. The parser follows a chain
/// until its end marker, appending a sector each step: a chain that comes back on
/// itself makes it allocate without end (found by fuzzing: a 7.6 KB file, 4 GB asked).
/// The FAT and the mini FAT are next-pointer tables, so a loop anywhere is found in one
/// linear walk.
#[tracing::instrument(skip_all, fields(bytes = bytes.len()))]
pub(crate) fn check_cfb(bytes: &[u8]) -> Result<(), Rejection> {
    let bad = |what: &str| Rejection {
        code: ErrorCode::FileUnreadable,
        message: format!(
            "{}：xls 文件结构损坏（{what}）",
            ErrorCode::FileUnreadable.message()
        ),
    };
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let shift = u16_at(30).ok_or_else(|| bad("文件头不完整"))?;
    let sector = match shift {
        9 => 512usize,
        12 => 4096,
        _ => return Err(bad("扇区大小无效")),
    };
    let sectors = bytes.len().saturating_sub(sector) / sector + 1;
    // As the parser sees sectors: any id up to the file's length in sectors, the part
    // past the end of the file read as zeros.
    let max_id = bytes.len() / sector;
    let read_sector = |id: u32| -> Option<Vec<u8>> {
        if id as usize > max_id {
            return None;
        }
        let start = (id as usize + 1) * sector;
        let mut s = bytes
            .get(start.min(bytes.len())..(start + sector).min(bytes.len()))?
            .to_vec();
        s.resize(sector, 0);
        Some(s)
    };
    let entries = |s: &[u8]| -> Vec<u32> {
        s.chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    // The FAT's own sectors: 109 in the header, the rest in the DIFAT chain.
    let mut fat_sectors: Vec<u32> = (0..109).filter_map(|i| u32_at(76 + 4 * i)).collect();
    let mut next = u32_at(68).unwrap_or(u32::MAX);
    let mut hops = 0;
    while next <= MAX_REG_SECT {
        hops += 1;
        if hops > sectors {
            return Err(bad("DIFAT 链成环"));
        }
        let Some(s) = read_sector(next) else { break };
        let mut ids = entries(&s);
        next = ids.pop().unwrap_or(u32::MAX);
        fat_sectors.extend(ids);
    }
    let mut fat: Vec<u32> = Vec::new();
    for id in fat_sectors.into_iter().filter(|&id| id <= MAX_REG_SECT) {
        if let Some(s) = read_sector(id) {
            fat.extend(entries(&s));
        }
        if fat.len() > sectors.saturating_mul(sector / 4) {
            return Err(bad("FAT 过大"));
        }
    }
    if has_loop(&fat) {
        return Err(bad("扇区链成环"));
    }
    // The mini FAT: its sectors are a FAT chain (now known to end), its entries another
    // next-pointer table.
    let mut mini: Vec<u32> = Vec::new();
    let mut id = u32_at(60).unwrap_or(u32::MAX);
    while id <= MAX_REG_SECT {
        let Some(s) = read_sector(id) else { break };
        mini.extend(entries(&s));
        id = fat.get(id as usize).copied().unwrap_or(u32::MAX);
    }
    if has_loop(&mini) {
        return Err(bad("短扇区链成环"));
    }
    // The workbook stream's cells: the parser makes each sheet a dense grid over the
    // box its cells span, so one cell at a far row and column asks for a grid of
    // billions (found by fuzzing: 137 GB). An xls sheet holds 65,536 × 256 cells.
    let chain = |start: u32, table: &[u32], read: &dyn Fn(u32) -> Option<Vec<u8>>, len: usize| {
        let mut out = Vec::new();
        let mut id = start;
        while id <= MAX_REG_SECT && out.len() < len {
            let Some(s) = read(id) else { break };
            out.extend_from_slice(&s);
            id = table.get(id as usize).copied().unwrap_or(u32::MAX);
        }
        out.truncate(len);
        out
    };
    let big = |id: u32| read_sector(id);
    let dir = chain(u32_at(48).unwrap_or(u32::MAX), &fat, &big, usize::MAX);
    let entry = |e: &[u8]| -> (String, u8, u32, usize) {
        let name_len = (u16::from_le_bytes([e[64], e[65]]) as usize).min(64);
        let name: Vec<u16> = e[..name_len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let start = u32::from_le_bytes([e[116], e[117], e[118], e[119]]);
        let size = u32::from_le_bytes([e[120], e[121], e[122], e[123]]) as usize;
        (String::from_utf16_lossy(&name), e[66], start, size)
    };
    let entries_of_dir: Vec<_> = dir.chunks_exact(128).map(entry).collect();
    let Some(root) = entries_of_dir.iter().find(|e| e.1 == 5) else {
        return Ok(());
    };
    // The parser takes `Workbook`, else `Book`: both are checked.
    for book in entries_of_dir.iter().filter(|e| {
        e.1 == 2 && (e.0.eq_ignore_ascii_case("Workbook") || e.0.eq_ignore_ascii_case("Book"))
    }) {
        let stream = if book.3 >= 4096 {
            chain(book.2, &fat, &big, book.3)
        } else {
            let ministream = chain(root.2, &fat, &big, usize::MAX);
            let small = |id: u32| {
                let at = (id as usize).checked_mul(64)?;
                ministream.get(at..at.checked_add(64)?).map(<[u8]>::to_vec)
            };
            chain(book.2, &mini, &small, book.3)
        };
        if biff_grid_too_large(&stream) {
            return Err(bad("单元格位置超出 xls 工作表范围"));
        }
    }
    Ok(())
}

/// Cells an xls sheet can hold: 65,536 rows by 256 columns.
const XLS_SHEET_CELLS: u64 = 65_536 * 256;

/// The records of a BIFF stream from `at`: type and data.
fn biff_records(stream: &[u8], mut at: usize) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let head = stream.get(at..at.checked_add(4)?)?;
        let kind = u16::from_le_bytes([head[0], head[1]]);
        let len = u16::from_le_bytes([head[2], head[3]]) as usize;
        let data = stream.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        Some((kind, data))
    })
}

/// Whether some sheet of a BIFF workbook stream would make the parser allocate more
/// than an xls sheet's cells: it reserves what a sheet's DIMENSIONS record declares, and
/// makes a dense grid over the box its cells (and, apart, its formulas) span. Sheets are
/// read from where the workbook's BOUNDSHEET records say they start, as the parser
/// reads them, nested substreams (charts) skipped.
fn biff_grid_too_large(stream: &[u8]) -> bool {
    let starts: Vec<usize> = biff_records(stream, 0)
        .take_while(|(kind, _)| *kind != 0x000A)
        .filter(|(kind, data)| *kind == 0x0085 && data.len() >= 4)
        .map(|(_, d)| u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    starts.into_iter().any(|at| sheet_too_large(stream, at))
}

fn sheet_too_large(stream: &[u8], at: usize) -> bool {
    type Box4 = Option<(u32, u32, u32, u32)>;
    let grow = |b: &mut Box4, r: u32, c0: u32, c1: u32| {
        *b = Some(match *b {
            None => (r, r, c0, c1),
            Some((r0, r1, a0, a1)) => (r0.min(r), r1.max(r), a0.min(c0), a1.max(c1)),
        });
    };
    let cells_of = |b: Box4| {
        b.map_or(0, |(r0, r1, c0, c1)| {
            u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1)
        })
    };
    let (mut cells, mut formulas): (Box4, Box4) = (None, None);
    let (mut depth, mut seen_bof) = (0usize, false);
    for (kind, d) in biff_records(stream, at) {
        let u16_at = |i: usize| {
            d.get(i..i + 2)
                .map(|x| u32::from(u16::from_le_bytes([x[0], x[1]])))
        };
        let u32_at = |i: usize| {
            d.get(i..i + 4)
                .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
        };
        if depth > 0 {
            match kind {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            continue;
        }
        match kind {
            0x0809 if seen_bof => depth += 1,
            0x0809 => seen_bof = true,
            0x000A => break,
            // DIMENSIONS: the parser reserves rows × columns as it computes them.
            0x0200 => {
                let dims = match d.len() {
                    10 => u16_at(0).zip(u16_at(2)).zip(u16_at(4).zip(u16_at(6))),
                    14 | 16 => u32_at(0).zip(u32_at(4)).zip(u16_at(8).zip(u16_at(10))),
                    _ => None,
                };
                if let Some(((rf, rl), (mut cf, cl))) = dims {
                    if cf > 0xFF || cl < cf {
                        cf = 0;
                    }
                    let (end_r, end_c) = if rl >= 1 && cl >= 1 {
                        (rl - 1, cl - 1)
                    } else {
                        (rf, cf)
                    };
                    let rows = u64::from(end_r.wrapping_sub(rf).wrapping_add(1));
                    let cols = u64::from(end_c.wrapping_sub(cf).wrapping_add(1));
                    if rows.saturating_mul(cols) > XLS_SHEET_CELLS {
                        return true;
                    }
                }
            }
            // NUMBER, LABEL, RSTRING, BOOLERR, RK, LABELSST.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD => {
                if let (Some(r), Some(c)) = (u16_at(0), u16_at(2)) {
                    grow(&mut cells, r, c, c);
                }
            }
            // MULRK: row, first column, …, last column.
            0x00BD if d.len() >= 6 => {
                if let (Some(r), Some(c0), Some(c1)) = (u16_at(0), u16_at(2), u16_at(d.len() - 2)) {
                    grow(&mut cells, r, c0.min(c1), c0.max(c1));
                }
            }
            // FORMULA: a cell and a formula.
            0x0006 => {
                if let (Some(r), Some(c)) = (u16_at(0), u16_at(2)) {
                    grow(&mut cells, r, c, c);
                    grow(&mut formulas, r, c, c);
                }
            }
            _ => {}
        }
        if cells_of(cells) > XLS_SHEET_CELLS || cells_of(formulas) > XLS_SHEET_CELLS {
            return true;
        }
    }
    false
}

/// Whether following `next` from some entry comes back to an entry already on the way.
fn has_loop(next: &[u32]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unseen,
        OnPath,
        Done,
    }
    let mut state = vec![State::Unseen; next.len()];
    let mut path = Vec::new();
    for start in 0..next.len() {
        let mut i = start;
        loop {
            match state[i] {
                State::OnPath => return true,
                State::Done => break,
                State::Unseen => {
                    state[i] = State::OnPath;
                    path.push(i);
                    match next[i] {
                        n if n <= MAX_REG_SECT && (n as usize) < next.len() => i = n as usize,
                        _ => break,
                    }
                }
            }
        }
        for node in path.drain(..) {
            state[node] = State::Done;
        }
    }
    false
}
