//! Reading an uploaded workbook (SPEC §3): format sniffing, limits, the first visible
//! sheet, header-row detection under title rows, template detection and cell types
//! (numeric ID cells, Excel dates in both epochs), streamed into polars columns.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Seek};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use calamine::{
    Data, DataRef, Ods, Reader, SheetType, SheetVisible, Xls, Xlsb, Xlsx, XlsxError,
    open_workbook_from_rs,
};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use polars::prelude::*;
use schemas::template::REPORT_COLUMNS;
use schemas::{ErrorCode, Field, Kind, TemplateKind};

use crate::columns::col_raw;
use crate::error::Rejection;
use crate::text::normalise_header;

pub use crate::bounds::{ReadLimits, cut_cell};

/// Excel's limit on the characters of one cell. Longer text is kept to one character
/// more, enough for `text_too_long` to see it, and shown cut in the reports.
pub use schemas::excel::MAX_CELL_CHARS;

/// A cell's text as kept: at most [`MAX_CELL_CHARS`] + 1 characters.
fn bounded(t: &str) -> &str {
    if t.len() <= MAX_CELL_CHARS {
        return t;
    }
    match t.char_indices().nth(MAX_CELL_CHARS + 1) {
        Some((at, _)) => &t[..at],
        None => t,
    }
}

/// Column holding the Excel row number of each data row.
pub const ROW: &str = "__row";
/// True where the ID cell was stored by Excel as a (long) number.
pub const ID_NUMERIC: &str = "id_number_numeric";

/// What the reader hands to validation: one string column per template field, as uploaded.
#[derive(Debug)]
pub struct RawRoster {
    pub template: TemplateKind,
    pub sheet: String,
    /// Excel row number (1-based) of the header row.
    pub header_row: u32,
    /// `__row`, `id_number_numeric`, and `raw_<field>` for every field of the template
    /// (null where the cell is empty or the column absent).
    pub frame: DataFrame,
    /// Fields whose column was present in the file.
    pub present: Vec<Field>,
    /// File-level warnings (ignored columns).
    pub warnings: Vec<String>,
}

fn reject(code: ErrorCode, detail: impl std::fmt::Display) -> Rejection {
    Rejection {
        code,
        message: format!("{}：{detail}", code.message()),
    }
}

fn unreadable(detail: impl std::fmt::Display) -> Rejection {
    reject(ErrorCode::FileUnreadable, detail)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

/// Reads a roster from the bytes of an upload. Never panics: a panic inside the
/// spreadsheet parser becomes `file_unreadable`.
#[tracing::instrument(skip_all, fields(bytes = bytes.len(), template = declared.code()))]
pub fn read_roster(
    bytes: &[u8],
    declared: TemplateKind,
    sheet: Option<&str>,
    limits: &ReadLimits,
    progress: Option<&AtomicUsize>,
) -> Result<RawRoster, Rejection> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_inner(bytes, declared, sheet, limits, progress)
    })) {
        Ok(result) => result,
        Err(_) => Err(unreadable("文件结构异常，解析器无法处理（可能已损坏）")),
    }
}

fn read_inner(
    bytes: &[u8],
    declared: TemplateKind,
    sheet: Option<&str>,
    limits: &ReadLimits,
    progress: Option<&AtomicUsize>,
) -> Result<RawRoster, Rejection> {
    if bytes.is_empty() {
        return Err(unreadable("文件为空（0 字节）"));
    }
    // xlsx goes to the fast reader, which bounds what it inflates itself; the zip is
    // bounded as a whole only if calamine is to read it.
    let format = guarded_format(bytes, limits, false)?;
    if format == Format::Xlsx {
        match read_xlsx_fast(bytes, declared, sheet, limits, progress) {
            Ok(verdict) => return verdict,
            Err(reason) => {
                tracing::info!(reason, "xlsx read by calamine");
                crate::bounds::check_zip(bytes, limits)?;
            }
        }
    } else if bytes.starts_with(b"PK") {
        crate::bounds::check_zip(bytes, limits)?;
    }
    let cursor = Cursor::new(bytes);
    let max_rows = limits.max_rows;
    // Each arm owns its workbook: the sink borrows shared strings from it.
    match format {
        Format::Xlsx => {
            let mut wb: Xlsx<_> = open_workbook_from_rs(cursor).map_err(open_error_xlsx)?;
            stream_cells!(wb, sheet, declared, max_rows, progress)
        }
        Format::Xlsb => {
            let mut wb: Xlsb<_> = open_workbook_from_rs(cursor).map_err(|e| match e {
                calamine::XlsbError::Password => password(),
                e => unreadable(format!("xlsb 文件已损坏（{e}）")),
            })?;
            stream_cells!(wb, sheet, declared, max_rows, progress)
        }
        Format::Xls => {
            let mut wb: Xls<_> = open_workbook_from_rs(cursor).map_err(|e| match e {
                calamine::XlsError::Password => password(),
                e => unreadable(format!("xls 文件已损坏（{e}）")),
            })?;
            let is_1904 = wb.has_1904_epoch();
            let name = pick_sheet(wb.sheets_metadata(), sheet)?;
            let range = wb.worksheet_range(&name).map_err(sheet_error)?;
            let mut sink = Sink::new(declared, max_rows, is_1904, progress);
            feed_range(&mut sink, &range)?;
            sink.finish(name)
        }
        Format::Ods => {
            let mut wb: Ods<_> = open_workbook_from_rs(cursor).map_err(|e| match e {
                calamine::OdsError::Password => password(),
                e => unreadable(format!("ods 文件已损坏（{e}）")),
            })?;
            let name = pick_sheet(wb.sheets_metadata(), sheet)?;
            let range = wb.worksheet_range(&name).map_err(sheet_error)?;
            let mut sink = Sink::new(declared, max_rows, false, progress);
            feed_range(&mut sink, &range)?;
            sink.finish(name)
        }
    }
}

/// The xlsx fast path (`crate::xlsx`): `Ok` holds the verdict, `Err` the reason it did
/// not cover this file, which then goes to calamine.
fn read_xlsx_fast(
    bytes: &[u8],
    declared: TemplateKind,
    sheet: Option<&str>,
    limits: &ReadLimits,
    progress: Option<&AtomicUsize>,
) -> Result<Result<RawRoster, Rejection>, &'static str> {
    use crate::xlsx::{Book, Stop};
    let verdict = |stop: Stop| match stop {
        Stop::Fallback(reason) => Err(reason),
        Stop::Reject(r) => Ok(Err(r)),
    };
    let book = match Book::open(bytes, limits) {
        Ok(b) => b,
        Err(stop) => return verdict(stop),
    };
    let entries = book
        .sheets
        .iter()
        .map(|s| (s.name.as_str(), s.visible, s.worksheet));
    let name = match pick_sheet_in(entries, sheet) {
        Ok(n) => n,
        Err(r) => return Ok(Err(r)),
    };
    let entry = book
        .sheets
        .iter()
        .find(|s| s.name == name)
        .expect("the picked sheet is listed");
    let sst = match book.shared_strings() {
        Ok(s) => s,
        Err(stop) => return verdict(stop),
    };
    let mut sink = Sink::new(declared, limits.max_rows, book.is_1904, progress);
    match book.cells(&sst, entry, |r, c, v| {
        sink.push(r, c, CellText::from_owned(v))
    }) {
        Ok(()) => Ok(sink.finish(name)),
        Err(stop) => verdict(stop),
    }
}

/// The container format, once the bytes have passed every bound a parser needs before
/// it may see them: file size, declared and real decompressed size, token length (zip,
/// unless `zip_parts` is false because the caller bounds what it reads), sector chains
/// and cell positions (xls).
fn guarded_format(bytes: &[u8], limits: &ReadLimits, zip_parts: bool) -> Result<Format, Rejection> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(file_too_large(limits));
    }
    let format = sniff(bytes, limits)?;
    if bytes.starts_with(b"PK") {
        if zip_parts {
            crate::bounds::check_zip(bytes, limits)?;
        }
    } else if format == Format::Xls {
        crate::bounds::check_cfb(bytes)?;
    }
    Ok(format)
}

fn sheet_error(e: impl std::fmt::Display) -> Rejection {
    unreadable(format!("工作表无法读取（{e}）"))
}

/// Streams a sheet of a workbook that has a cell reader (xlsx, xlsb) into a [`Sink`]:
/// the two readers share no trait, so the loop is written once here.
macro_rules! stream_cells {
    ($wb:ident, $sheet:expr, $declared:expr, $max_rows:expr, $progress:expr) => {{
        let is_1904 = $wb.has_1904_epoch();
        let name = pick_sheet($wb.sheets_metadata(), $sheet)?;
        let mut cells = $wb.worksheet_cells_reader(&name).map_err(sheet_error)?;
        let mut sink = Sink::new($declared, $max_rows, is_1904, $progress);
        while let Some(cell) = cells
            .next_cell()
            .map_err(|e| unreadable(format!("工作表内容损坏（{e}）")))?
        {
            let (r, c) = cell.get_position();
            sink.push(r, c, CellText::from_ref(cell.get_value()))?;
        }
        sink.finish(name.clone())
    }};
}
use stream_cells;

/// The first sheet of a workbook as rows of text (an org file): the roster's guards
/// (format by content, declared and real decompressed size, token bound, `catch_unwind`
/// by the caller), at most `max_rows` rows and `max_cols` columns kept, cells streamed
/// so a far-away cell never makes a dense grid.
pub(crate) fn read_grid(
    bytes: &[u8],
    limits: &ReadLimits,
    max_cols: u32,
) -> Result<Vec<Vec<String>>, Rejection> {
    let format = guarded_format(bytes, limits, true)?;
    let mut grid: Vec<Vec<String>> = Vec::new();
    let mut put = |r: u32, c: u32, v: CellText<'_>| -> Result<(), Rejection> {
        if c >= max_cols || v.is_empty() {
            return Ok(());
        }
        let (r, c) = (r as usize, c as usize);
        if r >= limits.max_rows {
            return Err(reject(
                ErrorCode::FileTooLarge,
                format!("超过 {} 行", limits.max_rows),
            ));
        }
        if grid.len() <= r {
            grid.resize_with(r + 1, Vec::new);
        }
        let row = &mut grid[r];
        if row.len() <= c {
            row.resize(c + 1, String::new());
        }
        row[c] = bounded(v.display().unwrap_or_default().as_ref()).to_string();
        Ok(())
    };
    let cursor = Cursor::new(bytes);
    macro_rules! cells {
        ($wb:ident) => {{
            let name = pick_sheet($wb.sheets_metadata(), None)?;
            let mut cells = $wb.worksheet_cells_reader(&name).map_err(sheet_error)?;
            while let Some(cell) = cells
                .next_cell()
                .map_err(|e| unreadable(format!("工作表内容损坏（{e}）")))?
            {
                let (r, c) = cell.get_position();
                put(r, c, CellText::from_ref(cell.get_value()))?;
            }
        }};
    }
    // xls and ods: calamine reads only whole ranges (bounded before, by `guarded_format`).
    macro_rules! range {
        ($wb:ident) => {{
            let name = pick_sheet($wb.sheets_metadata(), None)?;
            let range = $wb.worksheet_range(&name).map_err(sheet_error)?;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            for (r, c, v) in range.used_cells() {
                put(r0 + r as u32, c0 + c as u32, CellText::from_data(v))?;
            }
        }};
    }
    match format {
        Format::Xlsx => {
            let mut wb: Xlsx<_> = open_workbook_from_rs(cursor).map_err(open_error_xlsx)?;
            cells!(wb);
        }
        Format::Xlsb => {
            let mut wb: Xlsb<_> =
                open_workbook_from_rs(cursor).map_err(|e| unreadable(format!("xlsb（{e}）")))?;
            cells!(wb);
        }
        Format::Xls => {
            let mut wb: Xls<_> =
                open_workbook_from_rs(cursor).map_err(|e| unreadable(format!("xls（{e}）")))?;
            range!(wb);
        }
        Format::Ods => {
            let mut wb: Ods<_> =
                open_workbook_from_rs(cursor).map_err(|e| unreadable(format!("ods（{e}）")))?;
            range!(wb);
        }
    }
    Ok(grid)
}

/// The read floor of the benchmarks (issue 6): calamine alone over every cell of the
/// first sheet of an xlsx, doing nothing else — materialised into a `Range` (how most
/// programs read), or streamed through the cell reader (how `roster` reads). Returns the
/// non-empty cells seen.
pub fn read_floor(bytes: &[u8], materialise: bool) -> Result<usize, String> {
    let mut wb = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let name = wb.sheet_names().first().cloned().ok_or("no sheet")?;
    if materialise {
        let range = wb.worksheet_range(&name).map_err(|e| e.to_string())?;
        return Ok(range.used_cells().count());
    }
    let mut cells = wb
        .worksheet_cells_reader(&name)
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(cell) = cells.next_cell().map_err(|e| e.to_string())? {
        if !matches!(cell.get_value(), calamine::DataRef::Empty) {
            n += 1;
        }
    }
    Ok(n)
}

/// The fast reader alone over every cell of the first sheet, doing nothing else (the
/// benchmarks' view of the reader without the column builders); non-empty cells seen.
pub fn read_floor_fast(bytes: &[u8]) -> Result<usize, String> {
    use crate::xlsx::{Book, Stop};
    let why = |stop: Stop| match stop {
        Stop::Fallback(reason) => format!("fallback: {reason}"),
        Stop::Reject(r) => format!("rejected: {}", r.message),
    };
    let book = Book::open(bytes, &ReadLimits::default()).map_err(why)?;
    let sst = book.shared_strings().map_err(why)?;
    let first = book.sheets.first().ok_or("no sheet")?;
    let mut n = 0;
    book.cells(&sst, first, |_, _, v| {
        n += usize::from(!matches!(v, DataRef::Empty));
        Ok(())
    })
    .map_err(why)?;
    Ok(n)
}

/// A worksheet's name and its cells (row, column, value) in file order.
pub type SheetCells = (String, Vec<(u32, u32, Data)>);

/// Every worksheet of an xlsx as the fast reader yields it, cell by cell in file order
/// (for the tests that hold it equal to calamine's cell reader, and the benchmarks).
/// `Err` names what made it hand the file to calamine, or the verdict on the file.
pub fn fast_xlsx_cells(bytes: &[u8]) -> Result<Vec<SheetCells>, String> {
    use crate::xlsx::{Book, Stop};
    let why = |stop: Stop| match stop {
        Stop::Fallback(reason) => format!("fallback: {reason}"),
        Stop::Reject(r) => format!("rejected: {}", r.message),
    };
    let limits = ReadLimits::default();
    let book = Book::open(bytes, &limits).map_err(why)?;
    let sst = book.shared_strings().map_err(why)?;
    let mut sheets = Vec::new();
    for entry in book.sheets.iter().filter(|s| s.worksheet) {
        let mut cells = Vec::new();
        book.cells(&sst, entry, |r, c, v| {
            cells.push((r, c, Data::from(v)));
            Ok(())
        })
        .map_err(why)?;
        sheets.push((entry.name.clone(), cells));
    }
    Ok(sheets)
}

/// The verdict on a file over `limits.max_file_bytes` (callers that know the size before
/// reading the bytes, such as the worker, give it without reading them).
pub fn file_too_large(limits: &ReadLimits) -> Rejection {
    reject(
        ErrorCode::FileTooLarge,
        format!("文件大小超过 {} MB", limits.max_file_bytes >> 20),
    )
}

fn password() -> Rejection {
    unreadable("文件设置了打开密码，请取消密码后重新上传")
}

fn open_error_xlsx(e: XlsxError) -> Rejection {
    match e {
        XlsxError::Password => password(),
        e => unreadable(format!("xlsx 文件已损坏（{e}）")),
    }
}

fn feed_range<'a>(sink: &mut Sink<'a>, range: &'a calamine::Range<Data>) -> Result<(), Rejection> {
    let Some((r0, c0)) = range.start() else {
        return Ok(());
    };
    for (r, c, v) in range.used_cells() {
        sink.push(r0 + r as u32, c0 + c as u32, CellText::from_data(v))?;
    }
    Ok(())
}

/// Decides the container format from the bytes, not the file name, and checks the
/// declared decompressed size of zip containers before any parser sees them.
fn sniff(bytes: &[u8], limits: &ReadLimits) -> Result<Format, Rejection> {
    const CFB: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    if bytes.starts_with(&CFB) {
        // An encrypted OOXML file is a CFB container with an `EncryptedPackage` stream.
        let needle: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
            return Err(password());
        }
        return Ok(Format::Xls);
    }
    if bytes.starts_with(b"PK") {
        let mut zip = ::zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| unreadable(format!("压缩包结构损坏（{e}）")))?;
        let mut total: u64 = 0;
        let mut names = HashSet::new();
        for i in 0..zip.len() {
            let entry = zip
                .by_index_raw(i)
                .map_err(|e| unreadable(format!("压缩包结构损坏（{e}）")))?;
            total = total.saturating_add(entry.size());
            names.insert(
                entry
                    .name()
                    .map_err(|e| unreadable(format!("压缩包结构损坏（{e}）")))?
                    .to_ascii_lowercase(),
            );
        }
        if total > limits.max_uncompressed_bytes {
            return Err(reject(
                ErrorCode::FileTooLarge,
                format!("解压后超过 {} MB", limits.max_uncompressed_bytes >> 20),
            ));
        }
        let format = if names.contains("content.xml") {
            Format::Ods
        } else if names.contains("xl/workbook.bin") {
            Format::Xlsb
        } else if names.contains("xl/workbook.xml") || names.contains("[content_types].xml") {
            Format::Xlsx
        } else {
            return Err(unreadable("压缩包中没有 Excel 工作簿"));
        };
        if let Some(mut entry) = zip_entry(&mut zip, "mimetype")
            && format == Format::Ods
        {
            let mut s = String::new();
            let _ = (&mut entry).take(200).read_to_string(&mut s);
            if s.contains("encrypted") {
                return Err(password());
            }
        }
        return Ok(format);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_lowercase();
    if head.contains("<html") || head.contains("<!doctype") {
        return Err(unreadable(
            "这是网页文件而不是 Excel 表格，请在 Excel 中另存为 .xlsx",
        ));
    }
    Err(unreadable(
        "不是 Excel 表格（支持 xlsx、xlsm、xlsb、xls、ods），如为 CSV 请另存为 .xlsx",
    ))
}

fn zip_entry<'z, R: Read + Seek>(
    zip: &'z mut ::zip::ZipArchive<R>,
    name: &str,
) -> Option<::zip::read::ZipFile<'z, R>> {
    zip.by_name(name).ok()
}

fn pick_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String, Rejection> {
    pick_sheet_in(
        sheets.iter().map(|s| {
            (
                s.name.as_str(),
                s.visible == SheetVisible::Visible,
                s.typ == SheetType::WorkSheet,
            )
        }),
        wanted,
    )
}

/// The sheet named `wanted`, else the first visible worksheet; sheets as (name, visible,
/// worksheet).
fn pick_sheet_in<'n>(
    mut sheets: impl Iterator<Item = (&'n str, bool, bool)>,
    wanted: Option<&str>,
) -> Result<String, Rejection> {
    if let Some(name) = wanted {
        return sheets
            .find(|s| s.0 == name)
            .map(|s| s.0.to_string())
            .ok_or_else(|| unreadable(format!("找不到名为“{name}”的工作表")));
    }
    sheets
        .find(|s| s.1 && s.2)
        .map(|s| s.0.to_string())
        .ok_or_else(|| unreadable("没有可见的工作表"))
}

/// A cell as the reader sees it, borrowing shared strings where it can.
#[derive(Debug, Clone)]
enum CellText<'a> {
    Empty,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(Option<NaiveDateTime>),
}

impl<'a> CellText<'a> {
    fn from_ref(v: &DataRef<'a>) -> CellText<'a> {
        match v {
            DataRef::Empty => CellText::Empty,
            DataRef::SharedString(s) => CellText::Text(Cow::Borrowed(s)),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                CellText::Text(Cow::Owned(s.clone()))
            }
            DataRef::Int(i) => CellText::Int(*i),
            DataRef::Float(f) => CellText::Float(*f),
            DataRef::Bool(b) => CellText::Bool(*b),
            DataRef::DateTime(dt) => date_cell(dt),
            DataRef::Error(e) => CellText::Text(Cow::Owned(e.to_string())),
        }
    }

    /// As [`CellText::from_ref`], taking the cell's own text instead of copying it.
    fn from_owned(v: DataRef<'a>) -> CellText<'a> {
        match v {
            DataRef::SharedString(s) => CellText::Text(Cow::Borrowed(s)),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                CellText::Text(Cow::Owned(s))
            }
            v => CellText::from_ref(&v),
        }
    }

    fn from_data(v: &'a Data) -> CellText<'a> {
        match v {
            Data::Empty => CellText::Empty,
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => {
                CellText::Text(Cow::Borrowed(s))
            }
            Data::Int(i) => CellText::Int(*i),
            Data::Float(f) => CellText::Float(*f),
            Data::Bool(b) => CellText::Bool(*b),
            Data::DateTime(dt) => date_cell(dt),
            Data::Error(e) => CellText::Text(Cow::Owned(e.to_string())),
        }
    }

    fn into_owned(self) -> CellText<'static> {
        match self {
            CellText::Text(s) => CellText::Text(Cow::Owned(s.into_owned())),
            CellText::Empty => CellText::Empty,
            CellText::Int(i) => CellText::Int(i),
            CellText::Float(f) => CellText::Float(f),
            CellText::Bool(b) => CellText::Bool(b),
            CellText::Date(d) => CellText::Date(d),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            CellText::Empty => true,
            CellText::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            CellText::Int(i) => Some(*i as f64),
            CellText::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The text shown for the cell, as uploaded.
    fn display(&self) -> Option<Cow<'_, str>> {
        if let CellText::Text(s) = self {
            return Some(Cow::Borrowed(s.as_ref()));
        }
        let mut scratch = String::new();
        self.display_in(&mut scratch)
            .map(|t| Cow::Owned(t.to_string()))
    }

    /// The text shown for the cell, without an allocation per cell: text is borrowed,
    /// anything else is written into `scratch` (cleared first).
    fn display_in<'s>(&'s self, scratch: &'s mut String) -> Option<&'s str> {
        use std::fmt::Write;
        scratch.clear();
        match self {
            CellText::Empty => return None,
            CellText::Text(s) => return Some(s.as_ref()),
            CellText::Int(i) => {
                let _ = write!(scratch, "{i}");
            }
            CellText::Float(f) => push_number(*f, scratch),
            CellText::Bool(b) => return Some(if *b { "TRUE" } else { "FALSE" }),
            CellText::Date(Some(dt)) => push_datetime(dt, scratch),
            CellText::Date(None) => return Some("#日期无效"),
        }
        Some(scratch.as_str())
    }
}

fn date_cell(dt: &calamine::ExcelDateTime) -> CellText<'static> {
    if dt.is_duration() {
        CellText::Float(dt.as_f64())
    } else {
        CellText::Date(dt.as_datetime())
    }
}

#[cfg(test)]
fn format_number(f: f64) -> String {
    let mut s = String::new();
    push_number(f, &mut s);
    s
}

fn push_number(f: f64, out: &mut String) {
    use std::fmt::Write;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e18 {
        let _ = write!(out, "{}", f as i64);
    } else {
        let _ = write!(out, "{f}");
    }
}

#[cfg(test)]
fn format_datetime(dt: &NaiveDateTime) -> String {
    let mut s = String::new();
    push_datetime(dt, &mut s);
    s
}

/// `YYYY-MM-DD`, with ` HH:MM:SS` unless the time is midnight (chrono's `%Y-%m-%d`
/// and `%H:%M:%S`, spelled out: a million dates are formatted per upload).
fn push_datetime(dt: &NaiveDateTime, out: &mut String) {
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        use std::fmt::Write;
        let _ = if dt.time().num_seconds_from_midnight() == 0 {
            write!(out, "{}", dt.format("%Y-%m-%d"))
        } else {
            write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S"))
        };
        return;
    }
    let two = |n: u32, out: &mut String| {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    two(year as u32 / 100, out);
    two(year as u32 % 100, out);
    out.push('-');
    two(dt.month(), out);
    out.push('-');
    two(dt.day(), out);
    let t = dt.time();
    if t.num_seconds_from_midnight() != 0 {
        out.push(' ');
        two(t.hour(), out);
        out.push(':');
        two(t.minute(), out);
        out.push(':');
        two(t.second(), out);
    }
}

/// A number typed into a date column: `201705` / `20170504` stay digits, anything
/// else in range is an Excel serial date of the workbook's epoch.
#[cfg(test)]
fn number_as_date(v: f64, is_1904: bool) -> Option<String> {
    let mut s = String::new();
    push_number_as_date(v, is_1904, &mut s).then_some(s)
}

/// [`number_as_date`] written into `out`; false (and `out` untouched) when the number
/// is no date.
fn push_number_as_date(v: f64, is_1904: bool, out: &mut String) -> bool {
    use std::fmt::Write;
    if v.fract() != 0.0 {
        return false;
    }
    let i = v as i64;
    let yyyymm = (190001..=210012).contains(&i) && (1..=12).contains(&(i % 100));
    let yyyymmdd = (19000101..=21001231).contains(&i);
    if yyyymm || yyyymmdd {
        let _ = write!(out, "{i}");
        return true;
    }
    if !(1..2_958_466).contains(&i) {
        return false;
    }
    let Some(date) = serial_date(i, is_1904) else {
        return false;
    };
    push_datetime(&date.and_time(chrono::NaiveTime::MIN), out);
    true
}

/// The day an Excel serial number stands for in the workbook's epoch.
fn serial_date(i: i64, is_1904: bool) -> Option<NaiveDate> {
    let date = if is_1904 {
        NaiveDate::from_ymd_opt(1904, 1, 1)?.checked_add_days(chrono::Days::new(i as u64))?
    } else if i >= 60 {
        // Excel's 1900 system counts the non-existent 1900-02-29 (serial 60).
        NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(i as u64))?
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 31)?.checked_add_days(chrono::Days::new(i as u64))?
    };
    Some(date)
}

/// Normalised header text → field, from canonical headers and aliases.
fn header_index() -> &'static HashMap<String, Field> {
    static INDEX: OnceLock<HashMap<String, Field>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for f in Field::ALL {
            m.insert(normalise_header(f.header()), f);
            for a in f.aliases() {
                m.insert(normalise_header(a), f);
            }
        }
        m
    })
}

/// Rows examined for the header: up to 5 title rows, then the header.
const HEADER_SEARCH_ROWS: usize = 6;
/// Cells to the right of this column are never buffered.
const MAX_COLUMNS: u32 = 256;

/// Rows of each chunk of the columns read: a chunk is built, finished and never grown,
/// so validation, walking the rows a slice at a time (`validate::SLICE_ROWS`, this
/// many), can let go of each chunk once its rows are validated.
pub const CHUNK_ROWS: usize = 1 << 17;

struct Slot {
    field: Field,
    is_date: bool,
    builder: StringChunkedBuilder,
    /// The chunks finished so far.
    done: Option<StringChunked>,
}

impl Slot {
    fn new(field: Field, is_date: bool) -> Slot {
        Slot {
            field,
            is_date,
            builder: StringChunkedBuilder::new(col_raw(field).into(), CHUNK_ROWS),
            done: None,
        }
    }

    /// Finishes the chunk being built and starts the next.
    fn seal(&mut self) -> PolarsResult<()> {
        let next = StringChunkedBuilder::new(col_raw(self.field).into(), CHUNK_ROWS);
        let chunk = std::mem::replace(&mut self.builder, next).finish();
        match self.done.as_mut() {
            Some(done) => done.append_owned(chunk)?,
            None => self.done = Some(chunk),
        }
        Ok(())
    }

    fn finish(mut self) -> PolarsResult<StringChunked> {
        self.seal()?;
        Ok(self.done.expect("sealed"))
    }
}

struct Collecting {
    /// Sheet column → slot index.
    slot_of_col: Vec<Option<usize>>,
    slots: Vec<Slot>,
    id_slot: Option<usize>,
    rows: Vec<u32>,
    id_numeric: Vec<bool>,
    template: TemplateKind,
    header_row: u32,
    present: Vec<Field>,
    warnings: Vec<String>,
    /// The text of a cell that is not text, written once per cell into one buffer.
    scratch: String,
}

/// Receives cells in row order and builds the columns; buffers the first rows until the
/// header is found.
struct Sink<'a> {
    /// Data rows read so far, for a progress display.
    progress: Option<&'a AtomicUsize>,
    declared: TemplateKind,
    max_rows: usize,
    is_1904: bool,
    buffered: Vec<(u32, Vec<(u32, CellText<'static>)>)>,
    collecting: Option<Collecting>,
    cur_row: Option<u32>,
    cur: Vec<(u32, CellText<'a>)>,
    any_cell: bool,
}

impl<'a> Sink<'a> {
    fn new(
        declared: TemplateKind,
        max_rows: usize,
        is_1904: bool,
        progress: Option<&'a AtomicUsize>,
    ) -> Self {
        Sink {
            progress,
            declared,
            max_rows,
            is_1904,
            buffered: Vec::new(),
            collecting: None,
            cur_row: None,
            cur: Vec::new(),
            any_cell: false,
        }
    }

    /// `row` and `col` are 0-based.
    fn push(&mut self, row: u32, col: u32, v: CellText<'a>) -> Result<(), Rejection> {
        if col >= MAX_COLUMNS || v.is_empty() {
            return Ok(());
        }
        // Past Excel's last row no program that saves worksheets writes: the file was
        // made by hand or damaged. Every row number kept fits every place it is stored
        // (a 32-bit integer in the registry).
        if row >= schemas::excel::MAX_ROWS {
            return Err(unreadable(format!(
                "第 {} 行超出 Excel 工作表的最大行数 {}，文件已损坏或不是由表格软件保存的",
                u64::from(row) + 1,
                schemas::excel::MAX_ROWS
            )));
        }
        self.any_cell = true;
        if self.cur_row != Some(row) {
            self.end_row()?;
            self.cur_row = Some(row);
        }
        self.cur.push((col, v));
        Ok(())
    }

    fn end_row(&mut self) -> Result<(), Rejection> {
        let Some(row) = self.cur_row.take() else {
            return Ok(());
        };
        if self.cur.is_empty() {
            return Ok(());
        }
        if let Some(c) = self.collecting.as_mut() {
            // The row's buffer is drained, not replaced: one allocation for the sheet.
            c.add_row(row, self.cur.drain(..), self.is_1904, self.max_rows)?;
            if let Some(p) = self.progress
                && c.rows.len() % 4096 == 0
            {
                p.store(c.rows.len(), Ordering::Relaxed);
            }
            Ok(())
        } else {
            self.buffered.push((
                row,
                self.cur
                    .drain(..)
                    .map(|(c, v)| (c, v.into_owned()))
                    .collect(),
            ));
            if self.buffered.len() >= HEADER_SEARCH_ROWS {
                self.start_collecting()?;
            }
            Ok(())
        }
    }

    fn start_collecting(&mut self) -> Result<(), Rejection> {
        let buffered = std::mem::take(&mut self.buffered);
        let (header_at, mut collecting) = detect_header(&buffered, self.declared)?;
        for (row, cells) in buffered.into_iter().skip(header_at + 1) {
            collecting.add_row(row, cells.into_iter(), self.is_1904, self.max_rows)?;
        }
        self.collecting = Some(collecting);
        Ok(())
    }

    fn finish(mut self, sheet: String) -> Result<RawRoster, Rejection> {
        self.end_row()?;
        if !self.any_cell {
            return Err(unreadable(format!("工作表“{sheet}”为空")));
        }
        if self.collecting.is_none() {
            self.start_collecting()?;
        }
        let c = self
            .collecting
            .take()
            .expect("collecting after header detection");
        if c.rows.is_empty() {
            return Err(unreadable("表头下没有数据行"));
        }
        c.into_roster(sheet)
    }
}

/// Picks the header row among the first rows and decides the template (SPEC §3).
fn detect_header(
    rows: &[(u32, Vec<(u32, CellText<'static>)>)],
    declared: TemplateKind,
) -> Result<(usize, Collecting), Rejection> {
    let index = header_index();
    let matched = |cells: &[(u32, CellText<'static>)]| -> Vec<(u32, Field, String)> {
        cells
            .iter()
            .filter_map(|(c, v)| {
                let text = v.display()?;
                let h = normalise_header(&text);
                index.get(&h).map(|f| (*c, *f, text.into_owned()))
            })
            .collect()
    };
    let best = rows
        .iter()
        .enumerate()
        .map(|(i, (_, cells))| (i, matched(cells)))
        .max_by_key(|(i, m)| {
            let distinct: HashSet<Field> = m.iter().map(|(_, f, _)| *f).collect();
            (distinct.len(), std::cmp::Reverse(*i))
        });
    let template = declared.template();
    let Some((at, matches)) = best.filter(|(_, m)| m.len() >= 3) else {
        return Err(reject(
            ErrorCode::TemplateUnknown,
            format!(
                "前{HEADER_SEARCH_ROWS}行中找不到表头；“{}”模板的必填列为：{}",
                template.title,
                template
                    .required()
                    .map(|c| c.field.header())
                    .collect::<Vec<_>>()
                    .join("、")
            ),
        ));
    };
    let present: HashSet<Field> = matches.iter().map(|(_, f, _)| *f).collect();
    let missing: Vec<&str> = template
        .required()
        .filter(|c| !present.contains(&c.field))
        .map(|c| c.field.header())
        .collect();
    if !missing.is_empty() {
        let other = declared.other().template();
        let other_complete = other.required().all(|c| present.contains(&c.field));
        let looks_other = other.distinctive.iter().any(|f| present.contains(f))
            && !template.distinctive.iter().any(|f| present.contains(f));
        if other_complete || looks_other {
            return Err(Rejection {
                code: ErrorCode::TemplateMixed,
                message: ErrorCode::TemplateMixed.message().to_string(),
            });
        }
        return Err(reject(
            ErrorCode::TemplateUnknown,
            format!("缺少必填列：{}", missing.join("、")),
        ));
    }

    let (header_row, cells) = &rows[at];
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of_col: Vec<Option<usize>> = vec![None; MAX_COLUMNS as usize];
    let mut warnings = Vec::new();
    let mut ignored = Vec::new();
    for (c, v) in cells {
        let Some(text) = v.display() else { continue };
        let h = normalise_header(&text);
        match index.get(&h) {
            Some(f) if template.has(*f) => {
                if slots.iter().any(|s| s.field == *f) {
                    warnings.push(format!("列“{text}”重复出现，只读取第一列"));
                    continue;
                }
                slot_of_col[*c as usize] = Some(slots.len());
                slots.push(Slot::new(
                    *f,
                    matches!(template.column(*f).map(|c| c.kind), Some(Kind::Date)),
                ));
            }
            _ if REPORT_COLUMNS.iter().any(|r| normalise_header(r) == h) => {}
            _ => ignored.push(text.into_owned()),
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!("以下列不属于模板，已忽略：{}", ignored.join("、")));
    }
    let id_slot = slots.iter().position(|s| s.field == Field::IdNumber);
    let present: Vec<Field> = slots.iter().map(|s| s.field).collect();
    Ok((
        at,
        Collecting {
            slot_of_col,
            slots,
            id_slot,
            rows: Vec::new(),
            id_numeric: Vec::new(),
            template: declared,
            header_row: header_row + 1,
            present,
            warnings,
            scratch: String::new(),
        },
    ))
}

impl Collecting {
    fn add_row<'a>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (u32, CellText<'a>)>,
        is_1904: bool,
        max_rows: usize,
    ) -> Result<(), Rejection> {
        let mut values: Vec<Option<CellText<'a>>> = vec![None; self.slots.len()];
        let mut any = false;
        for (c, v) in cells {
            if let Some(Some(slot)) = self.slot_of_col.get(c as usize) {
                values[*slot] = Some(v);
                any = true;
            }
        }
        if !any {
            return Ok(());
        }
        if self.rows.len() >= max_rows {
            return Err(reject(
                ErrorCode::FileTooLarge,
                format!("数据行超过 {max_rows} 行，请拆分后上传"),
            ));
        }
        self.rows.push(row.saturating_add(1));
        let mut numeric_id = false;
        for (i, (slot, v)) in self.slots.iter_mut().zip(values.iter()).enumerate() {
            let Some(v) = v else {
                slot.builder.append_null();
                continue;
            };
            if Some(i) == self.id_slot
                && let Some(n) = v.as_number()
            {
                // 16+ digits cannot survive an IEEE double; shorter numbers are exact.
                numeric_id = n.abs() >= 1e15 || n.fract() != 0.0;
            }
            let as_date = slot.is_date && {
                self.scratch.clear();
                v.as_number()
                    .is_some_and(|n| push_number_as_date(n, is_1904, &mut self.scratch))
            };
            let text = if as_date {
                Some(self.scratch.as_str())
            } else {
                v.display_in(&mut self.scratch)
            };
            match text {
                Some(t) => slot.builder.append_value(bounded(t)),
                None => slot.builder.append_null(),
            }
        }
        self.id_numeric.push(numeric_id);
        if self.rows.len().is_multiple_of(CHUNK_ROWS) {
            for slot in &mut self.slots {
                slot.seal()
                    .map_err(|e| unreadable(format!("内部错误（{e}）")))?;
            }
        }
        Ok(())
    }

    fn into_roster(self, sheet: String) -> Result<RawRoster, Rejection> {
        let height = self.rows.len();
        let mut columns: Vec<Column> = vec![
            Column::new(ROW.into(), self.rows),
            Column::new(ID_NUMERIC.into(), self.id_numeric),
        ];
        let template = self.template.template();
        let mut built: HashMap<Field, Column> = HashMap::new();
        for slot in self.slots {
            let field = slot.field;
            let ca = slot
                .finish()
                .map_err(|e| unreadable(format!("内部错误（{e}）")))?;
            built.insert(field, ca.into_column());
        }
        for c in template.columns {
            columns.push(built.remove(&c.field).unwrap_or_else(|| {
                Column::full_null(col_raw(c.field).into(), height, &DataType::String)
            }));
        }
        let frame =
            DataFrame::new(height, columns).map_err(|e| unreadable(format!("内部错误（{e}）")))?;
        Ok(RawRoster {
            template: self.template,
            sheet,
            header_row: self.header_row,
            frame,
            present: self.present,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_serials_in_both_epochs() {
        assert_eq!(
            number_as_date(42859.0, false).as_deref(),
            Some("2017-05-04")
        );
        assert_eq!(number_as_date(41397.0, true).as_deref(), Some("2017-05-04"));
        assert_eq!(number_as_date(201705.0, false).as_deref(), Some("201705"));
        assert_eq!(
            number_as_date(20170504.0, false).as_deref(),
            Some("20170504")
        );
        assert_eq!(number_as_date(61.0, false).as_deref(), Some("1900-03-01"));
        assert_eq!(number_as_date(1.5, false), None);
        assert_eq!(number_as_date(-3.0, false), None);
    }

    #[test]
    fn dates_and_times_spelled_out_as_chrono_formats_them() {
        let base = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
        for days in (0..80_000).step_by(7) {
            let day = base + chrono::Days::new(days);
            for secs in [0u32, 1, 59, 3600, 45_296, 86_399] {
                let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap();
                let dt = day.and_time(t);
                let want = if secs == 0 {
                    dt.format("%Y-%m-%d").to_string()
                } else {
                    dt.format("%Y-%m-%d %H:%M:%S").to_string()
                };
                assert_eq!(format_datetime(&dt), want);
            }
        }
        let far = NaiveDate::from_ymd_opt(12_345, 6, 7)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        assert_eq!(format_datetime(&far), far.format("%Y-%m-%d").to_string());
    }

    #[test]
    fn numbers_display_without_float_noise() {
        assert_eq!(format_number(13800138000.0), "13800138000");
        assert_eq!(format_number(4.403081999011015e17), "440308199901101504");
        assert_eq!(format_number(1.25), "1.25");
    }
}
